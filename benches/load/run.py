#!/usr/bin/env python3
"""callgate load bench (issue 6): A simulator direct, B nginx → simulator, P a bare Pingora proxy →
simulator (examples/pingora_passthrough.rs: the floor Pingora itself sets), C callgate cache off,
D callgate cache hit, for GET /v1/calls?limit=20 and GET /v1/calls/{id} on each vendor.

Started by `make bench` through benches/load/run.sh, which builds the release binary and finds
(or installs) oha and nginx and passes their paths. Everything listens on 127.0.0.1 only, every
load run is bounded in time, and every process this script starts is stopped by its own pid.

Standard library only. Prints one table (throughput, p50, p99, ratios C/A, C/B, D/A, C/P, P/B),
the CPU time per request of the process that answered each mode, callgate's
overhead histogram (`callgate_overhead_duration_seconds` from /metrics, quantiles estimated from
the buckets), a run at 50% of C's peak throughput, and callgate's peak RSS (VmHWM) over a long
run with the cache bounded at 64 MiB.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "bench-key"
SIM = {"elemente": 28081, "bimpe": 28082, "zudu": 28083}
NGINX = {"elemente": 28091, "bimpe": 28092, "zudu": 28093}
PASS = {"elemente": 28191, "bimpe": 28192, "zudu": 28193}
API = "http://127.0.0.1:28080"
ADMIN = "http://127.0.0.1:28099"
# The cache-on instance for D runs beside the cache-off one, so every round can run A, B, C and
# D of one endpoint back to back.
API_HIT = "http://127.0.0.1:28180"
ADMIN_HIT = "http://127.0.0.1:28199"
VENDOR_ENV = {
    "ELEMENTE_USERNAME": "elemente-demo",
    "ELEMENTE_PASSWORD": "elemente-demo-password",
    "BIMPE_API_KEY": "sk_bimpe_demo_0123456789",
    "ZUDU_API_KEY": "sk_zudu_demo_0123456789",
    "ZUDU_API_SECRET": "s3cr3t_zudu_demo_0123456789",
    "CALLGATE_BENCH_KEY": KEY,
}
AUTH_HEADERS = ("authorization", "x-api-key", "x-api-secret")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def http(url, headers=None, method="GET", timeout=10):
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def wait_for(url, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            status, _, _ = http(url, timeout=2)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not come up at {url} within {timeout}s")


class Procs:
    """Processes this script started; each is stopped by its own pid."""

    def __init__(self):
        self.procs = []

    def start(self, name, cmd, env=None, logdir=None):
        out = open(os.path.join(logdir, f"{name}.log"), "ab")
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append((name, p))
        return p

    def stop(self, p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = [(n, q) for n, q in self.procs if q is not p]

    def pid(self, name):
        return next((p.pid for n, p in self.procs if n == name), None)

    def stop_all(self):
        for _, p in reversed(list(self.procs)):
            self.stop(p)


def oha(args, url, headers, seconds, conc, rate=None, regex=False, requests=None):
    """One oha run: for `seconds`, or — with `requests` — until that many requests are done
    (`seconds` is then only the time allowed)."""
    cmd = [args.oha, "--no-tui", "--output-format", "json", "-c", str(conc)]
    cmd += ["-n", str(requests)] if requests else ["-z", f"{seconds}s"]
    if rate:
        cmd += ["-q", str(rate)]
    if regex:
        cmd += ["--rand-regex-url"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise SystemExit(f"oha failed: {' '.join(cmd)}\n{out.stderr}")
    j = json.loads(out.stdout)
    codes = j.get("statusCodeDistribution", {})
    ok = sum(n for c, n in codes.items() if str(c).startswith("2"))
    total = sum(codes.values())
    # Requests still in flight when -z ends are reported as "aborted due to deadline": not errors.
    errors = sum(n for e, n in j.get("errorDistribution", {}).items() if "deadline" not in e)
    pct = j.get("latencyPercentiles", {})
    took = (j["summary"].get("total") or seconds) if requests else seconds
    return {
        "rps": ok / took if took else 0.0,
        "sent_rps": j["summary"].get("requestsPerSec") or 0.0,
        "p50": (pct.get("p50") or 0.0) * 1000,
        "p99": (pct.get("p99") or 0.0) * 1000,
        "ok": ok,
        "bad": total - ok + errors,
        "codes": codes,
    }


def overhead_buckets():
    """Cumulative bucket counts of callgate_overhead_duration_seconds, summed over labels."""
    _, _, body = http(ADMIN + "/metrics")
    buckets = {}
    for line in body.decode().splitlines():
        if line.startswith("callgate_overhead_duration_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            le = float("inf") if le == "+Inf" else float(le)
            buckets[le] = buckets.get(le, 0) + float(line.rsplit(" ", 1)[1])
    return buckets


def delta(after, before):
    return {le: after[le] - before.get(le, 0) for le in after}


def quantile(buckets, q):
    """Prometheus' histogram_quantile: linear inside the bucket, 0 as the lowest bound."""
    les = sorted(buckets)
    total = buckets[les[-1]] if les else 0
    if total <= 0:
        return None
    rank = q * total
    prev_le, prev_n = 0.0, 0.0
    for le in les:
        n = buckets[le]
        if n >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_n) / max(n - prev_n, 1e-9))
        prev_le, prev_n = le, n
    return les[-2] if len(les) > 1 else None


