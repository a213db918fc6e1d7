#!/usr/bin/env bash
# The FUSE view against a real server and real skopeo pushes: plura mount (RocksDB secondary)
# beside plura serve. Listings, manifest/config bytes equal to the API's, every blob hashes to
# its name, rootfs/ equal to the merged layers (overwrites, whiteouts, opaque dirs, symlinks,
# hard links, modes), a new push visible without remounting, EROFS on writes, malicious
# layers give EIO without harming the mount, concurrent readers, clean unmount on SIGTERM.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"

if [ ! -e /dev/fuse ]; then
        echo "1..0 # SKIP /dev/fuse is missing: FUSE mounts are not possible here"
        exit 77
fi

L="$TEST_TMP/layout"
make_layout --out "$L" --seed 1 --describe "$L.json" >/dev/null
DATA="$TEST_TMP/data"
start_server "$DATA"
push() { skopeo copy -q --dest-tls-verify=false "$@" >/dev/null; }
push "oci:$L:base" "docker://$HOSTPORT/test/base:one"
push "oci:$L:app" "docker://$HOSTPORT/ns/deep/app:v1"
push --all "oci:$L:multi" "docker://$HOSTPORT/test/multi:latest"

MNT="$TEST_TMP/mnt"
mkdir -p "$MNT"
"$PLURA" mount --data "$DATA" "$MNT" >>"$TEST_TMP/mount.log" 2>&1 &
MOUNT_PID=$!
TEST_PIDS+=("$MOUNT_PID")
TEST_MOUNTS+=("$MNT")
for _ in $(seq 100); do [ -e "$MNT/README" ] && break; sleep 0.05; done
check "mounted" test -e "$MNT/README"

digest_of() { jq -r ".refs.$1.digest" "$L.json"; }
BASE=$(digest_of base)
APP=$(digest_of app)
MULTI=$(digest_of multi)
MB="$MNT/repos/test/base/_manifests/$BASE"

# ---- listings
LS=$(ls -R "$MNT/repos" 2>&1)
check "ls -R shows namespaces and repos" grep -q "^$MNT/repos/ns/deep/app:" <<<"$LS"
check "ls -R shows tags" grep -qx "one" <<<"$(ls "$MNT/repos/test/base/_tags")"
check "tag is a symlink to its manifest" test "$(readlink "$MNT/repos/test/base/_tags/one")" = "../_manifests/$BASE"
check "tag resolves" test -f "$MNT/repos/test/base/_tags/one/manifest.json"
check "manifests listing" test -d "$MB"
check "README" grep -q "read-only view" "$MNT/README"
check "index has platform symlinks" test -f "$MNT/repos/test/multi/_manifests/$MULTI/platforms/linux-amd64/manifest.json"
check "channels directory exists" test -d "$MNT/channels"
check "history text" grep -q "$BASE" "$MNT/repos/test/base/_history/one"
check "modes: files 0444, dirs 0555" test "$(stat -c %a "$MB/manifest.json") $(stat -c %a "$MB")" = "444 555"

# ---- bytes equal to the API's
api_manifest=$(http GET "/v2/test/base/manifests/one" -H "Accept: application/vnd.oci.image.manifest.v1+json" | sha256sum | cut -d' ' -f1)
check "manifest.json equals the API bytes" test "$(sha256sum <"$MB/manifest.json" | cut -d' ' -f1)" = "$api_manifest"
check "manifest.json hashes to its digest" test "sha256:$(sha256_of "$MB/manifest.json")" = "$BASE"
CFG=$(jq -r .config.digest "$MB/manifest.json")
api_config=$(http GET "/v2/test/base/blobs/$CFG" | sha256sum | cut -d' ' -f1)
check "config.json equals the API bytes" test "sha256:$api_config" = "$CFG"
check "config.json hashes to its digest" test "sha256:$(sha256_of "$MB/config.json")" = "$CFG"
check "config.json size is real" test "$(stat -c %s "$MB/config.json")" = "$(jq -r .config.size "$MB/manifest.json")"
bad=0
for b in "$MNT"/blobs/sha256/*; do
        [ "$(sha256_of "$b")" = "$(basename "$b")" ] || { note "blob $b does not hash to its name"; bad=1; }
done
check "sha256sum of every blob matches its name" test "$bad" = 0
check "blobs listed" test "$(ls "$MNT/blobs/sha256" | wc -l)" -ge 10
bad=0
for f in "$MB"/layers/*; do
        [ "sha256:$(sha256_of "$f")" = "${f##*/[0-9]-}" ] || bad=1
