#!/usr/bin/env bash
# Runs one load scenario against our server, the Go original, the ceiling
# server and/or Debian's nginx, each started on a free loopback port, and writes
# results/<timestamp>-<scenario>/ with one JSON per target, summary.md and,
# for fleet, park and capacity, chart.svg.
#
#   loadtest/run.sh <fetch|renew|fleet|park|capacity>
#                   [--target ours|go|ceiling|nginx|all|a,b] [--pin [SERVER_CPUS]]
#                   [--ours-driver auto|io_uring|epoll] [--ours-bin PATH]
#                   [scenario flags...]
#
# --pin runs the server on SERVER_CPUS (default: the first CPU, e.g. 0; a list
# like 0-1 or 0,2) with as many threads, and the load generator on the others.
# --ours-driver sets our server's [httpServer] driver (auto, io_uring, epoll); the
# load generator's own is its --driver flag. --ours-bin measures that build of
# our server instead of building this checkout's (to compare two versions).
# Scenario flags are passed to `loadgen <scenario>` unchanged (see README.md).
# `loadtest/run.sh soak [--duration 30m]` runs soak.sh (a long fleet, sampled for drift).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
GO_MODULE="github.com/bilibili/discovery"
GO_VERSION="v1.2.0"

usage() {
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

log() { printf '[run.sh] %s\n' "$*" >&2; }

SCENARIO="${1:-}"
[ $# -gt 0 ] && shift
case "$SCENARIO" in
    soak) exec "$(dirname "$0")/soak.sh" "$@" ;;
    fetch | renew | fleet | park | capacity) ;;
    -h | --help | help | "") usage ;;
    *) log "unknown scenario '$SCENARIO'"; usage ;;
esac

TARGET="all"
OURS_DRIVER=""
OURS_BIN_GIVEN=""
PIN=""         # empty: not pinned; "first": the first CPU; else a CPU list
LOAD_THREADS="" # --threads as given for the load generator, if it was
LOAD_THREAD_ARGS=()
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --target) TARGET="${2:-}"; shift 2 || usage ;;
        --target=*) TARGET="${1#*=}"; shift ;;
        --pin=*) PIN="${1#*=}"; shift ;;
        --pin)
            if [[ "${2:-}" =~ ^[0-9] ]]; then
                PIN="$2"; shift 2
            else
                PIN="first"; shift
            fi
            ;;
        --ours-bin) OURS_BIN_GIVEN="${2:-}"; shift 2 || usage ;;
        --ours-bin=*) OURS_BIN_GIVEN="${1#*=}"; shift ;;
        --ours-driver) OURS_DRIVER="${2:-}"; shift 2 || usage ;;
        --ours-driver=*) OURS_DRIVER="${1#*=}"; shift ;;
        --threads) LOAD_THREADS="${2:-}"; ARGS+=("$1" "${2:-}"); shift 2 || usage ;;
        --threads=*) LOAD_THREADS="${1#*=}"; ARGS+=("$1"); shift ;;
        *) ARGS+=("$1"); shift ;;
    esac
done

case "$OURS_DRIVER" in
    "" | auto | io_uring | epoll) ;;
    *) log "--ours-driver: expected auto, io_uring or epoll, got '$OURS_DRIVER'"; exit 2 ;;
esac

TARGETS=()
IFS=',' read -r -a REQUESTED <<<"$TARGET"
for t in "${REQUESTED[@]}"; do
    case "$t" in
        all) TARGETS+=(ours go ceiling nginx) ;;
        ours | go | ceiling | nginx) TARGETS+=("$t") ;;
        *) log "unknown target '$t' (ours, go, ceiling, nginx, all)"; exit 2 ;;
    esac
done

# --- CPU pinning ---------------------------------------------------------------
# CPU lists as the kernel writes them ("0-2,5") to one number a line, and back.
expand_cpus() {
    local part lo hi
    IFS=',' read -r -a parts <<<"$1"
    for part in "${parts[@]}"; do
        if [[ "$part" =~ ^([0-9]+)-([0-9]+)$ ]]; then
            lo="${BASH_REMATCH[1]}" hi="${BASH_REMATCH[2]}"
            [ "$lo" -le "$hi" ] || return 1
            seq "$lo" "$hi"
        elif [[ "$part" =~ ^[0-9]+$ ]]; then
            echo "$part"
        else
            return 1
        fi
    done
}
compress_cpus() {
    sort -n -u | awk '
        function flush() { if (n) { printf "%s%s", sep, (lo == prev ? lo : lo "-" prev); sep = "," } }
        { if (n && $1 == prev + 1) { prev = $1; next } flush(); lo = prev = $1; n = 1 }
        END { flush(); print "" }'
}

