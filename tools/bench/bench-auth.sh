#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Authentication benchmark (issue 17): what authenticated manifest reads cost, plura against CNCF
# Distribution (Debian's docker-registry) with `auth: htpasswd`, same image, same machine, one run.
#
#   tools/bench/bench-auth.sh          (also the "auth" part of tools/bench/run-all.sh / make bench)
#
# Servers, all on loopback, all serving the same small image (config + one 1 KiB layer, an OCI
# manifest of 470 bytes by tag) pushed over HTTP:
#   PN  plura without auth (same binary): the anonymous baseline
#   PA  plura with auth: htpasswd (bcrypt cost BENCH_AUTH_BCRYPT_COST, default 10, as
#       `htpasswd -B -C 10` makes it), the bench users may pull bench/app, and an anonymous pull
#       rule on bench/public (the same image)
#   DN  Distribution without auth
#   DA  Distribution with `auth: htpasswd` and the same htpasswd file (Basic on every request)
#   D5  Distribution with the same users at `htpasswd -B`'s own default cost (5), for reference
# Workloads, GET (wrk, auth.lua) and HEAD (loadgen.c: wrk 4.1 never completes a HEAD) of
# /v2/<repo>/manifests/1 with Accept: application/vnd.oci.image.manifest.v1+json, 16 keep-alive
# connections, BENCH_DURATION seconds each:
#   anonymous       PN, no credentials / DN
#   anonymous pull  PA, no credentials, bench/public (auth on: identified, then the ACL)
#   bearer          PA with a token from GET /v2/token (Basic of "bench", scope
#                   repository:bench/app:pull), fetched just before the run / DA with Basic (the
#                   only way Distribution's htpasswd auth has)
#   Basic           PA with user:password on every request, as curl -u sends it, of a user no
#                   request has used before the run (its cache starts cold) / DA, D5 with Basic
# The four plura workloads run in BENCH_AUTH_ROUNDS rounds (default 3, BENCH_QUICK=1: 1), each round
# in another order, so that the bearer/anonymous ratio compares runs minutes, not seconds, apart on
# a shared machine: each round's bearer run is divided by the same round's anonymous run, and the
# median of those ratios is the result. Distribution's workloads run once.
# Around every PA run, plura_auth_bcrypt_total is read from /metrics: the bcrypts paid during the
# run (target: at most 1 per credential per auth.basic_cache_ttl). Every run must answer only 2xx
# (wrk/loadgen count anything else as errors); after each run the same request is checked to
# answer 200, and without the credentials 401.
#
# Environment: PLURA (default build/tools/plura), BENCH_DIR, BENCH_DURATION (seconds per run,
# default 10; BENCH_QUICK=1: 4), BENCH_AUTH_ROUNDS, BENCH_AUTH_CONNS (16), BENCH_AUTH_BCRYPT_COST
# (10), BENCH_AUTH_BASIC_TTL (plura's auth.basic_cache_ttl; default: plura's default, 60s),
# BENCH_PERF="anon-get bearer-get basic-get anonpull-get anon-head ..." records `perf record -g` of
# the plura serving those runs (first round) into $BENCH_DIR/perf-<name>.{data,txt}, BENCH_KEEP=1
# keeps the data. Results: a report on stdout, $BENCH_DIR/report.md, runs.tsv (every run),
# results.json.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B="$ROOT/tools/bench"
PLURA=${PLURA:-$ROOT/build/tools/plura}
if [ -n "${BENCH_QUICK:-}" ]; then : "${BENCH_DURATION:=4}" "${BENCH_AUTH_ROUNDS:=1}"; fi
DUR=${BENCH_DURATION:-10}
ROUNDS=${BENCH_AUTH_ROUNDS:-3}
CONNS=${BENCH_AUTH_CONNS:-16}
COST=${BENCH_AUTH_BCRYPT_COST:-10}
TTL=${BENCH_AUTH_BASIC_TTL:-60s}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /var/tmp/plura-bench-auth.XXXXXX)}
mkdir -p "$BENCH_DIR"
ACCEPT="application/vnd.oci.image.manifest.v1+json"

for tool in wrk docker-registry htpasswd openssl python3 jq curl cc; do
        command -v "$tool" >/dev/null || { echo "bench-auth.sh: $tool missing (make bench-deps installs it)" >&2; exit 1; }
