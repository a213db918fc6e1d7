#!/usr/bin/env bash
# Real clients signing in to plura over verified TLS (issue 17): podman login/push/pull and the
# docker CLI against Debian's dockerd (docker login + push + pull), both through the token flow
# (GET /v2/token, then bearer requests), against a CA and server certificate made here with
# openssl, htpasswd users (a developer who may push apps/**, a viewer who may only pull) and
# anonymous pull of public/**. Wrong passwords, a missing CA and the viewer's push are refused.
# Loopback only: plura on 127.0.0.1 (podman) and on ::1 (docker, see below); dockerd creates no
# bridge and no network, its mounts and files stay in a mount namespace of its own.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"
. "$PLURA_SOURCE_ROOT/tests/e2e/e2e-lib.sh" # HOME, XDG_* inside the test (containers/image as root)

for p in podman dockerd unshare htpasswd openssl; do
        command -v "$p" >/dev/null || fail "$p is not installed (make deps installs podman, docker.io, apache2-utils)"
done
# Debian's docker.io CLI, not whatever docker comes first in PATH (/usr/local/bin may hold another)
DOCKER_CLI=/usr/bin/docker
[ -x "$DOCKER_CLI" ] || fail "$DOCKER_CLI is missing (make deps installs docker.io)"
T0=$(date +%s%N)
elapsed() { echo "$((($(date +%s%N) - T0) / 1000000)) ms"; }

# ---------------------------------------------------------------- CA, certificate, users, config
PKI=$TEST_TMP/pki
mkdir -p "$PKI"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" \
        -days 2 -subj "/CN=plura clients test CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI/server.key" -out "$PKI/server.csr" \
        -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,DNS:plura.test\nextendedKeyUsage=serverAuth\n' >"$PKI/server.ext"
openssl x509 -req -in "$PKI/server.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 2 \
        -extfile "$PKI/server.ext" -out "$PKI/server.crt" 2>/dev/null
mkdir -p "$TEST_TMP/certs" "$TEST_TMP/no-certs"
cp "$PKI/ca.crt" "$TEST_TMP/certs/ca.crt" # a --cert-dir for podman: the CA as ca.crt

HT=$TEST_TMP/htpasswd
htpasswd -c -B -C 4 -b "$HT" dev devpw 2>/dev/null
htpasswd -B -C 4 -b "$HT" viewer viewerpw 2>/dev/null
CFG=$TEST_TMP/config.json
# basic_cache_ttl 0: every Basic login costs a bcrypt, so that plura_auth_bcrypt_total counts the
# requests that came with a password; with the token flow only GET /v2/token does.
cat >"$CFG" <<EOF
{ "tls": { "cert": "$PKI/server.crt", "key": "$PKI/server.key" },
  "auth": {
    "htpasswd": "$HT",
    "basic_cache_ttl": "0s",
    "acl": [
      { "repos": "apps/**",   "users": ["dev"], "allow": ["pull", "push"] },
      { "repos": "public/**", "users": ["dev"], "allow": ["pull", "push"] },
      { "repos": "apps/**",   "users": ["viewer"], "allow": ["pull"] },
      { "repos": "public/**", "anonymous": true, "allow": ["pull"] } ] } }
EOF

# A tiny image: one file in a rootfs tarball made with tar (no base image, no network)
NONCE="hello from plura $(date +%s%N) $RANDOM"
mkdir -p "$TEST_TMP/rootfs"
printf '%s\n' "$NONCE" >"$TEST_TMP/rootfs/hello.txt"
tar -C "$TEST_TMP/rootfs" -cf "$TEST_TMP/rootfs.tar" .
# and another the viewer tries to push: blobs plura does not have yet, so a push needs uploads
mkdir -p "$TEST_TMP/rootfs-viewer"
printf 'viewer %s\n' "$NONCE" >"$TEST_TMP/rootfs-viewer/hello.txt"
tar -C "$TEST_TMP/rootfs-viewer" -cf "$TEST_TMP/rootfs-viewer.tar" .

