#!/usr/bin/env bash
# `fsc stats` on a cache on the GlusterFS volume says so, through either
# host's mount, in text and in JSON. run.sh runs it: cli_stats.sh FSC MOUNT_A MOUNT_B.
set -u
fsc=$1
passed=0
failed=0
check() {
  local desc=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok - $desc"
  else
    failed=$((failed + 1))
    echo "not ok - $desc"
  fi
}
dir=cli-stats-$$
for host in a b; do
  mnt=$2
  [ $host = b ] && mnt=$3
  text=$("$fsc" -d "$mnt/$dir" stats)
  check "host $host: stats says network or FUSE" grep -q '^filesystem: *network or FUSE' <<<"$text"
  json=$("$fsc" -d "$mnt/$dir" stats --json)
  check "host $host: stats --json has network_fs true" grep -q '"network_fs": true' <<<"$json"
done
rm -rf "${2:?}/$dir"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
