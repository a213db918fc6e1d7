#!/usr/bin/env bash
# A Debian 12 base image built without any container registry: `debootstrap --variant=minbase
# bookworm` from the Debian mirror this machine's apt is configured with, cleaned, and committed
# with buildah as localhost/plura-base:bookworm-<YYYYMMDD>. Prints the image by digest
# (localhost/plura-base@sha256:...), which `make image BASE_IMAGE=...` pins the Dockerfile to.
#
#   tools/make-debian-base.sh [--cache DIR] [--buildah "buildah --root R --runroot S --storage-driver vfs"]
#
# Cache (--cache DIR, e.g. /var/cache/plura-test-deploy): the debootstrapped tree is kept as
# DIR/base/bookworm-<mirror hash>-<YYYYMMDD>.tar, keyed by the mirror and the UTC date, so the
# base is rebuilt (with that day's security updates) once a day, not on every run; debootstrap's
# .deb files are kept in DIR/debs so a rebuild downloads only what changed. Without --cache
# everything happens in a temporary directory and is removed (a clean CI machine: ~3 minutes).
# The image itself lives in buildah's storage; if an image of the same key is there already it is
# reused as it is, and its digest stays the same.
#
# Needs root (debootstrap), debootstrap, buildah, and the mirror reachable.
set -euo pipefail

CACHE=
BUILDAH=buildah
while [ $# -gt 0 ]; do
        case $1 in
        --cache) CACHE=$2; shift 2 ;;
        --buildah) BUILDAH=$2; shift 2 ;;
        -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "make-debian-base: unknown argument $1" >&2; exit 2 ;;
        esac
done
read -r -a B <<<"$BUILDAH"
SUITE=bookworm
log() { echo "make-debian-base: $*" >&2; }

