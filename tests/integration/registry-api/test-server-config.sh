#!/usr/bin/env bash
# The configuration is validated whole at start (common/config-schema.c): plura serve with an
# unknown key, a wrong type or a bad value anywhere exits non-zero before it creates its data
# directory or listens, and says which JSON path is wrong; so do gc, fsck and mount. A
# configuration that uses every section, the new limits included, starts and serves.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"

# refused NAME JSON TEXT: plura serve -c NAME.json fails fast, prints TEXT, does not listen
refused() {
        local name=$1 json=$2 want=$3 rc
        printf '%s\n' "$json" >"$TEST_TMP/$name.json"
        set +e
        timeout 30 "$PLURA" serve -c "$TEST_TMP/$name.json" --listen 127.0.0.1:0 --data "$TEST_TMP/data-$name" \
                --ready-file "$TEST_TMP/$name.ready" >"$TEST_TMP/$name.out" 2>&1
        rc=$?
        set -e
        check "$name: serve exits non-zero (status $rc, not killed by the timeout)" [ "$rc" -ne 0 -a "$rc" -ne 124 ]
        check "$name: the message names the path: $want" grep -qF -- "$want" "$TEST_TMP/$name.out"
        check "$name: never listened" bash -c "[ ! -e '$TEST_TMP/$name.ready' ] && ! grep -q 'listening on' '$TEST_TMP/$name.out'"
        check "$name: no data directory created" [ ! -e "$TEST_TMP/data-$name" ]
}

refused gate-typo '{ "channels": { "gates": { "prod:stable": { "signatur": true } } } }' \
        'invalid configuration: channels.gates.prod:stable.signatur: unknown gate (known: not_blocked, signature, sbom, labels, soak)'
refused http-tls '{ "http": { "tls": { "cert": "/etc/plura/cert.pem", "key": "/etc/plura/key.pem" } } }' \
        'http.tls: unknown key (known: threads, max_connections, max_connections_per_client, timeout, header_timeout, max_json_body_bytes)'
refused gc-typo '{ "gc": { "retention": [ { "repos": "**", "keep_lats": 3 } ] } }' \
        'gc.retention[0].keep_lats: unknown key'
refused gc-value '{ "gc": { "retention": [ { "repos": "**", "keep_last": "ten" } ] } }' \
        'gc.retention[0].keep_last: expected a non-negative integer'
refused window '{ "gc": { "retention": [ { "repos": "**", "windows": { "prod:stabel": "180d" } } ] } }' \
        'gc.retention[0].windows.prod:stabel: unknown channel'
refused header-timeout '{ "http": { "header_timeout": "0s" } }' 'http.header_timeout: expected a duration of 1s..1h'
refused sessions '{ "storage": { "max_upload_sessions_per_client": 0 } }' \
        'storage.max_upload_sessions_per_client: expected an integer 1..4294967295'
refused key-file '{ "channels": { "public_keys": ["/nonexistent/cosign.pub"] } }' \
        'channels.public_keys[0]: cannot read /nonexistent/cosign.pub'
refused policy-regex '{ "policy": [ { "repos": "**", "immutable": ["^v(1"] } ] }' \
        'policy[0].immutable[0]: invalid regular expression'

# the other commands that read a configuration refuse it the same way
set +e
"$PLURA" gc -c "$TEST_TMP/gate-typo.json" --data "$TEST_TMP/data-gc" >"$TEST_TMP/gc.out" 2>&1; rc_gc=$?
"$PLURA" fsck -c "$TEST_TMP/http-tls.json" --data "$TEST_TMP/data-fsck" >"$TEST_TMP/fsck.out" 2>&1; rc_fsck=$?
mkdir -p "$TEST_TMP/mnt"
timeout 30 "$PLURA" mount -c "$TEST_TMP/gc-typo.json" --data "$TEST_TMP/data-mount" "$TEST_TMP/mnt" >"$TEST_TMP/mount.out" 2>&1; rc_mount=$?
set -e
check "plura gc refuses it ($rc_gc) naming the path" bash -c "[ $rc_gc -ne 0 ] && grep -qF 'channels.gates.prod:stable.signatur' '$TEST_TMP/gc.out'"
check "plura fsck refuses it ($rc_fsck) naming the path" bash -c "[ $rc_fsck -ne 0 ] && grep -qF 'http.tls: unknown key' '$TEST_TMP/fsck.out'"
check "plura mount refuses it ($rc_mount) naming the path" bash -c "[ $rc_mount -ne 0 -a $rc_mount -ne 124 ] && grep -qF 'gc.retention[0].keep_lats' '$TEST_TMP/mount.out'"

# a configuration using every section and the new limits starts
openssl ecparam -name prime256v1 -genkey -noout -out "$TEST_TMP/cosign.key" 2>/dev/null
openssl ec -in "$TEST_TMP/cosign.key" -pubout -out "$TEST_TMP/cosign.pub" 2>/dev/null
cat >"$TEST_TMP/good.json" <<EOF
{ "log_level": "info",
  "http": { "max_connections": 256, "max_connections_per_client": 32, "header_timeout": "5s" },
  "storage": { "max_upload_sessions": 100, "max_upload_sessions_per_client": 10 },
  "channels": { "envs": ["dev", "qa", "prod"], "public_keys": ["$TEST_TMP/cosign.pub"],
                "gates": { "qa": { "sbom": true }, "prod:stable": { "signature": true, "labels": ["org.opencontainers.image.source"], "soak": "1h" } } },
  "policy": [ { "repos": "**", "immutable": ["^v[0-9]+\\\\.[0-9]+\\\\.[0-9]+$"], "comment": "releases" } ],
  "gc": { "schedule": "weekly", "retention": [ { "repos": "apps/**", "keep_last": 5, "windows": { "prod:stable": "90d", "qa": "7d" } } ] },
  "worm": { "path": "$TEST_TMP/worm", "immutable": false },
  "fuse": { "catch_up_interval": "2s" } }
EOF
start_server "$TEST_TMP/data" "$TEST_TMP/good.json"
http GET /v2/ >/dev/null
check "a valid configuration of every section starts and serves /v2/" [ "$HTTP_STATUS" = 200 ]
stop_server

done_testing
