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
for _ in $(seq 100); do [ "$(grep -c "gc: run started" "$TEST_TMP/server.log")" -gt "$n0" ] && break; sleep 0.05; done
req POST /v1/registry/gc -d '{}'; out=$OUT
check "a second GC while one runs is a 409" [ "$HTTP_STATUS" = 409 ]
check "with a clear error code" grep -q GC_RUNNING <<<"$out"
wait "$first"
check "the first GC finished and swept the loose blobs" [ "$(jq_get totals.blobs_deleted <"$TEST_TMP/first.json")" = 5 ]
stop_server

out=$("$PLURA" gc -c "$TEST_TMP/config.json" --data "$DATA" --json)
check "offline gc runs on a stopped store" [ "$(jq_get trigger <<<"$out")" = offline ]
check "offline fsck is clean after all that" "$PLURA" fsck --data "$DATA"
done_testing
