#!/usr/bin/env bash
# Bad input on the HTTP API: invalid names (upper case, leading '_', '..'), tags and digests,
# unknown paths and methods, huge headers, and the /v1/registry/ dispatcher (unknown path,
# wrong method, malformed and oversized JSON). Every error is a 4xx with the JSON error body
# and the API version header; the server survives and stores nothing.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"

cat >"$TEST_TMP/config.json" <<'EOF'
{ "http": { "max_json_body_bytes": 1024 } }
EOF
start_server "$TEST_TMP/data" "$TEST_TMP/config.json"

api() { http "$@" >"$TEST_TMP/out"; BODY=$(cat "$TEST_TMP/out"); }
code() { jq -r '.errors[0].code' <<<"$BODY" 2>/dev/null; }
is_error() { # STATUS CODE
        [ "$HTTP_STATUS" = "$1" ] && [ "$(code)" = "$2" ] &&
                [ "$(header Docker-Distribution-API-Version)" = registry/2.0 ] &&
                [ "$(header Content-Type)" = application/json ] &&
                [ -n "$(jq -r '.errors[0].message' <<<"$BODY")" ]
}
D0=sha256:$(printf '' | sha256sum | cut -d' ' -f1)

# ---- names
for name in Upper/case _leading a/_b a/../b a//b a- -a "a/b/" 'a%20b' a.-b; do
        api GET "/v2/$name/tags/list" --path-as-is
        check "name '$name' 400 NAME_INVALID" is_error 400 NAME_INVALID
done
long=$(printf 'a%.0s' $(seq 256))
api GET "/v2/$long/manifests/latest"
check "256-char name 400 NAME_INVALID" is_error 400 NAME_INVALID
api PUT "/v2/Bad/manifests/t" --data-binary '{}' -H 'Content-Type: application/vnd.oci.image.manifest.v1+json'
check "PUT manifest to a bad name 400 NAME_INVALID" is_error 400 NAME_INVALID
api POST "/v2/a/../b/blobs/uploads/" --path-as-is
check "POST upload to a name with .. 400 NAME_INVALID" is_error 400 NAME_INVALID
api GET "/v2/_catalog/x/tags/list"
check "leading _ in a path name 400" is_error 400 NAME_INVALID

# ---- references and digests
# A pull of a reference that is neither a tag nor a digest names no manifest: 404
# MANIFEST_UNKNOWN (the distribution-spec conformance suite pulls ".INVALID_MANIFEST_NAME");
# a PUT with one is a bad request.
for ref in .INVALID_MANIFEST_NAME -tag "$(printf 't%.0s' $(seq 129))" sha256:zzz \
        sha256:ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789; do
        api GET "/v2/ok/manifests/$ref"
        check "GET manifest '${ref:0:20}' 404 MANIFEST_UNKNOWN" is_error 404 MANIFEST_UNKNOWN
        api HEAD "/v2/ok/manifests/$ref" -I
        check "HEAD manifest '${ref:0:20}' 404" [ "$HTTP_STATUS" = 404 ]
done
api PUT "/v2/ok/manifests/-tag" --data-binary '{}' -H 'Content-Type: application/vnd.oci.image.manifest.v1+json'
check "PUT with an invalid tag 400 TAG_INVALID" is_error 400 TAG_INVALID
api PUT "/v2/ok/manifests/$(printf 't%.0s' $(seq 129))" --data-binary '{}' -H 'Content-Type: application/vnd.oci.image.manifest.v1+json'
check "PUT with a 129-char tag 400 TAG_INVALID" is_error 400 TAG_INVALID
api PUT "/v2/ok/manifests/sha256:zzz" --data-binary '{}' -H 'Content-Type: application/vnd.oci.image.manifest.v1+json'
check "PUT with a malformed digest reference 400 DIGEST_INVALID" is_error 400 DIGEST_INVALID
api DELETE "/v2/ok/manifests/-tag"
check "DELETE with an invalid tag 400 TAG_INVALID" is_error 400 TAG_INVALID
api DELETE "/v2/ok/blobs/sha256:"
check "empty digest hex 400 DIGEST_INVALID" is_error 400 DIGEST_INVALID
api GET "/v2/ok/blobs/foo:bar"
check "unsupported algorithm 400 DIGEST_INVALID" is_error 400 DIGEST_INVALID
api POST "/v2/ok/blobs/uploads/?digest=notadigest" --data-binary x
check "POST with a malformed digest 400 DIGEST_INVALID" is_error 400 DIGEST_INVALID
api GET "/v2/ok/referrers/nope"
check "referrers malformed digest 400" is_error 400 DIGEST_INVALID

