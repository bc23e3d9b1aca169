#!/usr/bin/env bash
# Tests of the fsc command line. Usage: cli_test.sh PATH/TO/fsc
# Prints TAP lines and "N passed, M failed"; exits 1 if anything failed.
set -u

FSC=${1:?usage: cli_test.sh PATH/TO/fsc}
FSC=$(cd "$(dirname "$FSC")" && pwd)/$(basename "$FSC")
[ -x "$FSC" ] || { echo "Bail out! $FSC is not executable"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fsc-cli-test.XXXXXX")
cleanup() {
    # Background refreshers may still be writing; give them a moment.
    for _ in $(seq 50); do
        pgrep -f "$WORK" >/dev/null 2>&1 || break
        sleep 0.1
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
export FSC_DIR="$WORK/cache"
unset XDG_CACHE_HOME

n=0 passed=0 failed=0
ok() { # ok DESCRIPTION: the last check passed
    n=$((n + 1)) passed=$((passed + 1))
    echo "ok $n - $1"
}
not_ok() { # not_ok DESCRIPTION [DETAIL]
    n=$((n + 1)) failed=$((failed + 1))
    echo "not ok $n - $1"
    [ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/# /'
    return 0
}
check() { # check DESCRIPTION COMMAND...: passes if COMMAND succeeds
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else not_ok "$desc" "failed: $*"; fi
}
# expect_rc WANT DESCRIPTION COMMAND...: runs COMMAND (stdout to out, stderr
# to err) and checks its exit code.
expect_rc() {
    local want=$1 desc=$2
    shift 2
    "$@" >out 2>err
    local rc=$?
    if [ "$rc" -eq "$want" ]; then ok "$desc"; else not_ok "$desc" "exit $rc, want $want; stderr: $(head -c 500 err)"; fi
}
contains() { grep -q -- "$2" "$1"; }
# wait_for SECONDS COMMAND...: polls COMMAND every 50 ms until it succeeds.
wait_for() {
    local limit=$(($1 * 20))
    shift
    for _ in $(seq "$limit"); do
        "$@" && return 0
        sleep 0.05
    done
    return 1
}
now_ms() { date +%s%3N; }

# --- help and usage -------------------------------------------------------

expect_rc 0 "fsc --help exits 0" "$FSC" --help
check "fsc --help lists the commands and exit codes" contains out "Exit status"
expect_rc 0 "fsc --version exits 0" "$FSC" --version
for cmd in run get put rm ls stats lock prune verify clear; do
    expect_rc 0 "fsc help $cmd" "$FSC" help "$cmd"
    check "fsc help $cmd shows its usage" contains out "Usage: fsc $cmd"
    expect_rc 0 "fsc $cmd --help" "$FSC" "$cmd" --help
    check "fsc $cmd --help shows its usage" contains out "Usage: fsc $cmd"
done
check "help needs no cache directory" test ! -e "$FSC_DIR"

expect_rc 2 "no command: exit 2" "$FSC"
check "no command: usage message" contains err "no command given"
expect_rc 2 "unknown command: exit 2" "$FSC" frobnicate
check "unknown command: message" contains err "unknown command 'frobnicate'"
expect_rc 2 "unknown global option: exit 2" "$FSC" --frob ls
expect_rc 2 "unknown command option: exit 2" "$FSC" ls --frob
check "unknown option: names it" contains err "unknown option '--frob'"
expect_rc 2 "-d without a value: exit 2" "$FSC" -d
expect_rc 2 "get without a key: exit 2" "$FSC" get
expect_rc 2 "get with two keys: exit 2" "$FSC" get a b
expect_rc 2 "get -o without a file: exit 2" "$FSC" get k -o
check "missing option argument: message" contains err "needs an argument"
expect_rc 2 "put without a key: exit 2" "$FSC" put
expect_rc 2 "rm without a key: exit 2" "$FSC" rm
expect_rc 2 "run without a command: exit 2" "$FSC" run --ttl 5m --
expect_rc 2 "run --ttl with a bad duration: exit 2" "$FSC" run --ttl 5x -- true
check "bad duration: message" contains err "bad duration '5x'"
expect_rc 2 "run --stale without --ttl: exit 2" "$FSC" run --stale 1m -- true
expect_rc 2 "lock without a command: exit 2" "$FSC" lock k --
expect_rc 2 "lock with a bad -w: exit 2" "$FSC" lock -w soon k -- true
expect_rc 2 "get -e with a bad escape: exit 2" "$FSC" get -e 'a\x4'
expect_rc 2 "usage errors print a hint" "$FSC" ls extra
check "hint names the command's help" contains err "Try 'fsc ls --help'"

# --- the cache directory ----------------------------------------------------

mkdir -p xdg
expect_rc 0 "XDG_CACHE_HOME/fsc is the default without FSC_DIR" \
    env -u FSC_DIR XDG_CACHE_HOME="$WORK/xdg" "$FSC" put xdgkey /dev/null
check "the value landed in XDG_CACHE_HOME/fsc" test -f xdg/fsc/FSC-FORMAT
mkdir -p home
expect_rc 0 "~/.cache/fsc without FSC_DIR and XDG_CACHE_HOME" \
    env -u FSC_DIR -u XDG_CACHE_HOME HOME="$WORK/home" "$FSC" ls
check "the cache was made in ~/.cache/fsc" test -f home/.cache/fsc/FSC-FORMAT
expect_rc 0 "-d overrides FSC_DIR" "$FSC" -d "$WORK/other" put k /dev/null
check "-d cache holds the key" test -f other/FSC-FORMAT
echo "not a cache" >notdir
expect_rc 1 "a file as the cache directory: exit 1" "$FSC" -d "$WORK/notdir" ls
check "the error names the path" contains err "$WORK/notdir"
mkdir -p foreign && echo x >foreign/data
expect_rc 1 "a foreign directory: exit 1" "$FSC" -d "$WORK/foreign" ls
check "the error names the path and the cause" contains err "foreign.*FSC_EFORMAT"
mkdir open && chmod 0777 open
expect_rc 1 "a world-writable cache directory: exit 1" "$FSC" -d "$WORK/open" run --key build-id -- echo real
check "the error names the path and the cause" contains err "open' is writable by others.*FSC_EACCES"
check "nothing was written into it" test -z "$(ls -A open)"
expect_rc 0 "--shared-group makes a group-shared cache" "$FSC" --shared-group "$(id -g)" -d "$WORK/team" put k /dev/null
check "the shared cache's directory is setgid and group-writable" test "$(stat -c %a team)" = 2770
expect_rc 1 "a group-shared cache opened without --shared-group: exit 1" "$FSC" -d "$WORK/team" ls
check "the error says it is group-writable" contains err "writable by group"
expect_rc 2 "--shared-group with an unknown group: exit 2" "$FSC" --shared-group no-such-group-fsc ls
# --network-mode on a local directory: forced on, values go in and out as ever.
printf 'over the network' >netval
expect_rc 0 "put with --network-mode on" "$FSC" --network-mode on -d "$WORK/net" put k netval
expect_rc 0 "get with --network-mode on" "$FSC" --network-mode on -d "$WORK/net" get k
check "gives the value back" cmp -s out netval
expect_rc 0 "get with --network-mode off" "$FSC" --network-mode off -d "$WORK/net" get k
check "gives the same value" cmp -s out netval
expect_rc 0 "run with --network-mode on" "$FSC" --network-mode on -d "$WORK/net" run --key r -- echo made
check "runs the command" contains out "^made$"
expect_rc 2 "--network-mode with a bad mode: exit 2" "$FSC" --network-mode sometimes -d "$WORK/net" ls
check "the error names the modes" contains err "bad network mode 'sometimes' (auto, on or off)"
expect_rc 2 "--network-mode without a mode: exit 2" "$FSC" --network-mode

# --- put, get, rm, ls -------------------------------------------------------

head -c 1048576 /dev/urandom >blob
expect_rc 0 "put FILE" "$FSC" put blob blob
expect_rc 0 "get KEY to stdout" "$FSC" get blob
check "get returns the file byte for byte" cmp -s out blob
expect_rc 0 "get KEY -o FILE" "$FSC" get blob -o copy
check "get -o writes the file byte for byte" cmp -s copy blob
expect_rc 0 "put KEY < stdin" "$FSC" put piped <blob
"$FSC" get piped >copy2
check "a value from stdin comes back byte for byte" cmp -s copy2 blob
printf 'hello\n' | "$FSC" put dash - >/dev/null 2>&1
check "put KEY - reads stdin" test "$("$FSC" get dash)" = hello
: | "$FSC" put empty
expect_rc 0 "an empty value is found" "$FSC" get empty
check "an empty value is empty" test ! -s out
expect_rc 1 "get of a missing key exits 1" "$FSC" get no-such-key
check "a miss says so on stderr" contains err "no value for key 'no-such-key'"
check "a miss writes nothing to stdout" test ! -s out
rm -f missing.out
expect_rc 1 "get -o of a missing key exits 1" "$FSC" get no-such-key -o missing.out
check "get -o of a missing key creates no file" test ! -e missing.out
expect_rc 1 "put of a missing file exits 1" "$FSC" put k "$WORK/no-such-file"
check "the error names the file and the cause" contains err "no-such-file.*No such file"
expect_rc 0 "put with an escaped binary key" "$FSC" put -e 'bin\x00key\xff' /etc/hostname
expect_rc 0 "get with an escaped binary key" "$FSC" get -e 'bin\x00key\xff'
check "the binary key's value" cmp -s out /etc/hostname
expect_rc 1 "the escaped text itself is another key" "$FSC" get 'bin\x00key\xff'

expect_rc 0 "ls" "$FSC" ls
check "ls shows a text key" grep -q ' blob$' out
check "ls escapes a binary key" grep -qF 'bin\x00key\xff' out
check "ls shows human sizes" grep -q '1.0 MiB.* blob$' out
expect_rc 0 "ls -l" "$FSC" ls -l
check "ls -l shows bytes" grep -q '1048576 .* blob$' out
expect_rc 0 "ls --json" "$FSC" ls --json
if command -v python3 >/dev/null; then
    check "ls --json is valid JSON with every key" python3 -c '
import json, sys
items = json.load(open("out"))
keys = {bytes.fromhex(i["key_hex"]) for i in items}
assert b"blob" in keys and b"bin\x00key\xff" in keys, keys
assert all(i["size"] >= 0 and i["age_ms"] >= 0 for i in items)
sizes = {bytes.fromhex(i["key_hex"]): i["size"] for i in items}
assert sizes[b"blob"] == 1048576
'
else
    check "ls --json mentions the key" contains out '"key": "blob"'
fi

expect_rc 0 "rm KEY" "$FSC" rm blob
expect_rc 1 "a removed key is a miss" "$FSC" get blob
expect_rc 1 "rm of a missing key exits 1" "$FSC" rm blob
check "rm of a missing key says so" contains err "no value for key 'blob'"
expect_rc 0 "rm -f of a missing key exits 0" "$FSC" rm -f blob
expect_rc 0 "rm of several keys" "$FSC" rm piped dash
expect_rc 1 "the removed keys are gone" "$FSC" get piped

# --- stats, prune, verify, clear -----------------------------------------
# These may be unsupported by the library for now: then they must say so
# cleanly (exit 1, FSC_ENOTSUP) instead of crashing.

supported_or_clean() { # DESCRIPTION COMMAND...
    local desc=$1
    shift
    "$@" >out 2>err
    local rc=$?
    if [ $rc -eq 0 ]; then
        ok "$desc"
    elif [ $rc -eq 1 ] && grep -q 'FSC_ENOTSUP' err && [ "$(wc -l <err)" -eq 1 ]; then
        ok "$desc (not supported by the library: clean message)"
    else
        not_ok "$desc" "exit $rc; stderr: $(head -c 500 err)"
    fi
    return $rc
}
if supported_or_clean "stats" "$FSC" stats; then
    check "stats shows the entries and the hit rate" grep -q 'hit rate' out
    check "stats says the test directory's filesystem is local" grep -q '^filesystem: *local$' out
    check "stats says network mode is off there by default" grep -q '^network mode: off$' out
    expect_rc 0 "stats with --network-mode on" "$FSC" --network-mode on stats
    check "stats says network mode is on when forced" grep -q '^network mode: on$' out
    check "and the filesystem is still local" grep -q '^filesystem: *local$' out
    expect_rc 0 "stats with --network-mode=off" "$FSC" --network-mode=off stats
    check "stats says network mode is off when forced off" grep -q '^network mode: off$' out
fi
if supported_or_clean "stats --json" "$FSC" stats --json && command -v python3 >/dev/null; then
    check "stats --json has every field" python3 -c '
import json
s = json.load(open("out"))
for f in ("entries","bytes","cache_size","hits","misses","sets","evictions","expirations"):
    assert f in s, f
assert s["network_fs"] is False and s["network_mode"] is False, s
lookups = s["hits"] + s["misses"]
assert (s["hit_rate"] is None) if lookups == 0 else abs(s["hit_rate"] - s["hits"] / lookups) <= 5e-7, s  # printed to 6 decimals
'
fi
if supported_or_clean "stats --json with --network-mode on" "$FSC" --network-mode on stats --json; then
    check "stats --json has network_mode true" contains out '"network_fs": false, "network_mode": true}'
fi
supported_or_clean "prune" "$FSC" prune
if supported_or_clean "verify" "$FSC" verify; then
    check "verify reports what it checked" contains out "checked"
fi
supported_or_clean "verify --repair" "$FSC" verify --repair
expect_rc 0 "progress output is not shown when stderr is not a terminal" "$FSC" clear
check "no progress characters on a pipe" test ! -s err
check "clear says how many values it removed" contains out "removed"
expect_rc 0 "ls after clear" "$FSC" ls
check "clear removed every value" test ! -s out

# --- files that are not the cache's -----------------------------------------
# A FIFO planted as an entry file: ls, get and verify --repair return (the
# timeout turns a hang into exit 124) and the repair removes it.
"$FSC" clear >/dev/null 2>&1
echo "a file value" >fifo-src
"$FSC" put fifo-key fifo-src >/dev/null 2>&1
entry=$(find "$FSC_DIR/shards" -type f -regextype posix-extended -regex '.*/[0-9a-f]{32}' | head -n 1)
if [ -n "$entry" ] && rm -f "$entry" && mkfifo "$entry"; then
    expect_rc 1 "get of a key whose entry is a FIFO fails at once" timeout 20 "$FSC" get fifo-key
    check "get names the damage" contains err "damaged"
    "$FSC" put fifo-key fifo-src >/dev/null 2>&1
    rm -f "$entry" && mkfifo "$entry"
    expect_rc 0 "ls walks past a FIFO planted as an entry" timeout 20 "$FSC" ls
    expect_rc 0 "verify --repair removes a FIFO planted as an entry" timeout 20 "$FSC" verify --repair
    check "the planted FIFO is gone" test ! -p "$entry"
else
    not_ok "plant a FIFO as an entry file" "no entry file found under $FSC_DIR/shards"
fi
"$FSC" clear >/dev/null 2>&1

# --- run --------------------------------------------------------------------

expect_rc 0 "run: binary stdout (cold)" "$FSC" run -- head -c 1000 /dev/urandom
cp out run1
expect_rc 0 "run: binary stdout (warm)" "$FSC" run -- head -c 1000 /dev/urandom
check "run replays binary output byte for byte" cmp -s out run1
check "the output is 1000 bytes" test "$(wc -c <run1)" -eq 1000

cat >cmd3.sh <<'EOF'
echo run >>"$1"
printf 'to stdout\000with a NUL\n'
printf 'to stderr\n' >&2
exit 3
EOF
expect_rc 3 "run: the command's exit code (cold)" "$FSC" run -- sh cmd3.sh "$WORK/count3"
cp out out3
cp err err3
expect_rc 3 "run: the exit code is replayed (warm)" "$FSC" run -- sh cmd3.sh "$WORK/count3"
check "stdout is replayed exactly" cmp -s out out3
check "stderr is replayed exactly" cmp -s err err3
check "stderr holds the command's stderr" contains err "to stderr"
check "the command ran once" test "$(wc -l <count3)" -eq 1

expect_rc 127 "run: a missing program exits 127" "$FSC" run -- "$WORK/no-such-program"
check "run: the message names the program" contains err "no-such-program"
expect_rc 0 "ls after a missing program" "$FSC" ls
check "a missing program's failure is not cached" test "$(grep -c no-such-program out)" -eq 0

expect_rc 0 "run: a large output (cold)" "$FSC" run -- seq 1 1000000
cp out big1
seq 1 1000000 >big0
check "a large output is complete" cmp -s big1 big0
expect_rc 0 "run: a large output (warm)" "$FSC" run -- seq 1 1000000
check "a large output replays exactly" cmp -s out big0

# Concurrent identical runs: one runs the command, all print its output.
rm -f counter
cat >slow.sh <<'EOF'
echo x >>"$1"
sleep 0.5
echo "made by $$"
EOF
pids=()
for i in 1 2 3 4 5 6 7 8; do
    "$FSC" run -- sh slow.sh "$WORK/counter" >"conc.$i" 2>"conc.err.$i" &
    pids+=($!)
done
conc_fail=0
for p in "${pids[@]}"; do wait "$p" || conc_fail=1; done
check "8 concurrent runs all exit 0" test $conc_fail -eq 0
check "8 concurrent runs run the command once" test "$(wc -l <counter)" -eq 1
check "8 concurrent runs print the same output" test "$(cat conc.[1-8] | sort -u | wc -l)" -eq 1
check "the output is the command's" grep -q '^made by [0-9]*$' conc.1

# --ttl: an expired output is made again.
rm -f ttlcount
expect_rc 0 "run --ttl (cold)" "$FSC" run --ttl 300ms -- sh -c "echo x >>'$WORK/ttlcount'; echo hi"
expect_rc 0 "run --ttl (warm)" "$FSC" run --ttl 300ms -- sh -c "echo x >>'$WORK/ttlcount'; echo hi"
check "a fresh output is not made again" test "$(wc -l <ttlcount)" -eq 1
sleep 0.4 # let the value expire
expect_rc 0 "run --ttl (expired)" "$FSC" run --ttl 300ms -- sh -c "echo x >>'$WORK/ttlcount'; echo hi"
check "an expired output is made again" test "$(wc -l <ttlcount)" -eq 2

# --stale: an expired output is served at once and refreshed behind.
cat >stale.sh <<'EOF'
sleep 1.5
echo "generation $(cat "$1")"
EOF
echo 1 >gen
expect_rc 0 "run --stale (cold)" "$FSC" run --ttl 1s --stale 1h --key stale-key -- sh stale.sh "$WORK/gen"
check "the first output" test "$(cat out)" = "generation 1"
echo 2 >gen
sleep 1.1 # let the value expire
t0=$(now_ms)
# Through a pipe: the refresher must not keep the caller's pipe open.
stale_out=$("$FSC" run --ttl 1s --stale 1h --key stale-key -- sh stale.sh "$WORK/gen")
stale_rc=$?
t1=$(now_ms)
check "run --stale (expired) exits 0" test $stale_rc -eq 0
check "the stale output is replayed" test "$stale_out" = "generation 1"
check "the stale output comes at once (took $((t1 - t0)) ms)" test $((t1 - t0)) -lt 1000
# The refresher holds the key's lock from before the stale reply returns.
expect_rc 1 "the refresher holds the key's lock during the refresh" "$FSC" lock -n stale-key -- true
has_gen2() { "$FSC" get stale-key 2>/dev/null | grep -qa "generation 2"; }
check "the background refresh lands" wait_for 10 has_gen2
expect_rc 0 "run --stale (refreshed)" "$FSC" run --ttl 1s --stale 1h --key stale-key -- sh stale.sh "$WORK/gen"
check "the refreshed output is served" test "$(cat out)" = "generation 2"
check "the value's key is the --key" bash -c "'$FSC' ls | grep -q ' stale-key\$'"

# Past the stale window the caller waits for a new output.
echo 3 >gen
sleep 1.1
expect_rc 0 "run past the stale window" "$FSC" run --ttl 1s --stale 10ms --key stale-key -- sh stale.sh "$WORK/gen"
check "past the stale window the new output is served" test "$(cat out)" = "generation 3"

# --discard-failures
rm -f failcount
expect_rc 4 "run --discard-failures: a failure (1)" \
    "$FSC" run --discard-failures -- sh -c "echo x >>'$WORK/failcount'; echo shown; exit 4"
check "a discarded failure still shows its output" contains out shown
expect_rc 4 "run --discard-failures: a failure (2)" \
    "$FSC" run --discard-failures -- sh -c "echo x >>'$WORK/failcount'; echo shown; exit 4"
check "a discarded failure runs again" test "$(wc -l <failcount)" -eq 2
rm -f okcount
"$FSC" run --discard-failures -- sh -c "echo x >>'$WORK/okcount'" >/dev/null
"$FSC" run --discard-failures -- sh -c "echo x >>'$WORK/okcount'" >/dev/null
check "--discard-failures still caches a success" test "$(wc -l <okcount)" -eq 1

# --env and --cwd are parts of the key.
rm -f envcount
FOO=a "$FSC" run --env FOO -- sh -c "echo x >>'$WORK/envcount'; echo \$FOO" >env.a
FOO=b "$FSC" run --env FOO -- sh -c "echo x >>'$WORK/envcount'; echo \$FOO" >env.b
FOO=a "$FSC" run --env FOO -- sh -c "echo x >>'$WORK/envcount'; echo \$FOO" >env.a2
check "--env: another value runs again" test "$(wc -l <envcount)" -eq 2
check "--env: each value has its own output" test "$(cat env.a env.b env.a2 | tr -d '\n')" = aba
mkdir -p d1 d2
rm -f cwdcount
(cd d1 && "$FSC" run --cwd -- sh -c "echo x >>'$WORK/cwdcount'; pwd") >cwd1
(cd d2 && "$FSC" run --cwd -- sh -c "echo x >>'$WORK/cwdcount'; pwd") >cwd2
(cd d1 && "$FSC" run --cwd -- sh -c "echo x >>'$WORK/cwdcount'; pwd") >cwd3
check "--cwd: another directory runs again" test "$(wc -l <cwdcount)" -eq 2
check "--cwd: each directory has its own output" cmp -s cwd1 cwd3

# --- lock -------------------------------------------------------------------

rm -f held release
"$FSC" lock the-key -- sh -c "touch '$WORK/held'; while [ ! -e '$WORK/release' ]; do sleep 0.05; done" &
holder=$!
check "lock runs the command" wait_for 10 test -e held
expect_rc 1 "lock -n on a held key exits 1" "$FSC" lock -n the-key -- echo never
check "lock -n says the key is locked" contains err "'the-key' is locked"
check "lock -n did not run the command" test ! -s out
t0=$(now_ms)
expect_rc 1 "lock -w 0.3 on a held key exits 1" "$FSC" lock -w 0.3 the-key -- echo never
t1=$(now_ms)
check "lock -w waited about its timeout ($((t1 - t0)) ms)" test $((t1 - t0)) -ge 250
expect_rc 0 "lock -n on another key runs" "$FSC" lock -n other-key -- true
touch release
wait $holder
check "the holder's command exits 0" test $? -eq 0
expect_rc 0 "lock -n after the release runs" "$FSC" lock -n the-key -- echo now
check "the command's output passes through" contains out now
expect_rc 5 "lock exits with the command's code" "$FSC" lock the-key -- sh -c 'exit 5'
expect_rc 127 "lock of a missing program exits 127" "$FSC" lock k -- "$WORK/no-such-program"

# A held key's lock also holds back fsc run's regeneration.
rm -f held release gatecount
"$FSC" lock gate -- sh -c "touch '$WORK/held'; while [ ! -e '$WORK/release' ]; do sleep 0.05; done" &
holder=$!
wait_for 10 test -e held
"$FSC" run --key gate -- sh -c "echo x >>'$WORK/gatecount'; echo gated" >gate.out &
runner=$!
sleep 0.3
check "run waits while the key's lock is held" test ! -e gatecount
touch release
wait $holder
wait $runner
check "run goes on once the lock is released" test "$(cat gate.out)" = gated

echo "1..$n"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
