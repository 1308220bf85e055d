#!/usr/bin/env python3
"""Connection floods against a running r2-broker (python3 standard library only).

  flood.py keepalive --url URL --pid PID [--token T]   B bursts of N keep-alive connections
  flood.py slowbody  --url URL --pid PID --token T     M connections that stall or trickle a body
  flood.py all       ...                               both, one after the other

What it measures (issue 11 item 3):

* the broker's RSS (VmRSS from /proc/PID/status, sampled every 0.2 s): idle before, the
  peak during, and `--after` seconds (default 60) after the flood ended;
* `keepalive`: BURSTS times, N connections each doing one request (`GET /healthz`, or an
  authenticated `GET /v1/usage` with `--token`) and then held open for `--hold` seconds
  (or until the broker closes them: its keep-alive timeout), then closed by us;
* `slowbody`: M connections that send `POST /v1/uploads` headers with `Content-Length:
  1000` and a few bytes of body, then stall (`--mode stall`) or send one more byte a second
  (`--mode trickle`). Each connection is reopened when it ends (`--reconnect`, default on)
  until `--duration` seconds have passed, so the pressure stays at M. Every outcome is
  counted: answered (by status, 408 expected), closed or reset without an answer, still
  waiting when the flood ended (held), connect refused, connect timed out (the kernel's
  accept queue was full and our SYNs were dropped);
* throughout both, once a second, a probe: a normal request on a fresh connection
  (`GET /v1/usage` with the token, else `GET /healthz`), classed as answered (status +
  latency), refused / reset, or stuck (no answer within `--probe-timeout`);
* once a second: the broker's open descriptors, its listen socket's accept queue (`ss`),
  and the kernel's ListenOverflows / ListenDrops counters.

The connections are spread over several client processes (`--procs`, default: enough for
at most 5,000 connections each) because the client has the same open-files limit as the
broker, and over many loopback source addresses (127.X.Y.Z) so that 60,000+ connections
in a few minutes never run out of ephemeral ports. The client raises its soft open-files
limit to the hard one.

The result is printed as a summary and written as JSON to `--out` (default
flood-<UTC time>.json in the current directory).
"""
import argparse
import asyncio
import collections
import errno
import json
import math
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
PER_PROC = 5000


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def src_addr(proc: int, j: int) -> str:
    """A loopback source address per connection: 250 per client process."""
    return f"127.{(proc % 250) + 1}.{(j // 250) % 250 + 1}.{j % 250 + 2}" if proc >= 0 else "127.0.0.1"


async def connect(host: str, port: int, src: str, timeout: float):
    """A fresh TCP connection from `src` (port chosen at connect, so TIME_WAIT pairs are reused)."""
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setblocking(False)
        if src != "127.0.0.1":
            s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((src, 0))
        await asyncio.wait_for(loop.sock_connect(s, (host, port)), timeout)
        return await asyncio.open_connection(sock=s, limit=1 << 16)
    except BaseException:
        s.close()
        raise


async def read_response(r: asyncio.StreamReader):
    """Status and body of one HTTP/1.1 response; EOF before a status line -> ConnectionResetError."""
    try:
        head = await r.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        raise ConnectionResetError("closed before a response" if not e.partial else "closed mid-response")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    close = False
    for line in lines[1:]:
        k, _, v = line.partition(":")
        k = k.strip().lower()
        if k == "content-length":
            length = int(v.strip())
        elif k == "connection" and "close" in v.lower():
            close = True
    body = await r.readexactly(length) if length else b""
    return status, body, close


def request(method: str, target: str, host: str, token: str | None, extra: str = "", close=False) -> bytes:
    h = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: r2b-flood\r\n"
    if token:
        h += f"Authorization: Bearer {token}\r\n"
    if close:
        h += "Connection: close\r\n"
    return (h + extra + "\r\n").encode()


