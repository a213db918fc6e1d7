#!/bin/bash
# POST /v1/registry/gc (dry run and real), reports, metrics, 409 when a GC runs, plura reg gc,
# plura gc offline (refused while the server runs).
. "$PLURA_SOURCE_ROOT/tests/lib.sh"
. "$PLURA_SOURCE_ROOT/tests/integration/gc/gc-lib.sh"

cat >"$TEST_TMP/config.json" <<'JSON'
{ "gc": { "grace": "0", "untagged_grace": "0",
          "retention": [ { "repos": "**", "keep_forever": ["^v[0-9]+\\.[0-9]+\\.[0-9]+$"], "keep_last": 1, "idle_days": 0 } ] } }
JSON
DATA="$TEST_TMP/data"
start_server "$DATA" "$TEST_TMP/config.json"

make_image "$TEST_TMP/i1" 1; make_image "$TEST_TMP/i2" 2; make_image "$TEST_TMP/i3" 3
D1=$(push_image team/app v1.0.0 "$TEST_TMP/i1")
D2=$(push_image team/app sha-0000002 "$TEST_TMP/i2")
sleep 0.01
D3=$(push_image team/app sha-0000003 "$TEST_TMP/i3")
# a blob nobody references
head -c 1000 /dev/urandom >"$TEST_TMP/loose"; push_blob team/app "$TEST_TMP/loose" >/dev/null

req POST /v1/registry/gc -H 'Content-Type: application/json' -d '{"dry_run": true}'; out=$OUT
check "dry run answers 200" [ "$HTTP_STATUS" = 200 ]
check "dry run plans one tag deletion (keep_last 1)" [ "$(jq_get totals.tags_deleted <<<"$out")" = 1 ]
check "dry run plans 3 blobs (config, layer, loose)" [ "$(jq_get totals.blobs_deleted <<<"$out")" = 3 ]
check "dry run names the rule" [ "$(jq_get plan.tags.0.rule <<<"$out")" = keep_last_idle ]
req GET /v2/team/app/manifests/sha-0000002
check "dry run changed nothing" [ "$HTTP_STATUS" = 200 ]

out=$("$PLURA" reg gc --dry-run --url "$URL")
check "reg gc --dry-run prints a table" grep -q "Would delete: 1 tags" <<<"$out"

out=$("$PLURA" reg gc --json --url "$URL")
check "reg gc --json deletes the idle tag" [ "$(jq_get totals.tags_deleted <<<"$out")" = 1 ]
check "reg gc reports bytes on disk" [ "$(jq_get totals.bytes_disk <<<"$out")" -gt 4096 ]
check "per repository accounting" [ "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["per_repository"]["team/app"]["tags_deleted"])' <<<"$out")" = 1 ]
req GET /v2/team/app/manifests/sha-0000002
check "the idle version is gone" [ "$HTTP_STATUS" = 404 ]
check "the release image still pulls" verify_image team/app v1.0.0 "$D1"
check "the newest version still pulls" verify_image team/app sha-0000003 "$D3"

req GET /v1/registry/gc/reports; out=$OUT
check "reports lists the real run only" [ "$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["reports"]))' <<<"$out")" = 1 ]
req GET /v1/registry/gc/reports/last; out=$OUT
check "last report in full" [ "$(jq_get plan.tags.0.tag <<<"$out")" = sha-0000002 ]
req GET /v1/registry/gc; out=$OUT
check "status endpoint" [ "$(jq_get running <<<"$out")" = False ]

req GET /metrics; out=$OUT
check "metric plura_gc_runs_total" grep -q '^plura_gc_runs_total{result="ok",dry_run="false"} 1' <<<"$out"
check "metric plura_gc_reclaimed_bytes_total" grep -q '^plura_gc_reclaimed_bytes_total{kind="disk"}' <<<"$out"
check "metric plura_gc_duration_seconds" grep -q '^plura_gc_duration_seconds_count' <<<"$out"
check "metric plura_storage_bytes" grep -q '^plura_storage_bytes{kind="disk"}' <<<"$out"
check "metric plura_digest_unique" grep -q '^plura_digest_unique{kind="blob"} 4' <<<"$out"

req POST /v1/registry/gc -d '{"dry_run": "yes"}'
check "bad body is a 400" [ "$HTTP_STATUS" = 400 ]

# offline GC is refused while the server runs
set +e
err=$("$PLURA" gc -c "$TEST_TMP/config.json" --data "$DATA" 2>&1); rc=$?
set -e
check "plura gc refuses a store in use" [ "$rc" = 2 ]
check "and says why" grep -q "running server" <<<"$err"

