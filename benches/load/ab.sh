#!/usr/bin/env bash
# A/B of two callgate builds under the same load: both serve (cache off) in front of one
# `callgate sim`, and 4 s oha runs alternate between them, so the machine's drift (±30% between
# minutes on a shared VM) hits both sides alike. Prints req/s and CPU µs per request (from
# /proc/<pid>/stat) for each run. Not part of `make test`.
#
#   cp target/release/callgate /tmp/callgate-a   # build A, copy it; then build B
#   bash benches/load/ab.sh /tmp/callgate-a target/release/callgate [ROUNDS] [PATH]
#
# PATH defaults to one Zudu call by id (`/v1/calls/<id>`); e.g. `/v1/calls?provider=bimpe&…`.
set -euo pipefail
cd "$(dirname "$0")/../.."
A=$(realpath "$1") B=$(realpath "$2") ROUNDS=${3:-4} QPATH=${4:-}
OHA=$(command -v oha || echo target/bench-tools/bin/oha)
[ -x "$OHA" ] || { echo "oha not found: run 'make bench-quick' once to install it" >&2; exit 1; }
WORK=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

export ELEMENTE_USERNAME=elemente-demo ELEMENTE_PASSWORD=elemente-demo-password \
  BIMPE_API_KEY=sk_bimpe_demo_0123456789 ZUDU_API_KEY=sk_zudu_demo_0123456789 \
  ZUDU_API_SECRET=s3cr3t_zudu_demo_0123456789 CALLGATE_BENCH_KEY=bench-key \
  CALLGATE__CACHE__ENABLED=false
"$A" sim --latency-ms 0 --elemente 127.0.0.1:28081 --bimpe 127.0.0.1:28082 \
  --zudu 127.0.0.1:28083 >"$WORK/sim.log" 2>&1 &
pids+=($!)
serve() { # binary api-port admin-port name
  CALLGATE__SERVER__LISTEN=127.0.0.1:$2 CALLGATE__SERVER__ADMIN_LISTEN=127.0.0.1:$3 \
    CALLGATE__SERVER__UPGRADE_SOCK="$WORK/$4.sock" \
    "$1" serve --config benches/load/callgate-bench.toml >"$WORK/$4.log" 2>&1 &
  pids+=($!)
}
serve "$A" 28080 28099 a
pid_a=$!
serve "$B" 28180 28199 b
pid_b=$!
for port in 28099 28199; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
done
AUTH="Authorization: Bearer bench-key"
if [ -z "$QPATH" ]; then
  id=$(curl -sf -H "$AUTH" "http://127.0.0.1:28080/v1/calls?provider=zudu&limit=1" |
    python3 -c 'import json,sys,urllib.parse; print(urllib.parse.quote(json.load(sys.stdin)["data"][0]["id"], safe=""))')
  QPATH="/v1/calls/$id"
fi
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
echo "A=$A"
echo "B=$B"
echo "path $QPATH, concurrency 32, 4 s per run"
for r in $(seq "$ROUNDS"); do
  for side in a b; do
    if [ $side = a ]; then pid=$pid_a port=28080; else pid=$pid_b port=28180; fi
    t1=$(ticks $pid)
    rps=$("$OHA" --no-tui -z 4s -c 32 -H "$AUTH" "http://127.0.0.1:$port$QPATH" |
      awk '/Requests\/sec/ {print $2}')
    t2=$(ticks $pid)
    python3 -c "print(f'round $r $side: {float(\"$rps\"):8.0f} req/s  {($t2 - $t1) * 1e4 / (float(\"$rps\") * 4):6.1f} µs CPU per request')"
  done
done
