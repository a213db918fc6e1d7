#!/usr/bin/env bash
# What a hostile or unlucky client cannot break (issue 16): a second server on a port or data
# directory in use, floods of upload sessions and of idle connections (from other loopback
# addresses) while a normal client keeps getting answers, the header timeout, query strings with
# too many arguments (also on a keep-alive connection), unsupported Transfer-Encoding, an
# oversized /v1 body announced with Expect: 100-continue, and request lines that are not HTTP
# (a TLS ClientHello, garbage, HTTP/2). Each gets an immediate answer with a clear status.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"

PROBE() { python3 "$PLURA_SOURCE_ROOT/tests/integration/registry-api/limits-probe.py" "$@"; }
CFG="$TEST_TMP/config.json"
cat >"$CFG" <<'EOF'
{ "http": { "max_connections": 300, "max_connections_per_client": 32, "header_timeout": "2s",
            "max_json_body_bytes": 1024 },
  "storage": { "max_upload_sessions": 500, "max_upload_sessions_per_client": 50 } }
EOF
DATA="$TEST_TMP/data"
start_server "$DATA" "$CFG"
HOST=${HOSTPORT%:*} PORT=${HOSTPORT##*:}
jqr() { jq -r "$1" <<<"$OUT"; }
fds() { ls "/proc/$SERVER_PID/fd" | wc -l; }
alive() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/v2/")" = 200 ]; }

head -c 5000 /dev/urandom >"$TEST_TMP/blob"
D=sha256:$(sha256_of "$TEST_TMP/blob")
http POST "/v2/first/only/blobs/uploads/?digest=$D" --data-binary @"$TEST_TMP/blob" -H 'Content-Type: application/octet-stream' >/dev/null
check "a blob in the first server" [ "$HTTP_STATUS" = 201 ]

# ---- 2. a port or a data directory in use
set +e
timeout 20 "$PLURA" serve --listen "$HOSTPORT" --data "$TEST_TMP/other" >"$TEST_TMP/second.log" 2>&1
RC=$?
set -e
check "a second server on the same port exits non-zero (rc=$RC)" [ "$RC" -ne 0 ] && [ "$RC" -ne 124 ]
check "and says the address is in use" grep -q "address in use" "$TEST_TMP/second.log"
for _ in $(seq 10); do curl -s "$URL/v2/_catalog"; echo; done >"$TEST_TMP/catalogs"
check "every _catalog answer comes from the first server" [ "$(grep -c 'first/only' "$TEST_TMP/catalogs")" = 10 ]
set +e
timeout 20 "$PLURA" serve --listen 127.0.0.1:0 --data "$DATA" >"$TEST_TMP/third.log" 2>&1
RC=$?
set -e
check "a second server on the same data directory exits non-zero (rc=$RC)" [ "$RC" -ne 0 ] && [ "$RC" -ne 124 ]
check "and says the store is in use" grep -q "in use by a running server" "$TEST_TMP/third.log"

# ---- 4. upload sessions hold no descriptor and are capped per client and in total
FD0=$(fds)
OUT=$(PROBE sessions "$HOST" "$PORT" 200 127.0.0.2)
check "200 sessions from one address: 50 opened ($OUT)" [ "$(jqr '.codes["202"]')" = 50 ]
check "the other 150 get 429" [ "$(jqr '.codes["429"]')" = 150 ]
check "with Retry-After" [ "$(jqr .retry_after)" = 10 ]
FD1=$(fds)
check "open sessions hold no descriptors ($FD0 -> $FD1)" [ "$FD1" -lt $((FD0 + 10)) ]
OUT=$(PROBE sessions "$HOST" "$PORT" 5 127.0.0.3)
check "another address still opens sessions" [ "$(jqr '.codes["202"]')" = 5 ]
http POST "/v2/normal/x/blobs/uploads/?digest=$D" --data-binary @"$TEST_TMP/blob" -H 'Content-Type: application/octet-stream' >/dev/null
check "a normal push still works" [ "$HTTP_STATUS" = 201 ]
grep -q "file descriptors: " "$TEST_TMP/server.log"
check "the descriptor limit is logged at start" grep -q "file descriptors: [0-9]* (was [0-9]*, hard limit" "$TEST_TMP/server.log"

