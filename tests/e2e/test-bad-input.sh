#!/usr/bin/env bash
# Bad input end to end: wrong digests, truncated bodies, oversized and invalid manifests,
# manifests with unknown blobs, bad names, huge headers, malformed digests in URLs.
# Each gets a 4xx with the spec's JSON error body, the server stays up, and nothing is
# stored: the catalog, the tags and the committed blob files are exactly what they were.
# (Per-endpoint status codes are the integration tests' job; this is "nothing stored".)
. "$PLURA_SOURCE_ROOT/tests/lib.sh"
. "$PLURA_SOURCE_ROOT/tests/e2e/e2e-lib.sh"

L="$TEST_TMP/layout"
make_layout --out "$L" --seed 3 --refs base --describe "$L.json"
DATA="$TEST_TMP/data"
start_registry "$DATA"
check "push a good image first" skopeo_push "oci:$L:base" "docker://$HOSTPORT/good/base:one"

stored_blobs() { (cd "$DATA" && find . -path '*blobs*' -type f ! -name '*.tmp' | sort); }
snapshot() { { catalog; echo ---; tags_of good/base; echo ---; stored_blobs; } >"$TEST_TMP/snap.$1"; }
snapshot before

RAW() { python3 "$PLURA_SOURCE_ROOT/tests/e2e/rawhttp.py" "$@"; }
alive() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/v2/")" = 200 ]; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
absent_blob() { [ "$(curl -s -o /dev/null -w '%{http_code}' -I "$URL/v2/$1/blobs/$2")" = 404 ]; }
absent_manifest() { [ "$(curl -s -o /dev/null -w '%{http_code}' -I "$URL/v2/$1/manifests/$2")" = 404 ]; }

# expect_error "what" STATUS_REGEX CODE_REGEX METHOD PATH [curl args]
# A 4xx matching STATUS_REGEX whose body is {"errors":[{"code":...}]} with a matching code.
expect_error() {
        local what=$1 st=$2 code=$3 method=$4 path=$5; shift 5
        local body got
        http "$method" "$path" --path-as-is "$@" >"$TEST_TMP/err-body"
        body=$(cat "$TEST_TMP/err-body")
        got=$(jq -r '.errors[0].code // empty' <<<"$body" 2>/dev/null || true)
        if [[ "$HTTP_STATUS" =~ ^4 ]] && [[ "$HTTP_STATUS" =~ ^($st)$ ]] && [[ "$got" =~ ^($code)$ ]]; then
                check "$what -> $HTTP_STATUS $got" true
        else
                check "$what -> expected $st $code, got $HTTP_STATUS '$got' (body: ${body:0:200})" false
        fi
        check "server alive after: $what" alive
}

upload_session() { # REPO -> prints the Location of a new upload session (absolute URL)
        local loc
        http POST "/v2/$1/blobs/uploads/" >/dev/null
        loc=$(header Location)
        [[ "$loc" == http* ]] || loc="$URL$loc"
        echo "$loc"
}
with_query() { if [[ "$1" == *\?* ]]; then echo "$1&$2"; else echo "$1?$2"; fi; }

head -c 300000 /dev/urandom >"$TEST_TMP/blob"
head -c 1000 /dev/urandom >"$TEST_TMP/other"
BLOB=sha256:$(sha "$TEST_TMP/blob")
OTHER=sha256:$(sha "$TEST_TMP/other")