done
[ -x "$PLURA" ] || { echo "bench-auth.sh: $PLURA not built (make build)" >&2; exit 1; }

PIDS=()
cleanup() {
        local rc=$?
        for p in "${PIDS[@]:-}"; do
                [ -n "$p" ] && kill "$p" 2>/dev/null && { for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; kill -9 "$p" 2>/dev/null || true; }
        done
        [ -n "${BENCH_KEEP:-}" ] || rm -rf "$BENCH_DIR/plura-pn" "$BENCH_DIR/plura-pa" "$BENCH_DIR/distribution" "$BENCH_DIR/image"
        exit "$rc"
}
trap cleanup EXIT
log() { echo "# $*" >&2; }
die() { echo "bench-auth.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- users (htpasswd -B, bcrypt)
# pusher pushes the image; bench asks /v2/token before each bearer run; basic-<method>-<round> is
# used by its Basic run alone, so that every Basic run starts with nothing cached.
HT="$BENCH_DIR/htpasswd" HT5="$BENCH_DIR/htpasswd-cost5"
declare -A PW
USERS=(pusher bench)
for r in $(seq "$ROUNDS"); do USERS+=("basic-get-$r" "basic-head-$r"); done
rm -f "$HT" "$HT5"
for u in "${USERS[@]}"; do
        PW[$u]=$(openssl rand -hex 12)
        htpasswd -B -C "$COST" -b $([ -f "$HT" ] || echo -c) "$HT" "$u" "${PW[$u]}" 2>/dev/null
        htpasswd -B -b $([ -f "$HT5" ] || echo -c) "$HT5" "$u" "${PW[$u]}" 2>/dev/null # htpasswd's own default cost
done
grep -q "^bench:\$2y\$$(printf %02d "$COST")\\$" "$HT" || die "htpasswd did not make cost-$COST bcrypt hashes"
COST5=$(sed -n 's/^bench:\$2y\$0*\([0-9]*\)\$.*/\1/p' "$HT5")
basic() { printf 'Basic %s' "$(printf '%s:%s' "$1" "${PW[$1]}" | base64 -w0)"; }
# one bcrypt verification at a cost, in C on this machine (apr's crypt_blowfish, like libcrypt's):
# the fastest of 5 `htpasswd -v` runs, process start included
bcrypt_ms() {
        python3 - "$1" bench "${PW[bench]}" <<'PY'
import subprocess, sys, time
ts = []
for _ in range(5):
    t = time.monotonic()
    subprocess.run(["htpasswd", "-v", "-b", sys.argv[1], sys.argv[2], sys.argv[3]], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ts.append(time.monotonic() - t)
print("%.1f" % (min(ts) * 1e3))
PY
}

# ---------------------------------------------------------------- servers
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_plura() { # NAME AUTH_JSON|"" -> <NAME>_URL, <NAME>_PID
        local name=$1 auth=$2 dir="$BENCH_DIR/plura-${1,,}"
        cat >"$BENCH_DIR/plura-$name.json" <<EOF
{ "log_level": "warning", "access_log": false, "storage": { "fsync": ${BENCH_PLURA_FSYNC:-true} }${auth:+, \"auth\": $auth} }
EOF
        rm -f "$BENCH_DIR/plura-$name.ready"
        "$PLURA" serve -c "$BENCH_DIR/plura-$name.json" --listen 127.0.0.1:0 --data "$dir" \
                --ready-file "$BENCH_DIR/plura-$name.ready" >>"$BENCH_DIR/plura-$name.log" 2>&1 &
        PIDS+=($!)
        printf -v "${name}_PID" '%s' $!
        for _ in $(seq 200); do [ -s "$BENCH_DIR/plura-$name.ready" ] && break; sleep 0.05; done
        [ -s "$BENCH_DIR/plura-$name.ready" ] || { cat "$BENCH_DIR/plura-$name.log" >&2; exit 1; }
        printf -v "${name}_URL" '%s' "http://$(head -n1 "$BENCH_DIR/plura-$name.ready")"
}

start_distribution() { # NAME HTPASSWD|"" -> <NAME>_URL, <NAME>_PID; all of them share one storage root
        local name=$1 ht=$2 port auth=''
        port=$(free_port)
        [ -z "$ht" ] || auth="auth:
  htpasswd:
    realm: plura-bench
    path: $ht"
        cat >"$BENCH_DIR/distribution-$name.yml" <<EOF
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
$auth
EOF
        docker-registry serve "$BENCH_DIR/distribution-$name.yml" >>"$BENCH_DIR/distribution-$name.log" 2>&1 &
        PIDS+=($!)
        printf -v "${name}_PID" '%s' $!
        printf -v "${name}_URL" '%s' "http://127.0.0.1:$port"
        for _ in $(seq 200); do
                case $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/") in 200|401) return 0;; esac
                sleep 0.05
        done
        cat "$BENCH_DIR/distribution-$name.log" >&2; exit 1
}

# ---------------------------------------------------------------- the image
IMG="$BENCH_DIR/image"
mkdir -p "$IMG"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}' >"$IMG/config"
head -c 1024 /dev/urandom >"$IMG/layer"
dgst() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
cat >"$IMG/manifest" <<EOF
{"schemaVersion":2,"mediaType":"$ACCEPT","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"$(dgst "$IMG/config")","size":$(stat -c %s "$IMG/config")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"$(dgst "$IMG/layer")","size":1024}],"annotations":{"org.opencontainers.image.title":"plura auth bench"}}
EOF
MANIFEST_DIGEST=$(dgst "$IMG/manifest")

push_image() { # URL REPO [curl args: credentials]: POST + PUT of each blob, PUT of the manifest as tag 1
        local url=$1 repo=$2 f loc sep; shift 2
        for f in config layer; do
                loc=$(curl -sS -f -D - -o /dev/null -X POST "$@" "$url/v2/$repo/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
                [ -n "$loc" ] || die "push to $url: no upload location"
                case $loc in http*) ;; *) loc="$url$loc";; esac
                sep='?'; [[ $loc != *\?* ]] || sep='&'
                curl -sS -f -o /dev/null -X PUT "$@" -H 'Content-Type: application/octet-stream' --data-binary @"$IMG/$f" \
                        "$loc${sep}digest=$(dgst "$IMG/$f")"
        done
        curl -sS -f -o /dev/null -X PUT "$@" -H "Content-Type: $ACCEPT" --data-binary @"$IMG/manifest" "$url/v2/$repo/manifests/1"
}

# ---------------------------------------------------------------- measuring
RUNS="$BENCH_DIR/runs.tsv"
printf 'workload\tmethod\tround\tserver\trps\tp50_ms\tp99_ms\trequests\tseconds\tcpu_s\terrors\tbcrypts\tcredentials\tload1\n' >"$RUNS"
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
bench_json() { grep '^BENCH_JSON ' | tail -n1 | cut -d' ' -f2-; }
bcrypt_total() { curl -sf "$PA_URL/metrics" | awk '$1 == "plura_auth_bcrypt_total" {print $2; f = 1} END {if (!f) print 0}'; }
status_of() { # METHOD URL [AUTHORIZATION]
        local a=()
        [ -z "${3:-}" ] || a=(-H "Authorization: $3")
        if [ "$1" = HEAD ]; then curl -s -I -o /dev/null -w '%{http_code}' -H "Accept: $ACCEPT" "${a[@]}" "$2"
        else curl -s -o /dev/null -w '%{http_code}' -H "Accept: $ACCEPT" "${a[@]}" "$2"; fi
}

PERF_PID=
perf_start() { # NAME PID
        [[ " ${BENCH_PERF:-} " == *" $1 "* ]] && [ ! -e "$BENCH_DIR/perf-$1.data" ] || return 0
        perf record -F 999 -g -o "$BENCH_DIR/perf-$1.data" -p "$2" >/dev/null 2>&1 &
        PERF_PID=$!; PERF_NAME=$1
        sleep 0.5
}
perf_stop() {
        [ -n "$PERF_PID" ] || return 0
        kill -INT "$PERF_PID" 2>/dev/null; wait "$PERF_PID" 2>/dev/null || true
        perf report -i "$BENCH_DIR/perf-$PERF_NAME.data" --stdio --no-children --percent-limit 0.3 -g none \
                >"$BENCH_DIR/perf-$PERF_NAME.txt" 2>/dev/null || true
        log "profile of plura: $BENCH_DIR/perf-$PERF_NAME.txt"
        PERF_PID=
}

# run WORKLOAD METHOD ROUND SERVER REPO CREDENTIALS [AUTHORIZATION]: CONNS connections for DUR
# seconds; one line in runs.tsv.
run() {
        local wl=$1 method=$2 round=$3 srv=$4 repo=$5 creds=$6 authz=${7:-} url pid c0 c1 b0=0 b1=0 js hp st load
        url=${srv}_URL; url=${!url}
        pid=${srv}_PID; pid=${!pid}
        local path="/v2/$repo/manifests/1"
        load=$(cut -d' ' -f1 /proc/loadavg)
        log "$wl $method (round $round): $path on $srv ($CONNS connections, ${DUR}s; load $load)"
        [ "$srv" != PA ] || b0=$(bcrypt_total)
        perf_start "$wl-${method,,}" "$pid"
        c0=$(cpu_ticks "$pid")
        if [ "$method" = HEAD ]; then
                hp=${url#http://}
                printf '%s\n' "$path" >"$BENCH_DIR/path"
                js=$("$BENCH_DIR/loadgen" "${hp%:*}" "${hp##*:}" "$CONNS" "$DUR" HEAD "$BENCH_DIR/path" \
                        "Accept: $ACCEPT${authz:+$'\r\n'Authorization: $authz}" | tee -a "$BENCH_DIR/wrk.log" | bench_json)
        else
                js=$(wrk -t2 -c"$CONNS" -d"${DUR}s" --timeout 10s -s "$B/auth.lua" "$url" -- GET "$path" "$authz" 2>&1 |
                        tee -a "$BENCH_DIR/wrk.log" | bench_json)
        fi
        c1=$(cpu_ticks "$pid")
        perf_stop
        [ -n "$js" ] || die "$wl $method: no result (see $BENCH_DIR/wrk.log)"
        log "$js"
        [ "$srv" != PA ] || b1=$(bcrypt_total)
        local errors
        errors=$(jq -r '.errors.status + .errors.timeout + .errors.read + .errors.connect' <<<"$js")
        [ "$errors" = 0 ] || log "$wl $method: $errors requests failed or were not 2xx"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$wl" "$method" "$round" "$srv" \
                "$(jq -r '[.rps, .p50_ms, .p99_ms, .requests, .seconds] | map(tostring) | join("\t")' <<<"$js")" \
                "$(awk "BEGIN {print ($c1 - $c0) / $CLK_TCK}")" "$errors" \
                "$([ "$srv" = PA ] && echo $((b1 - b0)) || echo -)" "$creds" "$load" >>"$RUNS"
        # what the run was made of: this request is 200, and needs its credentials
        st=$(status_of "$method" "$url$path" "$authz")
        [ "$st" = 200 ] || die "$wl $method: $url$path answers $st"
        if [ -n "$authz" ]; then
                st=$(status_of "$method" "$url$path")
                [ "$st" = 401 ] || die "$wl $method: $url$path without credentials answers $st, not 401"
        fi
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)
cc -O2 -pthread -o "$BENCH_DIR/loadgen" "$B/loadgen.c"

# ---------------------------------------------------------------- start, push the image everywhere
PULLERS=$(printf '%s\n' "${USERS[@]}" | grep -v '^pusher$' | jq -R . | jq -sc .)
AUTH_JSON=$(jq -nc --arg ht "$HT" --arg ttl "$TTL" --argjson pullers "$PULLERS" '{
        htpasswd: $ht,
        basic_cache_ttl: $ttl,
        acl: [
                { repos: "bench/*", users: ["pusher"], allow: ["pull", "push"] },
                { repos: "bench/app", users: $pullers, allow: ["pull"] },
                { repos: "bench/public", anonymous: true, allow: ["pull"] } ] }')
start_plura PN ""
start_plura PA "$AUTH_JSON"
start_distribution DN ""
start_distribution DA "$HT"
start_distribution D5 "$HT5"
log "plura without auth $PN_URL, with auth $PA_URL; Distribution without auth $DN_URL, htpasswd $DA_URL (cost $COST), $D5_URL (cost $COST5); data in $BENCH_DIR"
TTL_S=$(python3 -c 'import re,sys; m=re.fullmatch(r"(\d+)([smhdw]?)", sys.argv[1]); print(int(m[1]) * {"":1,"s":1,"m":60,"h":3600,"d":86400,"w":604800}[m[2]])' "$TTL")

push_image "$PN_URL" bench/app
push_image "$PA_URL" bench/app -u "pusher:${PW[pusher]}"
push_image "$PA_URL" bench/public -u "pusher:${PW[pusher]}"
push_image "$DN_URL" bench/app
for s in PN PA DN DA D5; do
        url=${s}_URL
        a=()
        case $s in PA|DA|D5) a=(-u "pusher:${PW[pusher]}");; esac
        d=$(curl -sf -I "${a[@]}" -H "Accept: $ACCEPT" "${!url}/v2/bench/app/manifests/1" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
        [ "$d" = "$MANIFEST_DIGEST" ] || die "$s serves bench/app:1 as '$d', not $MANIFEST_DIGEST"
done
sync

TOKEN_BCRYPTS=0 TOKENS=0 TOKEN_FIRST=
token_request() { # a bearer token for bench, scope pull on bench/app, as docker/podman/skopeo ask for it
        local b0; b0=$(bcrypt_total)
        TOKEN=$(curl -sf -u "bench:${PW[bench]}" "$PA_URL/v2/token?service=plura&scope=repository:bench/app:pull" | jq -er .token)
        TOKEN_BCRYPTS=$((TOKEN_BCRYPTS + $(bcrypt_total) - b0)); TOKENS=$((TOKENS + 1))
        TOKEN_LAST=$(date +%s); TOKEN_FIRST=${TOKEN_FIRST:-$TOKEN_LAST}
}

# ---------------------------------------------------------------- the runs
for m in get head; do
        M=${m^^}
        for r in $(seq "$ROUNDS"); do
                order=(anonymous anonymous-pull bearer basic)
                order=("${order[@]:$(((r - 1) % 4))}" "${order[@]:0:$(((r - 1) % 4))}")
                for wl in "${order[@]}"; do
                        case $wl in
                        anonymous) run "$wl" "$M" "$r" PN bench/app 0;;
                        anonymous-pull) run "$wl" "$M" "$r" PA bench/public 0;;
                        bearer) token_request; run "$wl" "$M" "$r" PA bench/app 0 "Bearer $TOKEN";;
                        basic) run "$wl" "$M" "$r" PA bench/app 1 "$(basic "basic-$m-$r")";;
                        esac
                done
        done
        run anonymous "$M" 1 DN bench/app 0
        run basic "$M" 1 DA bench/app 1 "$(basic "basic-$m-1")"
        run basic-cost5 "$M" 1 D5 bench/app 1 "$(basic "basic-$m-1")"
