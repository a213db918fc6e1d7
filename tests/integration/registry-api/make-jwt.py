#!/usr/bin/env python3
"""make-jwt.py KEY.pem KID CLAIMS_JSON: a JWS compact token (EdDSA) signed with openssl, so that
the tests can present tokens plura did not issue itself: expired ones, ones of another key."""
import base64
import json
import subprocess
import sys
import tempfile


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


key, kid, claims = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
head = b64(json.dumps({"alg": "EdDSA", "typ": "JWT", "kid": kid}, separators=(",", ":")).encode())
body = b64(json.dumps(claims, separators=(",", ":")).encode())
signing_input = f"{head}.{body}".encode()
with tempfile.NamedTemporaryFile() as f:  # Ed25519 signs the whole message: a file, not a pipe
    f.write(signing_input)
    f.flush()
    sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", f.name],
                         capture_output=True, check=True).stdout
print(f"{head}.{body}.{b64(sig)}")
