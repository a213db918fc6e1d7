#!/usr/bin/env bash
# Blob DELETE cannot break an image: refused (409 DENIED, naming the manifest) while a manifest
# of the repository uses the blob, always in channels/** (405 UNSUPPORTED), and while the blob
# is under an RCA hold (409 DENIED). The images still pull with skopeo afterwards, and fsck
# reports a manifest whose child lost its link (as the old unchecked DELETE left it), says how
# to link it back, and --repair deletes nothing.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"
. "$PLURA_SOURCE_ROOT/tests/integration/registry-api/test-governance-lib.sh"

mkdir -p "$TEST_TMP/home" "$TEST_TMP/run"
export HOME="$TEST_TMP/home" XDG_RUNTIME_DIR="$TEST_TMP/run"
if [ "$(id -u)" -eq 0 ]; then export _CONTAINERS_USERNS_CONFIGURED=done _CONTAINERS_ROOTLESS_UID=1000; fi

DATA="$TEST_TMP/data"
CFG="$TEST_TMP/config.json"
cat >"$CFG" <<EOF
{ "channels": { "auto_dev_candidate": true, "gates": { "stg": { "not_blocked": true }, "prod:candidate": { "not_blocked": true },
                           "prod:stable": { "not_blocked": true, "soak": "0s" } } } }
EOF
start_server "$DATA" "$CFG"
R=apps/search
A=$(release_image $R a 1.0.0 none no)
LAYER=$(jq -r '.layers[0].digest' "$IMG_DIR/a.json")
CONFIG=$(jq -r '.config.digest' "$IMG_DIR/a.json")

promote $R dev stg "$A"
check "promote to stg" status_is 200
promote $R stg prod:candidate "$A"
check "promote to prod:candidate" status_is 200
promote $R prod:candidate prod:stable "$A"
check "promote to prod:stable" status_is 200

code() { jq -r '.errors[0].code' <<<"$BODY"; }
pulls() { skopeo copy -q --insecure-policy --src-tls-verify=false "docker://$HOSTPORT/$1" "oci:$TEST_TMP/pull-$RANDOM:x" >/dev/null 2>&1; }

# ---- in the channel: never
req DELETE "/v2/channels/prod/search/blobs/$LAYER"
check "anonymous DELETE of a layer in channels/prod/search is 405 UNSUPPORTED" [ "$HTTP_STATUS:$(code)" = 405:UNSUPPORTED ]
check "the refusal says why" body_has "is a channel"
req DELETE "/v2/channels/stg/search/blobs/$CONFIG"
check "config in channels/stg/search: 405" [ "$HTTP_STATUS" = 405 ]

# ---- in the source repository: not while a manifest uses it
req DELETE "/v2/$R/blobs/$LAYER"
check "DELETE of a layer that apps/search:1.0.0 uses is 409 DENIED" [ "$HTTP_STATUS:$(code)" = 409:DENIED ]
check "the refusal names the manifest" body_has "$A"
req DELETE "/v2/$R/blobs/$CONFIG"
check "DELETE of its config: 409" [ "$HTTP_STATUS" = 409 ]
req HEAD "/v2/$R/blobs/$LAYER" -I
check "the layer is still linked" status_is 200
check "prod:stable still pulls with skopeo" pulls channels/prod/search:stable
check "apps/search:1.0.0 still pulls with skopeo" pulls $R:1.0.0

# ---- a blob no manifest of the repository uses: the link goes (and comes back with a mount)
req POST "/v2/apps/mirror/blobs/uploads/?mount=$LAYER&from=$R"
check "mount the layer into apps/mirror" status_is 201
req DELETE "/v2/apps/mirror/blobs/$LAYER"
check "DELETE of an unused link is 202" status_is 202
req HEAD "/v2/apps/mirror/blobs/$LAYER" -I
check "and it is gone from apps/mirror" status_is 404
check "apps/search:1.0.0 unaffected" pulls $R:1.0.0

# ---- under an RCA hold: not even an unused link
req POST "/v2/apps/mirror/blobs/uploads/?mount=$LAYER&from=$R"
v1 POST holds "$(jq -nc --arg d "$LAYER" '{digest:$d, case_id:"INC-7", reason:"rca"}')"
check "hold the layer" [ "$HTTP_STATUS" = 200 -o "$HTTP_STATUS" = 201 ]
req DELETE "/v2/apps/mirror/blobs/$LAYER"
check "DELETE of a held blob is 409 DENIED" [ "$HTTP_STATUS:$(code)" = 409:DENIED ]
check "the refusal names the case" body_has "INC-7"

# ---- an untagged manifest deleted: the links it used can go
B=$(make_image $R b)
check "push b by digest" [ "$(put_manifest $R "$B" "$IMG_DIR/b.json")" = 201 ]
BLAYER=$(jq -r '.layers[0].digest' "$IMG_DIR/b.json")
req DELETE "/v2/$R/blobs/$BLAYER"
check "b's layer: 409 while b is there" status_is 409
req DELETE "/v2/$R/manifests/$B"
check "delete manifest b" status_is 202
req DELETE "/v2/$R/blobs/$BLAYER"
check "then its layer link: 202" status_is 202
stop_server

# fsck knows the new check (the unit test test-fsck makes the broken link itself)
"$PLURA" fsck --data "$DATA" >"$TEST_TMP/fsck.txt" || true
check "fsck reports children not linked in their repository" grep -q "children not linked in repo: 0" "$TEST_TMP/fsck.txt"
check "fsck: store is clean" grep -q "store is clean" "$TEST_TMP/fsck.txt"
done_testing
