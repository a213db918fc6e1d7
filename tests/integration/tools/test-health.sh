#!/bin/bash
# plura health: exit 0 only when /readyz answers "ready" (/healthz "ok" with --live), for container
# HEALTHCHECKs and probes; 1 when not ready, unreachable, or silent past --timeout; 2 for usage.
# No credentials are sent. Over https it verifies the server like plura reg (--ca, $PLURA_CA).
. "$PLURA_SOURCE_ROOT/tests/lib.sh"

start_server "$TEST_TMP/data"
out=$("$PLURA" health --url "$URL") && rc=0 || rc=$?
check "a ready server: exit 0" test "$rc" = 0
check "... says so, naming /readyz" test "$out" = "$URL/readyz: ready"
check "--quiet: nothing printed" test -z "$("$PLURA" health --quiet --url "$URL")"
check "--live: /healthz" test "$("$PLURA" health --live --url "$URL")" = "$URL/healthz: ok"
check "\$PLURA_URL when there is no --url" env PLURA_URL="$URL" "$PLURA" health --quiet
check "the request is in the access log as GET /readyz" grep -q "access: GET /readyz 200" "$TEST_TMP/server.log"
check "credential settings that plura reg refuses do not matter (no credentials sent)" \
        env PLURA_URL="$URL" PLURA_USER=someone "$PLURA" health --quiet
stop_server

out=$("$PLURA" health --url "$URL" 2>&1) && rc=0 || rc=$?
check "a stopped server: exit 1" test "$rc" = 1
check "... cannot connect" grep -q "cannot connect" <<<"$out"

# fake servers on loopback: a /readyz that is not ready, one that answers something else, one that
# never answers, and one that shows the request's headers
FAKE=$TEST_TMP/fake.py
cat >"$FAKE" <<'PY'
import http.server, socket, sys, time
mode, portfile = sys.argv[1], sys.argv[2]
if mode == "silent":
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
    open(portfile, "w").write(str(s.getsockname()[1])); time.sleep(600)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status, body = {"notready": (503, b"not ready: No space left on device\n"), "wrong": (200, b"maybe\n"),
                        "headers": (200, b"ready\n")}[mode]
        if mode == "headers":
            open(portfile + ".headers", "w").write(str(self.headers))
        self.send_response(status); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
open(portfile, "w").write(str(srv.server_address[1])); srv.serve_forever()
PY
fake() { # MODE -> sets FAKE_URL
        local pf=$TEST_TMP/fake-$1.port
        python3 "$FAKE" "$1" "$pf" &
        TEST_PIDS+=("$!")
        for _ in $(seq 100); do [ -s "$pf" ] && break; sleep 0.05; done
        FAKE_URL=http://127.0.0.1:$(cat "$pf")
}
fake notready
out=$("$PLURA" health --url "$FAKE_URL" 2>&1) && rc=0 || rc=$?
check "/readyz 503: exit 1" test "$rc" = 1
check "... with the server's reason" grep -q "HTTP 503: not ready: No space left on device" <<<"$out"
fake wrong
out=$("$PLURA" health --url "$FAKE_URL" 2>&1) && rc=0 || rc=$?
check "200 that does not say ready: exit 1" test "$rc" = 1
fake silent
t0=$(date +%s%N)
out=$("$PLURA" health --url "$FAKE_URL" --timeout 300ms 2>&1) && rc=0 || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "a server that never answers: exit 1" test "$rc" = 1
check "... after --timeout 300ms (took $ms ms)" test "$ms" -ge 250 -a "$ms" -lt 3000
check "... no answer in time" grep -q "no answer in time" <<<"$out"
fake headers
check "PLURA_TOKEN set: still exit 0" env PLURA_TOKEN=plura_secret "$PLURA" health --quiet --url "$FAKE_URL"
check "... and no Authorization header sent" bash -c "! grep -qi '^authorization:' '$TEST_TMP/fake-headers.port.headers'"

for bad in "--timeout 0" "--timeout 50ms" "--timeout 2h" "--timeout soon" "--user admin" "extra" "--nope"; do
        # shellcheck disable=SC2086
        "$PLURA" health --url "$FAKE_URL" $bad >/dev/null 2>&1 && rc=0 || rc=$?
        check "usage error ($bad): exit 2" test "$rc" = 2
done
out=$("$PLURA" health --help) && rc=0 || rc=$?
check "--help: exit 0" test "$rc" = 0
check "... documents the exit status" grep -q "Exit status: 0 ready" <<<"$out"

# https: verified like plura reg
PKI=$TEST_TMP/pki
mkdir -p "$PKI"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 1 \
        -subj "/CN=health test CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI/server.key" -out "$PKI/server.csr" -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$PKI/ext"
openssl x509 -req -in "$PKI/server.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 1 -extfile "$PKI/ext" \
        -out "$PKI/server.crt" 2>/dev/null
printf '{ "tls": { "cert": "%s", "key": "%s" } }\n' "$PKI/server.crt" "$PKI/server.key" >"$TEST_TMP/tls.json"
start_server "$TEST_TMP/data-tls" "$TEST_TMP/tls.json"
HTTPS=https://localhost:${HOSTPORT##*:}
check "https with --ca: exit 0" "$PLURA" health --quiet --url "$HTTPS" --ca "$PKI/ca.crt"
check "https with \$PLURA_CA: exit 0" env PLURA_CA="$PKI/ca.crt" "$PLURA" health --quiet --url "$HTTPS"
out=$("$PLURA" health --url "$HTTPS" 2>&1) && rc=0 || rc=$?
check "https, the CA not trusted: exit 1" test "$rc" = 1
check "... the certificate does not verify" grep -q "does not verify" <<<"$out"
out=$("$PLURA" health --url "http://${HOSTPORT}" --timeout 2s 2>&1) && rc=0 || rc=$?
check "http:// to a TLS port: exit 1" test "$rc" = 1

done_testing
