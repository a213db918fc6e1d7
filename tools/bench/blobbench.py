#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Large blob push benchmark: CONCURRENCY workers push the given files as blobs.

  blobbench.py URL REPO --mode mono|chunked [--chunk 8M] [--concurrency 4] FILE...

Files are named by their sha256 hex (gen: head -c 64M /dev/urandom, then rename). mono:
POST /v2/REPO/blobs/uploads/ then one PUT ?digest= with the whole body. chunked: POST,
PATCHes of --chunk bytes with Content-Range (following Location), then PUT ?digest= with
no body. Files are read into memory first, so the client does not measure the disk.
Prints a JSON line: bytes, seconds, MB/s, blobs/s, per-blob latency p50/p99.
"""

import argparse
import hashlib
import http.client
import json
import os
import queue
import sys
import threading
import time
import urllib.parse


def loc_path(loc):
    if loc.startswith("http"):
        u = urllib.parse.urlsplit(loc)
        return u.path + ("?" + u.query if u.query else "")
    return loc


def with_digest(loc, d):
    return loc + ("&" if "?" in loc else "?") + "digest=" + urllib.parse.quote(d)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("repo")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--mode", choices=["mono", "chunked"], default="mono")
    ap.add_argument("--chunk", default="8M")
    ap.add_argument("--concurrency", type=int, default=4)
    a = ap.parse_args()
    chunk = int(a.chunk.rstrip("M")) << 20 if a.chunk.endswith("M") else int(a.chunk)

    u = urllib.parse.urlsplit(a.url)
    blobs = []
    for f in a.files:
        data = open(f, "rb").read()
        hexd = os.path.basename(f)
        if len(hexd) != 64:
            hexd = hashlib.sha256(data).hexdigest()
        blobs.append(("sha256:" + hexd, data))
    work = queue.Queue()
    for b in blobs:
        work.put(b)
    lat, errors = [], []
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300, blocksize=1 << 20)

        def req(method, path, body=None, headers=None):
            conn.request(method, path, body, headers or {})
            r = conn.getresponse()
            r.read()
            return r

        while True:
            try:
                d, data = work.get_nowait()
            except queue.Empty:
                return
            t0 = time.monotonic()
            try:
                r = req("POST", "/v2/%s/blobs/uploads/" % a.repo, b"", {"Content-Length": "0"})
                if r.status != 202:
                    raise RuntimeError("POST %d" % r.status)
                loc = loc_path(r.getheader("Location"))
                if a.mode == "mono":
                    r = req("PUT", with_digest(loc, d), memoryview(data), {"Content-Type": "application/octet-stream"})
                else:
                    off = 0
                    mv = memoryview(data)
                    while off < len(data):
                        n = min(chunk, len(data) - off)
                        r = req("PATCH", loc, mv[off:off + n], {"Content-Type": "application/octet-stream",
                                                                 "Content-Range": "%d-%d" % (off, off + n - 1)})
                        if r.status != 202:
                            raise RuntimeError("PATCH %d" % r.status)
                        loc = loc_path(r.getheader("Location"))
                        off += n
                    r = req("PUT", with_digest(loc, d), b"", {"Content-Length": "0"})
                if r.status != 201:
                    raise RuntimeError("PUT %d" % r.status)
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append("%s: %s" % (d[:19], e))
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300, blocksize=1 << 20)
                continue
            with lock:
                lat.append(time.monotonic() - t0)

    t0 = time.monotonic()
    ths = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    secs = time.monotonic() - t0
    total = sum(len(d) for _, d in blobs)
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3 if lat else 0.0
    print(json.dumps({"mode": a.mode, "blobs": len(lat), "bytes": total, "seconds": round(secs, 3),
                      "MBps": round(total / secs / 1e6, 1), "blobs_per_s": round(len(lat) / secs, 2),
                      "p50_ms": round(pct(0.5), 1), "p99_ms": round(pct(0.99), 1), "errors": errors[:5]}))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
