#!/usr/bin/env bash
# plura vs CNCF Distribution (Debian's docker-registry), same workloads, same machine, one run.
#
#   tools/bench/run-all.sh            (what `make bench` runs; ~10 minutes, ~6 more for "auth")
#   BENCH_QUICK=1 tools/bench/run-all.sh   (smaller, ~3 minutes: a smoke test of the harness)
#
# Both registries run on loopback ports with their data under $BENCH_DIR (default: a new
# directory in /var/tmp), access logs off, plura with its default durability (fsync on),
# Distribution with its stock filesystem driver (which never fsyncs) and the in-memory
# blob descriptor cache of Debian's default config.
#
# Environment: PLURA (binary, default build/tools/plura), BENCH_PLURA_FSYNC=false (plura without
# fsync, to see what durability costs), BENCH_DIR, BENCH_DURATION (seconds per
# wrk run, default 10), BENCH_REPOS / BENCH_TAGS (1000 / 10), BENCH_BLOBS (64 MiB blobs per
# push workload, default 8), BENCH_IMAGE_SIZE (skopeo image, default 500M), BENCH_ONLY
# (space-separated subset of: seed read push pull small skopeo tls auth), BENCH_KEEP=1 keeps data,
# BENCH_PERF="head get tags mono chunked pull small" records `perf record -g` of the plura
# process during those runs into $BENCH_DIR/perf-<name>.{data,txt}.
# Results: a table on stdout, $BENCH_DIR/results.md and results.json.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B="$ROOT/tools/bench"
PLURA=${PLURA:-$ROOT/build/tools/plura}
if [ -n "${BENCH_QUICK:-}" ]; then
        : "${BENCH_DURATION:=4}" "${BENCH_REPOS:=200}" "${BENCH_BLOBS:=4}" "${BENCH_IMAGE_SIZE:=100M}"
fi
DUR=${BENCH_DURATION:-10}
REPOS=${BENCH_REPOS:-1000}
TAGS=${BENCH_TAGS:-10}
NBLOBS=${BENCH_BLOBS:-8}
IMAGE_SIZE=${BENCH_IMAGE_SIZE:-500M}
ONLY=${BENCH_ONLY:-seed read push pull small skopeo tls auth}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /var/tmp/plura-bench.XXXXXX)}
mkdir -p "$BENCH_DIR"
want() { [[ " $ONLY " == *" $1 "* ]]; }

for tool in wrk docker-registry skopeo python3 jq; do
        command -v "$tool" >/dev/null || { echo "run-all.sh: $tool missing (make bench-deps installs it)" >&2; exit 1; }
done
[ -x "$PLURA" ] || { echo "run-all.sh: $PLURA not built (make build)" >&2; exit 1; }

PIDS=()
cleanup() {
        local rc=$?
        for p in "${PIDS[@]:-}"; do
                [ -n "$p" ] && kill "$p" 2>/dev/null && { for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; kill -9 "$p" 2>/dev/null || true; }
        done
        if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$BENCH_DIR/plura" "$BENCH_DIR/distribution" "$BENCH_DIR/blobs" \
                "$BENCH_DIR/image" "$BENCH_DIR/small" "$BENCH_DIR"/out-*; fi
        exit "$rc"
}
trap cleanup EXIT
log() { echo "# $*" >&2; }

# ---------------------------------------------------------------- servers
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_plura() {
        cat >"$BENCH_DIR/plura.json" <<EOF
{ "log_level": "warning", "access_log": false, "storage": { "fsync": ${BENCH_PLURA_FSYNC:-true} } }
EOF
        rm -f "$BENCH_DIR/plura.ready"
        "$PLURA" serve -c "$BENCH_DIR/plura.json" --listen 127.0.0.1:0 --data "$BENCH_DIR/plura" \
                --ready-file "$BENCH_DIR/plura.ready" >"$BENCH_DIR/plura.log" 2>&1 &
        PIDS+=($!); PLURA_PID=$!
        for _ in $(seq 200); do [ -s "$BENCH_DIR/plura.ready" ] && break; sleep 0.05; done
        [ -s "$BENCH_DIR/plura.ready" ] || { cat "$BENCH_DIR/plura.log" >&2; exit 1; }
        P_URL="http://$(head -n1 "$BENCH_DIR/plura.ready")"
}