SERVER_CPUS=""   # the server's CPU list, when pinned
SERVER_THREADS="" # threads (or worker processes) the server gets, when pinned
LOAD_CPUS=""     # the load generator's CPU list, when pinned
if [ -n "$PIN" ]; then
    command -v taskset >/dev/null 2>&1 || { log "--pin needs taskset (util-linux)"; exit 2; }
    ALLOWED="$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status)"
    ALLOWED_N="$(expand_cpus "$ALLOWED" | wc -l)"
    if [ "$ALLOWED_N" -lt 2 ]; then
        log "--pin needs at least 2 CPUs, one for the server and one for the load generator; this machine lets run.sh use only CPU $ALLOWED"
        exit 2
    fi
    [ "$PIN" = "first" ] && PIN="$(expand_cpus "$ALLOWED" | head -n 1)"
    if ! WANTED="$(expand_cpus "$PIN")" || [ -z "$WANTED" ]; then
        log "--pin: '$PIN' is not a CPU list (examples: 0, 0-1, 0,2)"
        exit 2
    fi
    OUTSIDE="$(comm -23 <(sort -u <<<"$WANTED") <(expand_cpus "$ALLOWED" | sort -u) | compress_cpus)"
    if [ -n "$OUTSIDE" ]; then
        log "--pin $PIN: CPU(s) $OUTSIDE are not available here (available: $ALLOWED)"
        exit 2
    fi
    SERVER_CPUS="$(compress_cpus <<<"$WANTED")"
    SERVER_THREADS="$(sort -u <<<"$WANTED" | wc -l)"
    LOAD_CPUS="$(comm -13 <(sort -u <<<"$WANTED") <(expand_cpus "$ALLOWED" | sort -u) | compress_cpus)"
    if [ -z "$LOAD_CPUS" ]; then
        log "--pin $PIN leaves no CPU for the load generator (available: $ALLOWED)"
        exit 2
    fi
    if [ -z "$LOAD_THREADS" ]; then
        LOAD_THREADS="$(expand_cpus "$LOAD_CPUS" | wc -l)"
        LOAD_THREAD_ARGS=(--threads "$LOAD_THREADS")
    fi
    log "pinning: server on CPUs $SERVER_CPUS ($SERVER_THREADS thread(s)), load generator on CPUs $LOAD_CPUS ($LOAD_THREADS thread(s))"
fi
# Prefixes that pin a command, empty when not pinned.
PIN_SERVER=()
PIN_LOAD=()
if [ -n "$SERVER_CPUS" ]; then
    PIN_SERVER=(taskset -c "$SERVER_CPUS")
    PIN_LOAD=(taskset -c "$LOAD_CPUS")
fi

# Long polls and many connections need descriptors on both sides.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
log "open-file limit: $(ulimit -n)"

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RES="$HERE/results/$STAMP-$SCENARIO"
mkdir -p "$RES"
SKIPPED="$RES/skipped.txt"
NOTES="$RES/notes.txt"
: >"$SKIPPED"
: >"$NOTES"
if [ -n "$SERVER_CPUS" ]; then
    printf 'Pinned: server on CPUs %s (%s thread(s)), load generator on CPUs %s (%s thread(s))\n' \
        "$SERVER_CPUS" "$SERVER_THREADS" "$LOAD_CPUS" "$LOAD_THREADS" >"$RES/pinning.txt"
else
    printf 'Not pinned: the server and the load generator share every CPU\n' >"$RES/pinning.txt"
fi
skip() {
    log "skipping $1: $2"
    printf '%s: %s\n' "$1" "$2" >>"$SKIPPED"
}
note() {
    log "$1: $2"
    printf '%s: %s\n' "$1" "$2" >>"$NOTES"
}
# Each server runs from a private copy of its binary, so that a rebuild
# during the run cannot change what is measured.
RUN_BIN="$HERE/.cache/run"
mkdir -p "$RUN_BIN"

# --- build the load generator and the ceiling server -------------------------
export CARGO_TARGET_DIR="$HERE/target"
log "building loadgen and ceiling (release)"
if ! nice cargo build --release --quiet --manifest-path "$HERE/Cargo.toml"; then
    log "cannot build the load generator"
    exit 1
