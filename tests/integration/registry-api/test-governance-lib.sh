# Helpers for the governance tests: build small OCI images, cosign simple-signing signatures
# (made with openssl) and SBOM artifacts, and push them with curl. Source after tests/lib.sh.

EMPTY_JSON_DIGEST=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a
COSIGN_SS=application/vnd.dev.cosign.simplesigning.v1+json
OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
OCI_INDEX=application/vnd.oci.image.index.v1+json
IMG_DIR="$TEST_TMP/img"
mkdir -p "$IMG_DIR"

size_of() { stat -c %s "$1"; }

# push_blob REPO FILE: monolithic upload (POST a session, PUT the bytes with ?digest=)
push_blob() {
        local repo=$1 file=$2 digest loc status
        digest="sha256:$(sha256_of "$file")"
        loc=$(curl -sS -o /dev/null -D - -X POST "$URL/v2/$repo/blobs/uploads/" | grep -i '^location:' | cut -d' ' -f2- | tr -d '\r')
        [ -n "$loc" ] || fail "no upload location for $repo"
        case "$loc" in http*) ;; *) loc="$URL$loc" ;; esac
        case "$loc" in *\?*) loc="$loc&digest=$digest" ;; *) loc="$loc?digest=$digest" ;; esac
        status=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$file" "$loc")
        [ "$status" = 201 ] || fail "blob upload of $file to $repo: HTTP $status"
        echo "$digest"
}

# put_manifest REPO REF FILE [MEDIA_TYPE]: prints the HTTP status, body in $TEST_TMP/last-put.json
put_manifest() {
        local repo=$1 ref=$2 file=$3 mt=${4:-$OCI_MANIFEST}
        curl -sS -o "$TEST_TMP/last-put.json" -w '%{http_code}' -X PUT -H "Content-Type: $mt" \
                --data-binary @"$file" "$URL/v2/$repo/manifests/$ref"
}

manifest_digest() { echo "sha256:$(sha256_of "$1")"; }

# make_image REPO NAME LABELS_JSON ANNOTATIONS_JSON: pushes a config and a real tar.gz layer
# to REPO and writes the manifest to $IMG_DIR/NAME.json (not pushed); prints its digest.
make_image() {
        local repo=$1 name=$2 labels=${3:-'{}'} ann=${4:-'{}'} d="$IMG_DIR/$2"
        mkdir -p "$d/fs/etc"
        printf 'NAME=%s\nNONCE=%s\n' "$name" "$(od -An -tx8 -N8 /dev/urandom | tr -d ' ')" >"$d/fs/etc/os-release"
        tar -C "$d/fs" --owner=0 --group=0 --numeric-owner -czf "$d/layer.tar.gz" etc
        local diffid cfgd layd
        diffid="sha256:$(gzip -dc "$d/layer.tar.gz" | sha256sum | cut -d' ' -f1)"
        jq -nc --argjson labels "$labels" --arg diff "$diffid" \
                '{architecture:"amd64", os:"linux", config:{Labels:$labels}, rootfs:{type:"layers", diff_ids:[$diff]}}' >"$d/config.json"
        cfgd=$(push_blob "$repo" "$d/config.json")
        layd=$(push_blob "$repo" "$d/layer.tar.gz")
        jq -nc --arg cd "$cfgd" --argjson cs "$(size_of "$d/config.json")" --arg ld "$layd" \
                --argjson ls "$(size_of "$d/layer.tar.gz")" --argjson ann "$ann" \
                '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
                  config:{mediaType:"application/vnd.oci.image.config.v1+json", digest:$cd, size:$cs},
                  layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar+gzip", digest:$ld, size:$ls}]}
                 + (if $ann == {} then {} else {annotations:$ann} end)' >"$IMG_DIR/$name.json"
        manifest_digest "$IMG_DIR/$name.json"
}

# good_labels VERSION: the four required OCI labels
good_labels() {
        jq -nc --arg v "$1" '{"org.opencontainers.image.version":$v, "org.opencontainers.image.revision":"ab3c9f1d",
                "org.opencontainers.image.source":"https://git.example.com/search", "org.opencontainers.image.created":"2024-12-26T09:00:00Z"}'
}

