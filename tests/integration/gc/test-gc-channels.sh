#!/bin/bash
# GC and channel repositories: channels/** is read-only through /v2/, but retention still
# removes a channel's superseded manifests once they are out of the channel's window (without
# errors), and never the current pointer or the release-tagged source image.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"
. "$PLURA_SOURCE_ROOT/tests/integration/gc/gc-lib.sh"

cat >"$TEST_TMP/config.json" <<'JSON'
{ "gc": { "grace": "0", "untagged_grace": "0" } }
JSON
DATA="$TEST_TMP/data"
start_server "$DATA" "$TEST_TMP/config.json"

make_image "$TEST_TMP/a" a; make_image "$TEST_TMP/b" b
A=$(push_image apps/shop 1.0.0 "$TEST_TMP/a")
B=$(push_image apps/shop 1.0.1 "$TEST_TMP/b")

promote() {
        req POST /v1/registry/promote -H 'Content-Type: application/json' \
                -d "{\"repo\":\"apps/shop\",\"from\":\"repo\",\"to\":\"dev\",\"digest\":\"$1\"}"
}
promote "$A"; check "promote A to dev" [ "$HTTP_STATUS" = 200 ]
promote "$B"; check "promote B to dev (A superseded)" [ "$HTTP_STATUS" = 200 ]
req GET "/v2/channels/dev/shop/manifests/$A"
check "A is still in channels/dev/shop, untagged" [ "$HTTP_STATUS" = 200 ]

req POST /v1/registry/gc -H 'Content-Type: application/json' -d '{"dry_run": false}'
check "GC inside the dev window (14 d) keeps A in the channel" [ "$(jq_get totals.links_deleted <<<"$OUT")" = 0 ]

# 20 days later the dev window has passed for A
stop_server
export PLURA_FAKE_NOW=$(( $(date +%s) + 20 * 86400 ))
start_server "$DATA" "$TEST_TMP/config.json"
req POST /v1/registry/gc -H 'Content-Type: application/json' -d '{"dry_run": false}'
out=$OUT
check "GC answers 200" [ "$HTTP_STATUS" = 200 ]
check "GC reports no errors (channel deletions are not refused by the /v2/ policy)" [ "$(jq_get totals.errors <<<"$out")" = 0 ]
check "GC removed the superseded manifest from the channel repository" [ "$(jq_get totals.links_deleted <<<"$out")" -ge 1 ]
req GET "/v2/channels/dev/shop/manifests/$A"
check "A is gone from channels/dev/shop" [ "$HTTP_STATUS" = 404 ]
req GET /v2/channels/dev/shop/manifests/candidate
check "the current pointer still resolves to B" [ "$(header Docker-Content-Digest)" = "$B" ]
check "the release-tagged source image A still pulls" verify_image apps/shop 1.0.0 "$A"
check "B pulls through the channel" verify_image channels/dev/shop candidate "$B"
req DELETE "/v2/channels/dev/shop/manifests/$B"
check "/v2/ still cannot delete from channels/ (403)" [ "$HTTP_STATUS" = 403 ]
done_testing