# The mirrors apt uses here: deb822 .sources files (Debian 12's default) or one-line sources.list.
# The first URI that serves $SUITE, and the one that serves $SUITE-security.
apt_mirror() { # SUITE -> URI
        local want=$1 f
        for f in /etc/apt/sources.list.d/*.sources; do
                [ -r "$f" ] || continue
                # paragraphs: Types/URIs/Suites; a paragraph with "Enabled: no" is skipped
                awk -v want="$want" '
                        function flush() { if (deb && !disabled) for (i = 1; i <= ns; i++) if (s[i] == want) { print uri; found = 1; exit } deb = 0; disabled = 0; ns = 0; uri = "" }
                        /^[ \t]*#/ { next }
                        /^[ \t]*$/ { flush(); next }
                        tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
                        tolower($1) == "uris:" { uri = $2 }
                        tolower($1) == "suites:" { ns = 0; for (i = 2; i <= NF; i++) s[++ns] = $i }
                        tolower($1) == "enabled:" && tolower($2) == "no" { disabled = 1 }
                        END { if (!found) flush() }' "$f"
        done | head -n1 | grep . && return 0
        cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
                awk -v want="$want" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++; if ($2 ~ /^\[/) i++; if ($(i + 1) == want) { print $i; exit } }' |
                head -n1 | grep .
}
MIRROR=$(apt_mirror "$SUITE") || { log "no Debian mirror for $SUITE in /etc/apt/sources.list(.d)"; exit 1; }
SECURITY=$(apt_mirror "$SUITE-security" || true)
MIRROR=${MIRROR%/}
DATE=$(date -u +%Y%m%d)
KEY=$SUITE-$(printf '%s %s' "$MIRROR" "$SECURITY" | sha256sum | cut -c1-12)-$DATE
NAME=localhost/plura-base
TAG=$SUITE-$DATE
log "mirror $MIRROR${SECURITY:+, security $SECURITY}; key $KEY"

image_digest() { "${B[@]}" images --digests --format '{{.Digest}}' "$NAME:$TAG" 2>/dev/null | head -n1; }
label_of() { "${B[@]}" inspect --type image --format "{{index .OCIv1.Config.Labels \"$1\"}}" "$NAME:$TAG" 2>/dev/null; }

# the image of today's key is in buildah's storage already: reuse it (same digest)
if [ "$(label_of org.plura.base.key)" = "$KEY" ] && d=$(image_digest) && [ -n "$d" ]; then
        log "reusing $NAME:$TAG (cached in buildah's storage)"
        echo "$NAME@$d"
        exit 0
fi

WORK=$(mktemp -d /tmp/plura-base.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
TARBALL=
if [ -n "$CACHE" ]; then
        mkdir -p "$CACHE/base" "$CACHE/debs"
        TARBALL=$CACHE/base/$KEY.tar
fi
if [ -n "$TARBALL" ] && [ -s "$TARBALL" ]; then
        log "debootstrap tree from the cache: $TARBALL"
else
        ROOT=$WORK/root
        t0=$(date +%s)
        log "debootstrap --variant=minbase $SUITE from $MIRROR ..."
        debootstrap --variant=minbase ${CACHE:+--cache-dir="$CACHE/debs"} "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
                { tail -n 30 "$WORK/debootstrap.log" >&2; log "debootstrap failed"; exit 1; }
        # apt inside the image uses the same mirrors (with security updates); no caches, logs or
        # machine identity in the image
        {
                echo "deb $MIRROR $SUITE main"
                echo "deb $MIRROR $SUITE-updates main"
                [ -n "$SECURITY" ] && echo "deb ${SECURITY%/} $SUITE-security main"
        } >"$ROOT/etc/apt/sources.list"
        rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/log/* "$ROOT"/tmp/* \
                "$ROOT"/var/cache/debconf/*-old "$ROOT"/var/lib/dpkg/*-old
        : >"$ROOT/etc/machine-id"
        rm -f "$ROOT/etc/hostname" "$ROOT/etc/resolv.conf"
        # what a container runtime does not need started: tell apt's maintainer scripts so
        printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
        chmod 755 "$ROOT/usr/sbin/policy-rc.d"
        tar -C "$ROOT" --numeric-owner -cf "$WORK/root.tar" .
        rm -rf "$ROOT"
        if [ -n "$TARBALL" ]; then
                mv "$WORK/root.tar" "$TARBALL.tmp" && mv "$TARBALL.tmp" "$TARBALL"
                # keep today's tree and the previous one (a run across midnight), drop older ones
                find "$CACHE/base" -maxdepth 1 -name "$SUITE-*.tar" | sort -t- -k3 | head -n -2 | xargs -r rm -f
        else
                TARBALL=$WORK/root.tar
        fi
        log "debootstrap took $(($(date +%s) - t0)) s"
fi

ctr=$("${B[@]}" from --quiet scratch)
cleanup_ctr() { "${B[@]}" rm "$ctr" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup_ctr EXIT
mnt=$("${B[@]}" mount "$ctr")
tar -C "$mnt" --numeric-owner -xf "$TARBALL"
"${B[@]}" umount "$ctr" >/dev/null
"${B[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash \
        --os linux --arch "$(dpkg --print-architecture)" \
        --label org.opencontainers.image.title="Debian $SUITE (minbase)" \
        --label org.opencontainers.image.source="debootstrap --variant=minbase $SUITE $MIRROR" \
        --label org.opencontainers.image.created="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        --label org.plura.base.key="$KEY" "$ctr"
"${B[@]}" commit --quiet --format docker --rm "$ctr" "$NAME:$TAG" >/dev/null
trap 'rm -rf "$WORK"' EXIT
# untag (and so let prune remove) the bases of earlier days
"${B[@]}" images --format '{{.Repository}}:{{.Tag}}' "$NAME" 2>/dev/null | grep -v ":$TAG\$" | xargs -r "${B[@]}" rmi >/dev/null 2>&1 || true
d=$(image_digest)
[ -n "$d" ] || { log "no digest for $NAME:$TAG"; exit 1; }
echo "$NAME@$d"