def fmt_hist(buckets):
    les = sorted(buckets)
    total = buckets[les[-1]] if les else 0
    rows, prev = [], 0
    for le in les:
        n = buckets[le] - prev
        prev = buckets[le]
        if n:
            name = "+Inf" if le == float("inf") else f"≤{le * 1e6:.0f}µs"
            rows.append(f"{name} {n:.0f} ({100 * n / total:.1f}%)")
    return ", ".join(rows)


def rss(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0]) / 1024.0
    return out


def nginx_conf(workdir):
    ups = "\n".join(
        f"""  upstream {v} {{ server 127.0.0.1:{SIM[v]}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{NGINX[v]};
    location / {{ proxy_pass http://{v}; }}
  }}"""
        for v in SIM
    )
    conf = f"""# generated by benches/load/run.py
worker_processes 2;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/client_body;
  proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi;
  uwsgi_temp_path {workdir}/uwsgi;
  scgi_temp_path {workdir}/scgi;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  # Elemente's unpaged list is ~0.5 MB: keep it in memory, as callgate does.
  proxy_buffer_size 16k;
  proxy_buffers 64 16k;
  proxy_busy_buffers_size 64k;
  keepalive_requests 1000000;
{ups}
}}
"""
    path = os.path.join(workdir, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    return path


def start_callgate(procs, args, workdir, cache, extra_env=None, binary=None):
    """callgate on API/ADMIN (cache on or off), or — `cache="hit"` — the cache-on instance on
    API_HIT/ADMIN_HIT; `cache="beside"`: a cache-off instance of `binary` on API_HIT/ADMIN_HIT
    (`--compare`)."""
    env = dict(os.environ, **VENDOR_ENV, **(extra_env or {}))
    env["CALLGATE__CACHE__ENABLED"] = "false" if cache in (False, "beside") else "true"
    admin = ADMIN
    if cache in ("hit", "beside"):
        admin = ADMIN_HIT
        env["CALLGATE__SERVER__LISTEN"] = API_HIT.split("//", 1)[1]
        env["CALLGATE__SERVER__ADMIN_LISTEN"] = ADMIN_HIT.split("//", 1)[1]
        env["CALLGATE__SERVER__UPGRADE_SOCK"] = os.path.join(workdir, "upgrade-hit.sock")
    else:
        env["CALLGATE__SERVER__UPGRADE_SOCK"] = os.path.join(workdir, "upgrade.sock")
    env.pop("RUST_LOG", None)
    name = {False: "off", True: "on", "hit": "hit", "beside": "off-beside"}[cache]
    p = procs.start(
        f"callgate-cache-{name}",
        [binary or args.callgate, "serve", "--config", os.path.join(HERE, "callgate-bench.toml")],
        env=env,
        logdir=workdir,
    )
    wait_for(admin + "/readyz", "callgate")
    return p


def discover(vendors, agents):
    """The canonical and the vendor form of each endpoint: callgate is asked once, and the
    simulator's journal tells the exact vendor request (path, query, auth headers) it made."""
    gw = {"Authorization": f"Bearer {KEY}"}
    eps = []
    for v in vendors:
        sim = f"http://127.0.0.1:{SIM[v]}"
        http(sim + "/__sim/requests", method="DELETE")
        q = f"provider={v}&limit=20"
        if v == "bimpe":
            q = f"agentId={agents[0]}&" + q
        status, _, body = http(f"{API}/v1/calls?{q}", gw)
        if status != 200:
            raise SystemExit(f"callgate list of {v}: {status} {body[:300]!r}")
        call_id = json.loads(body)["data"][0]["id"]
        get_path = "/v1/calls/" + urllib.parse.quote(call_id, safe="")
        status, _, body = http(API + get_path, gw)
        if status != 200:
            raise SystemExit(f"callgate get of {v}: {status} {body[:300]!r}")
        _, _, journal = http(sim + "/__sim/requests")
        journal = json.loads(journal)
        if len(journal) != 2:
            raise SystemExit(f"{v}: expected 2 vendor requests, saw {len(journal)}")
        for op, path, rec in (("list", f"/v1/calls?{q}", journal[0]), ("get", get_path, journal[1])):
            vpath = rec["path"] + (f"?{rec['query']}" if rec.get("query") else "")
            headers = {k: val for k, val in rec["headers"] if k in AUTH_HEADERS}
            eps.append({"vendor": v, "op": op, "path": path, "vpath": vpath, "vheaders": headers})
        http(sim + "/__sim/requests", method="DELETE")
    return eps


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def tree_ticks(pid):
    """cpu_ticks of a process and its children (nginx's workers)."""
    kids = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(k) for k in f.read().split()]
        except OSError:
            pass
    total = cpu_ticks(pid)
    for k in kids:
        try:
            total += cpu_ticks(k)
        except OSError:
            pass
    return total