done
T_END=$(date +%s)
BCRYPT_MS=$(bcrypt_ms "$HT") BCRYPT5_MS=$(bcrypt_ms "$HT5")

# ---------------------------------------------------------------- report
{
        echo "## Authentication run $(date -u +%Y-%m-%dT%H:%MZ)"
        echo
        echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores; $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)"
        echo "- load average (1/5/15 min) at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg); 1-min load at the start of each run: $(tail -n +2 "$RUNS" | cut -f14 | sort -n | sed -n '1p;$p' | paste -sd- | sed 's/-/ to /') (the bench itself, server + client, accounts for about 2) — other jobs on the machine skew every number; $((T_END - T_START)) s in all"
        echo "- plura $("$PLURA" --version 2>/dev/null | cut -d' ' -f2) ($PLURA; tree at git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')), libmicrohttpd $(dpkg-query -W -f='${Version}' libmicrohttpd12 2>/dev/null), OpenSSL $(dpkg-query -W -f='${Version}' libssl3 2>/dev/null), libcrypt $(dpkg-query -W -f='${Version}' libcrypt1 2>/dev/null); storage.fsync=${BENCH_PLURA_FSYNC:-true}; auth.basic_cache_ttl $TTL; tokens signed with the Ed25519 key plura made"
        echo "- Distribution $(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null) (\`auth: htpasswd\`); wrk $(dpkg-query -W -f='${Version}' wrk 2>/dev/null) (GET) and loadgen (HEAD) on the same cores, $CONNS connections, ${DUR}s per run, $ROUNDS round(s) of the plura runs"
        echo "- bcrypt cost $COST (\`htpasswd -B -C $COST\`; one verification takes $BCRYPT_MS ms here, as \`htpasswd -v\` with its process start); the D5 rows: \`htpasswd -B\`'s default cost $COST5 ($BCRYPT5_MS ms)"
        echo "- the anonymous baseline is plura without auth (same binary, same image): a bearer request there pays all that authentication adds (header, token lookup, rights); \"anonymous pull\" is the plura with auth on, without credentials, on a repository of an anonymous pull rule"
        echo
        python3 - "$RUNS" "$BENCH_DIR" "$TTL_S" "$COST" "$COST5" <<'EOF'
