#!/usr/bin/env bash
# Runs one load scenario against our server, the Go original and/or the
# ceiling server, each started on a free loopback port, and writes
# results/<timestamp>-<scenario>/ with one JSON per target, summary.md and,
# for fleet, park and capacity, chart.svg.
#
#   loadtest/run.sh <fetch|renew|fleet|park|capacity> [--target ours|go|ceiling|all|a,b]
#                   [scenario flags...]
#
# Scenario flags are passed to `loadgen <scenario>` unchanged (see README.md).
# `loadtest/run.sh soak [--duration 30m]` runs soak.sh (a long fleet, sampled for drift).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
GO_MODULE="github.com/bilibili/discovery"
GO_VERSION="v1.2.0"

usage() {
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
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
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --target) TARGET="${2:-}"; shift 2 || usage ;;
        --target=*) TARGET="${1#*=}"; shift ;;
        *) ARGS+=("$1"); shift ;;
    esac
done

TARGETS=()
IFS=',' read -r -a REQUESTED <<<"$TARGET"
for t in "${REQUESTED[@]}"; do
    case "$t" in
        all) TARGETS+=(ours go ceiling) ;;
        ours | go | ceiling) TARGETS+=("$t") ;;
        *) log "unknown target '$t' (ours, go, ceiling, all)"; exit 2 ;;
    esac
done

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

write_conf() { # dir port
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
    local i
    for i in $(seq 1 100); do
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
        ceiling)
            case "$SCENARIO" in
                fetch | renew) ;;
                *)
                    skip ceiling "answers every request at once, so it has no meaning for $SCENARIO (long polls and registrations)"
                    continue
                    ;;
            esac
            if ! "$LOADGEN" body "$SCENARIO" "${ARGS[@]}" --out "$RES/ceiling-body.json" 2>"$RES/ceiling-body.log"; then
                skip ceiling "cannot make the answer body: $(tail -n 1 "$RES/ceiling-body.log")"
                continue
            fi
            ;;
    esac

    PORT="$("$LOADGEN" free-port)"
    CONF="$RES/conf-$t"
    write_conf "$CONF" "$PORT"
    log "$t: starting on 127.0.0.1:$PORT"
    case "$t" in
        ours)
            RUST_LOG=warn "$RUN_BIN/ours-server" -conf "$CONF" >"$RES/$t-server.log" 2>&1 &
            ;;
        go)
            DEPLOY_ENV=dev ZONE=sh001 REGION=sh HOSTNAME=loadtest \
                "$RUN_BIN/go-server" -conf "$CONF" >"$RES/$t-server.log" 2>&1 &
            ;;
        ceiling)
            "$CEILING" --addr "127.0.0.1:$PORT" --body "$RES/ceiling-body.json" \
                --max-lifetime 3h >"$RES/$t-server.log" 2>&1 &
            ;;
    esac
    SERVER_PID=$!
    if ! "$LOADGEN" wait-ready --addr "127.0.0.1:$PORT" --timeout 30s --pid "$SERVER_PID"; then
        skip "$t" "not ready (see $t-server.log)"
        stop_server
        continue
    fi
    log "$t: ready (pid $SERVER_PID); running $SCENARIO"
    if ! "$LOADGEN" "$SCENARIO" --addr "127.0.0.1:$PORT" --server-pid "$SERVER_PID" \
        --label "$t" --out "$RES/$t.json" "${ARGS[@]}" 2> >(tee "$RES/$t-loadgen.log" >&2); then
        skip "$t" "the scenario failed (see $t-loadgen.log)"
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
