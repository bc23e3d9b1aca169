#!/usr/bin/env bash
# Undoes gluster_up.sh: unmounts both clients, stops the brick and the two
# client processes by their pid files, deletes the three network namespaces
# and the state directory. Safe to run again, or when nothing is up.
#   gluster_down.sh [STATE_DIR]   (default /run/fsc-multihost)
set -u
state=${1:-/run/fsc-multihost}
prefix=fscmh
for host in a b; do
  mnt=$state/mnt-$host
  if mountpoint -q "$mnt" 2>/dev/null; then
    umount "$mnt" 2>/dev/null || umount -l "$mnt"
  fi
done
for pidfile in "$state"/client-a.pid "$state"/client-b.pid "$state"/brick.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  # Only a gluster process of ours: a pid file left by a crash may name a
  # pid reused since.
  if [ -n "$pid" ] && grep -qs "$state" "/proc/$pid/cmdline"; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$pidfile"
done
for ns in $prefix-a $prefix-b $prefix-srv; do
  ip netns del "$ns" 2>/dev/null
done
# Only a directory gluster_up.sh made (it leaves this mark).
[ -f "$state/.fsc-multihost" ] && rm -rf "$state"
exit 0
