# Helpers of the gc integration tests (source after tests/lib.sh): curl pushes of small images.

# push_blob REPO FILE -> prints the digest (single POST upload); non-zero if refused
push_blob() {
        local repo=$1 file=$2 d code
        d="sha256:$(sha256_of "$file")"
        code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/octet-stream' \
                --data-binary @"$file" "$URL/v2/$repo/blobs/uploads/?digest=$d") || return 1
        [ "$code" = 201 ] || { echo "push_blob $repo $d: HTTP $code" >&2; return 1; }
        echo "$d"
}

# make_image DIR SEED [SHARED_FILE] -> writes DIR/config.json DIR/layer DIR/manifest.json
make_image() {
        local dir=$1 seed=$2 shared=${3:-}
        mkdir -p "$dir"
        printf '{"architecture":"amd64","os":"linux","seed":"%s"}' "$seed" >"$dir/config.json"
        head -c 4096 /dev/urandom >"$dir/layer"
        local cd ld cs ls layers
        cd="sha256:$(sha256_of "$dir/config.json")"; cs=$(stat -c %s "$dir/config.json")
        ld="sha256:$(sha256_of "$dir/layer")"; ls=$(stat -c %s "$dir/layer")
        layers="{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"$ld\",\"size\":$ls}"
        if [ -n "$shared" ]; then
                layers="{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$(sha256_of "$shared")\",\"size\":$(stat -c %s "$shared")},$layers"
        fi
        printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
                "$cd" "$cs" "$layers" >"$dir/manifest.json"
}

# put_manifest REPO REF FILE -> prints the HTTP status; the body goes to FILE.resp
put_manifest() {
        curl -sS -o "$3.resp" -w '%{http_code}' -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
                --data-binary @"$3" "$URL/v2/$1/manifests/$2"
}

# push_image REPO TAG DIR [SHARED_FILE]: uploads blobs, then the manifest; on
# MANIFEST_BLOB_UNKNOWN (a GC with grace 0 swept a blob between upload and manifest) it
# re-uploads and retries, as a registry client must. Prints the manifest digest.
# PUSH_BEFORE_PUT, if set, is a command run once, between the first uploads and the first PUT.
push_image() {
        local repo=$1 tag=$2 dir=$3 shared=${4:-} try code
        for try in $(seq 100); do
                push_blob "$repo" "$dir/config.json" >/dev/null || return 1
                push_blob "$repo" "$dir/layer" >/dev/null || return 1
                [ -n "$shared" ] && { push_blob "$repo" "$shared" >/dev/null || return 1; }
                [ "$try" = 1 ] && [ -n "${PUSH_BEFORE_PUT:-}" ] && $PUSH_BEFORE_PUT
                code=$(put_manifest "$repo" "$tag" "$dir/manifest.json")
                if [ "$code" = 201 ]; then
                        echo "sha256:$(sha256_of "$dir/manifest.json")"
                        return 0
                fi
                if grep -q MANIFEST_BLOB_UNKNOWN "$dir/manifest.json.resp"; then
                        echo "retry" >>"$dir/retries"
                        continue
                fi
                echo "push_image $repo:$tag: HTTP $code $(cat "$dir/manifest.json.resp")" >&2
                return 1
        done
        return 1
}

# verify_image REPO TAG DIGEST: the manifest and every blob it names download and hash right
verify_image() {
        local repo=$1 tag=$2 want=$3 tmp d
        tmp="$TEST_TMP/verify.$RANDOM"
        curl -sSf -H 'Accept: application/vnd.oci.image.manifest.v1+json' -o "$tmp" "$URL/v2/$repo/manifests/$tag" || return 1
        [ "sha256:$(sha256_of "$tmp")" = "$want" ] || { echo "manifest $repo:$tag digest mismatch" >&2; return 1; }
        for d in $(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(" ".join([m["config"]["digest"]]+[l["digest"] for l in m["layers"]]))' "$tmp"); do
                curl -sSf -o "$tmp.blob" "$URL/v2/$repo/blobs/$d" || { echo "blob $d of $repo:$tag missing" >&2; return 1; }
                [ "sha256:$(sha256_of "$tmp.blob")" = "$d" ] || { echo "blob $d of $repo:$tag corrupt" >&2; return 1; }
        done
        rm -f "$tmp" "$tmp.blob"
}

jq_get() { python3 -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    d = d[int(k)] if isinstance(d, list) else d.get(k)
print("" if d is None else d)' "$1"; }

# req METHOD PATH [curl args]: like http, but keeps HTTP_STATUS in this shell; body in $OUT
req() { http "$@" >"$TEST_TMP/req.out"; OUT=$(cat "$TEST_TMP/req.out"); }
