#!/usr/bin/env python3
"""Pushes N small images (a config + L random layers each) to an OCI registry over HTTP with
keep-alive connections on T threads, then deletes --delete-pct of the manifests by digest, so
a garbage collector has unreferenced blobs to find. Python standard library only.

usage: bench-gc-push.py URL --images N [--layers L] [--repos R] [--threads T] [--delete-pct P]
prints: pushed images, blobs, deleted manifests
"""
import argparse, hashlib, http.client, json, os, sys, threading, urllib.parse

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--images", type=int, default=2500)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--repos", type=int, default=25)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--delete-pct", type=int, default=50)
    ap.add_argument("--layer-size", type=int, default=1024)
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    lock = threading.Lock()
    state = {"next": 0, "blobs": 0, "deleted": 0, "errors": 0}

    def conn():
        return http.client.HTTPConnection(u.hostname, u.port, timeout=60)

    def req(c, method, path, body=None, headers=None):
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, data

    def worker():
        c = conn()
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= a.images:
                break
            repo = "bench/r%d" % (i % a.repos)
            blobs = [json.dumps({"architecture": "amd64", "os": "linux", "n": i}).encode()]
            blobs += [os.urandom(a.layer_size) for _ in range(a.layers)]
            descs = []
            for b in blobs:
                d = "sha256:" + hashlib.sha256(b).hexdigest()
                # POST + monolithic PUT (Distribution 2.8 has no single-POST upload)
                c.request("POST", "/v2/%s/blobs/uploads/" % repo, body=b"", headers={"Content-Length": "0"})
                r = c.getresponse()
                r.read()
                loc = r.getheader("Location") or ""
                lu = urllib.parse.urlparse(loc)
                path = lu.path + ("?" + lu.query + "&" if lu.query else "?") + "digest=" + d
                st, _ = req(c, "PUT", path, b, {"Content-Type": "application/octet-stream", "Content-Length": str(len(b))})
                if r.status != 202 or st != 201:
                    with lock:
                        state["errors"] += 1
                descs.append({"digest": d, "size": len(b)})
            m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "config": dict(mediaType="application/vnd.oci.image.config.v1+json", **descs[0]),
                 "layers": [dict(mediaType="application/vnd.oci.image.layer.v1.tar", **d) for d in descs[1:]]}
            body = json.dumps(m).encode()
            md = "sha256:" + hashlib.sha256(body).hexdigest()
            st, _ = req(c, "PUT", "/v2/%s/manifests/t%d" % (repo, i), body,
                        {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
            if st != 201:
                with lock:
                    state["errors"] += 1
                continue
            with lock:
                state["blobs"] += len(blobs)
            if (i * 7919) % 100 < a.delete_pct:
                st, _ = req(c, "DELETE", "/v2/%s/manifests/%s" % (repo, md))
                with lock:
                    if st == 202:
                        state["deleted"] += 1
                    else:
                        state["errors"] += 1

    ts = [threading.Thread(target=worker) for _ in range(a.threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("images %d blobs %d deleted %d errors %d" % (a.images, state["blobs"], state["deleted"], state["errors"]))
    return 1 if state["errors"] else 0

if __name__ == "__main__":
    sys.exit(main())
