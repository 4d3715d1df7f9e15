#!/usr/bin/env bash
# Fault suite: partitions, one-way cuts, delay, resets, 413s, short batch answers, SIGKILL,
# SIGSTOP and clock skew against a real cluster, with a workload running, then checks of what
# every node holds.
#
#   tests/faults/run.sh            short profile (a few minutes; what CI runs)
#   tests/faults/run.sh --long     each fault held for minutes
#   tests/faults/run.sh --only zone-partition,kill   only those phases (final checks still run)
#
# Two clusters run one after the other: five nodes of ours (three in zone sh001, two in sh002),
# then the same with the Go original (v1.2.0) as the third node of sh001. Needs root: each node
# runs under its own uid so that nftables can cut its links (table `discovery_faults`, deleted
# at the end), and nftables and faketime are installed with apt-get when missing. Ends with
# "N passed, M failed" (exit status 1 if M > 0). Logs and the request log of each run are kept
# in .cache/ beside this script.

set -u
cd "$(dirname "$0")"
HERE=$PWD
ROOT=$(cd ../.. && pwd)
CACHE=$HERE/.cache
GO_DISCOVERY=github.com/bilibili/discovery
GO_DISCOVERY_VERSION=v1.2.0
NFT_TABLE=discovery_faults

# Arguments go to the suite (Go's flag package takes --long and --only as well as -long).
budget=900 # seconds per cluster run
for a in "$@"; do
    case "$a" in
    --long | -long) budget=3600 ;;
    esac
done

started=$SECONDS
phase() { echo "== $* ($((SECONDS - started))s)"; }
total_passed=0
total_failed=0
finish() {
    echo "faults: total $((SECONDS - started))s"
    echo "$total_passed passed, $total_failed failed"
    [ "$total_failed" -eq 0 ]
    exit
}

if [ "$(id -u)" -ne 0 ]; then
    echo "faults: must run as root (nodes under their own uids, nftables rules)"
    total_failed=1
    finish
fi

run_pid=
cleanup() {
    if [ -n "$run_pid" ]; then
        kill -TERM -- "-$run_pid" 2>/dev/null
        sleep 1
        kill -KILL -- "-$run_pid" 2>/dev/null
    fi
    # Nodes run in process groups of their own and die with the suite (parent-death signal);
    # end any that outlived it, by the pids the suite recorded.
    for f in "$CACHE"/run-*/pids; do
        [ -f "$f" ] || continue
        while read -r pid; do
            kill -KILL -- "-$pid" 2>/dev/null
        done <"$f"
    done
    nft delete table ip "$NFT_TABLE" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools ----------------------------------------------------------------------------------
if ! command -v nft >/dev/null || [ ! -e /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ]; then
    phase "apt-get install nftables faketime"
    (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nftables faketime) >/dev/null ||
        { echo "faults: could not install nftables and faketime"; total_failed=1; finish; }
fi

mkdir -p "$CACHE/bin"
# --- our server -------------------------------------------------------------------------------
phase "cargo build (our server)"
if ! (cd "$ROOT" && timeout 1800 cargo build --bin discovery); then
    echo "faults: cargo build failed"
    total_failed=1
    finish
fi
target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
cp "$target_dir/debug/discovery" "$CACHE/bin/discovery-rs"
chmod 755 "$CACHE" "$CACHE/bin" "$CACHE/bin/discovery-rs"

# --- the Go original --------------------------------------------------------------------------
if [ ! -x "$CACHE/bin/discovery-go" ]; then
    phase "go build $GO_DISCOVERY/cmd/discovery@$GO_DISCOVERY_VERSION"
    # `go install pkg@version` is refused by the proxy here (it asks for the version list):
    # download the module through a throwaway module and build it with its own go.mod.
    scratch=$(mktemp -d)
    mod_dir=$(cd "$scratch" && go mod init faults.scratch >/dev/null 2>&1 &&
        timeout 600 go mod download -json "$GO_DISCOVERY@$GO_DISCOVERY_VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
    rm -rf "$scratch"
    if [ -z "$mod_dir" ] || ! (cd "$mod_dir" && timeout 600 go build -o "$CACHE/bin/discovery-go" ./cmd/discovery); then
        echo "faults: could not build the Go original; the mixed cluster run will fail"
        rm -f "$CACHE/bin/discovery-go"
    fi
fi

# --- the suite ----------------------------------------------------------------------------------
phase "go build (suite)"
if ! go build -o "$CACHE/bin/faults" .; then
    echo "faults: the suite does not build"
    total_failed=1
    finish
fi

run_cluster() { # name, extra flags...
    local name=$1
    shift
    local dir=$CACHE/run-$name
    rm -rf "$dir"
    mkdir -p "$dir"
    chmod 755 "$dir"
    local log=$dir/suite.log
    : >"$log" # before tail opens it
    phase "cluster: $name"
    setsid timeout "$budget" "$CACHE/bin/faults" -dir "$dir" -ours "$CACHE/bin/discovery-rs" "$@" >"$log" 2>&1 &
    run_pid=$!
    tail -n +1 -f --pid="$run_pid" "$log" &
    local tail_pid=$!
    wait "$run_pid"
    local status=$?
    run_pid=
    wait "$tail_pid"
    local line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "faults: $name run ended without a result (status $status; see $log)"
        total_failed=$((total_failed + 1))
        return
    fi
    total_passed=$((total_passed + ${line%% passed*}))
    local f=${line#*, }
    total_failed=$((total_failed + ${f%% failed}))
}

run_cluster ours "$@"
if [ -x "$CACHE/bin/discovery-go" ]; then
    run_cluster mixed -mixed -go "$CACHE/bin/discovery-go" "$@"
else
    total_failed=$((total_failed + 1))
fi
finish
