#!/usr/bin/env bash
# Interop tests: real clients and the Go original's node against our server.
#
#   tests/interop/run.sh            build everything, run all tests
#   tests/interop/run.sh -run SDK   extra arguments go to `go test`
#
# Builds our server (cargo, debug) and the Go original (bilibili/discovery
# v1.2.0), runs the Go tests in this directory, then our client crate's
# end-to-end tests (tests/sdk.rs) against the Go original, stops every process
# it started and ends with a line "N passed, M failed" (exit status 1 if M > 0).
# Build outputs and node logs go to .cache/ beside this script.

set -u
cd "$(dirname "$0")"
HERE=$PWD
ROOT=$(cd ../.. && pwd)
CACHE=$HERE/.cache
GO_DISCOVERY=github.com/bilibili/discovery
GO_DISCOVERY_VERSION=v1.2.0
TEST_TIMEOUT=${INTEROP_TEST_TIMEOUT:-420}   # seconds for the whole go test run

mkdir -p "$CACHE/bin"
rm -rf "$CACHE/logs"
mkdir -p "$CACHE/logs"

test_pid=
cleanup() {
    # go test runs as its own process group (setsid); end it with every node it started.
    if [ -n "$test_pid" ]; then
        kill -TERM -- "-$test_pid" 2>/dev/null
        sleep 1
        kill -KILL -- "-$test_pid" 2>/dev/null
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

started=$SECONDS
phase() { echo "== $* ($((SECONDS - started))s)"; }

finish() { # passed failed [skipped]
    echo "interop: total $((SECONDS - started))s"
    if [ "${3:-0}" -gt 0 ]; then
        echo "$1 passed, $2 failed, $3 skipped"
    else
        echo "$1 passed, $2 failed"
    fi
    [ "$2" -eq 0 ]
    exit
}

# --- our server -----------------------------------------------------------
phase "cargo build (our server)"
if ! (cd "$ROOT" && timeout 1800 cargo build --bin discovery); then
    echo "interop: cargo build failed"
    finish 0 1
fi
target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
# A private copy: the restart tests start the binary again, and a rebuild in
# the work tree meanwhile must not swap it under them.
cp "$target_dir/debug/discovery" "$CACHE/bin/discovery-rs"

# --- the Go original -------------------------------------------------------
phase "go build $GO_DISCOVERY/cmd/discovery@$GO_DISCOVERY_VERSION"
go_node_ok=0
if GOBIN="$CACHE/bin/install" timeout 600 go install "$GO_DISCOVERY/cmd/discovery@$GO_DISCOVERY_VERSION"; then
    mv "$CACHE/bin/install/discovery" "$CACHE/bin/discovery-go" && go_node_ok=1
else
    # `go install pkg@version` also asks the proxy for the module's version
    # list (deprecation check); a proxy that refuses that list makes it fail.
    # Same build without that request: the module's own go.mod, in its own tree.
    echo "interop: go install failed; building from the downloaded module instead"
    mod_dir=$(timeout 600 go mod download -json "$GO_DISCOVERY@$GO_DISCOVERY_VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
    if [ -n "$mod_dir" ] &&
        (cd "$mod_dir" && timeout 600 go build -o "$CACHE/bin/discovery-go" ./cmd/discovery); then
        go_node_ok=1
    fi
fi
if [ "$go_node_ok" != 1 ]; then
    echo "interop: could not build the Go original; the mixed-cluster test will fail"
    rm -f "$CACHE/bin/discovery-go"
fi

# --- tests -----------------------------------------------------------------
phase "go test"
log=$CACHE/logs/go-test.log
export DISCOVERY_RS_BIN=$CACHE/bin/discovery-rs
export DISCOVERY_GO_BIN=$CACHE/bin/discovery-go
export INTEROP_LOG_DIR=$CACHE/logs
: >"$log"
setsid timeout "$TEST_TIMEOUT" go test -count=1 -v -parallel 4 -timeout "$((TEST_TIMEOUT - 20))s" . "$@" >"$log" 2>&1 &
test_pid=$!
tail -n +1 -f --pid="$test_pid" "$log" &
tail_pid=$!
wait "$test_pid"
status=$?
test_pid=
wait "$tail_pid"
phase "results"

# Count leaf tests (a test with subtests counts through its subtests).
read -r passed failed skipped < <(awk '
    /^[[:space:]]*--- (PASS|FAIL|SKIP): / { result[$3] = $2 }
    END {
        for (name in result) {
            leaf = 1
            for (other in result) if (index(other, name "/") == 1) { leaf = 0; break }
            if (!leaf) continue
            if (result[name] == "PASS:") p++; else if (result[name] == "FAIL:") f++; else s++
        }
        printf "%d %d %d\n", p, f, s
    }' "$log")
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    echo "interop: go test exited with status $status (build error, panic or time-out; see $log)"
    failed=1
fi

# --- our Rust client crate against the Go original ---------------------------
# The end-to-end tests of client/ (tests/sdk.rs) again, with the Go original's
# binary as every node; each test counts as one.
phase "cargo test --test sdk against the Go original"
sdk_log=$CACHE/logs/sdk-go.log
if [ "$go_node_ok" = 1 ]; then
    SDK_TEST_SERVER_BIN=$CACHE/bin/discovery-go setsid timeout "$TEST_TIMEOUT" \
        cargo test --manifest-path "$ROOT/Cargo.toml" --test sdk >"$sdk_log" 2>&1 &
    test_pid=$!
    wait "$test_pid"
    sdk_status=$?
    test_pid=
    grep -E '^test |panicked|^test result' "$sdk_log"
    read -r sdk_passed sdk_failed < <(sed -n \
        's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$sdk_log" | tail -n 1)
    passed=$((passed + ${sdk_passed:-0}))
    failed=$((failed + ${sdk_failed:-0}))
    if [ "$sdk_status" -ne 0 ] && [ "${sdk_failed:-0}" -eq 0 ]; then
        echo "interop: cargo test --test sdk exited with status $sdk_status (see $sdk_log)"
        failed=$((failed + 1))
    fi
else
    echo "interop: no Go original binary; the client tests against it count as one failure"
    failed=$((failed + 1))
fi
finish "$passed" "$failed" "$skipped"