def oha_on(pid, run):
    """`run()` (an oha run) with the CPU time process `pid` and its children spent on it, in µs
    per 2xx request, as the result's "cpu_us" (NaN when none succeeded)."""
    before = tree_ticks(pid)
    r = run()
    used_us = (tree_ticks(pid) - before) * 1e6 / os.sysconf("SC_CLK_TCK")
    r["cpu_us"] = used_us / r["ok"] if r["ok"] else float("nan")
    return r


def compare(args, procs, workdir, secs, agents):
    """`--compare B`: --callgate (A) and B, both cache off, in front of the one simulator; oha
    runs alternate between them round by round, so the machine's drift hits both alike. Prints
    req/s and CPU µs per request (from /proc) of each run: the way to measure a change."""
    a = start_callgate(procs, args, workdir, cache=False)
    b = start_callgate(procs, args, workdir, cache="beside", binary=args.compare)
    path = args.compare_path or next(e["path"] for e in discover(["zudu"], agents) if e["op"] == "get")
    gw = {"Authorization": f"Bearer {KEY}"}
    log(f"A = {args.callgate}\nB = {args.compare}\npath {path}, concurrency {args.concurrency}, {secs} s per run")
    for r in range(1, args.rounds + 1):
        for side, proc, api in (("A", a, API), ("B", b, API_HIT)):
            res = oha_on(proc.pid, lambda: oha(args, api + path, gw, secs, args.concurrency))
            print(f"round {r} {side}: {res['rps']:8.0f} req/s  {res['cpu_us']:6.1f} µs CPU per request", flush=True)