import csv, json, statistics, sys
runs = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
ttl_s, cost, cost5 = int(sys.argv[3]), sys.argv[4], sys.argv[5]
for r in runs:
    for k in ("rps", "p50_ms", "p99_ms", "seconds", "cpu_s"):
        r[k] = float(r[k])
    r["requests"], r["errors"] = int(r["requests"]), int(r["errors"])
def sel(wl, m, srv):
    return [r for r in runs if r["workload"] == wl and r["method"] == m and r["server"] == srv]
def agg(rs):
    if not rs:
        return None
    n = sum(r["requests"] for r in rs)
    return dict(rps=statistics.median(r["rps"] for r in rs), lo=min(r["rps"] for r in rs), hi=max(r["rps"] for r in rs),
                p99=statistics.median(r["p99_ms"] for r in rs), cpu_us=sum(r["cpu_s"] for r in rs) * 1e6 / n if n else 0,
                errors=sum(r["errors"] for r in rs), requests=n, rounds=len(rs))
def fmt_rps(a):
    if not a:
        return "-"
    return "%.0f" % a["rps"] + (" (%.0f–%.0f)" % (a["lo"], a["hi"]) if a["rounds"] > 1 else "")
out = []
print("Requests/s are the median over the rounds (lowest–highest); p99 the median; CPU is the server's CPU time per request over all rounds.")
print()
print("| workload | plura | plura req/s | p99 ms | CPU µs/req | Distribution | Distribution req/s | p99 ms | CPU µs/req | plura/Distribution |")
print("|---|---|---:|---:|---:|---|---:|---:|---:|---:|")
rows = [("anonymous", "anonymous", "PN", "anonymous", "DN", "no auth"),
        ("anonymous pull rule", "anonymous-pull", "PA", None, None, ""),
        ("bearer token (plura) / Basic (Distribution), cost %s" % cost, "bearer", "PA", "basic", "DA", "htpasswd"),
        ("Basic on every request, cost %s" % cost, "basic", "PA", "basic", "DA", "htpasswd"),
        ("Basic on every request, cost %s" % cost5, None, None, "basic-cost5", "D5", "htpasswd")]
