#!/usr/bin/env bash
# The FUSE view of a live registry (plura mount as a RocksDB secondary beside plura serve):
#  - /channels: an image pushed to apps/<svc> and promoted to dev shows as
#    /channels/dev/<svc>/candidate -> /repos/channels/dev/<svc>/_manifests/<digest>, with the
#    API's bytes; the link follows a roll forward and a rollback within about 2 s
#  - GC: a blob file and a rootfs file held open through the mount keep reading the right bytes
#    after their tag is deleted and GC (grace 0) removes the blob from the store; the deleted
#    tag leaves the _tags listing
#  - /gc/last.json and /gc/history/ equal the API's GC reports; /holds/<case_id>/ after a hold
. "$PLURA_SOURCE_ROOT/tests/lib.sh"

if [ ! -e /dev/fuse ]; then
        echo "1..0 # SKIP /dev/fuse is missing: FUSE mounts are not possible here"
        exit 77
fi

DATA="$TEST_TMP/data"
printf '{"gc":{"grace":"0","untagged_grace":"0"}}' >"$TEST_TMP/config.json"
start_server "$DATA" "$TEST_TMP/config.json"
MNT="$TEST_TMP/mnt"
mkdir -p "$MNT"
"$PLURA" mount --data "$DATA" "$MNT" >>"$TEST_TMP/mount.log" 2>&1 &
MOUNT_PID=$!
TEST_PIDS+=("$MOUNT_PID")
TEST_MOUNTS+=("$MNT")
for _ in $(seq 100); do [ -e "$MNT/README" ] && break; sleep 0.05; done
check "mounted" test -e "$MNT/README"

# wait_for SECONDS command...: polls every 0.1 s (the mount catches up once a second)
wait_for() {
        local n=$(($1 * 10)); shift
        for _ in $(seq "$n"); do "$@" 2>/dev/null && return 0; sleep 0.1; done
        return 1
}
upload() { # repo file -> digest (monolithic POST)
        local d="sha256:$(sha256_of "$2")"
        http POST "/v2/$1/blobs/uploads/?digest=$d" -H "Content-Type: application/octet-stream" --data-binary "@$2" >/dev/null
        [ "$HTTP_STATUS" = 201 ] || fail "upload of $2 to $1: $HTTP_STATUS"
        echo "$d"
}
# image REPO TAG DIR: DIR/config.json and DIR/layer.tar.gz exist; writes DIR/manifest.json, prints its digest
image() {
        local repo=$1 tag=$2 dir=$3 c l
        c=$(upload "$repo" "$dir/config.json")
        l=$(upload "$repo" "$dir/layer.tar.gz")
        printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}' \
                "$c" "$(stat -c %s "$dir/config.json")" "$l" "$(stat -c %s "$dir/layer.tar.gz")" >"$dir/manifest.json"
        http PUT "/v2/$repo/manifests/$tag" -H "Content-Type: application/vnd.oci.image.manifest.v1+json" --data-binary "@$dir/manifest.json" >/dev/null
        [ "$HTTP_STATUS" = 201 ] || fail "manifest $repo:$tag: $HTTP_STATUS"
        echo "sha256:$(sha256_of "$dir/manifest.json")"
}
# make_dir DIR SEED BIG_BYTES: a layer with etc/release (small) and data/big.bin (random)
make_dir() {
        python3 - "$1" "$2" "$3" <<'PY'
import gzip, io, os, sys, tarfile
out, seed, big = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out, exist_ok=True)
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w") as tf:
    for name, data in (("etc/release", ("release %s\n" % seed).encode()), ("data/big.bin", os.urandom(big))):
        ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = 1700000000; tf.addfile(ti, io.BytesIO(data))
        open(os.path.join(out, os.path.basename(name)), "wb").write(data)
open(os.path.join(out, "layer.tar.gz"), "wb").write(gzip.compress(raw.getvalue(), 1))
open(os.path.join(out, "config.json"), "w").write('{"architecture":"amd64","os":"linux","config":{"Labels":{"seed":"%s"}}}' % seed)
PY
}