start_distribution() {
        local port; port=$(free_port)
        cat >"$BENCH_DIR/distribution.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $BENCH_DIR/distribution
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
        docker-registry serve "$BENCH_DIR/distribution.yml" >"$BENCH_DIR/distribution.log" 2>&1 &
        PIDS+=($!); DIST_PID=$!
        D_URL="http://127.0.0.1:$port"
        for _ in $(seq 200); do curl -sf -o /dev/null "$D_URL/v2/" && return 0; sleep 0.05; done
        cat "$BENCH_DIR/distribution.log" >&2; exit 1
}

# ---------------------------------------------------------------- results
RESULTS="$BENCH_DIR/results.tsv"
: >"$RESULTS"
# result WORKLOAD METRIC PLURA DIST TARGET  (ratio = plura / dist; for latencies dist / plura)
result() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }
jget() { jq -r "$2" <<<"$1"; }
bench_json() { grep '^BENCH_JSON ' | tail -n1 | cut -d' ' -f2-; }

# CPU time (user + system, all threads) a server process used during a run: efficiency that
# does not depend on how much CPU the load generator took from the same 2 cores.
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
server_pid() { if [ "$1" = P ]; then echo "$PLURA_PID"; else echo "$DIST_PID"; fi; }
cpu_start() { CPU0=$(cpu_ticks "$(server_pid "$1")"); }
cpu_stop() { # WHO -> sets CPU_<WHO> to seconds of server CPU since cpu_start
        local c1; c1=$(cpu_ticks "$(server_pid "$1")")
        printf -v "CPU_$1" '%s' "$(awk "BEGIN {print ($c1 - $CPU0) / $CLK_TCK}")"
}
# per_unit CPU_SECONDS COUNT SCALE -> CPU seconds * SCALE / COUNT, 2 decimals
per_unit() { awk "BEGIN {printf \"%.2f\", ($2 > 0) ? $1 * $3 / $2 : 0}"; }

PERF_PID=
perf_start() { # NAME WHO: profile plura during this run if BENCH_PERF names it
        [ "$2" = P ] && [[ " ${BENCH_PERF:-} " == *" $1 "* ]] || return 0
        perf record -F 999 -g -o "$BENCH_DIR/perf-$1.data" -p "$PLURA_PID" >/dev/null 2>&1 &
        PERF_PID=$!; PERF_NAME=$1
        sleep 0.5
}
perf_stop() {
        [ -n "$PERF_PID" ] || return 0
        kill -INT "$PERF_PID" 2>/dev/null; wait "$PERF_PID" 2>/dev/null || true
        perf report -i "$BENCH_DIR/perf-$PERF_NAME.data" --stdio --no-children --percent-limit 1.5 -g none \
                >"$BENCH_DIR/perf-$PERF_NAME.txt" 2>/dev/null || true
        log "profile of plura: $BENCH_DIR/perf-$PERF_NAME.txt"
        PERF_PID=
}

wrk_run() { # URL CONNS THREADS SCRIPT ARGS... -> JSON
        local url=$1 c=$2 t=$3 s=$4; shift 4
        wrk -t"$t" -c"$c" -d"${DUR}s" --timeout 10s -s "$B/$s" "$url" -- "$@" 2>&1 | tee -a "$BENCH_DIR/wrk.log" | bench_json
}

fsync_ms() {
        python3 - "$BENCH_DIR" <<'PY'
import os, sys, time
p = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
ts = []
for i in range(50):
    os.pwrite(fd, os.urandom(4096), i * 4096)
    t = time.monotonic(); os.fdatasync(fd); ts.append(time.monotonic() - t)
os.close(fd); os.unlink(p)
print("%.2f" % (sorted(ts)[25] * 1e3))
PY
}