CURL_TLS=(--cacert "$PKI/ca.crt")
MANIFEST_ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'
# registry_file BASEURL REPO TAG: hello.txt as the registry holds it in the image's layer (read as dev)
registry_file() {
        local m layer
        m=$(curl -sfS "${CURL_TLS[@]}" -u dev:devpw -H "$MANIFEST_ACCEPT" "$1/v2/$2/manifests/$3") || return 1
        layer=$(jq -r '.layers[0].digest' <<<"$m")
        curl -sfSL "${CURL_TLS[@]}" -u dev:devpw "$1/v2/$2/blobs/$layer" | tar -xzO --wildcards '*hello.txt'
}
# registry_digest BASEURL REPO TAG: the manifest digest the registry serves for the tag
registry_digest() {
        curl -sfS -I "${CURL_TLS[@]}" -u dev:devpw -H "$MANIFEST_ACCEPT" "$1/v2/$2/manifests/$3" |
                grep -i '^docker-content-digest:' | cut -d' ' -f2 | tr -d '\r'
}
has_tag() { curl -sfS "${CURL_TLS[@]}" -u dev:devpw "$1/v2/$2/tags/list" | jq -e --arg t "$3" '.tags // [] | index($t)' >/dev/null; }
# archive_file ARCHIVE: hello.txt from a docker-archive tarball (docker save, podman save)
archive_file() {
        local d=$TEST_TMP/archive.$RANDOM l
        mkdir -p "$d" && tar -C "$d" -xf "$1" || return 1
        for l in $(jq -r '.[0].Layers[]' "$d/manifest.json"); do
                tar -xOf "$d/$l" --wildcards '*hello.txt' 2>/dev/null && return 0
        done
        return 1
}
not() { ! "$@"; }
q() { "$@" >/dev/null; } # quiet: the check's output is the TAP line
qq() { "$@" >/dev/null 2>&1; }
jqf() { jq -e "$@" >/dev/null 2>&1; } # jq -e on a file that may not exist
# says PATTERN: $out (a client's output) matches, or is shown
says() { grep -qiE -- "$1" <<<"$out" || { echo "# '$1' not in: $out" >&2; return 1; }; }
bcrypts() { curl -sfS "${CURL_TLS[@]}" "$1/metrics" | awk '$1 == "plura_auth_bcrypt_total" { print $2 }'; }
# token_then_bearer BASEURL USER BCRYPTS_BEFORE: since the mark, the client got a token from
# /v2/token (GET with the password, or POST with a refresh token) before anything was done as
# USER, and every other request of USER came without the password: bcrypt was paid once per GET
# /v2/token and for nothing else (with basic_cache_ttl 0 every Basic request would pay one).
token_then_bearer() {
        local url=$1 user=$2 before=$3 log tokens gets others first after
        log=$(log_since_mark | grep ' access: ')
        tokens=$(grep -cE " access: (GET|POST) /v2/token 200 " <<<"$log" || true)
        gets=$(grep -c " access: GET /v2/token 200 .* actor=$user from " <<<"$log" || true)
        others=$(grep -v ' /v2/token ' <<<"$log" | grep -c " actor=$user from " || true)
        [ "$tokens" -ge 1 ] || { echo "# no token from /v2/token:" >&2; echo "$log" >&2; return 1; }
        [ "$others" -ge 1 ] || { echo "# no request authenticated as $user besides /v2/token" >&2; return 1; }
        # every request as $user but /v2/token came with a bearer token, none with Basic (the
        # access log says how; its lines are written when a request ends, so two connections'
        # lines need not come in the order their requests were sent)
        if grep -v ' /v2/token ' <<<"$log" | grep " actor=$user from " | grep -qv " (bearer)"; then
                echo "# $user was authenticated without a bearer token besides /v2/token:" >&2; echo "$log" >&2; return 1
        fi
        after=$(bcrypts "$url")
        [ "$((after - before))" = "$gets" ] || {
                echo "# bcrypt count grew by $((after - before)) for $gets GET /v2/token and $others other request(s):" >&2
                echo "$log" >&2
                return 1
        }
}

