#!/usr/bin/env python3
"""What a connection costs (issue 18, item 7): throughput and memory of callgate at high
concurrency against a vendor with a realistic latency, and the memory of idle event streams.

`callgate sim --latency-ms L` (default 50; `--live-step-ms 0`) and `callgate serve`
(benches/load/callgate-bench.toml with the cache off and the `[events]` limits raised above
`--streams`; each provider's bulkhead `max_in_flight` raised to `--max-in-flight`, 20,000: at the
default 256, 2,000 concurrent requests get 256 answers and a fast 503 for the rest) on loopback.

  levels   for each concurrency (`--levels 50,500,2000`): a fresh callgate, warmed up; oha for
           `--seconds` straight at the simulator (the vendor form of a Zudu get by id), then the
           same get through callgate. Reports req/s both ways and their ratio, p50/p99 both ways,
           how busy the machine's cores were during each run (/proc/stat: a ratio measured with
           the cores saturated says what callgate's CPU costs, not what a connection costs),
           callgate's CPU per request, its RSS idle (just before its run), peak (VmRSS sampled
           every 50 ms), (peak - idle) / concurrency in KiB, and RSS `--settle-seconds` after the
           load ended (oha's connections closed) with its distance from idle in MiB.
  streams  (`--streams N`): a fresh callgate; `--stream-calls K` calls created through it (with
           `--live-step-ms 0` a created call stays in progress, so its stream never ends); N raw
           HTTP/1.1 `GET /v1/calls/{id}/events` (asyncio), each read up to its first `retry:`
           hint, then held and read as a client does. After `--hold-seconds` (the pollers of new
           calls read every second at first, then back off): (RSS with N open - idle) / N in KiB.
           Streams spread over the K calls (default K = N: one call per stream, each with its own
           poller in callgate). Then all are closed and RSS is read `--settle-seconds` later
           (callgate notices a closed stream at once). With `--live-step-ms S` the calls play a
           conversation, a step every S ms, their creations spread over S (independent calls do
           not all step in the same millisecond), and the event delivery time while the streams
           are held (not while they open) is reported from `callgate_event_delivery_seconds`.

The script raises its RLIMIT_NOFILE to the hard limit; callgate and oha inherit it. callgate's
own limit (/proc/PID/limits) and its open descriptors at the peak are reported. It refuses to
start while another bench holds its ports (run.py, state.py and isolation.py use the same ones).

Usage: python3 benches/load/connections.py --callgate target/release/callgate --oha OHA
[--latency-ms 50] [--levels 50,500,2000] [--seconds 10] [--settle-seconds 60] [--streams 10000]
[--stream-calls K] [--hold-seconds 30] [--env NAME=VALUE ...] [--max-in-flight N]
[--adapters DIR] [--no-levels] [--markdown FILE] [--smoke]. `--env` is given to callgate only
(e.g. _RJEM_MALLOC_CONF=dirty_decay_ms:0). `--smoke` (20 connections for 1 s, settle 1 s, 50 streams on 5
calls) takes about 15 s.
"""

import argparse
import asyncio
import json
import os
import resource
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ beside run.py
import run as bench  # noqa: E402  (run.py's helpers; importing it starts nothing)

HOST = "127.0.0.1"
API_PORT = 28080
ADMIN_PORT = int(bench.ADMIN.rsplit(":", 1)[1])
AUTH = {"Authorization": f"Bearer {bench.KEY}"}


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rss_mib(pid):
    return status_kib(pid, "VmRSS") / 1024.0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def check_fds(pid, need):
    limit = fd_limit(pid)
    if limit is not None and limit < need + 64:
        bench.log(f"  warning: callgate may need {need} descriptors; its limit is {limit}")