done
check "layers/<n>-<digest> hash to their digest" test "$bad" = 0

# ---- rootfs
check "rootfs of base equals the merged layers" python3 "$PLURA_SOURCE_ROOT/tests/integration/fusefs/check-rootfs.py" "$L.json" base "$BASE" "$MB/rootfs"
check "rootfs of app equals the merged layers" python3 "$PLURA_SOURCE_ROOT/tests/integration/fusefs/check-rootfs.py" "$L.json" app "$APP" "$MNT/repos/ns/deep/app/_manifests/$APP/rootfs"
AMD=$(readlink "$MNT/repos/test/multi/_manifests/$MULTI/platforms/linux-amd64"); AMD=${AMD##*/}
check "rootfs of a platform image" python3 "$PLURA_SOURCE_ROOT/tests/integration/fusefs/check-rootfs.py" "$L.json" multi "$AMD" "$MNT/repos/test/multi/_manifests/$AMD/rootfs"
check "cat rootfs/etc/os-release" grep -q . "$MB/rootfs/etc/os-release"

# ---- read-only
check "write fails with EROFS" bash -c "! echo x > '$MB/rootfs/etc/os-release' 2>&1 | tee /dev/stderr | grep -vq 'Read-only file system'"
out=$(touch "$MNT/repos/newfile" 2>&1 || true)
check "create fails with EROFS" grep -q "Read-only file system" <<<"$out"
out=$(mkdir "$MNT/repos/x" 2>&1 || true)
check "mkdir fails with EROFS" grep -q "Read-only file system" <<<"$out"
out=$(rm -f "$MB/manifest.json" 2>&1 || true)
check "unlink fails with EROFS" grep -q "Read-only file system" <<<"$out"

# ---- a new push appears without remounting
push "oci:$L:app" "docker://$HOSTPORT/late/arrival:v9"
seen=no
for _ in $(seq 50); do [ -L "$MNT/repos/late/arrival/_tags/v9" ] && { seen=yes; break; }; sleep 0.1; done
check "new push visible without remount" test "$seen" = yes
check "new tag resolves" test -f "$MNT/repos/late/arrival/_tags/v9/config.json"

# ---- malicious layers: EIO for that image, the mount keeps working
python3 - "$TEST_TMP/evil" <<'PY'
import gzip, io, os, sys, tarfile
out = sys.argv[1]; os.makedirs(out, exist_ok=True)
def hdr(name, size=0, typ=b"0", size_field=None):
    h = bytearray(512); h[0:len(name)] = name
    h[100:108] = b"0000644\0"; h[108:116] = b"0000000\0"; h[116:124] = b"0000000\0"
    h[124:136] = size_field if size_field is not None else b"%011o\0" % size
    h[136:148] = b"%011o\0" % 1700000000; h[156:157] = typ; h[257:263] = b"ustar\0"; h[263:265] = b"00"
    h[148:156] = b"        "; h[148:156] = b"%06o\0 " % sum(h); return bytes(h)
end = b"\0" * 1024
good = hdr(b"ok.txt", 3) + b"ok\n".ljust(512, b"\0")
layers = {
    "traversal": good + hdr(b"../../../etc/shadow", 5) + b"evil\n".ljust(512, b"\0") + end,
    "badsum": good + bytes([ord("X")]) + hdr(b"file", 5)[1:] + b"data\n".ljust(512, b"\0") + end,
    "huge": good + hdr(b"huge", size_field=b"\x80" + b"\0" * 4 + (1 << 50).to_bytes(7, "big")) + end,
}
for k, v in layers.items():
    open(os.path.join(out, k + ".tar.gz"), "wb").write(gzip.compress(v))
PY
upload() { # repo file -> digest
        local d="sha256:$(sha256_of "$2")"
        http POST "/v2/$1/blobs/uploads/?digest=$d" -H "Content-Type: application/octet-stream" --data-binary "@$2" >/dev/null
        [ "$HTTP_STATUS" = 201 ] || fail "upload of $2: $HTTP_STATUS"
        echo "$d"
}
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$TEST_TMP/evil/config.json"
for k in traversal badsum huge; do
        c=$(upload evil/$k "$TEST_TMP/evil/config.json")
        l=$(upload evil/$k "$TEST_TMP/evil/$k.tar.gz")
        printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}' \
                "$c" "$(stat -c %s "$TEST_TMP/evil/config.json")" "$l" "$(stat -c %s "$TEST_TMP/evil/$k.tar.gz")" >"$TEST_TMP/evil/$k.json"
        http PUT "/v2/evil/$k/manifests/v1" -H "Content-Type: application/vnd.oci.image.manifest.v1+json" --data-binary "@$TEST_TMP/evil/$k.json" >/dev/null
        [ "$HTTP_STATUS" = 201 ] || fail "manifest of $k: $HTTP_STATUS"