# ================================================================ podman, plura on 127.0.0.1
start_server "$TEST_TMP/data4" "$CFG"
P4=$HOSTPORT
URL4="https://$P4"
note "plura on $URL4 ($(elapsed))"

PM=$TEST_TMP/podman
mkdir -p "$PM/tmp"
# registries.conf of the test's own: nothing of the host's configuration (an "insecure" entry, a
# mirror) applies to 127.0.0.1
printf 'unqualified-search-registries = []\n' >"$PM/registries.conf"
export REGISTRY_AUTH_FILE="$PM/auth.json" CONTAINERS_REGISTRIES_CONF="$PM/registries.conf"
# storage, state and temporary files inside the test; vfs needs no fuse-overlayfs; no events
# journal, no systemd
PODMAN=(env TMPDIR="$PM/tmp" podman --root "$PM/root" --runroot "$PM/run" --tmpdir "$PM/libpod" --storage-driver vfs
        --events-backend none --cgroup-manager cgroupfs --network-config-dir "$PM/net" --volumepath "$PM/volumes")
PI=$P4/apps/podman-hello

out=$("${PODMAN[@]}" login --tls-verify=true --cert-dir "$TEST_TMP/no-certs" -u dev --password-stdin "$P4" <<<devpw 2>&1) && rc=0 || rc=$?
check "podman login without the CA: refused" test "$rc" != 0
check "... the certificate does not verify (unknown authority)" says "certificate signed by unknown authority"
log_mark
out=$("${PODMAN[@]}" login --tls-verify=true --cert-dir "$TEST_TMP/certs" -u dev --password-stdin "$P4" <<<wrong 2>&1) && rc=0 || rc=$?
check "podman login with a wrong password: refused" test "$rc" != 0
check "... as a wrong password" says "invalid username/password"
check "... by /v2/token (401)" grep -q " access: GET /v2/token 401 " <(log_since_mark)
check "... and nothing stored" not jqf --arg h "$P4" '.auths[$h]' "$REGISTRY_AUTH_FILE"
log_mark
out=$("${PODMAN[@]}" login --tls-verify=true --cert-dir "$TEST_TMP/certs" -u dev --password-stdin "$P4" <<<devpw 2>&1) && rc=0 || rc=$?
check "podman login with the right password" test "$rc" = 0
check "... says so" says "Login Succeeded"
check "... through GET /v2/token" grep -q " access: GET /v2/token 200 .* actor=dev from 127.0.0.1" <(log_since_mark)
check "... credentials stored in the test's auth file" jqf --arg h "$P4" '.auths[$h].auth' "$REGISTRY_AUTH_FILE"

check "podman import of the rootfs tarball" q "${PODMAN[@]}" import -q "$TEST_TMP/rootfs.tar" "$PI:1"
"${PODMAN[@]}" tag "$PI:1" "$P4/public/podman-hello:1"
log_mark
B=$(bcrypts "$URL4")
check "podman push --tls-verify=true (dev)" "${PODMAN[@]}" push -q --tls-verify=true --cert-dir "$TEST_TMP/certs" \
        --digestfile "$PM/digest" "$PI:1"
check "... token flow: GET /v2/token, then bearer requests only (bcrypt paid for /v2/token only)" token_then_bearer "$URL4" dev "$B"
check "... blobs and the manifest went up as dev" grep -q " access: PUT /v2/apps/podman-hello/manifests/1 201 .* actor=dev from 127.0.0.1" <(log_since_mark)
check "... plura serves the digest podman pushed" test "$(registry_digest "$URL4" apps/podman-hello 1)" = "$(cat "$PM/digest")"
check "... and the file's bytes in its layer" test "$(registry_file "$URL4" apps/podman-hello 1)" = "$NONCE"
check "podman push public/podman-hello (dev)" "${PODMAN[@]}" push -q --tls-verify=true --cert-dir "$TEST_TMP/certs" "$P4/public/podman-hello:1"