def fd_limit(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return None


class Sampler(threading.Thread):
    """VmRSS of `pid` every 50 ms (and its open descriptors every second) until stopped."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.fds, self.done = pid, 0.0, 0, threading.Event()

    def run(self):
        n = 0
        while not self.done.is_set():
            try:
                self.peak = max(self.peak, rss_mib(self.pid))
                if n % 20 == 0:
                    self.fds = max(self.fds, fd_count(self.pid))
            except OSError:
                return
            n += 1
            self.done.wait(0.05)

    def stop(self):
        self.done.set()
        self.join()
        return self.peak


def config(args, workdir):
    """callgate-bench.toml with the cache off and the stream limits raised above --streams."""
    with open(os.path.join(bench.HERE, "callgate-bench.toml")) as f:
        text = f.read()
    if "\nenabled = true\n" not in text:
        raise SystemExit("callgate-bench.toml: expected `enabled = true` in [cache]")
    text = text.replace("\nenabled = true\n", "\nenabled = false\n", 1)
    limit = max(args.streams, 1) + 100
    text += f"\n[events]\nmax_streams = {limit}\nmax_streams_per_tenant = {limit}\n"
    path = os.path.join(workdir, "callgate-connections.toml")
    with open(path, "w") as f:
        f.write(text)
    return path



def ports_free(ports):
    """Refuses to run beside another bench (run.py, state.py, isolation.py use the same ports): a
    callgate that cannot bind would leave this script measuring the other one."""
    for port in ports:
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) == 0:
                raise SystemExit(f"127.0.0.1:{port} is in use (another bench running?); try later")


def start_callgate(procs, args, workdir, cfg):
    env = dict(os.environ, **bench.VENDOR_ENV)
    env["CALLGATE__SERVER__UPGRADE_SOCK"] = os.path.join(workdir, "upgrade.sock")
    env["CALLGATE__SERVER__GRACE_PERIOD_SECONDS"] = "0"  # a stop waits for nothing
    if args.adapters:
        env["CALLGATE__SERVER__ADAPTERS"] = os.path.abspath(args.adapters)
    env.pop("RUST_LOG", None)
    if args.max_in_flight:
        for v in bench.SIM:
            env[f"CALLGATE__PROVIDERS__{v.upper()}__MAX_IN_FLIGHT"] = str(args.max_in_flight)
    for kv in args.env:
        k, v = kv.split("=", 1)
        env[k] = v
    ports_free([API_PORT, ADMIN_PORT])
    p = procs.start("callgate", [args.callgate, "serve", "--config", cfg], env=env, logdir=workdir)
    bench.wait_for(bench.ADMIN + "/readyz", "callgate")
    alive(p)
    return p


def alive(p):
    if p.poll() is not None:
        raise SystemExit(f"callgate exited ({p.returncode}): were its ports taken? see its log")


def cpu_times():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]  # all, idle + iowait


def busy(run):
    """`run()`'s result and how busy the machine's cores were meanwhile (0..1)."""
    (t0, i0), r = cpu_times(), run()
    t1, i1 = cpu_times()
    return r, 1 - (i1 - i0) / max(t1 - t0, 1)


def settle(pid, seconds):
    """RSS (MiB) `seconds` after now; the lowest seen on the way too."""
    low, end = rss_mib(pid), time.time() + seconds
    while time.time() < end:
        time.sleep(min(1.0, max(0.0, end - time.time())))
        low = min(low, rss_mib(pid))
    return rss_mib(pid), low


def level(args, procs, workdir, cfg, conc, ep):
    cg = start_callgate(procs, args, workdir, cfg)
    check_fds(cg.pid, 2 * conc)  # a client connection and a vendor connection per request
    url = bench.API + ep["path"]
    bench.oha(args, url, AUTH, 60, 8, requests=200)  # warm-up: vendor connections, first paths
    vendor_url = f"http://{HOST}:{bench.SIM['zudu']}{ep['vpath']}"
    direct, busy_d = busy(lambda: bench.oha(args, vendor_url, ep["vheaders"], args.seconds, conc))
    time.sleep(1)
    idle = rss_mib(cg.pid)
    sampler = Sampler(cg.pid)
    sampler.start()
    through, busy_c = busy(lambda: bench.oha_on(
        cg.pid, lambda: bench.oha(args, url, AUTH, args.seconds, conc)))
    peak = sampler.stop()
    alive(cg)
    hwm = status_kib(cg.pid, "VmHWM") / 1024.0
    after, low = settle(cg.pid, args.settle_seconds)
    r = {"conc": conc, "direct": direct, "cg": through, "busy_d": busy_d, "busy_c": busy_c,
         "idle": idle, "peak": peak, "hwm": hwm, "after": after, "low": low, "fds": sampler.fds,
         "fd_limit": fd_limit(cg.pid)}
    procs.stop(cg)
    bench.log(f"  c={conc}: direct {direct['rps']:.0f} req/s p99 {direct['p99']:.1f} ms; callgate "
              f"{through['rps']:.0f} req/s p99 {through['p99']:.1f} ms ({through['bad']} bad); RSS "
              f"idle {idle:.1f} peak {peak:.1f} (VmHWM {hwm:.1f}) +{args.settle_seconds}s "
              f"{after:.1f} MiB (lowest {low:.1f}); fds {sampler.fds} of {r['fd_limit']}")
    return r


async def request(method, path, body=None):
    """One request on a connection of its own: (status, body)."""
    reader, writer = await asyncio.open_connection(HOST, API_PORT)
    data = json.dumps(body).encode() if body is not None else b""
    head = (f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {bench.KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n")
    writer.write(head.encode() + data)
    raw = await reader.read()
    writer.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), rest


async def create_calls(k, spread_s=0.0):
    """`k` Zudu calls; with `spread_s`, their creations spread evenly over that many seconds
    (calls that play live then step at different moments, as independent calls do, instead of
    all in the same millisecond)."""
    sem = asyncio.Semaphore(64)

    async def one(i):
        if spread_s:
            await asyncio.sleep(spread_s * i / k)
        async with sem:
            status, body = await request("POST", "/v1/calls", {
                "provider": "zudu", "agentId": "agent-1", "to": f"+1415{i:07d}",
                "from": "+14155550199"})
            if status != 201 and status != 200:
                raise SystemExit(f"create call: {status} {body[:300]!r}")
            return json.loads(body)["id"]

    return await asyncio.gather(*(one(i) for i in range(k)))


class Tally:
    def __init__(self):
        self.open, self.refused, self.failed, self.ended, self.retried = 0, {}, {}, 0, 0

    def done(self):
        return self.open + sum(self.refused.values()) + sum(self.failed.values())


async def hold_stream(path, sem, tally):
    """Opens one event stream, reads it up to its first `retry:` hint, then keeps reading. A
    503/504 (the vendor read that opens a stream failed under the opening burst) is tried again
    a second later, up to 5 times, as an EventSource client reconnects."""
    for attempt in range(6):
        opened = await open_stream(path, sem, tally, last=attempt == 5)
        if opened != "again":
            break
        tally.retried += 1
        await asyncio.sleep(1)
    if not opened or opened == "again":
        return
    reader, writer = opened
    try:
        while await reader.read(4096):
            pass
        tally.ended += 1
    except (asyncio.CancelledError, OSError):
        pass
    finally:
        writer.close()


async def open_stream(path, sem, tally, last):
    """(reader, writer) of an open stream, "again" for a 503/504 (unless `last`), else None."""
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, API_PORT), 60)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer "
                         f"{bench.KEY}\r\nAccept: text/event-stream\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
            status = int(head.split(b" ", 2)[1])
            if status != 200:
                body = await asyncio.wait_for(reader.read(2048), 10)
                writer.close()
                if status in (503, 504) and not last:
                    return "again"
                code = body.split(b'"code":"', 1)[-1].split(b'"', 1)[0].decode(errors="replace")
                key = f"{status} {code}" if b'"code":"' in body else str(status)
                tally.refused[key] = tally.refused.get(key, 0) + 1
                return None
            seen = b""
            while b"retry:" not in seen:
                chunk = await asyncio.wait_for(reader.read(4096), 60)
                if not chunk:
                    raise ConnectionError("closed before retry:")
                seen += chunk
            tally.open += 1
            return reader, writer
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            name = type(e).__name__
            tally.failed[name] = tally.failed.get(name, 0) + 1
            return None


def delivery_buckets():
    """callgate's delivery histogram now: [(upper bound s, cumulative count)]."""
    _, _, body = bench.http(bench.ADMIN + "/metrics")
    buckets = []
    for l in body.decode().splitlines():
        if l.startswith("callgate_event_delivery_seconds_bucket{"):
            le = l.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(le), float(l.rsplit(" ", 1)[1])))
    return buckets


