#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR/tests/fuzz for SECONDS each, with its seed corpus
# from tests/fuzz/corpus/<target>/, JOBS at a time (default: the number of CPUs). Writes
# BUILD_DIR/fuzz-results.json for the test summary.
set -uo pipefail
build=${1:-build-fuzz}
secs=${2:-10}
jobs=${3:-${FUZZ_JOBS:-$(nproc)}}
src=$(cd "$(dirname "$0")/.." && pwd)
results="$build/fuzz-results.json"
out=$(mktemp -d /tmp/plura-fuzz-results.XXXXXX)

# one target: its verdict in $out/<name>.result, its report line in $out/<name>.report
run_one() {
        local t=$1 name work corpus
        name=$(basename "$t")
        work=$(mktemp -d "/tmp/plura-$name.XXXXXX")
        corpus="$src/tests/fuzz/corpus/$name"
        local dirs=("$work")
        [ -d "$corpus" ] && dirs+=("$corpus")
        if "$t" -print_final_stats=1 -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$work/" "${dirs[@]}" >"$work/log" 2>&1; then
                echo "fuzz: $name ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/log" | awk '{print $2}') runs in ${secs}s)" >"$out/$name.report"
                echo OK >"$out/$name.result"
                rm -rf "$work"
        else
                { echo "fuzz: $name FAILED (artifacts and log in $work)"; tail -n 40 "$work/log"; } >"$out/$name.report"
                echo FAIL >"$out/$name.result"
        fi
}

running=0
for t in "$build"/tests/fuzz/fuzz-*; do
        [ -f "$t" ] && [ -x "$t" ] || continue  # not the meson *.p object directories
        run_one "$t" &
        running=$((running + 1))
        if [ "$running" -ge "$jobs" ]; then
                wait -n
                running=$((running - 1))
        fi
done
wait

passed=0 failed=0
entries=()
for r in "$out"/*.result; do
        [ -f "$r" ] || continue
        name=$(basename "$r" .result)
        cat "$out/$name.report"
        if [ "$(cat "$r")" = OK ]; then
                passed=$((passed + 1)); entries+=("{\"name\":\"$name\",\"result\":\"OK\"}")
        else
                failed=$((failed + 1)); entries+=("{\"name\":\"$name\",\"result\":\"FAIL\"}")
        fi
done
rm -rf "$out"
(IFS=,; echo "[${entries[*]:-}]") > "$results"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
