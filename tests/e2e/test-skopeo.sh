#!/usr/bin/env bash
# End to end with a real client: skopeo pushes generated OCI and Docker schema 2 images
# (real tar.gz layers, a layer shared between images, a two-platform index) into a real
# `plura serve`, inspects them, lists tags, pulls them back out and compares every byte,
# re-pushes (no blob is uploaded twice), copies between repositories (cross-repo mount)
# and deletes.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"
. "$PLURA_SOURCE_ROOT/tests/e2e/e2e-lib.sh"

L="$TEST_TMP/layout"      # OCI media types
D="$TEST_TMP/docker"      # Docker schema 2 media types
make_layout --out "$L" --seed 1 --describe "$L.json"
make_layout --out "$D" --seed 2 --format docker --describe "$D.json"
DATA="$TEST_TMP/data"
start_registry "$DATA"
R="$HOSTPORT/e2e"

desc() { jq -r "$2" "$1"; }
# Every blob digest a ref's closure holds (manifest/index, per-platform manifests, configs, layers).
closure() { jq -r --arg r "$2" '.refs[$r] | .digest, (.images[] | .digest, .config.digest, .layers[].digest)' "$1" | sort -u; }

# same_blobs LAYOUT_BLOBS OUT_BLOBS DESCRIBE REF: OUT holds exactly the ref's closure, byte-identical
same_blobs() {
        local src=$1 out=$2 json=$3 ref=$4 f ok=0
        diff <(closure "$json" "$ref" | sed 's/^sha256://') <(cd "$out" && ls | grep -E '^[0-9a-f]{64}$' | sort) >&2 || ok=1
        for f in $(closure "$json" "$ref" | sed 's/^sha256://'); do
                cmp -s "$src/$f" "$out/$f" || { echo "# blob $f differs" >&2; ok=1; }
                [ "$(sha256sum <"$out/$f" | cut -d' ' -f1)" = "$f" ] || { echo "# blob $f does not verify" >&2; ok=1; }
        done
        return $ok
}

# ---- push: two images sharing layers, a multi-arch index, Docker schema 2 image and list
check "push base (oci)" skopeo_push "oci:$L:base" "docker://$R/base:one"
check "push app (oci, shares two layers with base)" skopeo_push "oci:$L:app" "docker://$R/app:one"
check "push multi --all (oci index, linux/amd64 + linux/arm64)" skopeo_push --all "oci:$L:multi" "docker://$R/multi:one"
check "push base (docker schema 2)" skopeo_push "dir:$D/dir/base" "docker://$R/docker-base:one"
check "push multi --all (docker manifest list)" skopeo_push --all "dir:$D/dir/multi" "docker://$R/docker-multi:one"
check "push base again under a second tag" skopeo_push "oci:$L:base" "docker://$R/base:two"

# ---- inspect: digests and layers as generated
inspect_matches() {
        local json=$1 ref=$2 repo=$3 out
        # an index resolves to the amd64 image whatever the host's architecture
        out=$(skopeo_q inspect --override-os linux --override-arch amd64 "docker://$R/$repo:one") || return 1
        [ "$(jq -r .Digest <<<"$out")" = "$(desc "$json" ".refs.$ref.digest")" ] || { echo "# digest: $(jq -r .Digest <<<"$out")" >&2; return 1; }
        # single-platform refs: the layers; an index: the amd64 image's layers
        [ "$(jq -c .Layers <<<"$out")" = "$(jq -c "[.refs.$ref.images[0].layers[].digest]" "$json")" ] || { echo "# layers: $(jq -c .Layers <<<"$out")" >&2; return 1; }
}
check "inspect base: digest and layers" inspect_matches "$L.json" base base
check "inspect app: digest and layers" inspect_matches "$L.json" app app
check "inspect multi: index digest, amd64 layers" inspect_matches "$L.json" multi multi
check "inspect docker-base: digest and layers" inspect_matches "$D.json" base docker-base
check "inspect docker-multi: list digest" inspect_matches "$D.json" multi docker-multi

raw_matches() {
        local layout=$1 json=$2 ref=$3 repo=$4
        cmp -s <(skopeo_q inspect --raw "docker://$R/$repo:one") "$layout/blobs/sha256/$(desc "$json" ".refs.$ref.digest" | cut -d: -f2)"
}
check "inspect --raw base: exact manifest bytes" raw_matches "$L" "$L.json" base base
check "inspect --raw multi: exact index bytes" raw_matches "$L" "$L.json" multi multi
check "inspect --raw docker-multi: exact manifest list bytes" raw_matches "$D" "$D.json" multi docker-multi
check "inspect --config --raw base: exact config bytes" cmp -s <(skopeo_q inspect --config --raw "docker://$R/base:one") \
        "$L/blobs/sha256/$(desc "$L.json" .refs.base.images[0].config.digest | cut -d: -f2)"
check "inspect arm64 instance of multi" test "$(skopeo_q inspect --override-arch arm64 --override-variant v8 "docker://$R/multi:one" | jq -r .Architecture)" = arm64

# ---- list-tags
check "list-tags base: one two" test "$(skopeo_q list-tags "docker://$R/base" | jq -c '.Tags | sort')" = '["one","two"]'
check "list-tags multi: one" test "$(skopeo_q list-tags "docker://$R/multi" | jq -c .Tags)" = '["one"]'