def delivery(before=()):
    """Delivery time per client since `before` (a `delivery_buckets()`), from callgate's
    histogram: (count, p50 ms, p99 ms), each quantile the upper bound of the bucket it falls in."""
    start = dict(before)
    buckets = [(le, n - start.get(le, 0.0)) for le, n in delivery_buckets()]
    total = buckets[-1][1] if buckets else 0.0
    q = lambda f: next((1000 * le for le, n in buckets if n >= f * total), float("nan"))
    within_1ms = next((n for le, n in buckets if le == 0.001), float("nan"))
    return total, q(0.5), q(0.99), within_1ms / total if total else float("nan")


def metric(name):
    _, _, body = bench.http(bench.ADMIN + "/metrics")
    return sum(float(l.rsplit(" ", 1)[1]) for l in body.decode().splitlines()
               if l.startswith(name) and not l.startswith("#"))


async def streams(args, pid):
    check_fds(pid, args.streams)
    k = args.stream_calls or args.streams
    t = time.time()
    ids = await create_calls(k, args.live_step_ms / 1000)
    bench.log(f"  streams: {k} calls created in {time.time() - t:.1f} s")
    await asyncio.sleep(2)
    idle = rss_mib(pid)
    sem, tally = asyncio.Semaphore(256), Tally()
    t = time.time()
    tasks = [asyncio.create_task(hold_stream(f"/v1/calls/{ids[i % k]}/events", sem, tally))
             for i in range(args.streams)]
    while tally.done() < args.streams and time.time() - t < 300:
        await asyncio.sleep(0.2)
    opened_in = time.time() - t
    bench.log(f"  streams: {tally.open} open in {opened_in:.1f} s, refused {tally.refused}, "
              f"failed {tally.failed}, 503/504 tried again {tally.retried}; holding "
              f"{args.hold_seconds} s")
    # Delivery is measured while the streams are held, not while they open (the opening burst
    # is callgate answering 10,000 requests, not delivering events).
    delivered0 = delivery_buckets()
    await asyncio.sleep(max(0.0, args.hold_seconds - 5))
    reads0, t0 = metric("callgate_event_reads_total"), time.time()
    samples = []
    for _ in range(5):
        await asyncio.sleep(1)
        samples.append(rss_mib(pid))
    reads = (metric("callgate_event_reads_total") - reads0) / (time.time() - t0)
    held = sorted(samples)[2]
    r = {"n": args.streams, "k": k, "open": tally.open, "refused": dict(tally.refused),
         "failed": dict(tally.failed), "idle": idle, "held": held, "opened_in": opened_in,
         "gauge": metric("callgate_event_streams_open"), "fds": fd_count(pid),
         "fd_limit": fd_limit(pid), "reads": reads, "ended": tally.ended,
         "retried": tally.retried, "delivery": delivery(delivered0)}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    r["after"], _ = settle(pid, args.settle_seconds)
    r["after_s"] = args.settle_seconds
    r["open_after"] = metric("callgate_event_streams_open")
    return r


