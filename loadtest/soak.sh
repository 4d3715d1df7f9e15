#!/usr/bin/env bash
# A long run of a production-like fleet (registers, renews, churn, long-polls) against one
# server, sampling it every few seconds, to show that nothing drifts: memory, file descriptors,
# CPU and tail latency.
#
#   loadtest/run.sh soak [--duration 30m] [--instances 20000] [--consumers 200] [--target ours|go]
#
# Every --interval (5 s) it records the server's RSS (/proc/<pid>/status), open fds
# (/proc/<pid>/fd), CPU share, and — for our server — the renew and polls p99 over the last
# interval from the latency histograms in /metrics. Writes samples.tsv, soak.svg (gnuplot) and
# summary.md under loadtest/results/soak-<time>/, and fails (exit 1) when, after the warm-up
# (the first fifth of the run):
#   - RSS grows by more than 5 %,
#   - open fds grow (by more than 2 % + 10),
#   - the renew p99 of the last quarter is more than twice that of the first quarter
#     (and above 1 ms: sub-millisecond wobble is noise).
# The server and the load generator are stopped when it ends; every loop is bounded by the
# duration.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DURATION=30m INSTANCES=20000 CONSUMERS=200 INTERVAL=5 TARGET=ours
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=$2; shift 2 ;;
        --instances) INSTANCES=$2; shift 2 ;;
        --consumers) CONSUMERS=$2; shift 2 ;;
        --interval) INTERVAL=$2; shift 2 ;;
        --target) TARGET=$2; shift 2 ;;
        *) echo "soak: unknown argument $1" >&2; exit 2 ;;
    esac
done
log() { printf '[soak] %s\n' "$*" >&2; }
seconds() { # 30m, 90s, 2h, or plain seconds
    case "$1" in
        *h) echo $(( ${1%h} * 3600 )) ;;
        *m) echo $(( ${1%m} * 60 )) ;;
        *s) echo "${1%s}" ;;
        *) echo "$1" ;;
    esac
}
TOTAL=$(seconds "$DURATION")
RES="$HERE/results/soak-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RES"

log "building the load generator and the server"
(cd "$HERE" && cargo build --release -q --bin loadgen) || exit 1
LOADGEN="$HERE/target/release/loadgen"
case "$TARGET" in
    ours)
        (cd "$ROOT" && cargo build --release -q --bin discovery) || exit 1
        BIN="$RES/ours-server"; cp "$ROOT/target/release/discovery" "$BIN" ;;
    go)
        BIN=$(ls "$HERE"/.cache/bin/discovery-go 2>/dev/null || true)
        [ -x "$BIN" ] || { log "build the Go original first: loadtest/run.sh fetch --target go"; exit 1; } ;;
    *) log "unknown target $TARGET"; exit 2 ;;
esac

PORT=$("$LOADGEN" free-port)
mkdir -p "$RES/conf"
cat >"$RES/conf/discovery.toml" <<CONF
nodes = ["127.0.0.1:$PORT"]
enableprotect = false
[env]
region = "sh"
zone = "sh001"
host = "soak"
DeployEnv = "dev"
[httpServer]
addr = "127.0.0.1:$PORT"
[log]
stdout = false
CONF
ulimit -n "$(ulimit -Hn)" 2>/dev/null
RUST_LOG=warn "$BIN" -conf "$RES/conf" >"$RES/server.log" 2>&1 &
SERVER=$!
GEN=""
cleanup() {
    [ -n "$GEN" ] && kill "$GEN" 2>/dev/null
    kill -TERM "$SERVER" 2>/dev/null
    wait "$SERVER" 2>/dev/null
}
trap cleanup EXIT
"$LOADGEN" wait-ready --addr "127.0.0.1:$PORT" --timeout 30s --pid "$SERVER" || { log "server not ready"; exit 1; }

log "fleet of $INSTANCES instances, $CONSUMERS consumers, for $DURATION (results in $RES)"
"$LOADGEN" fleet --addr "127.0.0.1:$PORT" --server-pid "$SERVER" --label "$TARGET" \
    --instances "$INSTANCES" --renew-interval 10s --consumers "$CONSUMERS" --watch 5 \
    --churn 20/s --duration "${TOTAL}s" --quiet --out "$RES/fleet.json" >"$RES/fleet.log" 2>&1 &
GEN=$!