def err_kind(e: BaseException) -> str:
    if isinstance(e, asyncio.TimeoutError):
        return "timeout"
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if isinstance(e, (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError)):
        return "reset"
    if isinstance(e, OSError):
        return errno.errorcode.get(e.errno or 0, type(e).__name__)
    return type(e).__name__


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def quantiles(xs):
    if not xs:
        return None
    xs = sorted(xs)
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]
    return {"n": len(xs), "min": round(xs[0], 3), "p50": round(q(0.5), 3), "p90": round(q(0.9), 3),
            "p99": round(q(0.99), 3), "max": round(xs[-1], 3)}


# ----------------------------------------------------------------------------- workers (child processes)


async def worker_keepalive(cfg):
    """Open n connections (cfg['conc'] at a time), one request each, hold until told to close."""
    host, port, n, proc = cfg["host"], cfg["port"], cfg["n"], cfg["proc"]
    req = request("GET", cfg["target"], f"{host}:{port}", cfg.get("token"))
    sem = asyncio.Semaphore(cfg["conc"])
    stats = collections.Counter()
    held = []
    lat = []

    async def watch(r):
        try:
            if await r.read(1) == b"":
                stats["closed_by_broker_while_held"] += 1
        except Exception:
            stats["reset_by_broker_while_held"] += 1

    async def one(j):
        async with sem:
            t0 = time.monotonic()
            try:
                r, w = await connect(host, port, src_addr(proc, j), cfg["connect_timeout"])
            except Exception as e:
                stats["connect_" + err_kind(e)] += 1
                return
            try:
                w.write(req)
                status, _, close = await asyncio.wait_for(read_response(r), cfg["request_timeout"])
                stats[f"status_{status}"] += 1
                lat.append(time.monotonic() - t0)
            except Exception as e:
                stats["request_" + err_kind(e)] += 1
                w.close()
                return
            held.append((w, asyncio.create_task(watch(r))))

    await asyncio.gather(*(one(j) for j in range(n)))
    emit({"event": "ready", "stats": dict(stats), "held": len(held), "latency": quantiles(lat)})
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    still_open = sum(1 for _, t in held if not t.done())
    for w, t in held:
        t.cancel()
        w.close()
    await asyncio.sleep(0.5)
    emit({"event": "done", "stats": dict(stats), "still_open_when_closed": still_open})


async def worker_slowbody(cfg):
    """n slots; each keeps one slow-body connection going until the deadline."""
    host, port, n, proc = cfg["host"], cfg["port"], cfg["n"], cfg["proc"]
    length, first = cfg["content_length"], cfg["first_bytes"]
    head = request("POST", "/v1/uploads", f"{host}:{port}", cfg.get("token"),
                   f"Content-Type: application/json\r\nContent-Length: {length}\r\n")
    body = (b'{"filename": "' + b"a" * length)[:length]
    deadline = time.monotonic() + cfg["duration"]
    sem = asyncio.Semaphore(cfg["conc"])
    outcomes = collections.Counter()
    lat = collections.defaultdict(list)
    live = {"connecting": 0, "open": 0}
    counter = [0]
    writers = set()

    async def attempt():
        j = counter[0]
        counter[0] += 1
        t0 = time.monotonic()
        live["connecting"] += 1
        try:
            async with sem:
                r, w = await connect(host, port, src_addr(proc, j), max(0.1, min(cfg["connect_timeout"], deadline - t0 + 1)))
        except Exception as e:
            live["connecting"] -= 1
            return "connect_" + err_kind(e), time.monotonic() - t0
        live["connecting"] -= 1
        live["open"] += 1
        writers.add(w)
        t1 = time.monotonic()
        sent = 0

        async def feed():
            nonlocal sent
            w.write(head + body[:first])
            sent = first
            if cfg["mode"] == "trickle":
                while sent < length:
                    await asyncio.sleep(1)
                    w.write(body[sent:sent + 1])
                    sent += 1
                    await w.drain()
            await asyncio.Event().wait()

        feeder = asyncio.create_task(feed())
        try:
            left = deadline - time.monotonic()
            status, _, _ = await asyncio.wait_for(read_response(r), max(0.01, left))
            res = f"status_{status}"
        except asyncio.TimeoutError:
            res = "held_at_end"
        except Exception as e:
            res = "closed_" + err_kind(e)
        finally:
            feeder.cancel()
            live["open"] -= 1
            writers.discard(w)
            w.close()
        return res, time.monotonic() - t1

    async def slot():
        while True:
            res, dt = await attempt()
            outcomes[res] += 1
            lat[res].append(dt)
            if not cfg["reconnect"] or time.monotonic() >= deadline:
                return
            if res.startswith("connect_") and res != "connect_timeout":
                await asyncio.sleep(0.1)  # refused at once: do not spin

    async def report():
        while True:
            emit({"event": "tick", "outcomes": dict(outcomes), "live": dict(live)})
            await asyncio.sleep(1)

    rep = asyncio.create_task(report())
    await asyncio.gather(*(slot() for _ in range(n)))
    rep.cancel()
    emit({"event": "done", "outcomes": dict(outcomes), "seconds": {k: quantiles(v) for k, v in lat.items()},
          "attempts": counter[0]})