def report(args, rows, st, md):
    def out(line=""):
        print(line)
        md.append(line)

    load = os.getloadavg()
    out(f"callgate connections bench: {os.cpu_count()} cores (shared by oha, the simulator and "
        f"callgate; 1-min load average {args.load_before:.1f} before, {load[0]:.1f} at the end), "
        f"simulator latency {args.latency_ms} ms, "
        f"cache off, Zudu get by id, {args.seconds} s per run, settle {args.settle_seconds} s"
        + (f", providers' max_in_flight {args.max_in_flight}" if args.max_in_flight else
           ", providers' max_in_flight as configured (256)")
        + (f", callgate env {' '.join(args.env)}" if args.env else "")
        + (f", stream clients at nice {args.client_nice}" if args.client_nice else ""))
    if rows:
        out()
        out("| concurrency | direct req/s | callgate req/s | ratio | direct p50 / p99 ms | "
            "callgate p50 / p99 ms | callgate errors | cores busy direct / callgate | callgate CPU "
            "µs/req | RSS idle MiB | RSS peak MiB | KiB per connection | RSS "
            f"+{args.settle_seconds:g} s MiB | above idle MiB | fds peak / limit |")
        out("|---" * 15 + "|")
        for r in rows:
            d, c = r["direct"], r["cg"]
            ratio = c["rps"] / d["rps"] if d["rps"] else float("nan")
            per = (r["peak"] - r["idle"]) * 1024 / r["conc"]
            out(f"| {r['conc']} | {d['rps']:.0f} | {c['rps']:.0f} | {ratio:.2f} | "
                f"{d['p50']:.1f} / {d['p99']:.1f} | {c['p50']:.1f} / {c['p99']:.1f} | {c['bad']} | "
                f"{100 * r['busy_d']:.0f}% / {100 * r['busy_c']:.0f}% | {c['cpu_us']:.0f} | "
                f"{r['idle']:.1f} | {r['peak']:.1f} | {per:.1f} | {r['after']:.1f} | "
                f"{r['after'] - r['idle']:+.1f} | {r['fds']} / {r['fd_limit']} |")
    if st:
        out()
        out("| streams | calls | open | RSS idle MiB | RSS with streams open MiB | KiB per stream "
            f"| RSS {st['after_s']:g} s after closing MiB (streams still open) | vendor reads/s | "
            "fds / limit | opened in s |")
        out("|---" * 10 + "|")
        per = (st["held"] - st["idle"]) * 1024 / max(st["open"], 1)
        out(f"| {st['n']} | {st['k']} | {st['open']} (gauge {st['gauge']:.0f}) | "
            f"{st['idle']:.1f} | {st['held']:.1f} | {per:.1f} | {st['after']:.1f} "
            f"({st['open_after']:.0f}) | {st['reads']:.0f} | {st['fds']} / {st['fd_limit']} | "
            f"{st['opened_in']:.1f} |")
        n, p50, p99, within_1ms = st["delivery"]
        if n:
            out(f"event delivery while the streams were held (vendor event or changed read -> "
                f"written to a client, `callgate_event_delivery_seconds`, bucket upper bounds): "
                f"{n:.0f} events, "
                f"p50 <= {p50:g} ms, p99 <= {p99:g} ms, {100 * within_1ms:.1f}% within 1 ms")
        if st["refused"] or st["failed"] or st["ended"] or st["retried"]:
            out(f"refused {st['refused']}, failed {st['failed']}, ended by callgate {st['ended']}, "
                f"opens answered 503/504 and tried again a second later: {st['retried']}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--callgate", required=True)
    ap.add_argument("--oha", required=True)
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--levels", default="50,500,2000")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--settle-seconds", type=float, default=60)
    ap.add_argument("--streams", type=int, default=0, help="idle event streams to hold (0: off)")
    ap.add_argument("--stream-calls", type=int, default=0,
                    help="distinct calls the streams watch (default: one per stream)")
    ap.add_argument("--hold-seconds", type=float, default=30,
                    help="how long the streams are open before RSS is read (pollers back off)")
    ap.add_argument("--max-in-flight", type=int, default=20000,
                    help="each provider's bulkhead (max_in_flight; the default config's 256 "
                    "refuses what is beyond it with 503); 0 keeps the config's")
    ap.add_argument("--no-levels", action="store_true", help="only the streams")
    ap.add_argument("--live-step-ms", type=int, default=0,
                    help="created calls play a conversation, a line per step, then end (0: they "
                    "stay in progress): with --streams, events to deliver")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="environment for callgate (repeatable), e.g. _RJEM_MALLOC_CONF=dirty_decay_ms:0")
    ap.add_argument("--client-nice", type=int, default=0,
                    help="run this script's stream clients at this nice value (e.g. 19), so that "
                    "on a machine shared with callgate its readers do not preempt callgate's "
                    "workers (callgate and the simulator keep theirs)")
    ap.add_argument("--adapters", help="adapter directory (default: the config's, `adapters`)")
    ap.add_argument("--markdown", help="also write the tables to this file")
    ap.add_argument("--smoke", action="store_true",
                    help="20 connections for 1 s, settle 1 s, 50 streams on 5 calls")
    args = ap.parse_args()
    if args.smoke:
        args.levels, args.seconds, args.settle_seconds = "20", 1, 1
        args.streams, args.stream_calls, args.hold_seconds = 50, 5, 1
    args.seconds = int(args.seconds) if float(args.seconds).is_integer() else args.seconds
    levels = [] if args.no_levels else [int(x) for x in args.levels.split(",") if x]

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    need = max(levels + [0]) * 2 + args.streams + 256
    if hard != resource.RLIM_INFINITY and need > hard:
        bench.log(f"warning: RLIMIT_NOFILE hard limit {hard} is below the ~{need} descriptors "
                  "needed")

    args.load_before = os.getloadavg()[0]
    workdir = tempfile.mkdtemp(prefix="callgate-conn-", dir=os.environ.get("BENCH_WORKDIR"))
    cfg = config(args, workdir)
    procs, rows, st, md = bench.Procs(), [], None, []
    ports_free([API_PORT, ADMIN_PORT] + list(bench.SIM.values()))
    try:
        procs.start("sim", [args.callgate, "sim", "--latency-ms", str(args.latency_ms),
                            "--live-step-ms", str(args.live_step_ms)]
                    + [x for v in bench.SIM for x in (f"--{v}", f"{HOST}:{bench.SIM[v]}")],
                    logdir=workdir)
        for v in bench.SIM:
            bench.wait_for(f"http://{HOST}:{bench.SIM[v]}/__sim/health", f"simulator {v}")
        if levels:
            cg = start_callgate(procs, args, workdir, cfg)
            ep = next(e for e in bench.discover(["zudu"], []) if e["op"] == "get")
            procs.stop(cg)
            bench.log(f"levels {levels}: {args.seconds} s each, {ep['path']} "
                      f"(vendor {ep['vpath']}), latency {args.latency_ms} ms")
            rows = [level(args, procs, workdir, cfg, c, ep) for c in levels]
        if args.streams:
            cg = start_callgate(procs, args, workdir, cfg)
            if args.client_nice:
                os.nice(args.client_nice)
            st = asyncio.run(streams(args, cg.pid))
            procs.stop(cg)
    finally:
        procs.stop_all()
    report(args, rows, st, md)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    sys.exit(main())
