#!/bin/bash
# Pushes during GC, bounded by the work done, not by time: WORKERS curl pushers push IMAGES
# images each (sharing layers), skopeo pushes six more, and exactly GC_RUNS GCs (grace 0) run
# while they do (defaults: 4 x 6 images, 12 GC runs). Every EVERY-th image of a pusher, with its blobs uploaded, waits for a GC to be
# running before it PUTs its manifest, so every GC run races at least that push (the race the
# sweep's per-digest lock exists for); the other pushes run freely beside it. A push that loses
# the race gets MANIFEST_BLOB_UNKNOWN and re-uploads (as clients do); it never ends with a
# stored manifest whose blob is gone. Afterwards every tagged image pulls and verifies.
# The waits are events (a pipe, FIFOs, GC long polls), not sleeps.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"
. "$PLURA_SOURCE_ROOT/tests/integration/gc/gc-lib.sh"

WORKERS=${GC_RACE_WORKERS:-4}
IMAGES=${GC_RACE_IMAGES:-6}
EVERY=${GC_RACE_EVERY:-2}
GC_RUNS=$((WORKERS * (IMAGES / EVERY)))

cat >"$TEST_TMP/config.json" <<'JSON'
{ "gc": { "grace": "0", "untagged_grace": "1h",
          "retention": [ { "repos": "**", "keep_last": 100000 } ] } }
JSON
DATA="$TEST_TMP/data"
start_server "$DATA" "$TEST_TMP/config.json"
now_ns() { date +%s%N; }

# ---- the race, forced: a GC between a push's uploads and its manifest PUT sweeps the blobs
make_image "$TEST_TMP/seq" seq
push_blob race/seq "$TEST_TMP/seq/config.json" >/dev/null
push_blob race/seq "$TEST_TMP/seq/layer" >/dev/null
req POST /v1/registry/gc -d '{}'
check "a GC after the uploads, before the PUT, sweeps the push's two blobs (grace 0)" \
        [ "$HTTP_STATUS" = 200 -a "$(jq_get totals.blobs_deleted <<<"$OUT")" = 2 ]
code=$(put_manifest race/seq one "$TEST_TMP/seq/manifest.json")
check "the PUT then gets 400 MANIFEST_BLOB_UNKNOWN" [ "$code" = 400 ] && grep -q MANIFEST_BLOB_UNKNOWN "$TEST_TMP/seq/manifest.json.resp"
d=$(push_image race/seq one "$TEST_TMP/seq")
check "re-uploading and retrying pushes it, and it verifies" verify_image race/seq one "$d"

# ---- pushes and GC runs together
for s in 1 2 3; do head -c 65536 /dev/urandom >"$TEST_TMP/shared$s"; done
mkdir -p "$TEST_TMP/inflight"
mkfifo "$TEST_TMP/events"
for w in $(seq "$WORKERS"); do mkfifo "$TEST_TMP/go.$w"; done

# One GC per "W I" line on stdin (a pusher whose blobs are uploaded): start it (202 once the
# run holds the GC lock), count the pushes in flight, let the pusher PUT, wait for the run's
# end with a long poll. Ends when every pusher has closed the pipe.
gc_driver() {
        local n=0 w i t0 t1 code inflight swept
        while read -r w i; do
                n=$((n + 1))
                t0=$(now_ns)
                code=$(curl -sS -o "$TEST_TMP/gc-post.json" -w '%{http_code}' --max-time 60 -X POST "$URL/v1/registry/gc" \
                        -d '{"wait": false}' 2>>"$TEST_TMP/gc.err") || code=000
                inflight=$(find "$TEST_TMP/inflight" -type f | wc -l)
                echo go >"$TEST_TMP/go.$w"
                curl -sS -o /dev/null --max-time 130 "$URL/v1/registry/gc?wait=120" 2>>"$TEST_TMP/gc.err" || true
                t1=$(now_ns)
                swept=$(curl -sS "$URL/v1/registry/gc/reports/last" 2>>"$TEST_TMP/gc.err" | jq -r '.totals.blobs_deleted // "?"') || swept='?'
                echo "$n $w $i $code $t0 $t1 $inflight $swept" >>"$TEST_TMP/gc.runs"
        done
}

