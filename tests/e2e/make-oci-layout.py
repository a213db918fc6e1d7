#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generate an OCI image layout with real tar.gz layers, for end-to-end tests and benchmarks.

Python standard library only. Deterministic for a given --seed and set of options.

The layout holds these refs (index.json annotation org.opencontainers.image.ref.name):

  base    one image: layers base-fs, shared, changes, payload
  app     one image: layers base-fs (the same blob as in `base`), shared, app
  multi   an image index with two platforms, linux/amd64 and linux/arm64; each platform
          image has base-fs plus its own arch layer
  big     (only with --big-size N) one image: base-fs plus one layer of N bytes of
          incompressible random data, split into --big-files files

With --format docker, every manifest, config, layer and index uses the Docker schema 2
media types (the manifest list for `multi`). skopeo 1.9's oci: transport refuses those
media types in index.json, so each ref is also written as a skopeo `dir:` layout in
OUT/dir/REF: `skopeo copy [--all] dir:OUT/dir/REF docker://...` pushes Docker schema 2.

Layer contents exercise what a rootfs view must get right: a file `etc/os-release`,
directories, files that a later layer overwrites, a whiteout (`.wh.<name>`) that deletes a
lower file, an opaque directory marker (`.wh..wh..opq`) that hides a lower directory's
contents, symlinks (relative and absolute) and a hard link.

--describe FILE writes JSON describing each ref: descriptors, every layer's tar entries and
the merged root filesystem of each image (whiteouts applied), with sizes and sha256 of every
regular file. Use it to check a rootfs view or a round trip.

Examples:
  make-oci-layout.py --out /tmp/layout --seed 1 --describe /tmp/layout.json
  skopeo copy oci:/tmp/layout:base docker://127.0.0.1:5000/test/base:one --dest-tls-verify=false
  make-oci-layout.py --out /tmp/big --refs big --big-size 500M     # ~500 MB image for the bench
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import sys
import tarfile

MTIME = 1700000000  # fixed timestamps keep the output deterministic
CREATED = "2023-11-14T22:13:20Z"

MT = {
    "oci": {
        "manifest": "application/vnd.oci.image.manifest.v1+json",
        "index": "application/vnd.oci.image.index.v1+json",
        "config": "application/vnd.oci.image.config.v1+json",
        "layer": "application/vnd.oci.image.layer.v1.tar+gzip",
    },
    "docker": {
        "manifest": "application/vnd.docker.distribution.manifest.v2+json",
        "index": "application/vnd.docker.distribution.manifest.list.v2+json",
        "config": "application/vnd.docker.container.image.v1+json",
        "layer": "application/vnd.docker.image.rootfs.diff.tar.gzip",
    },
}
OCI_INDEX = MT["oci"]["index"]


def parse_size(s):
    s = s.strip().upper()
    mult = 1
    for suffix, m in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)):
        if s.endswith(suffix + "IB"):
            s, mult = s[:-3], m
            break
        if s.endswith(suffix + "B") or s.endswith(suffix):
            s, mult = s[: -len(suffix + "B") if s.endswith(suffix + "B") else -1], m
            break
    return int(float(s) * mult)


class HashingWriter:
    """File-like sink that hashes and counts what passes through to `inner`."""

    def __init__(self, inner):
        self.inner = inner
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        return self.inner.write(b)

    def flush(self):
        pass

    def close(self):
        pass


class RandomReader:
    """Deterministic incompressible bytes, read(n) like a file; also hashes what it gives out."""

    def __init__(self, rng, size):
        self.rng = rng
        self.left = size
        self.h = hashlib.sha256()

    def read(self, n=-1):
        if n is None or n < 0 or n > self.left:
            n = self.left
        self.left -= n
        b = self.rng.randbytes(n) if n else b""
        self.h.update(b)
        return b


class Blobs:
    def __init__(self, root):
        self.dir = os.path.join(root, "blobs", "sha256")
        os.makedirs(self.dir, exist_ok=True)
        self.all = set()

    def put_bytes(self, data):
        d = hashlib.sha256(data).hexdigest()
        p = os.path.join(self.dir, d)
        if not os.path.exists(p):
            with open(p + ".tmp", "wb") as f:
                f.write(data)
            os.replace(p + ".tmp", p)
        self.all.add("sha256:" + d)
        return {"digest": "sha256:" + d, "size": len(data)}

    def put_json(self, obj, media_type):
        # canonical-ish JSON: sorted keys, no whitespace; the digest is over exactly these bytes
        data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
        desc = self.put_bytes(data)
        return dict(mediaType=media_type, **desc), data