A = {}
for m in ("GET", "HEAD"):
    tool = "wrk" if m == "GET" else "loadgen"
    for label, pw, ps, dw, ds, dl in rows:
        p = agg(sel(pw, m, ps)) if pw else None
        d = agg(sel(dw, m, ds)) if dw else None
        A[(pw, m)] = p
        A[("D:" + str(dw), m)] = d
        ratio = "%.0f×" % (p["rps"] / d["rps"]) if p and d and d["rps"] > 0 else "-"
        err = ""
        if (p and p["errors"]) or (d and d["errors"]):
            err = " **errors: %s / %s**" % (p["errors"] if p else "-", d["errors"] if d else "-")
        print("| %s %s (%s)%s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            m, label, tool, err, ps or "", fmt_rps(p), "%.2f" % p["p99"] if p else "-", "%.1f" % p["cpu_us"] if p else "-",
            "%s %s" % (ds, dl) if ds else "", fmt_rps(d), "%.1f" % d["p99"] if d else "-", "%.0f" % d["cpu_us"] if d else "-", ratio))
        out.append(dict(method=m, workload=label, plura=p, distribution=d))
print()
def per_round(num, den, m):
    rs = []
    for n in sel(num, m, "PA"):
        ds = [d for d in runs if d["workload"] == den and d["method"] == m and d["round"] == n["round"]]
        if ds and ds[0]["rps"] > 0:
            rs.append(n["rps"] / ds[0]["rps"])
    return rs
