#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for the given seconds each (default 60), one after
# another, one job each. Seeds come from fuzz/seeds/<target>; what the fuzzer learns is kept in
# fuzz/corpus/<target> (not committed). A crash stops the script with the fuzzer's report and
# its input in fuzz/artifacts/<target>/. Needs the nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`).
#
#   scripts/fuzz.sh [seconds] [target...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

seconds="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

# Parameters and batches run with larger inputs, where a quadratic path blows the per-input time
# budget the targets assert. The replicate handler's own checks (one result per line, the
# answer's bound) need a few hundred lines, not those sizes: replicate_batch covers its decoders
# there.
max_len() {
  case "$1" in
    params|replicate_batch) echo 262144 ;;
    replicate_handler) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

# The replicate handler runs without AddressSanitizer: it is safe Rust on both sides, its checks
# are of results and bounds, and a batch handled line by line costs several times more under the
# sanitizer (3.7x the executions without it). Its build goes to a target directory of its own so
# that neither build evicts the other.
fuzz_flags() {
  case "$1" in
    replicate_handler) echo "-s none --target-dir target/nosan" ;;
    *) echo "" ;;
  esac
}

cargo +nightly fuzz build -O
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log="corpus/$t.log"
  echo "== fuzz $t for ${seconds}s"
  # shellcheck disable=SC2046 # the flags are words
  if ! cargo +nightly fuzz run -O $(fuzz_flags "$t") "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$seconds" -max_len="$(max_len "$t")" \
    -print_final_stats=1 >"$log" 2>&1; then
    echo "fuzz: $t failed; its report:" >&2
    grep -E -A30 'panicked|ERROR|SUMMARY' "$log" | head -60 >&2
    status=1
  fi
  grep -E '^stat::number_of_executed_units' "$log" || true
done
exit "$status"
