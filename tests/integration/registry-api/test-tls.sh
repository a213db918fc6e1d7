#!/usr/bin/env bash
# Native TLS (issue 17): tls.cert/tls.key serve HTTPS only, TLS 1.2 and 1.3 with AEAD ciphers and
# forward secrecy, HSTS, certificates reloaded on SIGHUP while connections stay up (a bad file keeps
# the old one), client certificates (tls.client_ca) naming the actor; skopeo and `plura reg`
# verifying the server against a CA made here. Certificates are made with openssl in the test.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"
. "$PLURA_SOURCE_ROOT/tests/e2e/e2e-lib.sh" # a HOME of its own for skopeo
PROBE=(python3 "$PLURA_SOURCE_ROOT/tests/integration/registry-api/tls-probe.py")
PKI=$TEST_TMP/pki
mkdir -p "$PKI"

# ---------------------------------------------------------------- certificates
ca() { # NAME CN
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI/$1.key" -out "$PKI/$1.crt" \
                -days 2 -subj "/CN=$2" 2>/dev/null
}
# cert NAME CA CN EXTENSIONS NEWKEY...: a certificate for a new key (openssl req -newkey NEWKEY...), signed by CA
cert() {
        local name=$1 ca=$2 cn=$3 ext=$4; shift 4
        openssl req -newkey "$@" -nodes -keyout "$PKI/$name.key" -out "$PKI/$name.csr" -subj "/O=plura test/CN=$cn" 2>/dev/null
        printf '%b\n' "$ext" >"$PKI/$name.ext"
        openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial -days 2 \
                -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
}
SERVER_EXT='subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth'
ca ca "plura test CA"
ca other-ca "another CA"
cert server1 ca localhost "$SERVER_EXT" ec -pkeyopt ec_paramgen_curve:P-256
cert server2 ca localhost "$SERVER_EXT" rsa:2048
cert alice ca alice 'extendedKeyUsage=clientAuth' ec -pkeyopt ec_paramgen_curve:P-256
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI/mallory.key" -out "$PKI/mallory.crt" \
        -days 2 -subj "/CN=mallory" 2>/dev/null
fp_of() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
FP1=$(fp_of "$PKI/server1.crt")
FP2=$(fp_of "$PKI/server2.crt")

# What the server reads: replaced whole (rename) by the reload tests.
install_pem() { cat "${@:2}" >"$1.tmp" && mv "$1.tmp" "$1"; }
install_pem "$PKI/live.crt" "$PKI/server1.crt" "$PKI/ca.crt" # the chain, leaf first
install_pem "$PKI/live.key" "$PKI/server1.key"
install_pem "$PKI/live-client-ca.crt" "$PKI/ca.crt"

# ---------------------------------------------------------------- refused at start
cat >"$TEST_TMP/nokey.json" <<EOF
{ "tls": { "cert": "$PKI/live.crt" } }
EOF
out=$("$PLURA" serve -c "$TEST_TMP/nokey.json" --listen 127.0.0.1:0 --data "$TEST_TMP/d0" 2>&1) && rc=0 || rc=$?
check "a certificate without its key refuses the start (exit 2)" test "$rc" = 2
check "... naming tls.key and the certificate's path" grep -q "tls.key: missing: tls.cert ($PKI/live.crt) is set" <<<"$out"
cat >"$TEST_TMP/mismatch.json" <<EOF
{ "tls": { "cert": "$PKI/server1.crt", "key": "$PKI/server2.key" } }
EOF
out=$(timeout 60 "$PLURA" serve -c "$TEST_TMP/mismatch.json" --listen 127.0.0.1:0 --data "$TEST_TMP/d0" 2>&1) && rc=0 || rc=$?
check "a key that is not the certificate's refuses the start" test "$rc" = 1
check "... naming both files" grep -q "tls.key $PKI/server2.key is not the private key of the certificate in $PKI/server1.crt" <<<"$out"