# ---- unknown paths and methods
api GET "/v2/ok"
check "/v2/<name> 404 JSON" is_error 404 NOT_FOUND
api GET "/v2/ok/whatever/x"
check "unknown /v2 route 404 JSON" is_error 404 NOT_FOUND
api GET "/nothing"
check "unknown path 404 JSON" is_error 404 NOT_FOUND
api PATCH "/v2/ok/manifests/latest" --data-binary x
check "PATCH manifest 405 UNSUPPORTED" is_error 405 UNSUPPORTED
check "405 Allow header" [ -n "$(header Allow)" ]
api POST "/v2/"
check "POST /v2/ 405" is_error 405 UNSUPPORTED
api PUT "/v2/ok/blobs/$D0" --data-binary x
check "PUT blob 405" is_error 405 UNSUPPORTED
api DELETE "/v2/ok/tags/list"
check "DELETE tags 405" is_error 405 UNSUPPORTED
api POST "/v2/ok/blobs/uploads/0b7e2b4c-5a54-4a4e-9a4f-2f2d5f1e0c11"
check "POST to a session 405" is_error 405 UNSUPPORTED

# ---- huge headers: a 4xx, never a crash
big=$(head -c 65536 /dev/zero | tr '\0' a)
http GET /v2/ -H "X-Big: $big" >/dev/null
check "64 KiB header gets 431/400 ($HTTP_STATUS)" [ "$HTTP_STATUS" = 431 -o "$HTTP_STATUS" = 400 -o "$HTTP_STATUS" = 413 ]
python3 - "$HOSTPORT" <<'EOF' || true
import socket, sys
host, port = sys.argv[1].rsplit(':', 1)
s = socket.create_connection((host, int(port)))
try:
    s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 1000) for i in range(2000)) + b"\r\n")
    s.recv(1000)
except OSError:
    pass
s.close()
EOF
http GET /v2/ >/dev/null
check "server alive after huge headers" [ "$HTTP_STATUS" = 200 ]
long_url="/v2/ok/manifests/$(head -c 70000 /dev/zero | tr '\0' a)"
http GET "$long_url" >/dev/null
check "70 KB URL gets a 4xx ($HTTP_STATUS)" [ "${HTTP_STATUS:0:1}" = 4 ]
http GET /v2/ >/dev/null
check "server alive after a huge URL" [ "$HTTP_STATUS" = 200 ]

# ---- /v1/registry/ dispatcher
api GET "/v1/registry/nothing/here"
check "unknown /v1 path 404" is_error 404 NOT_FOUND
api GET "/v1/registry/promote"
check "known /v1 path, wrong method 405" is_error 405 UNSUPPORTED
api POST "/v1/registry/promote" -H 'Content-Type: application/json' --data-binary '{"repo": "x", '
check "malformed JSON 400" is_error 400 INVALID_JSON
check "malformed JSON message says where" grep -q "line 1" <<<"$BODY"
api POST "/v1/registry/promote" -H 'Content-Type: application/json' --data-binary '[1,2]'
check "non-object JSON 400" is_error 400 INVALID_JSON
api POST "/v1/registry/promote" -H 'Content-Type: application/json' --data-binary "{\"repo\":\"$(head -c 2000 /dev/zero | tr '\0' a)\"}"
check "oversized JSON body 413" is_error 413 SIZE_INVALID
api POST "/v1/registry/promote" -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary "{\"repo\":\"$(head -c 2000 /dev/zero | tr '\0' a)\"}"
check "oversized chunked JSON body 413" is_error 413 SIZE_INVALID
api POST "/v1/registry/promote" -H 'Content-Type: application/json' --data-binary '{}'
handler_answered() { case "$HTTP_STATUS" in 2??|400|403|409|422) return 0 ;; *) return 1 ;; esac; }
check "a registered handler answers ($HTTP_STATUS)" handler_answered

# ---- nothing was stored by any of this
api GET "/v2/_catalog"
check "catalog still empty" [ "$(jq -c .repositories <<<"$BODY")" = '[]' ]

# ---- keep-alive survives error responses
out=$(curl -sv "$URL/v2/ok/manifests/-x" "$URL/v2/" 2>&1 >/dev/null)
check "connection re-used after an error" grep -q "Re-using existing connection" <<<"$out"

done_testing