# ----------------------------------------------------------------- layers

def entry(path, kind, data=b"", mode=None, target=None, big=None):
    """A tar entry. kind: file, dir, symlink, hardlink. big=(rng, size) streams random data."""
    if mode is None:
        mode = {"file": 0o644, "dir": 0o755, "symlink": 0o777, "hardlink": 0o644}[kind]
    return {"path": path, "kind": kind, "data": data, "mode": mode, "target": target, "big": big}


def write_layer(blobs, name, entries, media_type, level):
    """Writes entries as a gzip'ed tar blob. Returns (descriptor, diff_id, described entries)."""
    tmp = os.path.join(blobs.dir, ".layer-%s.tmp" % name)
    described = []
    with open(tmp, "wb") as raw:
        comp = HashingWriter(raw)
        # mtime=0 and no file name in the gzip header keep the blob deterministic
        with gzip.GzipFile(filename="", mode="wb", fileobj=comp, mtime=0, compresslevel=level) as gz:
            tarsink = HashingWriter(gz)
            with tarfile.open(fileobj=tarsink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for e in entries:
                    ti = tarfile.TarInfo(e["path"])
                    ti.mtime = MTIME
                    ti.mode = e["mode"]
                    ti.uid = ti.gid = 0
                    ti.uname = ti.gname = "root"
                    d = {"path": e["path"], "type": e["kind"], "mode": e["mode"]}
                    if e["kind"] == "dir":
                        ti.type = tarfile.DIRTYPE
                        tar.addfile(ti)
                    elif e["kind"] == "symlink":
                        ti.type = tarfile.SYMTYPE
                        ti.linkname = e["target"]
                        d["target"] = e["target"]
                        tar.addfile(ti)
                    elif e["kind"] == "hardlink":
                        ti.type = tarfile.LNKTYPE
                        ti.linkname = e["target"]
                        d["target"] = e["target"]
                        tar.addfile(ti)
                    elif e["big"] is not None:
                        rng, size = e["big"]
                        ti.size = size
                        rr = RandomReader(rng, size)
                        tar.addfile(ti, rr)
                        d["size"] = size
                        d["sha256"] = rr.h.hexdigest()
                    else:
                        ti.size = len(e["data"])
                        tar.addfile(ti, io.BytesIO(e["data"]))
                        d["size"] = len(e["data"])
                        d["sha256"] = hashlib.sha256(e["data"]).hexdigest()
                    described.append(d)
    hexd = comp.h.hexdigest()
    final = os.path.join(blobs.dir, hexd)
    os.replace(tmp, final)
    blobs.all.add("sha256:" + hexd)
    desc = {"mediaType": media_type, "digest": "sha256:" + hexd, "size": comp.n}
    return desc, "sha256:" + tarsink.h.hexdigest(), described


def os_release(version, arch):
    return (
        'NAME="Plura Test Linux"\n'
        "ID=plura-test\n"
        "VERSION_ID=%s\n"
        'PRETTY_NAME="Plura Test Linux %s (%s)"\n'
        "HOME_URL=https://example.invalid/plura\n" % (version, version, arch)
    ).encode()


def base_fs_entries(rng, arch="any"):
    tool = rng.randbytes(3000)
    return [
        entry("bin", "dir"),
        entry("bin/tool", "file", tool, 0o755),
        entry("bin/tool-hardlink", "hardlink", mode=0o755, target="bin/tool"),
        entry("bin/sh", "symlink", target="tool"),
        entry("etc", "dir"),
        entry("etc/os-release", "file", os_release("1.0", arch)),
        entry("etc/hostname", "file", b"plura-test\n"),
        entry("etc/config.txt", "file", b"version=1\nmode=base\n"),
        entry("etc/issue", "file", b"Plura Test Linux \\n \\l\n"),
        entry("etc/motd", "symlink", target="/etc/issue"),
        entry("usr", "dir"),
        entry("usr/lib", "dir"),
        entry("usr/lib/libplura.so.1", "file", rng.randbytes(5000), 0o755),
        entry("usr/lib/libplura.so", "symlink", target="libplura.so.1"),
        entry("var", "dir"),
        entry("var/cache", "dir"),
        entry("var/cache/old.txt", "file", b"this file is deleted by a whiteout in a later layer\n"),
        entry("var/cache/keep.txt", "file", b"this file stays\n"),
        entry("opt", "dir"),
        entry("opt/data", "dir"),
        entry("opt/data/a.txt", "file", b"hidden by the opaque directory above\n"),
        entry("opt/data/sub", "dir"),
        entry("opt/data/sub/b.txt", "file", b"hidden too\n"),
        entry("README", "file", b"plura test image, generated by tests/e2e/make-oci-layout.py\n"),
    ]


def shared_entries(rng, size):
    return [
        entry("usr/share", "dir"),
        entry("usr/share/plura", "dir"),
        entry("usr/share/plura/shared.txt", "file", b"this layer is shared between two images\n"),
        entry("usr/share/plura/shared.bin", "file", rng.randbytes(size)),
    ]


def changes_entries():
    return [
        entry("etc/config.txt", "file", b"version=2\nmode=changed\n"),       # overwrite
        entry("var/cache/.wh.old.txt", "file", b""),                          # whiteout
        entry("opt/data/.wh..wh..opq", "file", b""),                          # opaque dir
        entry("opt/data/c.txt", "file", b"the only file left in opt/data\n"),
        entry("etc/os-release", "file", os_release("1.1", "any")),            # overwrite
    ]


def payload_entries(rng, size):
    return [
        entry("payload", "dir"),
        entry("payload/random.bin", "file", big=(rng, size)),
        entry("payload/text.txt", "file", b"".join(b"line %d of a compressible text file\n" % i for i in range(2000))),
    ]


def app_entries(rng):
    return [
        entry("app", "dir"),
        entry("app/bin", "dir"),
        entry("app/bin/server", "file", rng.randbytes(4000), 0o755),
        entry("app/config.json", "file", b'{"listen": ":8080"}\n'),
        entry("etc/config.txt", "file", b"version=3\nmode=app\n"),
        entry("bin/sh", "symlink", target="/app/bin/server"),  # overwrite a symlink
    ]


def arch_entries(rng, arch):
    return [
        entry("etc/os-release", "file", os_release("1.0", arch)),
        entry("etc/arch", "file", (arch + "\n").encode()),
        entry("bin/arch-tool", "file", rng.randbytes(2000), 0o755),
    ]


def big_entries(rng, size, nfiles):
    out = [entry("data", "dir")]
    per = size // nfiles
    for i in range(nfiles):
        n = per if i < nfiles - 1 else size - per * (nfiles - 1)
        out.append(entry("data/chunk-%03d.bin" % i, "file", big=(rng, n)))
    return out


# ----------------------------------------------------------------- merged rootfs

def merge_rootfs(layers):
    """Applies the described layers in order, with OCI whiteout semantics."""
    fs = {}

    def remove_tree(p):
        for k in [k for k in fs if k == p or k.startswith(p + "/")]:
            del fs[k]

    for layer in layers:
        ents = layer["entries"]
        # whiteouts apply to lower layers only, whatever their position in this tar
        for e in ents:
            d, b = os.path.split(e["path"])
            if b == ".wh..wh..opq":
                for k in [k for k in fs if k.startswith(d + "/")]:
                    del fs[k]
            elif b.startswith(".wh."):
                remove_tree(os.path.join(d, b[4:]) if d else b[4:])
        for e in ents:
            b = os.path.basename(e["path"])
            if b.startswith(".wh."):
                continue
            p = e["path"]
            # parent directories implied by the path
            parts = p.split("/")
            for i in range(1, len(parts)):
                q = "/".join(parts[:i])
                if q not in fs:
                    fs[q] = {"type": "dir", "mode": 0o755}
            if e["type"] != "dir" and fs.get(p, {}).get("type") == "dir":
                remove_tree(p)
            rec = {k: v for k, v in e.items() if k != "path"}
            if e["type"] == "hardlink":
                tgt = fs.get(e["target"], {})
                rec["size"] = tgt.get("size")
                rec["sha256"] = tgt.get("sha256")
            fs[p] = rec
    return dict(sorted(fs.items()))


# ----------------------------------------------------------------- images

class Builder:
    def __init__(self, out, fmt, seed, level, shared_size, payload_size):
        self.out = out
        self.fmt = fmt
        self.mt = MT[fmt]
        self.seed = seed
        self.level = level
        self.blobs = Blobs(out)
        self.layer_cache = {}
        self.shared_size = shared_size
        self.payload_size = payload_size

    def rng(self, name):
        return random.Random("%s/%s/%s" % (self.seed, self.fmt, name))

    def layer(self, name, make, level=None):
        if name not in self.layer_cache:
            desc, diff_id, ents = write_layer(self.blobs, name, make(self.rng(name)), self.mt["layer"],
                                              self.level if level is None else level)
            self.layer_cache[name] = {"name": name, "descriptor": desc, "diff_id": diff_id, "entries": ents}
        return self.layer_cache[name]

    def image(self, ref, layers, arch="amd64", variant=None):
        config = {
            "created": CREATED,
            "architecture": arch,
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["/bin/sh"],
                "WorkingDir": "/",
                "Labels": {
                    "org.opencontainers.image.title": ref,
                    "org.opencontainers.image.version": "1.0.0",
                    "org.opencontainers.image.revision": "%040x" % self.rng(ref + "/rev").getrandbits(160),
                    "org.opencontainers.image.source": "https://example.invalid/plura/" + ref,
                    "org.opencontainers.image.created": CREATED,
                },
            },
            "rootfs": {"type": "layers", "diff_ids": [l["diff_id"] for l in layers]},
            "history": [{"created": CREATED, "created_by": "make-oci-layout.py layer " + l["name"]} for l in layers],
        }
        if variant:
            config["variant"] = variant
        cfg_desc, _ = self.blobs.put_json(config, self.mt["config"])
        manifest = {
            "schemaVersion": 2,
            "mediaType": self.mt["manifest"],
            "config": cfg_desc,
            "layers": [l["descriptor"] for l in layers],
        }
        if self.fmt == "oci":
            manifest["annotations"] = {
                "org.opencontainers.image.version": "1.0.0",
                "org.opencontainers.image.revision": config["config"]["Labels"]["org.opencontainers.image.revision"],
                "org.opencontainers.image.source": config["config"]["Labels"]["org.opencontainers.image.source"],
                "org.opencontainers.image.created": CREATED,
            }
        mdesc, _ = self.blobs.put_json(manifest, self.mt["manifest"])
        platform = {"os": "linux", "architecture": arch}
        if variant:
            platform["variant"] = variant
        described = {
            "mediaType": mdesc["mediaType"],
            "digest": mdesc["digest"],
            "size": mdesc["size"],
            "platform": platform,
            "config": cfg_desc,
            "layers": [dict(l["descriptor"], name=l["name"], diff_id=l["diff_id"], entries=l["entries"])
                       for l in layers],
            "rootfs": merge_rootfs(layers),
        }
        return mdesc, described

    def index(self, images):
        idx = {"schemaVersion": 2, "mediaType": self.mt["index"], "manifests": []}
        for mdesc, d in images:
            idx["manifests"].append(dict(mdesc, platform=d["platform"]))
        return self.blobs.put_json(idx, self.mt["index"])[0]


