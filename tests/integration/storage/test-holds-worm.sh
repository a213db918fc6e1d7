#!/usr/bin/env bash
# RCA holds and WORM export against real servers: holds API and bad input, write-once bundles
# (modes, immutable attribute on an ext4 loop mount, sha256sum -c), verify catching altered,
# missing and extra files, a second export, kill -9 mid-export, restore with skopeo into a fresh
# server, GC honouring holds (grace 0) and exporting released holds before sweeping, missing /
# read-only / full targets.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"
. "$PLURA_SOURCE_ROOT/tests/e2e/e2e-lib.sh"

# Bundles carry the immutable attribute: lift it before lib.sh removes the test directory.
worm_cleanup() {
        local rc=$?
        set +e
        chattr -R -i "$TEST_TMP" 2>/dev/null || true
        for m in "${WORM_MOUNTS[@]:-}"; do [ -n "$m" ] && { chattr -R -i "$m" 2>/dev/null; umount -l "$m" 2>/dev/null; } || true; done
        (exit $rc)
        test_cleanup
}
declare -a WORM_MOUNTS=()
trap worm_cleanup EXIT

# ---- the WORM target: an ext4 loop mount if we can (immutable attribute), else a directory
WORM="$TEST_TMP/worm"
mkdir -p "$WORM"
IMMUTABLE_FS=0
if [ "$(id -u)" -eq 0 ] && truncate -s 64M "$TEST_TMP/worm.img" && mkfs.ext4 -q -F "$TEST_TMP/worm.img" 2>/dev/null &&
        mount -o loop "$TEST_TMP/worm.img" "$WORM" 2>/dev/null; then
        WORM_MOUNTS+=("$WORM")
        IMMUTABLE_FS=1
        note "WORM target: ext4 loop mount at $WORM"
else
        note "no loop device (or not root): WORM target is a plain directory; the immutable-attribute check is skipped"
fi

# req METHOD PATH [curl args]: like http, but in this shell: sets body and HTTP_STATUS
req() { http "$@" >"$TEST_TMP/resp"; body=$(cat "$TEST_TMP/resp"); }

cfg() { # cfg FILE WORM_PATH
        cat >"$1" <<EOF
{ "registry_id": "plura-test@holds-worm",
  "worm": { "path": "$2" },
  "gc": { "grace": "0s", "untagged_grace": "0s" } }
EOF
}
cfg "$TEST_TMP/a.json" "$WORM"
DATA="$TEST_TMP/data"
start_server "$DATA" "$TEST_TMP/a.json"
URL_A=$URL HOSTPORT_A=$HOSTPORT PID_A=$SERVER_PID

# skopeo push, retried: pushes are not what this test is about
retry() { local i; for i in 1 2 3; do "$@" && return 0; note "'$1' failed (attempt $i), retrying"; sleep 0.5; done; return 1; }
push() { retry skopeo_push "$@"; }

# ---- content: an image, a signature-like referrer of it, an index over it; an unrelated image
make_layout --out "$TEST_TMP/layout" --seed 7 >/dev/null
push "oci:$TEST_TMP/layout:base" "docker://$HOSTPORT/test/base:one"
push "oci:$TEST_TMP/layout:app" "docker://$HOSTPORT/test/app:one"