# p99 in ms of one endpoint over the interval, from two scrapes of its histogram.
p99() { # endpoint before after
    awk -v ep="endpoint=\"$1\"" '
        FNR == NR { if (index($0, "discovery_endpoint_duration_seconds_bucket{") == 1 && index($0, ep)) { le = $0; sub(/.*le="/, "", le); sub(/".*/, "", le); prev[le] = $NF }; next }
        index($0, "discovery_endpoint_duration_seconds_bucket{") == 1 && index($0, ep) {
            le = $0; sub(/.*le="/, "", le); sub(/".*/, "", le); n++; bound[n] = le; count[n] = $NF - prev[le]
        }
        END {
            if (n == 0 || count[n] <= 0) { print "nan"; exit }
            for (i = 1; i <= n; i++) if (count[i] >= 0.99 * count[n]) { print (bound[i] == "+Inf" ? "inf" : bound[i] * 1000); exit }
        }' "$2" "$3"
}
ticks=$(( TOTAL / INTERVAL ))
clk=$(getconf CLK_TCK)
printf 't_s\trss_kb\tfds\tcpu_pct\trenew_p99_ms\tpolls_p99_ms\n' >"$RES/samples.tsv"
prev_cpu=$(awk '{print $14+$15}' /proc/$SERVER/stat)
curl -s "127.0.0.1:$PORT/metrics" >"$RES/.m0" 2>/dev/null
for i in $(seq 1 "$ticks"); do
    sleep "$INTERVAL"
    kill -0 "$SERVER" 2>/dev/null || { log "the server exited during the soak"; exit 1; }
    rss=$(awk '/^VmRSS/ {print $2}' /proc/$SERVER/status)
    fds=$(ls /proc/$SERVER/fd | wc -l)
    cpu=$(awk '{print $14+$15}' /proc/$SERVER/stat)
    pct=$(( (cpu - prev_cpu) * 100 / clk / INTERVAL )); prev_cpu=$cpu
    if [ "$TARGET" = ours ]; then
        curl -s "127.0.0.1:$PORT/metrics" >"$RES/.m1" 2>/dev/null
        r99=$(p99 renew "$RES/.m0" "$RES/.m1"); p99p=$(p99 polls "$RES/.m0" "$RES/.m1")
        mv "$RES/.m1" "$RES/.m0"
    else
        r99=nan; p99p=nan
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' $((i * INTERVAL)) "$rss" "$fds" "$pct" "$r99" "$p99p" >>"$RES/samples.tsv"
done
wait "$GEN"; GEN=""

verdict=$(awk -F'\t' -v n="$ticks" '
    NR == 1 { next }
    { k++; rss[k] = $2; fds[k] = $3; p[k] = $5 }
    END {
        w = int(k / 5); if (w < 1) w = 1
        base = rss[w]; maxr = base; for (i = w; i <= k; i++) if (rss[i] > maxr) maxr = rss[i]
        growth = (maxr - base) * 100 / base
        fbase = fds[w]; flast = fds[k]
        q = int((k - w) / 4); if (q < 1) q = 1
        a = 0; an = 0; for (i = w + 1; i <= w + q; i++) if (p[i] != "nan" && p[i] != "inf") { a += p[i]; an++ }
        b = 0; bn = 0; for (i = k - q + 1; i <= k; i++) if (p[i] != "nan" && p[i] != "inf") { b += p[i]; bn++ }
        first = an ? a / an : 0; last = bn ? b / bn : 0
        fail = ""
        if (growth > 5) fail = fail sprintf(" RSS grew %.1f%% after warm-up;", growth)
        if (flast > fbase * 1.02 + 10) fail = fail sprintf(" open fds grew from %d to %d;", fbase, flast)
        if (last > 2 * first && last > 1) fail = fail sprintf(" renew p99 climbed from %.2f to %.2f ms;", first, last)
        printf "%s|%.1f|%d|%d|%.2f|%.2f\n", (fail == "" ? "PASS" : "FAIL:" fail), growth, fbase, flast, first, last
    }' "$RES/samples.tsv")
status=${verdict%%|*}
IFS='|' read -r _ growth fbase flast first last <<<"$verdict"
if command -v gnuplot >/dev/null; then
    gnuplot <<PLOT 2>/dev/null
set terminal svg size 1000,700 dynamic
set output "$RES/soak.svg"
set multiplot layout 3,1 title "soak: $TARGET, $INSTANCES instances, $CONSUMERS consumers, $DURATION"
set xlabel "seconds"
set datafile separator "\t"
set ylabel "RSS (MiB)"
plot "$RES/samples.tsv" using 1:(\$2/1024) every ::1 with lines title "RSS"
set ylabel "open fds"
plot "$RES/samples.tsv" using 1:3 every ::1 with lines title "fds"
set ylabel "p99 (ms)"
plot "$RES/samples.tsv" using 1:5 every ::1 with lines title "renew", "" using 1:6 every ::1 with lines title "polls"
unset multiplot
PLOT
fi
{
    echo "# Soak: $TARGET, $INSTANCES instances, $CONSUMERS consumers, $DURATION"
    echo
    echo "| after warm-up | figure |"
    echo "|---|---:|"
    echo "| RSS growth | ${growth} % |"
    echo "| open fds | ${fbase} → ${flast} |"
    echo "| renew p99, first → last quarter | ${first} → ${last} ms |"
    echo
    echo "Verdict: $status"
    echo
    echo "Samples every ${INTERVAL} s in samples.tsv; chart in soak.svg; the fleet's own report in fleet.json."
} >"$RES/summary.md"
cat "$RES/summary.md"
[ "$status" = PASS ]