def write_dir_layout(out, ref, d):
    """skopeo's `dir:` transport (format 1.1) for one ref: manifest.json, per-instance
    <hex>.manifest.json for a list, every blob as <hex>; files hard-linked from blobs/.
    skopeo 1.9's `oci:` transport only accepts OCI media types in index.json, so Docker
    schema 2 images are pushed with `skopeo copy [--all] dir:OUT/dir/REF docker://...`."""
    src = os.path.join(out, "blobs", "sha256")
    dst = os.path.join(out, "dir", ref)
    os.makedirs(dst, exist_ok=True)

    def link(digest, name):
        p = os.path.join(dst, name)
        if not os.path.exists(p):
            os.link(os.path.join(src, digest.split(":", 1)[1]), p)

    link(d["digest"], "manifest.json")
    for im in d["images"]:
        if d["kind"] == "index":
            link(im["digest"], im["digest"].split(":", 1)[1] + ".manifest.json")
        link(im["config"]["digest"], im["config"]["digest"].split(":", 1)[1])
        for l in im["layers"]:
            link(l["digest"], l["digest"].split(":", 1)[1])
    with open(os.path.join(dst, "version"), "w") as f:
        f.write("Directory Transport Version: 1.1\n")
    return os.path.join("dir", ref)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="layout directory (created; must be empty or absent)")
    ap.add_argument("--seed", default="1", help="seed for all generated content (default 1)")
    ap.add_argument("--format", choices=["oci", "docker"], default="oci", help="media types (default oci)")
    ap.add_argument("--refs", default="base,app,multi",
                    help="comma-separated refs to generate: base, app, multi, big (default base,app,multi)")
    ap.add_argument("--shared-size", default="64K", help="random bytes in the shared layer (default 64K)")
    ap.add_argument("--payload-size", default="256K", help="random bytes in base's payload layer (default 256K)")
    ap.add_argument("--big-size", default="0", help="size of the `big` image's random layer, e.g. 500M")
    ap.add_argument("--big-files", type=int, default=8, help="files the big layer is split into (default 8)")
    ap.add_argument("--big-layers", type=int, default=1, help="number of big layers (size split evenly)")
    ap.add_argument("--gzip-level", type=int, default=6, help="gzip level of small layers (default 6)")
    ap.add_argument("--dir-layouts", action="store_true",
                    help="also write skopeo dir: layouts under OUT/dir/REF (always done with --format docker)")
    ap.add_argument("--describe", help="write a JSON description of the refs, layers and rootfs here ('-' = stdout)")
    a = ap.parse_args()

    refs = [r for r in a.refs.split(",") if r]
    big_size = parse_size(a.big_size)
    if "big" in refs and big_size <= 0:
        ap.error("ref 'big' needs --big-size")
    if big_size > 0 and "big" not in refs:
        refs.append("big")
    if os.path.exists(a.out) and os.listdir(a.out):
        ap.error("%s exists and is not empty" % a.out)
    os.makedirs(a.out, exist_ok=True)

    b = Builder(a.out, a.format, a.seed, a.gzip_level, parse_size(a.shared_size), parse_size(a.payload_size))
    base_fs = lambda: b.layer("base-fs", lambda r: base_fs_entries(r))
    shared = lambda: b.layer("shared", lambda r: shared_entries(r, b.shared_size))

    index_entries = []
    desc = {"format": a.format, "seed": a.seed, "refs": {}}

    for ref in refs:
        if ref == "base":
            layers = [base_fs(), shared(), b.layer("changes", lambda r: changes_entries()),
                      b.layer("payload", lambda r: payload_entries(r, b.payload_size))]
            top, d = b.image(ref, layers)
            desc["refs"][ref] = dict(top, kind="manifest", images=[d])
        elif ref == "app":
            layers = [base_fs(), shared(), b.layer("app", app_entries)]
            top, d = b.image(ref, layers)
            desc["refs"][ref] = dict(top, kind="manifest", images=[d])
        elif ref == "multi":
            imgs = []
            for arch, variant in (("amd64", None), ("arm64", "v8")):
                layers = [base_fs(), b.layer("arch-" + arch, lambda r, arch=arch: arch_entries(r, arch))]
                imgs.append(b.image("multi-" + arch, layers, arch, variant))
            top = b.index(imgs)
            desc["refs"][ref] = dict(top, kind="index", images=[d for _, d in imgs])
        elif ref == "big":
            layers = [base_fs()]
            n = max(1, a.big_layers)
            for i in range(n):
                size = big_size // n if i < n - 1 else big_size - (big_size // n) * (n - 1)
                files = max(1, a.big_files // n)
                layers.append(b.layer("big-%d" % i, lambda r, size=size, files=files: big_entries(r, size, files),
                                      level=1))
            top, d = b.image(ref, layers)
            desc["refs"][ref] = dict(top, kind="manifest", images=[d])
        else:
            ap.error("unknown ref %r" % ref)
        index_entries.append(dict(top, annotations={"org.opencontainers.image.ref.name": ref}))

    with open(os.path.join(a.out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(a.out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index_entries}, f, indent=2)

    desc["blobs"] = sorted(b.blobs.all)
    if a.format == "docker" or a.dir_layouts:
        for ref, d in desc["refs"].items():
            d["dir"] = write_dir_layout(a.out, ref, d)
    if a.describe:
        text = json.dumps(desc, indent=1, sort_keys=True) + "\n"
        if a.describe == "-":
            sys.stdout.write(text)
        else:
            with open(a.describe, "w") as f:
                f.write(text)


if __name__ == "__main__":
    main()
