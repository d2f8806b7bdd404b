#!/usr/bin/env python3
"""Isolation under a hung vendor (issue 19's breaker benchmark): the p99 of GETs to a healthy
vendor (Zudu), with the same load on another vendor (Elemente) healthy, then hung.

`callgate sim` (20 ms vendor latency) and `callgate serve` (benches/load/callgate-bench.toml,
cache off) on loopback; oha drives both vendors at once for `--seconds` per phase:

  A  both vendors healthy;
  B  Elemente answers nothing (a 60 s latency fault): its requests wait the provider timeout
     until the circuit opens, then get a fast 503 (half-open probes now and then).

Prints the two Zudu p99s, their ratio (the target is within 20 %) and what Elemente's requests
got in B. Usage: python3 benches/load/isolation.py --callgate target/release/callgate
--oha target/bench-tools/bin/oha [--seconds 15] [--concurrency 16]
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
API = "http://127.0.0.1:28080"
ELEMENTE_SIM = "http://127.0.0.1:28081"
KEY = {"Authorization": "Bearer bench-key"}
ENV = {
    "CALLGATE_BENCH_KEY": "bench-key",
    "ELEMENTE_USERNAME": "elemente-demo",
    "ELEMENTE_PASSWORD": "elemente-demo-password",
    "BIMPE_API_KEY": "sk_bimpe_demo_0123456789",
    "ZUDU_API_KEY": "sk_zudu_demo_0123456789",
    "ZUDU_API_SECRET": "s3cr3t_zudu_demo_0123456789",
    "CALLGATE__CACHE__ENABLED": "false",
}


def wait_for(url, headers=None, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answered
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def get_json(url):
    with urllib.request.urlopen(urllib.request.Request(url, headers=KEY), timeout=10) as r:
        return json.load(r)


def oha(args, url, out):
    cmd = [args.oha, "--no-tui", "--output-format", "json", "-c", str(args.concurrency),
           "-z", f"{args.seconds}s", "-H", f"Authorization: {KEY['Authorization']}",
           "-H", "Cache-Control: no-cache", url]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 120)
    j = json.loads(res.stdout)
    pct = j.get("latencyPercentiles", {})
    out.update({
        "p50": (pct.get("p50") or 0) * 1000,
        "p99": (pct.get("p99") or 0) * 1000,
        "codes": j.get("statusCodeDistribution", {}),
        "rps": j["summary"].get("requestsPerSec") or 0,
    })


def phase(args, zudu_url, elemente_url):
    z, e = {}, {}
    threads = [threading.Thread(target=oha, args=(args, zudu_url, z)),
               threading.Thread(target=oha, args=(args, elemente_url, e))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return z, e


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--callgate", required=True)
    ap.add_argument("--oha", required=True)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    env = dict(os.environ, **ENV)
    procs = [subprocess.Popen([args.callgate, "sim", "--latency-ms", "20",
                               "--elemente", "127.0.0.1:28081", "--bimpe", "127.0.0.1:28082",
                               "--zudu", "127.0.0.1:28083"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        wait_for(ELEMENTE_SIM + "/__sim/faults")
        procs.append(subprocess.Popen([args.callgate, "serve", "--config",
                                       os.path.join(HERE, "callgate-bench.toml")], cwd=ROOT,
                                      env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        wait_for("http://127.0.0.1:28099/readyz")
        zid = get_json(API + "/v1/calls?provider=zudu&limit=1")["data"][0]["id"]
        eid = get_json(API + "/v1/calls?provider=elemente&limit=1")["data"][0]["id"]
        zudu_url, elemente_url = API + "/v1/calls/" + zid, API + "/v1/calls/" + eid
        a_z, a_e = phase(args, zudu_url, elemente_url)
        fault = json.dumps({"latency_ms": 60000}).encode()
        urllib.request.urlopen(urllib.request.Request(ELEMENTE_SIM + "/__sim/faults", data=fault,
                                                      method="POST",
                                                      headers={"Content-Type": "application/json"}))
        b_z, b_e = phase(args, zudu_url, elemente_url)
        ratio = b_z["p99"] / a_z["p99"] if a_z["p99"] else float("nan")
        print(f"A all healthy : zudu p50 {a_z['p50']:.2f} ms p99 {a_z['p99']:.2f} ms "
              f"({a_z['rps']:.0f} req/s); elemente p99 {a_e['p99']:.2f} ms {a_e['codes']}")
        print(f"B elemente hung: zudu p50 {b_z['p50']:.2f} ms p99 {b_z['p99']:.2f} ms "
              f"({b_z['rps']:.0f} req/s); elemente p50 {b_e['p50']:.2f} ms, answers {b_e['codes']}")
        print(f"zudu p99 B/A = {ratio:.2f} (target <= 1.20)")
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