machine() {
        echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
        echo "- RAM: $(free -g | awk '/^Mem:/ {print $2}') GiB; kernel $(uname -r); $(. /etc/os-release && echo "$PRETTY_NAME")"
        echo "- disk for data: $(df -h --output=source,fstype "$BENCH_DIR" | tail -n1 | tr -s ' ')"
        echo "- fsync latency of the data disk (4 KiB write + fdatasync, median of 50): $(fsync_ms) ms; plura storage.fsync=${BENCH_PLURA_FSYNC:-true}"
        echo "- load average (1/5/15 min) at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg) — other jobs on the machine skew every number"
        echo "- plura $("$PLURA" --version 2>/dev/null | cut -d' ' -f2) (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')), Distribution $(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null), wrk $(dpkg-query -W -f='${Version}' wrk 2>/dev/null), skopeo $(skopeo --version | cut -d' ' -f3)"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
start_plura
start_distribution
log "plura on $P_URL, Distribution on $D_URL, data in $BENCH_DIR"

# ---------------------------------------------------------------- seed: 1000 repos x 10 tags
if want seed || want read; then
        for who in P D; do
                url=${who}_URL; url=${!url}
                log "seeding $REPOS repositories x $TAGS tags into $who"
                js=$(python3 "$B/seed.py" "$url" --repos "$REPOS" --tags "$TAGS" --threads 8)
                log "$js"
                [ "$(jget "$js" '.errors | length')" = 0 ] || { echo "seeding failed: $js" >&2; exit 1; }
                printf -v "SEED_$who" '%s' "$js"
        done
        result "seed: manifest PUT + mount, 8 clients" "req/s" "$(jget "$SEED_P" .requests_per_s)" "$(jget "$SEED_D" .requests_per_s)" ""
fi

# ---------------------------------------------------------------- manifest HEAD/GET, tags list
if want read; then
        cc -O2 -pthread -o "$BENCH_DIR/loadgen" "$B/loadgen.c"
        for r in $(seq 0 $((REPOS - 1))); do for t in $(seq 0 $((TAGS - 1))); do
                printf '/v2/bench/r%04d/manifests/t%d\n' "$r" "$t"; done; done >"$BENCH_DIR/manifest-paths"
        for r in $(seq 0 $((REPOS - 1))); do printf '/v2/bench/r%04d/tags/list\n' "$r"; done >"$BENCH_DIR/tags-paths"
        # wrk (GET, tags) plus the same requests from loadgen: the client's own scheduling on a
        # 2-core machine shows up in wrk's tail latency, loadgen's blocking threads show less of it
        for mode in head get tags get-loadgen tags-loadgen; do
                for who in P D; do
                        url=${who}_URL; url=${!url}
                        log "wrk $mode on $who (16 connections, ${DUR}s)"
                        perf_start "$mode" "$who"
                        cpu_start "$who"
                        hp=${url#http://}
                        if [ "$mode" = head ] || [ "$mode" = get-loadgen ]; then
                                # wrk 4.1 never completes a HEAD with a Content-Length: our loadgen
                                js=$("$BENCH_DIR/loadgen" "${hp%:*}" "${hp##*:}" 16 "$DUR" "$([ $mode = head ] && echo HEAD || echo GET)" \
                                        "$BENCH_DIR/manifest-paths" "Accept: application/vnd.oci.image.manifest.v1+json" \
                                        | tee -a "$BENCH_DIR/wrk.log" | bench_json)
                        elif [ "$mode" = tags-loadgen ]; then
                                js=$("$BENCH_DIR/loadgen" "${hp%:*}" "${hp##*:}" 16 "$DUR" GET "$BENCH_DIR/tags-paths" \
                                        | tee -a "$BENCH_DIR/wrk.log" | bench_json)
                        else
                                js=$(wrk_run "$url" 16 2 read.lua "$mode" "$REPOS" "$TAGS" bench/r)
                        fi
                        cpu_stop "$who"
                        perf_stop
                        log "$js"
                        printf -v "R_$who" '%s' "$js"
                done
                case $mode in
                head) name="manifest HEAD by tag";;
                get) name="manifest GET by tag";;
                tags) name="tags list";;
                get-loadgen) name="manifest GET by tag (loadgen)";;
                tags-loadgen) name="tags list (loadgen)";;
                esac
                bad_p=$(jget "$R_P" '.errors.status + .errors.timeout + .errors.read + .errors.connect')
                bad_d=$(jget "$R_D" '.errors.status + .errors.timeout + .errors.read + .errors.connect')
                [ $mode = head ] && name="$name (loadgen)"
                result "$name, 16 clients" "req/s" "$(jget "$R_P" .rps)" "$(jget "$R_D" .rps)" "≥ 10×"
                result "$name, 16 clients" "p99 ms" "$(jget "$R_P" .p99_ms)" "$(jget "$R_D" .p99_ms)" "≤ 5 ms"
                result "$name, 16 clients" "server CPU µs/request" "$(per_unit "$CPU_P" "$(jget "$R_P" .requests)" 1e6)" \
                        "$(per_unit "$CPU_D" "$(jget "$R_D" .requests)" 1e6)" ""
                [ "$bad_p$bad_d" = 00 ] || result "$name, 16 clients" "errors (non-2xx/timeouts)" "$bad_p" "$bad_d" "0"
        done
