#!/usr/bin/env python3
"""What shared state costs (issue 17's benchmark): the p50 of a keyed create and of a
rate-limited read with `[state] backend = "memory"` against `"redis"`, next to one Redis round
trip measured the same way (a PING over a kept connection), so the difference reads in round
trips.

`callgate sim` (no added latency) and `callgate serve` (benches/load/callgate-bench.toml, with the
bench tenant given a rate limit high enough never to refuse) on loopback, and a real
redis-server. One client, one kept-alive connection, requests one after another: the client's own
cost is the same in both runs, so the difference is callgate's.

  create  POST /v1/calls to Zudu, a new Idempotency-Key each time (claim, send, store);
  read    GET /v1/calls/{id}, a cache hit, through the tenant's rate limit (GCRA).

Usage: python3 benches/load/state.py --callgate target/release/callgate [--requests 2000]
[--smoke]
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
REDIS_PORT = 28090
ENV = {
    "CALLGATE_BENCH_KEY": "bench-key",
    "ELEMENTE_USERNAME": "elemente-demo",
    "ELEMENTE_PASSWORD": "elemente-demo-password",
    "BIMPE_API_KEY": "sk_bimpe_demo_0123456789",
    "ZUDU_API_KEY": "sk_zudu_demo_0123456789",
    "ZUDU_API_SECRET": "s3cr3t_zudu_demo_0123456789",
    "CALLGATE__TENANTS__BENCH__RATE_LIMIT__PER_SECOND": "1000000",
    "CALLGATE__TENANTS__BENCH__RATE_LIMIT__BURST": "1000000",
}
HEADERS = {"Authorization": "Bearer bench-key", "Content-Type": "application/json"}


def wait_for(url, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def redis_rtt_ms(n):
    """p50 of PING over one kept connection, in ms."""
    s = socket.create_connection(("127.0.0.1", REDIS_PORT))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        s.sendall(b"PING\r\n")
        got = b""
        while not got.endswith(b"\r\n"):
            got += s.recv(64)
        times.append((time.perf_counter() - t) * 1000)
    s.close()
    return statistics.median(times)


def redis_calls(metrics):
    """Mean time of one Redis call as callgate saw it, per function (ms), from its histogram."""
    sums, counts = {}, {}
    for line in metrics.splitlines():
        for name, into in (("callgate_state_operation_duration_seconds_sum", sums),
                           ("callgate_state_operation_duration_seconds_count", counts)):
            if line.startswith(name + "{"):
                function = line.split('function="')[1].split('"')[0]
                into[function] = float(line.rsplit(" ", 1)[1])
    return {f: sums[f] / counts[f] * 1000 for f in sums if counts.get(f)}


def timed(conn, method, path, body, headers):
    t = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    took = (time.perf_counter() - t) * 1000
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status} {data[:300]!r}")
    return took, data


def run(args, state_env, label, offset):
    env = dict(os.environ, **ENV, **state_env)
    serve = subprocess.Popen([args.callgate, "serve", "--config",
                              os.path.join(HERE, "callgate-bench.toml")], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for("http://127.0.0.1:28099/readyz")
        conn = http.client.HTTPConnection("127.0.0.1", 28080)
        _, data = timed(conn, "GET", "/v1/calls?provider=zudu&limit=1", None, HEADERS)
        path = "/v1/calls/" + json.loads(data)["data"][0]["id"]
        creates, reads = [], []
        for i in range(args.requests):
            body = json.dumps({"provider": "zudu", "agentId": "agent-1",
                               "to": f"+1415{offset + i:07d}", "from": "+14155550199"})
            key = dict(HEADERS, **{"Idempotency-Key": f"bench-{label}-{offset + i}"})
            creates.append(timed(conn, "POST", "/v1/calls", body, key)[0])
        for _ in range(args.requests):
            reads.append(timed(conn, "GET", path, None, HEADERS)[0])
        calls = redis_calls(urllib.request.urlopen("http://127.0.0.1:28099/metrics").read().decode())
        return statistics.median(creates), statistics.median(reads), calls
    finally:
        serve.terminate()
        serve.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--callgate", required=True)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--smoke", action="store_true", help="50 requests of each kind")
    args = ap.parse_args()
    if args.smoke:
        args.requests = 50
    redis = shutil.which("redis-server") or "/usr/bin/redis-server"
    data = tempfile.mkdtemp(prefix="callgate-bench-redis-")
    procs = [subprocess.Popen([redis, "--port", str(REDIS_PORT), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                               "--maxmemory-policy", "noeviction", "--dir", data],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
             subprocess.Popen([args.callgate, "sim", "--elemente", "127.0.0.1:28081",
                               "--bimpe", "127.0.0.1:28082", "--zudu", "127.0.0.1:28083"],
                              cwd=ROOT, env=dict(os.environ, **ENV),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        wait_for("http://127.0.0.1:28083/__sim/health")
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", REDIS_PORT)).close()
                break
            except OSError:
                time.sleep(0.1)
        memory = run(args, {}, "memory", 0)
        shared = run(args, {"CALLGATE__STATE__BACKEND": "redis",
                            "CALLGATE__STATE__URL": f"redis://127.0.0.1:{REDIS_PORT}"},
                     "redis", args.requests)
        rtt = redis_rtt_ms(args.requests)
        calls = ", ".join(f"{f} {ms:.3f} ms" for f, ms in sorted(shared[2].items()))
        print(f"shared state cost: {args.requests} requests of each kind, one connection; "
              f"a bare Redis round trip (PING) p50 {rtt:.3f} ms; one Redis call as callgate "
              f"timed it (mean): {calls}")
        print("| request | memory p50 | redis p50 | difference | in Redis calls as callgate times one | in bare round trips |")
        print("|---|---|---|---|---|---|")
        for name, m, r, f in [("keyed create", memory[0], shared[0], "idempotency"),
                              ("rate-limited read (cache hit)", memory[1], shared[1], "rate_limit")]:
            one = shared[2].get(f) or float("nan")
            print(f"| {name} | {m:.3f} ms | {r:.3f} ms | {r - m:+.3f} ms | {(r - m) / one:.1f} "
                  f"| {(r - m) / rtt:.1f} |")
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
