#!/bin/bash
# kill -9 of the server during the mark and during the sweep of a GC: `plura fsck` finds the
# store clean, the server restarts, a second GC completes and collects the rest, and every kept
# image still pulls. PLURA_GC_TEST_DELAY_MS slows the GC down enough to hit each phase.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"
. "$PLURA_SOURCE_ROOT/tests/integration/gc/gc-lib.sh"

cat >"$TEST_TMP/config.json" <<'JSON'
{ "gc": { "grace": "0", "untagged_grace": "0",
          "retention": [ { "repos": "**", "keep_forever": ["^v[0-9]+\\.[0-9]+\\.[0-9]+$"], "keep_last": 0, "idle_days": 0 } ] } }
JSON
DATA="$TEST_TMP/data"
N_KEEP=8
N_DROP=12

start_slow() { export PLURA_GC_TEST_DELAY_MS=$1; start_server "$DATA" "$TEST_TMP/config.json"; unset PLURA_GC_TEST_DELAY_MS; }

# wait_log PATTERN COUNT_BEFORE: until PATTERN appears more often than before in server.log
# (or the server died); the 120 s cap is for a hung server only, not a pace the GC must keep
wait_log() {
        for _ in $(seq 2400); do
                [ "$(grep -c "$1" "$TEST_TMP/server.log" || true)" -gt "$2" ] && return 0
                kill -0 "$SERVER_PID" 2>/dev/null || return 1
                sleep 0.05
        done
        return 1
}

# kill9_during PHASE SECONDS: starts a GC, waits for "gc: phase PHASE", kills the server
# SECONDS later with SIGKILL
kill9_during() {
        local n
        n=$(grep -c "gc: phase $1" "$TEST_TMP/server.log" || true)
        curl -sS -o /dev/null -X POST "$URL/v1/registry/gc" -d '{}' &
        check "GC reached the $1 phase" wait_log "gc: phase $1" "$n"
        sleep "$2"
        kill9_server
        wait || true
}

push_round() {
        local round=$1 i
        for i in $(seq "$N_KEEP"); do
                make_image "$TEST_TMP/r$round/k$i" "keep-$round-$i"
                echo "crash/app v$round.0.$i $(push_image crash/app "v$round.0.$i" "$TEST_TMP/r$round/k$i")" >>"$TEST_TMP/kept"
        done
        for i in $(seq "$N_DROP"); do
                make_image "$TEST_TMP/r$round/d$i" "drop-$round-$i"
                push_image crash/app "sha-$round$i" "$TEST_TMP/r$round/d$i" >/dev/null
        done
}

# every kept image at its digest, and everything else the registry shows, whole (one walk)
verify_kept() { python3 "$PLURA_SOURCE_ROOT/tests/e2e/check-registry.py" "$URL" --expect "$TEST_TMP/kept" --quiet; }

blob_files() { find "$DATA/blobs" -type f | wc -l; }

# ---- round 1: kill -9 during the mark
start_slow 100
push_round 1
kill9_during mark 0.3
check "the sweep had not started" [ "$(grep -c "gc: phase sweep" "$TEST_TMP/server.log" || true)" = 0 ]
check "fsck clean after kill -9 during mark" "$PLURA" fsck --data "$DATA"
start_server "$DATA" "$TEST_TMP/config.json"
req POST /v1/registry/gc -d '{}'
check "GC completes after restart" [ "$HTTP_STATUS" = 200 ]
check "it collected the dropped images' manifests" [ "$(jq_get totals.manifests_deleted <<<"$OUT")" = "$N_DROP" ]
check "and their blobs" [ "$(jq_get totals.blobs_deleted <<<"$OUT")" = $((2 * N_DROP)) ]
check "kept images pull after the crash" verify_kept
check "blob files: exactly the kept images' (config + layer)" [ "$(blob_files)" = $((2 * N_KEEP)) ]
stop_server
check "fsck clean" "$PLURA" fsck --data "$DATA"

# ---- round 2: kill -9 during the sweep
start_slow 150
push_round 2
kill9_during sweep 1
left=$(blob_files)
note "blob files after the kill: $left (kept $((4 * N_KEEP)) + not yet swept)"
check "the kill interrupted the sweep midway" [ "$left" -gt $((4 * N_KEEP)) ]
check "fsck clean after kill -9 during sweep" "$PLURA" fsck --data "$DATA"
start_server "$DATA" "$TEST_TMP/config.json"
req POST /v1/registry/gc -d '{}'
check "GC completes after restart" [ "$HTTP_STATUS" = 200 ]
check "no errors in the second run" [ "$(jq_get totals.errors <<<"$OUT")" = 0 ]
check "kept images of both rounds pull" verify_kept
check "blob files: exactly the kept images'" [ "$(blob_files)" = $((4 * N_KEEP)) ]
req POST /v1/registry/gc -d '{}'
check "a further GC finds nothing" [ "$(jq_get totals.blobs_deleted <<<"$OUT")" = 0 ]
stop_server
check "fsck clean after round 2" "$PLURA" fsck --data "$DATA"

# ---- round 3: kill -9 during the apply phase, whose deletions are written without a WAL sync
# each (one sync at the end of the phase): whatever was written stays consistent, the rest is
# redone by the next run
start_slow 200
push_round 3
m=$(grep -c "gc: phase mark" "$TEST_TMP/server.log" || true)
kill9_during apply 1
check "the mark had not started" [ "$(grep -c "gc: phase mark" "$TEST_TMP/server.log" || true)" = "$m" ]
check "fsck clean after kill -9 during apply" "$PLURA" fsck --data "$DATA"
start_server "$DATA" "$TEST_TMP/config.json"
check "kept images of all rounds pull after the crash" verify_kept
req GET "/v2/crash/app/tags/list"
check "some of round 3's dropped tags were deleted before the kill" [ "$(jq '[.tags[] | select(startswith("sha-3"))] | length' <<<"$OUT")" -lt "$N_DROP" ]
req POST /v1/registry/gc -d '{}'
check "GC completes after restart" [ "$HTTP_STATUS" = 200 ]
check "no errors in the run after the crash" [ "$(jq_get totals.errors <<<"$OUT")" = 0 ]
check "kept images of all rounds pull" verify_kept
check "blob files: exactly the kept images'" [ "$(blob_files)" = $((6 * N_KEEP)) ]
req GET "/v2/crash/app/tags/list"
check "no dropped tag is left" [ "$(jq '[.tags[] | select(startswith("sha-"))] | length' <<<"$OUT")" = 0 ]
stop_server
check "fsck clean at the end" "$PLURA" fsck --data "$DATA"
done_testing
