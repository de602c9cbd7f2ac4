#!/bin/sh
# The one test runner `make test` calls, after `make SAN=1 all` and
# `make fuzz`:
#
#   sh tests/run.sh BUILD_DIR        (e.g. build/san; FUZZ_SECONDS=20)
#
# Runs every cmocka unit test binary, the fuzz drivers (corpus replay and
# a short fuzz) and, when there are any, the Node end-to-end tests.  Each
# unit test, each fuzz driver and each e2e test counts once; a binary that
# crashes or leaks counts as a failure.  The last line is always
# "N passed, N failed"; the exit status is non-zero if anything failed or
# nothing ran.

build=$(cd "${1:?usage: tests/run.sh BUILD_DIR}" && pwd) || exit 1
cd "$(dirname "$0")/.." || exit 1
logs=build/test-logs
mkdir -p "$logs"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export CMOCKA_MESSAGE_OUTPUT=stdout
passed=0
failed=0

# Sums the numbers captured by sed expression $1 over file $2.
sum() {
	sed -n "$1" "$2" | awk '{ s += $1 } END { print s + 0 }'
}

# add PASSED FAILED STATUS LOG NAME: counts one suite; a non-zero exit
# with no failure reported (a crash, a leak) is one more failure.
add() {
	p=$1 f=$2
	[ "$3" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	passed=$((passed + p))
	failed=$((failed + f))
	echo "$5: $p passed, $f failed"
	[ "$f" -eq 0 ] || cat "$4"
}

for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	log=$logs/$(basename "$t").log
	"$t" >"$log" 2>&1
	rc=$?
	add "$(sum 's/.*\[  PASSED  \] \([0-9]*\) test(s)\..*/\1/p' "$log")" \
	    "$(sum 's/.*\[  FAILED  \] \([0-9]*\) test(s).*/\1/p' "$log")" \
	    "$rc" "$log" "$(basename "$t")"
done

set -- build/fuzz/fuzz_*
if [ -x "$1" ]; then
	log=$logs/fuzz.log
	sh tests/fuzz/run.sh "${FUZZ_SECONDS:-20}" "$@" | tee "$log"
	passed=$((passed + $(grep -c ': PASS' "$log")))
	failed=$((failed + $(grep -c ': FAIL' "$log")))
fi

if ls tests/e2e/*.test.mjs >/dev/null 2>&1; then
	log=$logs/e2e.log
	if [ ! -d tests/node_modules ] && [ -f tests/package-lock.json ]; then
		npm ci --prefix tests || failed=$((failed + 1))
	fi
	ASP_BUILD=$build node --test --test-concurrency=1 --test-reporter=tap \
		tests/e2e/ >"$log" 2>&1
	rc=$?
	add "$(sum 's/^# pass \([0-9]*\)$/\1/p' "$log")" \
	    "$(sum 's/^# fail \([0-9]*\)$/\1/p' "$log")" "$rc" "$log" e2e
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