# ---- 5. idle connection floods
OUT=$(PROBE floodidle "$HOST" "$PORT" 1000 1 3)
note "one address: $OUT"
check "1000 idle connections from one address: a normal client never fails" [ "$(jqr .normal_failed)" = 0 ] && [ "$(jqr .normal_ok)" -gt 10 ]
check "all but 32 are answered 429 at once" [ "$(jqr '.answered_at_once["429"]')" = 968 ]
OUT=$(PROBE floodidle "$HOST" "$PORT" 600 30 3)
note "30 addresses: $OUT"
check "600 idle connections from 30 addresses (over the total of 300): a normal client never fails" \
        [ "$(jqr .normal_failed)" = 0 ] && [ "$(jqr .normal_ok)" -gt 10 ]
check "the oldest idle ones made room (408)" [ "$(jqr '.answered_at_once["408"] // 0')" -gt 0 ]
OUT=$(PROBE idle "$HOST" "$PORT")
check "a connection that sends nothing gets 408 once the header timeout has passed ($OUT)" \
        [ "$(jqr .status)" = 408 ] && python3 -c "import sys; sys.exit(not $(jqr .seconds) >= 1.5)"
check "server alive after the floods" alive

# ---- 6. query arguments, Transfer-Encoding, Expect
OUT=$(PROBE keepalive "$HOST" "$PORT" 950)
check "950 query arguments on a keep-alive connection: 400 (took $(jqr .seconds)s; MHD alone never answered)" \
        [ "$(jqr .first):$(jqr .second)" = 200:400 ]
check "saying why" grep -q "too many query parameters" <<<"$(jqr .body)"
OUT=$(PROBE keepalive "$HOST" "$PORT" 256)
check "256 query arguments are fine" [ "$(jqr .second)" = 200 ]
CODE=$(curl -s -o "$TEST_TMP/te" -w '%{http_code}' --max-time 5 -X POST -H 'Transfer-Encoding: gzip' \
        --data-binary '{}' "$URL/v1/registry/block")
check "Transfer-Encoding: gzip is 400 at once (got $CODE)" [ "$CODE" = 400 ] && grep -q Transfer-Encoding "$TEST_TMP/te"
OUT=$(PROBE raw "$HOST" "$PORT" 1 "$(printf 'PATCH /v2/a/blobs/uploads/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n' | xxd -p | tr -d '\n')")
check "Transfer-Encoding with Content-Length is 400" [ "$(jqr '.codes["400"]')" = 1 ]
head -c 5000 /dev/zero | tr '\0' 'x' >"$TEST_TMP/big.json"
curl -s -v --max-time 5 -X POST -H 'Expect: 100-continue' -H 'Content-Type: application/json' \
        --data-binary @"$TEST_TMP/big.json" "$URL/v1/registry/block" >"$TEST_TMP/expect.out" 2>&1 || true
check "an oversized /v1 body with Expect: 100-continue is 413" grep -q "< HTTP/1.1 413" "$TEST_TMP/expect.out"
check "without 100 Continue first" bash -c "! grep -q '100 Continue' '$TEST_TMP/expect.out'"

# a %00 in the path would cut the name short (MHD unescapes it): refused
http PUT "/v2/t/app/manifests/nul%00evil" -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary '{}' >/dev/null
check "a %00 in a /v2 path is 400 (no tag \"nul\")" [ "$HTTP_STATUS" = 400 ]
http GET "/v1/registry/holds/INC%00x" >/dev/null
check "a %00 in a /v1 path is 400" [ "$HTTP_STATUS" = 400 ]

# ---- 7. request lines that are not HTTP/1.x
HELLO=16030100f8010000f40303$(head -c 200 /dev/urandom | xxd -p | tr -d '\n')
OUT=$(PROBE raw "$HOST" "$PORT" 100 "$HELLO")
check "a TLS ClientHello on the plain port: 400, 100 times out of 100 ($OUT)" [ "$(jqr '.codes["400"]')" = 100 ]
OUT=$(PROBE raw "$HOST" "$PORT" 20 "$(printf 'GARBAGE\r\n\r\n' | xxd -p)")
check "a request line without spaces: 400 every time ($OUT)" [ "$(jqr '.codes["400"]')" = 20 ]
OUT=$(PROBE raw "$HOST" "$PORT" 1 "$(printf 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' | xxd -p)")
check "the HTTP/2 preface: 505" [ "$(jqr '.codes["505"]')" = 1 ]
check "server alive at the end" alive
done_testing
