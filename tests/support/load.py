#!/usr/bin/env python3
"""Bounded loopback load for callgate's lifecycle tests: N threads send GETs until a stop file
appears (or a time limit passes) and print a JSON summary of statuses and failures.

usage: load.py URL KEY STOP_FILE [threads] [max_seconds] [--close]
"""
import http.client, json, os, sys, threading, time, urllib.parse

url, key, stop_file = sys.argv[1], sys.argv[2], sys.argv[3]
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 4
limit = float(sys.argv[5]) if len(sys.argv) > 5 else 60.0
close = "--close" in sys.argv
u = urllib.parse.urlsplit(url)
path = u.path + ("?" + u.query if u.query else "")
lock = threading.Lock()
stats = {"requests": 0, "failures": 0, "refused": 0, "retried": 0, "statuses": {}, "errors": []}
deadline = time.time() + limit


def get(conn):
    headers = {"Authorization": "Bearer " + key}
    if close:
        headers["Connection"] = "close"
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    resp.read()
    return resp


def worker():
    conn = None
    while time.time() < deadline and not os.path.exists(stop_file):
        try:
            if conn is None:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            try:
                resp = get(conn)
            except (http.client.RemoteDisconnected, ConnectionResetError):
                # The connection closed before any answer: a client may resend an idempotent
                # request (RFC 9110, 9.2.2), once, on a new connection.
                with lock:
                    stats["retried"] += 1
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
                resp = get(conn)
            with lock:
                stats["requests"] += 1
                stats["statuses"][str(resp.status)] = stats["statuses"].get(str(resp.status), 0) + 1
                if resp.status != 200:
                    stats["failures"] += 1
            if close or resp.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
        except Exception as e:  # a refused or broken connection is a failed request
            with lock:
                stats["requests"] += 1
                stats["failures"] += 1
                if isinstance(e, ConnectionRefusedError):
                    stats["refused"] += 1
                if len(stats["errors"]) < 5:
                    stats["errors"].append(repr(e))
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.01)


ts = [threading.Thread(target=worker) for _ in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(json.dumps(stats))
