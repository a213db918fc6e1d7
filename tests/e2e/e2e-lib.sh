# Helpers shared by the end-to-end tests (tests/e2e/test-*.sh). Source after tests/lib.sh.
#
# E2E_REGISTRY=distribution runs the registry-agnostic parts of a test against CNCF
# Distribution (`docker-registry`) instead of plura: a check of the harness itself.
# plura-only checks (fsck, data dir layout) are skipped then.

E2E_REGISTRY=${E2E_REGISTRY:-plura}
E2E_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# skopeo keeps a blob-info cache (which repositories hold which blob, used to choose
# cross-repository mounts); keep it inside the test so runs do not influence each other.
mkdir -p "$TEST_TMP/home" "$TEST_TMP/run"
export HOME="$TEST_TMP/home" XDG_DATA_HOME="$TEST_TMP/home/.local/share" XDG_RUNTIME_DIR="$TEST_TMP/run"
if [ "$(id -u)" -eq 0 ]; then
        # as root, containers/image ignores HOME for the cache (/var/lib/containers/cache);
        # these make it take the per-user path under $HOME.
        export _CONTAINERS_USERNS_CONFIGURED=done _CONTAINERS_ROOTLESS_UID=1000
fi

SKOPEO=(skopeo --insecure-policy)
skopeo_push() { "${SKOPEO[@]}" copy -q --dest-tls-verify=false "$@"; }
skopeo_pull() { "${SKOPEO[@]}" copy -q --src-tls-verify=false "$@"; }
skopeo_q() { "${SKOPEO[@]}" "$1" --tls-verify=false "${@:2}"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_distribution DATA: CNCF Distribution on a loopback port, access log in server.log.
start_distribution() {
        local data=$1 port cfg
        port=$(free_port)
        cfg="$TEST_TMP/distribution.yml"
        mkdir -p "$data"
        cat >"$cfg" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
        docker-registry serve "$cfg" >>"$TEST_TMP/server.log" 2>&1 &
        SERVER_PID=$!
        TEST_PIDS+=("$SERVER_PID")
        HOSTPORT="127.0.0.1:$port"
        URL="http://$HOSTPORT"
        for _ in $(seq 100); do
                curl -sf -o /dev/null "$URL/v2/" && break
                kill -0 "$SERVER_PID" 2>/dev/null || fail "docker-registry exited during start"
                sleep 0.05
        done
        export URL HOSTPORT SERVER_PID
}

# start_registry DATA [CONFIG]: plura serve (or Distribution with E2E_REGISTRY=distribution).
start_registry() {
        if [ "$E2E_REGISTRY" = distribution ]; then start_distribution "$1"; else start_server "$@"; fi
}

is_plura() { [ "$E2E_REGISTRY" = plura ]; }

# Marks the current end of the access log; log_since_mark prints what was logged after it.
log_mark() { LOG_MARK=$(wc -l <"$TEST_TMP/server.log"); }
log_since_mark() { tail -n +"$((LOG_MARK + 1))" "$TEST_TMP/server.log"; }
# Blob upload requests in the access log since the mark (works with plura's access log and
# Distribution's combined log; plura does not log query strings, so a mount is told apart
# by its status: a mount answers 201, a new upload session 202).
UPLOAD_RE='/v2/[^ ]*/blobs/uploads/[^ ]*( HTTP/1\.[01]")?'
# requests that carry blob bytes or open a session for them: POST ... 202, PATCH, PUT
count_blob_uploads() {
        log_since_mark | grep -cE "(POST[^\"]* $UPLOAD_RE 202|PATCH[^\"]* $UPLOAD_RE|PUT[^\"]* $UPLOAD_RE)" || true
}
count_upload_sessions() {
        log_since_mark | grep -cE "POST[^\"]* $UPLOAD_RE 202" || true
}
# successful cross-repository mounts: POST ... 201
count_blob_mounts() {
        log_since_mark | grep -cE "POST[^\"]* $UPLOAD_RE 201" || true
}

# blob_files DATA: sorted list of committed blob files in a plura data dir.
blob_files() { (cd "$1" && find blobs -type f 2>/dev/null | sort); }

# verify_blob_files DATA: every committed blob file's content hashes to its name.
verify_blob_files() {
        local data=$1 f bad=0
        while IFS= read -r f; do
                local want=${f##*/} algo
                algo=$(basename "$(dirname "$(dirname "$f")")")
                local got
                got=$("${algo}sum" "$data/$f" | cut -d' ' -f1)
                [ "$got" = "$want" ] || { echo "# blob file $f does not verify (content $got)" >&2; bad=1; }
        done < <(blob_files "$data")
        return $bad
}

# catalog: the repository list, one per line, sorted (follows pagination).
catalog() { curl -sfS "$URL/v2/_catalog?n=1000" | jq -r '.repositories[]?' | sort; }
tags_of() { curl -sfS "$URL/v2/$1/tags/list" | jq -r '.tags[]?' | sort; }

# manifest_digest REPO REF: Docker-Content-Digest of a HEAD (any manifest type accepted)
manifest_digest() {
        curl -sS -I -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json' \
                "$URL/v2/$1/manifests/$2" | grep -i '^docker-content-digest:' | cut -d' ' -f2 | tr -d '\r'
}
