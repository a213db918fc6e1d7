#!/usr/bin/env bash
# Channels, gated promotion, rollback, block list, audit and metrics, end to end against a
# real server: images pushed with curl, cosign simple-signing signatures made with openssl
# (P-256 key generated here; the sha256-<hex>.sig tag and the OCI 1.1 referrer form), a
# CycloneDX SBOM referrer, dev → stg → prod:candidate → prod:stable, every gate refused for
# the right reason, the soak time checked with PLURA_FAKE_NOW, rollback seen by skopeo.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"
. "$PLURA_SOURCE_ROOT/tests/integration/registry-api/test-governance-lib.sh"

mkdir -p "$TEST_TMP/home" "$TEST_TMP/run"
export HOME="$TEST_TMP/home" XDG_RUNTIME_DIR="$TEST_TMP/run"
if [ "$(id -u)" -eq 0 ]; then export _CONTAINERS_USERNS_CONFIGURED=done _CONTAINERS_ROOTLESS_UID=1000; fi

make_keypair cosign
make_keypair other
DATA="$TEST_TMP/data"
CFG="$TEST_TMP/config.json"
cat >"$CFG" <<EOF
{ "channels": {
    "auto_dev_candidate": true,
    "public_keys": ["$TEST_TMP/cosign.pub"],
    "gates": {
      "stg": { "not_blocked": true },
      "prod:candidate": { "not_blocked": true, "signature": true, "sbom": true, "labels": true },
      "prod:stable": { "not_blocked": true, "signature": true, "sbom": true, "labels": true, "soak": "15m" }
    } } }
EOF
T0=$(date +%s)
start_server "$DATA" "$CFG"
R=apps/search

# ---- a good release: labels, signature (both forms), SBOM; auto dev candidate on push
A=$(release_image $R a 1.0.0)
req GET "/v2/channels/dev/search/manifests/candidate" -H "Accept: $OCI_MANIFEST"
check "push of immutable 1.0.0 set channels/dev/search:candidate (auto_dev_candidate)" \
        [ "$HTTP_STATUS:$(header Docker-Content-Digest)" = "200:$A" ]
promote $R dev stg "$A"
check "promote A dev → stg" status_is 200
check "answer shows the new state" [ "$(jq -r '.state["stg:candidate"]' <<<"$BODY")" = "$A" ]
promote $R stg prod:candidate "$A"
check "promote A stg → prod:candidate (signature, sbom, labels pass)" status_is 200
check "all four prod:candidate gates passed" [ "$(jq -r '.gates_passed | sort | join(",")' <<<"$BODY")" = "labels,not_blocked,sbom,signature" ]
promote $R stg prod:candidate "$A"
check "promoting again to where it already is: 200, unchanged" [ "$HTTP_STATUS:$(jq -r .changed <<<"$BODY")" = "200:false" ]
promote $R prod:candidate prod:stable "$A"
check "prod:candidate → prod:stable before the soak time: refused 412" status_is 412
check "soak refusal names the gate and the times" [ "$(jq -r '.errors[0].detail.failed_gates[0].gate' <<<"$BODY")" = soak ]
check "soak refusal says how long it soaked and what it needs" body_has 'needs 15m'
promote $R stg prod:stable "$A"
check "skipping a step (stg → prod:stable) is refused 400" status_is 400
promote $R dev prod:candidate "$A"
check "from must be the step before to (dev → prod:candidate refused)" status_is 400

# refusals through the CLI: non-zero with the server's reason
set +e
OUT=$("$PLURA" reg promote $R prod:candidate prod:stable "$A" --url "$URL" 2>&1); RC=$?
set -e
check "plura reg promote refusal exits non-zero" [ "$RC" -ne 0 ]
check "plura reg promote prints the server's reason" grep -q 'GATES_FAILED.*soak' <<<"$OUT"

