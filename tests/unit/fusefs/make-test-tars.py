#!/usr/bin/env python3
# Writes the tar archives the fusefs unit tests parse: make-test-tars.py OUTDIR
import io, os, struct, sys, tarfile

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
LONG = "deep/" + "d" * 120 + "/" + "f" * 150 + ".txt"
LONGLINK = "/target/" + "t" * 140


def add(tf, name, data=None, type=tarfile.REGTYPE, link="", mode=0o644, uid=0, gid=0, mtime=1700000000):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode, ti.uid, ti.gid, ti.mtime = type, link, mode, uid, gid, mtime
    if data is not None:
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    else:
        tf.addfile(ti)


def write(name, fmt, fill):
    with tarfile.open(os.path.join(out, name), "w", format=fmt) as tf:
        fill(tf)


def common(tf):
    add(tf, "./etc", type=tarfile.DIRTYPE, mode=0o755)
    add(tf, "./etc/os-release", b"NAME=plura-test\n", mtime=1700000001)
    add(tf, LONG, b"long name content\n", uid=3000000, gid=42)
    add(tf, "bin/sh", type=tarfile.SYMTYPE, link="busybox", mode=0o777)
    add(tf, "bin/longlink", type=tarfile.SYMTYPE, link=LONGLINK, mode=0o777)
    add(tf, "bin/busybox", b"\x7fELF" + b"x" * 5000, mode=0o755)
    add(tf, "bin/ls", type=tarfile.LNKTYPE, link="bin/busybox")
    add(tf, "etc/.wh.removed", b"")
    add(tf, "var/.wh..wh..opq", b"")
    add(tf, "dev/null", type=tarfile.CHRTYPE)


write("pax.tar", tarfile.PAX_FORMAT, common)
write("gnu.tar", tarfile.GNU_FORMAT, common)
write("ustar.tar", tarfile.USTAR_FORMAT, lambda tf: (add(tf, "a/b/c.txt", b"hello\n"), add(tf, "x", type=tarfile.DIRTYPE)))

# --- malicious / corrupt archives
def raw_header(name, size=0, type=b"0", link=b"", size_field=None):
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = size_field if size_field is not None else (b"%011o\0" % size)
    h[136:148] = b"%011o\0" % 1700000000
    h[156:157] = type
    h[157:157 + len(link)] = link
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    h[148:156] = b"        "
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)

end = b"\0" * 1024
def w(name, data):
    open(os.path.join(out, name), "wb").write(data)

w("traversal.tar", raw_header(b"../../etc/passwd", 5) + b"evil\n".ljust(512, b"\0") + end)
w("traversal2.tar", raw_header(b"a/../../x", 0) + end)
w("absolute.tar", raw_header(b"/etc/passwd", 5) + b"abs\n\n".ljust(512, b"\0") + end)
bad = bytearray(raw_header(b"file", 5)); bad[0] = ord("g")
w("badsum.tar", bytes(bad) + b"data\n".ljust(512, b"\0") + end)
w("huge.tar", raw_header(b"huge", size_field=b"\x80" + b"\0" * 4 + struct.pack(">Q", 1 << 50)[1:]) + b"\0" * 512 + end)
w("truncated.tar", raw_header(b"file", 100000) + b"x" * 1000)
w("selflink.tar", raw_header(b"a", type=b"1", link=b"a") + end)
w("linkescape.tar", raw_header(b"a", type=b"1", link=b"../b") + end)
pax = b"99999999 path=x\n"
w("badpax.tar", raw_header(b"PaxHeader", len(pax), type=b"x") + pax.ljust(512, b"\0") + raw_header(b"f") + end)
w("hugelongname.tar", raw_header(b"././@LongLink", 1 << 30, type=b"L") + b"\0" * 512)
w("badnumber.tar", raw_header(b"f", size_field=b"12345678z01\0") + end)
w("empty.tar", end)