"${PODMAN[@]}" rmi -f "$PI:1" "$P4/public/podman-hello:1" >/dev/null
check "... removed locally" not "${PODMAN[@]}" image exists "$PI:1"
log_mark
check "podman pull --tls-verify=true (dev)" q "${PODMAN[@]}" pull -q --tls-verify=true --cert-dir "$TEST_TMP/certs" "$PI:1"
check "... the pushed digest" test "$("${PODMAN[@]}" image inspect --format '{{.Digest}}' "$PI:1")" = "$(cat "$PM/digest")"
"${PODMAN[@]}" save -q --format docker-archive -o "$PM/pulled.tar" "$PI:1"
check "... the file's bytes" test "$(archive_file "$PM/pulled.tar")" = "$NONCE"
check "... token flow" grep -q " access: GET /v2/token 200 .* actor=dev from " <(log_since_mark)

# viewer may pull apps/**, not push
"${PODMAN[@]}" login --tls-verify=true --cert-dir "$TEST_TMP/certs" -u viewer --password-stdin "$P4" <<<viewerpw >/dev/null
check "podman login as viewer" jqf --arg h "$P4" '.auths[$h].auth | @base64d | startswith("viewer:")' "$REGISTRY_AUTH_FILE"
"${PODMAN[@]}" rmi -f "$PI:1" >/dev/null
check "viewer pulls apps/podman-hello" q "${PODMAN[@]}" pull -q --tls-verify=true --cert-dir "$TEST_TMP/certs" "$PI:1"
q "${PODMAN[@]}" import -q "$TEST_TMP/rootfs-viewer.tar" "$PI:viewer"
log_mark
out=$("${PODMAN[@]}" push --tls-verify=true --cert-dir "$TEST_TMP/certs" "$PI:viewer" 2>&1) && rc=0 || rc=$?
check "viewer's push is refused" test "$rc" != 0
check "... 403 DENIED naming the action" says 'denied: viewer may not push in apps/podman-hello \(missing action "push"\)'
check "... at the first blob upload" grep -q " access: POST /v2/apps/podman-hello/blobs/uploads/ 403 .* actor=viewer from " <(log_since_mark)
check "... no upload session was opened" test "$(count_upload_sessions)" = 0
check "... and no tag viewer in plura" not has_tag "$URL4" apps/podman-hello viewer

# anonymous: public/** may be pulled, apps/** not
"${PODMAN[@]}" logout "$P4" >/dev/null
check "podman logout: no credentials left" not jqf --arg h "$P4" '.auths[$h]' "$REGISTRY_AUTH_FILE"
check "anonymous podman pull of public/podman-hello" q "${PODMAN[@]}" pull -q --tls-verify=true --cert-dir "$TEST_TMP/certs" "$P4/public/podman-hello:1"
out=$("${PODMAN[@]}" pull --tls-verify=true --cert-dir "$TEST_TMP/certs" "$PI:1" 2>&1 </dev/null) && rc=0 || rc=$?
check "anonymous podman pull of apps/podman-hello: refused" test "$rc" != 0
check "... needing pull" says "unauthorized: authentication required: repository apps/podman-hello needs pull"
note "podman done ($(elapsed))"

