#!/usr/bin/env python3
"""Hostile and unlucky clients against a real plura on loopback (tests/integration/registry-api/
test-limits.sh). Each subcommand prints one JSON object with what it measured; the shell test
checks it. Flood sockets come from other loopback addresses (127.0.0.2 and up), the "normal"
client from 127.0.0.1, so that per-address caps can be told apart.

  floodidle HOST PORT N SOURCES DURATION  N idle connections spread over SOURCES addresses, while
                                          a normal client sends GET /v2/ every 50 ms for DURATION s
  sessions HOST PORT N SOURCE             N POST /v2/<repo>/blobs/uploads/ from SOURCE
  raw HOST PORT REPEAT HEX                send the bytes REPEAT times on new connections; statuses
  keepalive HOST PORT PARAMS              a good request, then one with PARAMS query args, one connection
  idle HOST PORT                          connect, send nothing: status and seconds until the answer
"""
import json
import resource
import socket
import sys
import threading
import time


def status_of(data):
    if not data.startswith(b"HTTP/1."):
        return None
    try:
        return int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def read_response(s, timeout):
    """Reads one response (headers and a Content-Length body); returns (status, headers, body)."""
    s.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode()
    n = int(headers.get("content-length", "0"))
    while len(body) < n:
        d = s.recv(65536)
        if not d:
            break
        body += d
    return status_of(head), headers, body[:n]


def request(host, port, path, source="127.0.0.1", method="GET", timeout=5):
    s = socket.create_connection((host, port), timeout=timeout, source_address=(source, 0))
    try:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n".encode())
        return read_response(s, timeout)
    finally:
        s.close()


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def floodidle(host, port, n, sources, duration):
    raise_nofile()
    socks, refused, errors = [], {}, 0
    for i in range(n):
        src = f"127.0.0.{2 + i % sources}"
        try:
            s = socket.create_connection((host, port), timeout=5, source_address=(src, 0))
            socks.append(s)
        except OSError:
            errors += 1
    # what the server answered right away (429/503/408) to the ones it would not keep
    time.sleep(0.5)
    for s in socks:
        s.setblocking(False)
        try:
            d = s.recv(4096)
            st = status_of(d) if d else "closed"
            refused[str(st)] = refused.get(str(st), 0) + 1
        except BlockingIOError:
            pass
        except OSError:
            refused["reset"] = refused.get("reset", 0) + 1
    ok = failed = 0
    worst = 0.0
    end = time.time() + duration
    while time.time() < end:
        t = time.time()
        try:
            st, _, _ = request(host, port, "/v2/", timeout=5)
            ok += st == 200
            failed += st != 200
        except OSError:
            failed += 1
        worst = max(worst, time.time() - t)
        time.sleep(0.05)
    for s in socks:
        s.close()
    print(json.dumps({"opened": len(socks), "connect_errors": errors, "answered_at_once": refused,
                      "normal_ok": ok, "normal_failed": failed, "normal_worst_s": round(worst, 3)}))


def sessions(host, port, n, source):
    codes, retry_after = {}, None
    for _ in range(n):
        st, h, _ = request(host, port, "/v2/flood/x/blobs/uploads/", source=source, method="POST")
        codes[str(st)] = codes.get(str(st), 0) + 1
        if st == 429:
            retry_after = h.get("retry-after")
    print(json.dumps({"codes": codes, "retry_after": retry_after}))


def raw(host, port, repeat, data):
    codes = {}
    for _ in range(repeat):
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(data)
        try:
            st, _, _ = read_response(s, 5)
        except OSError as e:
            st = type(e).__name__
        s.close()
        codes[str(st)] = codes.get(str(st), 0) + 1
    print(json.dumps({"codes": codes}))


def keepalive(host, port, params):
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(f"GET /v2/ HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    first, _, _ = read_response(s, 10)
    q = "&".join(f"a{i}=b" for i in range(params))
    t = time.time()
    s.sendall(f"GET /v2/_catalog?{q} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    try:
        second, _, body = read_response(s, 10)
    except OSError as e:
        second, body = type(e).__name__, b""
    print(json.dumps({"first": first, "second": second, "seconds": round(time.time() - t, 3),
                      "body": body.decode(errors="replace")}))


def idle(host, port):
    s = socket.create_connection((host, port), timeout=30)
    t = time.time()
    try:
        st, _, _ = read_response(s, 30)
    except OSError as e:
        st = type(e).__name__
    print(json.dumps({"status": st, "seconds": round(time.time() - t, 3)}))


def main():
    cmd, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    a = sys.argv[4:]
    if cmd == "floodidle":
        floodidle(host, port, int(a[0]), int(a[1]), float(a[2]))
    elif cmd == "sessions":
        sessions(host, port, int(a[0]), a[1])
    elif cmd == "raw":
        raw(host, port, int(a[0]), bytes.fromhex(a[1]))
    elif cmd == "keepalive":
        keepalive(host, port, int(a[0]))
    elif cmd == "idle":
        idle(host, port)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
