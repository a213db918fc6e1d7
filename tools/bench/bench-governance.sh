#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Governance benchmark: promote latency (per step, with the signature/SBOM/labels gates on)
# and rollback latency (target: p95 < 10 ms), against a real `plura serve` (fsync on).
#
#   tools/bench/bench-governance.sh [BUILD_DIR] [IMAGES] [ROLLBACKS]
#
# IMAGES (default 40) signed images with SBOMs are pushed with curl and promoted through
# repo → dev → stg → prod:candidate → prod:stable; then ROLLBACKS (default 500) rollbacks of
# prod:stable (each goes to the previous digest). Latencies are measured by a keep-alive HTTP
# client (client side, what an operator waits for) and reported by the server (duration_ms).
# There is no CNCF Distribution equivalent (it has no promotion or rollback).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
IMAGES=${2:-40}
ROLLBACKS=${3:-500}
export PLURA=${PLURA:-$BUILD/tools/plura} PLURA_SOURCE_ROOT=$ROOT
[ -x "$PLURA" ] || { echo "no plura binary at $PLURA (build first: meson setup build && ninja -C build)" >&2; exit 1; }
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/integration/registry-api/test-governance-lib.sh"

make_keypair cosign
cat >"$TEST_TMP/config.json" <<EOF
{ "log_level": "warning", "access_log": false,
  "channels": {
    "public_keys": ["$TEST_TMP/cosign.pub"],
    "gates": {
      "stg": { "not_blocked": true },
      "prod:candidate": { "not_blocked": true, "signature": true, "sbom": true, "labels": true },
      "prod:stable": { "not_blocked": true, "signature": true, "sbom": true, "labels": true, "soak": "0s" }
    } } }
EOF
start_server "$TEST_TMP/data" "$TEST_TMP/config.json"
echo "# pushing $IMAGES signed images with SBOMs to apps/bench ..." >&2
: >"$TEST_TMP/digests"
for i in $(seq "$IMAGES"); do
        release_image apps/bench "img$i" "1.0.$i" >>"$TEST_TMP/digests"
done

python3 - "$URL" "$TEST_TMP/digests" "$ROLLBACKS" <<'EOF'
import http.client, json, sys, time, urllib.parse

url, digests_file, rollbacks = sys.argv[1], sys.argv[2], int(sys.argv[3])
digests = [l.strip() for l in open(digests_file) if l.strip()]
u = urllib.parse.urlsplit(url)
conn = http.client.HTTPConnection(u.hostname, u.port)

def post(path, body):
    data = json.dumps(body)
    t = time.perf_counter()
    conn.request("POST", path, data, {"Content-Type": "application/json", "X-Plura-Actor": "bench"})
    r = conn.getresponse()
    payload = r.read()
    dt = time.perf_counter() - t
    if r.status != 200:
        sys.exit(f"{path} {body}: HTTP {r.status} {payload[:300]!r}")
    return dt, json.loads(payload)

def stats(xs):
    xs = sorted(xs)
    n = len(xs)
    pick = lambda q: xs[max(0, min(n - 1, int(-(-q * n // 1)) - 1))]
    return {"n": n, "p50_ms": round(pick(0.50) * 1e3, 3), "p95_ms": round(pick(0.95) * 1e3, 3),
            "p99_ms": round(pick(0.99) * 1e3, 3), "max_ms": round(xs[-1] * 1e3, 3)}

steps = [("repo", "dev"), ("dev", "stg"), ("stg", "prod:candidate"), ("prod:candidate", "prod:stable")]
lat = {to: [] for _, to in steps}
for d in digests:
    for frm, to in steps:
        dt, _ = post("/v1/registry/promote", {"repo": "apps/bench", "from": frm, "to": to, "digest": d})
        lat[to].append(dt)

rb, rb_server = [], []
for i in range(rollbacks):
    dt, body = post("/v1/registry/rollback", {"repo": "apps/bench", "to": "prod:stable"})
    rb.append(dt)
    rb_server.append(body["duration_ms"] / 1e3)

out = {"images": len(digests), "promote": {to: stats(v) for to, v in lat.items()},
       "promote_all": stats([x for v in lat.values() for x in v]),
       "rollback_client": stats(rb), "rollback_server": stats(rb_server)}
print(json.dumps(out, indent=2))
print()
print("| operation | n | p50 ms | p95 ms | p99 ms | max ms |")
print("|---|---:|---:|---:|---:|---:|")
for name, s in [(f"promote → {k}", v) for k, v in out["promote"].items()] + \
               [("promote (all steps)", out["promote_all"]), ("rollback (client)", out["rollback_client"]),
                ("rollback (server duration_ms)", out["rollback_server"])]:
    print(f"| {name} | {s['n']} | {s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} | {s['max_ms']} |")
target = out["rollback_client"]["p95_ms"] < 10
print(f"\nrollback p95 {'meets' if target else 'MISSES'} the 10 ms target")
EOF
stop_server
