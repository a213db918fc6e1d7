#!/usr/bin/env bash
# A full data volume, for real: a server on a 64 MiB ext4 loop mount (which must hold a store at
# all: the index preallocates little at open), filled up by a file beside the store. Then /v2 and
# /v1 writes (and a GC) answer 507 with the JSON error body, /readyz 503, reads keep working and
# the server does not abort (librocksdb 7.8 did, on assertions in its info log and in a WAL sync,
# exit 134). Once the filler is deleted the index takes writes again by itself and /readyz is
# ready; nothing acknowledged is lost (pulled back and compared, also after a restart). plura fsck
# on the full volume says so and exits 2 instead of aborting.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"

skip() { echo "1..0 # SKIP $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root for a loop-mounted filesystem"
command -v losetup >/dev/null && command -v mkfs.ext4 >/dev/null || skip "needs losetup and mkfs.ext4"

IMG="$TEST_TMP/volume.img" MNT="$TEST_TMP/volume" LOOP=""
DATA="$MNT/data" FILLER="$MNT/filler"
# The server holds files on the volume: stop it before the unmount, then detach the loop device.
disk_cleanup() {
        local rc=$?
        set +e
        [ -n "${SERVER_PID:-}" ] && stop_server "$SERVER_PID"
        if mountpoint -q "$MNT"; then umount "$MNT" 2>/dev/null || umount -l "$MNT"; fi
        [ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
        (exit $rc)
        test_cleanup
}
trap disk_cleanup EXIT

truncate -s 64M "$IMG"
mkfs.ext4 -q -F -m 0 "$IMG"
mkdir -p "$MNT"
LOOP=$(losetup -f --show "$IMG" 2>/dev/null) || skip "cannot attach a loop device"
mount "$LOOP" "$MNT" 2>/dev/null || skip "cannot mount $LOOP"

dig() { echo "sha256:$(sha256_of "$1")"; }
req() { http "$@" >"$TEST_TMP/resp" || true; BODY=$(cat "$TEST_TMP/resp"); }
code() { jq -r '.errors[0].code' <<<"$BODY"; }
message() { jq -r '.errors[0].message' <<<"$BODY"; }
push_blob() { req POST "/v2/$1/blobs/uploads/?digest=$(dig "$2")" --data-binary @"$2"; }
MT=application/vnd.oci.image.manifest.v1+json
manifest() { # CONFIG LAYER -> an image manifest
        printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
                "$MT" "$(dig "$1")" "$(stat -c %s "$1")" "$(dig "$2")" "$(stat -c %s "$2")"
}
put_manifest() { req PUT "/v2/$1/manifests/$2" -H "Content-Type: $MT" --data-binary @"$3"; }
# block DIGEST REASON_BYTES: POST /v1/registry/block with a reason that long (the record and its
# audit event each hold it, so large ones use up the index's preallocated WAL quickly)
block() {
        { printf '{"digest":"%s","reason":"' "$1"; head -c "$2" /dev/zero | tr '\0' r; printf '","cves":["CVE-2024-0001"]}'; } >"$TEST_TMP/block.json"
        req POST /v1/registry/block -H "Content-Type: application/json" --data-binary @"$TEST_TMP/block.json"
}
# Filler files beside the store until nothing is left (delayed allocation gives some back after a sync).
fill_volume() { # to the last block: 64 KiB writes, then 4 KiB ones for what they leave
        local i
        for i in 1 2 3; do
                dd if=/dev/zero of="$FILLER.$i" bs=64k status=none 2>/dev/null || true
                sync -f "$MNT"
        done
        for i in 4 5 6; do
                dd if=/dev/zero of="$FILLER.$i" bs=4k status=none 2>/dev/null || true
                sync -f "$MNT"
        done
}
free_kib() { df -k --output=avail "$MNT" | tail -1 | tr -d ' '; }
fake_digest() { printf 'sha256:%064x' "$1"; }
readyz() { curl -s -o /dev/null -w '%{http_code}' "$URL/readyz" || echo 000; }
alive() { kill -0 "$SERVER_PID" 2>/dev/null; }
no_abort_logged() { ! grep -q "Assertion\|Aborted" "$TEST_TMP/server.log"; }

# What the test pushes and expects back: "repo file" lines, and the digests blocked.
declare -a PUSHED=() BLOCKED=()
push_image() { # REPO TAG NAME: a config, a 256 KiB layer and a manifest, every answer checked
        local d="$TEST_TMP/$3"
        printf '{"architecture":"amd64","os":"linux","name":"%s"}' "$3" >"$d.config"
        head -c 262144 /dev/urandom >"$d.layer"
        manifest "$d.config" "$d.layer" >"$d.manifest"
        push_blob "$1" "$d.config" && [ "$HTTP_STATUS" = 201 ] || return 1
        push_blob "$1" "$d.layer" && [ "$HTTP_STATUS" = 201 ] || return 1
        put_manifest "$1" "$2" "$d.manifest" && [ "$HTTP_STATUS" = 201 ] || return 1
        PUSHED+=("$1 $d.config" "$1 $d.layer")
}
pulled_back() { # TAG...: every pushed blob and those tags' manifests, byte for byte
        local entry repo file t
        for entry in "${PUSHED[@]}"; do
                repo=${entry%% *} file=${entry#* }
                curl -sSf -o "$TEST_TMP/pulled" "$URL/v2/$repo/blobs/$(dig "$file")" || return 1
                [ "$(sha256_of "$TEST_TMP/pulled")" = "$(sha256_of "$file")" ] || return 1
        done
        for t in "$@"; do
                curl -sSf -H "Accept: $MT" -o "$TEST_TMP/pulled" "$URL/v2/disk/app/manifests/$t" || return 1
                cmp -s "$TEST_TMP/pulled" "$TEST_TMP/$t.manifest" || return 1
        done
}
still_blocked() {
        local d
        for d in "${BLOCKED[@]}"; do
                curl -sSf -o /dev/null "$URL/v1/registry/block/$d" || return 1
        done
}

T0=$(date +%s)
start_server "$DATA"
# RocksDB's default sizes preallocated ~46 MiB of WAL at open (the whole volume here)
INDEX_KIB=$(du -sk "$DATA/index" | cut -f1)
note "index at open: $INDEX_KIB KiB on a $(df -k --output=size "$MNT" | tail -1 | tr -d ' ') KiB volume"
check "a fresh index takes under 8 MiB of a 64 MiB volume" [ "$INDEX_KIB" -lt 8192 ]

# ---- acknowledged before the volume fills
check "image pushed before the volume is full" push_image disk/app before before
block "$(fake_digest 1)" 1000
check "POST /v1/registry/block before the volume is full: 201" [ "$HTTP_STATUS" = 201 ]
BLOCKED+=("$(fake_digest 1)")

# ---- fill the volume beside the store
fill_volume
note "volume filled: $(free_kib) KiB left"

head -c 100000 /dev/urandom >"$TEST_TMP/late.blob"
push_blob disk/app "$TEST_TMP/late.blob"
check "/v2 blob upload on a full volume: 507" [ "$HTTP_STATUS" = 507 ]
check "/v2 507 has the spec's error body (UNKNOWN, storage is full)" \
        [ "$(code)" = UNKNOWN -a -n "$(message | grep 'storage is full')" ]
check "/readyz on a full volume: 503" [ "$(readyz)" = 503 ]

# The index preallocated room for its WAL: /v1 writes go on until that is used up too.
n=2 status=201
while [ "$status" = 201 ] && [ "$n" -lt 60 ]; do
        block "$(fake_digest "$n")" 900000
        status=$HTTP_STATUS
        [ "$status" = 201 ] && BLOCKED+=("$(fake_digest "$n")")
        n=$((n + 1))
done
note "index writes failed after $((n - 2)) large /v1 records"
check "/v1 block once the index is full: 507" [ "$status" = 507 ]
check "/v1 507 has the JSON error body (STORAGE_FULL, storage is full)" \
        [ "$(code)" = STORAGE_FULL -a -n "$(message | grep 'storage is full')" ]
block "$(fake_digest 99)" 10
check "a small /v1 write while the index is stopped: 507" [ "$HTTP_STATUS" = 507 ]
req DELETE "/v1/registry/block/$(fake_digest 1)"
check "/v1 unblock while the index is stopped: 507" [ "$HTTP_STATUS" = 507 -a "$(code)" = STORAGE_FULL ]
req GET "/v1/registry/block/$(fake_digest 99)"
check "a refused block was not applied" [ "$HTTP_STATUS" = 404 ]
put_manifest disk/app again "$TEST_TMP/before.manifest"
check "/v2 manifest PUT (index only) on a full index: 507" [ "$HTTP_STATUS" = 507 -a "$(code)" = UNKNOWN ]
check "/readyz while index writes fail: 503" [ "$(readyz)" = 503 ]
# GC syncs the WAL it wrote to (7.8's FlushWAL aborted on the WAL file whose append had failed)
req POST /v1/registry/gc -H "Content-Type: application/json" --data-binary '{"wait":true}'
check "a GC while the index is stopped: 507 STORAGE_FULL" [ "$HTTP_STATUS" = 507 -a "$(code)" = STORAGE_FULL ]
check "reads go on: what was pushed before pulls back" pulled_back before
check "the server is still running" alive

# ---- free the space again: RocksDB resumes by itself (it polls the free space every 5 s)
rm -f "$FILLER".*
ready=000
for _ in $(seq 300); do
        ready=$(readyz)
        [ "$ready" = 200 ] && break
        alive || break
        sleep 0.1
done
check "/readyz is ready again once space is free" [ "$ready" = 200 ]
block "$(fake_digest 100)" 1000
check "/v1 writes work again: 201" [ "$HTTP_STATUS" = 201 ]
BLOCKED+=("$(fake_digest 100)")
push_blob disk/app "$TEST_TMP/late.blob"
check "/v2 blob upload works again: 201" [ "$HTTP_STATUS" = 201 ]
PUSHED+=("disk/app $TEST_TMP/late.blob")
check "image pushed after the space came back" push_image disk/app after after
check "the server never exited" alive
check "no assertion or abort in the server's log" no_abort_logged
check "everything acknowledged pulls back byte for byte" pulled_back before after
check "every acknowledged block is there" still_blocked

stop_server
start_server "$DATA"
check "after a restart: everything acknowledged pulls back byte for byte" pulled_back before after
check "after a restart: every acknowledged block is there" still_blocked
stop_server
SERVER_PID=""

# ---- plura fsck on a full volume (server stopped)
fill_volume
rc=0
"$PLURA" fsck --data "$DATA" >"$TEST_TMP/fsck.out" 2>"$TEST_TMP/fsck.err" || rc=$?
note "fsck on the full volume ($(free_kib) KiB free): exit $rc"
check "fsck on a full volume exits 2 (cannot open), not 134 (abort): got $rc" [ "$rc" = 2 ]
check "fsck says the volume is full" grep -q "data volume is full" "$TEST_TMP/fsck.err"
[ "$rc" = 2 ] || cat "$TEST_TMP/fsck.out" "$TEST_TMP/fsck.err" >&2
rm -f "$FILLER".*
rc=0
"$PLURA" fsck --data "$DATA" >"$TEST_TMP/fsck.out" 2>"$TEST_TMP/fsck.err" || rc=$?
check "fsck once space is free: the store is clean (exit $rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || cat "$TEST_TMP/fsck.out" "$TEST_TMP/fsck.err" >&2

note "took $(($(date +%s) - T0)) s"
done_testing
