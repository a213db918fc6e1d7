#!/usr/bin/env bash
# PLURA_FAKE_NOW, the test clock: an RFC 3339 time (with a fraction, with an offset) or whole
# seconds since the epoch; anything else stops plura at start with a message naming the variable
# and its value (it read "2025-01-01T00:00:00Z" as 2025 seconds after the epoch).
. "$PLURA_SOURCE_ROOT/tests/lib.sh"

# until: "30d" from the fake now is a time the server reports back
hold_until() { # N: prints the "until" of a new hold on a new blob
        printf 'blob %s' "$1" >"$TEST_TMP/blob"
        local d=sha256:$(sha256_of "$TEST_TMP/blob")
        curl -sSf -o /dev/null -X POST "$URL/v2/test/clock/blobs/uploads/?digest=$d" --data-binary @"$TEST_TMP/blob" || return 1
        curl -sS -X POST "$URL/v1/registry/holds" -d "{\"digest\":\"$d\",\"case_id\":\"INC-$1\",\"reason\":\"clock\",\"until\":\"30d\"}" | jq -r .until
}
n=0
for now in 2025-01-01T00:00:00Z 2025-01-01T02:00:00+02:00 2025-01-01T00:00:00.000Z 1735689600; do
        n=$((n + 1))
        PLURA_FAKE_NOW=$now start_server "$TEST_TMP/data$n"
        check "PLURA_FAKE_NOW=$now: now is 2025-01-01T00:00:00Z" [ "$(hold_until "$n")" = 2025-01-31T00:00:00.000000000Z ]
        stop_server
done

for bad in 2025-01-01 "2025-01-01T00:00:00" tomorrow 1735689600s -5 "2025-02-30T00:00:00Z"; do
        rc=0
        PLURA_FAKE_NOW=$bad timeout 10 "$PLURA" serve --listen 127.0.0.1:0 --data "$TEST_TMP/bad" >"$TEST_TMP/bad.log" 2>&1 || rc=$?
        check "PLURA_FAKE_NOW=$bad: serve refuses to start (exit 2)" [ "$rc" = 2 ]
        check "PLURA_FAKE_NOW=$bad: the message names the variable and the value" grep -qF "PLURA_FAKE_NOW=\"$bad\"" "$TEST_TMP/bad.log"
done
rc=0
PLURA_FAKE_NOW=soon "$PLURA" reg tags x >"$TEST_TMP/bad.log" 2>&1 || rc=$?
check "the client refuses it too" [ "$rc" = 2 ]

done_testing
