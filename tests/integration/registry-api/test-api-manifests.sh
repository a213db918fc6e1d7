#!/usr/bin/env bash
# Manifests, tags, catalog and referrers through the OCI API: PUT by tag/digest with several
# ?tag=, GET/HEAD headers and exact bytes, MANIFEST_BLOB_UNKNOWN, invalid and oversized
# manifests, tags list and _catalog pagination (n, last, Link), referrers with artifactType
# filter and OCI-Subject, DELETE of tags and manifests.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"

start_server "$TEST_TMP/data"
R=test/app

api() { http "$@" >"$TEST_TMP/out"; BODY=$(cat "$TEST_TMP/out"); }
code() { jq -r '.errors[0].code' <<<"$BODY"; }
dig() { echo "sha256:$(sha256_of "$1")"; }
push_blob() { # REPO FILE
        http POST "/v2/$1/blobs/uploads/?digest=$(dig "$2")" --data-binary @"$2" >/dev/null
        [ "$HTTP_STATUS" = 201 ] || fail "push_blob $2: $HTTP_STATUS"
}
size_of() { stat -c %s "$1"; }
MT=application/vnd.oci.image.manifest.v1+json

printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$TEST_TMP/config"
head -c 3000 /dev/urandom >"$TEST_TMP/layer"
push_blob "$R" "$TEST_TMP/config"
push_blob "$R" "$TEST_TMP/layer"
manifest() { # extra-json (e.g. annotations) -> prints an image manifest
        printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]%s}' \
                "$MT" "$(dig "$TEST_TMP/config")" "$(size_of "$TEST_TMP/config")" "$(dig "$TEST_TMP/layer")" "$(size_of "$TEST_TMP/layer")" "${1:-}"
}
manifest >"$TEST_TMP/m1"
M1=$(dig "$TEST_TMP/m1")

# ---- PUT by tag with extra ?tag= values
http PUT "/v2/$R/manifests/one?tag=two&tag=three" -H "Content-Type: $MT" --data-binary @"$TEST_TMP/m1" >/dev/null
check "PUT manifest 201" [ "$HTTP_STATUS" = 201 ]
check "PUT Docker-Content-Digest is the digest of the exact bytes" [ "$(header Docker-Content-Digest)" = "$M1" ]
check "PUT Location" [ "$(header Location)" = "/v2/$R/manifests/$M1" ]
check "no OCI-Subject without a subject" [ -z "$(header OCI-Subject)" ]

for t in one two three "$M1"; do
        http GET "/v2/$R/manifests/$t" >"$TEST_TMP/got"
        check "GET $t 200" [ "$HTTP_STATUS" = 200 ]
        check "GET $t exact bytes" cmp -s "$TEST_TMP/m1" "$TEST_TMP/got"
        check "GET $t Content-Type" [ "$(header Content-Type)" = "$MT" ]
        check "GET $t Docker-Content-Digest" [ "$(header Docker-Content-Digest)" = "$M1" ]
done
check "ETag" [ "$(header ETag)" = "\"$M1\"" ]
http HEAD "/v2/$R/manifests/one" -I >/dev/null
check "HEAD 200" [ "$HTTP_STATUS" = 200 ]
check "HEAD Content-Length" [ "$(header Content-Length)" = "$(size_of "$TEST_TMP/m1")" ]
check "HEAD Docker-Content-Digest" [ "$(header Docker-Content-Digest)" = "$M1" ]

# ---- PUT by digest, wrong digest
manifest ',"annotations":{"n":"2"}' >"$TEST_TMP/m2"
M2=$(dig "$TEST_TMP/m2")
http PUT "/v2/$R/manifests/$M2" -H "Content-Type: $MT" --data-binary @"$TEST_TMP/m2" >/dev/null
check "PUT by digest 201" [ "$HTTP_STATUS" = 201 -a "$(header Docker-Content-Digest)" = "$M2" ]
manifest ',"annotations":{"n":"3"}' >"$TEST_TMP/m3"
api PUT "/v2/$R/manifests/$M2" -H "Content-Type: $MT" --data-binary @"$TEST_TMP/m3"
check "PUT with a digest that does not match 400 DIGEST_INVALID" [ "$HTTP_STATUS" = 400 -a "$(code)" = DIGEST_INVALID ]
http GET "/v2/$R/manifests/$(dig "$TEST_TMP/m3")" >/dev/null
check "mismatching manifest not stored" [ "$HTTP_STATUS" = 404 ]

