#!/usr/bin/env python3
"""Stick-table replication, lbha next to HAProxy 2.6, on loopback (bench/README.md, "Peers").

Two nodes of one kind (two lbha, or two HAProxy) share a `peers` section and a table
`type ip size 2m expire 1h store gpc0,conn_rate(10s),http_req_rate(10s)`. Three figures:

  burst   100,000 new entries set on node A through its control socket in one pipelined batch:
          time until node B's `show table` counts all of them (and how long A took to take them).
  lag     steady load, 200 new entries/s on A for 10 s: for each entry, from its `set table` on A
          to the first `show table` poll of B (every 20 ms) that lists it; p50/p99/max.
  memory  1,000,000 entries set on A and replicated to B: RSS growth of A and of B.

Every loop is bounded in time and count; the processes started here are killed on exit.
Usage: bench/peers.py [--lbha PATH] [--haproxy PATH] [--only lbha|haproxy] [--skip-memory]
       [--burst N] [--memory N]
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

STORE = ["gpc0", "conn_rate(10s)", "http_req_rate(10s)"]
BURST = 100_000
MEMORY = 1_000_000
LAG_RATE = 200
LAG_SECS = 10
POLL = 0.02
WAIT_LIMIT = 600.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def ip(i):
    i += 0x0A000000
    return f"{i >> 24 & 255}.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


class Node:
    """One lbha or HAProxy process with its control socket."""

    def __init__(self, kind, binary, work, me, ports):
        self.kind, self.sock = kind, os.path.join(work, f"{kind}-{me}.sock")
        names = {"a": ports[0], "b": ports[1]}
        if kind == "lbha":
            peers = ", ".join(f'"{n} 127.0.0.1:{p}"' for n, p in names.items())
            store = ", ".join(f'"{s}"' for s in STORE)
            cfg = (
                f'[global]\nlocalpeer = "{me}"\n[[peers]]\nname = "mesh"\npeer = [{peers}]\n'
                f'[[backend]]\nname = "t"\nstick_table = {{ type = "ip", size = "2m", expire = "1h", '
                f'peers = "mesh", store = [{store}] }}\n'
            )
            path = os.path.join(work, f"lbha-{me}.toml")
            args = [binary, "run", "-c", path, "-S", self.sock]
        else:
            peers = "".join(f"    peer {n} 127.0.0.1:{p}\n" for n, p in names.items())
            cfg = (
                f"global\n    stats socket {self.sock} level admin\n    stats timeout 10m\n"
                f"defaults\n    timeout connect 2s\n    timeout client 10m\n    timeout server 10m\n"
                f"peers mesh\n{peers}backend t\n    stick-table type ip size 2m expire 1h peers mesh "
                f"store {','.join(STORE)}\n"
            )
            path = os.path.join(work, f"hap-{me}.cfg")
            args = [binary, "-db", "-L", me, "-f", path]
        with open(path, "w") as f:
            f.write(cfg)
        self.log = open(os.path.join(work, f"{kind}-{me}.log"), "w")
        # The previous pair's socket file is still there: ready means it answers, not exists.
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not self.answers():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise SystemExit(f"{kind} {me} did not start (see {self.log.name})")
            time.sleep(0.05)

    def answers(self):
        try:
            self.ask("show table")
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def batch(self, lines):
        """Sends the commands on one connection (HAProxy: prompt mode) and reads every answer."""
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(WAIT_LIMIT)
        s.connect(self.sock)
        head = "prompt\n" if self.kind == "haproxy" else ""
        tail = "quit\n" if self.kind == "haproxy" else ""
        data = (head + "".join(l + "\n" for l in lines) + tail).encode()
        got = []

        def reader():
            while True:
                try:
                    b = s.recv(1 << 16)
                except OSError:
                    break
                if not b:
                    break
                got.append(b)

        t = threading.Thread(target=reader)
        t.start()
        s.sendall(data)
        if self.kind == "lbha":
            s.shutdown(socket.SHUT_WR)
        t.join(WAIT_LIMIT)
        s.close()
        return b"".join(got).decode(errors="replace")

    def ask(self, cmd):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(60)
        s.connect(self.sock)
        s.sendall((cmd + "\n").encode())
        s.shutdown(socket.SHUT_WR)
        out = []
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            out.append(b)
        s.close()
        return b"".join(out).decode(errors="replace")

    def used(self):
        for line in self.ask("show table").splitlines():
            if line.startswith("# table: t,"):
                return int(line.rsplit("used:", 1)[1])
        return -1


def wait_used(node, want, since):
    deadline = time.monotonic() + WAIT_LIMIT
    while time.monotonic() < deadline:
        if node.used() >= want:
            return time.monotonic() - since
        time.sleep(0.05)
    return None


def pair(kind, binary, work):
    ports = (free_port(), free_port())
    a = Node(kind, binary, work, "a", ports)
    try:
        b = Node(kind, binary, work, "b", ports)
    except BaseException:
        a.stop()
        raise
    try:
        # The session is up when an entry crosses.
        a.ask("set table t key 192.0.2.1 data.gpc0 1")
        if wait_used(b, 1, time.monotonic()) is None:
            raise SystemExit(f"{kind}: no replication between the two nodes")
        a.ask("clear table t")
        b.ask("clear table t")
    except BaseException:
        a.stop()
        b.stop()
        raise
    return a, b


def burst(kind, binary, work):
    a, b = pair(kind, binary, work)
    try:
        t0 = time.monotonic()
        a.batch([f"set table t key {ip(i)} data.gpc0 1" for i in range(BURST)])
        taken = time.monotonic() - t0
        have_a = a.used()
        done = wait_used(b, BURST, t0)
        return f"A took {BURST:,} entries in {taken:.2f} s (A has {have_a:,}); B has all after " + (
            f"{done:.2f} s" if done is not None else f"more than {WAIT_LIMIT:.0f} s (has {b.used():,})"
        )
    finally:
        a.stop()
        b.stop()


def lag(kind, binary, work):
    a, b = pair(kind, binary, work)
    try:
        sent = {}
        # How long A took to answer each `set table`: a slow answer is lag on A's side.
        answer = []
        polls = []
        stop = threading.Event()
        seen = {}

        def poll():
            end = time.monotonic() + LAG_SECS + 30
            while time.monotonic() < end and not (stop.is_set() and len(seen) >= len(sent)):
                asked = time.monotonic()
                out = b.ask("show table t")
                now = time.monotonic()
                polls.append((now - asked) * 1000)
                for line in out.splitlines():
                    if " key=" in line:
                        k = line.split(" key=", 1)[1].split(" ", 1)[0]
                        seen.setdefault(k, now)
                time.sleep(POLL)

        t = threading.Thread(target=poll)
        t.start()
        start = time.monotonic()
        for i in range(LAG_RATE * LAG_SECS):
            due = start + i / LAG_RATE
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            k = ip(i)
            sent[k] = time.monotonic()
            a.ask(f"set table t key {k} data.gpc0 1")
            answer.append((time.monotonic() - sent[k]) * 1000)
        stop.set()
        t.join()
        lags = sorted((seen[k] - sent[k]) * 1000 for k in sent if k in seen)
        missing = len(sent) - len(lags)
        if not lags:
            return "no entry reached B"
        pct = lambda p: lags[min(len(lags) - 1, int(len(lags) * p))]
        return (
            f"{len(sent):,} entries at {LAG_RATE}/s: lag p50 {pct(0.5):.0f} ms, p99 {pct(0.99):.0f} ms, "
            f"max {lags[-1]:.0f} ms (poll every {POLL * 1000:.0f} ms){f', {missing} never seen' if missing else ''}; "
            f"A answered set table in p99 {sorted(answer)[int(len(answer) * 0.99)]:.0f} ms, max {max(answer):.0f} ms; "
            f"B answered show table in p99 {sorted(polls)[int(len(polls) * 0.99)]:.0f} ms, max {max(polls):.0f} ms"
        )
    finally:
        a.stop()
        b.stop()


def memory(kind, binary, work):
    a, b = pair(kind, binary, work)
    try:
        before = (rss_kib(a.proc.pid), rss_kib(b.proc.pid))
        t0 = time.monotonic()
        step = 100_000
        for s in range(0, MEMORY, step):
            a.batch([f"set table t key {ip(i)} data.gpc0 1" for i in range(s, min(MEMORY, s + step))])
        done = wait_used(b, MEMORY, t0)
        after = (rss_kib(a.proc.pid), rss_kib(b.proc.pid))
        d = [(x - y) for x, y in zip(after, before)]
        return (
            f"A +{d[0] / 1024:.0f} MiB ({d[0] * 1024 // MEMORY} bytes/entry, has {a.used():,}), "
            f"B +{d[1] / 1024:.0f} MiB ({d[1] * 1024 // MEMORY} bytes/entry, has {b.used():,}"
            + (f", all after {done:.1f} s)" if done is not None else ")")
        )
    finally:
        a.stop()
        b.stop()


def main():
    global BURST, MEMORY
    ap = argparse.ArgumentParser()
    ap.add_argument("--lbha", default="target/release/lbha")
    ap.add_argument("--haproxy", default="haproxy")
    ap.add_argument("--only", choices=["lbha", "haproxy"])
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--burst", type=int, default=BURST, help="entries of the burst (smoke runs)")
    ap.add_argument("--memory", type=int, default=MEMORY, help="entries of the memory run (smoke runs)")
    o = ap.parse_args()
    BURST, MEMORY = o.burst, o.memory
    kinds = [("lbha", o.lbha), ("haproxy", o.haproxy)]
    with tempfile.TemporaryDirectory(prefix="lbha-bench-peers-") as work:
        for kind, binary in kinds:
            if o.only and kind != o.only:
                continue
            print(f"{kind} burst:  {burst(kind, binary, work)}", flush=True)
            print(f"{kind} lag:    {lag(kind, binary, work)}", flush=True)
            if not o.skip_memory:
                print(f"{kind} memory: {memory(kind, binary, work)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