fi
LOADGEN="$CARGO_TARGET_DIR/release/loadgen"
CEILING="$CARGO_TARGET_DIR/release/ceiling"
unset CARGO_TARGET_DIR

# --- charts need gnuplot -------------------------------------------------------
case "$SCENARIO" in
    fleet | park | capacity)
        if ! command -v gnuplot >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
            log "installing gnuplot-nox for the chart"
            export DEBIAN_FRONTEND=noninteractive
            apt-get install -y -qq gnuplot-nox >/dev/null 2>&1 ||
                { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq gnuplot-nox >/dev/null 2>&1; } ||
                log "gnuplot could not be installed; summary.md will have no chart"
        fi
        ;;
esac

# --- target binaries -----------------------------------------------------------
build_ours() {
    if [ -n "$OURS_BIN_GIVEN" ]; then
        OURS_BIN="$OURS_BIN_GIVEN"
        note ours "binary given with --ours-bin: $OURS_BIN"
        [ -x "$OURS_BIN" ] && return 0
        echo "--ours-bin $OURS_BIN is not an executable" >"$RES/build-ours.log"
        return 1
    fi
    log "building our server (cargo build --release in the repository root)"
    if (cd "$ROOT" && nice cargo build --release --bin discovery) >"$RES/build-ours.log" 2>&1; then
        OURS_BIN="$ROOT/target/release/discovery"
        [ -x "$OURS_BIN" ] && return 0
        echo "binary $OURS_BIN not found after the build" >>"$RES/build-ours.log"
    fi
    return 1
}

build_go() {
    GO_BIN_DIR="$HERE/.cache/go/bin"
    GO_BIN="$GO_BIN_DIR/discovery"
    if [ -x "$GO_BIN" ] && [ -f "$GO_BIN_DIR/.version" ] &&
        [ "$(cat "$GO_BIN_DIR/.version")" = "$GO_VERSION" ]; then
        return 0
    fi
    if ! command -v go >/dev/null 2>&1; then
        GO_WHY="no Go toolchain on PATH"
        return 1
    fi
    mkdir -p "$GO_BIN_DIR"
    local logf="$RES/build-go.log"
    log "building the Go original: go install $GO_MODULE/cmd/discovery@$GO_VERSION"
    if GOBIN="$GO_BIN_DIR" nice go install "$GO_MODULE/cmd/discovery@$GO_VERSION" >"$logf" 2>&1; then
        echo "$GO_VERSION" >"$GO_BIN_DIR/.version"
        return 0
    fi
    # `go install mod@version` also asks the proxy for the module's version
    # list; when that is refused, build the same version from a throwaway
    # module that requires it.
    log "go install failed; building $GO_VERSION through a throwaway module"
    local mod="$HERE/.cache/go/build"
    mkdir -p "$mod"
    cat >"$mod/go.mod" <<EOF
module loadtest/gobuild

go 1.12

require $GO_MODULE $GO_VERSION
EOF
    printf 'package main\n' >"$mod/main.go"
    if (cd "$mod" && GOFLAGS=-mod=mod nice go build -o "$GO_BIN" "$GO_MODULE/cmd/discovery") >>"$logf" 2>&1; then
        echo "$GO_VERSION" >"$GO_BIN_DIR/.version"
        return 0
    fi
    GO_WHY="cannot build $GO_MODULE@$GO_VERSION: $(tail -n 3 "$logf" | tr '\n' ' ')"
    return 1
}

# Debian's nginx, from PATH or /usr/sbin; installed with apt-get when missing.
find_nginx() {
    NGINX_BIN="$(command -v nginx 2>/dev/null)"
    [ -z "$NGINX_BIN" ] && [ -x /usr/sbin/nginx ] && NGINX_BIN=/usr/sbin/nginx
    [ -n "$NGINX_BIN" ]
}
ensure_nginx() {
    find_nginx && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        NGINX_WHY="nginx is not installed and there is no apt-get to install it"
        return 1
    fi
    log "installing Debian's nginx (apt-get install nginx-light)"
    local logf="$RES/install-nginx.log" pkg
    export DEBIAN_FRONTEND=noninteractive
    for pkg in nginx-light nginx; do
        if apt-get install -y -qq "$pkg" >>"$logf" 2>&1 ||
            { apt-get update -qq >>"$logf" 2>&1 && apt-get install -y -qq "$pkg" >>"$logf" 2>&1; }; then
            break
        fi
    done
    find_nginx && return 0
    NGINX_WHY="nginx is not installed and apt-get could not install it: $(tail -n 1 "$logf")"
    return 1
}