# ---- negative images, each one gate off (all reach stg, where only not_blocked applies)
N=apps/neg
TAMPER=$(release_image $N tamper 2.0.0 cosign:tamper)
WRONGKEY=$(release_image $N wrongkey 2.0.1 other)
PAYLOAD=$(release_image $N payload 2.0.2 cosign:payload)
NOSBOM=$(release_image $N nosbom 2.0.3 cosign no)
NOLABEL=$(release_image $N nolabel 2.0.4 cosign yes \
        '{"org.opencontainers.image.version":"2.0.4","org.opencontainers.image.revision":"ab3c9f1d","org.opencontainers.image.created":"2024-12-26T09:00:00Z"}')
NOTHING=$(release_image $N nothing 2.0.5 none no '{}')
SIGTAG=$(release_image $N sigtag 2.0.6 cosign:sigtag-only)
REFONLY=$(release_image $N refonly 2.0.7 cosign:referrer-only)
try_prod_candidate() {
        promote $N repo dev "$1" && [ "$HTTP_STATUS" = 200 ] || { echo "# repo→dev $HTTP_STATUS $BODY" >&2; return 1; }
        promote $N dev stg "$1" && [ "$HTTP_STATUS" = 200 ] || { echo "# dev→stg $HTTP_STATUS $BODY" >&2; return 1; }
        promote $N stg prod:candidate "$1"
}
failed_gates() { jq -r '[.errors[0].detail.failed_gates[].gate] | sort | join(",")' <<<"$BODY"; }

try_prod_candidate "$TAMPER"
check "tampered signature: refused 412" status_is 412
check "tampered signature: only the signature gate fails" [ "$(failed_gates)" = signature ]
check "tampered signature: 'does not verify'" body_has 'signature does not verify against any of the 1 configured public key'
try_prod_candidate "$WRONGKEY"
check "signature by a key that is not configured: refused 412, signature gate" [ "$HTTP_STATUS:$(failed_gates)" = 412:signature ]
check "wrong key: 'does not verify'" body_has 'does not verify'
try_prod_candidate "$PAYLOAD"
check "payload edited after signing: refused 412, signature gate" [ "$HTTP_STATUS:$(failed_gates)" = 412:signature ]
try_prod_candidate "$NOSBOM"
check "missing SBOM: refused 412, sbom gate only" [ "$HTTP_STATUS:$(failed_gates)" = 412:sbom ]
check "missing SBOM: explained" body_has 'no SBOM referrer'
try_prod_candidate "$NOLABEL"
check "missing label: refused 412, labels gate only" [ "$HTTP_STATUS:$(failed_gates)" = 412:labels ]
check "missing label: names org.opencontainers.image.source" body_has 'org.opencontainers.image.source'
try_prod_candidate "$NOTHING"
check "unsigned, no SBOM, no labels: every failed gate is listed" [ "$HTTP_STATUS:$(failed_gates)" = 412:labels,sbom,signature ]
check "unsigned: 'no cosign signature'" body_has 'no cosign signature'
try_prod_candidate "$SIGTAG"
check "signature only as the sha256-<hex>.sig tag: passes" status_is 200
try_prod_candidate "$REFONLY"
check "signature only as an OCI 1.1 referrer: passes" status_is 200
promote $N prod:candidate prod:stable "$SIGTAG"
check "digest not at from (prod:candidate holds another one): 409" status_is 409
promote $N repo dev "$NOTHING"
check "unsigned images may go to dev (no gates there)" status_is 200

# ---- after the soak time (the server's clock moved on by 1h)
stop_server
export PLURA_FAKE_NOW=$((T0 + 3600))
start_server "$DATA" "$CFG"
promote $R prod:candidate prod:stable "$A"
check "after 1h at prod:candidate: A → prod:stable" status_is 200
check "promotion latency recorded (first push → prod:stable, ~1h)" \
        jqe '.entry.latency_s >= 3500 and .entry.latency_s < 7200'

