#!/usr/bin/env bash
# The main job: installs what is missing, builds fsc, and runs the demo of the
# cache on a real slow command (cold run, warm run, then the cache's contents).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
build=${BUILD_DIR:-build-demo}
[ -f "$build/build.ninja" ] || meson setup "$build" -Dbuildtype=release >/dev/null
ninja -C "$build" >/dev/null
exec bash scripts/demo.sh "$build/tools/fsc"
