#!/usr/bin/env bash
# Blob pull and push through the OCI API: monolithic, single-request, chunked (Content-Range,
# 416 for out-of-order/repeated chunks), status, cancel, mount, Range GETs, delete, wrong
# digests, truncated bodies, bounded memory for large uploads.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"

start_server "$TEST_TMP/data"
R=test/blobs

# ---- helpers
# http's HTTP_STATUS does not survive $(...): bodies go through a file
api() { http "$@" >"$TEST_TMP/out"; BODY=$(cat "$TEST_TMP/out"); }
code() { jq -r '.errors[0].code' <<<"$BODY"; }
mkblob() { head -c "$2" /dev/urandom >"$1"; }
dig() { echo "sha256:$(sha256_of "$1")"; }
# absolute URL of a Location header value
abs() { case "$1" in http*) echo "$1" ;; *) echo "$URL$1" ;; esac; }
# path part of a Location header
rel() { echo "${1#"$URL"}"; }

mkblob "$TEST_TMP/a" 100000
DA=$(dig "$TEST_TMP/a")

# ---- base
api GET /v2/
check "GET /v2/ is 200 {}" [ "$HTTP_STATUS" = 200 -a "$BODY" = "{}" ]
check "API version header" [ "$(header Docker-Distribution-API-Version)" = "registry/2.0" ]

# ---- monolithic POST + PUT
http POST "/v2/$R/blobs/uploads/" >/dev/null
check "POST upload is 202" [ "$HTTP_STATUS" = 202 ]
LOC=$(header Location)
check "POST gives a Location" [ -n "$LOC" ]
check "POST gives Range 0-0" [ "$(header Range)" = "0-0" ]
check "POST gives Docker-Upload-UUID" [ -n "$(header Docker-Upload-UUID)" ]
http PUT "$(rel "$LOC")?digest=$DA" -H 'Content-Type: application/octet-stream' --data-binary @"$TEST_TMP/a" >/dev/null
check "PUT commit is 201" [ "$HTTP_STATUS" = 201 ]
check "commit Location" [ "$(header Location)" = "/v2/$R/blobs/$DA" ]
check "commit Docker-Content-Digest" [ "$(header Docker-Content-Digest)" = "$DA" ]

# ---- HEAD / GET
http HEAD "/v2/$R/blobs/$DA" -I >/dev/null
check "HEAD blob 200" [ "$HTTP_STATUS" = 200 ]
check "HEAD Content-Length" [ "$(header Content-Length)" = 100000 ]
check "HEAD Docker-Content-Digest" [ "$(header Docker-Content-Digest)" = "$DA" ]
check "HEAD Accept-Ranges" [ "$(header Accept-Ranges)" = bytes ]
http GET "/v2/$R/blobs/$DA" >"$TEST_TMP/a.out"
check "GET blob 200" [ "$HTTP_STATUS" = 200 ]
check "GET blob bytes identical" cmp -s "$TEST_TMP/a" "$TEST_TMP/a.out"

# ---- Range
http GET "/v2/$R/blobs/$DA" -H 'Range: bytes=10-19' >"$TEST_TMP/r.out"
check "Range 206" [ "$HTTP_STATUS" = 206 ]
check "Content-Range" [ "$(header Content-Range)" = "bytes 10-19/100000" ]
check "Range bytes" cmp -s "$TEST_TMP/r.out" <(head -c 20 "$TEST_TMP/a" | tail -c 10)
http GET "/v2/$R/blobs/$DA" -H 'Range: bytes=-7' >"$TEST_TMP/r.out"
check "suffix Range 206" [ "$HTTP_STATUS" = 206 -a "$(header Content-Range)" = "bytes 99993-99999/100000" ]
check "suffix Range bytes" cmp -s "$TEST_TMP/r.out" <(tail -c 7 "$TEST_TMP/a")
http GET "/v2/$R/blobs/$DA" -H 'Range: bytes=99990-' >"$TEST_TMP/r.out"
check "open Range 206 with 10 bytes" [ "$HTTP_STATUS" = 206 -a "$(stat -c %s "$TEST_TMP/r.out")" = 10 ]
http GET "/v2/$R/blobs/$DA" -H 'Range: bytes=100000-' >/dev/null
check "unsatisfiable Range 416" [ "$HTTP_STATUS" = 416 ]
check "416 Content-Range bytes */size" [ "$(header Content-Range)" = "bytes */100000" ]
http GET "/v2/$R/blobs/$DA" -H 'Range: bytes=5-2' >"$TEST_TMP/r.out"
check "malformed Range is ignored: 200" [ "$HTTP_STATUS" = 200 ]
check "malformed Range: full body" cmp -s "$TEST_TMP/a" "$TEST_TMP/r.out"

