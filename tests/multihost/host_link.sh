#!/usr/bin/env bash
# Sets a host's link to the server (eth0 in its network namespace, made by
# gluster_up.sh) down or up again: down cuts the host off without closing
# its connections, as a network split does.
#   host_link.sh a|b down|up
set -eu
prefix=fscmh
case "${1:-}:${2:-}" in
[ab]:down | [ab]:up) ;;
*)
  echo "usage: host_link.sh a|b down|up" >&2
  exit 2
  ;;
esac
ip -n "$prefix-$1" link set eth0 "$2"
