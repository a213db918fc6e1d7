#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR/tests/fuzz for SECONDS each, with its seed corpus
# from tests/fuzz/corpus/<target>/. Writes BUILD_DIR/fuzz-results.json for the test summary.
set -uo pipefail
build=${1:-build-fuzz}
secs=${2:-10}
src=$(cd "$(dirname "$0")/.." && pwd)
results="$build/fuzz-results.json"
passed=0 failed=0
entries=()
for t in "$build"/tests/fuzz/fuzz-*; do
        [ -f "$t" ] && [ -x "$t" ] || continue  # not the meson *.p object directories
        name=$(basename "$t")
        work=$(mktemp -d "/tmp/plura-$name.XXXXXX")
        corpus="$src/tests/fuzz/corpus/$name"
        dirs=("$work")
        [ -d "$corpus" ] && dirs+=("$corpus")
        if "$t" -print_final_stats=1 -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$work/" "${dirs[@]}" >"$work/log" 2>&1; then
                echo "fuzz: $name ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/log" | awk '{print $2}') runs in ${secs}s)"
                passed=$((passed + 1)); entries+=("{\"name\":\"$name\",\"result\":\"OK\"}")
                rm -rf "$work"
        else
                echo "fuzz: $name FAILED (artifacts and log in $work)"; tail -n 40 "$work/log"
                failed=$((failed + 1)); entries+=("{\"name\":\"$name\",\"result\":\"FAIL\"}")
        fi
done
(IFS=,; echo "[${entries[*]:-}]") > "$results"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