B=$(release_image $R b 1.1.0)
promote $R dev stg "$B" && check "B dev → stg" status_is 200
promote $R stg prod:candidate "$B" && check "B stg → prod:candidate" status_is 200
stop_server
export PLURA_FAKE_NOW=$((T0 + 7200))
start_server "$DATA" "$CFG"
promote $R prod:candidate prod:stable "$B"
check "B → prod:stable after its soak" status_is 200
check "previous of prod:stable was A" [ "$(jq -r .previous <<<"$BODY")" = "$A" ]
check "skopeo inspect channels/prod/search:stable shows B" \
        [ "$(skopeo inspect --tls-verify=false "docker://$HOSTPORT/channels/prod/search:stable" | jq -r .Digest)" = "$B" ]

# ---- rollback
v1 POST rollback '{"repo":"apps/search","to":"prod:stable"}'
check "rollback prod:stable: 200" status_is 200
check "rollback returns the previous digest A" [ "$(jq -r .digest <<<"$BODY")" = "$A" ]
check "rollback took less than 2 s on the server (benchmark: tools/bench/bench-governance.sh)" jqe ".duration_ms < 2000"
check "skopeo inspect channels/prod/search:stable shows A after the rollback" \
        [ "$(skopeo inspect --tls-verify=false "docker://$HOSTPORT/channels/prod/search:stable" | jq -r .Digest)" = "$A" ]
OUT=$("$PLURA" reg rollback $R "prod:stable@$B" --url "$URL")
check "plura reg rollback to a named digest from the history" grep -q "rolled back channels/prod/search:stable to $B" <<<"$OUT"
v1 POST rollback "{\"repo\":\"apps/search\",\"to\":\"prod:stable@$TAMPER\"}"
check "rollback to a digest never at prod:stable: refused 409" status_is 409
v1 POST rollback '{"repo":"apps/search","to":"prod:stable"}'
check "rollback again goes back to A" [ "$HTTP_STATUS:$(jq -r .digest <<<"$BODY")" = "200:$A" ]
v1 GET "history?repo=apps/search&tag=prod:stable"
check "history of prod:stable: promote A, promote B, rollback, rollback, rollback" \
        [ "$(jq -r '[.channels["prod:stable"].history[].action] | join(",")' <<<"$BODY")" = "promote,promote,rollback,rollback,rollback" ]
check "history entries carry previous digests" [ "$(jq -r '.channels["prod:stable"].history[1].previous' <<<"$BODY")" = "$A" ]
v1 GET "history?repo=apps/search"
check "history has the tag timeline of 1.0.0" [ "$(jq -r '.tags["1.0.0"][0].digest' <<<"$BODY")" = "$A" ]
check "history has all the channel timelines" [ "$(jq -r '.channels | keys | join(",")' <<<"$BODY")" = "dev:candidate,prod:candidate,prod:stable,stg:candidate" ]

# ---- block list
v1 POST block "{\"digest\":\"$A\",\"reason\":\"CVE-2024-6119 in libssl3\",\"cves\":[\"CVE-2024-6119\"]}"
check "block A: 201" status_is 201
req GET "/v2/apps/search/manifests/$A" -H "Accept: $OCI_MANIFEST"
check "pull of blocked A by digest: 403" status_is 403
check "403 carries DENIED and the reason" [ "$(jq -r '.errors[0].code' <<<"$BODY")" = DENIED ] 
check "the reason names the CVE" body_has 'CVE-2024-6119'
req GET /v2/apps/search/manifests/1.0.0 -H "Accept: $OCI_MANIFEST"
check "pull of blocked A by tag: 403" status_is 403
req GET /v2/channels/prod/search/manifests/stable -H "Accept: $OCI_MANIFEST"
check "pull of channels/prod/search:stable (A): 403" status_is 403
set +e; skopeo inspect --tls-verify=false "docker://$HOSTPORT/channels/prod/search:stable" >/dev/null 2>&1; RC=$?; set -e
check "skopeo cannot inspect the blocked stable" [ "$RC" -ne 0 ]
promote $R repo dev "$A"
check "a blocked digest cannot be promoted (412, not_blocked)" [ "$HTTP_STATUS:$(failed_gates)" = 412:not_blocked ]
v1 POST rollback "{\"repo\":\"apps/search\",\"to\":\"prod:stable@$B\"}"
check "rolling away from the blocked digest works" status_is 200
v1 POST rollback "{\"repo\":\"apps/search\",\"to\":\"prod:stable@$A\"}"
check "rolling back onto a blocked digest is refused 412" status_is 412

# an index containing a blocked image
X=$(make_image apps/multi x)
check "push x by digest" [ "$(put_manifest apps/multi "$X" "$IMG_DIR/x.json")" = 201 ]
jq -nc --arg d "$X" --argjson s "$(size_of "$IMG_DIR/x.json")" \
        '{schemaVersion:2, mediaType:"application/vnd.oci.image.index.v1+json",
          manifests:[{mediaType:"application/vnd.oci.image.manifest.v1+json", digest:$d, size:$s, platform:{os:"linux", architecture:"amd64"}}]}' >"$IMG_DIR/idx.json"
check "push an index of x as 3.0.0" [ "$(put_manifest apps/multi 3.0.0 "$IMG_DIR/idx.json" "$OCI_INDEX")" = 201 ]
OUT=$("$PLURA" reg block "$X" --reason "policy: unapproved base image" --cve CVE-2024-2961 --url "$URL")
check "plura reg block X" grep -q "blocked $X" <<<"$OUT"
req GET /v2/apps/multi/manifests/3.0.0 -H "Accept: $OCI_INDEX"
check "pull of an index with a blocked child: 403" status_is 403
check "index refusal names the child" body_has "$X"
"$PLURA" reg unblock "$X" --url "$URL" >/dev/null
req GET /v2/apps/multi/manifests/3.0.0 -H "Accept: $OCI_INDEX"
check "after plura reg unblock the index pulls again" status_is 200
req DELETE "/v1/registry/block/$X"
check "unblocking twice: 404" status_is 404

# scanner reports
set +e
OUT=$("$PLURA" reg block --import "$PLURA_SOURCE_ROOT/tests/data/trivy-report.json" --threshold critical=0,high=3 --digest "$B" --url "$URL" 2>&1); RC=$?
set -e
check "plura reg block --import (Trivy) succeeds" [ "$RC" = 0 ]
check "Trivy report over threshold (critical 2 > 0, high 4 > 3) blocks B" grep -q "blocked $B: .*critical 2 > 0, high 4 > 3" <<<"$OUT"
v1 GET "block/$B"
check "the block record lists the report's CVEs" [ "$(jq -r '.cves | sort | join(",")' <<<"$BODY")" = "CVE-2024-2961,CVE-2024-33599,CVE-2024-37370,CVE-2024-45491,CVE-2024-45492,CVE-2024-6119" ]
check "the block record has the severity counts" [ "$(jq -r '.counts.high' <<<"$BODY")" = 4 ]
OUT=$("$PLURA" reg block --import "$PLURA_SOURCE_ROOT/tests/data/trivy-report.json" --threshold critical=2,high=4 --digest "$SIGTAG" --url "$URL")
check "Trivy report within threshold: not blocked" grep -q 'not blocked' <<<"$OUT"
v1 GET "block/$SIGTAG"
check "no block record for it" status_is 404
OUT=$("$PLURA" reg block --import "$PLURA_SOURCE_ROOT/tests/data/grype-report.json" --threshold critical=0,high=3 --digest "$REFONLY" --url "$URL")
check "Grype report over threshold (critical 1 > 0) blocks" grep -q 'critical 1 > 0' <<<"$OUT"
OUT=$("$PLURA" reg block --import "$PLURA_SOURCE_ROOT/tests/data/grype-report.json" --threshold critical=1,high=3 --digest "$SIGTAG" --url "$URL")
check "Grype report within threshold: not blocked" grep -q 'not blocked' <<<"$OUT"
"$PLURA" reg unblock "$B" --url "$URL" >/dev/null
"$PLURA" reg unblock "$A" --url "$URL" >/dev/null
req GET "/v2/apps/search/manifests/$A" -H "Accept: $OCI_MANIFEST"
check "unblocked A pulls again" status_is 200
v1 POST rollback '{"repo":"apps/search","to":"prod:stable"}'
check "final rollback of prod:stable to A" [ "$HTTP_STATUS:$(jq -r .digest <<<"$BODY")" = "200:$A" ]

# ---- audit: every kind of event is there
v1 GET "audit?limit=1000"
ACTIONS=$(jq -r '[.events[] | "\(.action):\(.result)"] | unique | join(" ")' <<<"$BODY")
for a in push:ok promote:ok promote:refused rollback:ok rollback:refused block:ok unblock:ok pull:denied auto_dev_candidate:ok; do
        check "audit has $a" grep -qw -- "$a" <<<"$ACTIONS"
done
v1 GET "audit?limit=3"
CUR=$(jq -r .next_cursor <<<"$BODY")
FIRST=$(jq -r '.events[0].time' <<<"$BODY")
FIRST_CUR=$(jq -r '.events[0].cursor' <<<"$BODY")
v1 GET "audit?limit=3&cursor=$CUR"
check "audit pages with a cursor (next page: 3 later events)" \
        [ "$(jq -r '.events | length' <<<"$BODY")" = 3 ] && [ "$(jq -r '.events[0].cursor' <<<"$BODY")" \> "$FIRST_CUR" ]
OUT=$("$PLURA" reg audit --action rollback --url "$URL")
check "plura reg audit --action rollback lists the rollbacks" [ "$(grep -c 'rollback' <<<"$OUT")" -ge 5 ]

# ---- metrics
v1 GET "metrics?repo=apps/search"
check "metrics: image_count_by_env {dev:1, stg:1, prod:2}" [ "$(jq -c .image_count_by_env <<<"$BODY")" = '{"dev":1,"stg":1,"prod":2}' ]
check "metrics: promotion_latency count 2, p95 ~2h" jqe '.promotion_latency.count == 2 and .promotion_latency.p95_seconds > 3500'
check "metrics: rollback_time count 5, p95 < 2 s" jqe ".rollback_time.count == 5 and .rollback_time.p95_seconds < 2"
check "metrics: sbom_coverage and signed_artifacts 1.0 over apps/search channels" \
        jqe '.sbom_coverage == 1 and .signed_artifacts == 1 and .digests_in_channels == 2'
check "metrics: cve_block_events counts blocks and denials" jqe '.cve_block_events >= 9'
check "metrics: digest_unique (A, B, 2 .sig tags, 2 signature referrers, 2 SBOMs) and registry_storage_bytes" \
        jqe '.digest_unique == 8 and .registry_storage_bytes > 0'
v1 GET "metrics?repo=apps/neg"
check "metrics for apps/neg: sbom coverage and signed ratios below 1" \
        jqe '.sbom_coverage < 1 and .signed_artifacts < 1 and .signed_artifacts > 0'
req GET /metrics
# registry-wide: prod holds A and B of search plus one apps/neg image at prod:candidate
for m in 'plura_image_count_by_env{env="prod"} 3' 'plura_rollback_time_seconds_count 5' \
         'plura_promotion_latency_seconds_count 2' 'plura_cve_block_events_total{kind="block"}' \
         'plura_sbom_coverage_ratio' 'plura_signed_artifacts_ratio' 'plura_registry_storage_bytes'; do
        check "/metrics has $m" grep -qF -- "$m" <<<"$BODY"
done
OUT=$("$PLURA" reg metrics --repo apps/search --url "$URL")
check "plura reg metrics prints rollback_time p95" grep -q '^rollback_time .*p95' <<<"$OUT"
OUT=$("$PLURA" reg history apps/search --url "$URL")
check "plura reg history shows prod:stable" grep -q "prod:stable -> $A" <<<"$OUT"
OUT=$("$PLURA" reg tags apps/search --url "$URL")
check "plura reg tags lists the tags" grep -q '^1.1.0$' <<<"$OUT"
check "plura reg tags shows the channel pointers" grep -q "prod:stable *$A" <<<"$OUT"

done_testing