# ---- /channels end to end
make_dir "$TEST_TMP/v1" one 1000
make_dir "$TEST_TMP/v2" two 1000
D1=$(image apps/web 1.0.0 "$TEST_TMP/v1")
D2=$(image apps/web 1.0.1 "$TEST_TMP/v2")
promote() { # digest -> HTTP status
        http POST /v1/registry/promote -H "Content-Type: application/json" \
                -d "{\"repo\":\"apps/web\",\"from\":\"repo\",\"to\":\"dev\",\"digest\":\"$1\"}" >"$TEST_TMP/promote.out"
        echo "$HTTP_STATUS"
}
check "promote to dev" test "$(promote "$D1")" = 200
CAND="$MNT/channels/dev/web/candidate"
points_at() { [ "$(readlink "$CAND")" = "../../../repos/channels/dev/web/_manifests/$1" ]; }
check "channels/dev/web/candidate appears" wait_for 3 test -L "$CAND"
check "candidate is a symlink to the channel repository's manifest" points_at "$D1"
check "the link resolves into /repos" test "$(readlink -f "$CAND")" = "$(readlink -f "$MNT/repos/channels/dev/web/_manifests/$D1")"
check "channels/dev lists web" test "$(ls "$MNT/channels/dev")" = web
check "channels/dev/web lists the candidate only" test "$(ls "$MNT/channels/dev/web")" = candidate
api=$(http GET /v2/channels/dev/web/manifests/candidate -H "Accept: application/vnd.oci.image.manifest.v1+json" | sha256sum | cut -d' ' -f1)
check "candidate/manifest.json equals the API bytes" test "$(sha256_of "$CAND/manifest.json")" = "$api"
check "candidate/manifest.json hashes to the promoted digest" test "sha256:$(sha256_of "$CAND/manifest.json")" = "$D1"
check "candidate/rootfs has the image's files" cmp -s "$CAND/rootfs/etc/release" "$TEST_TMP/v1/release"
check "roll forward: promote the next digest" test "$(promote "$D2")" = 200
check "the link follows the roll forward within 2 s" wait_for 2 points_at "$D2"
check "and reads the new image" wait_for 2 cmp -s "$CAND/rootfs/etc/release" "$TEST_TMP/v2/release"
http POST /v1/registry/rollback -H "Content-Type: application/json" -d '{"repo":"apps/web","to":"dev"}' >"$TEST_TMP/rollback.out"
check "rollback" test "$HTTP_STATUS" = 200
check "the link follows the rollback within 2 s" wait_for 2 points_at "$D1"
check "and reads the old image again" wait_for 2 cmp -s "$CAND/rootfs/etc/release" "$TEST_TMP/v1/release"

# ---- GC removes what open files read: the fds keep reading the right bytes
make_dir "$TEST_TMP/gone" gone $((3 * 1024 * 1024))
make_dir "$TEST_TMP/keep" keep 1000
DG=$(image gcview/app current "$TEST_TMP/gone")
DK=$(image gcview/app keep "$TEST_TMP/keep")
LAYER=$(jq -r '.layers[0].digest' "$TEST_TMP/gone/manifest.json")
LHEX=${LAYER#sha256:}
STORE_FILE="$DATA/blobs/sha256/${LHEX:0:2}/$LHEX"
check "the layer blob is in the store" test -f "$STORE_FILE"
check "the image shows in the mount" wait_for 3 test -f "$MNT/repos/gcview/app/_tags/current/manifest.json"
# reader FILE NAME: opens FILE, reads 64 KiB, says ready, waits for go, drops the file's page
# cache (later reads must come from the mount's open handle), reads the rest, prints the sha256
reader() {
        python3 - "$1" "$TEST_TMP/$2.ready" "$TEST_TMP/go" >"$TEST_TMP/$2.sum" 2>"$TEST_TMP/$2.err" <<'PY' &
import hashlib, os, sys, time
path, ready, go = sys.argv[1:4]
fd = os.open(path, os.O_RDONLY)
h = hashlib.sha256()
h.update(os.read(fd, 65536))
open(ready, "w").close()
deadline = time.time() + 40
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.05)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
while True:
    b = os.read(fd, 1 << 20)
    if not b:
        break
    h.update(b)
print(h.hexdigest())
PY
        READER_PID=$!
        TEST_PIDS+=("$READER_PID")
}
reader "$MNT/blobs/sha256/$LHEX" blob
P1=$READER_PID
reader "$MNT/repos/gcview/app/_manifests/$DG/rootfs/data/big.bin" rootfs
P2=$READER_PID
check "readers opened their files" wait_for 10 test -e "$TEST_TMP/blob.ready" -a -e "$TEST_TMP/rootfs.ready"
http DELETE /v2/gcview/app/manifests/current >/dev/null
check "delete the tag through /v2/" test "$HTTP_STATUS" = 202
http POST /v1/registry/gc -H "Content-Type: application/json" -d '{"dry_run":false}' >"$TEST_TMP/gc.json"
check "GC runs" test "$HTTP_STATUS" = 200
check "GC removed the layer blob from the store" test ! -e "$STORE_FILE"
touch "$TEST_TMP/go"
wait "$P1" && wait "$P2" || note "a reader failed: $(cat "$TEST_TMP/blob.err" "$TEST_TMP/rootfs.err")"
check "the open blob file read to the end with the right sha256" test "sha256:$(cat "$TEST_TMP/blob.sum")" = "$LAYER"
check "the open rootfs file read to the end with the right sha256" test "$(cat "$TEST_TMP/rootfs.sum")" = "$(sha256_of "$TEST_TMP/gone/big.bin")"
tags_are_keep() { [ "$(ls "$MNT/repos/gcview/app/_tags")" = keep ]; }
check "the deleted tag leaves the _tags listing" wait_for 3 tags_are_keep
check "the collected manifest leaves _manifests" wait_for 3 test ! -e "$MNT/repos/gcview/app/_manifests/$DG"
check "the collected blob leaves /blobs" wait_for 3 test ! -e "$MNT/blobs/sha256/$LHEX"
check "a new open of the collected blob fails" bash -c "! cat '$MNT/blobs/sha256/$LHEX' >/dev/null 2>&1"