# ---- missing blobs, invalid manifests
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%064d","size":2},"layers":[]}' "$MT" 0 >"$TEST_TMP/bad"
api PUT "/v2/$R/manifests/bad" -H "Content-Type: $MT" --data-binary @"$TEST_TMP/bad"
check "unknown config 400 MANIFEST_BLOB_UNKNOWN" [ "$HTTP_STATUS" = 400 -a "$(code)" = MANIFEST_BLOB_UNKNOWN ]
api PUT "/v2/$R/manifests/bad" -H "Content-Type: $MT" --data-binary '{"schemaVersion":2, this is not json'
check "invalid JSON 400 MANIFEST_INVALID" [ "$HTTP_STATUS" = 400 -a "$(code)" = MANIFEST_INVALID ]
api PUT "/v2/$R/manifests/bad" -H "Content-Type: $MT" --data-binary '{"schemaVersion":1}'
check "schemaVersion 1 400 MANIFEST_INVALID" [ "$HTTP_STATUS" = 400 -a "$(code)" = MANIFEST_INVALID ]
api PUT "/v2/$R/manifests/bad" -H "Content-Type: $MT"
check "empty body 400 MANIFEST_INVALID" [ "$HTTP_STATUS" = 400 -a "$(code)" = MANIFEST_INVALID ]
head -c $((4 * 1024 * 1024 + 1)) /dev/zero | tr '\0' ' ' >"$TEST_TMP/huge"
api PUT "/v2/$R/manifests/huge" -H "Content-Type: $MT" --data-binary @"$TEST_TMP/huge"
check "oversized manifest 413" [ "$HTTP_STATUS" = 413 -a "$(code)" = SIZE_INVALID ]
api PUT "/v2/$R/manifests/huge" -H "Content-Type: $MT" -H 'Transfer-Encoding: chunked' --data-binary @"$TEST_TMP/huge"
check "oversized chunked manifest 413" [ "$HTTP_STATUS" = 413 -a "$(code)" = SIZE_INVALID ]
api PUT "/v2/$R/manifests/one?tag=-bad" -H "Content-Type: $MT" --data-binary @"$TEST_TMP/m1"
check "invalid ?tag= 400 TAG_INVALID" [ "$HTTP_STATUS" = 400 -a "$(code)" = TAG_INVALID ]
http GET "/v2/$R/manifests/bad" >/dev/null
check "nothing stored by refused PUTs" [ "$HTTP_STATUS" = 404 ]
http GET "/v2/$R/manifests/huge" >/dev/null
check "oversized manifest not stored" [ "$HTTP_STATUS" = 404 ]

# ---- unknown manifests
api GET "/v2/$R/manifests/nope"
check "unknown tag 404 MANIFEST_UNKNOWN" [ "$HTTP_STATUS" = 404 -a "$(code)" = MANIFEST_UNKNOWN ]
api GET "/v2/test/nothere/manifests/one"
check "unknown repository 404 NAME_UNKNOWN" [ "$HTTP_STATUS" = 404 -a "$(code)" = NAME_UNKNOWN ]

# ---- tags list
for t in e d c b a; do
        http PUT "/v2/$R/manifests/$t" -H "Content-Type: $MT" --data-binary @"$TEST_TMP/m1" >/dev/null
done
api GET "/v2/$R/tags/list"
check "tags list 200" [ "$HTTP_STATUS" = 200 ]
check "tags list name" [ "$(jq -r .name <<<"$BODY")" = "$R" ]
check "tags list lexical" [ "$(jq -c .tags <<<"$BODY")" = '["a","b","c","d","e","one","three","two"]' ]
check "no Link without n" [ -z "$(header Link)" ]
api GET "/v2/$R/tags/list?n=3"
check "n=3 first page" [ "$(jq -c .tags <<<"$BODY")" = '["a","b","c"]' ]
check "Link header" [ "$(header Link)" = "</v2/$R/tags/list?n=3&last=c>; rel=\"next\"" ]
api GET "/v2/$R/tags/list?n=3&last=c"
check "second page" [ "$(jq -c .tags <<<"$BODY")" = '["d","e","one"]' ]
api GET "/v2/$R/tags/list?n=3&last=one"
check "last page" [ "$(jq -c .tags <<<"$BODY")" = '["three","two"]' ]
check "no Link on the last page" [ -z "$(header Link)" ]
api GET "/v2/$R/tags/list?last=d"
check "last without n" [ "$(jq -c .tags <<<"$BODY")" = '["e","one","three","two"]' ]
api GET "/v2/$R/tags/list?n=0"
check "n=0 gives an empty list" [ "$HTTP_STATUS" = 200 -a "$(jq -c .tags <<<"$BODY")" = '[]' ]
api GET "/v2/$R/tags/list?n=abc"
check "bad n 400" [ "$HTTP_STATUS" = 400 ]
api GET "/v2/$R/tags/list?n=-1"
check "negative n 400" [ "$HTTP_STATUS" = 400 ]
api GET "/v2/test/nothere/tags/list"
check "tags of unknown repo 404 NAME_UNKNOWN" [ "$HTTP_STATUS" = 404 -a "$(code)" = NAME_UNKNOWN ]

