#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""One HTTP/1.1 request over a raw socket, for what curl cannot do on purpose:
send fewer body bytes than Content-Length and close (a truncated upload), stream a body
slowly in chunks with pauses while reporting progress (to kill the server mid-request),
or send huge headers.

  rawhttp.py METHOD URL [-H 'Name: value']... [--body-file F | --random-body N]
             [--content-length N] [--send-bytes K] [--chunk N --pause S]
             [--progress FILE] [--timeout S] [--out FILE]

Prints the response status code on stdout (000 when the server closed the connection
or none came). --progress FILE is rewritten with the count of body bytes sent after each
chunk. The body is sent from --body-file, or --random-body N deterministic random bytes.
"""

import argparse
import os
import random
import select
import socket
import sys
import time
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("method")
    ap.add_argument("url")
    ap.add_argument("-H", "--header", action="append", default=[])
    ap.add_argument("--body-file")
    ap.add_argument("--random-body", type=int)
    ap.add_argument("--content-length", type=int, help="declared length (default: the body's)")
    ap.add_argument("--send-bytes", type=int, help="send only this many body bytes, then close")
    ap.add_argument("--chunk", type=int, default=1 << 20)
    ap.add_argument("--pause", type=float, default=0.0)
    ap.add_argument("--progress")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--eof-wait", type=float, default=2.0,
                    help="after a truncated body, wait this long for a response before closing (default 2)")
    ap.add_argument("--out", help="write the response (status line, headers, body) here")
    a = ap.parse_args()

    u = urllib.parse.urlsplit(a.url)
    path = u.path + ("?" + u.query if u.query else "")
    if a.body_file:
        body = open(a.body_file, "rb").read()
    elif a.random_body is not None:
        body = random.Random(a.random_body).randbytes(a.random_body)
    else:
        body = b""
    length = len(body) if a.content_length is None else a.content_length
    send = len(body) if a.send_bytes is None else min(a.send_bytes, len(body))

    head = ["%s %s HTTP/1.1" % (a.method, path), "Host: %s" % u.netloc, "Connection: close"]
    if a.method in ("PUT", "POST", "PATCH") or length:
        head.append("Content-Length: %d" % length)
    head += a.header
    req = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")

    s = socket.create_connection((u.hostname, u.port or 80), timeout=a.timeout)
    status = "000"
    resp = b""
    def send_watching(data):
        # Sends in small pieces and stops once the server has answered: a server that refuses
        # early (e.g. 431 for a huge header) closes with our unsent bytes unread, and the RST
        # that follows can destroy its answer before we read it.
        for i in range(0, len(data), 4096):
            if select.select([s], [], [], 0)[0]:
                return False
            s.sendall(data[i:i + 4096])
        return True

    try:
        answered_early = not send_watching(req)
        off = 0
        while off < send and not answered_early:
            n = min(a.chunk, send - off)
            if not send_watching(body[off:off + n]):
                break
            off += n
            if a.progress:
                tmp = a.progress + ".tmp"
                with open(tmp, "w") as f:
                    f.write("%d\n" % off)
                os.replace(tmp, a.progress)
            if a.pause and off < send:
                time.sleep(a.pause)
        if send < length:
            # truncated on purpose: stop sending, let the server see EOF; wait briefly for
            # an answer (a server may also just wait for the rest), then close for good
            s.shutdown(socket.SHUT_WR)
            s.settimeout(min(a.timeout, a.eof_wait))
        while True:
            b = s.recv(65536)
            if not b:
                break
            resp += b
    except (ConnectionError, socket.timeout, OSError):
        pass
    finally:
        s.close()
    if resp.startswith(b"HTTP/1."):
        status = resp.split(b" ", 2)[1].decode()
    if a.out:
        with open(a.out, "wb") as f:
            f.write(resp)
    print(status)


if __name__ == "__main__":
    sys.exit(main())