def clear_journals():
    for v in SIM:
        http(f"http://127.0.0.1:{SIM[v]}/__sim/requests", method="DELETE")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--callgate", required=True)
    ap.add_argument("--oha", required=True)
    ap.add_argument("--nginx", required=True)
    ap.add_argument("--passthrough", help="examples/pingora_passthrough binary (mode P; left out without it)")
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 5)))
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 3)),
                    help="rounds of A/B/C/D per endpoint; medians are reported")
    ap.add_argument("--concurrency", type=int, default=int(os.environ.get("BENCH_CONCURRENCY", 32)))
    ap.add_argument("--rss-requests", type=int, default=int(os.environ.get("BENCH_RSS_REQUESTS", 1_000_000)),
                    help="requests of the peak-RSS run (issue 6: 1M)")
    ap.add_argument("--rss-seconds", type=float, default=float(os.environ.get("BENCH_RSS_SECONDS", 900)),
                    help="time allowed for the peak-RSS run")
    ap.add_argument("--latency-ms", type=int, default=int(os.environ.get("BENCH_LATENCY_MS", 0)),
                    help="simulated vendor latency (default 0: every run is CPU-bound)")
    ap.add_argument("--smoke", action="store_true", help="1 s per run, one endpoint, no long runs")
    ap.add_argument("--memory-only", action="store_true", help="only the peak-RSS run")
    ap.add_argument("--no-memory", action="store_true", help="leave out the peak-RSS run")
    ap.add_argument("--markdown", help="also write the results as markdown to this file")
    ap.add_argument("--compare", metavar="CALLGATE_B",
                    help="A/B of --callgate and this binary instead of the bench (see compare())")
    ap.add_argument("--compare-path", help="endpoint for --compare (default: a zudu get by id)")
    args = ap.parse_args()
    secs = 1 if args.smoke else args.seconds
    secs = int(secs) if float(secs).is_integer() else secs
    vendors = ["zudu"] if args.smoke else ["elemente", "bimpe", "zudu"]

    workdir = tempfile.mkdtemp(prefix="callgate-bench-", dir=os.environ.get("BENCH_WORKDIR"))
    procs = Procs()
    md = []
    try:
        sim = procs.start(
            "sim",
            [args.callgate, "sim", "--latency-ms", str(args.latency_ms)]
            + [x for v in SIM for x in (f"--{v}", f"127.0.0.1:{SIM[v]}")],
            logdir=workdir,
        )
        for v in SIM:
            wait_for(f"http://127.0.0.1:{SIM[v]}/__sim/health", f"simulator {v}")
        with open(os.path.join(workdir, "sim.log")) as f:
            agents = [
                a.strip()
                for line in f
                if "agents:" in line
                for a in line.split("agents:", 1)[1].split(",")
            ]
        if args.compare:
            compare(args, procs, workdir, secs, agents)
            return
        procs.start("nginx", [args.nginx, "-p", workdir, "-c", nginx_conf(workdir), "-e", f"{workdir}/nginx-error.log"], logdir=workdir)
        for v in SIM:
            wait_for_port(NGINX[v])
        if args.passthrough and not args.memory_only:
            routes = [x for v in SIM for x in ("--route", f"127.0.0.1:{PASS[v]}=127.0.0.1:{SIM[v]}")]
            procs.start("passthrough", [args.passthrough, "--threads", "2"] + routes, logdir=workdir)
            for v in SIM:
                wait_for_port(PASS[v])

        if args.memory_only:
            mem = memory_run(procs, args, workdir)
            report(args, secs, [], {}, {}, [], mem, md, [])
        else:
            run_all(args, procs, workdir, secs, vendors, agents, md, sim)
    finally:
        procs.stop_all()
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(md) + "\n")


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else 0.0


