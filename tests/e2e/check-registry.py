#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Walks a registry over HTTP and verifies that everything visible is whole.

  check-registry.py URL [--expect FILE] [--quiet]

For every repository of the catalog (paginated), every tag of its tags list (paginated):
the manifest GET answers 200, its body hashes to Docker-Content-Digest and to the digest
GET by digest returns the same bytes; an index's children resolve the same way; every
config and layer GET answers with exactly `size` bytes that hash to the digest (no blob
visible whose content does not verify). --expect FILE lists "repo tag digest" lines that
must all be present (writes the server acknowledged before a crash). Exit 0 when
consistent, 1 otherwise; a summary goes to stdout as JSON.
"""

import argparse
import hashlib
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")


class Checker:
    def __init__(self, url):
        self.url = url.rstrip("/")
        self.errors = []
        self.stats = {"repositories": 0, "tags": 0, "manifests": 0, "blobs": 0, "blob_bytes": 0}
        self.seen_blobs = set()
        self.seen_manifests = set()
        self.ordered = True

    def err(self, msg):
        self.errors.append(msg)

    def get(self, path, accept=None):
        req = urllib.request.Request(self.url + path, headers={"Accept": accept} if accept else {})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def paginate(self, path, key):
        out = []
        nxt = path
        for _ in range(10000):
            st, hdr, body = self.get(nxt)
            if st != 200:
                self.err("GET %s: %d %s" % (nxt, st, body[:200]))
                return out
            out += json.loads(body).get(key) or []
            link = hdr.get("Link") or hdr.get("link")
            if not link:
                return out
            nxt = link.split(";")[0].strip().strip("<>")
            if nxt.startswith("http"):
                nxt = urllib.parse.urlsplit(nxt)._replace(scheme="", netloc="").geturl()
        return out

    def blob(self, repo, desc):
        d = desc["digest"]
        if (repo, d) in self.seen_blobs:
            return
        self.seen_blobs.add((repo, d))
        st, _, body = self.get("/v2/%s/blobs/%s" % (repo, d))
        if st != 200:
            self.err("%s blob %s: GET %d" % (repo, d, st))
            return
        h = "sha256:" + hashlib.sha256(body).hexdigest()
        if h != d or len(body) != desc["size"]:
            self.err("%s blob %s: content hashes to %s, %d bytes (descriptor says %d)" % (repo, d, h, len(body), desc["size"]))
        self.stats["blobs"] += 1
        self.stats["blob_bytes"] += len(body)

    def manifest(self, repo, ref, want=None):
        st, hdr, body = self.get("/v2/%s/manifests/%s" % (repo, ref), ACCEPT)
        if st != 200:
            self.err("%s manifest %s: GET %d" % (repo, ref, st))
            return None
        h = "sha256:" + hashlib.sha256(body).hexdigest()
        dcd = hdr.get("Docker-Content-Digest") or hdr.get("docker-content-digest")
        if dcd != h:
            self.err("%s manifest %s: body hashes to %s, Docker-Content-Digest %s" % (repo, ref, h, dcd))
        if want and h != want:
            self.err("%s manifest %s: digest %s, expected %s" % (repo, ref, h, want))
        if (repo, h) in self.seen_manifests:
            return h
        self.seen_manifests.add((repo, h))
        self.stats["manifests"] += 1
        if not ref.startswith("sha256:"):
            st2, _, body2 = self.get("/v2/%s/manifests/%s" % (repo, h), ACCEPT)
            if st2 != 200 or body2 != body:
                self.err("%s manifest %s: GET by digest %s gives %d / different bytes" % (repo, ref, h, st2))
        try:
            m = json.loads(body)
        except ValueError:
            self.err("%s manifest %s: not JSON" % (repo, ref))
            return h
        mt = m.get("mediaType") or hdr.get("Content-Type", "")
        if mt in INDEX_TYPES or "manifests" in m:
            for child in m.get("manifests", []):
                self.manifest(repo, child["digest"], child["digest"])
        else:
            if "config" in m:
                self.blob(repo, m["config"])
            for l in m.get("layers", []):
                self.blob(repo, l)
        return h

    def run(self, expect):
        repos = self.paginate("/v2/_catalog?n=100", "repositories")
        self.stats["repositories"] = len(repos)
        if (self.ordered and repos != sorted(repos)) or len(set(repos)) != len(repos):
            self.err("catalog not sorted/unique: %s" % repos[:20])
        tags_of = {}
        for repo in repos:
            tags = self.paginate("/v2/%s/tags/list?n=100" % repo, "tags")
            if (self.ordered and tags != sorted(tags)) or len(set(tags)) != len(tags):
                self.err("%s tags not sorted/unique" % repo)
            tags_of[repo] = set(tags)
            self.stats["tags"] += len(tags)
            for t in tags:
                self.manifest(repo, t)
        for repo, tag, digest in expect:
            if tag not in tags_of.get(repo, set()):
                self.err("acknowledged %s:%s missing from the tags list" % (repo, tag))
            self.manifest(repo, tag, digest)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--expect")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--no-order", action="store_true", help="do not require lexically ordered lists")
    a = ap.parse_args()
    expect = []
    if a.expect:
        for line in open(a.expect):
            p = line.split()
            if len(p) == 3:
                expect.append(tuple(p))
    c = Checker(a.url)
    c.ordered = not a.no_order
    c.run(expect)
    out = dict(c.stats, expected=len(expect), errors=c.errors[:50], n_errors=len(c.errors))
    if not a.quiet or c.errors:
        print(json.dumps(out))
    return 1 if c.errors else 0


if __name__ == "__main__":
    sys.exit(main())
