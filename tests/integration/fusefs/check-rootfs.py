#!/usr/bin/env python3
# Compares a mounted rootfs/ with the merged tree make-oci-layout.py --describe wrote:
#   check-rootfs.py DESCRIBE.json REF IMAGE_DIGEST ROOTFS_DIR
# Every expected entry must exist with its type, mode, size, content hash and link target;
# nothing else may exist (whiteouts applied); hard links share an inode.
import hashlib, json, os, stat, sys

desc, ref, digest, root = sys.argv[1:5]
images = json.load(open(desc))["refs"][ref]["images"]
img = next(i for i in images if i["digest"] == digest)
want = img["rootfs"]
errors = []

seen = set()
for dirpath, dirnames, filenames in os.walk(root):
    for n in dirnames + filenames:
        seen.add(os.path.relpath(os.path.join(dirpath, n), root))
for p in sorted(seen - set(want)):
    errors.append("unexpected entry %s (a whiteout not applied?)" % p)
for p in sorted(set(want) - seen):
    errors.append("missing entry %s" % p)

for p, w in sorted(want.items()):
    full = os.path.join(root, p)
    if not os.path.lexists(full):
        continue
    st = os.lstat(full)
    t = w["type"]
    if t == "dir" and not stat.S_ISDIR(st.st_mode):
        errors.append("%s: not a directory" % p)
    elif t == "symlink":
        if not stat.S_ISLNK(st.st_mode):
            errors.append("%s: not a symlink" % p)
        elif os.readlink(full) != w["target"]:
            errors.append("%s: symlink target %s != %s" % (p, os.readlink(full), w["target"]))
    elif t in ("file", "hardlink"):
        if not stat.S_ISREG(st.st_mode):
            errors.append("%s: not a regular file" % p)
            continue
        data = open(full, "rb").read()
        if len(data) != w["size"] or st.st_size != w["size"]:
            errors.append("%s: size %d/%d != %d" % (p, len(data), st.st_size, w["size"]))
        if hashlib.sha256(data).hexdigest() != w["sha256"]:
            errors.append("%s: content differs" % p)
        if t == "hardlink":
            other = os.lstat(os.path.join(root, w["target"]))
            if other.st_ino != st.st_ino or st.st_nlink < 2:
                errors.append("%s: hard link does not share the inode of %s" % (p, w["target"]))
    if "mode" in w and t != "symlink" and stat.S_IMODE(st.st_mode) != w["mode"]:
        errors.append("%s: mode %o != %o" % (p, stat.S_IMODE(st.st_mode), w["mode"]))

for e in errors:
    print("rootfs:", e, file=sys.stderr)
print("# rootfs %s: %d entries checked, %d problems" % (ref, len(want), len(errors)), file=sys.stderr)
sys.exit(1 if errors else 0)
