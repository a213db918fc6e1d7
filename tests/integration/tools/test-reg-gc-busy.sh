#!/bin/bash
# plura reg gc while the server already runs a GC (409 GC_RUNNING): exit status 3, distinct from a
# failure (1); with --if-idle exit 0 and say so (what the systemd GC unit and the Kubernetes CronJob
# use, so that "already running" is not a failed run). Nothing else turns into success.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"
. "$PLURA_SOURCE_ROOT/tests/integration/gc/gc-lib.sh"

cat >"$TEST_TMP/config.json" <<'JSON'
{ "gc": { "grace": "0", "untagged_grace": "0" } }
JSON
# each swept blob waits 400 ms: a run over 8 loose blobs lasts about 3 s
PLURA_GC_TEST_DELAY_MS=400 start_server "$TEST_TMP/data" "$TEST_TMP/config.json"
for i in $(seq 8); do head -c 200 /dev/urandom >"$TEST_TMP/b$i"; push_blob team/app "$TEST_TMP/b$i" >/dev/null; done

out=$("$PLURA" reg gc --if-idle --url "$URL" 2>&1) && rc=0 || rc=$?
check "--if-idle on an idle server: runs the GC, exit 0" test "$rc" = 0
check "... and prints its report" grep -q "blobs" <<<"$out"

for i in $(seq 8); do head -c 200 /dev/urandom >"$TEST_TMP/c$i"; push_blob team/app "$TEST_TMP/c$i" >/dev/null; done
n0=$(grep -c "gc: run started" "$TEST_TMP/server.log" || true)
curl -sS -o /dev/null -X POST "$URL/v1/registry/gc" -d '{"wait": false}'
for _ in $(seq 2400); do [ "$(grep -c "gc: run started" "$TEST_TMP/server.log")" -gt "$n0" ] && break; sleep 0.05; done
running() { curl -sS "$URL/v1/registry/gc" | jq -e .running >/dev/null; }
check "a GC is running" running

out=$("$PLURA" reg gc --url "$URL" 2>&1) && rc=0 || rc=$?
check "plura reg gc while one runs: exit 3" test "$rc" = 3
check "... naming GC_RUNNING" grep -q "GC_RUNNING" <<<"$out"
out=$("$PLURA" reg gc --dry-run --url "$URL" 2>&1) && rc=0 || rc=$?
check "plura reg gc --dry-run while one runs: exit 3 too" test "$rc" = 3
out=$("$PLURA" reg gc --if-idle --url "$URL" 2>&1) && rc=0 || rc=$?
check "--if-idle while one runs: exit 0" test "$rc" = 0
check "... saying a GC is already running, nothing started" grep -q "already running.*nothing started" <<<"$out"
out=$("$PLURA" reg gc --dry-run --if-idle --url "$URL" 2>&1) && rc=0 || rc=$?
check "--dry-run --if-idle while one runs: exit 0" test "$rc" = 0
check "the GC was still running for all of these (the checks saw the 409)" running
n1=$(grep -c "gc: run started" "$TEST_TMP/server.log")
check "... and none of them started a run" test "$n1" = "$((n0 + 1))"

# other refusals stay failures: the server gone is 1, with or without --if-idle
stop_server
"$PLURA" reg gc --if-idle --url "$URL" >/dev/null 2>&1 && rc=0 || rc=$?
check "--if-idle, server unreachable: exit 1" test "$rc" = 1
"$PLURA" gc --if-idle --data "$TEST_TMP/data" >/dev/null 2>&1 && rc=0 || rc=$?
check "offline plura gc --if-idle: a usage error (2), it belongs to plura reg gc" test "$rc" = 2
out=$("$PLURA" reg gc --help)
check "plura reg gc --help documents --if-idle" grep -q -- "--if-idle" <<<"$out"
check "... and exit status 3" grep -q "3 a GC is already running" <<<"$out"

done_testing
