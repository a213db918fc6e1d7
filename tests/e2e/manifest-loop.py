#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Pushes distinct manifests in a tight loop until the server goes away (or --count).

  manifest-loop.py URL REPO MANIFEST_FILE --acked FILE [--prefix P] [--count N]

Each iteration PUTs the manifest with an added annotation (so every digest differs) to
tag P-<i>, over one keep-alive connection. Every 201 whose Docker-Content-Digest is the
sha256 of the bytes sent is appended to --acked as "REPO TAG DIGEST" and flushed: these
writes were acknowledged, so they must survive a kill -9 of the server.
"""

import argparse
import hashlib
import http.client
import json
import sys
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("repo")
    ap.add_argument("manifest")
    ap.add_argument("--acked", required=True)
    ap.add_argument("--prefix", default="t")
    ap.add_argument("--count", type=int, default=1000000)
    a = ap.parse_args()

    base = json.load(open(a.manifest))
    mt = base["mediaType"]
    u = urllib.parse.urlsplit(a.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    acked = open(a.acked, "a")
    n = 0
    for i in range(a.count):
        m = dict(base)
        m["annotations"] = dict(base.get("annotations", {}), **{"e2e.crash.seq": "%s-%d" % (a.prefix, i)})
        body = json.dumps(m, separators=(",", ":")).encode()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        tag = "%s-%d" % (a.prefix, i)
        try:
            conn.request("PUT", "/v2/%s/manifests/%s" % (a.repo, tag), body, {"Content-Type": mt})
            r = conn.getresponse()
            r.read()
        except (OSError, http.client.HTTPException):
            break
        if r.status != 201:
            print("PUT %s: %d" % (tag, r.status), file=sys.stderr)
            return 1
        if r.getheader("Docker-Content-Digest") != digest:
            print("PUT %s: Docker-Content-Digest %s, expected %s" % (tag, r.getheader("Docker-Content-Digest"), digest),
                  file=sys.stderr)
            return 1
        acked.write("%s %s %s\n" % (a.repo, tag, digest))
        acked.flush()  # only the server is killed; the page cache is enough
        n += 1
    print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