# ---- pull back out and compare every digest and byte
for ref in base app; do
        check "pull $ref to a new oci layout" skopeo_pull "docker://$R/$ref:one" "oci:$TEST_TMP/out-$ref:$ref"
        check "pulled $ref: index.json names the pushed digest" test \
                "$(jq -r .manifests[0].digest "$TEST_TMP/out-$ref/index.json")" = "$(desc "$L.json" ".refs.$ref.digest")"
        check "pulled $ref: blobs identical to the layout's" same_blobs "$L/blobs/sha256" "$TEST_TMP/out-$ref/blobs/sha256" "$L.json" $ref
done
check "pull multi --all" skopeo_pull --all "docker://$R/multi:one" "oci:$TEST_TMP/out-multi:multi"
check "pulled multi: index digest" test "$(jq -r .manifests[0].digest "$TEST_TMP/out-multi/index.json")" = "$(desc "$L.json" .refs.multi.digest)"
check "pulled multi: both platforms' blobs identical" same_blobs "$L/blobs/sha256" "$TEST_TMP/out-multi/blobs/sha256" "$L.json" multi
check "pull docker-base to dir:" skopeo_pull "docker://$R/docker-base:one" "dir:$TEST_TMP/out-dbase"
check "pulled docker-base: manifest.json identical" cmp -s "$D/dir/base/manifest.json" "$TEST_TMP/out-dbase/manifest.json"
check "pulled docker-base: every file identical" diff -r "$D/dir/base" "$TEST_TMP/out-dbase"
check "pull docker-multi --all to dir:" skopeo_pull --all "docker://$R/docker-multi:one" "dir:$TEST_TMP/out-dmulti"
check "pulled docker-multi: every file identical" diff -r "$D/dir/multi" "$TEST_TMP/out-dmulti"

# ---- a blob is stored once however many repositories hold it
if is_plura; then
        n_distinct=$( (closure "$L.json" base; closure "$L.json" app; closure "$L.json" multi) | sort -u | wc -l)
        n_layers_cfgs=$( (jq -r '.refs[] | .images[] | .config.digest, .layers[].digest' "$L.json"; \
                          jq -r '.refs.base, .refs.multi | .images[] | .config.digest, .layers[].digest' "$D.json") | sort -u | wc -l)
        # manifests live in the index, blobs (configs, layers) as files: one file per distinct blob
        check "shared layers stored once (files = distinct blobs)" test "$(blob_files "$DATA" | wc -l)" -eq "$n_layers_cfgs"
        check "every blob file verifies against its name" verify_blob_files "$DATA"
        note "$n_distinct distinct digests, $n_layers_cfgs distinct config/layer blobs"
fi

# ---- pushing the same image twice uploads no blob
log_mark
check "push base again" skopeo_push "oci:$L:base" "docker://$R/base:one"
check "push multi --all again" skopeo_push --all "oci:$L:multi" "docker://$R/multi:one"
check "second push uploaded no blob (no upload POST/PATCH/PUT in the access log)" test "$(count_blob_uploads)" -eq 0
check "second push still logged its manifest PUT (the access log is read)" \
        grep -qE 'PUT[^"]* /v2/e2e/base/manifests/one' <(log_since_mark)

# ---- registry to registry copy into another repository: blobs are mounted, not re-sent
log_mark
check "copy docker://…/base:one docker://…/other/base:copied" \
        "${SKOPEO[@]}" copy -q --src-tls-verify=false --dest-tls-verify=false "docker://$R/base:one" "docker://$R/other/base:copied"
n_layers=$(jq '.refs.base.images[0].layers | length' "$L.json")
check "cross-repo copy mounted every layer ($(count_blob_mounts) mounts)" test "$(count_blob_mounts)" -ge "$n_layers"
# skopeo re-sends the (small) config blob without trying a mount; layers must not move
check "cross-repo copy opened at most one upload session (the config)" test "$(count_upload_sessions)" -le 1
check "copied manifest has the same digest" test "$(manifest_digest e2e/other/base copied)" = "$(desc "$L.json" .refs.base.digest)"
check "copied image pulls byte-identical" skopeo_pull "docker://$R/other/base:copied" "oci:$TEST_TMP/out-copied:base"
check "copied image blobs identical" same_blobs "$L/blobs/sha256" "$TEST_TMP/out-copied/blobs/sha256" "$L.json" base
check "catalog lists every repository" test "$(catalog | tr '\n' ' ')" = \
        "e2e/app e2e/base e2e/docker-base e2e/docker-multi e2e/multi e2e/other/base "

# ---- delete
check "skopeo delete app:one" "${SKOPEO[@]}" delete --tls-verify=false "docker://$R/app:one"
check "inspect of the deleted image fails" bash -c "! skopeo --insecure-policy inspect --tls-verify=false docker://$R/app:one >/dev/null 2>&1"
check "manifest GET by digest of the deleted image is 404" test \
        "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v2/e2e/app/manifests/$(desc "$L.json" .refs.app.digest)")" = 404
check "base (shares layers with app) still pulls byte-identical" skopeo_pull "docker://$R/base:two" "oci:$TEST_TMP/out-after-delete:base"
check "base blobs identical after deleting app" same_blobs "$L/blobs/sha256" "$TEST_TMP/out-after-delete/blobs/sha256" "$L.json" base
check "server still up" test "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v2/")" = 200

done_testing
