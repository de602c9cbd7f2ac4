#!/bin/sh
# Replays each libFuzzer driver's committed corpus, then fuzzes it for a
# while.  New inputs go to a scratch dir under build/, never into the
# committed corpus; a crash, leak or timeout fails the run.
#
#   sh tests/fuzz/run.sh SECONDS build/fuzz/fuzz_media build/fuzz/fuzz_ctrl
#
# Prints "fuzz_NAME: PASS (N runs)" or "fuzz_NAME: FAIL ..." per driver
# and exits non-zero if any driver failed.

secs=${1:?usage: run.sh SECONDS DRIVER...}
shift
here=$(dirname "$0")
work=build/fuzz-work
status=0

for drv in "$@"; do
	name=$(basename "$drv")
	corpus=$here/corpus/${name#fuzz_}
	scratch=$work/$name
	log=$work/$name.log
	if [ ! -d "$corpus" ]; then
		echo "$name: FAIL (no seed corpus in $corpus)"
		status=1
		continue
	fi
	rm -rf "$scratch"
	mkdir -p "$scratch/corpus" "$scratch/artifacts"
	dict=
	[ -f "$here/${name#fuzz_}.dict" ] && dict=-dict=$here/${name#fuzz_}.dict

	# Replay every committed seed on its own, then fuzz from them.
	if ! "$drv" -artifact_prefix="$scratch/artifacts/" "$corpus"/* \
		>"$log" 2>&1 ||
	   ! "$drv" -max_total_time="$secs" -timeout=10 -print_final_stats=0 \
		-artifact_prefix="$scratch/artifacts/" $dict \
		"$scratch/corpus" "$corpus" >>"$log" 2>&1; then
		echo "$name: FAIL (see $log)"
		grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5
		status=1
		continue
	fi
	runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
	echo "$name: PASS (${runs:-0} runs)"
done
exit $status