# ---- single-request POST ?digest=
mkblob "$TEST_TMP/b" 5000
DB=$(dig "$TEST_TMP/b")
http POST "/v2/$R/blobs/uploads/?digest=$DB" -H 'Content-Type: application/octet-stream' --data-binary @"$TEST_TMP/b" >/dev/null
check "single POST 201" [ "$HTTP_STATUS" = 201 -a "$(header Docker-Content-Digest)" = "$DB" ]
http GET "/v2/$R/blobs/$DB" >"$TEST_TMP/b.out"
check "single POST content" cmp -s "$TEST_TMP/b" "$TEST_TMP/b.out"

# ---- chunked PATCH
mkblob "$TEST_TMP/c" 30000
DC=$(dig "$TEST_TMP/c")
head -c 10000 "$TEST_TMP/c" >"$TEST_TMP/c1"
# head, then tail: tail -c | head -c dies of SIGPIPE under pipefail when head stops reading
head -c 20000 "$TEST_TMP/c" | tail -c 10000 >"$TEST_TMP/c2"
tail -c +20001 "$TEST_TMP/c" >"$TEST_TMP/c3"
http POST "/v2/$R/blobs/uploads/" >/dev/null
U=$(rel "$(header Location)")
http PATCH "$U" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-9999' --data-binary @"$TEST_TMP/c1" >/dev/null
check "PATCH chunk 1 202" [ "$HTTP_STATUS" = 202 ]
check "PATCH Range 0-9999" [ "$(header Range)" = "0-9999" ]
U=$(rel "$(header Location)")
http PATCH "$U" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-9999' --data-binary @"$TEST_TMP/c1" >/dev/null
check "repeated chunk 416" [ "$HTTP_STATUS" = 416 ]
check "416 reports the current Range" [ "$(header Range)" = "0-9999" ]
http PATCH "$U" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 20000-29999' --data-binary @"$TEST_TMP/c3" >/dev/null
check "out-of-order chunk 416" [ "$HTTP_STATUS" = 416 -a "$(header Range)" = "0-9999" ]
http PATCH "$U" -H 'Content-Type: application/octet-stream' -H 'Content-Range: garbage' --data-binary @"$TEST_TMP/c2" >/dev/null
check "malformed Content-Range 416" [ "$HTTP_STATUS" = 416 ]
http GET "$U" >/dev/null
check "status 204" [ "$HTTP_STATUS" = 204 ]
check "status Range" [ "$(header Range)" = "0-9999" ]
check "status Location" [ "$(header Location)" = "$U" ]
# streamed PATCH (no Content-Range), chunked transfer encoding
http PATCH "$U" -H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked' --data-binary @"$TEST_TMP/c2" >/dev/null
check "streamed PATCH 202" [ "$HTTP_STATUS" = 202 -a "$(header Range)" = "0-19999" ]
http PUT "$U?digest=$DC" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 20000-29999' --data-binary @"$TEST_TMP/c3" >/dev/null
check "PUT with final chunk 201" [ "$HTTP_STATUS" = 201 ]
http GET "/v2/$R/blobs/$DC" >"$TEST_TMP/c.out"
check "chunked content identical" cmp -s "$TEST_TMP/c" "$TEST_TMP/c.out"
http GET "$U" >/dev/null
check "committed session is gone" [ "$HTTP_STATUS" = 404 ]

