#!/usr/bin/env bash
# A large registry on one node, and a second node joining it.
#
#   loadtest/sync.sh [--instances 1000000] [--renew-interval 30s] [--duration 60s]
#
# Starts node A (ours, release build) and fills it with `loadgen fleet` (the
# instances renewing at the given interval, a few consumers, no churn). Once A
# holds every instance it measures A's RSS, and `GET /discovery/fetch/all` on A
# three times (time and size, with curl). Then it starts node B with A as its
# peer and measures B's start-up sync: the time from B's start to its log line
# "start-up sync done", B's instances then, and B's peak RSS (VmHWM). Both
# nodes list both in `nodes`, on free loopback ports. Everything goes to
# loadtest/results/<UTC timestamp>-sync/ (summary.md, fleet.json, the logs);
# every wait is bounded and both nodes are stopped at the end. DISCOVERY_BIN names
# another build of ours to measure instead of the tree's.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

INSTANCES=1000000
INTERVAL=30s
DURATION=60s
while [ $# -gt 0 ]; do
    case "$1" in
        --instances) INSTANCES=$2; shift 2 ;;
        --renew-interval) INTERVAL=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        -h | --help) sed -n '2,17s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "sync.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

RES=$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)-sync
mkdir -p "$RES"
log() { echo "sync: $*" | tee -a "$RES/summary.md" >&2; }

if [ -z "${DISCOVERY_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet --bin discovery) || { log "build of discovery failed"; exit 1; }
    DISCOVERY_BIN=$ROOT/target/release/discovery
fi
cargo build --release --quiet --manifest-path "$HERE/Cargo.toml" || { log "build of loadgen failed"; exit 1; }
LOADGEN=$HERE/target/release/loadgen
mkdir -p "$HERE/.cache/run"
BIN=$HERE/.cache/run/sync-server
cp -f "$DISCOVERY_BIN" "$BIN"

PA=$("$LOADGEN" free-port)
PB=$("$LOADGEN" free-port)
while [ "$PB" = "$PA" ]; do PB=$("$LOADGEN" free-port); done
conf() { # dir port host
    mkdir -p "$1"
    cat >"$1/discovery.toml" <<EOF
nodes = ["127.0.0.1:$PA", "127.0.0.1:$PB"]
enableprotect = false

[env]
region = "sh"
zone = "sh001"
host = "$3"
DeployEnv = "dev"

[httpServer]
addr = "127.0.0.1:$2"

[log]
stdout = true
EOF
}
conf "$RES/conf-a" "$PA" node-a
conf "$RES/conf-b" "$PB" node-b

PIDS=()
stop_all() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    PIDS=()
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM

status_kb() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status"; }
metric() { # port name
    curl -s --max-time 5 "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}

RUST_LOG=info "$BIN" -conf "$RES/conf-a" >"$RES/node-a.log" 2>&1 &
A=$!
PIDS+=("$A")
"$LOADGEN" wait-ready --addr "127.0.0.1:$PA" --pid "$A" || { log "node A did not start"; exit 1; }
log "instances $INSTANCES, renew interval $INTERVAL; node A 127.0.0.1:$PA (pid $A), node B 127.0.0.1:$PB"

"$LOADGEN" fleet --addr "127.0.0.1:$PA" --server-pid "$A" --instances "$INSTANCES" \
    --renew-interval "$INTERVAL" --consumers 10 --watch 1 --churn 0/s --duration "$DURATION" \
    --out "$RES/fleet.json" >"$RES/fleet.log" 2>&1 &
FLEET=$!

# A holds every instance: the gauge says so (at most 30 min, checked every second).
for _ in $(seq 1 1800); do
    n=$(metric "$PA" discovery_instances)
    [ "${n:-0}" -ge "$INSTANCES" ] && break
    kill -0 "$FLEET" 2>/dev/null || { log "loadgen fleet ended before A held $INSTANCES instances (see fleet.log)"; exit 1; }
    sleep 1
done
log "node A: $(metric "$PA" discovery_instances) instances, RSS $(( $(status_kb "$A" VmRSS) / 1024 )) MiB, peak $(( $(status_kb "$A" VmHWM) / 1024 )) MiB"

for i in 1 2 3; do
    log "fetch/all on A, round $i: $(curl -s -o /dev/null --max-time 300 -w '%{http_code}, %{size_download} bytes in %{time_total} s (first byte after %{time_starttransfer} s)' "http://127.0.0.1:$PA/discovery/fetch/all")"
done

t0=$(date +%s.%N)
RUST_LOG=info "$BIN" -conf "$RES/conf-b" >"$RES/node-b.log" 2>&1 &
B=$!
PIDS+=("$B")
done_line=""
for _ in $(seq 1 3000); do # at most 5 min, checked every 100 ms
    done_line=$(grep -m1 -E "start-up sync (done|failed)" "$RES/node-b.log")
    [ -n "$done_line" ] && break
    kill -0 "$B" 2>/dev/null || break
    sleep 0.1
done
t1=$(date +%s.%N)
if ! grep -q "start-up sync done" <<<"$done_line"; then
    log "node B: no successful start-up sync (${done_line:-nothing in 5 min}; see node-b.log)"
    exit 1
fi
log "node B: start-up sync done $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s after its start (checked every 100 ms): $(grep -o 'instances=[0-9]*' <<<"$done_line")"
log "node B: $(metric "$PB" discovery_instances) instances, RSS $(( $(status_kb "$B" VmRSS) / 1024 )) MiB, peak (VmHWM) $(( $(status_kb "$B" VmHWM) / 1024 )) MiB"

wait "$FLEET"
log "loadgen fleet: $(tail -n 3 "$RES/fleet.log" | tr '\n' ' ')"
log "node A at the end: RSS $(( $(status_kb "$A" VmRSS) / 1024 )) MiB, peak $(( $(status_kb "$A" VmHWM) / 1024 )) MiB"
echo "results in $RES" >&2
