#!/usr/bin/env bash
# Runs a command with the AddressSanitizer runtime preloaded, for interpreters
# (python3, ruby) that load an instrumented extension: the runtime must come
# first, and libstdc++ with it (neither interpreter links it, and ASan's
# interception of C++ exceptions needs it). Leak reports are off: the
# interpreters themselves never free everything.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so.6)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
exec "$@"