# ---------------------------------------------------------------- serving
cat >"$TEST_TMP/config.json" <<EOF
{ "tls": { "cert": "$PKI/live.crt", "key": "$PKI/live.key", "client_ca": "$PKI/live-client-ca.crt" } }
EOF
start_server "$TEST_TMP/data" "$TEST_TMP/config.json"
URL="https://$HOSTPORT"
PORT=${HOSTPORT##*:}
check "it says it listens on https://" grep -q "listening on https://$HOSTPORT" "$TEST_TMP/server.log"

http GET /v2/ --cacert "$PKI/ca.crt" >/dev/null
check "curl --cacert: 200" test "$HTTP_STATUS" = 200
check "HSTS on a TLS response (one year by default)" test "$(header Strict-Transport-Security)" = "max-age=31536000"
curl -sS -o /dev/null "$URL/v2/" 2>"$TEST_TMP/curl.err" && rc=0 || rc=$?
check "curl without --cacert: certificate verification fails (exit 60)" test "$rc" = 60
http GET /v2/nope --cacert "$PKI/ca.crt" >/dev/null
check "an error answer has HSTS too" test "$(header Strict-Transport-Security)" = "max-age=31536000"

# s_client VERSION [CIPHER]: the protocol and cipher the handshake agreed on ("(NONE)" if refused)
s_client() {
        local args=(-connect "$HOSTPORT" -"$1" -CAfile "$PKI/ca.crt")
        [ -n "${2:-}" ] && args+=(-cipher "$2")
        timeout 20 openssl s_client "${args[@]}" </dev/null 2>&1 | sed -n 's/^New, \(.*\), Cipher is \(.*\)$/\1 \2/p' | head -n1
}
# the client's security level 0 lets it offer TLS 1.1 at all: the refusal is the server's
check "TLS 1.1 refused" test "$(s_client tls1_1 'DEFAULT:@SECLEVEL=0')" = "(NONE) (NONE)"
check "TLS 1.0 refused" test "$(s_client tls1 'DEFAULT:@SECLEVEL=0')" = "(NONE) (NONE)"
check "TLS 1.2 accepted, an ECDHE AEAD suite" test "$(s_client tls1_2)" = "TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256"
check "TLS 1.3 accepted" test "$(s_client tls1_3)" = "TLSv1.3 TLS_AES_128_GCM_SHA256"
check "ChaCha20-Poly1305 accepted" test "$(s_client tls1_2 ECDHE-ECDSA-CHACHA20-POLY1305)" = "TLSv1.2 ECDHE-ECDSA-CHACHA20-POLY1305"
check "a CBC suite refused (ECDHE-ECDSA-AES128-SHA)" test "$(s_client tls1_2 ECDHE-ECDSA-AES128-SHA)" = "(NONE) (NONE)"
check "a CBC suite refused (ECDHE-ECDSA-AES256-SHA384)" test "$(s_client tls1_2 ECDHE-ECDSA-AES256-SHA384)" = "(NONE) (NONE)"

# plain HTTP on the TLS port: closed at once, no answer in plain text, the server unharmed
t0=$(date +%s%N)
curl -sS -m 20 -o /dev/null "http://$HOSTPORT/v2/" 2>/dev/null && rc=0 || rc=$?
t1=$(date +%s%N)
check "plain HTTP to the TLS port is refused (empty reply or reset, exit $rc)" test "$rc" = 52 -o "$rc" = 56
check "... at once (no timeout)" test $(((t1 - t0) / 1000000)) -lt 5000
check "... and logged as a failed handshake" grep -q "a TLS handshake failed" "$TEST_TMP/server.log"
http GET /v2/ --cacert "$PKI/ca.crt" >/dev/null
check "HTTPS still served after it" test "$HTTP_STATUS" = 200

# ---------------------------------------------------------------- client certificates
log_mark
curl -sS -o /dev/null --cacert "$PKI/ca.crt" --cert "$PKI/alice.crt" --key "$PKI/alice.key" "$URL/v2/_catalog"
check "a verified client certificate: its CN is the actor (access log)" grep -q "GET /v2/_catalog 200 .* actor=alice$" <(log_since_mark)
curl -sS -o /dev/null --cacert "$PKI/ca.crt" "$URL/v2/_catalog"
check "no client certificate: the client address" grep -q "GET /v2/_catalog 200 .* actor=127.0.0.1$" <(log_since_mark)
log_mark
for v in 1.2 1.3; do
        curl -sS -o /dev/null --tlsv$v --tls-max $v --cacert "$PKI/ca.crt" --cert "$PKI/mallory.crt" --key "$PKI/mallory.key" \
                "$URL/v2/_catalog" 2>/dev/null && rc=0 || rc=$?
        check "TLS $v: a client certificate of another CA is refused at the handshake" test "$rc" != 0
done
check "... no request got through" test "$(log_since_mark | grep -c 'access:' || true)" = 0
check "... and the refusal is logged with the reason" grep -q "tls: refused the client certificate of 127.0.0.1: .*issuer is unknown" <(log_since_mark)

# ---------------------------------------------------------------- skopeo and plura reg, verifying
make_layout --out "$TEST_TMP/layout" --seed 7 --refs base >/dev/null
mkdir -p "$TEST_TMP/certs.d" "$TEST_TMP/certs-alice.d"
cp "$PKI/ca.crt" "$TEST_TMP/certs.d/ca.crt"
cp "$PKI/ca.crt" "$TEST_TMP/certs-alice.d/ca.crt"
cp "$PKI/alice.crt" "$TEST_TMP/certs-alice.d/alice.cert"
cp "$PKI/alice.key" "$TEST_TMP/certs-alice.d/alice.key"
check "skopeo push, verifying the server against ca.crt (--dest-cert-dir)" "${SKOPEO[@]}" copy -q --dest-tls-verify=true \
        --dest-cert-dir "$TEST_TMP/certs.d" "oci:$TEST_TMP/layout:base" "docker://$HOSTPORT/apps/tls:1.0.0"
log_mark
check "skopeo pull with alice's client certificate" "${SKOPEO[@]}" copy -q --src-tls-verify=true \
        --src-cert-dir "$TEST_TMP/certs-alice.d" "docker://$HOSTPORT/apps/tls:1.0.0" "oci:$TEST_TMP/out:base"
check "... byte-identical blobs" diff -r "$TEST_TMP/layout/blobs" "$TEST_TMP/out/blobs"
check "... every request of the pull by alice" test "$(log_since_mark | grep 'access:' | grep -vc 'actor=alice$' || true)" = 0
"${SKOPEO[@]}" inspect --tls-verify=true "docker://$HOSTPORT/apps/tls:1.0.0" >/dev/null 2>"$TEST_TMP/skopeo.err" && rc=0 || rc=$?
check "skopeo without the CA: refused (unknown authority)" test "$rc" != 0
check "... for the certificate" grep -qi "certificate" "$TEST_TMP/skopeo.err"

out=$(PLURA_URL= "$PLURA" reg tags apps/tls --url "$URL" --ca "$PKI/ca.crt" 2>&1) && rc=0 || rc=$?
check "plura reg --ca FILE: works" test "$rc" = 0
check "... and lists the pushed tag" grep -q "1.0.0" <<<"$out"
out=$(PLURA_CA= "$PLURA" reg tags apps/tls --url "$URL" 2>&1) && rc=0 || rc=$?
check "plura reg without --ca: refused" test "$rc" = 1
check "... with a clear certificate error" grep -q "the server's TLS certificate does not verify (SSL certificate problem: .*); trust its CA with --ca FILE" <<<"$out"
out=$(PLURA_CA="$PKI/ca.crt" "$PLURA" reg tags apps/tls --url "$URL" 2>&1) && rc=0 || rc=$?
check "plura reg with \$PLURA_CA: works" test "$rc" = 0
out=$("$PLURA" reg tags apps/tls --url "$URL" --ca "$PKI/other-ca.crt" 2>&1) && rc=0 || rc=$?
check "plura reg --ca with another CA: refused" test "$rc" = 1
out=$("$PLURA" reg tags apps/tls --url "https://localhost:$PORT" --insecure 2>&1) && rc=0 || rc=$?
check "plura reg --insecure: works" test "$rc" = 0
out=$("$PLURA" reg gc --url "$URL" --ca "$PKI/ca.crt" 2>&1) && rc=0 || rc=$?
check "plura reg gc over TLS (a background run, waited for with long polls)" test "$rc" = 0
check "... with its report" grep -q "Reclaimed" <<<"$out"

# ---------------------------------------------------------------- SIGHUP
generation_logged() { # N: wait until the server logged serving generation N
        for _ in $(seq 200); do grep -q "generation $1\(,\|$\)" "$TEST_TMP/server.log" && return 0; sleep 0.05; done
        return 1
}
reload_failed_logged() { # N: wait for the Nth failed reload
        for _ in $(seq 200); do [ "$(grep -c 'tls: reload failed' "$TEST_TMP/server.log" || true)" -ge "$1" ] && return 0; sleep 0.05; done
        return 1
}
export -f generation_logged reload_failed_logged install_pem
export TEST_TMP PKI SERVER_PID
check "a new connection gets the first certificate" test "$("${PROBE[@]}" fingerprint "$HOSTPORT")" = "$FP1"
"${PROBE[@]}" keepalive "$HOSTPORT" "$PKI/ca.crt" \
        'install_pem "$PKI/live.crt" "$PKI/server2.crt" "$PKI/ca.crt" && install_pem "$PKI/live.key" "$PKI/server2.key" &&
         kill -HUP "$SERVER_PID" && generation_logged 2 &&
         ! grep -q "generation 1 released" "$TEST_TMP/server.log"' >"$TEST_TMP/keepalive.out" && rc=0 || rc=$?
cat "$TEST_TMP/keepalive.out"
check "SIGHUP with a new certificate and key: the keep-alive connection survives, holding the first generation" test "$rc" = 0
check "... its requests answered before and after (200 200)" test "$(cut -d' ' -f1 "$TEST_TMP/keepalive.out" | tr '\n' ' ')" = "200 200 "
check "... still on the certificate of its handshake" test "$(cut -d' ' -f2 "$TEST_TMP/keepalive.out" | sort -u)" = "$FP1"
check "a new connection gets the new certificate" test "$("${PROBE[@]}" fingerprint "$HOSTPORT")" = "$FP2"
released_logged() { for _ in $(seq 300); do grep -q "generation $1 released" "$TEST_TMP/server.log" && return 0; sleep 0.05; done; return 1; }
check "the first generation is freed once its last connection closed" released_logged 1
http GET /v2/ --cacert "$PKI/ca.crt" >/dev/null
check "... and verifies" test "$HTTP_STATUS" = 200
check "the reload is logged with the new certificate's fingerprint" grep -q "tls: serving $PKI/live.crt (.*SHA-256 $FP2.*generation 2" "$TEST_TMP/server.log"
# the new key is RSA: RSA key exchange (no forward secrecy) stays refused, ECDHE-RSA is taken
check "RSA key exchange refused (AES128-GCM-SHA256, no forward secrecy)" test "$(s_client tls1_2 AES128-GCM-SHA256)" = "(NONE) (NONE)"
check "ECDHE-RSA accepted" test "$(s_client tls1_2)" = "TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256"

printf 'not a certificate\n' >"$PKI/garbage.pem"
install_pem "$PKI/live.crt" "$PKI/garbage.pem"
kill -HUP "$SERVER_PID"
check "SIGHUP with a broken certificate file: the reload fails" reload_failed_logged 1
check "... saying why, with the file" grep -q "tls.cert $PKI/live.crt: no PEM certificate (chain) in it" "$TEST_TMP/server.log"
check "... and the old certificate is still served" test "$("${PROBE[@]}" fingerprint "$HOSTPORT")" = "$FP2"
install_pem "$PKI/live.crt" "$PKI/server1.crt" "$PKI/ca.crt" # the key is still server2's
kill -HUP "$SERVER_PID"
check "SIGHUP with a certificate that is not the key's: refused too" reload_failed_logged 2
check "... saying so" grep -q "tls.key $PKI/live.key is not the private key of the certificate in $PKI/live.crt" "$TEST_TMP/server.log"
check "... the old certificate still served" test "$("${PROBE[@]}" fingerprint "$HOSTPORT")" = "$FP2"
http GET /v2/ --cacert "$PKI/ca.crt" >/dev/null
check "... and HTTPS works" test "$HTTP_STATUS" = 200

install_pem "$PKI/live.crt" "$PKI/server2.crt" "$PKI/ca.crt"
kill -HUP "$SERVER_PID"
check "fixed files: the reload takes them (generation 3)" generation_logged 3

# reloads while handshakes are under way: each handshake keeps the generation it took
hup_storm() { for _ in $(seq 40); do kill -HUP "$SERVER_PID"; sleep 0.01; done; }
hup_storm &
STORM_PID=$!
TEST_PIDS+=("$STORM_PID")
seq 120 | xargs -P 6 -I{} curl -sS -o /dev/null -w '%{http_code}\n' --cacert "$PKI/ca.crt" "$URL/v2/" >"$TEST_TMP/storm.out" 2>&1 || true
wait "$STORM_PID"
check "120 handshakes during 40 reloads: every request answered (200)" test "$(grep -c '^200$' "$TEST_TMP/storm.out")" = 120
check "... the reloads took effect" test "$(grep -c 'tls: serving' "$TEST_TMP/server.log")" -gt 5
check "... and no reload failed" test "$(grep -c 'tls: reload failed' "$TEST_TMP/server.log")" = 2

# a new client CA: a connection whose certificate verified at its handshake names no user any more
G=$(grep -o 'generation [0-9]*, client' "$TEST_TMP/server.log" | tail -n1 | cut -d' ' -f2 | tr -d ,)
export G
log_mark
"${PROBE[@]}" keepalive "$HOSTPORT" "$PKI/ca.crt" \
        'install_pem "$PKI/live-client-ca.crt" "$PKI/other-ca.crt" && kill -HUP "$SERVER_PID" && generation_logged $((G + 1))' \
        --cert "$PKI/alice.crt" --key "$PKI/alice.key" >"$TEST_TMP/keepalive.out" && rc=0 || rc=$?
cat "$TEST_TMP/keepalive.out"
check "SIGHUP with another client CA: alice's keep-alive connection survives" test "$rc" = 0
check "... alice before the reload, the bare address after" \
        test "$(log_since_mark | sed -n 's/.*access: GET \/v2\/ 200 .* actor=\(.*\)$/\1/p' | tr '\n' ' ')" = "alice 127.0.0.1 "
curl -sS -o /dev/null --cacert "$PKI/ca.crt" --cert "$PKI/alice.crt" --key "$PKI/alice.key" "$URL/v2/" 2>/dev/null && rc=0 || rc=$?
check "... and a new connection with alice's certificate is refused" test "$rc" != 0

stop_server
check "the server stops cleanly" grep -q "stopped" "$TEST_TMP/server.log"
done_testing
