#!/usr/bin/env bash
# Input checks of every /v1/registry/ endpoint against a real server: a body field of the wrong
# type, an unknown body field or query parameter, a missing required field, an out-of-range
# value, a repeated parameter, a value with a NUL byte (%00) or invalid UTF-8 are each a 400
# with the spec's error body {"errors":[{"code","message":"<field>: <problem>"}]} and change
# nothing. Also the ?tag= of a /v2 manifest PUT: nul%00evil must not create the tag "nul", and
# invalid UTF-8 must not be dropped silently (201 without the tag).
. "$PLURA_SOURCE_ROOT/tests/lib.sh"

cat >"$TEST_TMP/config.json" <<EOF
{ "worm": { "path": "$TEST_TMP/worm" } }
EOF
mkdir -p "$TEST_TMP/worm"
start_server "$TEST_TMP/data" "$TEST_TMP/config.json"

api() { http "$@" >"$TEST_TMP/out"; BODY=$(cat "$TEST_TMP/out"); }
D=sha256:$(printf '%064d' 0 | tr 0 a)

# refused METHOD PATH BODY FIELD: a 400 whose only error names FIELD first in its message
refused() {
        local m=$1 p=$2 b=$3 field=$4 args=()
        [ -n "$b" ] && args=(-H 'Content-Type: application/json' --data-binary "$b")
        api "$m" "$p" "${args[@]}"
        local msg
        msg=$(jq -r '.errors[0].message' <<<"$BODY" 2>/dev/null) || msg=
        if [ "$HTTP_STATUS" != 400 ] || ! jq -e '(.errors | length) == 1 and (.errors[0].code | type) == "string"' <<<"$BODY" >/dev/null 2>&1 ||
                [ "${msg#"$field: "}" = "$msg" ]; then
                note "$m $p $b: $HTTP_STATUS $BODY (wanted 400 with a message starting '$field: ')"
                return 1
        fi
}

# ---- POST block: the three from the issue, then the other fields
check "block: cves [1,2] refused" refused POST /v1/registry/block "{\"digest\":\"$D\",\"reason\":\"r\",\"cves\":[1,2]}" 'cves[0]'
check "block: cves a string refused" refused POST /v1/registry/block "{\"digest\":\"$D\",\"reason\":\"r\",\"cves\":\"CVE-1\"}" cves
check "block: cves with an empty id refused" refused POST /v1/registry/block "{\"digest\":\"$D\",\"reason\":\"r\",\"cves\":[\"CVE-1\",\"\"]}" 'cves[1]'
check "block: severity a number refused" refused POST /v1/registry/block "{\"digest\":\"$D\",\"reason\":\"r\",\"severity\":5}" severity
check "block: an unknown severity refused" refused POST /v1/registry/block "{\"digest\":\"$D\",\"reason\":\"r\",\"severity\":\"dire\"}" severity
check "block: counts a string refused" refused POST /v1/registry/block "{\"digest\":\"$D\",\"reason\":\"r\",\"counts\":\"4\"}" counts
check "block: counts with a string count refused" refused POST /v1/registry/block "{\"digest\":\"$D\",\"reason\":\"r\",\"counts\":{\"high\":\"4\"}}" counts.high
check "block: counts with a negative count refused" refused POST /v1/registry/block "{\"digest\":\"$D\",\"reason\":\"r\",\"counts\":{\"high\":-1}}" counts.high
check "block: counts of an unknown severity refused" refused POST /v1/registry/block "{\"digest\":\"$D\",\"reason\":\"r\",\"counts\":{\"dire\":1}}" counts.dire
check "block: source not an object refused" refused POST /v1/registry/block "{\"digest\":\"$D\",\"reason\":\"r\",\"source\":\"trivy\"}" source
check "block: an unknown member of source refused" refused POST /v1/registry/block "{\"digest\":\"$D\",\"reason\":\"r\",\"source\":{\"fmt\":\"trivy\"}}" source.fmt
check "block: an unknown field refused" refused POST /v1/registry/block "{\"digest\":\"$D\",\"reason\":\"r\",\"colour\":\"red\"}" colour
check "block: reason missing" refused POST /v1/registry/block "{\"digest\":\"$D\"}" reason
check "block: reason a number" refused POST /v1/registry/block "{\"digest\":\"$D\",\"reason\":7}" reason
check "block: digest missing" refused POST /v1/registry/block '{"reason":"r"}' digest
check "block: an invalid digest" refused POST /v1/registry/block '{"digest":"sha256:xyz","reason":"r"}' digest
check "block: a query parameter refused" refused POST "/v1/registry/block?digest=$D" "{\"digest\":\"$D\",\"reason\":\"r\"}" digest
api GET /v1/registry/block
check "nothing of that was blocked" [ "$HTTP_STATUS" = 200 -a "$(jq '.blocked | length' <<<"$BODY")" = 0 ]
api POST /v1/registry/block -H 'Content-Type: application/json' --data-binary \
        "{\"digest\":\"$D\",\"reason\":\"r\",\"cves\":[\"CVE-2024-1\"],\"severity\":\"HIGH\",\"counts\":{\"critical\":0,\"high\":4},\"source\":{\"format\":\"trivy\",\"report\":\"r.json\"}}"
