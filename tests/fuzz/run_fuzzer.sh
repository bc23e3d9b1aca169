#!/bin/sh
# Runs one fuzz target: first every saved regression input (each must pass),
# then a short fuzzing run from the seed corpus. New inputs go to a scratch
# corpus in the build directory, never into the source tree. A finding exits 1
# (libFuzzer's own default, 77, is what Meson reads as a skipped test).
# Usage: run_fuzzer.sh FUZZER SOURCE_DIR WORK_DIR [libFuzzer flags...]
set -eu
fuzzer=$1 src=$2 work=$3
shift 3
name=$(basename "$fuzzer")
mkdir -p "$work/corpus" "$work/artifacts"
if [ -d "$src/regressions/$name" ] && [ -n "$(ls -A "$src/regressions/$name")" ]; then
  "$fuzzer" -error_exitcode=1 "$src/regressions/$name"/*
fi
exec "$fuzzer" -error_exitcode=1 -artifact_prefix="$work/artifacts/" "$@" "$work/corpus" "$src/corpus/$name"
