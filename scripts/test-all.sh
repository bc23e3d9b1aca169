#!/usr/bin/env bash
# Builds fsc from scratch and runs every test suite (C, bindings, CLI), then
# prints one line "N passed, M failed" adding up every test case.
#   BUILD_DIR   build directory (default: build-test)
#   MESON_ARGS  extra arguments for meson setup (e.g. -Db_sanitize=address,undefined)
#   SUITES      meson test --suite arguments (default: all)
#   MESON_TEST_ARGS  more meson test arguments (e.g. --wrapper)
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
build=${BUILD_DIR:-build-test}
rm -rf "$build"
# shellcheck disable=SC2086
meson setup "$build" ${MESON_ARGS:-} >/dev/null || { echo "meson setup failed"; echo "0 passed, 1 failed"; exit 1; }
ninja -C "$build" || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
suite_args=()
for s in ${SUITES:-}; do suite_args+=(--suite "$s"); done
# shellcheck disable=SC2086
meson test -C "$build" --print-errorlogs "${suite_args[@]}" ${MESON_TEST_ARGS:-}
rc=$?
# The log is named after the setup or wrapper in use: take the newest.
log=$(ls -t "$build"/meson-logs/testlog*.json | head -n 1)
/usr/bin/python3 scripts/summarize-tests.py "$log"
sum_rc=$?
[ $rc -eq 0 ] && [ $sum_rc -eq 0 ]
