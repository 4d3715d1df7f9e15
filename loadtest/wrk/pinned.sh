#!/usr/bin/env bash
# Per-core comparison with wrk: each server on CPU 0 with one thread (ours -threads 1, the Go
# original with GOMAXPROCS=1, Debian's nginx with worker_processes 1), wrk -t1 -c64 on CPU 1.
# fetch: a 10-instance app; renew: 1,000 instances round-robin (renew.lua). nginx answers with
# the bytes our server answered (saved with curl), GET and POST alike. Prints one line per
# target and round, then the answer sizes.
#
#   loadtest/wrk/pinned.sh [rounds] [seconds]      (default 3 rounds of 5 s)
#
# Needs wrk, curl, taskset, nginx (apt-get install wrk nginx-light) and two CPUs. Builds ours
# (release) and uses the Go original built by loadtest/run.sh (loadtest/.cache/go/bin), if there.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ROUNDS="${1:-3}"
SECS="${2:-5}"
for tool in wrk curl taskset; do
  command -v "$tool" >/dev/null || { echo "pinned.sh: $tool is required" >&2; exit 1; }
done
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$NGINX" ] || NGINX=""
[ "$(nproc)" -ge 2 ] || { echo "pinned.sh: needs two CPUs" >&2; exit 1; }
(cd "$ROOT" && cargo build --release --quiet --bin discovery) || exit 1
OURS="$ROOT/target/release/discovery"
GO="$ROOT/loadtest/.cache/go/bin/discovery"
[ -x "$GO" ] || { echo "pinned.sh: no Go original at $GO (run loadtest/run.sh renew --target go once); skipping it" >&2; GO=""; }

W="$(mktemp -d)"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
PORT=7191
FETCH="/discovery/fetch?appid=bench.fetch&env=dev&status=1"
mkdir -p "$W/ours" "$W/go" "$W/nginx/root" "$W/nginx/temp"
for d in ours go; do
  cat >"$W/$d/discovery.toml" <<T
nodes = ["127.0.0.1:$PORT"]
enableprotect = false
[env]
region = "sh"
zone = "sh001"
host = "bench"
DeployEnv = "dev"
[httpServer]
addr = "127.0.0.1:$PORT"
timeout = "40s"
[httpClient]
dial = "1s"
keepAlive = "120s"
timeout = "40s"
[log]
stdout = false
T
done
cat >"$W/nginx/nginx.conf" <<N
daemon off; master_process on; worker_processes 1;
pid $W/nginx/nginx.pid; error_log $W/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; client_body_temp_path $W/nginx/temp;
  types { } default_type "application/json; charset=utf-8";
  keepalive_requests 1000000; keepalive_timeout 120s; open_file_cache max=16 inactive=1h;
  server {
    listen 127.0.0.1:$PORT; root $W/nginx/root;
    location /discovery/fetch { try_files /fetch.json =404; }
    location /discovery/renew { try_files /renew.json =404; error_page 405 =200 /renew.json; }
    location / { return 200 ''; }
  }
}
N
ready() {

  for _ in $(seq 100); do
    curl -s -o /dev/null "127.0.0.1:$PORT/discovery/nodes" && return 0
    sleep 0.1
  done
  echo "pinned.sh: the server did not answer" >&2
  return 1
}
fill() {
  local h
  for h in $(seq 0 9); do
    curl -s -o /dev/null -XPOST "127.0.0.1:$PORT/discovery/register" \
      -d "zone=sh001&env=dev&appid=bench.fetch&hostname=h$h&addrs=http://10.0.0.$h:80&status=1"
  done
  seq 0 999 | xargs -P8 -I{} curl -s -o /dev/null -XPOST "127.0.0.1:$PORT/discovery/register" \
    -d "zone=sh001&env=dev&appid=bench.renew&hostname=h{}&addrs=http://10.1.0.1:80&status=1"
}
rps() { awk '/^Requests\/sec/ {print $2}'; }
bench() {
  local f r
  f=$(taskset -c 1 wrk -t1 -c64 -d"${SECS}s" "http://127.0.0.1:$PORT$FETCH" | rps)
  r=$(taskset -c 1 wrk -t1 -c64 -d"${SECS}s" -s "$HERE/renew.lua" "http://127.0.0.1:$PORT/discovery/renew" | rps)
  echo "round $1 $2: fetch $f req/s, renew $r req/s"
}
stop() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=""; }
for round in $(seq "$ROUNDS"); do
  (cd "$W/ours" && exec taskset -c 0 "$OURS" -conf "$W/ours" -threads 1 >"$W/ours.log" 2>&1) &
  PID=$!
  ready && fill || exit 1
  curl -s "127.0.0.1:$PORT$FETCH" >"$W/nginx/root/fetch.json"
  curl -s -XPOST "127.0.0.1:$PORT/discovery/renew" \
    -d "zone=sh001&env=dev&appid=bench.renew&hostname=h1" >"$W/nginx/root/renew.json"
  bench "$round" ours
  stop
  if [ -n "$GO" ]; then
    (cd "$W/go" && DEPLOY_ENV=dev ZONE=sh001 REGION=sh HOSTNAME=bench GOMAXPROCS=1 \
      exec taskset -c 0 "$GO" -conf "$W/go" >"$W/go.log" 2>&1) &
    PID=$!
    ready && fill || exit 1
    bench "$round" go
    stop
  fi
  if [ -n "$NGINX" ]; then
    # nginx's workers may run as nobody: they must read the answers.
    chmod -R a+rX "$W"
    taskset -c 0 "$NGINX" -c "$W/nginx/nginx.conf" >"$W/nginx.log" 2>&1 &
    PID=$!
    ready && bench "$round" nginx
    stop
  fi
done
echo "answers nginx returned (bytes): fetch $(wc -c <"$W/nginx/root/fetch.json"), renew $(wc -c <"$W/nginx/root/renew.json")"