# make_keypair NAME: P-256 key pair $TEST_TMP/NAME.key / NAME.pub
make_keypair() {
        openssl ecparam -name prime256v1 -genkey -noout -out "$TEST_TMP/$1.key" 2>/dev/null
        openssl ec -in "$TEST_TMP/$1.key" -pubout -out "$TEST_TMP/$1.pub" 2>/dev/null
}

# cosign_payload REPO DIGEST FILE: cosign's simple-signing payload
cosign_payload() {
        jq -nc --arg ref "$HOSTPORT/$1" --arg d "$2" \
                '{critical:{identity:{"docker-reference":$ref}, image:{"docker-manifest-digest":$d}, type:"cosign container image signature"}, optional:null}' >"$3"
}

# sign_image REPO DIGEST KEYNAME [MODE]: pushes a cosign signature as the sha256-<hex>.sig tag
# and as an OCI 1.1 referrer. MODE: good (default), tamper (signature bytes altered after
# signing), payload (payload edited after signing), sigtag-only, referrer-only.
sign_image() {
        local repo=$1 digest=$2 key=$3 mode=${4:-good} d="$IMG_DIR/sig-${2#sha256:}-$3-${4:-good}"
        mkdir -p "$d"
        cosign_payload "$repo" "$digest" "$d/payload.json"
        openssl dgst -sha256 -sign "$TEST_TMP/$key.key" -out "$d/sig.der" "$d/payload.json"
        local sig
        if [ "$mode" = tamper ]; then
                # flip one byte inside the DER signature value (keeps valid base64 and DER framing)
                python3 - "$d/sig.der" <<'EOF'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[-3] ^= 0x01; open(p, 'wb').write(b)
EOF
        fi
        sig=$(base64 -w0 "$d/sig.der")
        if [ "$mode" = payload ]; then
                jq -c '.optional = {"tampered": true}' "$d/payload.json" >"$d/p2" && mv "$d/p2" "$d/payload.json"
        fi
        local pd cfgd sd
        pd=$(push_blob "$repo" "$d/payload.json")
        printf '{}' >"$d/empty.json"
        cfgd=$(push_blob "$repo" "$d/empty.json")
        local psize; psize=$(size_of "$d/payload.json")
        if [ "$mode" != referrer-only ]; then
                jq -nc --arg pd "$pd" --argjson ps "$psize" --arg sig "$sig" \
                        '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
                          config:{mediaType:"application/vnd.oci.image.config.v1+json", digest:"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", size:2},
                          layers:[{mediaType:"application/vnd.dev.cosign.simplesigning.v1+json", digest:$pd, size:$ps,
                                   annotations:{"dev.cosignproject.cosign/signature":$sig}}]}' >"$d/sigtag.json"
                sd=$(put_manifest "$repo" "sha256-${digest#sha256:}.sig" "$d/sigtag.json")
                [ "$sd" = 201 ] || fail "pushing the .sig tag: HTTP $sd $(cat "$TEST_TMP/last-put.json")"
        fi
        if [ "$mode" != sigtag-only ]; then
                jq -nc --arg pd "$pd" --argjson ps "$psize" --arg sig "$sig" --arg subj "$digest" --argjson ss "$SUBJECT_SIZE" \
                        '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
                          artifactType:"application/vnd.dev.cosign.simplesigning.v1+json",
                          config:{mediaType:"application/vnd.oci.empty.v1+json", digest:"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", size:2},
                          layers:[{mediaType:"application/vnd.dev.cosign.simplesigning.v1+json", digest:$pd, size:$ps,
                                   annotations:{"dev.cosignproject.cosign/signature":$sig}}],
                          subject:{mediaType:"application/vnd.oci.image.manifest.v1+json", digest:$subj, size:$ss}}' >"$d/referrer.json"
                sd=$(put_manifest "$repo" "$(manifest_digest "$d/referrer.json")" "$d/referrer.json")
                [ "$sd" = 201 ] || fail "pushing the signature referrer: HTTP $sd $(cat "$TEST_TMP/last-put.json")"
        fi
}

