#!/usr/bin/env bash
# The OpenAPI document against the server it describes: schemathesis (PyPI, pinned) runs every
# check (openapi/schemathesis.toml lists the exclusions, each with its reason) against
# `callgate demo` — three simulators and the gateway — on free loopback ports.
#
# Fails on any check failure. schemathesis's own internal errors (a crash of its data generator,
# seen as "Runtime Error") are printed but do not fail the run: they say nothing of callgate.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${CALLGATE_BIN:-target/debug/callgate}"
[ -x .venv/bin/st ] || .venv/bin/pip install -q "schemathesis==4.32.5"
ports=$(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)
read -r E B Z API ADMIN <<<"$ports"
work=$(mktemp -d)
trap 'kill "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true; rm -rf "$work"' EXIT
CALLGATE__SERVER__LISTEN="127.0.0.1:$API" CALLGATE__SERVER__ADMIN_LISTEN="127.0.0.1:$ADMIN" \
CALLGATE__PROVIDERS__ELEMENTE__BASE_URL="http://127.0.0.1:$E" \
CALLGATE__PROVIDERS__BIMPE__BASE_URL="http://127.0.0.1:$B" \
CALLGATE__PROVIDERS__ZUDU__BASE_URL="http://127.0.0.1:$Z" \
  "$BIN" demo --elemente "127.0.0.1:$E" --bimpe "127.0.0.1:$B" --zudu "127.0.0.1:$Z" \
  >"$work/demo.log" 2>&1 &
demo=$!
for _ in $(seq 1 300); do
  python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
    "http://127.0.0.1:$ADMIN/readyz" >/dev/null 2>&1 && break
  kill -0 "$demo" 2>/dev/null || { cat "$work/demo.log"; echo "the demo did not start"; exit 1; }
  sleep 0.1
done
set +e
.venv/bin/st --config-file openapi/schemathesis.toml run "http://127.0.0.1:$API/openapi.json" \
  -H 'Authorization: Bearer demo-key' --max-examples 30 --seed 1 --workers 2 \
  --report junit --report-dir "$work/report" >"$work/st.log" 2>&1
set -e
tail -n 40 "$work/st.log"
grep -B2 -A14 "^_\{3,\}\|Schema-violating\|Reproduce with" "$work/st.log" | head -n 120 || true
python3 - "$work/report" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
failures = errors = 0
for f in glob.glob(sys.argv[1] + "/*.xml"):
    root = ET.parse(f).getroot()
    failures += len(root.findall(".//failure"))
    errors += len(root.findall(".//error"))
if errors:
    print(f"schemathesis: {errors} internal error(s) of the tool itself (not failing the run)")
if failures:
    print(f"schemathesis: {failures} failure(s)")
    sys.exit(1)
print("schemathesis: no failure")
PY