done
for _ in $(seq 50); do [ -L "$MNT/repos/evil/huge/_tags/v1" ] && break; sleep 0.1; done
for k in traversal badsum huge; do
        out=$(ls "$MNT/repos/evil/$k/_tags/v1/rootfs/" 2>&1 || true)
        check "malicious layer ($k) gives EIO" grep -q "Input/output error" <<<"$out"
done
check "no file escaped the rootfs" test ! -e "$MNT/repos/evil/traversal/_tags/etc/shadow"
check "the malicious layer is still a readable blob" test -s "$MNT/repos/evil/huge/_tags/v1/layers/0-$(jq -r '.layers[0].digest' "$TEST_TMP/evil/huge.json")"
check "mount still healthy after malicious layers" python3 "$PLURA_SOURCE_ROOT/tests/integration/fusefs/check-rootfs.py" "$L.json" base "$BASE" "$MB/rootfs"
grep -q "not a valid tar" "$TEST_TMP/mount.log" && logged=yes || logged=no
check "a log line names the broken layer" test "$logged" = yes

# ---- concurrent readers from several processes
big=$(find "$MB/rootfs" -type f -size +10k -print -quit)
want=$(sha256_of "$big")
pids=()
for i in $(seq 8); do
        ( for _ in $(seq 5); do
                [ "$(sha256_of "$big")" = "$want" ] || exit 1
                [ "sha256:$(sha256_of "$MB/manifest.json")" = "$BASE" ] || exit 1
                ls -R "$MNT/repos/test" >/dev/null || exit 1
          done ) &
        pids+=($!)
done
bad=0
for p in "${pids[@]}"; do wait "$p" || bad=1; done
check "8 concurrent reader processes see consistent bytes" test "$bad" = 0

# ---- clean unmount on SIGTERM
kill -TERM "$MOUNT_PID"
for _ in $(seq 100); do kill -0 "$MOUNT_PID" 2>/dev/null || break; sleep 0.05; done
check "plura mount exits on SIGTERM" bash -c "! kill -0 $MOUNT_PID 2>/dev/null"
check "no stale mount left" bash -c "! mountpoint -q '$MNT'"
check "mountpoint usable again" ls "$MNT"

# ---- plura serve --mount: the same view in-process (index in layer_fs), unmounted on stop
stop_server
MNT2="$TEST_TMP/mnt2"
mkdir -p "$MNT2"
TEST_MOUNTS+=("$MNT2")
start_server "$DATA" "" --mount "$MNT2"
for _ in $(seq 100); do [ -e "$MNT2/README" ] && break; sleep 0.05; done
check "serve --mount: rootfs of base" python3 "$PLURA_SOURCE_ROOT/tests/integration/fusefs/check-rootfs.py" "$L.json" base "$BASE" "$MNT2/repos/test/base/_manifests/$BASE/rootfs"
push "oci:$L:base" "docker://$HOSTPORT/inproc/now:v1"
check "serve --mount: a push is visible at once" test -f "$MNT2/repos/inproc/now/_tags/v1/manifest.json"
stop_server
check "serve --mount: unmounted when the server stops" bash -c "! mountpoint -q '$MNT2'"

done_testing
