#!/usr/bin/env bash
# Runs every test (unit and integration, on the default io_uring driver), the fuzzing harness's
# unit test (built only with the `fuzzing` feature), then the integration tests again on the
# epoll driver, which monoio falls back to where io_uring is missing.
# Every run goes to the end even when a test fails; the exit status is non-zero if any failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

status=0
cargo test --no-fail-fast || status=$?
echo "== the fuzzing harness's own test (feature fuzzing)"
cargo test --no-fail-fast --lib --features fuzzing fuzzing:: || status=$?
echo "== integration tests again with MONOIO_FORCE_LEGACY_DRIVER=1 (epoll)"
MONOIO_FORCE_LEGACY_DRIVER=1 cargo test --no-fail-fast --test '*' || status=$?
exit "$status"