mdigest() { # repo ref -> digest
        curl -sfS -o /dev/null -D - -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' \
                "$URL/v2/$1/manifests/$2" | grep -i '^docker-content-digest:' | cut -d' ' -f2 | tr -d '\r'
}
push_blob() { # repo file -> digest
        local d loc
        d="sha256:$(sha256_of "$2")"
        loc=$(curl -sfS -o /dev/null -D - -X POST "$URL/v2/$1/blobs/uploads/" | grep -i '^location:' | cut -d' ' -f2 | tr -d '\r')
        case "$loc" in http*) ;; *) loc="$URL$loc" ;; esac
        case "$loc" in *\?*) loc="$loc&digest=$d" ;; *) loc="$loc?digest=$d" ;; esac
        curl -sfS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$2" "$loc"
        echo "$d"
}
put_manifest() { # repo ref file mediatype -> digest
        curl -sfS -o /dev/null -X PUT -H "Content-Type: $4" --data-binary "@$3" "$URL/v2/$1/manifests/$2"
        echo "sha256:$(sha256_of "$3")"
}
BASE=$(mdigest test/base one)
BASE_SIZE=$(curl -sfS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$URL/v2/test/base/manifests/one" | wc -c)
APP=$(mdigest test/app one)
[ -n "$BASE" ] && [ -n "$APP" ] || fail "pushing the images failed"

printf '{}' >"$TEST_TMP/empty.json"
printf '{"critical":{"image":{"docker-manifest-digest":"%s"}},"note":"signature payload"}' "$BASE" >"$TEST_TMP/sig.json"
EMPTY=$(push_blob test/base "$TEST_TMP/empty.json")
SIGBLOB=$(push_blob test/base "$TEST_TMP/sig.json")
cat >"$TEST_TMP/sig-manifest.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.dev.cosign.artifact.sig.v1+json",
 "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"$EMPTY","size":2},
 "layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"$SIGBLOB","size":$(stat -c %s "$TEST_TMP/sig.json")}],
 "subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"$BASE","size":$BASE_SIZE}}
EOF
SIG=$(put_manifest test/base "sha256:$(sha256_of "$TEST_TMP/sig-manifest.json")" "$TEST_TMP/sig-manifest.json" application/vnd.oci.image.manifest.v1+json)
cat >"$TEST_TMP/index.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
 "manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"$BASE","size":$BASE_SIZE,"platform":{"os":"linux","architecture":"amd64"}}]}
EOF
IDX=$(put_manifest test/base idx "$TEST_TMP/index.json" application/vnd.oci.image.index.v1+json)
check "index pushed" test "$(mdigest test/base idx)" = "$IDX"
check "referrer visible" bash -c "curl -sfS '$URL/v2/test/base/referrers/$BASE' | jq -e '.manifests[] | select(.digest==\"$SIG\")' >/dev/null"

# every digest of the index's closure, and the blob files behind them
BASE_BLOBS=$(curl -sfS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$URL/v2/test/base/manifests/$BASE" | jq -r '.config.digest, .layers[].digest')
APP_BLOBS=$(curl -sfS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$URL/v2/test/app/manifests/$APP" | jq -r '.config.digest, .layers[].digest')
CLOSURE_BLOBS="$BASE_BLOBS $EMPTY $SIGBLOB"
CLOSURE_MANIFESTS="$IDX $BASE $SIG"
blob_file() { echo "$DATA/blobs/sha256/$(cut -c8-9 <<<"$1")/${1#sha256:}"; }

# ---- bad input
req POST /v1/registry/holds -d '{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","case_id":"INC-1","reason":"x"}'
check "unknown digest -> 404 MANIFEST_UNKNOWN" bash -c "[ $HTTP_STATUS = 404 ] && jq -e '.errors[0].code==\"MANIFEST_UNKNOWN\"' <<<'$body' >/dev/null"
for bad in '../etc' 'a/b' '.hidden' '' 'x..\/y' "$(printf 'a%.0s' {1..129})"; do
        req POST /v1/registry/holds -d "{\"digest\":\"$IDX\",\"case_id\":\"$bad\",\"reason\":\"x\"}"
        check "bad case id '${bad:0:20}' -> 400 CASE_ID_INVALID" bash -c "[ $HTTP_STATUS = 400 ] && jq -e '.errors[0].code==\"CASE_ID_INVALID\"' <<<'$body' >/dev/null"
done
http POST /v1/registry/holds -d '{"digest":"sha256:xyz","case_id":"INC-1","reason":"x"}' >/dev/null
check "malformed digest -> 400" test "$HTTP_STATUS" = 400
http POST /v1/registry/holds -d "{\"digest\":\"$IDX\",\"case_id\":\"INC-1\"}" >/dev/null
check "missing reason -> 400" test "$HTTP_STATUS" = 400
http POST /v1/registry/holds -d "{\"digest\":\"$IDX\",\"case_id\":\"INC-1\",\"reason\":\"x\",\"until\":\"2001-01-01T00:00:00Z\"}" >/dev/null
check "until in the past -> 400" test "$HTTP_STATUS" = 400
http POST /v1/registry/holds -d "{\"digest\":\"$IDX\",\"case_id\":\"INC-1\",\"reason\":\"x\",\"until\":\"soon\"}" >/dev/null
check "until neither time nor duration -> 400" test "$HTTP_STATUS" = 400
http DELETE "/v1/registry/holds/INC-1/$IDX" >/dev/null
check "releasing an unknown hold -> 404" test "$HTTP_STATUS" = 404
http POST /v1/registry/worm/export -d '{"case_id":"NOPE-1"}' >/dev/null
check "export of a case without holds -> 404" test "$HTTP_STATUS" = 404
check "no hold was created by bad input" bash -c "[ \"\$(curl -sfS $URL/v1/registry/holds | jq '.holds | length')\" = 0 ]"

# ---- hold the index: closure = index + image + referrer, config + layers + referrer blobs
req POST /v1/registry/holds -H 'X-Plura-Actor: alice' -d "{\"digest\":\"$IDX\",\"case_id\":\"INC-1\",\"reason\":\"CVE triage\",\"until\":\"30d\"}"
check "hold created (201)" test "$HTTP_STATUS" = 201
check "hold covers 3 manifests" test "$(jq '.closure.manifests' <<<"$body")" = 3
check "hold covers every blob" test "$(jq '.closure.blobs' <<<"$body")" = "$(echo $CLOSURE_BLOBS | wc -w)"
check "hold is active, until set" bash -c "jq -e '.active and (.until|type==\"string\") and .actor==\"alice\"' <<<'$body' >/dev/null"
http POST /v1/registry/holds -d "{\"digest\":\"$IDX\",\"case_id\":\"INC-1\",\"reason\":\"CVE triage (renewed)\"}" >/dev/null
check "holding again renews (200)" test "$HTTP_STATUS" = 200
check "CLI hold list shows it" bash -c "'$PLURA' reg hold list --url '$URL' --case INC-1 | grep -q '$IDX'"
check "GET holds?case_id filters" bash -c "[ \"\$(curl -sfS '$URL/v1/registry/holds?case_id=OTHER' | jq '.holds|length')\" = 0 ]"
check "metric plura_holds_active = 1" bash -c "curl -sfS $URL/metrics | grep -qE '^plura_holds_active 1(\\.0+)?$'"

# ---- export
req POST /v1/registry/worm/export -d '{"case_id":"INC-1"}'
check "export (201)" test "$HTTP_STATUS" = 201
B1=$(jq -r '.bundles[0].bundle' <<<"$body")
check "bundle under <worm>/<case>/<time>-<digest short>" bash -c "[[ '$B1' == '$WORM/INC-1/'*'-${IDX:7:12}' ]]"
check "bundle verified by the server" test "$(jq -r '.bundles[0].verified' <<<"$body")" = true
for d in $CLOSURE_MANIFESTS $CLOSURE_BLOBS; do
        [ -f "$B1/blobs/sha256/${d#sha256:}" ] || fail "bundle lacks $d"
done
check "every manifest and blob of the closure is in the bundle" true
check "sha256sum -c SHA256SUMS passes" bash -c "cd '$B1' && sha256sum --quiet -c SHA256SUMS"
check "SHA256SUMS covers bundle.json" grep -q '  bundle.json$' "$B1/SHA256SUMS"
check "files are 0444" bash -c "[ -z \"\$(find '$B1' -type f ! -perm 0444)\" ]"
check "directories are 0555" bash -c "[ -z \"\$(find '$B1' -type d ! -perm 0555)\" ]"
check "no INCOMPLETE marker" test ! -e "$B1/INCOMPLETE"
check "bundle.json: identity, time, file list" bash -c "jq -e '.registry_id==\"plura-test@holds-worm\" and .case_id==\"INC-1\" and .digest==\"$IDX\" and (.exported_at|test(\"Z$\")) and (.files|length)>=10 and all(.files[]; .sha256 and .size>=0)' '$B1/bundle.json' >/dev/null"
check "tag-history.json has the tags that pointed at the closure" bash -c "jq -e 'map(.tag) | index(\"idx\") and index(\"one\")' '$B1/tag-history.json' >/dev/null"
check "audit.json has the hold" bash -c "jq -e 'map(.action) | index(\"hold.add\")' '$B1/audit.json' >/dev/null"
check "channel-history.json is a JSON array" bash -c "jq -e 'type==\"array\"' '$B1/channel-history.json' >/dev/null"
check "oci-layout" bash -c "jq -e '.imageLayoutVersion==\"1.0.0\"' '$B1/oci-layout' >/dev/null"
check "index.json: held manifest under ref 'held'" bash -c "jq -e '.manifests[] | select(.digest==\"$IDX\" and .annotations[\"org.opencontainers.image.ref.name\"]==\"held\")' '$B1/index.json' >/dev/null"
check "CLI verify (offline) passes" "$PLURA" reg worm verify "$B1"
check "CLI verify --json says ok" bash -c "'$PLURA' reg worm verify --json '$B1' | jq -e '.status==\"ok\" and .files_checked>=10' >/dev/null"
check "hold records the bundle" bash -c "curl -sfS '$URL/v1/registry/holds?case_id=INC-1' | jq -e '.holds[0].export_bundle==\"$B1\"' >/dev/null"
if [ "$IMMUTABLE_FS" = 1 ]; then
        check "files carry the immutable attribute" bash -c "lsattr '$B1/bundle.json' '$B1/blobs/sha256/${BASE#sha256:}' | awk '{print \$1}' | grep -qv i && exit 1 || exit 0"
        check "the bundle directory carries the immutable attribute" bash -c "lsattr -d '$B1' | cut -d' ' -f1 | grep -q i"
        check "even root cannot change a bundle file" bash -c "! (echo tamper >>'$B1/index.json') 2>/dev/null"
        check "even root cannot add a file" bash -c "! touch '$B1/extra' 2>/dev/null"
        check "export reported immutable" test "$(jq -r '.bundles[0].immutable' <<<"$body")" = true
else
        echo "ok - immutable attribute # SKIP no ext4 loop mount available"
fi
SUMS1=$(sha256_of "$B1/SHA256SUMS")
LIST1=$(cd "$B1" && find . -type f | sort | xargs sha256sum)

# second export: a new bundle, the first untouched
req POST /v1/registry/worm/export -d "{\"digest\":\"$IDX\"}"
B2=$(jq -r '.bundles[0].bundle' <<<"$body")
check "second export (by digest) writes a new bundle" bash -c "[ '$HTTP_STATUS' = 201 ] && [ -n '$B2' ] && [ '$B2' != '$B1' ] && [ -d '$B2' ]"
check "first bundle untouched" bash -c "[ \"\$(cd '$B1' && find . -type f | sort | xargs sha256sum)\" = '$LIST1' ]"
check "second bundle verifies" "$PLURA" reg worm verify "$B2"
check "worm list shows both bundles complete" bash -c "'$PLURA' reg worm list --url '$URL' --case INC-1 --json | jq -e '[.bundles[] | select(.complete)] | length == 2' >/dev/null"
check "metric plura_worm_bundles_exported_total = 2" bash -c "curl -sfS $URL/metrics | grep -qE '^plura_worm_bundles_exported_total 2(\\.0+)?$'"
check "metric plura_worm_bytes_exported_total > 0" bash -c "curl -sfS $URL/metrics | grep -qE '^plura_worm_bytes_exported_total [1-9]'"

# ---- the CLI: hold add / worm export / bad input exit status
check "CLI hold add with a bad case id fails" bash -c "! '$PLURA' reg hold add '$BASE' --url '$URL' --case '../x' --reason r 2>/dev/null"
check "CLI hold add" bash -c "'$PLURA' reg hold add '$BASE' --url '$URL' --case INC-CLI --reason 'from the CLI' --until 2099-01-01T00:00:00Z | grep -q 'added hold INC-CLI'"
out=$("$PLURA" reg worm export --url "$URL" --case INC-CLI --json) || out="{}"
check "CLI worm export writes a bundle that verifies" bash -c "'$PLURA' reg worm verify \"\$(jq -r '.bundles[0].bundle' <<<'$out')\" >/dev/null"
check "CLI worm export of an unknown case fails" bash -c "! '$PLURA' reg worm export --url '$URL' --case INC-NONE 2>/dev/null"

# ---- tampering: altered, deleted, added files (on copies; the originals are immutable)
tamper_copy() { rm -rf "$TEST_TMP/$1"; cp -r "$B1" "$TEST_TMP/$1"; chmod -R u+w "$TEST_TMP/$1"; echo "$TEST_TMP/$1"; }
C=$(tamper_copy alt)
check "an untampered copy verifies" "$PLURA" reg worm verify "$C"
printf 'X' | dd of="$C/blobs/sha256/${BASE#sha256:}" bs=1 seek=10 conv=notrunc status=none
rep=$("$PLURA" reg worm verify --json "$C") && rc=0 || rc=$?
check "altered file: verify fails" test "$rc" = 1
check "altered file: reported as altered" bash -c "jq -e '.status==\"failed\" and (.altered[].path | contains(\"${BASE#sha256:}\"))' <<<'$rep' >/dev/null"
check "altered file: sha256sum -c fails too" bash -c "! (cd '$C' && sha256sum --quiet -c SHA256SUMS 2>/dev/null)"
C=$(tamper_copy del)
rm "$C/blobs/sha256/${SIGBLOB#sha256:}"
rep=$("$PLURA" reg worm verify --json "$C") && rc=0 || rc=$?
check "deleted file: verify fails, reported missing" bash -c "[ $rc = 1 ] && jq -e '.missing | index(\"blobs/sha256/${SIGBLOB#sha256:}\")' <<<'$rep' >/dev/null"
C=$(tamper_copy add)
echo "planted" >"$C/blobs/sha256/planted"
rep=$("$PLURA" reg worm verify --json "$C") && rc=0 || rc=$?
check "added file: verify fails, reported extra" bash -c "[ $rc = 1 ] && jq -e '.extra | index(\"blobs/sha256/planted\")' <<<'$rep' >/dev/null"
C=$(tamper_copy listing)
jq '.files |= map(select(.path | contains("'"${SIGBLOB#sha256:}"'") | not))' "$B1/bundle.json" >"$C/bundle.json"
rep=$("$PLURA" reg worm verify --json "$C") && rc=0 || rc=$?
check "edited bundle.json: verify fails" bash -c "[ $rc = 1 ] && jq -e '.status==\"failed\"' <<<'$rep' >/dev/null"
check "verify of a non-bundle fails" bash -c "! '$PLURA' reg worm verify '$TEST_TMP/layout' >/dev/null"

# ---- restore from the bundle into a fresh server with skopeo
start_server "$TEST_TMP/data-restore"
URL_R=$URL HOSTPORT_R=$HOSTPORT
retry "${SKOPEO[@]}" copy -q --all --dest-tls-verify=false "oci:$B1:held" "docker://$HOSTPORT_R/restored/idx:r1"
check "restored index has the held digest" test "$(mdigest restored/idx r1)" = "$IDX"
check "restored image manifest has the same digest" bash -c "curl -sfS -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' '$URL_R/v2/restored/idx/manifests/$BASE'"
retry "${SKOPEO[@]}" copy -q --dest-tls-verify=false "oci:$B1:referrer-${SIG:7:12}" "docker://$HOSTPORT_R/restored/idx:sig"
check "restored referrer has the same digest" test "$(mdigest restored/idx sig)" = "$SIG"
check "restored referrer is a referrer again" bash -c "curl -sfS '$URL_R/v2/restored/idx/referrers/$BASE' | jq -e '.manifests[] | select(.digest==\"$SIG\")' >/dev/null"
stop_server "$SERVER_PID"
URL=$URL_A HOSTPORT=$HOSTPORT_A SERVER_PID=$PID_A

# ---- GC with grace 0: the held closure stays; unheld untagged content goes
gc_run() { req POST /v1/registry/gc -d '{"dry_run":false}'; report=$body; }
req POST /v1/registry/gc -d '{"dry_run":true}'
if [ "$HTTP_STATUS" = 404 ] || [ "$HTTP_STATUS" = 405 ] || [ "$HTTP_STATUS" = 000 ]; then
        echo "ok - GC honours holds # SKIP POST /v1/registry/gc is not available yet (HTTP $HTTP_STATUS)"
        GC=0
else
        GC=1
fi
if [ "$GC" = 1 ]; then
        http DELETE /v2/test/base/manifests/one >/dev/null
        check "a held digest's tag can be deleted" bash -c "[ '$HTTP_STATUS' = 202 ] || [ '$HTTP_STATUS' = 200 ]"
        http DELETE /v2/test/base/manifests/idx >/dev/null
        http DELETE /v2/test/app/manifests/one >/dev/null
        gc_run
        check "GC ran (200)" test "$HTTP_STATUS" = 200
        for d in $CLOSURE_BLOBS; do
                [ -f "$(blob_file "$d")" ] || { echo "# held blob $d was collected" >&2; HELD_GONE=1; }
        done
        check "GC with grace 0 left every blob of the held closure" test -z "${HELD_GONE:-}"
        check "held manifests still readable by digest" bash -c "for d in $CLOSURE_MANIFESTS; do curl -sfS -o /dev/null -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' '$URL/v2/test/base/manifests/'\$d || exit 1; done"
        APP_ONLY=$(comm -23 <(tr ' ' '\n' <<<"$APP_BLOBS" | sort) <(tr ' ' '\n' <<<"$BASE_BLOBS" | sort) | head -n1)
        check "GC did collect unheld untagged content (it really ran)" test ! -e "$(blob_file "$APP_ONLY")"
fi

# ---- a released hold without export: GC exports, then sweeps
push "oci:$TEST_TMP/layout:app" "docker://$HOSTPORT/test/app2:one"
APP2=$(mdigest test/app2 one)
http POST /v1/registry/holds -d "{\"digest\":\"$APP2\",\"case_id\":\"INC-2\",\"reason\":\"second\"}" >/dev/null
check "hold INC-2 created" test "$HTTP_STATUS" = 201
body=$("$PLURA" reg hold release --url "$URL" --json INC-2 "$APP2") || body="{}"
check "CLI release: released time set, record kept" bash -c "jq -e '.released != null and .active == false' <<<'$body' >/dev/null"
check "released hold still listed until GC forgets it" bash -c "curl -sfS '$URL/v1/registry/holds?case_id=INC-2' | jq -e '.holds|length==1' >/dev/null"
check "no INC-2 bundle yet" test ! -d "$WORM/INC-2"
if [ "$GC" = 1 ]; then
        http DELETE /v2/test/app2/manifests/one >/dev/null
        gc_run
        check "GC ran (200)" test "$HTTP_STATUS" = 200
        check "GC reports that it exported the released hold" bash -c "jq -e '[.. | objects | select(.digest? == \"$APP2\" and .action? == \"exported\")] | length >= 1' <<<'$report' >/dev/null"
        B3=$(ls -d "$WORM/INC-2"/* 2>/dev/null | head -n1)
        check "GC wrote a complete bundle that verifies" bash -c "[ -n '$B3' ] && '$PLURA' reg worm verify '$B3'"
        check "its audit.json has the hold and its release" bash -c "jq -e 'map(.action) | index(\"hold.add\") and index(\"hold.release\")' '$B3/audit.json' >/dev/null"
        check "the report names the bundle GC wrote" bash -c "jq -e '[.. | objects | select(.digest? == \"$APP2\" and .bundle? == \"$B3\" and .forgotten? == true)] | length == 1' <<<'$report' >/dev/null"
        check "GC forgot the released hold once its export verified" bash -c "curl -sfS '$URL/v1/registry/holds?case_id=INC-2' | jq -e '.holds|length==0' >/dev/null"
        gc_run
        check "then the content is swept" bash -c "! curl -sfS -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' '$URL/v2/test/app2/manifests/$APP2' && [ ! -e '$(blob_file "$APP_ONLY")' ]"
fi

# ---- a released hold whose recorded bundle no longer verifies: GC exports again, then forgets
if [ "$GC" = 1 ]; then
        http POST /v1/registry/holds -d "{\"digest\":\"$IDX\",\"case_id\":\"INC-4\",\"reason\":\"fourth\"}" >/dev/null
        req POST /v1/registry/worm/export -d '{"case_id":"INC-4"}'
        B4=$(jq -r '.bundles[0].bundle' <<<"$body")
        check "INC-4 exported and recorded" bash -c "[ -n '$B4' ] && curl -sfS '$URL/v1/registry/holds?case_id=INC-4' | jq -e '.holds[0].export_bundle==\"$B4\"' >/dev/null"
        chattr -R -i "$B4" 2>/dev/null || true; chmod -R u+w "$B4" 2>/dev/null || true
        f4=$(cd "$B4" && find . -type f -path '*blobs*' -print -quit)
        echo corrupt >>"$B4/$f4"
        check "the recorded INC-4 bundle no longer verifies" bash -c "! '$PLURA' reg worm verify '$B4' >/dev/null 2>&1"
        "$PLURA" reg hold release --url "$URL" --json INC-4 "$IDX" >/dev/null || true
        gc_run
        B4N=$(jq -r --arg d "$IDX" '[.. | objects | select(.case_id? == "INC-4" and .digest? == $d)][0].bundle // empty' <<<"$report")
        check "GC re-verified the recorded bundle and exported again" bash -c "jq -e '[.. | objects | select(.case_id? == \"INC-4\" and .action? == \"exported\")] | length == 1' <<<'$report' >/dev/null && [ -n '$B4N' ] && [ '$B4N' != '$B4' ] && '$PLURA' reg worm verify '$B4N'"
        check "and then forgot the released hold" bash -c "curl -sfS '$URL/v1/registry/holds?case_id=INC-4' | jq -e '.holds|length==0' >/dev/null"
fi

# ---- kill -9 mid-export: an incomplete-marked bundle; a retry writes a complete new one
stop_server "$SERVER_PID"
export PLURA_WORM_TEST_DELAY_MS=300
start_server "$DATA" "$TEST_TMP/a.json"
unset PLURA_WORM_TEST_DELAY_MS
http POST /v1/registry/holds -d "{\"digest\":\"$IDX\",\"case_id\":\"INC-3\",\"reason\":\"crash test\"}" >/dev/null
curl -s -o /dev/null -X POST "$URL/v1/registry/worm/export" -d '{"case_id":"INC-3"}' &
CURL_PID=$!
for _ in $(seq 100); do
        n=$( (find "$WORM/INC-3" -type f 2>/dev/null || true) | wc -l)
        [ "$n" -ge 4 ] && break
        sleep 0.1
done
kill9_server "$SERVER_PID"
wait "$CURL_PID" 2>/dev/null || true
BK=$(ls -d "$WORM/INC-3"/* 2>/dev/null | head -n1 || true)
check "killed export left a bundle marked INCOMPLETE" test -e "$BK/INCOMPLETE"
check "killed export left no SHA256SUMS (does not look complete)" test ! -e "$BK/SHA256SUMS"
rep=$("$PLURA" reg worm verify --json "$BK") && rc=0 || rc=$?
check "verify says incomplete, non-zero exit" bash -c "[ $rc = 1 ] && jq -e '.status==\"incomplete\"' <<<'$rep' >/dev/null"
LISTK=$(cd "$BK" && find . -type f | sort)
start_server "$DATA" "$TEST_TMP/a.json"
req POST /v1/registry/worm/export -d '{"case_id":"INC-3"}'
BR=$(jq -r '.bundles[0].bundle' <<<"$body")
check "retry after restart writes a complete new bundle" bash -c "[ '$HTTP_STATUS' = 201 ] && [ '$BR' != '$BK' ] && '$PLURA' reg worm verify '$BR'"
check "the incomplete bundle is left as it was" test "$(cd "$BK" && find . -type f | sort)" = "$LISTK"
check "worm list marks the killed bundle incomplete" bash -c "curl -sfS '$URL/v1/registry/worm/bundles?case_id=INC-3' | jq -e '[.bundles[] | select(.complete|not)] | length == 1' >/dev/null"
http POST /v1/registry/worm/verify -d "{\"bundle\":\"$BK\"}" >/dev/null
check "server-side verify of the incomplete bundle counts a failure" bash -c "curl -sfS $URL/metrics | grep -qE '^plura_worm_verify_failures_total [1-9]'"
stop_server "$SERVER_PID"

# ---- no immutable attribute (here: without CAP_LINUX_IMMUTABLE): a logged warning, mode-only read-only
if [ "$IMMUTABLE_FS" = 1 ] && command -v capsh >/dev/null; then
        printf '#!/bin/sh\nexec capsh --drop=cap_linux_immutable -- -c %s plura %s "$@"\n' "'exec \"\$@\"'" "'$PLURA'" >"$TEST_TMP/plura-nocap"
        chmod +x "$TEST_TMP/plura-nocap"
        REAL_PLURA=$PLURA
        PLURA="$TEST_TMP/plura-nocap"
        start_server "$DATA" "$TEST_TMP/a.json"
        PLURA=$REAL_PLURA
        req POST /v1/registry/worm/export -d '{"case_id":"INC-3"}'
        BN=$(jq -r '.bundles[0].bundle' <<<"$body")
        check "without the immutable attribute the export still succeeds" bash -c "[ '$HTTP_STATUS' = 201 ] && [ \"\$(jq -r '.bundles[0].immutable' <<<'$body')\" = false ]"
        check "... with a logged warning" grep -q "does not take the immutable attribute" "$TEST_TMP/server.log"
        check "... read-only by mode, and it verifies" bash -c "[ -z \"\$(find '$BN' -type f ! -perm 0444)\" ] && ! lsattr '$BN/bundle.json' | cut -d' ' -f1 | grep -q i && '$PLURA' reg worm verify '$BN' >/dev/null"
        stop_server "$SERVER_PID"
else
        echo "ok - immutable fallback # SKIP needs the ext4 loop mount and capsh"
fi

# ---- missing worm path
cat >"$TEST_TMP/noworm.json" <<EOF
{ "worm": { "path": "" } }
EOF
start_server "$DATA" "$TEST_TMP/noworm.json"
req POST /v1/registry/worm/export -d '{"case_id":"INC-1"}'
check "no worm.path -> clear error" bash -c "[ '$HTTP_STATUS' = 500 ] && jq -e '.errors[0].code==\"WORM_NOT_CONFIGURED\" and (.errors[0].message|test(\"worm\"))' <<<'$body' >/dev/null"
check "hold is kept" bash -c "curl -sfS '$URL/v1/registry/holds?case_id=INC-1' | jq -e '.holds|length==1 and .[0].active' >/dev/null"
stop_server "$SERVER_PID"

# ---- read-only and full targets (tmpfs mounts)
if [ "$(id -u)" -eq 0 ] && mkdir -p "$TEST_TMP/ro" "$TEST_TMP/full" && mount -t tmpfs -o ro,size=1m tmpfs "$TEST_TMP/ro" 2>/dev/null; then
        WORM_MOUNTS+=("$TEST_TMP/ro")
        cfg "$TEST_TMP/ro.json" "$TEST_TMP/ro"
        start_server "$DATA" "$TEST_TMP/ro.json"
        req POST /v1/registry/worm/export -d '{"case_id":"INC-1"}'
        check "read-only target -> clear error" bash -c "[ '$HTTP_STATUS' = 500 ] && jq -e '.errors[0].code==\"WORM_TARGET_READ_ONLY\" and (.errors[0].message|test(\"Read-only\"))' <<<'$body' >/dev/null"
        check "read-only target: hold and content kept" bash -c "curl -sfS '$URL/v1/registry/holds?case_id=INC-1' | jq -e '.holds[0].active' >/dev/null && curl -sfS -o /dev/null -H 'Accept: application/vnd.oci.image.index.v1+json' '$URL/v2/test/base/manifests/$IDX'"
        stop_server "$SERVER_PID"

        mount -t tmpfs -o size=64k tmpfs "$TEST_TMP/full"
        WORM_MOUNTS+=("$TEST_TMP/full")
        cfg "$TEST_TMP/full.json" "$TEST_TMP/full"
        start_server "$DATA" "$TEST_TMP/full.json"
        req POST /v1/registry/worm/export -d '{"case_id":"INC-1"}'
        check "full target -> 507 WORM_TARGET_FULL" bash -c "[ '$HTTP_STATUS' = 507 ] && jq -e '.errors[0].code==\"WORM_TARGET_FULL\" and (.errors[0].message|test(\"space\"))' <<<'$body' >/dev/null"
        BF=$(jq -r '.errors[0].detail.incomplete_bundle // empty' <<<"$body")
        check "full target: the partial bundle is marked incomplete" bash -c "[ -n '$BF' ] && [ -e '$BF/INCOMPLETE' ] && [ ! -e '$BF/SHA256SUMS' ]"
        check "full target: verify says incomplete" bash -c "! '$PLURA' reg worm verify '$BF' >/dev/null"
        check "full target: hold and content kept" bash -c "curl -sfS '$URL/v1/registry/holds?case_id=INC-1' | jq -e '.holds[0].active' >/dev/null && curl -sfS -o /dev/null -H 'Accept: application/vnd.oci.image.index.v1+json' '$URL/v2/test/base/manifests/$IDX'"
        stop_server "$SERVER_PID"
else
        echo "ok - read-only and full targets # SKIP cannot mount tmpfs (not root?)"
fi

done_testing
