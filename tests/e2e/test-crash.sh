#!/usr/bin/env bash
# Crash safety: kill -9 the server in the middle of a large chunked upload, of a
# single-request upload, of a skopeo push, of a stream of manifest PUTs and of concurrent
# small-blob pushes. After each crash: `plura fsck` (server stopped) is clean, the server
# restarts on the same data,
# nothing half-written is visible (every visible manifest and blob verifies, catalog and
# tags consistent, every acknowledged write present), and the interrupted push can be
# redone with skopeo and pulls back byte-identical.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"
. "$PLURA_SOURCE_ROOT/tests/e2e/e2e-lib.sh"

BIG_SIZE=${E2E_CRASH_BIG_SIZE:-24M}
L="$TEST_TMP/layout"
L2="$TEST_TMP/layout2"
make_layout --out "$L" --seed 4 --refs base,big --big-size "$BIG_SIZE" --big-files 2 --describe "$L.json"
make_layout --out "$L2" --seed 5 --refs big --big-size "$BIG_SIZE" --big-files 3 --describe "$L2.json"
DATA="$TEST_TMP/data"
RANDOM=$$  # vary kill points between runs; printed below so a failure can be replayed
note "kill points seeded with RANDOM=$$"

E2E="$PLURA_SOURCE_ROOT/tests/e2e"
RAW() { python3 "$E2E/rawhttp.py" "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
status_of() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
progress() { cat "$1" 2>/dev/null || echo 0; }
wait_progress() { # FILE BYTES PID: until client PID has sent BYTES body bytes (or ended; 120 s cap for a hang)
        for _ in $(seq 2400); do
                [ "$(progress "$1")" -ge "$2" ] && return 0
                kill -0 "$3" 2>/dev/null || { note "client $3 ended at $(progress "$1") bytes"; return 0; }
                sleep 0.05
        done
        fail "client did not reach $2 bytes (at $(progress "$1"))"
}
ACKED="$TEST_TMP/acked"
: >"$ACKED"

# after_crash WHAT: server is dead. fsck, restart, walk everything visible.
after_crash() {
        local what=$1
        if is_plura; then
                check "$what: plura fsck clean after kill -9" "$PLURA" fsck --data "$DATA"
        fi
        start_registry "$DATA"
        R="$HOSTPORT/crash"
        # Distribution does not keep its tags list in lexical order
        check "$what: registry consistent after restart" python3 "$E2E/check-registry.py" "$URL" --expect "$ACKED" --quiet \
                $(is_plura || echo --no-order)
}
crash() { kill9_server; note "killed -9 the server ($1)"; }

start_registry "$DATA"
R="$HOSTPORT/crash"
check "push a base image" skopeo_push "oci:$L:base" "docker://$R/base:one"
check "seed the manifest-loop repository" skopeo_push "oci:$L:base" "docker://$R/loop:seed"
echo "crash/base one $(jq -r .refs.base.digest "$L.json")" >>"$ACKED"

# ---- 1. kill -9 mid chunked upload (and mid single-request upload) --------------------
LAYER_DIGEST=$(jq -r '.refs.big.images[0].layers[1].digest' "$L.json")
LAYER="$L/blobs/sha256/${LAYER_DIGEST#sha256:}"
LAYER_SIZE=$(stat -c %s "$LAYER")
FIRST=$((4 * 1024 * 1024))
head -c "$FIRST" "$LAYER" >"$TEST_TMP/part1"
tail -c +"$((FIRST + 1))" "$LAYER" >"$TEST_TMP/part2"

http POST /v2/crash/big/blobs/uploads/ >/dev/null
check "upload session opened" test "$HTTP_STATUS" = 202
loc=$(header Location); loc=${loc#$URL}
http PATCH "$loc" -H 'Content-Type: application/octet-stream' -H "Content-Range: 0-$((FIRST - 1))" \
        --data-binary "@$TEST_TMP/part1" >/dev/null
check "first chunk (4 MiB) accepted" test "$HTTP_STATUS" = 202
loc=$(header Location); loc=${loc#$URL}
RAW PATCH "$URL$loc" --body-file "$TEST_TMP/part2" --chunk 262144 --pause 0.03 --progress "$TEST_TMP/p1" \
        -H 'Content-Type: application/octet-stream' -H "Content-Range: $FIRST-$((LAYER_SIZE - 1))" >"$TEST_TMP/st1" &
c1=$!
head -c 6000000 /dev/urandom >"$TEST_TMP/single"
SINGLE=sha256:$(sha "$TEST_TMP/single")
RAW POST "$URL/v2/crash/single/blobs/uploads/?digest=$SINGLE" --body-file "$TEST_TMP/single" --chunk 131072 \
        --pause 0.03 --progress "$TEST_TMP/p2" -H 'Content-Type: application/octet-stream' >"$TEST_TMP/st2" &
c2=$!
wait_progress "$TEST_TMP/p1" $(( (RANDOM % 6 + 2) * 1024 * 1024 )) $c1
wait_progress "$TEST_TMP/p2" $((1024 * 1024)) $c2
crash "chunked PATCH at $(progress "$TEST_TMP/p1") of $((LAYER_SIZE - FIRST)) bytes, single POST at $(progress "$TEST_TMP/p2")"
wait "$c1" "$c2" || true
check "the interrupted PATCH got no success ($(cat "$TEST_TMP/st1"))" test "$(head -c1 "$TEST_TMP/st1")" != 2
check "the interrupted single POST did not report a blob created ($(cat "$TEST_TMP/st2"))" test "$(cat "$TEST_TMP/st2")" != 201
after_crash "mid chunked upload"
check "interrupted chunked upload: blob not visible" test "$(status_of -I "$URL/v2/crash/big/blobs/$LAYER_DIGEST")" = 404
check "interrupted single-request upload: blob not visible" test "$(status_of -I "$URL/v2/crash/single/blobs/$SINGLE")" = 404
check "interrupted single-request upload: not visible in another repo" test "$(status_of -I "$URL/v2/crash/base/blobs/$SINGLE")" = 404
check "no repository appeared for the interrupted uploads" bash -c "! curl -s '$URL/v2/_catalog' | grep -q -e crash/big -e crash/single"

# The session may have survived (resume from the offset it reports) or be gone (404):
# either is fine, a wrong offset or a corrupt resume is not.
st=$(status_of "$URL$loc")
if [ "$st" = 204 ]; then
        http GET "$loc" >/dev/null
        range=$(header Range); off=$(( ${range#0-} + 1 ))
        note "upload session survived the crash at offset $off"
        check "surviving session offset within what was sent" test "$off" -ge "$FIRST" -a "$off" -le "$LAYER_SIZE"
        tail -c +"$((off + 1))" "$LAYER" >"$TEST_TMP/rest"
        http PATCH "$(header Location | sed "s|^$URL||")" -H 'Content-Type: application/octet-stream' \
                -H "Content-Range: $off-$((LAYER_SIZE - 1))" --data-binary "@$TEST_TMP/rest" >/dev/null
        check "resumed PATCH accepted" test "$HTTP_STATUS" = 202
        loc=$(header Location); loc=${loc#$URL}
        [[ "$loc" == *\?* ]] && q='&' || q='?'
        http PUT "$loc${q}digest=$LAYER_DIGEST" >/dev/null
        check "resumed upload committed with the right digest" test "$HTTP_STATUS" = 201
else
        check "lost upload session answers 404 ($st)" test "$st" = 404
fi
check "redo: skopeo push of the image whose layer was interrupted" skopeo_push "oci:$L:big" "docker://$R/big:one"
check "redo: pull back" skopeo_pull "docker://$R/big:one" "oci:$TEST_TMP/out-big:big"
check "redo: pulled blobs byte-identical" diff -r "$L/blobs/sha256/${LAYER_DIGEST#sha256:}" "$TEST_TMP/out-big/blobs/sha256/${LAYER_DIGEST#sha256:}"
check "redo: manifest digest" test "$(jq -r .manifests[0].digest "$TEST_TMP/out-big/index.json")" = "$(jq -r .refs.big.digest "$L.json")"
echo "crash/big one $(jq -r .refs.big.digest "$L.json")" >>"$ACKED"

# ---- 2. kill -9 at a random point of a skopeo push ------------------------------------
"${SKOPEO[@]}" copy -q --dest-tls-verify=false "oci:$L2:big" "docker://$R/big2:one" >/dev/null 2>&1 &
sk=$!
if is_plura; then
        # aim at the layer uploads: wait for an upload session file, then a random moment
        for _ in $(seq 250); do [ -n "$(ls -A "$DATA/uploads" 2>/dev/null)" ] && break; sleep 0.02; done
        sleep "$(printf '0.%03d' $((RANDOM % 120)))"
else
        sleep "$(printf '0.%03d' $((RANDOM % 280 + 20)))"
fi
crash "skopeo push in flight"
wait "$sk" && note "(the push had finished before the kill)" || true
after_crash "mid skopeo push"
check "redo: skopeo push after the crash" skopeo_push "oci:$L2:big" "docker://$R/big2:one"
check "redo: pull back" skopeo_pull "docker://$R/big2:one" "oci:$TEST_TMP/out-big2:big"
check "redo: every blob byte-identical" bash -c "cd '$TEST_TMP/out-big2/blobs/sha256' && for f in *; do cmp -s \$f '$L2/blobs/sha256/'\$f || exit 1; done"
echo "crash/big2 one $(jq -r .refs.big.digest "$L2.json")" >>"$ACKED"

# ---- 3. kill -9 in the middle of a stream of manifest PUTs, three times ---------------
MANIFEST="$L/blobs/sha256/$(jq -r .refs.base.digest "$L.json" | cut -d: -f2)"
for round in 1 2 3; do
        python3 "$E2E/manifest-loop.py" "$URL" crash/loop "$MANIFEST" --acked "$ACKED" --prefix "r$round" \
                >"$TEST_TMP/loop.$round" 2>&1 &
        lp=$!
        # until 5 PUTs are acknowledged, however slow the machine (6000 x 0.02 s: a cap for a hang only)
        for _ in $(seq 6000); do [ "$(grep -c " r$round-" "$ACKED")" -ge 5 ] && break; kill -0 "$lp" 2>/dev/null || break; sleep 0.02; done
        sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
        crash "manifest PUT loop, round $round"
        wait "$lp" || true
        check "round $round: the loop pushed manifests until the kill ($(grep -c " r$round-" "$ACKED") acknowledged)" \
                test "$(grep -c " r$round-" "$ACKED")" -ge 5
        after_crash "manifest PUTs round $round"
        # at most the one in-flight PUT may be visible beyond what was acknowledged
        n_tags=$(curl -s "$URL/v2/crash/loop/tags/list?n=100000" | jq '[.tags[] | select(startswith("r'$round'-"))] | length')
        n_acked=$(grep -c " r$round-" "$ACKED")
        check "round $round: tags = acknowledged (+1 in flight at most): $n_tags vs $n_acked" \
                test "$n_tags" -ge "$n_acked" -a "$n_tags" -le "$((n_acked + 1))"
done

# ---- 4. kill -9 right after acknowledged small-blob pushes from 8 clients ---------------
# Blob directory fsyncs are shared between concurrent commits and upload-session records are
# not synced: every acknowledged blob must still be there and verify.
BLOBS_ACKED="$TEST_TMP/acked-blobs"
: >"$BLOBS_ACKED"
python3 "$E2E/small-blob-loop.py" push "$URL" crash/small --acked "$BLOBS_ACKED" --clients 8 \
        $(is_plura || echo --no-single) >"$TEST_TMP/small.log" 2>&1 &
sp=$!
for _ in $(seq 6000); do [ "$(wc -l <"$BLOBS_ACKED")" -ge 40 ] && break; kill -0 "$sp" 2>/dev/null || break; sleep 0.02; done
sleep "0.$((RANDOM % 3))$((RANDOM % 10))"
crash "small-blob pushes from 8 clients"
wait "$sp" || true
check "small blobs: pushed until the kill ($(wc -l <"$BLOBS_ACKED") acknowledged; $(head -c 300 "$TEST_TMP/small.log"))" \
        test "$(wc -l <"$BLOBS_ACKED")" -ge 40
after_crash "small-blob pushes"
check "small blobs: every acknowledged blob present and byte-identical" \
        python3 "$E2E/small-blob-loop.py" verify "$URL" --acked "$BLOBS_ACKED"

# ---- finally: clean shutdown, fsck, every blob file verifies ---------------------------
stop_server
if is_plura; then
        check "final fsck clean" "$PLURA" fsck --data "$DATA"
        check "every committed blob file verifies against its name" verify_blob_files "$DATA"
fi
done_testing