check "a block with every documented field is taken (201)" [ "$HTTP_STATUS" = 201 -a "$(jq -r '.counts.high' <<<"$BODY")" = 4 ]
check "unblock: digest in the body a number" refused DELETE /v1/registry/block '{"digest":5}' digest
check "unblock: an unknown field" refused DELETE "/v1/registry/block/$D" '{"why":"x"}' why
check "GET block: a body refused" refused GET /v1/registry/block '{"digest":"x"}' digest
check "GET block: a query parameter refused" refused GET "/v1/registry/block?digest=$D" '' digest

# ---- promote, rollback
check "promote: an unknown field" refused POST /v1/registry/promote '{"repo":"apps/a","from":"repo","to":"dev","digest":"'$D'","force":true}' force
check "promote: repo a number" refused POST /v1/registry/promote '{"repo":1,"to":"dev","digest":"'$D'"}' repo
check "promote: from a number" refused POST /v1/registry/promote '{"repo":"apps/a","from":1,"to":"dev","digest":"'$D'"}' from
check "promote: digest missing" refused POST /v1/registry/promote '{"repo":"apps/a","to":"dev"}' digest
check "promote: to missing" refused POST /v1/registry/promote '{"repo":"apps/a","digest":"'$D'"}' to
check "promote: a step not in the chain" refused POST /v1/registry/promote '{"repo":"apps/a","from":"repo","to":"qa","digest":"'$D'"}' to
check "rollback: an unknown field" refused POST /v1/registry/rollback '{"repo":"apps/a","to":"prod:stable","dry_run":true}' dry_run
check "rollback: to an array" refused POST /v1/registry/rollback '{"repo":"apps/a","to":["prod:stable"]}' to
check "rollback: to with a bad digest" refused POST /v1/registry/rollback '{"repo":"apps/a","to":"prod:stable@sha256:x"}' to

