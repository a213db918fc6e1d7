#!/usr/bin/env bash
# Tag policy on the /v2/ write paths, against a real server: immutable version tags (create
# once, same digest again is fine, no move, no delete, no reuse of a name that ever existed),
# forbidden `latest` under apps/**, moving tags, and read-only channels/ repositories.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"
. "$PLURA_SOURCE_ROOT/tests/integration/registry-api/test-governance-lib.sh"

DATA="$TEST_TMP/data"

# ---- phase 1: a policy without immutable patterns, to leave a deleted 2.0.0 in the history
cat >"$TEST_TMP/open.json" <<'EOF'
{ "policy": [ { "repos": "**", "immutable": [], "forbidden": [] } ] }
EOF
start_server "$DATA" "$TEST_TMP/open.json"
OLD=$(make_image apps/web old)
check "open policy: push apps/web:2.0.0" [ "$(put_manifest apps/web 2.0.0 "$IMG_DIR/old.json")" = 201 ]
req DELETE /v2/apps/web/manifests/2.0.0
check "open policy: delete the tag 2.0.0" [ "$HTTP_STATUS" = 202 ]
stop_server

# ---- phase 2: the default policy
start_server "$DATA"
A=$(make_image apps/search a "$(good_labels 1.0.0)")
B=$(make_image apps/search b "$(good_labels 1.0.1)")

check "push apps/search:1.0.0" [ "$(put_manifest apps/search 1.0.0 "$IMG_DIR/a.json")" = 201 ]
check "same digest to the same immutable tag again: idempotent success" \
        [ "$(put_manifest apps/search 1.0.0 "$IMG_DIR/a.json")" = 201 ]
check "re-point immutable 1.0.0 to another digest: refused 403" \
        [ "$(put_manifest apps/search 1.0.0 "$IMG_DIR/b.json")" = 403 ]
BODY=$(cat "$TEST_TMP/last-put.json")
check "refusal is a spec error body with code DENIED" [ "$(jq -r '.errors[0].code' <<<"$BODY")" = DENIED ]
check "refusal names the rule and pattern" body_has 'immutable (policy rule policy\[0\], pattern'
check "refusal names the current digest" body_has "$A"
req GET /v2/apps/search/manifests/1.0.0 -H "Accept: $OCI_MANIFEST"
check "1.0.0 still points at the first digest" [ "$(header Docker-Content-Digest)" = "$A" ]

check "v-prefixed semver is immutable too (v1.2.3)" [ "$(put_manifest apps/search v1.2.3 "$IMG_DIR/a.json")" = 201 ]
check "v1.2.3 cannot move" [ "$(put_manifest apps/search v1.2.3 "$IMG_DIR/b.json")" = 403 ]
check "build metadata with _ (1.0.1_ab3c9f1) is immutable" [ "$(put_manifest apps/search 1.0.1_ab3c9f1 "$IMG_DIR/b.json")" = 201 ]
check "1.0.1_ab3c9f1 cannot move" [ "$(put_manifest apps/search 1.0.1_ab3c9f1 "$IMG_DIR/a.json")" = 403 ]
check "calendar version with a 6-hex git sha, as the release practice writes it (2024.12.26_ab3c9f), is immutable" \
        [ "$(put_manifest apps/search 2024.12.26_ab3c9f "$IMG_DIR/a.json")" = 201 ]
check "2024.12.26_ab3c9f cannot move" [ "$(put_manifest apps/search 2024.12.26_ab3c9f "$IMG_DIR/b.json")" = 403 ]
check "'+' is not a legal OCI tag character (1.0.1+ab3c9f1 refused by the grammar)" \
        [ "$(put_manifest apps/search '1.0.1+ab3c9f1' "$IMG_DIR/b.json")" -ge 400 ]

req DELETE /v2/apps/search/manifests/1.0.0
check "deleting immutable tag 1.0.0 through /v2/: refused 403" status_is 403
check "delete refusal explains it" body_has 'cannot be deleted'
req DELETE "/v2/apps/search/manifests/$A"
check "deleting the manifest behind an immutable tag by digest: refused 403" status_is 403
req GET /v2/apps/search/manifests/1.0.0 -H "Accept: $OCI_MANIFEST"
check "1.0.0 is still there" status_is 200

# a name that existed before (deleted under the open policy) cannot be reused for another digest
NEW=$(make_image apps/web new)
check "reuse of deleted immutable name 2.0.0 for another digest: refused 403" \
        [ "$(put_manifest apps/web 2.0.0 "$IMG_DIR/new.json")" = 403 ]
BODY=$(cat "$TEST_TMP/last-put.json")
check "reuse refusal names the first digest" body_has "was used before for $OLD"
check "the same digest may come back under its old name" [ "$(put_manifest apps/web 2.0.0 "$IMG_DIR/old.json")" = 201 ]
req GET "/v1/registry/history?repo=apps/web&tag=2.0.0"
check "tag history keeps create, delete, create" \
        [ "$(jq -r '[.tags["2.0.0"][].action] | join(",")' <<<"$BODY")" = "create,delete,create" ]

# forbidden latest under apps/**, allowed elsewhere; moving tags move
check "latest under apps/: refused 403" [ "$(put_manifest apps/search latest "$IMG_DIR/a.json")" = 403 ]
BODY=$(cat "$TEST_TMP/last-put.json")
check "the latest refusal explains why" body_has 'forbidden in apps/search by policy rule policy\[1\]'
L1=$(make_image tools/base l1)
L2=$(make_image tools/base l2)
check "latest outside apps/: allowed" [ "$(put_manifest tools/base latest "$IMG_DIR/l1.json")" = 201 ]
check "latest outside apps/ is a moving tag" [ "$(put_manifest tools/base latest "$IMG_DIR/l2.json")" = 201 ]
check "dev moves in apps/" [ "$(put_manifest apps/search dev "$IMG_DIR/a.json")" = 201 ]
check "dev moves again" [ "$(put_manifest apps/search dev "$IMG_DIR/b.json")" = 201 ]
check "an untagged push by digest is fine in apps/" [ "$(put_manifest apps/search "$B" "$IMG_DIR/b.json")" = 201 ]

# channels/ is read-only through /v2/
C=$(make_image channels/prod/search c)
check "push to channels/prod/search:stable: refused 403" [ "$(put_manifest channels/prod/search stable "$IMG_DIR/c.json")" = 403 ]
BODY=$(cat "$TEST_TMP/last-put.json")
check "channel refusal points at promote/rollback" body_has '/v1/registry/promote'
check "push to channels/... by digest (no tag): refused 403" \
        [ "$(put_manifest channels/prod/search "$C" "$IMG_DIR/c.json")" = 403 ]
req GET "/v2/channels/prod/search/manifests/$C"
check "nothing was written into channels/prod/search" [ "$HTTP_STATUS" = 404 ]

# every refusal is in the audit log
req GET "/v1/registry/audit?action=tag_policy&limit=100"
check "tag policy refusals are audited (>= 9)" [ "$(jq '[.events[] | select(.result == "refused")] | length' <<<"$BODY")" -ge 9 ]
check "an audited refusal names the rule" [ "$(jq -r '[.events[].detail.rule] | index("channels") != null' <<<"$BODY")" = true ]
req GET /metrics
check "refusals counted in /metrics" grep -q '^plura_tag_policy_refusals_total [1-9]' <<<"$BODY"

done_testing