def worker_main(cfg):
    raise_nofile()
    fn = worker_keepalive if cfg["kind"] == "keepalive" else worker_slowbody
    asyncio.run(fn(cfg))


# ----------------------------------------------------------------------------- the orchestrator


class Broker:
    """Samples the broker process and its listen socket."""

    def __init__(self, pid: int, port: int):
        self.pid, self.port = pid, port
        self.samples = []  # (t, rss_kib, anon_kib, hwm_kib)
        self.window_peak = 0

    def status(self):
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                    out[k] = int(v.split()[0])
        return out

    def rss(self):
        return self.status()["VmRSS"]

    def fds(self):
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return -1

    def accept_queue(self):
        """(current, max) of the listen socket's accept queue."""
        try:
            out = subprocess.run(["ss", "-Hltn", f"sport = :{self.port}"], capture_output=True, text=True, timeout=5).stdout
            f = out.split()
            return int(f[1]), int(f[2])
        except Exception:
            return None, None

    async def sample_forever(self):
        while True:
            try:
                s = self.status()
            except OSError:
                return
            self.samples.append((time.monotonic(), s["VmRSS"], s["RssAnon"], s["VmHWM"]))
            self.window_peak = max(self.window_peak, s["VmRSS"])
            await asyncio.sleep(0.2)

    def peak_since(self, t0):
        return max((s[1] for s in self.samples if s[0] >= t0), default=0)