# ---- the GET endpoints of governance
check "history: repo missing" refused GET "/v1/registry/history" '' repo
check "history: an unknown parameter" refused GET "/v1/registry/history?repo=apps/a&colour=red" '' colour
check "history: tag with a NUL byte" refused GET "/v1/registry/history?repo=apps/a&tag=nul%00evil" '' tag
check "history: tag not UTF-8" refused GET "/v1/registry/history?repo=apps/a&tag=%ff%fe" '' tag
check "history: repo twice" refused GET "/v1/registry/history?repo=apps/a&repo=apps/b" '' repo
check "history: a parameter name with a NUL byte" refused GET "/v1/registry/history?repo=apps/a&ta%00g=x" '' 'ta\x00g'
check "channels: repo missing" refused GET /v1/registry/channels '' repo
check "channels: an invalid repo" refused GET "/v1/registry/channels?repo=UPPER/case" '' repo
check "audit: limit not a number" refused GET "/v1/registry/audit?limit=ten" '' limit
check "audit: limit 0" refused GET "/v1/registry/audit?limit=0" '' limit
check "audit: limit over 10000" refused GET "/v1/registry/audit?limit=10001" '' limit
check "audit: limit with a sign" refused GET "/v1/registry/audit?limit=%2B5" '' limit
check "audit: an unknown parameter" refused GET "/v1/registry/audit?who=me" '' who
check "audit: actor with a NUL byte" refused GET "/v1/registry/audit?actor=a%00b" '' actor
check "metrics: an unknown parameter" refused GET "/v1/registry/metrics?env=prod" '' env
check "metrics: repo not UTF-8" refused GET "/v1/registry/metrics?repo=%c3%28" '' repo
api GET "/v1/registry/audit?limit=5&action=block"
check "audit with its own parameters answers 200" [ "$HTTP_STATUS" = 200 -a "$(jq '.count' <<<"$BODY")" = 1 ]

# ---- gc
check "gc: dry_run a string" refused POST /v1/registry/gc '{"dry_run":"yes"}' dry_run
check "gc: wait a number" refused POST /v1/registry/gc '{"wait":1}' wait
check "gc: repo a number" refused POST /v1/registry/gc '{"repo":5}' repo
check "gc: an unknown field" refused POST /v1/registry/gc '{"dryrun":true}' dryrun
check "gc: ?dry_run=maybe (was read as false: a real run)" refused POST "/v1/registry/gc?dry_run=maybe" '' dry_run
check "gc: an unknown parameter" refused POST "/v1/registry/gc?force=1" '' force
check "GET gc: wait over 300" refused GET "/v1/registry/gc?wait=301" '' wait
check "GET gc: wait negative" refused GET "/v1/registry/gc?wait=-1" '' wait
check "GET gc: an unknown parameter" refused GET "/v1/registry/gc?limit=3" '' limit
check "GET gc/reports: limit 0" refused GET "/v1/registry/gc/reports?limit=0" '' limit
check "GET gc/reports: limit with trailing junk" refused GET "/v1/registry/gc/reports?limit=5x" '' limit
check "GET gc/reports/last: a parameter" refused GET "/v1/registry/gc/reports/last?limit=1" '' limit
check "GET gc: a body refused" refused GET /v1/registry/gc '{"wait":5}' wait
api GET "/v1/registry/gc/reports?limit=5"
check "gc/reports with its own parameter answers 200" [ "$HTTP_STATUS" = 200 ]
api GET /v1/registry/gc/reports
check "no GC ran from any of the refused requests" [ "$(jq '.reports | length' <<<"$BODY")" = 0 ]

# ---- holds and WORM
check "holds: export a string" refused POST /v1/registry/holds "{\"digest\":\"$D\",\"case_id\":\"INC-1\",\"reason\":\"r\",\"export\":\"yes\"}" export
check "holds: until a number" refused POST /v1/registry/holds "{\"digest\":\"$D\",\"case_id\":\"INC-1\",\"reason\":\"r\",\"until\":30}" until
check "holds: an unknown field" refused POST /v1/registry/holds "{\"digest\":\"$D\",\"case_id\":\"INC-1\",\"reason\":\"r\",\"owner\":\"me\"}" owner
check "holds: case_id missing" refused POST /v1/registry/holds "{\"digest\":\"$D\",\"reason\":\"r\"}" case_id
check "holds: an invalid case_id" refused POST /v1/registry/holds "{\"digest\":\"$D\",\"case_id\":\"../x\",\"reason\":\"r\"}" case_id
check "GET holds: active=maybe" refused GET "/v1/registry/holds?active=maybe" '' active
check "GET holds: case_id with a NUL byte" refused GET "/v1/registry/holds?case_id=INC-1%00x" '' case_id
check "GET holds: an unknown parameter" refused GET "/v1/registry/holds?digest=$D" '' digest
check "DELETE holds: a body refused" refused DELETE "/v1/registry/holds/INC-1/$D" '{"reason":"x"}' reason
check "worm/export: case_id a number" refused POST /v1/registry/worm/export '{"case_id":7}' case_id
check "worm/export: an unknown field" refused POST /v1/registry/worm/export '{"case":"INC-1"}' case
check "worm/export: neither case_id nor digest" refused POST /v1/registry/worm/export '{}' 'case_id, digest'
check "worm/bundles: an unknown parameter" refused GET "/v1/registry/worm/bundles?digest=$D" '' digest
check "worm/verify: bundle missing" refused POST /v1/registry/worm/verify '{}' bundle
check "worm/verify: bundle a number" refused POST /v1/registry/worm/verify '{"bundle":1}' bundle
api GET /v1/registry/holds
check "no hold was added by any of them" [ "$HTTP_STATUS" = 200 -a "$(jq '.holds | length' <<<"$BODY")" = 0 ]

