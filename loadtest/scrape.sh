#!/usr/bin/env bash
# Scrapes /metrics of our server while loadtest/run.sh runs it, once a second as Prometheus
# would, until that server exits (or after 300 s). Start it beside run.sh:
#
#   loadtest/scrape.sh & loadtest/run.sh fetch --target ours --duration 5s; wait
#
# It finds the server as the process running run.sh's copy of our binary, reads the port from
# that process's config, and prints how many scrapes it made, the answer's size and the
# median and slowest scrape time.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="$HERE/.cache/run/ours-server"
LIMIT_S=300

log() { printf '[scrape.sh] %s\n' "$*" >&2; }

# The server: a process whose executable is run.sh's copy of our binary.
find_server() {
    local exe p
    for p in /proc/[0-9]*; do
        exe="$(readlink "$p/exe" 2>/dev/null)" || continue
        [ "$exe" = "$BIN" ] && { echo "${p#/proc/}"; return 0; }
    done
    return 1
}

PID=""
for _ in $(seq 1 $((LIMIT_S * 10))); do
    PID="$(find_server)" && break
    sleep 0.1
done
[ -n "$PID" ] || { log "no server running $BIN"; exit 1; }

# run.sh starts it as `ours-server -conf <dir>`; the port is in <dir>/discovery.toml.
CONF="$(tr '\0' '\n' <"/proc/$PID/cmdline" | sed -n '/^-conf$/{n;p}')"
ADDR="$(sed -n 's/^addr = "\(.*\)"/\1/p' "$CONF/discovery.toml" | head -n 1)"
[ -n "$ADDR" ] || { log "no address in $CONF/discovery.toml"; exit 1; }
log "scraping http://$ADDR/metrics every second (server pid $PID)"

# One curl process on one keep-alive connection, one scrape a second: what a Prometheus
# elsewhere costs the server, without a process start per scrape on the measured cores.
TIMES_FILE="$(mktemp)"
curl -s --rate 1/s -w '%{stderr}%{time_total} %{size_download}\n' \
    "http://$ADDR/metrics?scrape=[1-$LIMIT_S]" >/dev/null 2>"$TIMES_FILE" &
CURL=$!
while kill -0 "$PID" 2>/dev/null && kill -0 "$CURL" 2>/dev/null; do
    sleep 0.2
done
kill "$CURL" 2>/dev/null
wait "$CURL" 2>/dev/null

# Answered scrapes only (a refused connection reports size 0).
awk '$2 > 0' "$TIMES_FILE" | sort -n | awk '
    { t[NR] = $1; size = $2 }
    END {
        if (NR == 0) { print "[scrape.sh] no scrape answered"; exit 1 }
        printf "[scrape.sh] %d scrapes of %d bytes: median %.1f ms, slowest %.1f ms\n",
            NR, size, t[int((NR + 1) / 2)] * 1000, t[NR] * 1000
    }' >&2
status=$?
rm -f "$TIMES_FILE"
exit "$status"
