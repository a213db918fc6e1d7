#!/usr/bin/env bash
# The server around the API: /healthz, /readyz, /metrics, access log, keep-alive, --help,
# SIGTERM draining an in-flight upload and exiting 0, restart on the same data, plura fsck
# (clean, --json, refused while a server holds the store).
. "$PLURA_SOURCE_ROOT/tests/lib.sh"

DATA="$TEST_TMP/data"
start_server "$DATA"

api() { http "$@" >"$TEST_TMP/out"; BODY=$(cat "$TEST_TMP/out"); }
dig() { echo "sha256:$(sha256_of "$1")"; }
MT=application/vnd.oci.image.manifest.v1+json

# ---- --help documents every flag
help=$("$PLURA" serve --help)
for f in --config --listen --data --mount --ready-file --help; do
        check "serve --help documents $f" grep -q -- "$f" <<<"$help"
done
help=$("$PLURA" fsck --help)
for f in --config --data --repair --json; do
        check "fsck --help documents $f" grep -q -- "$f" <<<"$help"
done
check "serve prints where it listens" grep -q "plura: listening on http://$HOSTPORT, data in $DATA" "$TEST_TMP/server.log"

# ---- health
api GET /healthz
check "healthz 200" [ "$HTTP_STATUS" = 200 ]
check "healthz has the API header" [ "$(header Docker-Distribution-API-Version)" = registry/2.0 ]
api GET /readyz
check "readyz 200" [ "$HTTP_STATUS" = 200 ]

# ---- some traffic, then metrics
head -c 1000 /dev/urandom >"$TEST_TMP/layer"
printf '{"architecture":"amd64","os":"linux"}' >"$TEST_TMP/config"
for f in layer config; do
        http POST "/v2/srv/app/blobs/uploads/?digest=$(dig "$TEST_TMP/$f")" --data-binary @"$TEST_TMP/$f" >/dev/null
done
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":1000}]}' \
        "$MT" "$(dig "$TEST_TMP/config")" "$(stat -c %s "$TEST_TMP/config")" "$(dig "$TEST_TMP/layer")" >"$TEST_TMP/m"
http PUT /v2/srv/app/manifests/keep -H "Content-Type: $MT" --data-binary @"$TEST_TMP/m" >/dev/null
check "manifest pushed" [ "$HTTP_STATUS" = 201 ]
http GET /v2/srv/app/manifests/keep >/dev/null
http GET /v2/srv/app/manifests/nope >/dev/null
api GET /metrics
check "metrics 200" [ "$HTTP_STATUS" = 200 ]
check "metrics is Prometheus text" grep -q '^# TYPE plura_http_requests_total counter' <<<"$BODY"
check "request counter by route/method/status" grep -q 'plura_http_requests_total{route="v2_manifest",method="GET",status="200"} 1' <<<"$BODY"
check "404s counted" grep -q 'plura_http_requests_total{route="v2_manifest",method="GET",status="404"} 1' <<<"$BODY"
check "upload route counted" grep -q 'plura_http_requests_total{route="v2_upload",method="POST",status="201"} 2' <<<"$BODY"
check "latency histogram" grep -q 'plura_http_request_duration_seconds_bucket{route="v2_manifest",le="+Inf"}' <<<"$BODY"
check "no raw paths as labels" bash -c '! grep -q "srv/app" <<<"$1"' _ "$BODY"

# ---- access log
check "access log line" grep -Eq 'access: GET /v2/srv/app/manifests/keep 200 [0-9]+ [0-9.]+ms actor=127.0.0.1' "$TEST_TMP/server.log"
http GET /v2/ -H 'X-Plura-Actor: alice' >/dev/null
sleep 0.1
check "access log actor from X-Plura-Actor" grep -q 'access: GET /v2/ 200 2 .* actor=alice' "$TEST_TMP/server.log"

# ---- keep-alive
out=$(curl -sv "$URL/v2/" "$URL/v2/srv/app/manifests/keep" 2>&1 >/dev/null)
check "keep-alive: the connection is re-used" grep -q "Re-using existing connection" <<<"$out"

# ---- fsck refuses a store in use
set +e
out=$("$PLURA" fsck --data "$DATA" 2>&1); rc=$?
set -e
check "fsck on a running server's store fails" [ "$rc" -ne 0 ]
check "fsck says the store is in use" grep -q "in use by a running server" <<<"$out"

# ---- SIGTERM drains an in-flight upload, exits 0
http POST /v2/srv/app/blobs/uploads/ >/dev/null
U=$(header Location)
head -c 300000 /dev/urandom >"$TEST_TMP/slow"
python3 - "$HOSTPORT" "$U" "$TEST_TMP/slow" "$TEST_TMP/slow.started" >"$TEST_TMP/slow.status" <<'EOF' &
import socket, sys, time
hp, path, f, started = sys.argv[1:5]
host, port = hp.rsplit(':', 1)
data = open(f, 'rb').read()
s = socket.create_connection((host, int(port)))
s.sendall(f"PATCH {path} HTTP/1.1\r\nHost: {hp}\r\nContent-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode())
for i in range(0, len(data), 30000):      # ~1 s in total
    s.sendall(data[i:i + 30000])
    if i == 60000:
        open(started, "w").close()          # the request is in flight now
    time.sleep(0.1)
resp = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    resp += b
print(resp.split(b"\r\n")[0].decode())
EOF
CLIENT=$!
for _ in $(seq 100); do [ -e "$TEST_TMP/slow.started" ] && break; sleep 0.05; done
kill -TERM "$SERVER_PID"
set +e
wait "$SERVER_PID"; rc=$?
wait "$CLIENT"
set -e
check "SIGTERM: exit status 0" [ "$rc" = 0 ]
check "SIGTERM: the in-flight PATCH completed (202)" grep -q "202" "$TEST_TMP/slow.status"
check "SIGTERM: logged the shutdown" grep -q "stopped" "$TEST_TMP/server.log"

# ---- fsck of the stopped store
set +e
"$PLURA" fsck --data "$DATA" >"$TEST_TMP/fsck.out" 2>&1; rc=$?
"$PLURA" fsck --data "$DATA" --json >"$TEST_TMP/fsck.json" 2>/dev/null; rcj=$?
set -e
check "fsck clean exits 0" [ "$rc" = 0 ]
check "fsck says clean" grep -q "clean" "$TEST_TMP/fsck.out"
check "fsck --json exits 0" [ "$rcj" = 0 ]
check "fsck --json is JSON with clean=true" [ "$(jq -r .clean "$TEST_TMP/fsck.json")" = true ]
check "fsck counted the blobs" [ "$(jq -r .blobs_checked "$TEST_TMP/fsck.json")" -ge 2 ]

# ---- restart finds everything
start_server "$DATA"
http GET /v2/srv/app/manifests/keep >"$TEST_TMP/m.out"
check "after restart: manifest served" [ "$HTTP_STATUS" = 200 ]
check "after restart: same bytes" cmp -s "$TEST_TMP/m" "$TEST_TMP/m.out"
http GET "${U#"$URL"}" >/dev/null
check "after restart: the drained upload session is there" [ "$HTTP_STATUS" = 204 -a "$(header Range)" = "0-299999" ]
stop_server

done_testing