# ---- wrong digest on PUT: 400, nothing stored
mkblob "$TEST_TMP/w" 4000
DW=$(dig "$TEST_TMP/w")
WRONG=sha256:$(printf 'x' | sha256sum | cut -d' ' -f1)
http POST "/v2/$R/blobs/uploads/" >/dev/null
U=$(rel "$(header Location)")
api PUT "$U?digest=$WRONG" --data-binary @"$TEST_TMP/w"
check "wrong digest 400" [ "$HTTP_STATUS" = 400 ]
check "wrong digest DIGEST_INVALID" [ "$(code)" = DIGEST_INVALID ]
http HEAD "/v2/$R/blobs/$WRONG" -I >/dev/null
check "nothing stored under the claimed digest" [ "$HTTP_STATUS" = 404 ]
http HEAD "/v2/$R/blobs/$DW" -I >/dev/null
check "nothing stored under the real digest" [ "$HTTP_STATUS" = 404 ]
api POST "/v2/$R/blobs/uploads/?digest=$WRONG" --data-binary @"$TEST_TMP/w"
check "single POST wrong digest 400 DIGEST_INVALID" [ "$HTTP_STATUS" = 400 -a "$(code)" = DIGEST_INVALID ]
http HEAD "/v2/$R/blobs/$DW" -I >/dev/null
check "still nothing stored" [ "$HTTP_STATUS" = 404 ]
api PUT "$U?digest=sha256:1234" --data-binary @"$TEST_TMP/w"
check "malformed digest on PUT 400" [ "$HTTP_STATUS" = 400 -a "$(code)" = DIGEST_INVALID ]
http POST "/v2/$R/blobs/uploads/" >/dev/null
U=$(rel "$(header Location)")
api PUT "$U" --data-binary @"$TEST_TMP/w"
check "PUT without digest 400 DIGEST_INVALID" [ "$HTTP_STATUS" = 400 -a "$(code)" = DIGEST_INVALID ]

# ---- cancel, unknown and malformed sessions
http DELETE "$U" >/dev/null
check "cancel 204" [ "$HTTP_STATUS" = 204 ]
api GET "$U"
check "cancelled session 404 BLOB_UPLOAD_UNKNOWN" [ "$HTTP_STATUS" = 404 -a "$(code)" = BLOB_UPLOAD_UNKNOWN ]
api PATCH "/v2/$R/blobs/uploads/0b7e2b4c-5a54-4a4e-9a4f-2f2d5f1e0c11" --data-binary @"$TEST_TMP/w"
check "unknown session PATCH 404" [ "$HTTP_STATUS" = 404 -a "$(code)" = BLOB_UPLOAD_UNKNOWN ]
api GET "/v2/$R/blobs/uploads/not-a-uuid"
check "malformed uuid 404 BLOB_UPLOAD_UNKNOWN" [ "$HTTP_STATUS" = 404 -a "$(code)" = BLOB_UPLOAD_UNKNOWN ]
api PUT "/v2/$R/blobs/uploads/..%2f..%2fetc?digest=$DW" --data-binary x
check "traversal uuid refused" [ "${HTTP_STATUS:0:1}" = 4 ]
http DELETE "/v2/$R/blobs/uploads/0b7e2b4c-5a54-4a4e-9a4f-2f2d5f1e0c11" >/dev/null
check "unknown session DELETE 404" [ "$HTTP_STATUS" = 404 ]
# a session belongs to its repository
http POST "/v2/$R/blobs/uploads/" >/dev/null
U=$(header Location)
http GET "/v2/other/repo/blobs/uploads/${U##*/}" >/dev/null
check "session of another repository 404" [ "$HTTP_STATUS" = 404 ]

# ---- cross-repository mount
http POST "/v2/test/mounted/blobs/uploads/?mount=$DA&from=$R" >/dev/null
check "mount 201" [ "$HTTP_STATUS" = 201 -a "$(header Location)" = "/v2/test/mounted/blobs/$DA" ]
http GET "/v2/test/mounted/blobs/$DA" >"$TEST_TMP/m.out"
check "mounted blob readable" cmp -s "$TEST_TMP/a" "$TEST_TMP/m.out"
http POST "/v2/test/mounted/blobs/uploads/?mount=$WRONG&from=$R" >/dev/null
check "mount of an unknown blob falls back to 202" [ "$HTTP_STATUS" = 202 -a -n "$(header Location)" ]
http POST "/v2/test/mounted2/blobs/uploads/?mount=$DA&from=test/nonexistent" >/dev/null
check "mount from a repo without it falls back to 202" [ "$HTTP_STATUS" = 202 ]
http GET "/v2/test/mounted2/blobs/$DA" >/dev/null
check "blob not linked where it was not pushed" [ "$HTTP_STATUS" = 404 ]

