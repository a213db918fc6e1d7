#!/usr/bin/env bash
# GC benchmark (issue 3), recorded in docs/BENCHMARKS.md "Garbage collection".
#
#  A. 10k blobs, side by side with CNCF Distribution: the same images pushed to both over HTTP
#     (tools/bench/bench-gc-push.py), half of the manifests deleted through the API, then
#     Distribution's `docker-registry garbage-collect` (server stopped, as it requires) against
#     plura's online `plura reg gc` (server serving; manifest GET p99 measured with wrk before
#     and during the GC).
#  B. Scale: 1M blobs / 100k manifests generated through the storage layer
#     (bench-gc-populate, 10% of the manifests untagged and old), then an online GC with wrk
#     on a manifest during it; peak RSS of the server from /usr/bin/time -v.
#
#   tools/bench/bench-gc.sh                 both parts
#   BENCH_GC_ONLY="a" / "b"                 one part
#   BENCH_GC_MANIFESTS=20000                scale of part B (default 100000; blobs = 10 x that)
#   BENCH_GC_IMAGES=2500                    images of part A (4 blobs each: 10k blobs)
#   BENCH_GC_DATA=DIR                       reuse a part-B store made earlier (it is collected by the run!)
#   BENCH_GC_SEED=DIR                       copy a part-B store made earlier (cp -a, then sync) and collect the copy
#   BENCH_GC_FS=ext4                        put the stores of both registries on a fresh ext4 in a loop-mounted
#                                           image (mkfs and mount defaults: journal, no discard mount option,
#                                           as a Debian install formats a disk); BENCH_GC_FS_SIZE (default 16G)
#   BENCH_GC_LOAD=wrk|rate                  part B's latency probe: wrk saturating the CPUs (default), or
#                                           tools/bench/loadgen.c at a fixed BENCH_GC_RATE req/s (default 2000)
#   BENCH_GC_EXTRA='"sched_idle": true'   more keys for the gc section of plura's config (both parts)
#   BENCH_GC_COLD=1                         part B: do not read the index files into the page cache first
# Environment: PLURA (binary, default build/tools/plura), POPULATE (default next to PLURA:
# tools/bench/bench-gc-populate), BENCH_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PLURA=${PLURA:-$ROOT/build/tools/plura}
POPULATE=${POPULATE:-$(dirname "$PLURA")/bench/bench-gc-populate}
ONLY=${BENCH_GC_ONLY:-a b}
IMAGES=${BENCH_GC_IMAGES:-2500}
MANIFESTS=${BENCH_GC_MANIFESTS:-100000}
DUR=${BENCH_DURATION:-10}
LOAD=${BENCH_GC_LOAD:-wrk}
RATE=${BENCH_GC_RATE:-2000}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /var/tmp/plura-bench-gc.XXXXXX)}
mkdir -p "$BENCH_DIR"
# where the registries' stores live: BENCH_DIR, or the loop-mounted ext4 of BENCH_GC_FS=ext4
STORE_DIR=$BENCH_DIR
want() { [[ " $ONLY " == *" $1 "* ]]; }
for tool in wrk docker-registry python3 curl; do
        command -v "$tool" >/dev/null || { echo "bench-gc.sh: $tool missing" >&2; exit 1; }
done
[ -x "$PLURA" ] || { echo "bench-gc.sh: $PLURA not built (make build)" >&2; exit 1; }
! want b || [ -x "$POPULATE" ] || { echo "bench-gc.sh: $POPULATE not built (make build)" >&2; exit 1; }

PIDS=()
MOUNTED=
cleanup() {
        for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
        if [ -n "$MOUNTED" ]; then
                for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
                umount "$MOUNTED" && rm -f "$BENCH_DIR/fs.img"
        fi
}
trap cleanup EXIT

case "${BENCH_GC_FS:-}" in
"") ;;
ext4)
        truncate -s "${BENCH_GC_FS_SIZE:-16G}" "$BENCH_DIR/fs.img"
        mkfs.ext4 -q -F "$BENCH_DIR/fs.img"
        mkdir -p "$BENCH_DIR/fs"
        mount -o loop "$BENCH_DIR/fs.img" "$BENCH_DIR/fs"
        MOUNTED=$BENCH_DIR/fs
        STORE_DIR=$BENCH_DIR/fs
        ;;
