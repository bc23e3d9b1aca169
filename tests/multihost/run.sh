#!/usr/bin/env bash
# Runs a multihost test program against a GlusterFS volume mounted for two
# "hosts": brings the volume up (gluster_up.sh), passes the program the two
# mount points, and always tears everything down again (gluster_down.sh),
# whatever the program does. Exit status: the program's, or 77 (skipped)
# when this machine cannot run the volume (not root, no FUSE, ...).
#   run.sh PROGRAM [ARGS...]
set -u
here=$(cd "$(dirname "$0")" && pwd)
state=${FSC_MULTIHOST_DIR:-/run/fsc-multihost}
# One volume at a time on this machine (the namespaces' names are fixed):
# another build's run waits here.
if [ -w /run ]; then
  exec 9>"$state.lock"
  flock 9
fi
trap 'bash "$here/gluster_down.sh" "$state"' EXIT
trap 'exit 130' INT TERM
bash "$here/gluster_up.sh" "$state"
rc=$?
[ $rc -eq 0 ] || exit $rc
"$@" "$state/mnt-a" "$state/mnt-b"
exit $?