# ---- wrong digest on blob uploads (monolithic PUT, single-request POST, chunked finish)
loc=$(upload_session bad/fresh)
expect_error "blob PUT with the wrong digest" 400 DIGEST_INVALID PUT "$(with_query "${loc#$URL}" "digest=$OTHER")" \
        -H 'Content-Type: application/octet-stream' --data-binary "@$TEST_TMP/blob"
expect_error "single-request POST with the wrong digest" 400 DIGEST_INVALID POST "/v2/bad/fresh/blobs/uploads/?digest=$OTHER" \
        -H 'Content-Type: application/octet-stream' --data-binary "@$TEST_TMP/blob"
loc=$(upload_session bad/fresh)
http PATCH "${loc#$URL}" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-999' --data-binary "@$TEST_TMP/other" >/dev/null
loc2=$(header Location); [[ "$loc2" == http* ]] || loc2="$URL$loc2"
expect_error "chunked upload finished with a digest of other bytes" 400 DIGEST_INVALID PUT "$(with_query "${loc2#$URL}" "digest=$BLOB")"
check "blob not visible under its real digest" absent_blob bad/fresh "$BLOB"
check "blob not visible under the claimed digest" absent_blob bad/fresh "$OTHER"

# ---- truncated bodies: the server sees EOF before Content-Length bytes
st=$(RAW POST "$URL/v2/bad/fresh/blobs/uploads/?digest=$BLOB" --body-file "$TEST_TMP/blob" --send-bytes 150000 --eof-wait 1 \
        -H 'Content-Type: application/octet-stream' --timeout 10)
check "truncated single-request upload answered with no success ($st)" test "${st:0:1}" != 2
loc=$(upload_session good/base)
st=$(RAW PUT "$(with_query "$loc" "digest=$BLOB")" --body-file "$TEST_TMP/blob" --send-bytes 1000 --eof-wait 1 \
        -H 'Content-Type: application/octet-stream' --timeout 10)
check "truncated monolithic PUT answered with no success ($st)" test "${st:0:1}" != 2
check "truncated uploads left no visible blob" absent_blob good/base "$BLOB"
check "truncated uploads left no visible blob (other repo)" absent_blob bad/fresh "$BLOB"
check "server alive after truncated uploads" alive

# ---- manifests
MANIFEST="$L/blobs/sha256/$(jq -r .refs.base.digest "$L.json" | cut -d: -f2)"
OCI_MT=application/vnd.oci.image.manifest.v1+json
jq -c '.annotations["e2e.bad-input"] = "changed"' "$MANIFEST" >"$TEST_TMP/m-changed.json"
CHANGED=sha256:$(sha "$TEST_TMP/m-changed.json")
expect_error "manifest PUT by digest with the wrong digest" 400 DIGEST_INVALID PUT "/v2/good/base/manifests/$OTHER" \
        -H "Content-Type: $OCI_MT" --data-binary "@$TEST_TMP/m-changed.json"
check "manifest not stored under its real digest" absent_manifest good/base "$CHANGED"

printf '{"schemaVersion": 2, "mediaType": "%s", "config": {' "$OCI_MT" >"$TEST_TMP/m-invalid.json"
expect_error "invalid JSON manifest" 400 MANIFEST_INVALID PUT /v2/good/base/manifests/invalid \
        -H "Content-Type: $OCI_MT" --data-binary "@$TEST_TMP/m-invalid.json"
echo '{"schemaVersion": 2, "mediaType": "'$OCI_MT'", "layers": "nope"}' >"$TEST_TMP/m-shape.json"
expect_error "manifest with the wrong shape" 400 MANIFEST_INVALID PUT /v2/good/base/manifests/shape \
        -H "Content-Type: $OCI_MT" --data-binary "@$TEST_TMP/m-shape.json"

jq -c --arg d "$BLOB" '.layers[0].digest = $d' "$MANIFEST" >"$TEST_TMP/m-unknown.json"
expect_error "manifest referencing an unknown blob" 400 MANIFEST_BLOB_UNKNOWN PUT /v2/good/base/manifests/unknown \
        -H "Content-Type: $OCI_MT" --data-binary "@$TEST_TMP/m-unknown.json"
jq -c --arg d "$BLOB" '.config.digest = $d' "$MANIFEST" >"$TEST_TMP/m-unknown-cfg.json"
expect_error "manifest referencing an unknown config" 400 MANIFEST_BLOB_UNKNOWN PUT /v2/good/base/manifests/unknown-cfg \
        -H "Content-Type: $OCI_MT" --data-binary "@$TEST_TMP/m-unknown-cfg.json"
expect_error "manifest with blobs of another repository only" 400 MANIFEST_BLOB_UNKNOWN PUT /v2/bad/fresh/manifests/one \
        -H "Content-Type: $OCI_MT" --data-binary "@$MANIFEST"

# > 4 MiB: a valid manifest padded with a large annotation
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); m.setdefault("annotations",{})["pad"]="a"*4300000; sys.stdout.write(json.dumps(m))' \
        "$MANIFEST" >"$TEST_TMP/m-big.json"
expect_error "oversized manifest ($(stat -c %s "$TEST_TMP/m-big.json") bytes)" '400|413' 'MANIFEST_INVALID|SIZE_INVALID' \
        PUT /v2/good/base/manifests/big -H "Content-Type: $OCI_MT" --data-binary "@$TEST_TMP/m-big.json"
st=$(RAW PUT "$URL/v2/good/base/manifests/truncated" --body-file "$TEST_TMP/m-changed.json" --send-bytes 100 --eof-wait 1 \
        -H "Content-Type: $OCI_MT" --timeout 10)
check "truncated manifest PUT answered with no success ($st)" test "${st:0:1}" != 2
check "truncated manifest not stored" absent_manifest good/base "$CHANGED"

# ---- bad repository names (spec grammar): `..`, upper case, leading `_`, empty components
for name in 'good/../etc' '../../etc' 'Good/Upper' 'good/Upper' '_leading/x' 'good/_x' 'good//x' 'good/x-' 'a/./b'; do
        expect_error "upload to name '$name'" '400|404' NAME_INVALID POST "/v2/$name/blobs/uploads/?digest=$OTHER" \
                -H 'Content-Type: application/octet-stream' --data-binary "@$TEST_TMP/other"
        expect_error "manifest PUT to name '$name'" '400|404' NAME_INVALID PUT "/v2/$name/manifests/one" \
                -H "Content-Type: $OCI_MT" --data-binary "@$MANIFEST"
done
check "nothing created outside the data dir" test ! -e "$TEST_TMP/etc" -a ! -e "$DATA/../etc" -a ! -e "$DATA/etc"
expect_error "manifest PUT with an invalid tag" 400 'TAG_INVALID|MANIFEST_INVALID|NAME_INVALID' \
        PUT "/v2/good/base/manifests/-bad-tag" -H "Content-Type: $OCI_MT" --data-binary "@$MANIFEST"
expect_error "manifest PUT with a 129-character tag" 400 'TAG_INVALID|MANIFEST_INVALID|NAME_INVALID' \
        PUT "/v2/good/base/manifests/$(printf 't%.0s' $(seq 129))" -H "Content-Type: $OCI_MT" --data-binary "@$MANIFEST"

# ---- malformed digests in URLs: 400, never 500
for d in 'sha256:xyz' "sha256:$(printf 'A%.0s' $(seq 64))" 'sha256:' 'sha256' "sha256:$(printf 'a%.0s' $(seq 63))" \
         'md5:d41d8cd98f00b204e9800998ecf8427e' ':abc' 'sha256:+bad'; do
        expect_error "blob GET $d" 400 'DIGEST_INVALID|UNSUPPORTED' GET "/v2/good/base/blobs/$d"
        [ "$d" = sha256 ] && continue  # a valid tag name as a manifest reference
        expect_error "manifest DELETE $d" 400 'DIGEST_INVALID|UNSUPPORTED|MANIFEST_INVALID' DELETE "/v2/good/base/manifests/$d"
done
expect_error "single-request POST with a malformed digest" 400 'DIGEST_INVALID|UNSUPPORTED' \
        POST "/v2/bad/fresh/blobs/uploads/?digest=sha256:nothex" -H 'Content-Type: application/octet-stream' --data-binary "@$TEST_TMP/other"

# ---- huge headers: one 64 KiB header, then 2000 small ones. libmicrohttpd answers these
# itself (431/413/400) before plura sees them, so only the status is checked here.
big=$(head -c 65536 /dev/zero | tr '\0' x)
st=$(RAW GET "$URL/v2/" -H "X-Huge: $big" --timeout 10)
check "64 KiB header -> 4xx ($st)" test "${st:0:1}" = 4
st=$(RAW PUT "$URL/v2/good/base/manifests/huge-header" --body-file "$TEST_TMP/m-changed.json" -H "Content-Type: $OCI_MT" -H "X-Huge: $big" --timeout 10)
check "manifest PUT with a 64 KiB header -> 4xx ($st)" test "${st:0:1}" = 4
many=(); for i in $(seq 2000); do many+=(-H "X-Many-$i: value-$i"); done
st=$(RAW GET "$URL/v2/" "${many[@]}" --timeout 10)
check "2000 headers -> 4xx ($st)" test "${st:0:1}" = 4
check "server alive after huge headers" alive

# ---- nothing stored, the good image intact
snapshot after
check "catalog, tags and blob files unchanged" diff "$TEST_TMP/snap.before" "$TEST_TMP/snap.after"
check "good image still pulls" skopeo_pull "docker://$HOSTPORT/good/base:one" "oci:$TEST_TMP/out:base"
check "good image byte-identical" diff -r "$L/blobs" "$TEST_TMP/out/blobs"
if is_plura; then
        check "every blob file verifies" verify_blob_files "$DATA"
        check "server process still running (no crash)" kill -0 "$SERVER_PID"
fi

done_testing
