#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# TLS benchmark (issue 17): plura with native TLS (tls.cert/tls.key, libmicrohttpd + GnuTLS) against
# CNCF Distribution (Debian's docker-registry) with TLS (http.tls.certificate/key, Go crypto/tls),
# same certificate (ECDSA P-256), same data, same machine, one run:
#   - manifest GET by tag, 16 keep-alive connections (wrk)
#   - blob pull, 64 MiB blobs, 4 keep-alive connections (wrk)
#   - a new connection per request (GET /v2/ with Connection: close): the TLS handshake rate
# and, as the baseline in the same run, the same three over plain HTTP: both registries are seeded
# over plain HTTP, measured, then restarted with TLS on the same data and measured again.
#
#   tools/bench/bench-tls.sh            (also the "tls" part of tools/bench/run-all.sh / make bench)
#
# Environment: PLURA (default build/tools/plura), BENCH_DIR, BENCH_DURATION (seconds per wrk run,
# default 10), BENCH_TLS_REPOS (repositories x 10 tags, default 200), BENCH_TLS_BLOBS (64 MiB blobs,
# default 4), BENCH_KEEP=1 keeps the data.
# Results: a table on stdout, $BENCH_DIR/results.md and results.json.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B="$ROOT/tools/bench"
PLURA=${PLURA:-$ROOT/build/tools/plura}
DUR=${BENCH_DURATION:-10}
REPOS=${BENCH_TLS_REPOS:-200}
TAGS=10
NBLOBS=${BENCH_TLS_BLOBS:-4}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /var/tmp/plura-bench-tls.XXXXXX)}
mkdir -p "$BENCH_DIR"

for tool in wrk docker-registry openssl python3 jq curl; do
        command -v "$tool" >/dev/null || { echo "bench-tls.sh: $tool missing (make bench-deps installs it)" >&2; exit 1; }
done
[ -x "$PLURA" ] || { echo "bench-tls.sh: $PLURA not built (make build)" >&2; exit 1; }

PIDS=()
cleanup() {
        local rc=$?
        for p in "${PIDS[@]:-}"; do
                [ -n "$p" ] && kill "$p" 2>/dev/null && { for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; kill -9 "$p" 2>/dev/null || true; }
        done
        [ -n "${BENCH_KEEP:-}" ] || rm -rf "$BENCH_DIR/plura" "$BENCH_DIR/distribution" "$BENCH_DIR/blobs"
        exit "$rc"
}
trap cleanup EXIT
log() { echo "# $*" >&2; }
stop_pid() { # PID: SIGTERM, wait for it to exit
        kill "$1" 2>/dev/null || return 0
        for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
        kill -9 "$1" 2>/dev/null || true
}

# ---------------------------------------------------------------- certificate (ECDSA P-256, like most ACME certificates)
PKI="$BENCH_DIR/pki"
mkdir -p "$PKI"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 2 \
        -subj "/CN=plura bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI/server.key" -out "$PKI/server.csr" \
        -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$PKI/server.ext"
openssl x509 -req -in "$PKI/server.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 2 \
        -extfile "$PKI/server.ext" -out "$PKI/server.crt" 2>/dev/null
cat "$PKI/server.crt" "$PKI/ca.crt" >"$PKI/chain.crt"

# ---------------------------------------------------------------- servers
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { # URL LOG
        for _ in $(seq 200); do curl -sf --cacert "$PKI/ca.crt" -o /dev/null "$1/v2/" && return 0; sleep 0.05; done
        cat "$2" >&2; exit 1
}

start_plura() { # plain|tls
        local tls=''
        [ "$1" = tls ] && tls=", \"tls\": { \"cert\": \"$PKI/chain.crt\", \"key\": \"$PKI/server.key\" }"
        cat >"$BENCH_DIR/plura.json" <<EOF
{ "log_level": "warning", "access_log": false, "storage": { "fsync": ${BENCH_PLURA_FSYNC:-true} }$tls }
EOF
        rm -f "$BENCH_DIR/plura.ready"
        "$PLURA" serve -c "$BENCH_DIR/plura.json" --listen 127.0.0.1:0 --data "$BENCH_DIR/plura" \
                --ready-file "$BENCH_DIR/plura.ready" >>"$BENCH_DIR/plura.log" 2>&1 &
        PLURA_PID=$!
        PIDS+=("$PLURA_PID")
        for _ in $(seq 200); do [ -s "$BENCH_DIR/plura.ready" ] && break; sleep 0.05; done
        [ -s "$BENCH_DIR/plura.ready" ] || { cat "$BENCH_DIR/plura.log" >&2; exit 1; }
        P_URL="$([ "$1" = tls ] && echo https || echo http)://$(head -n1 "$BENCH_DIR/plura.ready")"
        wait_up "$P_URL" "$BENCH_DIR/plura.log"
}