*) echo "bench-gc.sh: BENCH_GC_FS=$BENCH_GC_FS: only ext4 is known" >&2; exit 1 ;;
esac
echo "stores in $STORE_DIR: $(findmnt -no FSTYPE,OPTIONS -T "$STORE_DIR")"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
wait_http() { for _ in $(seq 400); do curl -sf -o /dev/null "$1/v2/" && return 0; sleep 0.05; done; echo "server at $1 did not come up" >&2; return 1; }

# start_plura DATA CONFIG [time-v-output]: sets URL, PPID_SERVER
start_plura() {
        local port; port=$(free_port)
        if [ -n "${3:-}" ]; then
                /usr/bin/time -v -o "$3" "$PLURA" serve -c "$2" --listen "127.0.0.1:$port" --data "$1" >>"$BENCH_DIR/plura.log" 2>&1 &
        else
                "$PLURA" serve -c "$2" --listen "127.0.0.1:$port" --data "$1" >>"$BENCH_DIR/plura.log" 2>&1 &
        fi
        PPID_SERVER=$!
        PIDS+=("$PPID_SERVER")
        URL="http://127.0.0.1:$port"
        wait_http "$URL"
}
stop_plura() {
        # time -v wraps the server: signal the server itself, then wait for both
        local child; child=$(pgrep -P "$PPID_SERVER" plura || true)
        kill -TERM "${child:-$PPID_SERVER}" 2>/dev/null || true
        wait "$PPID_SERVER" 2>/dev/null || true
}