# a slow GC: a second request gets 409
stop_server
export PLURA_GC_TEST_DELAY_MS=300
start_server "$DATA" "$TEST_TMP/config.json"
unset PLURA_GC_TEST_DELAY_MS
for i in 1 2 3 4 5; do head -c 100 /dev/urandom >"$TEST_TMP/l$i"; push_blob team/app "$TEST_TMP/l$i" >/dev/null; done
n0=$(grep -c "gc: run started" "$TEST_TMP/server.log" || true)
curl -sS -o "$TEST_TMP/first.json" -X POST "$URL/v1/registry/gc" -d '{}' &
first=$!
# (until it has started, however loaded the machine: the 120 s cap is for a hung server only)
for _ in $(seq 2400); do [ "$(grep -c "gc: run started" "$TEST_TMP/server.log")" -gt "$n0" ] && break; sleep 0.05; done
req POST /v1/registry/gc -d '{}'; out=$OUT
check "a second GC while one runs is a 409" [ "$HTTP_STATUS" = 409 ]
check "with a clear error code" grep -q GC_RUNNING <<<"$out"
wait "$first"
check "the first GC finished and swept the loose blobs" [ "$(jq_get totals.blobs_deleted <"$TEST_TMP/first.json")" = 5 ]

# long polls: GET gc?wait=N answers when the run ends (or after N s), without polling
req GET '/v1/registry/gc?wait=abc'
check "wait must be a number of seconds" [ "$HTTP_STATUS" = 400 ]
req GET '/v1/registry/gc?wait=301'
check "wait is at most 300 s" [ "$HTTP_STATUS" = 400 ]
t0=$(date +%s%N); req GET '/v1/registry/gc?wait=20'; out=$OUT; t1=$(date +%s%N)
check "with no run, a long poll answers at once" [ $(((t1 - t0) / 1000000)) -lt 5000 ]
check "and says not running" [ "$(jq_get running <<<"$out")" = False ]
for i in $(seq 8); do head -c 100 /dev/urandom >"$TEST_TMP/w$i"; push_blob team/app "$TEST_TMP/w$i" >/dev/null; done
req POST /v1/registry/gc -d '{"wait": false}'
check "POST wait:false answers 202" [ "$HTTP_STATUS" = 202 ]
t0=$(date +%s%N); req GET '/v1/registry/gc?wait=1'; out=$OUT; t1=$(date +%s%N)
check "a 1 s long poll during a slow run answers after its second" [ $(((t1 - t0) / 1000000)) -ge 900 ]
check "still running then" [ "$(jq_get running <<<"$out")" = True ]
t0=$(date +%s%N); req GET '/v1/registry/gc?wait=120'; out=$OUT; t1=$(date +%s%N)
check "a long poll is answered when the run ends, not at its deadline" [ $(((t1 - t0) / 1000000)) -lt 60000 ]
check "not running any more" [ "$(jq_get running <<<"$out")" = False ]
req GET /v1/registry/gc/reports/last; out=$OUT
check "and the report of that run is there" [ "$(jq_get totals.blobs_deleted <<<"$out")" = 8 ]
out=$("$PLURA" reg gc --json --url "$URL")
check "plura reg gc waits for the run with long polls" [ "$(jq_get totals.blobs_deleted <<<"$out")" = 0 ]

# SIGTERM while a POST-started run is in its sweep and a client waits for it: the run is
# cancelled, the waiter answered, the server stops cleanly (it used to close the index under
# the run and abort), and the store is clean
for i in $(seq 8); do head -c 100 /dev/urandom >"$TEST_TMP/t$i"; push_blob team/app "$TEST_TMP/t$i" >/dev/null; done
n0=$(grep -c "gc: phase sweep" "$TEST_TMP/server.log" || true)
req POST /v1/registry/gc -d '{"wait": false}'
curl -sS -o "$TEST_TMP/waiter.json" "$URL/v1/registry/gc?wait=120" &
waiter=$!
TEST_PIDS+=("$waiter")
for _ in $(seq 2400); do [ "$(grep -c "gc: phase sweep" "$TEST_TMP/server.log")" -gt "$n0" ] && break; sleep 0.05; done
kill -TERM "$SERVER_PID"
rc=0; wait "$SERVER_PID" || rc=$?
check "SIGTERM during a background run: the server exits 0" [ "$rc" = 0 ]
check "after cancelling the run" grep -q "background run failed: Operation canceled" "$TEST_TMP/server.log"
rc=0; wait "$waiter" || rc=$?
check "the waiting client got its answer" [ "$rc" = 0 ] && [ -s "$TEST_TMP/waiter.json" ]
check "fsck is clean after the cancelled run" "$PLURA" fsck --data "$DATA"

out=$("$PLURA" gc -c "$TEST_TMP/config.json" --data "$DATA" --json)
check "offline gc runs on a stopped store" [ "$(jq_get trigger <<<"$out")" = offline ]
check "offline fsck is clean after all that" "$PLURA" fsck --data "$DATA"
done_testing
