#!/usr/bin/env bash
# Hosts whose wall clocks differ, sharing one cache: each step is a process
# of skew_host run with its clock offset by libfaketime (CLOCK_MONOTONIC left
# alone, so lock waits keep their time). Checks what docs/MULTIHOST.md ("Clocks")
# says skew does to expiry, invalidation and LRU eviction.
#   clock_skew.sh SKEW_HOST              one local cache directory for every host
#   clock_skew.sh SKEW_HOST DIR_A DIR_B  host A's steps through DIR_A, the
#                                        other hosts' through DIR_B (run.sh)
# Skips (77) when libfaketime is missing or does not move this machine's clock.
# Every threshold is at least 30 s away from the ages compared with it, so a
# slow machine's seconds between two steps change no result.
set -u
host=${1:?usage: clock_skew.sh SKEW_HOST [DIR_A DIR_B]}
if [ $# -ge 3 ]; then
  name=clock-skew-$$
  root_a=$2/$name root_b=$3/$name
else
  root_a=$(mktemp -d "${TMPDIR:-/tmp}/fsc-clock-skew.XXXXXX")
  root_b=$root_a
fi
trap 'rm -rf "$root_a"' EXIT

if ! command -v faketime >/dev/null; then
  echo "1..0 # SKIP libfaketime is not installed (Debian: faketime; scripts/deps.sh installs it)"
  exit 77
fi
export FAKETIME_DONT_FAKE_MONOTONIC=1
# A sanitizer's runtime wants to be loaded first; libfaketime comes before it.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
ahead=$(faketime -f +3600s date +%s) now=$(date +%s)
if [ $((ahead - now)) -lt 3500 ]; then
  echo "1..0 # SKIP libfaketime does not move this machine's wall clock"
  exit 77
fi

. "$(dirname "$0")/checks.sh"

# on OFFSET_S HOST [OPTIONS] OP ARGS...: one step of skew_host on the cache of
# the current case, by host a or b, with the clock off by OFFSET_S seconds
# (+120, -120, 0). Its output goes to $out, its exit code to $rc.
case_dir=
on() {
  local offset=$1 dir=$root_b/$case_dir
  [ "$2" = a ] && dir=$root_a/$case_dir
  shift 2
  local clock=()
  [ "$offset" = 0 ] || clock=(faketime -f "${offset}s")
  # Across the GlusterFS mounts, fsc waits about 2 s for a file the other
  # host just replaced, then fails with ESTALE (docs/MULTIHOST.md,
  # "Visibility"): not what this test is about, so such a step runs again.
  for _ in $(seq 40); do
    out=$("${clock[@]}" "$host" "$dir" "$@")
    rc=$?
    [ "$rc" -eq 3 ] && grep -q 'Stale file handle' <<<"$out" || break
    echo "# ESTALE, again: $*" >&2
    sleep 0.1
  done
}
# says OFFSET_S HOST WANT OP ARGS...: the step prints exactly WANT.
says() {
  local offset=$1 h=$2 want=$3
  shift 3
  on "$offset" "$h" "$@"
  [ "$out" = "$want" ] || { echo "# got '$out' (exit $rc), want '$want'"; return 1; }
}
# says_like OFFSET_S HOST PATTERN OP ARGS...: the step's output matches PATTERN (grep -E).
says_like() {
  local offset=$1 h=$2 pattern=$3
  shift 3
  on "$offset" "$h" "$@"
  grep -qE "$pattern" <<<"$out" || { echo "# got '$out' (exit $rc), want /$pattern/"; return 1; }
}
# step OFFSET_S HOST OP ARGS...: a step that must succeed; a failure counts.
step() {
  on "$@"
  [ "$rc" -eq 0 ] || { failed=$((failed + 1)); echo "not ok - step $* failed (exit $rc): $out"; }
}

# Host A's clock is 120 s ahead of B's (+120), or B is 120 s ahead of A (A at -120).
minute_ms=60000 three_min_ms=180000

case_dir=stamp
step +120 a set k one
on 0 b created k
stamp=$out now_ms=$(date +%s%3N)
check "a value's creation time is its writer's clock: 120 s ahead" \
  test $((stamp - now_ms)) -gt 90000 -a $((stamp - now_ms)) -lt 150000

case_dir=writer-ahead
step +120 a set k one
check "writer 120 s ahead, expiration 60 s: fresh (a stamp in the future is fresh)" \
  says 0 b one -e $minute_ms get k
check "writer 120 s ahead, expiration 0: expired (an age below 0 counts as 0)" says 0 b miss -e 0 get k
check "writer 120 s ahead, expiration 180 s: fresh" says 0 b one -e $three_min_ms get k
check "writer 120 s ahead, read 150 s later, expiration 60 s: still fresh (expires 120 s late)" \
  says +150 b one -e $minute_ms get k
check "writer 120 s ahead, read 210 s later, expiration 60 s: expired" says +210 b miss -e $minute_ms get k
check "writer 120 s ahead: get_or_create with expiration 60 s takes it" says 0 b "hit one" goc k $minute_ms two

case_dir=writer-behind
step -120 a set k one
check "writer 120 s behind, expiration 60 s: expired at once" says 0 b miss -e $minute_ms get k
check "writer 120 s behind, expiration 180 s: fresh" says 0 b one -e $three_min_ms get k
check "writer 120 s behind: its own reads see a fresh value" says -120 a one -e $minute_ms get k
check "writer 120 s behind: get_or_create with expiration 60 s regenerates at once" \
  says 0 b "created two" goc k $minute_ms two
check "writer 120 s behind: the regenerated value is fresh for it" says -120 a "hit two" goc k $minute_ms three

case_dir=prune
step 0 b set k one
step 0 b -e $minute_ms prune
check "prune with expiration 60 s on the writer's clock keeps a new value" says 0 b one get k
step +120 a -e $minute_ms prune
check "prune by a host 120 s ahead, expiration 60 s, drops the same value" says 0 b miss get k

case_dir=invalidator-behind
step 0 b set k one
step -120 a invalidate hard
check "hard invalidation by a host 120 s behind misses a value stored just before it" says 0 b one get k
step 0 b invalidate hard
check "the same invalidation by the writer's clock drops it" says 0 b miss get k

case_dir=writer-ahead-invalidated
step +120 a set k one
step 0 b invalidate hard
check "hard invalidation by a host 120 s behind the writer misses the writer's value" says 0 b one get k

case_dir=invalidator-ahead-hard
step +120 a invalidate hard
step 0 b set k one
check "after a hard invalidation by a host 120 s ahead, a value stored by the others is a miss" \
  says 0 b miss get k
check "... and get_or_create fails: its creator's value is gone when read back" \
  says_like 0 b "^get_or_create: .*invalidated" goc k -1 two
step +120 a set k three
check "... while the invalidator's own later values are fresh" says 0 b three get k

case_dir=invalidator-ahead-soft
step +120 a invalidate soft
step 0 b set k one
check "after a soft invalidation by a host 120 s ahead, a value stored by the others is stale" \
  says 0 b miss get k
check "... get_or_create regenerates it" says 0 b "created two" goc k -1 two
check "... and again at the next call" says 0 b "created three" goc k -1 three

case_dir=invalidation-back
step +120 a set k one
step +120 a invalidate hard
check "hard invalidation by the writer's host drops its value" says 0 b miss get k
step 0 b invalidate hard
check "a later hard invalidation by a host 120 s behind does not bring the value back" says 0 b miss get k
step 0 b set k two
check "... nor is the time moved back: values stored after it are still hidden for 120 s" says 0 b miss get k

case_dir=recovery
step +120 a set k one
step +120 a invalidate hard
step 0 b clear
check "after a host 120 s ahead invalidated, a clear on a right clock: its value is gone" \
  says 0 b miss get k
step 0 b set k two
check "... the other hosts' new values are fresh" says 0 b two get k
check "... and get_or_create works again" says 0 b "created three" goc j -1 three

# LRU: three values of 100 kB fit in 350 kB, a fourth evicts exactly one
# (the least recently used, by last-use stamps from the readers' clocks).
# Every step goes through host B's mount, with the clocks still differing:
# across the mounts, an eviction on one host can miss a last-use stamp just
# written on the other (its client's cache serves the older stamp).
value=100000 size=350000
# lru_case NAME B_WRITER READS...: a, b and c are set in that order (b by a
# host at offset B_WRITER, the others unskewed), then read as READS say
# (OFFSET:KEY, in order); the set of d evicts one value. Prints the keys left.
lru_case() {
  case_dir=$1
  local k r left=
  step 0 b -s $size fill a $value
  step "$2" b -s $size fill b $value
  step 0 b -s $size fill c $value
  shift 2
  for r in "$@"; do step "${r%%:*}" b get "${r#*:}" >/dev/null; done
  step 0 b -s $size fill d $value
  for k in a b c d; do on 0 b get $k && [ "$rc" -eq 0 ] && left="$left$k"; done >/dev/null
  echo "$left"
}
check "LRU, all clocks agree: b (never read) is evicted" test "$(lru_case lru-agree 0 0:c 0:a)" = acd
check "LRU, c read last by a host 120 s behind: c is evicted before b (its read counts 120 s early)" \
  test "$(lru_case lru-behind 0 -120:c 0:a)" = abd
check "LRU, b stored by a host 120 s ahead and never read: a (read since) is evicted, not b" \
  test "$(lru_case lru-writer-ahead +120 0:a 0:c)" = bcd
check "LRU, a read by a host 120 s ahead, then by one 120 s behind: a keeps the later stamp, b is evicted" \
  test "$(lru_case lru-ahead-then-behind 0 +120:a -120:a)" = acd

# What skew did above is no damage: fsc_verify finds nothing, from either clock.
for case_dir in writer-ahead writer-behind invalidation-back lru-behind lru-writer-ahead; do
  check "verify of $case_dir by a host 120 s ahead: no problems" says +120 a "0 problems" verify
  check "verify of $case_dir by a host 120 s behind: no problems" says -120 b "0 problems" verify
done

checks_done
