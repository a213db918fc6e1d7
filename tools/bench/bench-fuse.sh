#!/usr/bin/env bash
# FUSE view benchmarks (not part of make test). Usage: tools/bench/bench-fuse.sh [BUILD_DIR]
#  1. sequential read of a 1 GiB blob through the mount vs reading the blob file directly
#  2. find over a mount with 10,000 repositories x 10 tags (entries/s)
#  3. rootfs: index build throughput of a 500 MB gzip layer, then the first cat of a 4 KiB file
#     near its end on a fresh mount (index already built) vs tar -xzOf of the same file
# Results are printed as a markdown table. BENCH_FUSE_PARTS="blob rootfs find" (the default) picks parts.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
PLURA=$build/tools/plura
W=$(mktemp -d /tmp/plura-bench-fuse.XXXXXX)
pids=(); mounts=()
cleanup() {
        for m in "${mounts[@]:-}"; do [ -n "$m" ] && { fusermount3 -u "$m" 2>/dev/null || true; }; done
        for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
        sleep 0.5; rm -rf "$W"
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
mount_view() { # data mnt
        mkdir -p "$2"
        "$PLURA" mount --data "$1" "$2" >>"$W/mount.log" 2>&1 &
        pids+=($!); mounts+=("$2")
        for _ in $(seq 200); do [ -e "$2/README" ] && return 0; sleep 0.05; done
        echo "mount failed" >&2; cat "$W/mount.log" >&2; exit 1
}
umount_view() { fusermount3 -u "$1"; sleep 0.3; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

# ---- server
"$PLURA" serve --listen 127.0.0.1:0 --data "$W/data" --ready-file "$W/ready" >"$W/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do [ -s "$W/ready" ] && break; sleep 0.05; done
URL="http://$(head -n1 "$W/ready")"
upload() { # repo file -> digest
        local d="sha256:$(sha256sum "$2" | cut -d' ' -f1)"
        # streamed from stdin with a Content-Length; "Transfer-Encoding:" stops curl from adding
        # "chunked" as well (a request with both is refused: 400)
        curl -sf -o /dev/null -X POST -H "Content-Type: application/octet-stream" -H "Content-Length: $(stat -c %s "$2")" \
                -H "Transfer-Encoding:" -T - "$URL/v2/$1/blobs/uploads/?digest=$d" <"$2" || { echo "upload of $2 failed" >&2; exit 1; }
        echo "$d"
}

PARTS=" ${BENCH_FUSE_PARTS:-blob rootfs find} "
part() { [[ "$PARTS" == *" $1 "* ]]; }

# ---- 1. 1 GiB blob
if part blob; then
head -c 1073741824 /dev/urandom >"$W/big.bin"
BIG=$(upload bench/big "$W/big.bin")
rm -f "$W/big.bin"
mount_view "$W/data" "$W/mnt"
blobfile="$W/data/blobs/sha256/${BIG:7:2}/${BIG:7}"
[ -f "$blobfile" ] || blobfile=$(find "$W/data/blobs" -name "${BIG:7}" | head -n1)
cat "$blobfile" >/dev/null; cat "$W/mnt/blobs/sha256/${BIG:7}" >/dev/null   # warm both
t0=$(now); cat "$blobfile" >/dev/null; t1=$(now)
direct=$(echo "1024 / $(secs $t0 $t1)" | bc -l)
t0=$(now); cat "$W/mnt/blobs/sha256/${BIG:7}" >/dev/null; t1=$(now)
viafuse=$(echo "1024 / $(secs $t0 $t1)" | bc -l)
t0=$(now); dd if="$W/mnt/blobs/sha256/${BIG:7}" of=/dev/null bs=1M status=none; t1=$(now)
viafuse_dd=$(echo "1024 / $(secs $t0 $t1)" | bc -l)
umount_view "$W/mnt"
fi

# ---- 3. 500 MB gzip layer with a 4 KiB file at the end
if part rootfs; then
python3 - "$W/layer" <<'PY'
import gzip, io, os, sys, tarfile, zlib
out = sys.argv[1]; os.makedirs(out, exist_ok=True)
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
    for i in range(100):
        data = os.urandom(5 * 1024 * 1024)
        ti = tarfile.TarInfo("data/blob%03d.bin" % i); ti.size = len(data); tf.addfile(ti, io.BytesIO(data))
    small = (b"near the end of a large layer\n" * 200)[:4096]
    open(os.path.join(out, "small.txt"), "wb").write(small)
    ti = tarfile.TarInfo("etc/small.txt"); ti.size = len(small); tf.addfile(ti, io.BytesIO(small))
with open(os.path.join(out, "layer.tar.gz"), "wb") as f:
    f.write(gzip.compress(raw.getvalue(), 1))
open(os.path.join(out, "config.json"), "w").write('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')
PY
LAYER_BYTES=$(stat -c %s "$W/layer/layer.tar.gz")
C=$(upload bench/rootfs "$W/layer/config.json")
LD=$(upload bench/rootfs "$W/layer/layer.tar.gz")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}' \
        "$C" "$(stat -c %s "$W/layer/config.json")" "$LD" "$LAYER_BYTES" >"$W/layer/manifest.json"
curl -sf -o /dev/null -X PUT -H "Content-Type: application/vnd.oci.image.manifest.v1+json" --data-binary "@$W/layer/manifest.json" "$URL/v2/bench/rootfs/manifests/v1"
mount_view "$W/data" "$W/mnt"
t0=$(now); ls "$W/mnt/repos/bench/rootfs/_tags/v1/rootfs/etc" >/dev/null; t1=$(now)
build_s=$(secs $t0 $t1)
build_mbs=$(echo "$LAYER_BYTES / 1048576 / $build_s" | bc -l)
umount_view "$W/mnt"
drop_caches
mount_view "$W/data" "$W/mnt"
ls "$W/mnt/repos/bench/rootfs/_tags/v1/" >/dev/null    # mount is up; rootfs not touched yet
t0=$(now); cat "$W/mnt/repos/bench/rootfs/_tags/v1/rootfs/etc/small.txt" >"$W/small.out"; t1=$(now)
first_cat_ms=$(echo "($(secs $t0 $t1)) * 1000" | bc -l)
cmp -s "$W/small.out" "$W/layer/small.txt" || { echo "small.txt differs" >&2; exit 1; }
umount_view "$W/mnt"
t0=$(now); tar -xzOf "$W/layer/layer.tar.gz" etc/small.txt >/dev/null; t1=$(now)
tar_ms=$(echo "($(secs $t0 $t1)) * 1000" | bc -l)
fi

# ---- 2. find over 10,000 repos x 10 tags (populated through the storage layer, server stopped)
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true; pids=("${pids[@]:1}")
if part find; then
cc -O2 -D_GNU_SOURCE -I"$src" -I"$src/common" "$src/tools/bench/fuse-populate.c" \
        "$build/storage/libstorage.a" "$build/common/libcommon.a" -lrocksdb -lcrypto -ljansson -lzstd -lpthread -lm -o "$W/populate"
t0=$(now); "$W/populate" "$W/data2" 10000 10; t1=$(now)
populate_s=$(secs $t0 $t1)
mount_view "$W/data2" "$W/mnt2"
t0=$(now); entries=$(find "$W/mnt2/repos" -path '*/rootfs' -prune -o -print | wc -l); t1=$(now)
find_s=$(secs $t0 $t1)
find_rate=$(echo "$entries / $find_s" | bc -l)
t0=$(now); entries2=$(find "$W/mnt2/repos" -path '*/rootfs' -prune -o -print | wc -l); t1=$(now)
find2_rate=$(echo "$entries2 / $(secs $t0 $t1)" | bc -l)
umount_view "$W/mnt2"
fi

printf '| measurement | result | target |\n|---|---|---|\n'
if part blob; then
printf '| 1 GiB blob, cat of the blob file (page cache warm) | %.0f MiB/s | |\n' "$direct"
printf '| 1 GiB blob, cat through the mount (splice) | %.0f MiB/s (%.0f %%) | >= 70 %% |\n' "$viafuse" "$(echo "100 * $viafuse / $direct" | bc -l)"
printf '| 1 GiB blob, dd bs=1M through the mount | %.0f MiB/s (%.0f %%) | |\n' "$viafuse_dd" "$(echo "100 * $viafuse_dd / $direct" | bc -l)"
fi
if part find; then
printf '| find over 10,000 repos x 10 tags (%d entries, cold) | %.0f entries/s | >= 20,000/s |\n' "$entries" "$find_rate"
printf '| same find again (kernel dentry cache warm) | %.0f entries/s | |\n' "$find2_rate"
printf '| populating 10,000 repos x 10 tags through storage | %.1f s | |\n' "$populate_s"
fi
if part rootfs; then
printf '| index build of a %.0f MB gzip layer (first ls of rootfs/) | %.2f s, %.0f MB/s | |\n' "$(echo "$LAYER_BYTES / 1000000" | bc -l)" "$build_s" "$build_mbs"
printf '| first cat of a 4 KiB file at the end of that layer, fresh mount, page cache dropped | %.1f ms | < 50 ms |\n' "$first_cat_ms"
printf '| tar -xzOf of the same file | %.0f ms | |\n' "$tar_ms"
fi