# ---- catalog
push_blob test/zz "$TEST_TMP/layer"
push_blob test/aa "$TEST_TMP/layer"
api GET "/v2/_catalog"
check "catalog 200" [ "$HTTP_STATUS" = 200 ]
check "catalog lists repositories in order" [ "$(jq -c .repositories <<<"$BODY")" = '["test/aa","test/app","test/zz"]' ]
api GET "/v2/_catalog?n=2"
check "catalog page 1" [ "$(jq -c .repositories <<<"$BODY")" = '["test/aa","test/app"]' ]
check "catalog Link" [ "$(header Link)" = '</v2/_catalog?n=2&last=test/app>; rel="next"' ]
api GET "/v2/_catalog?n=2&last=test/app"
check "catalog page 2" [ "$(jq -c .repositories <<<"$BODY")" = '["test/zz"]' -a -z "$(header Link)" ]
api GET "/v2/_catalog?n=x"
check "catalog bad n 400" [ "$HTTP_STATUS" = 400 ]

# ---- referrers
printf '{}' >"$TEST_TMP/empty"
push_blob "$R" "$TEST_TMP/empty"
EMPTY=$(dig "$TEST_TMP/empty")
artifact() { # artifactType
        printf '{"schemaVersion":2,"mediaType":"%s","artifactType":"%s","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2}],"subject":{"mediaType":"%s","digest":"%s","size":%s},"annotations":{"k":"%s"}}' \
                "$MT" "$1" "$EMPTY" "$EMPTY" "$MT" "$M1" "$(size_of "$TEST_TMP/m1")" "$1"
}
artifact application/vnd.example.sig >"$TEST_TMP/sig"
artifact application/vnd.example.sbom >"$TEST_TMP/sbom"
SIG=$(dig "$TEST_TMP/sig")
http PUT "/v2/$R/manifests/$SIG" -H "Content-Type: $MT" --data-binary @"$TEST_TMP/sig" >/dev/null
check "PUT artifact 201" [ "$HTTP_STATUS" = 201 ]
check "OCI-Subject on PUT" [ "$(header OCI-Subject)" = "$M1" ]
http PUT "/v2/$R/manifests/$(dig "$TEST_TMP/sbom")" -H "Content-Type: $MT" --data-binary @"$TEST_TMP/sbom" >/dev/null
api GET "/v2/$R/referrers/$M1"
check "referrers 200" [ "$HTTP_STATUS" = 200 ]
check "referrers Content-Type" [ "$(header Content-Type)" = application/vnd.oci.image.index.v1+json ]
check "referrers is an index" [ "$(jq -r '.schemaVersion,.mediaType' <<<"$BODY" | tr '\n' ' ')" = "2 application/vnd.oci.image.index.v1+json " ]
check "two referrers" [ "$(jq '.manifests|length' <<<"$BODY")" = 2 ]
check "referrer descriptor" [ "$(jq -r --arg d "$SIG" '.manifests[]|select(.digest==$d)|.artifactType' <<<"$BODY")" = application/vnd.example.sig ]
check "no OCI-Filters-Applied unfiltered" [ -z "$(header OCI-Filters-Applied)" ]
api GET "/v2/$R/referrers/$M1?artifactType=application/vnd.example.sbom"
check "filtered referrers" [ "$(jq -r '.manifests|length' <<<"$BODY")" = 1 -a "$(jq -r '.manifests[0].artifactType' <<<"$BODY")" = application/vnd.example.sbom ]
check "OCI-Filters-Applied" [ "$(header OCI-Filters-Applied)" = artifactType ]
api GET "/v2/$R/referrers/$M2"
check "unknown subject: 200 empty index" [ "$HTTP_STATUS" = 200 -a "$(jq -c .manifests <<<"$BODY")" = '[]' ]
api GET "/v2/$R/referrers/sha256:abc"
check "referrers bad digest 400" [ "$HTTP_STATUS" = 400 -a "$(code)" = DIGEST_INVALID ]

# ---- delete
http DELETE "/v2/$R/manifests/e" >/dev/null
check "DELETE tag 202" [ "$HTTP_STATUS" = 202 ]
api GET "/v2/$R/manifests/e"
check "deleted tag 404 MANIFEST_UNKNOWN" [ "$HTTP_STATUS" = 404 -a "$(code)" = MANIFEST_UNKNOWN ]
http GET "/v2/$R/manifests/d" >/dev/null
check "other tags of the manifest stay" [ "$HTTP_STATUS" = 200 ]
http DELETE "/v2/$R/manifests/$M2" >/dev/null
check "DELETE by digest 202" [ "$HTTP_STATUS" = 202 ]
api GET "/v2/$R/manifests/$M2"
check "deleted manifest 404" [ "$HTTP_STATUS" = 404 -a "$(code)" = MANIFEST_UNKNOWN ]
api DELETE "/v2/$R/manifests/$M2"
check "DELETE again 404" [ "$HTTP_STATUS" = 404 -a "$(code)" = MANIFEST_UNKNOWN ]
api DELETE "/v2/$R/manifests/nosuchtag"
check "DELETE unknown tag 404" [ "$HTTP_STATUS" = 404 ]

done_testing