# ---- digests in URLs
api GET "/v2/$R/blobs/sha256:nothex"
check "malformed digest in URL 400 DIGEST_INVALID" [ "$HTTP_STATUS" = 400 -a "$(code)" = DIGEST_INVALID ]
api GET "/v2/$R/blobs/md5:d41d8cd98f00b204e9800998ecf8427e"
check "unsupported algorithm 400 DIGEST_INVALID" [ "$HTTP_STATUS" = 400 -a "$(code)" = DIGEST_INVALID ]
api GET "/v2/$R/blobs/$WRONG"
check "unknown blob 404 BLOB_UNKNOWN" [ "$HTTP_STATUS" = 404 -a "$(code)" = BLOB_UNKNOWN ]
check "error Content-Type is JSON" [ "$(header Content-Type)" = application/json ]
api GET "/v2/test/neverpushed/blobs/$DA"
check "blob in unknown repo 404 NAME_UNKNOWN" [ "$HTTP_STATUS" = 404 -a "$(code)" = NAME_UNKNOWN ]

# ---- delete blob
http DELETE "/v2/test/mounted/blobs/$DA" >/dev/null
check "DELETE blob 202" [ "$HTTP_STATUS" = 202 ]
http GET "/v2/test/mounted/blobs/$DA" >/dev/null
check "deleted blob 404" [ "$HTTP_STATUS" = 404 ]
http DELETE "/v2/test/mounted/blobs/$DA" >/dev/null
check "DELETE again 404" [ "$HTTP_STATUS" = 404 ]
http GET "/v2/$R/blobs/$DA" >/dev/null
check "other repo keeps it" [ "$HTTP_STATUS" = 200 ]