# The bytes the ceiling and nginx answer with, made once per run.
make_body() {
    [ -s "$RES/body.json" ] && return 0
    "$LOADGEN" body "$SCENARIO" "${ARGS[@]}" --out "$RES/body.json" 2>"$RES/body.log"
}

# nginx serves body.json for every URI. The static module answers a POST with
# 405, so that answer is turned into the file again (as a GET) with status 200.
write_nginx_conf() { # dir port workers
    local dir="$1" temp="" name nofile
    nofile="$(ulimit -n)"
    mkdir -p "$dir/root" "$dir/temp"
    cp -f "$RES/body.json" "$dir/root/body.json"
    # The temp paths compiled into the binary point at /var/lib/nginx: move
    # every one this build has into the run's directory.
    for name in client_body proxy fastcgi uwsgi scgi; do
        if "$NGINX_BIN" -V 2>&1 | grep -q -- "--http-${name//_/-}-temp-path="; then
            temp+="    ${name}_temp_path \"$dir/temp/$name\";"$'\n'
        fi
    done
    cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $3;
worker_rlimit_nofile $nofile;
pid "$dir/nginx.pid";
error_log "$dir/error.log" warn;

# nginx allocates every connection slot up front.
events {
    worker_connections $((nofile > 65535 ? 65535 : nofile));
}

http {
    access_log off;
$temp    types { }
    default_type "application/json; charset=utf-8";
    # nginx closes a keep-alive connection after 1000 requests by default;
    # the load generator's connections must stay open for the whole run.
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    open_file_cache max=16 inactive=1h;
    open_file_cache_valid 1h;

    server {
        listen 127.0.0.1:$2 reuseport backlog=4096;
        root "$dir/root";
        location / {
            try_files /body.json =404;
            error_page 405 =200 /body.json;
        }
    }
}
EOF
}

write_conf() { # dir port [driver, ours only]
    local driver="${3:-}"
    mkdir -p "$1"
    cat >"$1/discovery.toml" <<EOF
nodes = ["127.0.0.1:$2"]
enableprotect = false

[env]
region = "sh"
zone = "sh001"
host = "loadtest"
DeployEnv = "dev"

[httpServer]
addr = "127.0.0.1:$2"
timeout = "40s"
${driver:+driver = \"$driver\"}

[httpClient]
dial = "1s"
keepAlive = "120s"
timeout = "40s"

[log]
stdout = false
EOF
}

SERVER_PID=""
SERVER_STATUS=""
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        wait "$SERVER_PID" 2>/dev/null
        SERVER_STATUS=$?
        SERVER_PID=""
        return 0
    fi
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        log "server $SERVER_PID did not stop on SIGTERM; killing it"
        kill -KILL "$SERVER_PID" 2>/dev/null
    fi
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=""
}
trap 'stop_server' EXIT
trap 'stop_server; exit 130' INT TERM

