#!/usr/bin/env bash
# Brings up a GlusterFS volume shared by two "hosts" on this machine:
#   fscmh-srv  the brick (glusterfsd) on bridge br0, 10.77.213.1
#   fscmh-a    host A's FUSE client, 10.77.213.11, mounted at STATE_DIR/mnt-a
#   fscmh-b    host B's FUSE client, 10.77.213.12, mounted at STATE_DIR/mnt-b
# Each host reaches the brick over its own veth and TCP connection; the
# processes are started with nsenter --net only, so both mounts are visible
# in this mount namespace. No glusterd: the brick and the clients read
# volume files written here, with the translators of a default one-brick
# volume that matter to fsc (posix + locks on the brick; on the clients the
# default performance translators, which cache data and metadata, but
# quick-read, which docs/MULTIHOST.md requires off: fsc refuses network mode
# with it). FSC_MULTIHOST_XLATORS, when set, lists the client's performance
# translators instead (bottom first).
# Runs gluster_down.sh first, so it can be run again.
#   gluster_up.sh [STATE_DIR]   (default /run/fsc-multihost)
# Exit status: 0 up, 77 something needed is missing (said on stderr), 1 failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state=${1:-/run/fsc-multihost}
prefix=fscmh
net=10.77.213
srv=$net.1
port=24917

skip() { echo "multihost: skipped: $*" >&2; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces and FUSE mounts)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
command -v ip >/dev/null || skip "no 'ip' (iproute2)"
# Root in a container may still be refused namespaces: try one.
ip netns add $prefix-probe 2>/dev/null || skip "'ip netns add' is not allowed here"
ip netns del $prefix-probe
command -v nsenter >/dev/null || skip "no nsenter (util-linux)"
if ! command -v glusterfsd >/dev/null || ! command -v glusterfs >/dev/null; then
  # scripts/deps.sh installs them; try once more here, quietly.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    glusterfs-server glusterfs-client >/dev/null 2>&1 ||
    skip "glusterfs-server and glusterfs-client are not installed and cannot be installed"
fi

bash "$here/gluster_down.sh" "$state"
mkdir -p "$state/brick" "$state/mnt-a" "$state/mnt-b" "$state/log"
touch "$state/.fsc-multihost"

# Network: a bridge in the server namespace, one veth pair per client.
for ns in $prefix-srv $prefix-a $prefix-b; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
ip -n $prefix-srv link add br0 type bridge
ip -n $prefix-srv addr add $srv/24 dev br0
ip -n $prefix-srv link set br0 up
addr=11
for host in a b; do
  ip link add $prefix-$host-s type veth peer name $prefix-$host-c
  ip link set $prefix-$host-s netns $prefix-srv
  ip link set $prefix-$host-c netns $prefix-$host
  ip -n $prefix-srv link set $prefix-$host-s master br0 up
  ip -n $prefix-$host link set $prefix-$host-c name eth0
  ip -n $prefix-$host addr add $net.$addr/24 dev eth0
  ip -n $prefix-$host link set eth0 up
  addr=$((addr + 1))
done

cat >"$state/brick.vol" <<VOL
volume posix
  type storage/posix
  option directory $state/brick
end-volume
volume locks
  type features/locks
  subvolumes posix
end-volume
volume server
  type protocol/server
  option transport-type tcp
  option transport.socket.bind-address $srv
  option transport.socket.listen-port $port
  option auth.addr.locks.allow $net.*
  subvolumes locks
end-volume
VOL
# The client graph of a default one-brick volume with performance.quick-read
# off: the performance translators GlusterFS stacks on by default, in its
# order, quick-read (between open-behind and md-cache) left out.
cat >"$state/client.vol" <<VOL
volume client
  type protocol/client
  option transport-type tcp
  option remote-host $srv
  option remote-port $port
  option remote-subvolume locks
end-volume
VOL
below=client
for xl in ${FSC_MULTIHOST_XLATORS:-write-behind read-ahead readdir-ahead io-cache open-behind md-cache}; do
  printf 'volume %s\n  type performance/%s\n  subvolumes %s\nend-volume\n' "$xl" "$xl" "$below" >>"$state/client.vol"
  below=$xl
done

nsenter --net=/run/netns/$prefix-srv glusterfsd -f "$state/brick.vol" \
  -p "$state/brick.pid" -l "$state/log/brick.log"
for host in a b; do
  nsenter --net=/run/netns/$prefix-$host glusterfs -f "$state/client.vol" \
    --pid-file="$state/client-$host.pid" -l "$state/log/client-$host.log" "$state/mnt-$host"
done
# Up when a file written through A reads back through B.
for _ in $(seq 100); do
  if mountpoint -q "$state/mnt-a" && mountpoint -q "$state/mnt-b" &&
    echo up >"$state/mnt-a/.probe" 2>/dev/null && [ "$(cat "$state/mnt-b/.probe" 2>/dev/null)" = up ]; then
    rm -f "$state/mnt-a/.probe"
    exit 0
  fi
  sleep 0.1
done
echo "multihost: the GlusterFS mounts did not come up; logs:" >&2
tail -n 20 "$state"/log/*.log >&2
exit 1