def per_round_cpu(num, den, m):
    """requests per second of server CPU, num / den, round by round: what each request costs the
    server, whatever share of the two cores the server got during the run"""
    rs = []
    for n in sel(num, m, "PA"):
        ds = [d for d in runs if d["workload"] == den and d["method"] == m and d["round"] == n["round"]]
        if ds and n["cpu_s"] > 0 and ds[0]["cpu_s"] > 0 and ds[0]["requests"] > 0:
            rs.append((n["requests"] / n["cpu_s"]) / (ds[0]["requests"] / ds[0]["cpu_s"]))
    return rs
def cell(rs):
    if not rs:
        return "-"
    return "**%.2f**" % statistics.median(rs) + (" (%s)" % ", ".join("%.2f" % x for x in rs) if len(rs) > 1 else "")
print("| ratio of requests/s | GET | HEAD | target |")
print("|---|---:|---:|---|")
ratios = {}
for label, num, den, target in [("plura bearer / plura without auth: median of the rounds (each round)", "bearer", "anonymous", "≥ 0.90"),
                                ("plura bearer / plura anonymous pull rule", "bearer", "anonymous-pull", ""),
                                ("plura Basic / plura without auth", "basic", "anonymous", ""),
                                ("plura anonymous pull rule / plura without auth", "anonymous-pull", "anonymous", "")]:
    g, h = per_round(num, den, "GET"), per_round(num, den, "HEAD")
    ratios[label] = dict(GET=g, HEAD=h)
    print("| %s | %s | %s | %s |" % (label, cell(g), cell(h), target))
    if num == "bearer" and den == "anonymous":
        g, h = per_round_cpu(num, den, "GET"), per_round_cpu(num, den, "HEAD")
        ratios[label + ", per server CPU second"] = dict(GET=g, HEAD=h)
        print("| the same, requests per second of server CPU | %s | %s | |" % (cell(g), cell(h)))
