#!/usr/bin/env bash
# Runs dogpile_filesystem's own test suite against fsc's dogpile backends.
#   SEED_SRC=/path/to/dogpile_filesystem-checkout bash bindings/python/tests/seed/run_seed_suite.sh [pytest args]
# Copies the seed's tests/ (and pytest.ini, which turns warnings into errors)
# to a temp dir, renames only the backends (paylogic.* -> fsc.*), and runs
# them with /usr/bin/python3 on the build in $BUILD (default: build). The
# deselected tests read dogpile_filesystem's file layout, patch its private
# classes; bindings/python/README.md
# says why for each and which test of fsc's own covers it.
set -euo pipefail
: "${SEED_SRC:?set SEED_SRC to a checkout of dogpile_filesystem}"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
build=$(cd "$root/${BUILD:-build}" && pwd)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$SEED_SRC/tests" "$work/tests"
cp "$SEED_SRC/pytest.ini" "$work/"
sed -i -e 's/paylogic\.raw_filesystem/fsc.raw_filesystem/g' -e 's/paylogic\.filesystem/fsc.filesystem/g' \
  "$work"/tests/*.py
if grep -rn "paylogic\." "$work/tests"; then
  echo "run_seed_suite: backend names left unrenamed" >&2
  exit 1
fi

deselect=(
  # Read the seed's file layout (backend.values_dir).
  tests/test_backend.py::test_cleanup_when_size_exceeded
  tests/test_backend.py::test_cleanup_expired_keys
  tests/test_backend.py::test_no_cleanup_required
  tests/test_backend.py::test_expired_items_are_deleted
  # Patches the seed's private classes (RawFSBackend.prune, utils.remove_or_warn).
  tests/test_backend.py::test_cleanup_does_not_get_stuck_in_case_files_are_not_deletable
  # Exercise the seed's private lock registry (dogpile_filesystem.registry).
  tests/test_locking.py::test_can_acquire_n_locks
  tests/test_locking.py::test_avoid_deadlock
)
args=()
for d in "${deselect[@]}"; do args+=(--deselect "$d"); done

cd "$work"
PYTHONPATH="$here:$build/bindings/python:$root/bindings/python${PYTHONPATH:+:$PYTHONPATH}" \
LD_LIBRARY_PATH="$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
PYTHONDONTWRITEBYTECODE=1 \
  /usr/bin/python3 -m pytest -p no:cacheprovider -p fsc_seed_plugin -ra "${args[@]}" "$@" tests
