#!/usr/bin/env bash
# Identity and access against a real server (issue 17): htpasswd users (bcrypt), the token flow
# (/v2/token, refresh tokens), API tokens (as password and bearer; revoked at once), the ACL for
# the seed roles, one rights check before every route (the matrix below covers every route the
# server lists in GET /v1/registry/routes, and fails on one it does not know), refusals with their
# status and message, brute force from one address while the right user logs in from another,
# X-Plura-Actor ignored, htpasswd reloaded on SIGHUP and on change, bad htpasswd entries and
# listening beyond loopback without auth refused at start, skopeo with --creds/--dest-creds.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"
. "$PLURA_SOURCE_ROOT/tests/e2e/e2e-lib.sh"

HT="$TEST_TMP/htpasswd"
for u in alice:alicepw rel:relpw sam:sampw admin:adminpw nobody:nobodypw carol:carolpw; do
        htpasswd -B -C 4 -b "$HT" "${u%%:*}" "${u#*:}" 2>/dev/null || htpasswd -c -B -C 4 -b "$HT" "${u%%:*}" "${u#*:}" 2>/dev/null
done
sed -i '/^carol:/d' "$HT" # carol comes later (reload)
openssl genpkey -algorithm ed25519 -out "$TEST_TMP/token-key.pem" 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$TEST_TMP/other-key.pem" 2>/dev/null
KID=$(openssl pkey -in "$TEST_TMP/token-key.pem" -pubout -outform DER | sha256sum | cut -c1-32)

CFG="$TEST_TMP/config.json"
cat >"$CFG" <<EOF
{ "auth": {
    "htpasswd": "$HT",
    "token": { "key": "$TEST_TMP/token-key.pem", "ttl": "5m" },
    "failed_logins": { "per_client": 10, "per_user": 50, "window": "10m" },
    "groups": { "release": ["alice", "rel"], "security": ["sam"] },
    "acl": [
      { "repos": "**", "groups": ["release"], "allow": ["pull", "promote:stg", "promote:prod:candidate", "rollback:prod"] },
      { "repos": "**", "users": ["rel"], "allow": ["promote:prod"] },
      { "repos": "apps/**", "users": ["alice", "ci-search", "ci-narrow"], "allow": ["pull", "push"] },
      { "repos": "**", "groups": ["security"], "allow": ["pull", "block", "unblock", "hold", "release", "worm", "audit"] },
      { "repos": "public/**", "anonymous": true, "allow": ["pull"] },
      { "repos": "**", "users": ["admin"], "allow": ["admin"] } ] },
  "channels": { "auto_dev_candidate": true, "gates": { "stg": { "not_blocked": true },
      "prod:candidate": { "not_blocked": true }, "prod:stable": { "not_blocked": true, "soak": "0s" } } } }
