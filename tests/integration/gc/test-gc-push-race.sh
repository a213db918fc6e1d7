#!/bin/bash
# Pushes during GC: many concurrent curl and skopeo pushes of images that share layers while
# `plura reg gc` runs in a loop with grace 0. A push that races a sweep gets
# MANIFEST_BLOB_UNKNOWN and re-uploads (as clients do); it never ends with a stored manifest
# whose blob is gone. Afterwards every tagged image pulls and verifies.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"
. "$PLURA_SOURCE_ROOT/tests/integration/gc/gc-lib.sh"

WORKERS=${GC_RACE_WORKERS:-6}
IMAGES=${GC_RACE_IMAGES:-12}

cat >"$TEST_TMP/config.json" <<'JSON'
{ "gc": { "grace": "0", "untagged_grace": "1h",
          "retention": [ { "repos": "**", "keep_last": 100000 } ] } }
JSON
DATA="$TEST_TMP/data"
start_server "$DATA" "$TEST_TMP/config.json"

# shared layers: every image carries one of three
for s in 1 2 3; do head -c 65536 /dev/urandom >"$TEST_TMP/shared$s"; done

# GC in a loop until the pushers are done
touch "$TEST_TMP/gc.running"
(
        n=0
        while [ -e "$TEST_TMP/gc.running" ]; do
                "$PLURA" reg gc --json --url "$URL" >"$TEST_TMP/gc.$((n % 50)).json" 2>>"$TEST_TMP/gc.err" || true
                n=$((n + 1))
                sleep 0.25
        done
        echo "$n" >"$TEST_TMP/gc.count"
) &
GC_LOOP=$!
TEST_PIDS+=("$GC_LOOP")

worker() {
        local w=$1 i dir d
        for i in $(seq "$IMAGES"); do
                dir="$TEST_TMP/w$w/i$i"
                make_image "$dir" "$w-$i" "$TEST_TMP/shared$(( (w + i) % 3 + 1 ))"
                d=$(push_image "race/w$w" "t$i" "$dir" "$TEST_TMP/shared$(( (w + i) % 3 + 1 ))") || { echo "FAILED w$w i$i" >>"$TEST_TMP/failures"; continue; }
                echo "race/w$w t$i $d" >>"$TEST_TMP/pushed.$w"
        done
}
declare -a WAIT=()
for w in $(seq "$WORKERS"); do worker "$w" & WAIT+=($!); done

# skopeo pushes (OCI layouts with real layers sharing base-fs) alongside, retried on failure
SKOPEO_OK=0
if command -v skopeo >/dev/null && [ -f "$PLURA_SOURCE_ROOT/tests/e2e/make-oci-layout.py" ]; then
        mkdir -p "$TEST_TMP/home" "$TEST_TMP/run"
        export HOME="$TEST_TMP/home" XDG_RUNTIME_DIR="$TEST_TMP/run"
        [ "$(id -u)" -eq 0 ] && export _CONTAINERS_USERNS_CONFIGURED=done _CONTAINERS_ROOTLESS_UID=1000
        for s in 1 2 3; do
                python3 "$PLURA_SOURCE_ROOT/tests/e2e/make-oci-layout.py" --out "$TEST_TMP/layout$s" --seed "$s" >/dev/null
        done
        (
                for s in 1 2 3; do
                        for ref in base app; do
                                ok=0
                                for try in $(seq 100); do
                                        if skopeo --insecure-policy copy -q --dest-tls-verify=false \
                                                "oci:$TEST_TMP/layout$s:$ref" "docker://$HOSTPORT/race/skopeo:$ref-$s" 2>>"$TEST_TMP/skopeo.err"; then
                                                ok=1; break
                                        fi
                                done
                                [ "$ok" = 1 ] || echo "FAILED skopeo $ref-$s" >>"$TEST_TMP/failures"
                        done
                done
        ) &
        WAIT+=($!)
        SKOPEO_OK=1
fi
for j in "${WAIT[@]}"; do wait "$j" || true; done
rm -f "$TEST_TMP/gc.running"
wait "$GC_LOOP" || true

note "GC runs during the pushes: $(cat "$TEST_TMP/gc.count"), manifest retries: $(cat "$TEST_TMP"/w*/i*/retries 2>/dev/null | wc -l)"
check "GC ran several times during the pushes" [ "$(cat "$TEST_TMP/gc.count")" -ge 3 ]
check "every push completed (retrying MANIFEST_BLOB_UNKNOWN)" [ ! -s "$TEST_TMP/failures" ]
note "manifest PUTs answered MANIFEST_BLOB_UNKNOWN (then retried): $(grep -c 'PUT /v2/.* 400 ' "$TEST_TMP/server.log" || true)"
check "some pushes did race a sweep (the test exercises the race)" grep -q 'PUT /v2/.* 400 ' "$TEST_TMP/server.log"

# one more GC with everything quiet, then every tagged image must verify
"$PLURA" reg gc --url "$URL" >/dev/null
bad=0
total=0
for f in "$TEST_TMP"/pushed.*; do
        while read -r repo tag d; do
                total=$((total + 1))
                verify_image "$repo" "$tag" "$d" || bad=$((bad + 1))
        done <"$f"
done
check "all $total curl-pushed images pull and verify" [ "$bad" = 0 ]
check "as many images as pushed" [ "$total" = $((WORKERS * IMAGES)) ]
if [ "$SKOPEO_OK" = 1 ]; then
        sk_bad=0
        for s in 1 2 3; do
                for ref in base app; do
                        rm -rf "$TEST_TMP/out"
                        skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$HOSTPORT/race/skopeo:$ref-$s" \
                                "oci:$TEST_TMP/out:x" 2>>"$TEST_TMP/skopeo.err" || { sk_bad=$((sk_bad + 1)); continue; }
                        want=$(skopeo --insecure-policy inspect --raw "oci:$TEST_TMP/layout$s:$ref" | sha256sum | cut -d' ' -f1)
                        got=$(skopeo --insecure-policy inspect --raw --tls-verify=false "docker://$HOSTPORT/race/skopeo:$ref-$s" | sha256sum | cut -d' ' -f1)
                        [ "$want" = "$got" ] || sk_bad=$((sk_bad + 1))
                done
        done
        check "skopeo images copy out (blobs verified by skopeo) with the pushed digests" [ "$sk_bad" = 0 ]
fi
stop_server
check "fsck is clean" "$PLURA" fsck --data "$DATA"
done_testing
