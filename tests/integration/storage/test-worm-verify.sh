#!/usr/bin/env bash
# POST /v1/registry/worm/verify looks only at bundles of the WORM target (worm.path): the
# "<worm.path>/<case_id>/<bundle>" path that export answers or "<case_id>/<bundle>". Whether a
# path is one is decided from its text, so any other path gets the same 400 whether it exists
# or not (it answered 404 "No such file or directory" for a missing path and 400 for an existing
# one: an oracle for any path on the server); "..", and symbolic links inside the target, do not
# lead out of it.
. "$PLURA_SOURCE_ROOT/tests/lib.sh"

WORM="$TEST_TMP/worm"
mkdir -p "$WORM"
cat >"$TEST_TMP/config.json" <<EOF
{ "worm": { "path": "$WORM/", "immutable": false } }
EOF
start_server "$TEST_TMP/data" "$TEST_TMP/config.json"

api() { http "$@" >"$TEST_TMP/out"; BODY=$(cat "$TEST_TMP/out"); }
verify() { api POST /v1/registry/worm/verify -H 'Content-Type: application/json' --data-binary "$(jq -cn --arg b "$1" '{bundle: $b}')"; }

# ---- a real bundle
printf 'held content' >"$TEST_TMP/blob"
D=sha256:$(sha256_of "$TEST_TMP/blob")
http POST "/v2/test/held/blobs/uploads/?digest=$D" --data-binary @"$TEST_TMP/blob" >/dev/null
[ "$HTTP_STATUS" = 201 ] || fail "blob push: $HTTP_STATUS"
api POST /v1/registry/holds -d "{\"digest\":\"$D\",\"case_id\":\"INC-1\",\"reason\":\"rca\"}"
[ "$HTTP_STATUS" = 201 ] || fail "hold: $HTTP_STATUS $BODY"
api POST /v1/registry/worm/export -d '{"case_id":"INC-1"}'
[ "$HTTP_STATUS" = 201 ] || fail "export: $HTTP_STATUS $BODY"
B=$(jq -r '.bundles[0].bundle' <<<"$BODY")
NAME=$(basename "$B")
note "bundle $B"

verify "$B"
check "the bundle path export answered verifies (200, ok)" [ "$HTTP_STATUS" = 200 -a "$(jq -r .status <<<"$BODY")" = ok ]
verify "INC-1/$NAME"
check "so does its id <case_id>/<bundle>" [ "$HTTP_STATUS" = 200 -a "$(jq -r .status <<<"$BODY")" = ok ]
verify "$(realpath "$WORM")//INC-1/./$NAME/"
check "and the resolved worm.path with // and ./ in it" [ "$HTTP_STATUS" = 200 -a "$(jq -r .status <<<"$BODY")" = ok ]

# ---- outside: one answer, whether or not the path exists
mkdir -p "$TEST_TMP/secret/case" && echo s >"$TEST_TMP/secret/case/file"
# answer PATH: status and body with the path itself replaced, so two paths can be compared
answer() { verify "$1"; printf '%s %s' "$HTTP_STATUS" "$(jq -c --arg p "$1" 'walk(if type == "string" then split($p) | join("<path>") else . end)' <<<"$BODY")"; }
same_refusal() { # EXISTING MISSING
        local a b
        a=$(answer "$1"); b=$(answer "$2")
        [ "${a%% *}" = 400 ] && [ "$a" = "$b" ] || { note "'$1' -> $a"; note "'$2' -> $b"; return 1; }
}
check "/etc/passwd and a missing path: the same 400" same_refusal /etc/passwd /etc/no-such-file-here
check "/etc and a missing directory: the same 400" same_refusal /etc /no-such-dir
check "a file of the data directory and a missing one: the same 400" same_refusal "$TEST_TMP/data/index/CURRENT" "$TEST_TMP/data/index/NOPE"
check "../ out of worm.path: the same 400 as a missing path" same_refusal "$WORM/../secret/case" "$WORM/../nosecret/case"
check "../ in a bundle id: the same 400" same_refusal "../secret/case" "../nosecret/case"
check "a directory two levels below a non-worm directory: the same 400" same_refusal "$TEST_TMP/secret/case" "$TEST_TMP/nosecret/case"
verify "$TEST_TMP/secret/case"
check "the refusal is 400 INVALID_REQUEST naming the field" [ "$(jq -r '.errors[0].code' <<<"$BODY")" = INVALID_REQUEST -a \
        "$(jq -r '.errors[0].message | startswith("bundle: ")' <<<"$BODY")" = true ]
check "and it hashed nothing" [ "$(jq -r '.errors | length' <<<"$BODY")" = 1 -a "$(jq -r '.files_checked // "none"' <<<"$BODY")" = none ]
check "the case directory alone is not a bundle" same_refusal "$WORM/INC-1" "$WORM/INC-9"

# ---- inside the target, symbolic links lead nowhere
ln -s "$TEST_TMP/secret" "$WORM/LINK-1"
ln -s "$TEST_TMP/secret/case" "$WORM/INC-1/link-bundle"
not_found() { verify "$1"; [ "$HTTP_STATUS" = 404 ] && [ "$(jq -r '.errors[0].code' <<<"$BODY")" = BUNDLE_UNKNOWN ]; }
check "a case directory that is a symlink out: 404 like a missing bundle" not_found "$WORM/LINK-1/case"
check "a bundle that is a symlink out: 404 like a missing bundle" not_found "$WORM/INC-1/link-bundle"
check "a missing bundle of the target: 404" not_found "INC-1/20990101T000000.000000000Z-000000000000"
check "a missing case of the target: 404" not_found "$WORM/INC-2/$NAME"

done_testing