# ================================================================ docker CLI + dockerd, plura on ::1
# dockerd treats every registry in 127.0.0.0/8 as insecure whatever it is told (the CIDR is always
# added to --insecure-registry): it would skip certificate verification, read no certs.d and fall
# back to plain HTTP. ::1 is loopback too and not in that list, but 20.10 cannot parse [::1]:PORT
# in an image reference, so dockerd gets the name plura.test for ::1 from an /etc/hosts of its
# own. It runs in a mount namespace of its own (unshare -m, private propagation), where
# - /etc/hosts is $DK/hosts (plura.test -> ::1; .test never resolves in DNS),
# - /etc/docker is $DK/etc-docker: dockerd reads the CA from /etc/docker/certs.d/HOST:PORT/ca.crt
#   and has no per-daemon option for it (registry.CertsDir() is /etc/docker/certs.d unless it runs
#   under RootlessKit, which would need rootless mode), and writes its key.json there,
# - /run is $DK/run (dockerd creates /run/docker/plugins whatever --exec-root says),
# so that nothing outside the test is written, and its own mounts (the vfs data root) vanish with
# the namespace when it exits. The network namespace is the host's (it must reach ::1), left as it
# was: no bridge, no iptables rules, no forwarding switched on.
start_server "$TEST_TMP/data6" "$CFG" --listen '[::1]:0'
PORT6=${HOSTPORT##*:}
URL6="https://$HOSTPORT"
REG=plura.test:$PORT6
note "plura on $URL6, dockerd's name for it: $REG ($(elapsed))"

DK=$TEST_TMP/dockerd
mkdir -p "$DK/etc-docker/certs.d/$REG" "$DK/run" "$DK/exec" "$DK/data" "$DK/cli" "$DK/tmp"
printf '127.0.0.1\tlocalhost\n::1\tplura.test\n' >"$DK/hosts"
echo '{}' >"$DK/daemon.json"
links_before=$(ip -o link | awk -F': ' '{ print $2 }' | sort)
addrs_before=$(ip -o addr | awk '{ print $2, $4 }' | sort)
# dockerd's default --ip-forward=true would switch on the host's net.ipv4.ip_forward (it shares
# our network namespace): --ip-forward=false, and shown to be unchanged
forwarding() { cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding | tr '\n' ' '; }
forwarding_before=$(forwarding)
TEST_MOUNTS+=("$DK/data") # a safeguard: the namespace takes dockerd's mounts with it
# shellcheck disable=SC2016
env TMPDIR="$DK/tmp" unshare --mount --propagation private -- sh -c \
        'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/docker && mount --bind "$3" /run && shift 3 && exec "$@"' sh \
        "$DK/hosts" "$DK/etc-docker" "$DK/run" \
        dockerd --data-root "$DK/data" --exec-root "$DK/exec" --pidfile "$DK/dockerd.pid" -H "unix://$DK/docker.sock" \
        --config-file "$DK/daemon.json" --storage-driver vfs --bridge=none --iptables=false --ip6tables=false \
        --ip-forward=false --ip-masq=false --userland-proxy=false >"$TEST_TMP/dockerd.log" 2>&1 &
DOCKERD_PID=$!
TEST_PIDS+=("$DOCKERD_PID")
DOCKER=("$DOCKER_CLI" --config "$DK/cli" -H "unix://$DK/docker.sock")
dockerd_ready() {
        for _ in $(seq 600); do
                curl -sf --unix-socket "$DK/docker.sock" -o /dev/null http://docker/_ping && return 0
                kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -n 30 "$TEST_TMP/dockerd.log" >&2; return 1; }
                sleep 0.05
        done
        tail -n 30 "$TEST_TMP/dockerd.log" >&2
        return 1
}
check "dockerd starts (vfs, no bridge, no iptables)" dockerd_ready || fail "dockerd did not start; its log is in $TEST_TMP/dockerd.log"
note "dockerd up ($(elapsed))"
# dockerd starts its own containerd (its socket under --exec-root); stopped with dockerd, and by PID too
CONTAINERD_PID=$(cat "$DK/exec/containerd/containerd.pid" 2>/dev/null || true)
[ -n "$CONTAINERD_PID" ] && TEST_PIDS+=("$CONTAINERD_PID")
check "... with a containerd of its own" test -n "$CONTAINERD_PID" -a "$(ps -o ppid= -p "${CONTAINERD_PID:-0}" | tr -d ' ')" = "$DOCKERD_PID"
check "dockerd is the one we started (pid file)" test "$(cat "$DK/dockerd.pid")" = "$DOCKERD_PID"
check "... Debian's docker.io" grep -q "+dfsg" <("${DOCKER[@]}" version --format '{{.Server.Version}}')
check "... vfs storage" test "$("${DOCKER[@]}" info --format '{{.Driver}}')" = vfs
check "... networks: host and none only (no bridge)" test "$("${DOCKER[@]}" network ls --format '{{.Name}}' | sort | tr '\n' ' ')" = "host none "
check "... no network interface or address created" test "$(ip -o link | awk -F': ' '{ print $2 }' | sort)" = "$links_before" -a \
        "$(ip -o addr | awk '{ print $2, $4 }' | sort)" = "$addrs_before"
