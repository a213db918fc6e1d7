#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""gen-small.py DIR THREADS COUNT SIZE: writes DIR/t<i>.txt (i = 1..THREADS), COUNT lines of
"sha256:<hex> <content>" each, distinct printable contents of SIZE bytes, for small-push.lua."""
import hashlib
import os
import random
import string
import sys

d, threads, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
os.makedirs(d, exist_ok=True)
alphabet = (string.ascii_letters + string.digits).encode()
for t in range(1, threads + 1):
    rng = random.Random(t)
    with open(os.path.join(d, "t%d.txt" % t), "wb") as f:
        for i in range(count):
            head = b"t%d-i%d-" % (t, i)
            body = head + bytes(alphabet[b % 62] for b in rng.randbytes(size - len(head)))
            f.write(b"sha256:" + hashlib.sha256(body).hexdigest().encode() + b" " + body + b"\n")