# Notes where the threads of the server (and of its child processes: nginx's
# workers) may run at the end of its run, and whether that is what was asked.
check_pinning() { # target pid
    local pid="$2" procs p lists
    procs="$pid $(cat /proc/"$pid"/task/*/children 2>/dev/null)"
    # shellcheck disable=SC2086 # one pid a word
    lists="$(for p in $procs; do
        sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/"$p"/task/*/status 2>/dev/null
    done)"
    note "$1" "$(taskset -pc "$pid" 2>&1); $(wc -l <<<"$lists") thread(s) in $(wc -w <<<"$procs") process(es): $(sort <<<"$lists" | uniq -c | awk '{ printf "%s%d on CPUs %s", sep, $1, $2; sep = ", " }')"
    if grep -qvx -- "$SERVER_CPUS" <<<"$lists"; then
        note "$1" "NOT PINNED AS ASKED: some of its threads may run outside CPUs $SERVER_CPUS"
    fi
}

# --- run each target -----------------------------------------------------------
for t in "${TARGETS[@]}"; do
    case "$t" in
        ours)
            build_ours || { skip ours "build failed (see build-ours.log)"; continue; }
            cp -f "$OURS_BIN" "$RUN_BIN/ours-server"
            ;;
        go)
            GO_WHY=""
            build_go || { skip go "$GO_WHY"; continue; }
            cp -f "$GO_BIN" "$RUN_BIN/go-server"
            ;;
        ceiling | nginx)
            case "$SCENARIO" in
                fetch | renew) ;;
                park) if [ "$t" = nginx ]; then
                    skip nginx "answers every request at once, so it cannot hold a long poll"
                    continue
                fi ;;
                *)
                    skip "$t" "answers every request at once, so it has no meaning for $SCENARIO (long polls and registrations)"
                    continue
                    ;;
            esac
            if [ "$t" = nginx ]; then
                NGINX_WHY=""
                ensure_nginx || { skip nginx "$NGINX_WHY"; continue; }
            fi
            if ! make_body; then
                skip "$t" "cannot make the answer body: $(tail -n 1 "$RES/body.log")"
                continue
            fi
            ;;
    esac

    PORT="$("$LOADGEN" free-port)"
    CONF="$RES/conf-$t"
    if [ "$t" = ours ]; then
        write_conf "$CONF" "$PORT" "$OURS_DRIVER"
        [ -n "$OURS_DRIVER" ] && note ours "[httpServer] driver = \"$OURS_DRIVER\" (--ours-driver)"
    else
        write_conf "$CONF" "$PORT"
    fi
    # Pinned, each server gets as many threads (nginx: worker processes) as CPUs.
    THREAD_ARGS=()
    GOMAX=()
    WORKERS=auto
    if [ -n "$SERVER_THREADS" ]; then
        case "$t" in
            ours) THREAD_ARGS=(-threads "$SERVER_THREADS") ;;
            go) GOMAX=("GOMAXPROCS=$SERVER_THREADS") ;;
            ceiling) THREAD_ARGS=(--threads "$SERVER_THREADS") ;;
            nginx) WORKERS="$SERVER_THREADS" ;;
        esac
    fi
    log "$t: starting on 127.0.0.1:$PORT"
    case "$t" in
        ours)
            RUST_LOG=warn "${PIN_SERVER[@]}" "$RUN_BIN/ours-server" -conf "$CONF" "${THREAD_ARGS[@]}" \
                >"$RES/$t-server.log" 2>&1 &
            ;;
        go)
            env "${GOMAX[@]}" DEPLOY_ENV=dev ZONE=sh001 REGION=sh HOSTNAME=loadtest \
                "${PIN_SERVER[@]}" "$RUN_BIN/go-server" -conf "$CONF" >"$RES/$t-server.log" 2>&1 &
            ;;
        ceiling)
            PARK_ARGS=()
            [ "$SCENARIO" = park ] && PARK_ARGS=(--park)
            "${PIN_SERVER[@]}" "$CEILING" --addr "127.0.0.1:$PORT" --body "$RES/body.json" \
                --max-lifetime 3h "${THREAD_ARGS[@]}" "${PARK_ARGS[@]}" >"$RES/$t-server.log" 2>&1 &
            ;;
        nginx)
            write_nginx_conf "$CONF" "$PORT" "$WORKERS"
            "${PIN_SERVER[@]}" "$NGINX_BIN" -p "$CONF/" -c "$CONF/nginx.conf" -e "$CONF/error.log" \
                >"$RES/$t-server.log" 2>&1 &
            ;;
    esac
    SERVER_PID=$!
    if ! "$LOADGEN" wait-ready --addr "127.0.0.1:$PORT" --timeout 30s --pid "$SERVER_PID"; then
        skip "$t" "not ready (see $t-server.log)"
        stop_server
        continue
    fi
    log "$t: ready (pid $SERVER_PID); running $SCENARIO"
    if ! "${PIN_LOAD[@]}" "$LOADGEN" "$SCENARIO" --addr "127.0.0.1:$PORT" --server-pid "$SERVER_PID" \
        --label "$t" --out "$RES/$t.json" "${LOAD_THREAD_ARGS[@]}" "${ARGS[@]}" \
        2> >(tee "$RES/$t-loadgen.log" >&2); then
        skip "$t" "the scenario failed (see $t-loadgen.log)"
    fi
    if [ -n "$SERVER_CPUS" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        check_pinning "$t" "$SERVER_PID"
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        stop_server
        if [ "${SERVER_STATUS:-0}" -gt 128 ]; then
            how="was ended by signal $((SERVER_STATUS - 128))"
        else
            how="exited with status ${SERVER_STATUS:-?}"
        fi
        note "$t" "the server $how during the run, so its figures are not valid (see $t-server.log)"
    fi
    stop_server
done

"$LOADGEN" report --dir "$RES" --scenario "$SCENARIO" >/dev/null || log "report failed"
log "results: $RES"
[ -f "$RES/summary.md" ] && cat "$RES/summary.md"
exit 0