check "... the host's IP forwarding unchanged ($forwarding_before)" test "$(forwarding)" = "$forwarding_before"
check "... its mounts are not visible outside its namespace" not grep -q "$TEST_TMP" /proc/mounts
check "... its key.json went to the namespace's /etc/docker ($DK/etc-docker)" test -s "$DK/etc-docker/key.json"

DI=$REG/apps/docker-hello
check "docker import of the rootfs tarball" q "${DOCKER[@]}" import "$TEST_TMP/rootfs.tar" "$DI:1"
"${DOCKER[@]}" tag "$DI:1" "$REG/public/docker-hello:1"
out=$("${DOCKER[@]}" login -u dev --password-stdin "$REG" <<<devpw 2>&1) && rc=0 || rc=$?
check "docker login before the CA is in certs.d: refused (dockerd verifies plura.test)" test "$rc" != 0
check "... the certificate does not verify (unknown authority)" says "certificate signed by unknown authority"
cp "$PKI/ca.crt" "$DK/etc-docker/certs.d/$REG/ca.crt"
log_mark
out=$("${DOCKER[@]}" login -u dev --password-stdin "$REG" <<<wrong 2>&1) && rc=0 || rc=$?
check "docker login with a wrong password: refused" test "$rc" != 0
check "... as a wrong password" says "unauthorized: wrong user name or password"
check "... by /v2/token (401)" grep -q " access: GET /v2/token 401 " <(log_since_mark)
check "... and nothing stored" not jqf --arg h "$REG" '.auths[$h]' "$DK/cli/config.json"
log_mark
B=$(bcrypts "$URL6")
out=$("${DOCKER[@]}" login -u dev --password-stdin "$REG" <<<devpw 2>&1) && rc=0 || rc=$?
check "docker login with the right password" test "$rc" = 0
check "... says so" says "Login Succeeded"
check "... token flow: GET /v2/token, then GET /v2/ with the bearer token" token_then_bearer "$URL6" dev "$B"
check "... over ::1 (dockerd asked plura.test)" grep -q " access: GET /v2/token 200 .* actor=dev from ::1" <(log_since_mark)
# dockerd logs in with offline_token=true: the CLI keeps plura's refresh token, not the password
check "... the CLI config holds plura's refresh token for it, not the password" \
        jqf --arg h "$REG" '.auths[$h] | (.identitytoken | length > 0) and (.auth | @base64d) == "dev:"' "$DK/cli/config.json"

log_mark
B=$(bcrypts "$URL6")
out=$("${DOCKER[@]}" push "$DI:1" 2>&1) && rc=0 || { rc=$?; echo "$out" >&2; }
check "docker push (dev)" test "$rc" = 0
DDIGEST=$(sed -n 's/^1: digest: \(sha256:[0-9a-f]\{64\}\) size: .*/\1/p' <<<"$out")
check "... token flow: a token from /v2/token, then bearer requests only" token_then_bearer "$URL6" dev "$B"
check "... the token came from the refresh token (POST /v2/token), no password sent" \
        test "$(log_since_mark | grep -c ' access: POST /v2/token 200 ' || true):$(log_since_mark | grep -c ' access: GET /v2/token ' || true)" = 1:0