def run_all(args, procs, workdir, secs, vendors, agents, md, sim):
    cg = start_callgate(procs, args, workdir, cache=False)
    hit = start_callgate(procs, args, workdir, cache="hit")
    eps = discover(vendors, agents)
    if args.smoke:
        eps = [e for e in eps if e["op"] == "get"]
    gw = {"Authorization": f"Bearer {KEY}"}
    for e in eps:
        _, hdrs, _ = http(API_HIT + e["path"], gw)
        _, hdrs, _ = http(API_HIT + e["path"], gw)
        status = {k.lower(): v for k, v in hdrs.items()}.get("cache-status", "")
        if "hit" not in status:
            log(f"  warning: {e['vendor']} {e['op']} second read was not a hit: {status!r}")

    # Every round runs A, B, C and D of one endpoint back to back, so that a machine whose speed
    # drifts (other tenants, CPU frequency) slows all four alike; ratios are per round, then the
    # median over rounds is reported.
    urls = {
        "A": lambda e: (f"http://127.0.0.1:{SIM[e['vendor']]}{e['vpath']}", e["vheaders"]),
        "B": lambda e: (f"http://127.0.0.1:{NGINX[e['vendor']]}{e['vpath']}", e["vheaders"]),
        "P": lambda e: (f"http://127.0.0.1:{PASS[e['vendor']]}{e['vpath']}", e["vheaders"]),
        "C": lambda e: (API + e["path"], gw),
        "D": lambda e: (API_HIT + e["path"], gw),
    }
    # The process that answers each mode, whose CPU time per request is reported: the simulator
    # for A, the proxy in front of it for the others.
    pids = {"A": sim.pid, "B": procs.pid("nginx"), "P": procs.pid("passthrough"), "C": cg.pid, "D": hit.pid}
    modes = [m for m in urls if pids[m] is not None]
    runs = {}
    rounds = 1 if args.smoke else args.rounds
    log(f"A/B/C/D: {rounds} rounds of {secs}s each at concurrency {args.concurrency}")
    before = overhead_buckets()
    for rnd in range(rounds):
        for e in eps:
            for mode in modes:
                u, h = urls[mode](e)
                r = oha_on(pids[mode], lambda: oha(args, u, h, secs, args.concurrency))
                if r["bad"]:
                    log(f"  warning: {mode} {e['vendor']} {e['op']}: {r['bad']} non-2xx/errors {r['codes']}")
                runs.setdefault((e["vendor"], e["op"]), []).append((mode, r))
                log(f"  [{rnd + 1}] {mode} {e['vendor']:<8} {e['op']:<4} {r['rps']:>9.0f} req/s  p50 {r['p50']:.3f} ms  p99 {r['p99']:.3f} ms  {r['cpu_us']:.1f} µs CPU/req")
                clear_journals()
    hist_c = delta(overhead_buckets(), before)
    procs.stop(hit)

    res = {}
    for e in eps:
        per = runs[(e["vendor"], e["op"])]
        by_mode = {m: [r for mm, r in per if mm == m] for m in modes}
        for m, rs in by_mode.items():
            res[(m, e["vendor"], e["op"])] = {
                k: median([r[k] for r in rs]) for k in ("rps", "p50", "p99", "cpu_us")
            }
        ratio = lambda x, y: median(
            [a["rps"] / b["rps"] for a, b in zip(by_mode.get(x, []), by_mode.get(y, [])) if b["rps"]]
        ) or None
        res[("ratio", e["vendor"], e["op"])] = {
            "C/A": ratio("C", "A"),
            "C/B": ratio("C", "B"),
            "D/A": ratio("D", "A"),
            "C/P": ratio("C", "P"),
            "P/B": ratio("P", "B"),
        }

    # 50% of C's peak, fixed rate: callgate's own overhead p50/p99 (target ≤ 100 µs / 1 ms).
    half = []
    for e in eps if not args.smoke else []:
        rate = max(1, int(res[("C", e["vendor"], e["op"])]["rps"] / 2))
        before = overhead_buckets()
        r = oha(args, API + e["path"], gw, secs, args.concurrency, rate=rate)
        h = delta(overhead_buckets(), before)
        half.append((e, rate, r, quantile(h, 0.5), quantile(h, 0.99)))
        log(f"  C@50% {e['vendor']:<8} {e['op']:<4} {rate} req/s: overhead p50 {fmt_s(quantile(h, .5))} p99 {fmt_s(quantile(h, .99))}")
        clear_journals()
    procs.stop(cg)

    mem = None if args.smoke or args.no_memory else memory_run(procs, args, workdir)
    report(args, secs, eps, res, hist_c, half, mem, md, modes)


def memory_run(procs, args, workdir):
    """Peak RSS (VmHWM) over 1M requests (`--rss-requests`) with the cache bounded at 64 MiB: zudu 20-call pages
    under 3600 distinct `from` filters (≈30 KB each, ≈100 MiB in all: more than the bound), with
    TTLs long enough that the cache fills to its bound and evicts by weight, not by time."""
    gw = {"Authorization": f"Bearer {KEY}"}
    ttl = {"CALLGATE__CACHE__LIST_TTL_MS": "3600000", "CALLGATE__CACHE__LIVE_CALL_TTL_MS": "3600000"}
    cg = start_callgate(procs, args, workdir, cache=True, extra_env=ttl)
    base = rss(cg.pid)
    url = API + r"/v1/calls\?provider=zudu&limit=20&from=2020-01-01T00:[0-5][0-9]:[0-5][0-9]Z"
    t = time.time()
    r = oha(args, url, gw, int(args.rss_seconds), args.concurrency, regex=True, requests=args.rss_requests)
    took = time.time() - t
    after = rss(cg.pid)
    _, _, m = http(ADMIN + "/metrics")
    cache_bytes = next(
        (float(l.split()[-1]) for l in m.decode().splitlines() if l.startswith("callgate_cache_bytes ")),
        None,
    )
    procs.stop(cg)
    return {"base": base, "after": after, "requests": r["ok"] + r["bad"], "ok": r["ok"], "secs": took, "cache_bytes": cache_bytes, "rps": r["rps"]}