# The hook of a raced push: its blobs are uploaded; ask for a GC, PUT once it runs.
race_hook() {
        echo "$W_ID $I_ID" >&3
        read -r -t 120 -u "$GO_FD" _ || echo "FAILED w$W_ID i$I_ID: no GC started for it" >>"$TEST_TMP/failures"
}

worker() {
        W_ID=$1
        local i dir d s e shared
        exec {GO_FD}<>"$TEST_TMP/go.$W_ID"
        for i in $(seq "$IMAGES"); do
                I_ID=$i
                dir="$TEST_TMP/w$W_ID/i$i"
                shared="$TEST_TMP/shared$(( (W_ID + i) % 3 + 1 ))"
                make_image "$dir" "$W_ID-$i" "$shared"
                PUSH_BEFORE_PUT=
                [ $((i % EVERY)) = 0 ] && PUSH_BEFORE_PUT=race_hook
                touch "$TEST_TMP/inflight/$W_ID"
                s=$(now_ns)
                d=$(push_image "race/w$W_ID" "t$i" "$dir" "$shared") || d=
                e=$(now_ns)
                rm -f "$TEST_TMP/inflight/$W_ID"
                echo "$s $e" >>"$TEST_TMP/push-times"
                [ -n "$d" ] || { echo "FAILED w$W_ID i$i" >>"$TEST_TMP/failures"; continue; }
                echo "race/w$W_ID t$i $d" >>"$TEST_TMP/pushed.$W_ID"
        done
}

gc_driver <"$TEST_TMP/events" &
DRIVER=$!
TEST_PIDS+=("$DRIVER")
exec 3>"$TEST_TMP/events"
declare -a WAIT=()
for w in $(seq "$WORKERS"); do worker "$w" & WAIT+=($!); done

# skopeo pushes (OCI layouts with real layers sharing base-fs) alongside. A failed copy needs a
# GC that swept one of its blobs, and only GC_RUNS run: that bounds its attempts.
SKOPEO_OK=0
if command -v skopeo >/dev/null && [ -f "$PLURA_SOURCE_ROOT/tests/e2e/make-oci-layout.py" ]; then
        mkdir -p "$TEST_TMP/home" "$TEST_TMP/run"
        export HOME="$TEST_TMP/home" XDG_RUNTIME_DIR="$TEST_TMP/run"
        [ "$(id -u)" -eq 0 ] && export _CONTAINERS_USERNS_CONFIGURED=done _CONTAINERS_ROOTLESS_UID=1000
        for s in 1 2 3; do
                python3 "$PLURA_SOURCE_ROOT/tests/e2e/make-oci-layout.py" --out "$TEST_TMP/layout$s" --seed "$s" \
                        --describe "$TEST_TMP/layout$s.json" >/dev/null
        done
        (
                for s in 1 2 3; do
                        for ref in base app; do
                                ok=0
                                for try in $(seq $((GC_RUNS + 2))); do
                                        echo "$ref-$s" >>"$TEST_TMP/skopeo.attempts"
                                        if skopeo --insecure-policy copy -q --dest-tls-verify=false \
                                                "oci:$TEST_TMP/layout$s:$ref" "docker://$HOSTPORT/race/skopeo:$ref-$s" 2>>"$TEST_TMP/skopeo.err"; then
                                                ok=1; break
                                        fi
                                done
                                [ "$ok" = 1 ] || { echo "FAILED skopeo $ref-$s" >>"$TEST_TMP/failures"; continue; }
                                echo "race/skopeo $ref-$s $(jq -r ".refs.$ref.digest" "$TEST_TMP/layout$s.json")" >>"$TEST_TMP/pushed.skopeo"
                        done
                done
        ) 3>&- &
        WAIT+=($!)
        SKOPEO_OK=1