check "... the manifest went up as dev" grep -q " access: PUT /v2/apps/docker-hello/manifests/1 201 .* actor=dev from ::1" <(log_since_mark)
check "... plura serves the digest docker pushed" test "$(registry_digest "$URL6" apps/docker-hello 1)" = "$DDIGEST"
check "... and the file's bytes in its layer" test "$(registry_file "$URL6" apps/docker-hello 1)" = "$NONCE"
check "docker push public/docker-hello (dev)" q "${DOCKER[@]}" push -q "$REG/public/docker-hello:1"

"${DOCKER[@]}" rmi "$DI:1" "$REG/public/docker-hello:1" >/dev/null
check "... removed locally" not qq "${DOCKER[@]}" image inspect "$DI:1"
log_mark
check "docker pull (dev)" q "${DOCKER[@]}" pull -q "$DI:1"
check "... the pushed digest" grep -qx "$REG/apps/docker-hello@$DDIGEST" <("${DOCKER[@]}" image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$DI:1")
"${DOCKER[@]}" save -o "$DK/pulled.tar" "$DI:1"
check "... the file's bytes" test "$(archive_file "$DK/pulled.tar")" = "$NONCE"
check "... token flow (refresh token)" grep -q " access: POST /v2/token 200 " <(log_since_mark)

"${DOCKER[@]}" login -u viewer --password-stdin "$REG" <<<viewerpw >/dev/null
check "docker login as viewer" jqf --arg h "$REG" '.auths[$h].auth | @base64d | startswith("viewer:")' "$DK/cli/config.json"
q "${DOCKER[@]}" import "$TEST_TMP/rootfs-viewer.tar" "$DI:viewer"
log_mark
out=$("${DOCKER[@]}" push "$DI:viewer" 2>&1) && rc=0 || rc=$?
check "viewer's docker push is refused" test "$rc" != 0
check "... 403 DENIED naming the action" says 'denied: viewer may not push in apps/docker-hello \(missing action "push"\)'
check "... at the first blob upload" grep -q " access: POST /v2/apps/docker-hello/blobs/uploads/ 403 .* actor=viewer from " <(log_since_mark)
check "... no upload session was opened" test "$(count_upload_sessions)" = 0
check "... and no tag viewer in plura" not has_tag "$URL6" apps/docker-hello viewer

"${DOCKER[@]}" logout "$REG" >/dev/null
check "docker logout: no credentials left" not jqf --arg h "$REG" '.auths[$h].auth' "$DK/cli/config.json"
"${DOCKER[@]}" rmi "$DI:1" "$DI:viewer" >/dev/null
check "anonymous docker pull of public/docker-hello" q "${DOCKER[@]}" pull -q "$REG/public/docker-hello:1"
out=$("${DOCKER[@]}" pull "$DI:1" 2>&1) && rc=0 || rc=$?
check "anonymous docker pull of apps/docker-hello: refused" test "$rc" != 0
check "... needing pull" says "unauthorized: authentication required: repository apps/docker-hello needs pull"
note "docker done ($(elapsed))"

# ---------------------------------------------------------------- stop dockerd by its PID
kill -TERM "$DOCKERD_PID"
dockerd_stopped() { for _ in $(seq 300); do kill -0 "$DOCKERD_PID" 2>/dev/null || return 0; sleep 0.1; done; return 1; }
check "dockerd stops on SIGTERM" dockerd_stopped
wait "$DOCKERD_PID" && rc=0 || rc=$?
check "... exit status 0" test "$rc" = 0
check "... and its containerd with it" not kill -0 "$CONTAINERD_PID" 2>/dev/null
check "no mount of the test left" not grep -q "$TEST_TMP" /proc/mounts
note "dockerd stopped ($(elapsed))"

done_testing