start_distribution() { # plain|tls
        local port tls=''
        port=$(free_port)
        [ "$1" = tls ] && tls="  tls:
    certificate: $PKI/chain.crt
    key: $PKI/server.key"
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
$tls
EOF
        docker-registry serve "$BENCH_DIR/distribution.yml" >>"$BENCH_DIR/distribution.log" 2>&1 &
        DIST_PID=$!
        PIDS+=("$DIST_PID")
        D_URL="$([ "$1" = tls ] && echo https || echo http)://127.0.0.1:$port"
        wait_up "$D_URL" "$BENCH_DIR/distribution.log"
}

# ---------------------------------------------------------------- measuring
RESULTS="$BENCH_DIR/results.tsv"
: >"$RESULTS"
result() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }
jget() { jq -r "$2" <<<"$1"; }
bench_json() { grep '^BENCH_JSON ' | tail -n1 | cut -d' ' -f2-; }
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
per_unit() { awk "BEGIN {printf \"%.2f\", ($2 > 0) ? $1 * $3 / $2 : 0}"; }

# run WHO NAME CONNS SCRIPT ARGS...: one wrk run against P or D; sets R_<WHO> (JSON) and CPU_<WHO> (s)
run() {
        local who=$1 name=$2 conns=$3 script=$4; shift 4
        local url pid c0 c1 js
        if [ "$who" = P ]; then url=$P_URL pid=$PLURA_PID; else url=$D_URL pid=$DIST_PID; fi
        log "$name on $who ($conns connections, ${DUR}s)"
        c0=$(cpu_ticks "$pid")
        js=$(wrk -t2 -c"$conns" -d"${DUR}s" --timeout 10s -s "$B/$script" "$url" -- "$@" 2>&1 | tee -a "$BENCH_DIR/wrk.log" | bench_json)
        c1=$(cpu_ticks "$pid")
        log "$js"
        printf -v "R_$who" '%s' "$js"
        printf -v "CPU_$who" '%s' "$(awk "BEGIN {print ($c1 - $c0) / $CLK_TCK}")"
}
errors_of() { jget "$1" '.errors.status + .errors.timeout + .errors.read + .errors.connect'; }