# ---- truncated bodies: the client dies mid-request
truncated() { # METHOD PATH CONTENT_LENGTH FILE BYTES_TO_SEND
        python3 - "$HOSTPORT" "$@" <<'EOF'
import socket, sys, time
hp, method, path, length, f, n = sys.argv[1:7]
host, port = hp.rsplit(':', 1)
data = open(f, 'rb').read()[:int(n)]
s = socket.create_connection((host, int(port)))
s.sendall(f"{method} {path} HTTP/1.1\r\nHost: {hp}\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n".encode())
s.sendall(data)
time.sleep(0.3)
s.close()
EOF
}
mkblob "$TEST_TMP/t" 200000
DT=$(dig "$TEST_TMP/t")
http POST "/v2/$R/blobs/uploads/" >/dev/null
U=$(rel "$(header Location)")
truncated PATCH "$U" 200000 "$TEST_TMP/t" 60000
sleep 0.2
http GET "$U" >/dev/null
range=$(header Range)
off=$(( ${range#0-} + 1 ))
check "truncated PATCH: session survives" [ "$HTTP_STATUS" = 204 ]
check "truncated PATCH: the received bytes are kept" [ "$off" -le 60000 -a "$off" -gt 0 ]
truncated PUT "$U?digest=$DT" $((200000 - off)) <(tail -c +$((off + 1)) "$TEST_TMP/t") 50000
sleep 0.2
http HEAD "/v2/$R/blobs/$DT" -I >/dev/null
check "truncated PUT commits nothing" [ "$HTTP_STATUS" = 404 ]
http GET "$U" >/dev/null
check "session still usable after truncated PUT" [ "$HTTP_STATUS" = 204 ]
range=$(header Range)
off=$(( ${range#0-} + 1 ))
tail -c +$((off + 1)) "$TEST_TMP/t" >"$TEST_TMP/t.rest"
http PUT "$U?digest=$DT" -H "Content-Range: $off-199999" --data-binary @"$TEST_TMP/t.rest" >/dev/null
check "resumed upload commits" [ "$HTTP_STATUS" = 201 ]
http GET "/v2/$R/blobs/$DT" >"$TEST_TMP/t.out"
check "resumed content identical" cmp -s "$TEST_TMP/t" "$TEST_TMP/t.out"
truncated POST "/v2/$R/blobs/uploads/?digest=$DW" 4000 "$TEST_TMP/w" 1000
sleep 0.2
http HEAD "/v2/$R/blobs/$DW" -I >/dev/null
check "truncated single POST stores nothing" [ "$HTTP_STATUS" = 404 ]

# ---- the next request may come on another connection the moment an answer arrives
# (skopeo does this): the session must already be free, never 409.
python3 - "$HOSTPORT" "$R" >"$TEST_TMP/race.out" <<'EOF'
import hashlib, os, socket, sys
hp, repo = sys.argv[1:3]
host, port = hp.rsplit(':', 1)
def request(s, method, path, body=b""):
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: {hp}\r\nContent-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    hdrs = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
    n = int(hdrs.get("content-length", "0"))
    while len(rest) < n:
        rest += s.recv(65536)
    return int(lines[0].split()[1]), hdrs
bad = 0
for i in range(40):
    a = socket.create_connection((host, int(port)))
    b = socket.create_connection((host, int(port)))
    data = os.urandom(5000)
    st, h = request(a, "POST", f"/v2/{repo}/blobs/uploads/")
    loc = h["location"]
    st, h = request(a, "PATCH", loc, data)
    st2, h = request(b, "PUT", loc + "?digest=sha256:" + hashlib.sha256(data).hexdigest())
    if st != 202 or st2 != 201:
        bad += 1
        print(f"round {i}: PATCH {st}, PUT {st2}")
    a.close(); b.close()
print(f"bad={bad}")
EOF
check "PATCH then PUT on another connection: never busy" grep -q "^bad=0$" "$TEST_TMP/race.out"

# ---- big upload streams with bounded memory
hwm() { awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status"; }
before=$(hwm)
head -c $((96 << 20)) /dev/urandom >"$TEST_TMP/big"
DBIG=$(dig "$TEST_TMP/big")
http POST "/v2/$R/blobs/uploads/" >/dev/null
U=$(rel "$(header Location)")
http PATCH "$U" -H 'Content-Type: application/octet-stream' --data-binary @"$TEST_TMP/big" >/dev/null
check "96 MiB PATCH 202" [ "$HTTP_STATUS" = 202 ]
http PUT "$U?digest=$DBIG" >/dev/null
check "96 MiB commit 201" [ "$HTTP_STATUS" = 201 ]
http GET "/v2/$R/blobs/$DBIG" >"$TEST_TMP/big.out"
check "96 MiB content identical" cmp -s "$TEST_TMP/big" "$TEST_TMP/big.out"
after=$(hwm)
note "server peak RSS ${before} kB -> ${after} kB"
check "upload and download did not buffer the blob (peak RSS grew < 48 MiB)" [ $((after - before)) -lt $((48 << 10)) ]
rm -f "$TEST_TMP/big" "$TEST_TMP/big.out"

# ---- zstd at rest: the callback response serves the logical bytes, Range included
cat >"$TEST_TMP/zstd.json" <<'EOF'
{ "storage": { "zstd_at_rest": true } }
EOF
start_server "$TEST_TMP/data-zstd" "$TEST_TMP/zstd.json"
for i in $(seq 60000); do echo "line $i of a very compressible blob"; done >"$TEST_TMP/z"
DZ=$(dig "$TEST_TMP/z")
SZ=$(stat -c %s "$TEST_TMP/z")
http POST "/v2/$R/blobs/uploads/?digest=$DZ" --data-binary @"$TEST_TMP/z" >/dev/null
check "zstd: push 201" [ "$HTTP_STATUS" = 201 ]
check "zstd: stored compressed" [ "$(find "$TEST_TMP/data-zstd/blobs" -type f -name "${DZ#sha256:}*" -printf '%s\n' | sort -n | head -n1)" -lt "$SZ" ]
http GET "/v2/$R/blobs/$DZ" >"$TEST_TMP/z.out"
check "zstd: GET identical bytes" cmp -s "$TEST_TMP/z" "$TEST_TMP/z.out"
check "zstd: Content-Length is the logical size" [ "$(header Content-Length)" = "$SZ" ]
http GET "/v2/$R/blobs/$DZ" -H "Range: bytes=1048000-1049999" >"$TEST_TMP/z.out"
check "zstd: Range across a frame boundary 206" [ "$HTTP_STATUS" = 206 ]
check "zstd: Range bytes" cmp -s "$TEST_TMP/z.out" <(head -c 1050000 "$TEST_TMP/z" | tail -c 2000)
http HEAD "/v2/$R/blobs/$DZ" -I >/dev/null
check "zstd: HEAD Content-Length" [ "$(header Content-Length)" = "$SZ" ]

done_testing
