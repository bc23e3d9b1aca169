# The checks of the multihost shell tests, sourced by each:
#   check DESCRIPTION COMMAND...   passes if COMMAND succeeds, prints ok / not ok
#   checks_done                    prints "N passed, M failed"; fails if any failed
# A test may count a failure of its own with failed=$((failed + 1)).
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
checks_done() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
