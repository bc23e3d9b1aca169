#!/usr/bin/env bash
# `fsc stats` on a cache on the GlusterFS volume says so, through either
# host's mount, in text and in JSON. run.sh runs it: cli_stats.sh FSC MOUNT_A MOUNT_B.
set -u
fsc=$1
. "$(dirname "$0")/checks.sh"
dir=cli-stats-$$
for host in a b; do
  mnt=$2
  [ $host = b ] && mnt=$3
  text=$("$fsc" -d "$mnt/$dir" stats)
  check "host $host: stats says network or FUSE" grep -q '^filesystem: *network or FUSE' <<<"$text"
  json=$("$fsc" -d "$mnt/$dir" stats --json)
  check "host $host: stats --json has network_fs true" grep -q '"network_fs": true' <<<"$json"
  check "host $host: stats says network mode on" grep -q '^network mode: on$' <<<"$text"
  check "host $host: stats --json has network_mode true" grep -q '"network_mode": true' <<<"$json"
  text=$("$fsc" --network-mode off -d "$mnt/$dir" stats)
  check "host $host: --network-mode off turns it off" grep -q '^network mode: off$' <<<"$text"
done
rm -rf "${2:?}/$dir"
checks_done