EOF
DATA="$TEST_TMP/data"
start_server "$DATA" "$CFG"
HOST=${HOSTPORT%:*} PORT=${HOSTPORT##*:}

api() { http "$@" >"$TEST_TMP/out"; BODY=$(cat "$TEST_TMP/out"); }
code() { jq -r '.errors[0].code // empty' <<<"$BODY" 2>/dev/null; }
msg() { jq -r '.errors[0].message // empty' <<<"$BODY" 2>/dev/null; }
is() { [ "$HTTP_STATUS:$(code)" = "$1" ] || { echo "# expected $1, got $HTTP_STATUS:$(code) $BODY" >&2; return 1; }; }
say() { grep -q -- "$1" <<<"$BODY" || { echo "# '$1' not in $BODY" >&2; return 1; }; }
U() { echo "-u" "$1:$2"; }

# ---- authentication
api GET /v2/
check "anonymous GET /v2/ is 401" is 401:UNAUTHORIZED
check "with a Bearer challenge naming the token realm" \
        grep -qi "^WWW-Authenticate: Bearer realm=\"http://$HOSTPORT/v2/token\",service=\"plura\"" "$HTTP_HEADERS"
api GET /v2/ -u alice:alicepw
check "alice with Basic: 200" [ "$HTTP_STATUS" = 200 ]
api GET /v2/ -u alice:wrong
check "a wrong password: 401" is 401:UNAUTHORIZED
check "saying so" say "wrong user name or password"
api GET /v2/ -H 'Authorization: Digest x'
check "another scheme: 401" is 401:UNAUTHORIZED

# ---- push and pull with skopeo through the token flow
L="$TEST_TMP/layout"
make_layout --out "$L" --seed 5 --refs base,app >/dev/null
check "alice pushes apps/search:1.0.0 with skopeo --dest-creds" \
        skopeo_push --dest-creds alice:alicepw "oci:$L:base" "docker://$HOSTPORT/apps/search:1.0.0"
check "and pulls it with --src-creds" skopeo_pull --src-creds alice:alicepw "docker://$HOSTPORT/apps/search:1.0.0" "oci:$TEST_TMP/out1:x"
check "admin pushes secret/vault:1.0.0" skopeo_push --dest-creds admin:adminpw "oci:$L:app" "docker://$HOSTPORT/secret/vault:1.0.0"
check "admin pushes public/tools:1.0.0" skopeo_push --dest-creds admin:adminpw "oci:$L:app" "docker://$HOSTPORT/public/tools:1.0.0"
check "anonymous pulls public/tools (anonymous rule)" skopeo_pull "docker://$HOSTPORT/public/tools:1.0.0" "oci:$TEST_TMP/out2:x"
set +e
OUT=$(skopeo_push "oci:$L:base" "docker://$HOSTPORT/apps/search:anon" 2>&1)
RC=$?
set -e
check "anonymous push is refused" [ "$RC" -ne 0 ]
check "as unauthorized" grep -qi "unauthorized\|authentication required" <<<"$OUT"
set +e
OUT=$(skopeo_push --dest-creds sam:sampw "oci:$L:base" "docker://$HOSTPORT/apps/search:sam" 2>&1)
RC=$?
set -e
check "sam (security: pull only) cannot push" [ "$RC" -ne 0 ]

# ---- the token service directly
api GET "/v2/token?service=plura&scope=repository:apps/search:pull,push,delete&scope=repository:secret/vault:pull&offline_token=true" -u alice:alicepw
check "/v2/token: 200" [ "$HTTP_STATUS" = 200 ]
TOKEN=$(jq -r .token <<<"$BODY")
REFRESH=$(jq -r .refresh_token <<<"$BODY")
check "token, access_token, expires_in, issued_at, refresh_token" \
        jq -e '.token and .access_token == .token and .expires_in == 300 and .issued_at and .refresh_token' <<<"$BODY"
PAYLOAD=$(python3 -c "import base64,sys; p=sys.argv[1].split('.')[1]; print(base64.urlsafe_b64decode(p+'='*(-len(p)%4)).decode())" "$TOKEN")
check "granted is the intersection: pull,push on apps/search (no delete), secret/vault pull (release may pull **)" \
        jq -e '.access == [{"type":"repository","name":"apps/search","actions":["pull","push"]},{"type":"repository","name":"secret/vault","actions":["pull"]}]' <<<"$PAYLOAD"
check "signed with the configured key (kid)" [ "$(python3 -c "import base64,json,sys; h=sys.argv[1].split('.')[0]; print(json.loads(base64.urlsafe_b64decode(h+'='*(-len(h)%4)))['kid'])" "$TOKEN")" = "$KID" ]
api GET /v2/apps/search/tags/list -H "Authorization: Bearer $TOKEN"
check "the bearer token pulls" [ "$HTTP_STATUS" = 200 ]
api DELETE "/v2/apps/search/manifests/sha256:$(printf x | sha256sum | cut -d' ' -f1)" -H "Authorization: Bearer $TOKEN"
check "delete was not granted: 403 DENIED naming delete" is 403:DENIED
check "naming the action" say '"delete"'
api GET /v2/apps/other/tags/list -H "Authorization: Bearer $TOKEN"
check "a repository not asked for: 401 insufficient_scope (ask /v2/token again)" is 401:UNAUTHORIZED
check "the challenge carries the scope" grep -qi 'scope="repository:apps/other:pull",error="insufficient_scope"' "$HTTP_HEADERS"
api POST /v2/token -H 'Content-Type: application/x-www-form-urlencoded' \
        --data "grant_type=refresh_token&refresh_token=$REFRESH&service=plura&scope=repository:apps/search:pull"
check "POST /v2/token with the refresh token: a new access token" [ "$HTTP_STATUS" = 200 ] && jq -e .access_token <<<"$BODY" >/dev/null
api POST /v2/token --data "grant_type=password&username=alice&password=alicepw&scope=repository:apps/search:pull"
check "POST /v2/token with the password grant" [ "$HTTP_STATUS" = 200 ]
api POST /v2/token --data "grant_type=refresh_token&refresh_token=$TOKEN"
check "an access token is no refresh token: 401" is 401:UNAUTHORIZED
check "the refresh and password grants are logged as their user, not as anonymous" \
        [ "$(grep -c 'access: POST /v2/token 200 .* actor=alice from 127.0.0.1' "$TEST_TMP/server.log")" = 2 ]
check "refused credentials are logged as unauthenticated, with the address" \
        grep -q 'access: GET /v2/ 401 .* actor=unauthenticated from 127.0.0.1' "$TEST_TMP/server.log"
check "the access log says how credentials came: the bearer token's pull as (bearer)" \
        grep -q 'access: GET /v2/apps/search/.* 200 .* actor=alice from 127.0.0.1 (bearer)$' "$TEST_TMP/server.log"
check "... the GET /v2/token with Basic credentials as (basic)" \
        grep -q 'access: GET /v2/token 200 .* actor=alice from 127.0.0.1 (basic)$' "$TEST_TMP/server.log"
NOW=$(date +%s)
EXPIRED=$(python3 "$PLURA_SOURCE_ROOT/tests/integration/registry-api/make-jwt.py" "$TEST_TMP/token-key.pem" "$KID" \
        "{\"iss\":\"plura\",\"sub\":\"alice\",\"aud\":\"plura\",\"exp\":$((NOW - 10)),\"nbf\":$((NOW - 400)),\"iat\":$((NOW - 400)),\"plura\":{\"typ\":\"access\",\"kind\":\"user\"},\"access\":[{\"type\":\"repository\",\"name\":\"apps/search\",\"actions\":[\"pull\"]}]}")
api GET /v2/apps/search/tags/list -H "Authorization: Bearer $EXPIRED"
check "an expired token (signed with our key): 401 expired" is 401:UNAUTHORIZED && say expired
FORGED=$(python3 "$PLURA_SOURCE_ROOT/tests/integration/registry-api/make-jwt.py" "$TEST_TMP/other-key.pem" "$KID" \
        "{\"iss\":\"plura\",\"sub\":\"admin\",\"aud\":\"plura\",\"exp\":$((NOW + 300)),\"nbf\":$NOW,\"iat\":$NOW,\"plura\":{\"typ\":\"access\",\"kind\":\"user\"},\"access\":[{\"type\":\"repository\",\"name\":\"secret/vault\",\"actions\":[\"pull\",\"push\",\"delete\"]}]}")
api GET /v2/secret/vault/tags/list -H "Authorization: Bearer $FORGED"
check "a token signed by another key: 401" is 401:UNAUTHORIZED

# ---- API tokens
api POST /v1/registry/tokens -u admin:adminpw -H 'Content-Type: application/json' \
        -d '{"name":"ci-search","scopes":["apps/search:pull,push"],"expires":"90d"}'
check "admin creates an API token: 201" [ "$HTTP_STATUS" = 201 ]
CI=$(jq -r .secret <<<"$BODY")
CI_ID=$(jq -r .id <<<"$BODY")
api GET /v1/registry/tokens -u admin:adminpw
check "the list shows it without its secret" jq -e --arg id "$CI_ID" '.tokens[] | select(.id == $id) | (.secret == null and .name == "ci-search")' <<<"$BODY"
check "only its hash is stored (the secret is in no index file)" bash -c "! grep -rqF '${CI#plura_*_}' '$DATA/index'"
check "CI pushes with the token as password (skopeo)" \
        skopeo_push --dest-creds "ci-search:$CI" "oci:$L:app" "docker://$HOSTPORT/apps/search:1.1.0"
api GET /v2/apps/search/tags/list -H "Authorization: Bearer $CI"
check "the token as a bearer" [ "$HTTP_STATUS" = 200 ]
api POST /v1/registry/tokens -u admin:adminpw -d '{"name":"ci-narrow","scopes":["apps/search:pull"]}'
NARROW=$(jq -r .secret <<<"$BODY")
api POST /v2/apps/search/blobs/uploads/ -u "ci-narrow:$NARROW"
check "a token scoped to pull cannot push, though the ACL would allow: 403" is 403:DENIED
api POST /v1/registry/tokens -u alice:alicepw -d '{"name":"mine","scopes":["apps/**:pull"]}'
check "only admin creates tokens: 403 naming admin" is 403:DENIED && say admin
api DELETE "/v1/registry/tokens/ci-search" -u admin:adminpw
check "revoke: 200, one token" [ "$HTTP_STATUS" = 200 ] && jq -e '.revoked == 1' <<<"$BODY" >/dev/null
api GET /v2/apps/search/tags/list -H "Authorization: Bearer $CI"
check "revoked: refused at once (bearer)" is 401:UNAUTHORIZED
api GET /v2/apps/search/tags/list -u "ci-search:$CI"
check "and as password" is 401:UNAUTHORIZED && say revoked

# ---- governance rights
D=$(skopeo_q inspect --creds alice:alicepw "docker://$HOSTPORT/apps/search:1.1.0" | jq -r .Digest) # the dev candidate (auto_dev_candidate)
promote() { api POST /v1/registry/promote -u "$1" -H 'X-Plura-Actor: security-team' -d "{\"repo\":\"apps/search\",\"from\":\"$2\",\"to\":\"$3\",\"digest\":\"$D\"}"; }
promote alice:alicepw dev stg
check "alice (release) promotes to stg" [ "$HTTP_STATUS" = 200 ]
promote alice:alicepw stg prod:candidate
check "and to prod:candidate" [ "$HTTP_STATUS" = 200 ]
promote alice:alicepw prod:candidate prod:stable
check "but not to prod:stable: 403 naming promote:prod:stable" is 403:DENIED && say "promote:prod:stable"
promote rel:relpw prod:candidate prod:stable
check "rel (release manager) moves prod:stable" [ "$HTTP_STATUS" = 200 ]
api GET "/v1/registry/audit?action=promote&limit=100" -u sam:sampw
check "the audit log names rel and the address, not the X-Plura-Actor header" \
        jq -e '[.events[].actor] | any(startswith("rel from 127.0.0.1")) and (any(. == "security-team") | not)' <<<"$BODY"
api GET "/v1/registry/audit?action=blob.push&limit=100" -u sam:sampw
check "blob pushes name their pusher" jq -e '[.events[].actor] | any(startswith("alice from 127.0.0.1")) and (any(. == "anonymous") | not)' <<<"$BODY"
api POST /v1/registry/rollback -u alice:alicepw -d '{"repo":"apps/search","to":"prod:stable"}'
check "alice may roll back prod (not a 401/403)" [ "$HTTP_STATUS" != 401 ] && [ "$HTTP_STATUS" != 403 ]
api POST /v1/registry/block -u alice:alicepw -d "{\"digest\":\"$D\",\"reason\":\"x\"}"
check "alice may not block: 403" is 403:DENIED && say block
api POST /v1/registry/gc -u sam:sampw -d '{"dry_run":true}'
check "sam may not run GC: 403" is 403:DENIED
api POST /v1/registry/gc -u admin:adminpw -d '{"dry_run":true}'
check "admin may" [ "$HTTP_STATUS" = 200 ]

# ---- cross-repository mount from a repository the caller cannot read; catalog filtering
VAULT_CFG=$(skopeo_q inspect --creds admin:adminpw --raw "docker://$HOSTPORT/secret/vault:1.0.0" | jq -r .config.digest)
api POST "/v2/apps/search/blobs/uploads/?mount=$VAULT_CFG&from=secret/vault" -u nobody:nobodypw
check "nobody has no push on apps/search: 403" is 403:DENIED
api POST "/v1/registry/tokens" -u admin:adminpw -d '{"name":"ci-apps","scopes":["apps/**:pull,push"]}'
api POST "/v2/apps/search/blobs/uploads/?mount=$VAULT_CFG&from=secret/vault" -u "alice:alicepw"
check "alice may read secret/vault (release pulls **): the mount links it (201)" [ "$HTTP_STATUS" = 201 ]
api POST "/v1/registry/tokens" -u admin:adminpw -d '{"name":"ci-search","scopes":["apps/**:pull,push"]}'
CI2=$(jq -r .secret <<<"$BODY")
api POST "/v2/apps/mirror/blobs/uploads/?mount=$VAULT_CFG&from=secret/vault" -u "ci-search:$CI2"
check "ci-search cannot read secret/vault: no mount, a new upload session instead (202)" [ "$HTTP_STATUS" = 202 ]
api HEAD "/v2/apps/mirror/blobs/$VAULT_CFG" -I -u "ci-search:$CI2"
check "and the blob is not linked in apps/mirror" [ "$HTTP_STATUS" = 404 ]
api GET /v2/_catalog -u "ci-search:$CI2"
check "_catalog for ci-search lists apps/ only" jq -e '(.repositories | length > 0) and all(.repositories[]; startswith("apps/"))' <<<"$BODY"
api GET /v2/_catalog -u alice:alicepw
check "_catalog for alice (pull **) lists secret/vault too" jq -e '.repositories | index("secret/vault")' <<<"$BODY"
api GET "/v2/_catalog?n=1" -u "ci-search:$CI2"
check "paging counts only visible ones" jq -e '.repositories | length == 1' <<<"$BODY"

# ---- the matrix: every route the server lists, refused without rights, not refused for admin
api GET /v1/registry/routes -u admin:adminpw
ROUTES="$BODY"
check "every /v1 route declares an action" jq -e '.v1 | length > 10 and all(.[]; .action != "")' <<<"$ROUTES"
KNOWN_V1="GET:audit GET:block POST:block DELETE:block GET:channels POST:gc GET:gc GET:history GET:holds POST:holds DELETE:holds
GET:metrics POST:promote POST:rollback GET:routes GET:tokens POST:tokens DELETE:tokens GET:worm/bundles POST:worm/export POST:worm/verify"
UNKNOWN=$(jq -r '.v1[] | "\(.method):\(.path | ltrimstr("/v1/registry/"))"' <<<"$ROUTES" | while read -r r; do
        grep -qw -- "$r" <<<"$KNOWN_V1" || echo "$r"; done)
check "the matrix below knows every /v1 route (new: '${UNKNOWN}')" [ -z "$UNKNOWN" ]
for r in $KNOWN_V1; do
        m=${r%%:*} p=${r#*:}
        api "$m" "/v1/registry/$p" -d '{}'
        [ "$HTTP_STATUS" = 401 ] || echo "# anonymous $m $p: $HTTP_STATUS" >&2
        a=$HTTP_STATUS
        api "$m" "/v1/registry/$p" -u nobody:nobodypw -d '{}'
        [ "$HTTP_STATUS" = 403 ] || echo "# nobody $m $p: $HTTP_STATUS" >&2
        b=$HTTP_STATUS
        api "$m" "/v1/registry/$p" -u admin:adminpw -d '{}'
        c=$HTTP_STATUS
        check "/v1 $m $p: anonymous 401, nobody 403, admin neither ($a $b $c)" \
                [ "$a" = 401 ] && [ "$b" = 403 ] && [ "$c" != 401 ] && [ "$c" != 403 ]
done
V2="GET:/v2/apps/search/manifests/1.0.0 HEAD:/v2/apps/search/manifests/1.0.0 PUT:/v2/apps/search/manifests/x
DELETE:/v2/apps/search/manifests/x GET:/v2/apps/search/blobs/$VAULT_CFG DELETE:/v2/apps/search/blobs/$VAULT_CFG
POST:/v2/apps/search/blobs/uploads/ PATCH:/v2/apps/search/blobs/uploads/00000000-0000-4000-8000-000000000000
GET:/v2/apps/search/tags/list GET:/v2/apps/search/referrers/$VAULT_CFG"
check "the /v2 table has every route with an action" \
        [ "$(jq '[.v2[] | select(.action != null)] | length' <<<"$ROUTES")" = 9 ]
for r in $V2; do
        m=${r%%:*} p=${r#*:}
        extra=(); [ "$m" = HEAD ] && extra=(-I)
        api "$m" "$p" "${extra[@]}"
        a=$HTTP_STATUS
        api "$m" "$p" "${extra[@]}" -u nobody:nobodypw
        b=$HTTP_STATUS
        api "$m" "$p" "${extra[@]}" -u admin:adminpw
        c=$HTTP_STATUS
        check "/v2 $m ${p:0:48}: anonymous 401, nobody 403, admin neither ($a $b $c)" \
                [ "$a" = 401 ] && [ "$b" = 403 ] && [ "$c" != 401 ] && [ "$c" != 403 ]
done
for p in /healthz /readyz /metrics; do
        api GET "$p"
        check "$p stays open (from loopback)" [ "$HTTP_STATUS" = 200 ]
done

# ---- plura reg: credentials from --user, $PLURA_TOKEN, $PLURA_USER/$PLURA_PASSWORD, podman's auth.json
REG() { "$PLURA" reg "$@" --url "$URL"; }
set +e
OUT=$(REG gc --dry-run 2>&1)
RC=$?
set -e
check "plura reg without credentials: refused, with a hint how to sign in" [ "$RC" -ne 0 ] && grep -q -- "--user" <<<"$OUT"
check "plura reg --user admin:adminpw gc --dry-run" REG gc --dry-run --user admin:adminpw
check "--user admin with \$PLURA_PASSWORD" env PLURA_PASSWORD=adminpw "$PLURA" reg gc --dry-run --user admin --url "$URL"
check "\$PLURA_USER + \$PLURA_PASSWORD" env PLURA_USER=admin PLURA_PASSWORD=adminpw "$PLURA" reg gc --dry-run --url "$URL"
OUT=$(REG token create --name robot --scope '**:pull' --expires 30d --user admin:adminpw)
check "plura reg token create prints the secret once" grep -q "^plura_[0-9a-f]*_" <<<"$OUT" && grep -q "shown once" <<<"$OUT"
ROBOT=$(grep "^plura_" <<<"$OUT")
check "plura reg token list shows it" bash -c "'$PLURA' reg token list --url '$URL' --user admin:adminpw | grep -q ' robot '"
mkdir -p "$XDG_RUNTIME_DIR/containers"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$HOSTPORT" "$(printf 'sam:sampw' | base64)" >"$XDG_RUNTIME_DIR/containers/auth.json"
check "the podman credential file (what podman login writes) is used" REG audit --limit 1
rm -f "$XDG_RUNTIME_DIR/containers/auth.json"
set +e
OUT=$(PLURA_TOKEN="$ROBOT" "$PLURA" reg gc --dry-run --url "$URL" 2>&1)
RC=$?
set -e
check "\$PLURA_TOKEN: the robot token (pull only, and robot has no rule) may not run GC" [ "$RC" -ne 0 ] && grep -q DENIED <<<"$OUT"
check "plura reg token revoke robot" REG token revoke robot --user admin:adminpw

# ---- brute force from one address; the right user from another still logs in
OUT=$(python3 - "$HOST" "$PORT" <<'EOF'
import base64, http.client, json, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
def get(src, user, pw):
    c = http.client.HTTPConnection(host, port, timeout=10, source_address=(src, 0))
    c.request("GET", "/v2/", headers={"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()})
    r = c.getresponse(); r.read(); c.close()
    return r.status, r.getheader("Retry-After")
codes = {}
retry = None
for i in range(200):
    s, ra = get("127.0.0.2", "alice", f"guess{i}")
    codes[str(s)] = codes.get(str(s), 0) + 1
    retry = ra or retry
right, _ = get("127.0.0.3", "alice", "alicepw")
print(json.dumps({"codes": codes, "retry_after": retry, "right_user_elsewhere": right}))
EOF
)
note "brute force: $OUT"
check "200 wrong passwords from one address: 10 tried (401), 190 rate-limited (429)" \
        jq -e '.codes["401"] == 10 and .codes["429"] == 190 and (.retry_after | tonumber > 0)' <<<"$OUT" >/dev/null
check "the right user from another address logs in" jq -e '.right_user_elsewhere == 200' <<<"$OUT" >/dev/null
check "failed logins are logged" grep -q "auth: failed login of alice from 127.0.0.2" "$TEST_TMP/server.log"

# ---- htpasswd reload: SIGHUP, then on change
api GET /v2/ -u carol:carolpw
check "carol is not a user yet" [ "$HTTP_STATUS" = 401 ]
htpasswd -B -C 4 -b "$HT" carol carolpw 2>/dev/null
kill -HUP "$SERVER_PID"
ok=false
for _ in $(seq 50); do
        api GET /v2/ -u carol:carolpw
        [ "$HTTP_STATUS" = 200 ] && { ok=true; break; }
        sleep 0.1
done
check "after SIGHUP carol logs in" $ok
htpasswd -D "$HT" carol 2>/dev/null
ok=false
for _ in $(seq 60); do # the server looks at the file at most every 2 s
        api GET /v2/ -u carol:carolpw
        [ "$HTTP_STATUS" = 401 ] && { ok=true; break; }
        sleep 0.1
done
check "removed from the file, carol is refused without a signal (cached logins went too)" $ok
check "the server never dropped (alive)" kill -0 "$SERVER_PID"
stop_server

# ---- refused at start
printf 'alice:$apr1$abc$def\n' >>"$HT"
set +e
"$PLURA" serve -c "$CFG" --listen 127.0.0.1:0 --data "$TEST_TMP/d2" >"$TEST_TMP/bad.log" 2>&1
RC=$?
set -e
check "an MD5 htpasswd entry refuses the start with its line number (rc=$RC)" \
        [ "$RC" -ne 0 ] && grep -q "line [0-9]*.*MD5" "$TEST_TMP/bad.log"
set +e
timeout 20 "$PLURA" serve --listen 0.0.0.0:0 --data "$TEST_TMP/d3" >"$TEST_TMP/open.log" 2>&1
RC=$?
set -e
check "no auth on a non-loopback address: refused (rc=$RC)" [ "$RC" -ne 0 ] && [ "$RC" -ne 124 ] && grep -q "without authentication" "$TEST_TMP/open.log"
echo '{ "auth": { "allow_anonymous_remote": true } }' >"$TEST_TMP/open.json"
start_server "$TEST_TMP/d4" "$TEST_TMP/open.json" --listen 0.0.0.0:0
check "unless auth.allow_anonymous_remote is set (and it says so)" grep -q "without authentication (auth.allow_anonymous_remote)" "$TEST_TMP/server.log"
done_testing
