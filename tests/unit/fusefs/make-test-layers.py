#!/usr/bin/env python3
# Writes the layers test-gzip-index parses: make-test-layers.py OUTDIR
# ~12 MiB of tar with poorly compressible members and a marker file at the very end, as one
# gzip member, as two gzip members (the tar cut in the middle) and as zstd.
import gzip, io, os, random, subprocess, sys, tarfile

os.makedirs(sys.argv[1], exist_ok=True)
os.chdir(sys.argv[1])
random.seed(1)
with tarfile.open("layer.tar", "w", format=tarfile.PAX_FORMAT) as tf:
    for i in range(48):
        data = random.randbytes(4096) * 16 + random.randbytes(200000)
        ti = tarfile.TarInfo("d%02d/file.bin" % i)
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    last = b"the last file\n" * 300
    open("last.bin", "wb").write(last)
    ti = tarfile.TarInfo("z/last.bin")
    ti.size = len(last)
    tf.addfile(ti, io.BytesIO(last))
raw = open("layer.tar", "rb").read()
open("layer.tar.gz", "wb").write(gzip.compress(raw, 6))
h = len(raw) // 2
open("layer-multi.tar.gz", "wb").write(gzip.compress(raw[:h]) + gzip.compress(raw[h:]))
subprocess.run(["zstd", "-q", "-f", "layer.tar", "-o", "layer.tar.zst"], check=True)
