# Shared helpers for plura's shell tests. Source it: . "$PLURA_SOURCE_ROOT/tests/lib.sh"
# Every background process a test starts is recorded and stopped by its PID on exit.
set -euo pipefail

: "${PLURA:?PLURA must point at the plura binary (meson sets it)}"
: "${PLURA_SOURCE_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"

TEST_NAME=$(basename "${0%.sh}")
TEST_TMP=$(mktemp -d "/tmp/plura-${TEST_NAME}.XXXXXX")
declare -a TEST_PIDS=()
declare -a TEST_MOUNTS=()
TESTS_RUN=0
TESTS_FAILED=0

test_cleanup() {
        local rc=$?
        # Processes first (a mount process unmounts on SIGTERM), then whatever mount is left:
        # a crashed FUSE process leaves a dead mount that `mountpoint -q` does not report, so
        # look it up in /proc/mounts and detach it lazily.
        for p in "${TEST_PIDS[@]:-}"; do
                [ -n "$p" ] && kill "$p" 2>/dev/null && { for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; kill -9 "$p" 2>/dev/null || true; }
        done
        for m in "${TEST_MOUNTS[@]:-}"; do
                [ -n "$m" ] || continue
                if grep -qs " $(realpath -m "$m") " /proc/mounts; then
                        fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
                fi
        done
        if [ "$rc" -eq 0 ] && [ -z "${KEEP_TMP:-}" ]; then rm -rf "$TEST_TMP"; else echo "# test files kept in $TEST_TMP" >&2; fi
        exit "$rc"
}
trap test_cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "# $*" >&2; }

# check "description" command...  (runs the command, counts, fails the script at the end)
check() {
        local what=$1; shift
        TESTS_RUN=$((TESTS_RUN + 1))
        if "$@"; then echo "ok - $what"; else echo "not ok - $what"; TESTS_FAILED=$((TESTS_FAILED + 1)); fi
}
assert_eq() { [ "$1" = "$2" ] || fail "${3:-values differ}: expected '$2', got '$1'"; }
assert_contains() { grep -q -- "$2" <<<"$1" || fail "${3:-missing text}: '$2' not in: $1"; }
done_testing() {
        echo "# $TESTS_RUN checks, $TESTS_FAILED failed"
        [ "$TESTS_FAILED" -eq 0 ]
}

# start_server DATA_DIR [CONFIG_FILE] [extra serve args...]
# Starts plura serve on an ephemeral loopback port; sets SERVER_PID, URL (http://127.0.0.1:PORT), HOSTPORT.
start_server() {
        local data=$1; shift
        local cfg=${1:-}; [ $# -gt 0 ] && shift
        local ready="$TEST_TMP/ready.$$.$RANDOM"
        rm -f "$ready"
        local args=(serve --listen 127.0.0.1:0 --data "$data" --ready-file "$ready")
        [ -n "$cfg" ] && args+=(-c "$cfg")
        "$PLURA" "${args[@]}" "$@" >>"$TEST_TMP/server.log" 2>&1 &
        SERVER_PID=$!
        TEST_PIDS+=("$SERVER_PID")
        for _ in $(seq 200); do
                [ -s "$ready" ] && break
                kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TEST_TMP/server.log" >&2; fail "server exited during start"; }
                sleep 0.05
        done
        [ -s "$ready" ] || { cat "$TEST_TMP/server.log" >&2; fail "server did not become ready"; }
        HOSTPORT=$(head -n1 "$ready")
        URL="http://$HOSTPORT"
        export URL HOSTPORT SERVER_PID
}

stop_server() {
        local pid=${1:-$SERVER_PID}
        kill -TERM "$pid" 2>/dev/null || return 0
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
}

kill9_server() {
        local pid=${1:-$SERVER_PID}
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
}

# curl wrapper: http METHOD PATH [curl args...] -> prints body, sets HTTP_STATUS and HTTP_HEADERS (file)
http() {
        local method=$1 path=$2; shift 2
        HTTP_HEADERS="$TEST_TMP/headers.$RANDOM"
        local out="$TEST_TMP/body.$RANDOM"
        HTTP_STATUS=$(curl -sS -g -o "$out" -D "$HTTP_HEADERS" -w '%{http_code}' -X "$method" "$@" "$URL$path") || HTTP_STATUS=000
        cat "$out"
        rm -f "$out"
}
header() { grep -i "^$1:" "$HTTP_HEADERS" | head -n1 | cut -d' ' -f2- | tr -d '\r'; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Builds an OCI image layout with real tar.gz layers (see tests/e2e/make-oci-layout.py).
make_layout() { python3 "$PLURA_SOURCE_ROOT/tests/e2e/make-oci-layout.py" "$@"; }

skopeo_tls() { echo --dest-tls-verify=false; }