for label, pw, dw, target in [("plura bearer / Distribution htpasswd, cost %s" % cost, "bearer", "basic", "≥ 10×"),
                              ("plura Basic / Distribution htpasswd, cost %s" % cost, "basic", "basic", ""),
                              ("plura bearer / Distribution htpasswd, cost %s" % cost5, "bearer", "basic-cost5", ""),
                              ("plura / Distribution, both without auth", "anonymous", "anonymous", "")]:
    cells = []
    for m in ("GET", "HEAD"):
        p, d = A.get((pw, m)), A.get(("D:" + dw, m))
        cells.append("**%.0f×**" % (p["rps"] / d["rps"]) if p and d and d["rps"] else "-")
    print("| %s | %s | %s | %s |" % (label, cells[0], cells[1], target))
p_auth = []
for m in ("GET", "HEAD"):
    b, a = A.get(("bearer", m)), A.get(("anonymous", m))
    if a and b:
        p_auth.append("%s %+.1f µs" % (m, b["cpu_us"] - a["cpu_us"]))
print()
print("Server CPU per request, bearer minus without auth (what authentication costs plura per request, less noisy than requests/s): " + ", ".join(p_auth) + ".")
print()
print("bcrypts paid by plura during each run (plura_auth_bcrypt_total before and after; target: at most 1 per credential per auth.basic_cache_ttl of %d s):" % ttl_s)
print()
print("| run | round | credentials | requests | bcrypts | at most |")
print("|---|---:|---:|---:|---:|---:|")
for r in runs:
    if r["server"] != "PA":
        continue
    creds = int(r["credentials"])
    bound = creds * (1 + int(r["seconds"] // ttl_s))
    print("| %s %s | %s | %d | %d | %s | %d |" % (r["method"], r["workload"], r["round"], creds, r["requests"],
                                                  r["bcrypts"] if r["bcrypts"] == str(bound) or int(r["bcrypts"]) <= bound else "**%s**" % r["bcrypts"], bound))
json.dump(dict(summary=out, ratios=ratios, runs=runs), open(sys.argv[2] + "/results.json", "w"), indent=1)
EOF
        echo "| GET /v2/token with Basic of bench before each bearer run, $((TOKEN_LAST - TOKEN_FIRST)) s from first to last | | 1 | $TOKENS | $TOKEN_BCRYPTS | $((1 + (TOKEN_LAST - TOKEN_FIRST) / TTL_S)) |"
        echo
        echo "Distribution keeps no count: its server CPU per request with htpasswd against one bcrypt ($BCRYPT_MS ms at cost $COST, $BCRYPT5_MS ms at cost $COST5) shows whether it pays one per request."
} | tee "$BENCH_DIR/report.md"
log "report in $BENCH_DIR/report.md"
