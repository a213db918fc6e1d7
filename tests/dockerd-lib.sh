# A dockerd of the test's own (Debian's docker.io) that leaves the host as it found it. Source after
# tests/lib.sh:
#
#   . "$PLURA_SOURCE_ROOT/tests/dockerd-lib.sh"
#   dockerd_start DIR [--hosts FILE]     sets DOCKERD_PID, CONTAINERD_PID, DOCKER=(docker --config ... -H ...)
#   "${DOCKER[@]}" run --network host ...
#   dockerd_stop                         SIGTERM to DOCKERD_PID, waits; returns dockerd's exit status
#
# - no network of its own: --bridge=none --iptables=false --ip6tables=false --ip-masq=false
#   --userland-proxy=false; containers can use --network host (loopback only for what the test
#   runs) or --network none; no interface, address or firewall rule is created;
# - vfs storage (no overlay or device-mapper setup) under DIR/data;
# - a mount namespace of its own (unshare -m, private propagation), where /etc/docker is
#   DIR/etc-docker (its key.json; certs.d/HOST:PORT/ca.crt, which dockerd reads from there only),
#   /run is DIR/run (it creates /run/docker/plugins whatever --exec-root says) and, with --hosts,
#   /etc/hosts is FILE; its mounts (the vfs layers, container root file systems) vanish with the
#   namespace, nothing of it shows in the host's /proc/mounts;
# - stopped by its PID (recorded in TEST_PIDS too, so an early exit stops it), never by name.

DOCKER_CLI=/usr/bin/docker # Debian's docker.io CLI, not another docker earlier in PATH

dockerd_start() {
        local dir=$1 hosts=
        shift
        [ "${1:-}" = --hosts ] && { hosts=$2; shift 2; }
        command -v dockerd >/dev/null || fail "dockerd is not installed (Debian: docker.io)"
        [ -x "$DOCKER_CLI" ] || fail "$DOCKER_CLI is missing (Debian: docker.io)"
        DOCKERD_DIR=$dir
        mkdir -p "$dir/etc-docker" "$dir/run" "$dir/exec" "$dir/data" "$dir/cli" "$dir/tmp"
        echo '{}' >"$dir/daemon.json"
        TEST_MOUNTS+=("$dir/data") # a safeguard: the namespace takes dockerd's mounts with it
        # shellcheck disable=SC2016
        env TMPDIR="$dir/tmp" unshare --mount --propagation private -- sh -c \
                'mount --bind "$1" /etc/docker && mount --bind "$2" /run && { [ -z "$3" ] || mount --bind "$3" /etc/hosts; } && shift 3 && exec "$@"' sh \
                "$dir/etc-docker" "$dir/run" "$hosts" \
                dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" -H "unix://$dir/docker.sock" \
                --config-file "$dir/daemon.json" --storage-driver vfs --bridge=none --iptables=false --ip6tables=false \
                --ip-masq=false --userland-proxy=false >"$dir/dockerd.log" 2>&1 &
        DOCKERD_PID=$!
        TEST_PIDS+=("$DOCKERD_PID")
        DOCKER=("$DOCKER_CLI" --config "$dir/cli" -H "unix://$dir/docker.sock")
        local _
        for _ in $(seq 600); do
                if curl -sf --unix-socket "$dir/docker.sock" -o /dev/null http://docker/_ping; then
                        CONTAINERD_PID=$(cat "$dir/exec/containerd/containerd.pid" 2>/dev/null || true)
                        [ -n "$CONTAINERD_PID" ] && TEST_PIDS+=("$CONTAINERD_PID")
                        return 0
                fi
                kill -0 "$DOCKERD_PID" 2>/dev/null || break
                sleep 0.05
        done
        tail -n 30 "$dir/dockerd.log" >&2
        return 1
}

dockerd_stop() {
        local _ rc=0
        kill -TERM "$DOCKERD_PID" 2>/dev/null || return 0
        for _ in $(seq 300); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
        wait "$DOCKERD_PID" 2>/dev/null || rc=$?
        return "$rc"
}