# ---- an error message that quotes a path with invalid UTF-8 is still the spec's error body
# (json_pack refused the message and the client got "{}")
error_body() { # METHOD PATH STATUS
        api "$1" "$2"
        [ "$HTTP_STATUS" = "$3" ] && jq -e '(.errors | length) == 1 and (.errors[0].code | type) == "string" and (.errors[0].message | type) == "string"' <<<"$BODY" >/dev/null ||
                { note "$1 $2: $HTTP_STATUS $BODY (wanted $3 with an error body)"; return 1; }
}
check "GET block/%ff: 404 with an error body" error_body GET "/v1/registry/block/%ff" 404
check "GET holds/%ff: 400 with an error body" error_body GET "/v1/registry/holds/%ff" 400
check "GET gc/%ff: 404 with an error body" error_body GET "/v1/registry/gc/%ff" 404
check "GET /v1/registry/%ff: 404 with an error body" error_body GET "/v1/registry/%ff" 404
check "GET /v2/<name>/manifests/%ff: 404 with an error body" error_body GET "/v2/test/app/manifests/%ff" 404

# ---- /v2 manifest PUT ?tag=
dig() { echo "sha256:$(sha256_of "$1")"; }
R=test/app
MT=application/vnd.oci.image.manifest.v1+json
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$TEST_TMP/config"
http POST "/v2/$R/blobs/uploads/?digest=$(dig "$TEST_TMP/config")" --data-binary @"$TEST_TMP/config" >/dev/null
[ "$HTTP_STATUS" = 201 ] || fail "config push: $HTTP_STATUS"
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[]}' \
        "$MT" "$(dig "$TEST_TMP/config")" "$(stat -c %s "$TEST_TMP/config")" >"$TEST_TMP/m"
M=$(dig "$TEST_TMP/m")
tags() { curl -sS "$URL/v2/$R/tags/list" | jq -c '.tags // []'; }
api PUT "/v2/$R/manifests/$M?tag=nul%00evil" -H "Content-Type: $MT" --data-binary @"$TEST_TMP/m"
check "?tag=nul%00evil: 400 TAG_INVALID" [ "$HTTP_STATUS" = 400 -a "$(jq -r '.errors[0].code' <<<"$BODY")" = TAG_INVALID ]
check "?tag=nul%00evil: no tag nul" [ "$(tags)" = '[]' ]
api PUT "/v2/$R/manifests/$M?tag=ok&tag=%ff" -H "Content-Type: $MT" --data-binary @"$TEST_TMP/m"
check "?tag= not UTF-8: 400 TAG_INVALID (was 201 without the tag)" [ "$HTTP_STATUS" = 400 -a "$(jq -r '.errors[0].code' <<<"$BODY")" = TAG_INVALID ]
check "?tag= not UTF-8: no tag written, not even the valid one" [ "$(tags)" = '[]' ]
api PUT "/v2/$R/manifests/$M?tag=ok&tag=also-ok" -H "Content-Type: $MT" --data-binary @"$TEST_TMP/m"
check "valid ?tag= values still work" [ "$HTTP_STATUS" = 201 -a "$(tags)" = '["also-ok","ok"]' ]

done_testing