def netstat():
    """TcpExt ListenOverflows / ListenDrops (machine-wide counters)."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for a, b in zip(lines[::2], lines[1::2]):
        if a.startswith("TcpExt:"):
            d = dict(zip(a.split()[1:], map(int, b.split()[1:])))
            return {"ListenOverflows": d.get("ListenOverflows", 0), "ListenDrops": d.get("ListenDrops", 0)}
    return {}


class Prober:
    """A normal request on a fresh connection every `every` seconds."""

    def __init__(self, args, host, port):
        self.args, self.host, self.port = args, host, port
        self.target = "/v1/usage" if args.token else "/healthz"
        self.results = []  # dicts
        self.tasks = set()

    async def one(self, phase):
        t0 = time.monotonic()
        res = {"phase": phase, "t": round(t0 - T0, 1)}
        w = None
        try:
            r, w = await connect(self.host, self.port, "127.0.0.1", self.args.probe_timeout)
            res["connect_s"] = round(time.monotonic() - t0, 3)
            w.write(request("GET", self.target, f"{self.host}:{self.port}", self.args.token, close=True))
            left = self.args.probe_timeout - (time.monotonic() - t0)
            status, _, _ = await asyncio.wait_for(read_response(r), max(0.01, left))
            res.update(outcome="answered", status=status)
        except asyncio.TimeoutError:
            res.update(outcome="stuck", where="response" if "connect_s" in res else "connect")
        except Exception as e:
            k = err_kind(e)
            res.update(outcome="refused" if k in ("refused", "reset") else "error", error=k)
        finally:
            if w is not None:
                w.close()
        res["latency_s"] = round(time.monotonic() - t0, 3)
        self.results.append(res)

    def start(self, phase):
        t = asyncio.create_task(self.one(phase))
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    async def every_second(self, phase, stop: asyncio.Event):
        while not stop.is_set():
            self.start(phase)
            try:
                await asyncio.wait_for(stop.wait(), self.args.probe_every)
            except asyncio.TimeoutError:
                pass

    def summary(self, phase):
        rs = [r for r in self.results if r["phase"] == phase]
        c = collections.Counter(r["outcome"] + (f"_{r['status']}" if "status" in r else "") for r in rs)
        answered = [r["latency_s"] for r in rs if r["outcome"] == "answered"]
        return {"probes": len(rs), "outcomes": dict(c), "answered_latency_s": quantiles(answered),
                "slow_over_1s": sum(1 for x in answered if x > 1.0),
                "stuck": [r for r in rs if r["outcome"] == "stuck"][:20]}


T0 = time.monotonic()
START_RSS = [0]  # KiB, the broker's RSS when flood.py started (the first idle)


def mib(kib):
    return round(kib / 1024, 1)


async def spawn(cfg):
    p = await asyncio.create_subprocess_exec(sys.executable, os.path.abspath(__file__), "_worker", json.dumps(cfg),
                                             stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                             limit=1 << 20)
    return p


async def next_event(p, want):
    while True:
        line = await p.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited before '{want}' (rc {await p.wait()})")
        ev = json.loads(line)
        if ev["event"] == want:
            return ev


def split(n, procs):
    base = [n // procs] * procs
    for i in range(n % procs):
        base[i] += 1
    return base


def log(*a):
    print(f"[flood {time.monotonic() - T0:7.1f}s]", *a, flush=True)


async def settle(broker, seconds, label):
    log(f"waiting {seconds:.0f} s ({label}) ...")
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        await asyncio.sleep(min(10, t_end - time.monotonic()))
        log(f"  RSS {mib(broker.rss())} MiB, fds {broker.fds()}")
    return broker.status()


async def run_keepalive(args, broker, prober, report):
    host, port = args.host, args.port
    procs = args.procs or max(1, math.ceil(args.connections / PER_PROC))
    idle = broker.status()
    log(f"keepalive: idle RSS {mib(idle['VmRSS'])} MiB (anon {mib(idle['RssAnon'])}), {args.bursts} bursts of "
        f"{args.connections} connections over {procs} processes, target {prober.target}")
    stop = asyncio.Event()
    probing = asyncio.create_task(prober.every_second("keepalive", stop))
    t_start = time.monotonic()
    bursts = []
    for b in range(args.bursts):
        tb = time.monotonic()
        ps = [await spawn({"kind": "keepalive", "host": host, "port": port, "n": n, "proc": b * procs + i,
                           "target": prober.target, "token": args.token, "conc": args.conc,
                           "connect_timeout": args.connect_timeout, "request_timeout": args.request_timeout})
              for i, n in enumerate(split(args.connections, procs))]
        ready = [await next_event(p, "ready") for p in ps]
        t_ready = time.monotonic()
        fds_held = broker.fds()
        await asyncio.sleep(args.hold)
        for p in ps:
            p.stdin.write(b"close\n")
            await p.stdin.drain()
        done = [await next_event(p, "done") for p in ps]
        for p in ps:
            await p.wait()
        stats = collections.Counter()
        for d in done:
            stats.update(d["stats"])
        still = sum(d["still_open_when_closed"] for d in done)
        peak = broker.peak_since(tb)
        lat = [r["latency"] for r in ready if r["latency"]]
        one = {"burst": b + 1, "open_s": round(t_ready - tb, 1), "stats": dict(stats),
               "broker_fds_when_all_open": fds_held, "still_open_when_we_closed": still,
               "peak_rss_mib": mib(peak), "rss_after_close_mib": mib(broker.rss()),
               "request_latency_p99_s": max((x["p99"] for x in lat), default=None)}
        bursts.append(one)
        log(f"burst {b + 1}: {json.dumps(one)}")
        await asyncio.sleep(args.gap)
    during = broker.peak_since(t_start)
    end = broker.status()
    stop.set()
    await probing
    after = await settle(broker, args.after, f"{args.after:.0f} s after the last burst")
    report["keepalive"] = {
        "connections": args.connections, "bursts_n": args.bursts, "hold_s": args.hold, "procs": procs,
        "rss_idle_mib": mib(idle["VmRSS"]), "rss_peak_during_mib": mib(during),
        "rss_at_end_mib": mib(end["VmRSS"]), "rss_after_mib": mib(after["VmRSS"]),
        "anon_idle_mib": mib(idle["RssAnon"]), "anon_after_mib": mib(after["RssAnon"]),
        "after_s": args.after, "within_2x_idle": after["VmRSS"] <= 2 * idle["VmRSS"],
        "within_2x_start": after["VmRSS"] <= 2 * START_RSS[0],
        "bursts": bursts, "probes": prober.summary("keepalive"),
    }
    log("keepalive: " + json.dumps({k: v for k, v in report["keepalive"].items() if k not in ("bursts",)}))


async def run_slowbody(args, broker, prober, report):
    host, port = args.host, args.port
    procs = args.procs or max(1, math.ceil(args.flood / PER_PROC))
    idle = broker.status()
    ns0 = netstat()
    log(f"slowbody ({args.mode}): idle RSS {mib(idle['VmRSS'])} MiB, {args.flood} connections over {procs} processes "
        f"for {args.duration:.0f} s, reconnect={args.reconnect}, token={'yes' if args.token else 'no'}")
    stop = asyncio.Event()
    phase = f"slowbody-{args.mode}"
    probing = asyncio.create_task(prober.every_second(phase, stop))
    t_start = time.monotonic()
    ps = [await spawn({"kind": "slowbody", "host": host, "port": port, "n": n, "proc": 100 + i, "token": args.token,
                       "conc": args.conc, "connect_timeout": args.connect_timeout, "duration": args.duration,
                       "mode": args.mode, "content_length": 1000, "first_bytes": args.first_bytes,
                       "reconnect": args.reconnect})
          for i, n in enumerate(split(args.flood, procs))]
    last = [{} for _ in ps]
    timeline = []
    done = [None] * len(ps)

    async def pump(i, p):
        while True:
            line = await p.stdout.readline()
            if not line:
                return
            ev = json.loads(line)
            if ev["event"] == "tick":
                last[i] = ev
            elif ev["event"] == "done":
                done[i] = ev

    pumps = [asyncio.create_task(pump(i, p)) for i, p in enumerate(ps)]
    max_fds = 0
    while not all(t.done() for t in pumps):
        await asyncio.sleep(1)
        live = collections.Counter()
        outc = collections.Counter()
        for ev in last:
            live.update(ev.get("live", {}))
            outc.update(ev.get("outcomes", {}))
        q, qmax = broker.accept_queue()
        fds = broker.fds()
        max_fds = max(max_fds, fds)
        recent = [r for r in prober.results if r["phase"] == phase][-3:]
        row = {"t": round(time.monotonic() - t_start), "rss_mib": mib(broker.rss()), "fds": fds,
               "accept_queue": q, "accept_queue_max": qmax, "live": dict(live), "outcomes": dict(outc),
               "probes_pending": len(prober.tasks),
               "last_probes": [(r["outcome"], r.get("status"), r["latency_s"]) for r in recent]}
        timeline.append(row)
        if row["t"] % args.print_every == 0:
            log(json.dumps(row))
    for p in ps:
        await p.wait()
    stop.set()
    await probing
    if prober.tasks:
        await asyncio.wait(list(prober.tasks))
    during = broker.peak_since(t_start)
    end = broker.status()
    ns1 = netstat()
    outcomes = collections.Counter()
    seconds = {}
    attempts = 0
    for d in done:
        if not d:
            continue
        outcomes.update(d["outcomes"])
        attempts += d["attempts"]
        for k, v in d["seconds"].items():
            if v and (k not in seconds or v["max"] > seconds[k]["max"]):
                seconds[k] = v  # the worst process's distribution
    after = await settle(broker, args.after, f"{args.after:.0f} s after the flood")
    key = f"slowbody_{args.mode}" + ("" if args.token else "_no_token")
    report[key] = {
        "flood": args.flood, "mode": args.mode, "duration_s": args.duration, "reconnect": args.reconnect,
        "token": bool(args.token), "procs": procs, "attempts": attempts, "outcomes": dict(outcomes),
        "seconds_to_outcome_worst_proc": seconds,
        "broker_max_fds": max_fds,
        "listen_overflows": ns1.get("ListenOverflows", 0) - ns0.get("ListenOverflows", 0),
        "listen_drops": ns1.get("ListenDrops", 0) - ns0.get("ListenDrops", 0),
        "rss_idle_mib": mib(idle["VmRSS"]), "rss_peak_during_mib": mib(during), "rss_at_end_mib": mib(end["VmRSS"]),
        "rss_after_mib": mib(after["VmRSS"]), "anon_after_mib": mib(after["RssAnon"]), "after_s": args.after,
        "within_2x_idle": after["VmRSS"] <= 2 * idle["VmRSS"],
        "within_2x_start": after["VmRSS"] <= 2 * START_RSS[0],
        "probes": prober.summary(phase), "timeline": timeline,
    }
    log(f"{key}: " + json.dumps({k: v for k, v in report[key].items() if k != "timeline"}))


async def main_async(args):
    u = urllib.parse.urlsplit(args.url)
    args.host, args.port = u.hostname, u.port or 80
    broker = Broker(args.pid, args.port)
    sampler = asyncio.create_task(broker.sample_forever())
    report = {"url": args.url, "pid": args.pid, "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "client_nofile": raise_nofile(), "args": {k: v for k, v in vars(args).items() if k != "token"}}
    try:
        with open(f"/proc/{args.pid}/limits") as f:
            report["broker_nofile"] = next(line.split()[3:5] for line in f if line.startswith("Max open files"))
    except Exception:
        pass
    await asyncio.sleep(1)
    START_RSS[0] = broker.rss()
    report["rss_start_mib"] = mib(START_RSS[0])
    prober = Prober(args, args.host, args.port)
    if args.command in ("keepalive", "all"):
        await run_keepalive(args, broker, prober, report)
    if args.command in ("slowbody", "all"):
        modes = ["stall", "trickle"] if args.mode == "both" else [args.mode]
        for m in modes:
            args.mode = m
            await run_slowbody(args, broker, prober, report)
        args.mode = "both" if len(modes) > 1 else modes[0]
    report["rss_end_mib"] = mib(broker.rss())
    report["vmhwm_mib"] = mib(broker.status()["VmHWM"])
    sampler.cancel()
    out = args.out or f"flood-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    print()
    print(summary_md(report))
    log(f"report: {out}")


def summary_md(rep):
    out = [f"broker RSS when flood.py started: {rep['rss_start_mib']} MiB; VmHWM at the end: {rep['vmhwm_mib']} MiB", "",
           "| phase | RSS idle before MiB | peak during MiB | after MiB (s) | within 2x of idle before / of start |",
           "|---|---:|---:|---:|---|"]
    yn = lambda b: "yes" if b else "**no**"
    for k, v in rep.items():
        if isinstance(v, dict) and "rss_idle_mib" in v:
            out.append(f"| {k} | {v['rss_idle_mib']} | {v['rss_peak_during_mib']} | {v['rss_after_mib']} ({v['after_s']:.0f}) "
                       f"| {yn(v['within_2x_idle'])} / {yn(v['within_2x_start'])} |")
    out.append("")
    out.append("| phase | probes | outcomes | answered latency s (p50 / p99 / max) | answered > 1 s |")
    out.append("|---|---:|---|---|---:|")
    for k, v in rep.items():
        if isinstance(v, dict) and "probes" in v:
            p = v["probes"]
            lat = p["answered_latency_s"]
            ls = f"{lat['p50']} / {lat['p99']} / {lat['max']}" if lat else "-"
            out.append(f"| {k} | {p['probes']} | {', '.join(f'{a}: {b}' for a, b in sorted(p['outcomes'].items()))} | {ls} | {p['slow_over_1s']} |")
    for k, v in rep.items():
        if isinstance(v, dict) and "outcomes" in v and "attempts" in v:
            out.append("")
            out.append(f"{k}: {v['attempts']} flood connections in {v['duration_s']:.0f} s; outcomes: "
                       + ", ".join(f"{a}: {b}" for a, b in sorted(v["outcomes"].items()))
                       + f"; broker fds at most {v['broker_max_fds']}; ListenOverflows +{v['listen_overflows']}")
    return "\n".join(out)


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "_worker":
        worker_main(json.loads(sys.argv[2]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["keepalive", "slowbody", "all"])
    ap.add_argument("--url", required=True, help="the broker, e.g. http://127.0.0.1:8080")
    ap.add_argument("--pid", type=int, required=True, help="the broker's process id (for /proc/PID/status)")
    ap.add_argument("--token", default=os.environ.get("FLOOD_TOKEN"), help="a JWT (env FLOOD_TOKEN): probes and keep-alive use GET /v1/usage")
    ap.add_argument("--connections", type=int, default=10000, help="keep-alive connections per burst [10000]")
    ap.add_argument("--bursts", type=int, default=6, help="keep-alive bursts [6]")
    ap.add_argument("--hold", type=float, default=3.0, help="seconds each burst is held once all are open [3]")
    ap.add_argument("--gap", type=float, default=2.0, help="seconds between bursts [2]")
    ap.add_argument("--flood", type=int, default=20000, help="slow-body connections at once [20000]")
    ap.add_argument("--mode", choices=["stall", "trickle", "both"], default="both", help="slow-body variant [both]")
    ap.add_argument("--duration", type=float, default=40.0, help="seconds the slow-body flood lasts [40]")
    ap.add_argument("--reconnect", type=lambda s: s not in ("0", "no", "false"), default=True,
                    help="reopen a flood connection when it ends [1]")
    ap.add_argument("--first-bytes", type=int, default=5, help="body bytes sent before stalling [5]")
    ap.add_argument("--after", type=float, default=60.0, help="seconds to wait before the 'after' RSS [60]")
    ap.add_argument("--procs", type=int, default=0, help="client processes [ceil(connections / 5000)]")
    ap.add_argument("--conc", type=int, default=256, help="connects in flight per client process [256]")
    ap.add_argument("--connect-timeout", type=float, default=15.0)
    ap.add_argument("--request-timeout", type=float, default=15.0)
    ap.add_argument("--probe-every", type=float, default=1.0)
    ap.add_argument("--probe-timeout", type=float, default=10.0, help="a probe not answered by then is 'stuck' [10]")
    ap.add_argument("--print-every", type=int, default=5, help="timeline line every N seconds [5]")
    ap.add_argument("--out", help="JSON report path [flood-<time>.json]")
    args = ap.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
