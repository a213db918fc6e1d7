#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""TLS probes for test-tls.sh (Python standard library only).

  tls-probe.py fingerprint HOST:PORT
      SHA-256 of the certificate a new connection is served (not verified: any certificate).
  tls-probe.py keepalive HOST:PORT CA_FILE COMMAND [--cert FILE --key FILE]
      Opens one verified keep-alive connection, GETs /v2/ on it, runs COMMAND (a bash command,
      e.g. replace the certificate and SIGHUP the server), then GETs /v2/ again on the same
      connection. Prints one line per request: "<status> <SHA-256 of the connection's server
      certificate> <Connection header>", and exits 1 if the connection did not survive.
"""
import hashlib
import http.client
import socket
import ssl
import subprocess
import sys


def split(hostport):
    host, port = hostport.rsplit(":", 1)
    return host, int(port)


def fingerprint(hostport):
    host, port = split(hostport)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=10) as s, ctx.wrap_socket(s) as t:
        print(hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest())


def keepalive(hostport, ca, command, cert=None, key=None):
    host, port = split(hostport)
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=10)
    rc = 0
    for i in range(2):
        if i == 1:
            subprocess.run(["bash", "-c", command], check=True)
        try:
            conn.request("GET", "/v2/", headers={"Connection": "keep-alive"})
            resp = conn.getresponse()
            resp.read()
            fp = hashlib.sha256(conn.sock.getpeercert(binary_form=True)).hexdigest()
            print(resp.status, fp, resp.getheader("Connection", "-"), flush=True)
            if i == 0:
                first_sock = conn.sock
            elif conn.sock is not first_sock:
                print("the connection was replaced", flush=True)
                rc = 1
        except (OSError, http.client.HTTPException) as e:
            print("error", e, flush=True)
            return 1
    return rc


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "fingerprint":
        fingerprint(sys.argv[2])
        return 0
    if len(sys.argv) >= 5 and sys.argv[1] == "keepalive":
        args = sys.argv[5:]
        opts = dict(zip(args[::2], args[1::2]))
        return keepalive(sys.argv[2], sys.argv[3], sys.argv[4], opts.get("--cert"), opts.get("--key"))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