# ---- /gc/last.json and /gc/history/ against the API's reports
newest=$(http GET /v1/registry/gc/reports | jq -c '.reports[0]')
full_last=$(http GET /v1/registry/gc/reports/last | jq -S -c .)
check "the API has a report of the GC" test "$(jq -r .dry_run <<<"$newest")" = false
last_is_api() { [ "$(jq -S -c . "$MNT/gc/last.json")" = "$full_last" ]; }
check "/gc/last.json equals GET /v1/registry/gc/reports/last" wait_for 3 last_is_api
check "/gc/last.json is the newest entry of GET /v1/registry/gc/reports" test \
        "$(jq -S -c 'del(.plan, .orphans, .skipped, .channel_windows, .records_without_file)' "$MNT/gc/last.json")" = "$(jq -S -c . <<<"$newest")"
check "/gc/last.json names the collected manifest" test \
        "$(jq -r --arg d "$DG" '.plan.manifests[] | select(.digest == $d) | .manifest_removed' "$MNT/gc/last.json")" = true
H=$(ls "$MNT/gc/history" | tail -n1)
check "/gc/history/ has a report" test -n "$H"
check "the newest history report is the last one" test "$(jq -S -c . "$MNT/gc/history/$H" 2>/dev/null)" = "$full_last"
check "history reports are read-only files" test "$(stat -c %a "$MNT/gc/history/$H")" = 444
first_id=$(jq -r .id "$MNT/gc/last.json")
http POST /v1/registry/gc -H "Content-Type: application/json" -d '{"dry_run":false}' >/dev/null
two_reports() { [ "$(ls "$MNT/gc/history" | wc -l)" = "$(http GET /v1/registry/gc/reports | jq '.reports | length')" ] && [ "$(ls "$MNT/gc/history" | wc -l)" -ge 2 ]; }
check "a second GC adds a history report" wait_for 3 two_reports
last_moved() { [ "$(jq -r .id "$MNT/gc/last.json")" != "$first_id" ] && last_is_api; }
full_last=$(http GET /v1/registry/gc/reports/last | jq -S -c .)
check "/gc/last.json follows the second GC" wait_for 3 last_moved

# ---- /holds/<case_id>/
http POST /v1/registry/holds -H "Content-Type: application/json" \
        -d "{\"digest\":\"$DK\",\"case_id\":\"INC-4711\",\"reason\":\"outage review\"}" >"$TEST_TMP/hold.out"
check "hold created" test "$HTTP_STATUS" = 201 -o "$HTTP_STATUS" = 200
check "/holds lists the case" wait_for 3 test -d "$MNT/holds/INC-4711"
check "/holds/<case>/ lists the held digest" test "$(ls "$MNT/holds/INC-4711")" = "$DK.json"
HF="$MNT/holds/INC-4711/$DK.json"
check "the hold file names the digest, case and reason" test \
        "$(jq -r '[.digest // "'"$DK"'", .case_id // "INC-4711", .reason] | join(" ")' "$HF")" = "$DK INC-4711 outage review"
api_hold=$(http GET "/v1/registry/holds?case_id=INC-4711" | jq -r '.. | objects | select(.reason? == "outage review") | .reason' | head -n1)
check "the API agrees" test "$api_hold" = "outage review"
check "an unknown case is absent" test ! -e "$MNT/holds/INC-0000"

check "the mount process is still alive (no crash, e.g. under ASan)" kill -0 "$MOUNT_PID"
check "no sanitizer report in the mount's log" bash -c "! grep -E 'Sanitizer|runtime error' '$TEST_TMP/mount.log'"

done_testing