# attach_sbom REPO DIGEST: a CycloneDX JSON SBOM as an OCI 1.1 artifact referring to DIGEST
attach_sbom() {
        local repo=$1 digest=$2 d="$IMG_DIR/sbom-${2#sha256:}"
        mkdir -p "$d"
        jq -nc --arg d "$digest" '{bomFormat:"CycloneDX", specVersion:"1.5", version:1,
                metadata:{component:{type:"container", name:"search", version:$d}},
                components:[{type:"library", name:"openssl", version:"3.0.15", purl:"pkg:deb/debian/openssl@3.0.15"}]}' >"$d/bom.json"
        local bd; bd=$(push_blob "$repo" "$d/bom.json")
        printf '{}' >"$d/empty.json"
        push_blob "$repo" "$d/empty.json" >/dev/null
        jq -nc --arg bd "$bd" --argjson bs "$(size_of "$d/bom.json")" --arg subj "$digest" --argjson ss "$SUBJECT_SIZE" \
                '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
                  artifactType:"application/vnd.cyclonedx+json",
                  config:{mediaType:"application/vnd.oci.empty.v1+json", digest:"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", size:2},
                  layers:[{mediaType:"application/vnd.cyclonedx+json", digest:$bd, size:$bs}],
                  subject:{mediaType:"application/vnd.oci.image.manifest.v1+json", digest:$subj, size:$ss}}' >"$d/manifest.json"
        local s; s=$(put_manifest "$repo" "$(manifest_digest "$d/manifest.json")" "$d/manifest.json")
        [ "$s" = 201 ] || fail "pushing the SBOM: HTTP $s $(cat "$TEST_TMP/last-put.json")"
}

# release_image REPO NAME TAG [sign=KEY|none] [sbom=yes|no] [labels=JSON]: build, push with TAG,
# sign, attach an SBOM; prints the digest.
release_image() {
        local repo=$1 name=$2 tag=$3 key=${4:-cosign} sbom=${5:-yes} labels=${6:-}
        [ -n "$labels" ] || labels=$(good_labels "$tag")
        local dg s
        dg=$(make_image "$repo" "$name" "$labels")
        s=$(put_manifest "$repo" "$tag" "$IMG_DIR/$name.json")
        [ "$s" = 201 ] || fail "push $repo:$tag: HTTP $s $(cat "$TEST_TMP/last-put.json")"
        SUBJECT_SIZE=$(size_of "$IMG_DIR/$name.json")
        case "$key" in
        none) ;;
        *:*) sign_image "$repo" "$dg" "${key%%:*}" "${key#*:}" ;;
        *) sign_image "$repo" "$dg" "$key" ;;
        esac
        [ "$sbom" = yes ] && attach_sbom "$repo" "$dg"
        echo "$dg"
}

# req METHOD PATH [curl args]: like http, but keeps the body in $BODY (and $HTTP_STATUS) in
# this shell (a command substitution would lose HTTP_STATUS)
req() { http "$@" >"$TEST_TMP/resp.body"; BODY=$(cat "$TEST_TMP/resp.body"); }

# v1 METHOD PATH [JSON]: /v1/registry call; body in $BODY, status in $HTTP_STATUS
v1() {
        local m=$1 p=$2
        if [ $# -ge 3 ]; then
                req "$m" "/v1/registry/$p" -H 'Content-Type: application/json' -H 'X-Plura-Actor: release-bot' --data-binary "$3"
        else
                req "$m" "/v1/registry/$p" -H 'X-Plura-Actor: release-bot'
        fi
}

promote() { v1 POST promote "$(jq -nc --arg r "$1" --arg f "$2" --arg t "$3" --arg d "$4" '{repo:$r, from:$f, to:$t, digest:$d}')"; }

# jqe FILTER: the last body ($BODY) satisfies a jq condition
jqe() { jq -e "$1" <<<"$BODY" >/dev/null; }
status_is() { [ "$HTTP_STATUS" = "$1" ] || { echo "# expected HTTP $1, got $HTTP_STATUS" >&2; return 1; }; }
# body_has TEXT: the last saved body ($BODY) contains TEXT
body_has() { grep -q -- "$1" <<<"$BODY" || { echo "# '$1' not in: $BODY" >&2; return 1; }; }
