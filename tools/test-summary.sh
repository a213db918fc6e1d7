#!/usr/bin/env bash
# Summarizes meson's testlog.json files (and the fuzz results) into the closing line
# "N passed, N failed" (skipped tests are counted separately).
set -uo pipefail
python3 - "$@" <<'PY'
import json, sys, os
passed = failed = skipped = 0
for path in sys.argv[1:]:
    if not os.path.exists(path):
        print(f"summary: {path} missing (that stage did not run)")
        failed += 1
        continue
    if path.endswith("fuzz-results.json"):
        for e in json.load(open(path)):
            if e["result"] == "OK": passed += 1
            else: failed += 1
        continue
    for line in open(path):
        line = line.strip()
        if not line: continue
        t = json.loads(line)
        r = t.get("result")
        if r in ("OK", "EXPECTEDFAIL"): passed += 1
        elif r == "SKIP": skipped += 1
        else:
            failed += 1
            print(f"summary: FAILED {t.get('name')} ({path})")
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
