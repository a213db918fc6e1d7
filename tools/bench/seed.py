#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Seeds a registry over HTTP with REPOS repositories x TAGS tags, the same way for every
registry so the read benchmarks compare like with like.

  seed.py URL [--repos 1000] [--tags 10] [--layers 3] [--threads 8] [--prefix bench/r]

Repository <prefix>0000 gets one config and LAYERS small layer blobs (monolithic
POST + PUT); every other repository mounts them from it (POST ?mount=&from=). Each tag
t0..t<TAGS-1> of each repository is a distinct OCI image manifest (an annotation names
the repository and tag). Prints a JSON line: counts, seconds, manifest PUTs per second.
"""

import argparse
import hashlib
import http.client
import json
import queue
import random
import sys
import threading
import time
import urllib.parse

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class Client:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.conn = None

    def req(self, method, path, body=None, headers=None):
        for attempt in range(3):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                self.conn.request(method, path, body, headers or {})
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, r, data
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise RuntimeError("unreachable")


def location_path(loc):
    if loc.startswith("http"):
        u = urllib.parse.urlsplit(loc)
        return u.path + ("?" + u.query if u.query else "")
    return loc


def push_blob(c, repo, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    st, r, body = c.req("POST", "/v2/%s/blobs/uploads/" % repo)
    if st != 202:
        raise RuntimeError("POST upload %s: %d %s" % (repo, st, body[:200]))
    loc = location_path(r.getheader("Location"))
    sep = "&" if "?" in loc else "?"
    st, r, body = c.req("PUT", "%s%sdigest=%s" % (loc, sep, urllib.parse.quote(d)), data,
                        {"Content-Type": "application/octet-stream"})
    if st != 201:
        raise RuntimeError("PUT blob %s: %d %s" % (repo, st, body[:200]))
    return {"mediaType": "application/octet-stream", "digest": d, "size": len(data)}


def mount(c, repo, src, digest):
    st, r, body = c.req("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (repo, urllib.parse.quote(digest), urllib.parse.quote(src)))
    if st == 201:
        return
    if st == 202:  # mount refused: upload instead is not possible here (we have no bytes); fail loudly
        raise RuntimeError("mount %s into %s not done (202)" % (digest, repo))
    raise RuntimeError("mount %s: %d %s" % (repo, st, body[:200]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--repos", type=int, default=1000)
    ap.add_argument("--tags", type=int, default=10)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--prefix", default="bench/r")
    a = ap.parse_args()

    rng = random.Random(42)
    c = Client(a.url)
    first = "%s%04d" % (a.prefix, 0)
    t0 = time.monotonic()
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                         "config": {"Labels": {"bench": "plura"}}}, sort_keys=True).encode()
    cfg = push_blob(c, first, config)
    cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
    layers = []
    for i in range(a.layers):
        l = push_blob(c, first, rng.randbytes(2048 + 512 * i))
        l["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
        layers.append(l)

    work = queue.Queue()
    for r in range(a.repos):
        work.put(r)
    errors = []
    counts = {"mounts": 0, "manifests": 0}
    lock = threading.Lock()

    def worker():
        cl = Client(a.url)
        while True:
            try:
                r = work.get_nowait()
            except queue.Empty:
                return
            repo = "%s%04d" % (a.prefix, r)
            try:
                if r != 0:
                    for d in [cfg] + layers:
                        mount(cl, repo, first, d["digest"])
                    with lock:
                        counts["mounts"] += 1 + len(layers)
                for t in range(a.tags):
                    m = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": cfg, "layers": layers,
                         "annotations": {"org.opencontainers.image.ref.name": "t%d" % t, "bench.repo": repo}}
                    body = json.dumps(m, separators=(",", ":")).encode()
                    st, resp, data = cl.req("PUT", "/v2/%s/manifests/t%d" % (repo, t), body, {"Content-Type": MT_MANIFEST})
                    if st != 201:
                        raise RuntimeError("PUT manifest %s:t%d: %d %s" % (repo, t, st, data[:200]))
                    with lock:
                        counts["manifests"] += 1
            except Exception as e:  # noqa: BLE001 - report and stop this worker
                errors.append(str(e))
                return

    t1 = time.monotonic()
    ths = [threading.Thread(target=worker) for _ in range(a.threads)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    t2 = time.monotonic()
    out = dict(counts, repos=a.repos, tags=a.tags, seconds=round(t2 - t0, 2),
               requests_per_s=round((counts["mounts"] + counts["manifests"]) / max(t2 - t1, 1e-9), 1),
               errors=errors[:5])
    print(json.dumps(out))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