# p99_of_wrk [FILE]: the p99 of a wrk --latency output, in ms
p99_of_wrk() { awk '/^ +99%/ { v=$2; if (v ~ /us$/) { sub(/us$/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v=v*1000 } printf "%.2f\n", v }' "$@"; }
# wrk_p99 URL PATH SECONDS -> prints p99 in ms (manifest GET with the OCI Accept header)
wrk_p99() {
        local out
        out=$(wrk -t2 -c16 -d"${3}s" --latency -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$1$2" 2>&1)
        echo "$out" >>"$BENCH_DIR/wrk.log"
        p99_of_wrk <<<"$out"
}
wrk_rps() { awk '/Requests\/sec/ {print $2}' "$BENCH_DIR/wrk.log" | tail -n1; }

# thread_cpu PID: CPU seconds (user+sys) per thread name of a process, "name seconds" lines;
# an exited thread's time is in the process's total, not here
thread_cpu() {
        python3 - "$1" <<'PY'
import os, sys, collections
tck = os.sysconf("SC_CLK_TCK"); acc = collections.Counter()
d = "/proc/%s/task" % sys.argv[1]
for t in os.listdir(d):
    try:
        s = open("%s/%s/stat" % (d, t)).read()
    except OSError:
        continue
    name = s[s.index("(") + 1:s.rindex(")")]; f = s[s.rindex(")") + 2:].split()
    acc[name] += (int(f[11]) + int(f[12])) / tck
for k, v in sorted(acc.items()):
    print(k.replace(" ", "_"), "%.2f" % v)
f = open("/proc/%s/stat" % sys.argv[1]).read(); f = f[f.rindex(")") + 2:].split()
print("=total", "%.2f" % ((int(f[11]) + int(f[12])) / tck))
PY
}
# cpu_delta BEFORE AFTER: "name seconds" for the names that used CPU in between; threads that
# exited in between (the GC's workers) are the process's total less the live threads'
cpu_delta() {
        awk 'NR==FNR { b[$1]=$2; next }
             $1 == "=total" { total=$2-b[$1]; next }
             { d=$2-b[$1]; live+=d; if (d >= 0.05) printf "%s %.2f s, ", $1, d }
             END { printf "exited threads %.2f s; process %.2f s", total-live, total }' "$1" "$2"
}

RESULTS="$BENCH_DIR/results-gc.md"
: >"$RESULTS"
row() { echo "$*" | tee -a "$RESULTS"; }

if want a; then
        echo "== A: $IMAGES images x 4 blobs, half of the manifests deleted; plura online GC vs docker-registry garbage-collect"
        # Distribution
        DD="$STORE_DIR/dist"; mkdir -p "$DD"; port=$(free_port)
        cat >"$BENCH_DIR/dist.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $DD
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
        docker-registry serve "$BENCH_DIR/dist.yml" >>"$BENCH_DIR/dist.log" 2>&1 &
        DPID=$!; PIDS+=("$DPID")
        wait_http "http://127.0.0.1:$port"
        python3 "$ROOT/tools/bench/bench-gc-push.py" "http://127.0.0.1:$port" --images "$IMAGES" --layers 3 | tee "$BENCH_DIR/dist-push.txt"
        kill -TERM "$DPID"; wait "$DPID" 2>/dev/null || true
        dist_before=$(find "$DD" -path '*/blobs/*' -name data | wc -l)
        sync # each timed GC starts with no writeback of earlier set-up in flight
        t0=$(now)
        docker-registry garbage-collect "$BENCH_DIR/dist.yml" >"$BENCH_DIR/dist-gc.log" 2>&1
        t1=$(now)
        dist_after=$(find "$DD" -path '*/blobs/*' -name data | wc -l)
        dist_s=$(echo "$t1 - $t0" | bc -l)

        # plura (grace 0: everything pushed is old enough for this run)
        PD="$STORE_DIR/plura-a"
        echo "{ \"access_log\": false, \"log_level\": \"warning\", \"gc\": { \"grace\": \"0\", \"untagged_grace\": \"0\"${BENCH_GC_EXTRA:+, $BENCH_GC_EXTRA} } }" >"$BENCH_DIR/plura-a.json"
        start_plura "$PD" "$BENCH_DIR/plura-a.json"
        python3 "$ROOT/tools/bench/bench-gc-push.py" "$URL" --images "$IMAGES" --layers 3 | tee "$BENCH_DIR/plura-push.txt"
        plura_before=$(find "$PD/blobs" -type f | wc -l)
        # two copies of the same store: one collected by a server with no load, one offline
        stop_plura
        rm -rf "$PD-idle" "$PD-offline"
        cp -a "$PD" "$PD-idle"
        cp -a "$PD" "$PD-offline"
        sync
        start_plura "$PD" "$BENCH_DIR/plura-a.json"
        # a kept manifest for the latency probe
        probe=/v2/bench/r1/manifests/t1
        curl -sf -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$URL$probe" || probe=/v2/bench/r3/manifests/t3
        idle_p99=$(wrk_p99 "$URL" "$probe" "$DUR")
        wrk -t2 -c16 -d"${DUR}s" --latency -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$URL$probe" >"$BENCH_DIR/wrk-during-a.txt" 2>&1 &
        WPID=$!
        sleep 1
        t0=$(now)
        "$PLURA" reg gc --url "$URL" --json >"$BENCH_DIR/plura-gc-a.json"
        t1=$(now)
        wait "$WPID" || true
        plura_s=$(echo "$t1 - $t0" | bc -l)
        during_p99=$(p99_of_wrk "$BENCH_DIR/wrk-during-a.txt")
        plura_after=$(find "$PD/blobs" -type f | wc -l)
        stop_plura
        ratio=$(echo "$plura_s / $dist_s" | bc -l)
        start_plura "$PD-idle" "$BENCH_DIR/plura-a.json"
        t0=$(now)
        "$PLURA" reg gc --url "$URL" --json >"$BENCH_DIR/plura-gc-a-idle.json"
        t1=$(now)
        stop_plura
        idle_s=$(echo "$t1 - $t0" | bc -l)
        t0=$(now)
        "$PLURA" gc -c "$BENCH_DIR/plura-a.json" --data "$PD-offline" --json >"$BENCH_DIR/plura-gc-a-offline.json"
        t1=$(now)
        offline_s=$(echo "$t1 - $t0" | bc -l)
        gc_of() { python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["duration_seconds"])' "$1"; }
        row ""
        row "| A: ${IMAGES} images, $((IMAGES * 4)) blobs, 50% of manifests deleted | Distribution (offline) | plura (online) |"
        row "|---|---|---|"
        row "| GC wall time, plura serving wrk's load (both cores busy) | $(printf %.2f "$dist_s") s | $(printf %.3f "$plura_s") s (ratio $(printf %.3f "$ratio"); the run itself $(gc_of "$BENCH_DIR/plura-gc-a.json") s) |"
        row "| GC wall time, plura serving, no load | | $(printf %.3f "$idle_s") s (ratio $(printf %.3f "$(echo "$idle_s / $dist_s" | bc -l)"); the run itself $(gc_of "$BENCH_DIR/plura-gc-a-idle.json") s) |"
        row "| GC wall time, plura offline (plura gc, process start to exit) | | $(printf %.3f "$offline_s") s (ratio $(printf %.3f "$(echo "$offline_s / $dist_s" | bc -l)")) |"
        row "| blob files before / after | $dist_before / $dist_after | $plura_before / $plura_after |"
        row "| registry serving during GC | no (must be stopped) | yes: manifest GET p99 $idle_p99 ms idle, $during_p99 ms during GC (wrk, overlapping the run) |"
fi

if want b; then
        if [ "$LOAD" = rate ]; then
                cc -O2 -pthread -o "$BENCH_DIR/loadgen" "$ROOT/tools/bench/loadgen.c"
        fi
        echo "== B: $MANIFESTS manifests, ~$((MANIFESTS * 10)) blobs through the storage layer; online GC"
        BD=${BENCH_GC_DATA:-$STORE_DIR/plura-b}
        if [ -n "${BENCH_GC_SEED:-}" ]; then
                [ -d "$BENCH_GC_SEED/index" ] || { echo "BENCH_GC_SEED=$BENCH_GC_SEED: not a plura store" >&2; exit 1; }
                rm -rf "$BD"
                t0=$(now)
                cp -a "$BENCH_GC_SEED" "$BD"
                echo "copied $BENCH_GC_SEED in $(printf %.0f "$(echo "$(now) - $t0" | bc -l)") s"
        fi
        if [ ! -d "$BD/index" ]; then
                t0=$(now)
                "$POPULATE" --data "$BD" --manifests "$MANIFESTS" --layers 11 --repos 1000 --threads 8 2>"$BENCH_DIR/populate.err"
                echo "populated in $(printf %.0f "$(echo "$(now) - $t0" | bc -l)") s"
        fi
        blobs_before=$(find "$BD/blobs" -type f | wc -l)
        sync # the files the GC removes have blocks on disk (delayed allocation frees nothing)
        # A server that has been up for a week has its index in the page cache; a store copied or
        # populated a minute ago on a fresh loop mount does not, and the GC's first read of every
        # SST file then runs through the loop device's worker thread, a kernel thread at normal
        # priority that delays requests by 1-2 ms on 2 cores. BENCH_GC_COLD=1: leave it cold.
        if [ -z "${BENCH_GC_COLD:-}" ]; then
                cat "$BD"/index/* >/dev/null
        fi
        echo "{ \"access_log\": false, \"log_level\": \"warning\", \"gc\": { \"grace\": \"1h\", \"untagged_grace\": \"24h\"${BENCH_GC_EXTRA:+, $BENCH_GC_EXTRA} } }" >"$BENCH_DIR/plura-b.json"
        start_plura "$BD" "$BENCH_DIR/plura-b.json" "$BENCH_DIR/time-v-b.txt"
        probe=/v2/bench/r1/manifests/v1.0.1
        curl -sf -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$URL$probe" || { echo "probe $probe missing" >&2; exit 1; }
        hp=${URL#http://}
        if [ "$LOAD" = rate ]; then
                # fixed rate, open loop: latency of a load the server sustains, GC or not
                echo "$probe" >"$BENCH_DIR/probe-paths"
                lg() { LOADGEN_RATE=$RATE "$BENCH_DIR/loadgen" "${hp%:*}" "${hp##*:}" 8 "$1" GET "$BENCH_DIR/probe-paths" \
                        'Accept: application/vnd.oci.image.manifest.v1+json'; }
                lg_get() { python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().split("BENCH_JSON ",1)[1]); print(d[sys.argv[2]] if sys.argv[2] != "errors" else sum(d["errors"].values()))' "$@"; }
                lg "$DUR" >"$BENCH_DIR/loadgen-idle-b.txt"
                idle_p99=$(lg_get "$BENCH_DIR/loadgen-idle-b.txt" p99_ms)
                idle_rps=$(lg_get "$BENCH_DIR/loadgen-idle-b.txt" rps)
                # not through lg(): $! must be loadgen itself, which the SIGINT below stops
                tl0=$(now)
                LOADGEN_TRACE=$BENCH_DIR/trace-during-b.txt LOADGEN_RATE=$RATE "$BENCH_DIR/loadgen" "${hp%:*}" "${hp##*:}" 8 600 GET \
                        "$BENCH_DIR/probe-paths" 'Accept: application/vnd.oci.image.manifest.v1+json' >"$BENCH_DIR/loadgen-during-b.txt" &
        else
                idle_p99=$(wrk_p99 "$URL" "$probe" "$DUR")
                idle_rps=$(wrk_rps)
                # wrk runs for the whole GC: start it, run the GC, stop wrk right after
                wrk -t2 -c16 -d600s --latency -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$URL$probe" >"$BENCH_DIR/wrk-during-b.txt" 2>&1 &
        fi
        WPID=$!
        sleep 1
        SPID=$(pgrep -P "$PPID_SERVER" plura || echo "$PPID_SERVER")
        thread_cpu "$SPID" >"$BENCH_DIR/cpu-before-b.txt"
        t0=$(now)
        "$PLURA" reg gc --url "$URL" --json >"$BENCH_DIR/plura-gc-b.json"
        t1=$(now)
        thread_cpu "$SPID" >"$BENCH_DIR/cpu-after-b.txt"
        kill -INT "$WPID" 2>/dev/null || true
        wait "$WPID" || true
        gc_s=$(echo "$t1 - $t0" | bc -l)
        if [ "$LOAD" = rate ]; then
                during_p99=$(lg_get "$BENCH_DIR/loadgen-during-b.txt" p99_ms)
                during_rps=$(lg_get "$BENCH_DIR/loadgen-during-b.txt" rps)
                load_errors=$(( $(lg_get "$BENCH_DIR/loadgen-idle-b.txt" errors) + $(lg_get "$BENCH_DIR/loadgen-during-b.txt" errors) ))
                load_desc="loadgen at a fixed $RATE req/s, 8 conns, open loop; $load_errors errors"
                # p99 of the requests sent in each phase's window (phases run in report order)
                by_phase=$(python3 - "$BENCH_DIR/plura-gc-b.json" "$BENCH_DIR/trace-during-b.txt" "$(echo "($t0 - $tl0) * 1000" | bc -l)" <<'PY'
import json, sys
ph = json.load(open(sys.argv[1]))["phases"]; off = float(sys.argv[3])
tr = [tuple(map(int, l.split())) for l in open(sys.argv[2])]
out, t = [], off
for name in ("plan", "apply", "mark", "sweep", "reconcile"):
    end = t + ph[name] * 1000
    lat = sorted(l for s, l in tr if t <= s < end)
    if lat:
        out.append("%s %.2f ms (%d req)" % (name, lat[int((len(lat) - 1) * 0.99)] / 1000, len(lat)))
    t = end
print(", ".join(out))
PY
)
        else
                during_p99=$(p99_of_wrk "$BENCH_DIR/wrk-during-b.txt")
                during_rps=$(awk '/Requests\/sec/ {print $2}' "$BENCH_DIR/wrk-during-b.txt")
                load_desc="wrk, 16 conns, saturating both cores"
        fi
        stop_plura
        rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$BENCH_DIR/time-v-b.txt")
        blobs_after=$(find "$BD/blobs" -type f | wc -l)
        phases=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); p=r["phases"]; t=r["totals"]; print("plan %.1f, apply %.1f, mark %.1f, sweep %.1f, reconcile %.1f s; %d manifests, %d blobs deleted of %d" % (p["plan"],p["apply"],p["mark"],p["sweep"],p["reconcile"],t["manifests_deleted"],t["blobs_deleted"],t["blobs_scanned"]))' "$BENCH_DIR/plura-gc-b.json")
        row ""
        row "| B: $MANIFESTS manifests, $blobs_before blob files | plura (online) |"
        row "|---|---|"
        row "| GC wall time (plura reg gc) | $(printf %.1f "$gc_s") s ($phases) |"
        row "| blob files after | $blobs_after |"
        row "| manifest GET p99 ($load_desc) | $idle_p99 ms idle ($idle_rps req/s), $during_p99 ms during GC ($during_rps req/s): $(printf %.2f "$(echo "$during_p99 / $idle_p99" | bc -l)")x |"
        row "| peak RSS of the server (/usr/bin/time -v) | $((rss_kb / 1024)) MiB |"
        [ -n "${by_phase:-}" ] && row "| p99 by GC phase (requests sent in the phase) | $by_phase |"
        row "| server CPU during the GC, by thread name | $(cpu_delta "$BENCH_DIR/cpu-before-b.txt" "$BENCH_DIR/cpu-after-b.txt") |"
fi
echo "results: $RESULTS"
