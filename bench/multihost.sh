#!/usr/bin/env bash
# Runs bench/multihost_bench on a GlusterFS volume mounted for two "hosts"
# (tests/multihost/gluster_up.sh), beside a local directory, and always
# tears the volume down again.
#
#   bash bench/multihost.sh [multihost_bench options...]   # e.g. --ops 100
#
# Needs root (network namespaces, FUSE). Builds $BUILD_DIR (default
# build-bench, release) when its binary is missing. The volume (its brick
# included) lives in $STATE_DIR (default /dev/shm/fsc-mhbench), the
# baseline's cache in $LOCAL_DIR (default /dev/shm): both on tmpfs, so that
# the comparison is not skewed by ext4's slow creates after a mass deletion
# (bench/README.md), which each run's own cleanup causes. The
# namespaces' names are fixed, so it takes /run/fsc-multihost.lock, as the
# multihost test suite does: one volume on the machine at a time.
# Exit status: the benchmark's, or 77 when this machine cannot run the volume.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
top="$(dirname "$here")"
BUILD_DIR="${BUILD_DIR:-$top/build-bench}"
STATE_DIR="${STATE_DIR:-/dev/shm/fsc-mhbench}"
LOCAL_DIR="${LOCAL_DIR:-/dev/shm}"
mh="$top/tests/multihost"

if [ ! -x "$BUILD_DIR/bench/multihost_bench" ]; then
  if [ ! -d "$BUILD_DIR" ]; then
    meson setup "$BUILD_DIR" "$top" -Dbuildtype=release -Dtests=false -Dbindings_go=disabled \
      -Dbindings_ruby=disabled -Dbindings_lua=disabled -Dbindings_python=disabled >&2 || exit 1
  fi
  ninja -C "$BUILD_DIR" -j2 >&2 || exit 1
fi

exec 9>/run/fsc-multihost.lock
flock 9
trap 'bash "$mh/gluster_down.sh" "$STATE_DIR"' EXIT
trap 'exit 130' INT TERM
bash "$mh/gluster_up.sh" "$STATE_DIR" || exit $?
echo "GlusterFS $(glusterfs --version | head -n 1 | awk '{print $2}'), volume in $STATE_DIR" >&2
"$BUILD_DIR/bench/multihost_bench" --local "$LOCAL_DIR" --mnt-a "$STATE_DIR/mnt-a" --mnt-b "$STATE_DIR/mnt-b" "$@"