fi
exec 3>&-
for j in "${WAIT[@]}"; do wait "$j" || true; done
wait "$DRIVER" || true

# ---- what raced
runs=$(wc -l <"$TEST_TMP/gc.runs" 2>/dev/null || echo 0)
# pushes (start..end of push_image) that overlap each GC run (start of its POST..end of its long poll)
awk 'NR == FNR { s[NR] = $1; e[NR] = $2; np = NR; next }
     { n = 0; for (k = 1; k <= np; k++) if (s[k] < $6 && e[k] > $5) n++; print $1, n }' \
        "$TEST_TMP/push-times" "$TEST_TMP/gc.runs" >"$TEST_TMP/gc.overlaps"
overlapped=$(awk '$2 >= 1' "$TEST_TMP/gc.overlaps" | wc -l)
several=$(awk '$2 >= 2' "$TEST_TMP/gc.overlaps" | wc -l)
swept_racing=$(awk '$8 ~ /^[0-9]+$/ && $8 > 0' "$TEST_TMP/gc.runs" | wc -l)
retries=$(cat "$TEST_TMP"/w*/i*/retries 2>/dev/null | wc -l)
note "GC runs: $runs of $GC_RUNS; overlapping a push: $overlapped, two or more: $several" \
        "(pushes per run: $(cut -d' ' -f2 "$TEST_TMP/gc.overlaps" | sort -n | tr '\n' ' '))"
note "pushes in flight when each run had started: $(cut -d' ' -f7 "$TEST_TMP/gc.runs" | tr '\n' ' ')"
note "runs that swept blobs of pushes in flight: $swept_racing; curl pushes retried after MANIFEST_BLOB_UNKNOWN: $retries;" \
        "manifest PUTs answered 400: $(grep -c 'PUT /v2/.* 400 ' "$TEST_TMP/server.log" || true);" \
        "skopeo copies: $(wc -l <"$TEST_TMP/skopeo.attempts" 2>/dev/null || echo 0) attempts for 6 images"
check "exactly $GC_RUNS GC runs, each started (202)" [ "$runs" = "$GC_RUNS" ] && [ "$(awk '$4 != 202' "$TEST_TMP/gc.runs" | wc -l)" = 0 ]
check "every GC run overlapped a push in flight (from the timestamps)" [ "$overlapped" = "$GC_RUNS" ]
check "every push completed (retrying MANIFEST_BLOB_UNKNOWN)" [ ! -s "$TEST_TMP/failures" ]

# one more GC with everything quiet, then every tagged image must verify: every repository,
# tag, manifest and blob the registry shows (one walk, check-registry.py), every pushed tag at
# its digest among them
"$PLURA" reg gc --url "$URL" >/dev/null
cat "$TEST_TMP"/pushed.* >"$TEST_TMP/expect"
check "all $(grep -vc skopeo "$TEST_TMP/expect") curl-pushed images were pushed" [ "$(grep -vc skopeo "$TEST_TMP/expect")" = $((WORKERS * IMAGES)) ]
check "every image pulls and verifies, each pushed tag at its digest" \
        python3 "$PLURA_SOURCE_ROOT/tests/e2e/check-registry.py" "$URL" --expect "$TEST_TMP/expect" --quiet
if [ "$SKOPEO_OK" = 1 ]; then
        check "the six skopeo images are among them" [ "$(grep -c skopeo "$TEST_TMP/expect")" = 6 ]
        check "skopeo pulls one back (blobs verified by skopeo)" skopeo --insecure-policy copy -q --src-tls-verify=false \
                "docker://$HOSTPORT/race/skopeo:app-3" "oci:$TEST_TMP/out:x"
fi
stop_server
check "fsck is clean" "$PLURA" fsck --data "$DATA"
done_testing