def wait_for_port(port, timeout=15):
    import socket

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def fmt_s(s):
    return "n/a" if s is None else f"{s * 1e6:.0f} µs"


def report(args, secs, eps, res, hist_c, half, mem, md, modes):
    def out(line=""):
        print(line)
        md.append(line)

    out(f"callgate load bench: {os.cpu_count()} cores, concurrency {args.concurrency}, {secs} s per run, {1 if args.smoke else args.rounds} rounds (medians; ratios are medians of per-round ratios), loopback, simulator latency {args.latency_ms} ms")
    if eps:
        out()
        names = {"A": "A sim", "B": "B nginx", "P": "P pingora", "C": "C callgate", "D": "D cache-hit"}
        ratios = ["C/A", "C/B", "D/A"] + (["C/P", "P/B"] if "P" in modes else [])
        fmt_r = lambda x: "n/a" if x is None else f"{x:.2f}"
        out("| endpoint | " + " | ".join(f"{names[m]} req/s" for m in modes) + " | "
            + " | ".join(f"{m} p50/p99 ms" for m in modes) + " | " + " | ".join(ratios) + " |")
        out("|---" * (1 + 2 * len(modes) + len(ratios)) + "|")
        name = lambda e: f"{e['vendor']} {'list ?limit=20' if e['op'] == 'list' else 'get {id}'}"
        for e in eps:
            k = lambda m: res[(m, e["vendor"], e["op"])]
            q = k("ratio")
            out(
                f"| {name(e)} | " + " | ".join(f"{k(m)['rps']:.0f}" for m in modes) + " | "
                + " | ".join(f"{k(m)['p50']:.2f} / {k(m)['p99']:.2f}" for m in modes) + " | "
                + " | ".join(fmt_r(q[r]) for r in ratios) + " |"
            )
        out()
        out("CPU time per request (µs, utime + stime from /proc, median over rounds) of the process "
            "that answered: the simulator for A, the proxy in front of it for the others")
        out()
        out("| endpoint | " + " | ".join(names[m] for m in modes) + " |")
        out("|---" * (1 + len(modes)) + "|")
        for e in eps:
            out(f"| {name(e)} | " + " | ".join(f"{res[(m, e['vendor'], e['op'])]['cpu_us']:.1f}" for m in modes) + " |")
        out()
        out(
            "callgate overhead (callgate_overhead_duration_seconds, all C runs, quantiles estimated from "
            f"buckets): p50 {fmt_s(quantile(hist_c, .5))}, p90 {fmt_s(quantile(hist_c, .9))}, p99 {fmt_s(quantile(hist_c, .99))}"
        )
        out(f"histogram: {fmt_hist(hist_c)}")
    if half:
        out()
        out("| at 50% of C's peak | rate req/s | achieved req/s | end-to-end p50/p99 ms | overhead p50 | overhead p99 |")
        out("|---|---|---|---|---|---|")
        for e, rate, r, p50, p99 in half:
            out(f"| {e['vendor']} {e['op']} | {rate} | {r['rps']:.0f} | {r['p50']:.2f} / {r['p99']:.2f} | {fmt_s(p50)} | {fmt_s(p99)} |")
    if mem:
        out()
        cb = mem["cache_bytes"]
        out(
            f"memory: {mem['requests']} requests ({mem['ok']} 2xx) in {mem['secs']:.0f} s ({mem['rps']:.0f} req/s), "
            f"cache bound 64 MiB, cache weighed {cb / 2**20:.1f} MiB at the end; "
            f"RSS at start {mem['base'].get('VmRSS', 0):.1f} MiB, at end {mem['after'].get('VmRSS', 0):.1f} MiB, "
            f"peak (VmHWM) {mem['after'].get('VmHWM', 0):.1f} MiB (target: ≤ bound + 64 MiB = 128 MiB)"
            if cb is not None
            else f"memory: peak VmHWM {mem['after'].get('VmHWM', 0):.1f} MiB"
        )


if __name__ == "__main__":
    main()