measure() { # plain|tls
        local mode=$1 label
        label=$([ "$mode" = tls ] && echo "TLS" || echo "plain HTTP")
        for who in P D; do run "$who" "manifest GET ($label)" 16 read.lua get "$REPOS" "$TAGS" bench/r; done
        result "manifest GET by tag, $label, 16 clients" "req/s" "$(jget "$R_P" .rps)" "$(jget "$R_D" .rps)" ""
        result "manifest GET by tag, $label, 16 clients" "p99 ms" "$(jget "$R_P" .p99_ms)" "$(jget "$R_D" .p99_ms)" ""
        result "manifest GET by tag, $label, 16 clients" "server CPU µs/request" \
                "$(per_unit "$CPU_P" "$(jget "$R_P" .requests)" 1e6)" "$(per_unit "$CPU_D" "$(jget "$R_D" .requests)" 1e6)" ""
        [ "$(errors_of "$R_P")$(errors_of "$R_D")" = 00 ] ||
                result "manifest GET by tag, $label, 16 clients" "errors" "$(errors_of "$R_P")" "$(errors_of "$R_D")" "0"

        for who in P D; do run "$who" "blob pull ($label)" 4 read.lua blob "$BENCH_DIR/blobs/list" 0 bench/blobs; done
        result "blob pull (64 MiB), $label, 4 clients" "MB/s" "$(jget "$R_P" .MBps)" "$(jget "$R_D" .MBps)" ""
        result "blob pull (64 MiB), $label, 4 clients" "p99 ms" "$(jget "$R_P" .p99_ms)" "$(jget "$R_D" .p99_ms)" ""
        result "blob pull (64 MiB), $label, 4 clients" "server CPU s/GB" \
                "$(per_unit "$CPU_P" "$(jget "$R_P" .bytes)" 1e9)" "$(per_unit "$CPU_D" "$(jget "$R_D" .bytes)" 1e9)" ""
        [ "$(errors_of "$R_P")$(errors_of "$R_D")" = 00 ] ||
                result "blob pull (64 MiB), $label, 4 clients" "errors" "$(errors_of "$R_P")" "$(errors_of "$R_D")" "0"

        for who in P D; do run "$who" "new connection per request ($label)" 16 handshake.lua; done
        result "new connection per request (GET /v2/), $label, 16 clients" "connections/s" "$(jget "$R_P" .rps)" "$(jget "$R_D" .rps)" ""
        result "new connection per request (GET /v2/), $label, 16 clients" "server CPU µs/connection" \
                "$(per_unit "$CPU_P" "$(jget "$R_P" .requests)" 1e6)" "$(per_unit "$CPU_D" "$(jget "$R_D" .requests)" 1e6)" ""
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- seed over plain HTTP, measure
start_plura plain
start_distribution plain
log "plura on $P_URL, Distribution on $D_URL, data in $BENCH_DIR"
mkdir -p "$BENCH_DIR/blobs"
log "generating $NBLOBS random 64 MiB blobs"
for i in $(seq "$NBLOBS"); do
        head -c 67108864 /dev/urandom >"$BENCH_DIR/blobs/tmp"
        mv "$BENCH_DIR/blobs/tmp" "$BENCH_DIR/blobs/$(sha256sum "$BENCH_DIR/blobs/tmp" | cut -d' ' -f1)"
done
ls "$BENCH_DIR/blobs" | grep -v '^list$' | sed 's/^/sha256:/' >"$BENCH_DIR/blobs/list"
for who in P D; do
        url=${who}_URL
        log "seeding $REPOS x $TAGS manifests and $NBLOBS blobs into $who"
        js=$(python3 "$B/seed.py" "${!url}" --repos "$REPOS" --tags "$TAGS" --threads 8)
        [ "$(jget "$js" '.errors | length')" = 0 ] || { echo "seeding failed: $js" >&2; exit 1; }
        js=$(python3 "$B/blobbench.py" "${!url}" bench/blobs --mode mono --concurrency 4 "$BENCH_DIR"/blobs/[0-9a-f]*)
        [ "$(jget "$js" '.errors | length')" = 0 ] || { echo "blob push failed: $js" >&2; exit 1; }
done
sync
measure plain

# ---------------------------------------------------------------- the same data over TLS
stop_pid "$PLURA_PID"
stop_pid "$DIST_PID"
start_plura tls
start_distribution tls
log "plura on $P_URL, Distribution on $D_URL"
proto() { # URL: what a client negotiates
        timeout 10 openssl s_client -connect "${1#https://}" -CAfile "$PKI/ca.crt" </dev/null 2>/dev/null |
                sed -n 's/^New, \(.*\), Cipher is \(.*\)$/\1 \2/p' | head -n1
}
P_PROTO=$(proto "$P_URL")
D_PROTO=$(proto "$D_URL")
measure tls

# ---------------------------------------------------------------- report
python3 - "$RESULTS" "$BENCH_DIR" <<'EOF' >"$BENCH_DIR/results.md"
import json, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
out = []
print("| workload | metric | plura | Distribution | plura/Distribution |")
print("|---|---|---:|---:|---:|")
for w, m, p, d, t in rows:
    try:
        pf, df = float(p), float(d)
        if "ms" in m or "error" in m or "CPU" in m:
            ratio = ("%.2f× lower" % (df / pf) if pf <= df else "%.2f× higher" % (pf / df)) if pf > 0 and df > 0 else "-"
        else:
            ratio = "%.2f×" % (pf / df) if df > 0 else "-"
    except ValueError:
        ratio = "-"
    print("| %s | %s | %s | %s | %s |" % (w, m, p, d, ratio))
    out.append(dict(workload=w, metric=m, plura=p, distribution=d, ratio=ratio))
json.dump(out, open(sys.argv[2] + "/results.json", "w"), indent=1)
EOF
{
        echo "## TLS run $(date -u +%Y-%m-%dT%H:%MZ)"
        echo
        echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores; $(. /etc/os-release && echo "$PRETTY_NAME")"
        echo "- load average (1/5/15 min) at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg) — other jobs on the machine skew every number"
        echo "- plura (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')) with libmicrohttpd $(dpkg-query -W -f='${Version}' libmicrohttpd12 2>/dev/null) / GnuTLS $(dpkg-query -W -f='${Version}' libgnutls30 2>/dev/null), negotiated: $P_PROTO"
        echo "- Distribution $(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null) (Go crypto/tls), negotiated: $D_PROTO"
        echo "- ECDSA P-256 certificate; wrk $(dpkg-query -W -f='${Version}' wrk 2>/dev/null) (OpenSSL) on the same cores, ${DUR}s per run; $REPOS repositories x $TAGS tags, $NBLOBS x 64 MiB blobs; plura storage.fsync=${BENCH_PLURA_FSYNC:-true}"
        echo
        cat "$BENCH_DIR/results.md"
} | tee "$BENCH_DIR/report.md"
log "report in $BENCH_DIR/report.md"