fi

# ---------------------------------------------------------------- 64 MiB blob push (mono, chunked), pull
if want push || want pull; then
        mkdir -p "$BENCH_DIR/blobs/mono" "$BENCH_DIR/blobs/chunked"
        log "generating 2 x $NBLOBS random 64 MiB blobs"
        for kind in mono chunked; do
                for i in $(seq "$NBLOBS"); do
                        f="$BENCH_DIR/blobs/$kind/tmp"
                        head -c 67108864 /dev/urandom >"$f"
                        mv "$f" "$BENCH_DIR/blobs/$kind/$(sha256sum "$f" | cut -d' ' -f1)"
                done
        done
        sync
        for kind in mono chunked; do
                for who in P D; do
                        url=${who}_URL; url=${!url}
                        log "push $kind: $NBLOBS x 64 MiB, 4 concurrent, into $who"
                        perf_start "$kind" "$who"
                        cpu_start "$who"
                        js=$(python3 "$B/blobbench.py" "$url" "bench/$kind" --mode "$kind" --chunk 8M --concurrency 4 "$BENCH_DIR/blobs/$kind"/*)
                        cpu_stop "$who"
                        perf_stop
                        log "$js"
                        printf -v "R_$who" '%s' "$js"
                done
                label="blob push $kind (64 MiB, 4 concurrent)"
                [ "$kind" = mono ] || label="blob push $kind (64 MiB, 4 concurrent, 8 MiB PATCHes)"
                result "$label" "MB/s" "$(jget "$R_P" .MBps)" "$(jget "$R_D" .MBps)" "≥ 1× (fsynced)"
                result "$label" "p99 ms per blob" "$(jget "$R_P" .p99_ms)" "$(jget "$R_D" .p99_ms)" ""
                result "$label" "server CPU s/GB" "$(per_unit "$CPU_P" "$(jget "$R_P" .bytes)" 1e9)" \
                        "$(per_unit "$CPU_D" "$(jget "$R_D" .bytes)" 1e9)" ""
                [ "$(jget "$R_P" '.errors | length')$(jget "$R_D" '.errors | length')" = 00 ] || \
                        result "$label" "errors" "$(jget "$R_P" '.errors | length')" "$(jget "$R_D" '.errors | length')" "0"
        done
fi
if want pull; then
        ls "$BENCH_DIR/blobs/mono" | sed 's/^/sha256:/' >"$BENCH_DIR/blobs/list"
        for who in P D; do
                url=${who}_URL; url=${!url}
                log "pull: GET 64 MiB blobs, 4 connections, ${DUR}s, from $who"
                perf_start pull "$who"
                cpu_start "$who"
                js=$(wrk_run "$url" 4 2 read.lua blob "$BENCH_DIR/blobs/list" 0 bench/mono)
                cpu_stop "$who"
                perf_stop
                log "$js"
                printf -v "R_$who" '%s' "$js"
        done
        result "blob pull (64 MiB, 4 concurrent)" "MB/s" "$(jget "$R_P" .MBps)" "$(jget "$R_D" .MBps)" "≥ 1.5×"
        result "blob pull (64 MiB, 4 concurrent)" "p99 ms" "$(jget "$R_P" .p99_ms)" "$(jget "$R_D" .p99_ms)" ""
        result "blob pull (64 MiB, 4 concurrent)" "server CPU s/GB" "$(per_unit "$CPU_P" "$(jget "$R_P" .bytes)" 1e9)" \
                "$(per_unit "$CPU_D" "$(jget "$R_D" .bytes)" 1e9)" ""
fi

# ---------------------------------------------------------------- small-object push rate
if want small; then
        log "generating small blobs (16 clients x 20000 x 512 B)"
        python3 "$B/gen-small.py" "$BENCH_DIR/small" 16 20000 512
        for who in P D; do
                url=${who}_URL; url=${!url}
                log "small-object push (512 B blobs, POST+PUT, 16 clients, ${DUR}s) into $who"
                perf_start small "$who"
                cpu_start "$who"
                js=$(wrk_run "$url" 16 16 small-push.lua "$BENCH_DIR/small" bench/small)
                cpu_stop "$who"
                perf_stop
                log "$js"
                printf -v "R_$who" '%s' "$js"
        done
        result "small-object push (512 B, 16 clients)" "objects/s" "$(jget "$R_P" .pushes_per_s)" "$(jget "$R_D" .pushes_per_s)" "≥ 5×"
        result "small-object push (512 B, 16 clients)" "p99 ms per request" "$(jget "$R_P" .p99_ms)" "$(jget "$R_D" .p99_ms)" ""
        result "small-object push (512 B, 16 clients)" "server CPU µs/object" "$(per_unit "$CPU_P" "$(jget "$R_P" .pushed)" 1e6)" \
                "$(per_unit "$CPU_D" "$(jget "$R_D" .pushed)" 1e6)" ""
        [ "$(jget "$R_P" .failed)$(jget "$R_D" .failed)" = 00 ] || \
                result "small-object push (512 B, 16 clients)" "failed pushes" "$(jget "$R_P" .failed)" "$(jget "$R_D" .failed)" "0"
fi

# ---------------------------------------------------------------- skopeo copy of a ~500 MB image
if want skopeo; then
        log "generating a $IMAGE_SIZE image (5 layers of random data)"
        python3 "$ROOT/tests/e2e/make-oci-layout.py" --out "$BENCH_DIR/image" --refs big --big-size "$IMAGE_SIZE" \
                --big-layers 5 --big-files 10 --seed bench >/dev/null
        img_bytes=$(du -sb "$BENCH_DIR/image/blobs" | cut -f1)
        for who in P D; do
                url=${who}_URL; url=${!url}
                home="$BENCH_DIR/skopeo-home-$who"; rm -rf "$home"; mkdir -p "$home"
                export HOME="$home" XDG_DATA_HOME="$home/.local/share" XDG_RUNTIME_DIR="$home"
                [ "$(id -u)" -ne 0 ] || export _CONTAINERS_USERNS_CONFIGURED=done _CONTAINERS_ROOTLESS_UID=1000
                t0=$(date +%s.%N)
                if ! skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$BENCH_DIR/image:big" "docker://${url#http://}/bench/image:1"; then
                        log "skopeo copy into $who failed"; printf -v "IN_$who" failed; printf -v "OUT_$who" failed; continue
                fi
                t1=$(date +%s.%N)
                rm -rf "$BENCH_DIR/out-$who"
                if ! skopeo --insecure-policy copy -q --src-tls-verify=false "docker://${url#http://}/bench/image:1" "oci:$BENCH_DIR/out-$who:big"; then
                        log "skopeo copy out of $who failed"; printf -v "OUT_$who" failed; continue
                fi
                t2=$(date +%s.%N)
                diff -r "$BENCH_DIR/image/blobs" "$BENCH_DIR/out-$who/blobs" >/dev/null || { echo "skopeo round trip through $who differs" >&2; exit 1; }
                printf -v "IN_$who" '%s' "$(awk "BEGIN {print $t1 - $t0}")"
                printf -v "OUT_$who" '%s' "$(awk "BEGIN {print $t2 - $t1}")"
                log "skopeo $who: in $(awk "BEGIN {print $t1 - $t0}") s, out $(awk "BEGIN {print $t2 - $t1}") s"
                rm -rf "$BENCH_DIR/out-$who"
        done
        mbs() { if [ "$1" = failed ]; then echo failed; else awk "BEGIN {printf \"%.1f\", $img_bytes / $1 / 1000000}"; fi; }
        result "skopeo copy in, $((img_bytes / 1000000)) MB image (5 layers)" "MB/s" "$(mbs "$IN_P")" "$(mbs "$IN_D")" ""
        result "skopeo copy out, $((img_bytes / 1000000)) MB image (5 layers)" "MB/s" "$(mbs "$OUT_P")" "$(mbs "$OUT_D")" ""
fi

# ---------------------------------------------------------------- report
python3 - "$RESULTS" "$BENCH_DIR" <<'EOF' >"$BENCH_DIR/results.md"
import json, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
out = []
print("| workload | metric | plura | Distribution | plura/Distribution | target |")
print("|---|---|---:|---:|---:|---|")
for w, m, p, d, t in rows:
    try:
        pf, df = float(p), float(d)
        lower_better = "ms" in m or "error" in m or "failed" in m or "CPU" in m
        if lower_better:
            ratio = ("%.2f× lower" % (df / pf) if pf <= df else "%.2f× higher" % (pf / df)) if pf > 0 and df > 0 else "-"
        else:
            ratio = "%.2f×" % (pf / df) if df > 0 else "-"
    except ValueError:
        ratio = "-"
    print("| %s | %s | %s | %s | %s | %s |" % (w, m, p, d, ratio, t))
    out.append(dict(workload=w, metric=m, plura=p, distribution=d, ratio=ratio, target=t))
json.dump(out, open(sys.argv[2] + "/results.json", "w"), indent=1)
EOF
{
        echo "## Run $(date -u +%Y-%m-%dT%H:%MZ)"
        echo
        machine
        echo "- command: \`${BENCH_QUICK:+BENCH_QUICK=1 }tools/bench/run-all.sh\` (wrk ${DUR}s per run, $REPOS repositories x $TAGS tags, $NBLOBS x 64 MiB blobs per push workload, skopeo image $IMAGE_SIZE)"
        echo
        cat "$BENCH_DIR/results.md"
} | tee "$BENCH_DIR/report.md"

# ---------------------------------------------------------------- both with TLS (servers of their own)
if want tls; then
        BENCH_DIR="$BENCH_DIR/tls" PLURA="$PLURA" BENCH_DURATION="$DUR" "$B/bench-tls.sh" | tee -a "$BENCH_DIR/report.md"
fi
# ---------------------------------------------------------------- authentication (servers of their own)
if want auth; then
        BENCH_DIR="$BENCH_DIR/auth" PLURA="$PLURA" BENCH_DURATION="$DUR" "$B/bench-auth.sh" | tee -a "$BENCH_DIR/report.md"
fi
log "report in $BENCH_DIR/report.md"
