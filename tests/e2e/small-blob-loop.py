#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Pushes distinct small blobs from several clients until the server goes away, or checks them.

  small-blob-loop.py push URL REPO --acked FILE [--clients N] [--size BYTES] [--prefix P] [--no-single]
  small-blob-loop.py verify URL --acked FILE

push: N threads, each over its own keep-alive connection, push distinct blobs to REPO<i>,
alternating POST + PUT ?digest= and a single-request POST ?digest= with the body (which
Distribution does not implement: --no-single pushes with POST + PUT only). Every 201
whose Docker-Content-Digest is the sha256 of the bytes sent is appended to --acked as
"REPO DIGEST SEED" and flushed: acknowledged, so it must survive a kill -9 of the server.
verify: every acknowledged blob answers GET with exactly its bytes; prints how many.
"""

import argparse
import hashlib
import http.client
import sys
import threading
import urllib.parse


def content(seed, size):
    out = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    while len(out) < size:
        out += block
        block = hashlib.sha256(block).digest()
    return bytes(out[:size])


def connect(url):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=30)


def push_one(conn, repo, body, digest, single):
    hdrs = {"Content-Type": "application/octet-stream", "Content-Length": str(len(body))}
    if single:
        conn.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, digest), body, hdrs)
        r = conn.getresponse()
        r.read()
        return r
    conn.request("POST", "/v2/%s/blobs/uploads/" % repo, b"", {"Content-Length": "0"})
    r = conn.getresponse()
    r.read()
    if r.status != 202:
        return r
    loc = r.getheader("Location")
    loc = urllib.parse.urlsplit(loc)
    path = loc.path + ("?" + loc.query + "&" if loc.query else "?") + "digest=" + digest
    conn.request("PUT", path, body, hdrs)
    r = conn.getresponse()
    r.read()
    return r


def pusher(a, i, acked, lock, errors):
    conn = connect(a.url)
    repo = "%s%d" % (a.repo, i)
    n = 0
    while True:
        seed = "%s-%d-%d" % (a.prefix, i, n)
        body = content(seed, a.size)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        try:
            r = push_one(conn, repo, body, digest, a.single and n % 2 == 1)
        except (OSError, http.client.HTTPException):
            return
        if r.status != 201 or r.getheader("Docker-Content-Digest") != digest:
            errors.append("%s %s: %d %s" % (repo, digest, r.status, r.getheader("Docker-Content-Digest")))
            return
        with lock:
            acked.write("%s %s %s\n" % (repo, digest, seed))
            acked.flush()  # only the server is killed; the page cache is enough
        n += 1


def verify(a):
    conn = connect(a.url)
    n, bad = 0, 0
    for line in open(a.acked):
        p = line.split()
        if len(p) != 3:
            continue
        repo, digest, seed = p
        conn.request("GET", "/v2/%s/blobs/%s" % (repo, digest))
        r = conn.getresponse()
        body = r.read()
        if r.status != 200 or "sha256:" + hashlib.sha256(body).hexdigest() != digest or body != content(seed, len(body)):
            print("acknowledged blob %s in %s: status %d, %d bytes" % (digest, repo, r.status, len(body)), file=sys.stderr)
            bad += 1
        n += 1
    print(n)
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["push", "verify"])
    ap.add_argument("url")
    ap.add_argument("repo", nargs="?")
    ap.add_argument("--acked", required=True)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--prefix", default="s")
    ap.add_argument("--no-single", dest="single", action="store_false")
    a = ap.parse_args()
    if a.mode == "verify":
        return verify(a)
    acked = open(a.acked, "a")
    lock = threading.Lock()
    errors = []
    ts = [threading.Thread(target=pusher, args=(a, i, acked, lock, errors)) for i in range(a.clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for e in errors:
        print(e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
