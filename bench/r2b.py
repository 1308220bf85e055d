#!/usr/bin/env python3
"""Helpers for bench/run.sh (python3 standard library only).

  r2b.py setup BASE TOKEN OUT.json                      the fixtures the oha scenarios need
  r2b.py prepare-complete BASE TOKEN N OUT.ids          N put intents whose bytes are uploaded
  r2b.py complete BASE TOKEN IDS FROM COUNT CONC OUT    POST .../complete once per id (201 path)
  r2b.py sample --broker P[,P] [--pg PM] [--s3 P]       CPU ticks / RSS counters, one line
  r2b.py one OHA.json                                   one-line summary of one run
  r2b.py summarize RESULTS_DIR                          Markdown tables (medians of the repeats)

`complete` writes the same JSON shape as `oha --output-format json` (the fields the summary
reads), so both kinds of run are summarised alike. Tokens come from `r2-broker dev token`.
"""
import asyncio
import json
import os
import statistics
import sys
import time
import urllib.parse

# ----------------------------------------------------------------------------- HTTP/1.1 client


class Conn:
    """One keep-alive HTTP/1.1 connection (enough for the broker and s3s-fs)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.r = self.w = None

    async def _open(self):
        self.r, self.w = await asyncio.open_connection(self.host, self.port)

    def close(self):
        if self.w is not None:
            self.w.close()
            self.r = self.w = None

    async def request(self, method, target, headers=(), body=b""):
        if self.w is None:
            await self._open()
        lines = [f"{method} {target} HTTP/1.1", f"host: {self.host}:{self.port}"]
        names = set()
        for k, v in headers:
            lines.append(f"{k}: {v}")
            names.add(k.lower())
        if "content-length" not in names and (body or method in ("POST", "PUT")):
            lines.append(f"content-length: {len(body)}")
        self.w.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.w.drain()
        status_line = await self.r.readline()
        if not status_line:
            self.close()
            raise ConnectionError("connection closed")
        status = int(status_line.split()[1])
        length, chunked, close = None, False, False
        while True:
            line = await self.r.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            k, v = k.strip().lower(), v.strip()
            if k == "content-length":
                length = int(v)
            elif k == "transfer-encoding" and "chunked" in v.lower():
                chunked = True
            elif k == "connection" and v.lower() == "close":
                close = True
        if chunked:
            data = b""
            while True:
                size = int((await self.r.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.r.readline()
                    break
                data += await self.r.readexactly(size)
                await self.r.readline()
        elif length is not None:
            data = await self.r.readexactly(length) if length else b""
        elif method == "HEAD" or status in (204, 304):
            data = b""
        else:
            data = await self.r.read()
            close = True
        if close:
            self.close()
        return status, data


def split_url(url: str):
    u = urllib.parse.urlsplit(url)
    target = u.path + (("?" + u.query) if u.query else "")
    return u.hostname, u.port or 80, target


async def call_json(conn, method, target, token, body=None, expect=(200, 201)):
    headers = [("authorization", f"Bearer {token}")]
    raw = b""
    if body is not None:
        raw = json.dumps(body).encode()
        headers.append(("content-type", "application/json"))
    status, data = await conn.request(method, target, headers, raw)
    if status not in expect:
        raise SystemExit(f"r2b.py: {method} {target} -> {status} {data[:400]!r}")
    return json.loads(data) if data else None


# 16 bytes: what every fixture object holds. It starts as a JPEG does (SOI, APP0), so the
# `sniffed` profile's content check in `complete` passes it as the image/jpeg it declares.
SMALL = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00r2b!!"


async def put_object(conns: dict, intent: dict, body: bytes = SMALL):
    host, port, target = split_url(intent["url"])
    key = (host, port)
    if key not in conns:
        conns[key] = Conn(host, port)
    status, data = await conns[key].request("PUT", target, list(intent["headers"].items()), body)
    if status != 200:
        raise SystemExit(f"r2b.py: PUT to the store -> {status} {data[:400]!r}")


def put_body(size: int = len(SMALL), name: str = "photo.jpg", profile=None):
    body = {"filename": name, "content_type": "image/jpeg", "size": size, "method": "put"}
    if profile:
        body["profile"] = profile
    return body


# ----------------------------------------------------------------------------- setup


async def setup(base, token, out, parts_size):
    host, port, _ = split_url(base)
    c = Conn(host, port)
    store = {}
    intent = await call_json(c, "POST", "/v1/uploads", token, put_body(), expect=(201,))
    await put_object(store, intent)
    asset = await call_json(c, "POST", f"/v1/uploads/{intent['upload_id']}/complete", token, {}, expect=(201,))
    again = await call_json(c, "POST", f"/v1/uploads/{intent['upload_id']}/complete", token, {}, expect=(200,))
    assert again["id"] == asset["id"], (again, asset)
    dl = await call_json(c, "GET", f"/v1/assets/{asset['id']}/download-url", token)
    assert dl["url"].startswith("http"), dl
    mp = await call_json(c, "POST", "/v1/uploads", token,
                         {"filename": "big.bin", "content_type": "application/octet-stream",
                          "size": parts_size, "method": "multipart"}, expect=(201,))
    if (mp.get("part_count") or 0) < 100:
        raise SystemExit(f"r2b.py: multipart intent of {parts_size} B has {mp.get('part_count')} parts (< 100)")
    parts = await call_json(c, "POST", f"/v1/uploads/{mp['upload_id']}/parts", token,
                            {"part_numbers": list(range(1, 101))})
    assert len(parts["parts"]) == 100 and parts["parts"][0]["url"].startswith("http"), parts
    for conn in [c, *store.values()]:
        conn.close()
    fixtures = {"asset_id": asset["id"], "completed_upload_id": intent["upload_id"],
                "parts_upload_id": mp["upload_id"], "part_count": mp["part_count"],
                "part_size": mp["part_size"]}
    with open(out, "w") as f:
        json.dump(fixtures, f, indent=1)
    print(json.dumps(fixtures))


async def prepare_complete(base, token, n, out, conc=16, profile=None):
    """N put intents (batches of 100) with their 16 bytes uploaded; ids to OUT, one a line.
    PROFILE: the intents' profile (default: none, the `default` profile)."""
    host, port, _ = split_url(base)
    intents = []
    batches = [min(100, n - i) for i in range(0, n, 100)]

    async def creator(queue):
        c = Conn(host, port)
        while queue:
            k = queue.pop()
            body = {"uploads": [put_body(profile=profile) for _ in range(k)]}
            res = await call_json(c, "POST", "/v1/uploads/batch", token, body, expect=(200,))
            for r in res["results"]:
                if "upload" not in r:
                    raise SystemExit(f"r2b.py: batch item failed: {r}")
                intents.append(r["upload"])
        c.close()

    q = list(batches)
    await asyncio.gather(*(creator(q) for _ in range(min(4, len(q)) or 1)))

    async def uploader(queue):
        conns = {}
        while queue:
            await put_object(conns, queue.pop())
        for c in conns.values():
            c.close()

    q = list(intents)
    await asyncio.gather(*(uploader(q) for _ in range(conc)))
    with open(out, "w") as f:
        for it in intents:
            f.write(it["upload_id"] + "\n")
    print(len(intents))


# ----------------------------------------------------------------------------- load driver


def oha_like(lat, codes, errors, wall):
    lat = sorted(lat)

    def pct(p):
        if not lat:
            return None
        return lat[min(len(lat) - 1, max(0, int(round(p / 100.0 * len(lat) + 0.5)) - 1))]

    n = sum(codes.values())
    return {
        "summary": {"successRate": (n / (n + sum(errors.values()))) if n else 0.0, "total": wall,
                    "requestsPerSec": (n + sum(errors.values())) / wall if wall else 0.0,
                    "average": statistics.fmean(lat) if lat else None,
                    "fastest": lat[0] if lat else None, "slowest": lat[-1] if lat else None},
        "latencyPercentiles": {f"p{p:g}": pct(p) for p in (10, 25, 50, 75, 90, 95, 99, 99.9)},
        "statusCodeDistribution": {str(k): v for k, v in sorted(codes.items())},
        "errorDistribution": errors,
        "driver": "bench/r2b.py (python asyncio, HTTP/1.1 keep-alive)",
    }


async def drive(host, port, requests, conc, timeout):
    """Send each request once over `conc` keep-alive connections; oha-like result."""
    lat, codes, errors = [], {}, {}
    it = iter(requests)

    async def worker():
        c = Conn(host, port)
        for method, target, headers, body in it:
            t0 = time.perf_counter()
            try:
                status, _ = await asyncio.wait_for(c.request(method, target, headers, body), timeout)
            except Exception as e:  # counted, not hidden
                c.close()
                k = type(e).__name__
                errors[k] = errors.get(k, 0) + 1
                continue
            lat.append(time.perf_counter() - t0)
            codes[status] = codes.get(status, 0) + 1
        c.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return oha_like(lat, codes, errors, time.perf_counter() - t0)


def complete(base, token, ids_file, start, count, conc, out, timeout=5.0):
    host, port, _ = split_url(base)
    with open(ids_file) as f:
        ids = [l.strip() for l in f if l.strip()][start:start + count]
    if len(ids) < count:
        raise SystemExit(f"r2b.py: {ids_file} has too few ids for {start}+{count}")
    hdr = [("authorization", f"Bearer {token}"), ("content-type", "application/json")]
    reqs = (("POST", f"/v1/uploads/{i}/complete", hdr, b"{}") for i in ids)
    res = asyncio.run(drive(host, port, reqs, conc, timeout))
    with open(out, "w") as f:
        json.dump(res, f)


# ----------------------------------------------------------------------------- /proc sampling


def stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()  # fields from 3 (state) on


def ticks(pid, children_waited=False):
    try:
        f = stat_fields(pid)
    except OSError:
        return 0
    t = int(f[11]) + int(f[12])  # utime + stime
    if children_waited:
        t += int(f[13]) + int(f[14])  # cutime + cstime: exited (reaped) children
    return t


def pg_ticks(postmaster):
    """All processes of the cluster: the postmaster (with its reaped children) + live children."""
    total = ticks(postmaster, children_waited=True)
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if int(stat_fields(d)[1]) == postmaster:
                    total += ticks(d)
            except (OSError, IndexError):
                pass
    return total


def status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def machine_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]) - idle, sum(v[:8])


def sample(args):
    opts = dict(zip(args[::2], args[1::2]))
    brokers = [int(p) for p in opts.get("--broker", "").split(",") if p]
    pm = int(opts.get("--pg", "0") or 0)
    s3 = int(opts.get("--s3", "0") or 0)
    busy, total = machine_jiffies()
    print(sum(ticks(p) for p in brokers), pg_ticks(pm) if pm else 0, ticks(s3) if s3 else 0, busy, total,
          sum(status_kb(p, "VmRSS") for p in brokers), sum(status_kb(p, "VmHWM") for p in brokers))


# ----------------------------------------------------------------------------- summaries


def oha_numbers(path):
    with open(path) as f:
        d = json.load(f)
    codes = {int(k): v for k, v in (d.get("statusCodeDistribution") or {}).items()}
    ok = sum(v for k, v in codes.items() if 200 <= k < 300)
    non2xx = sum(v for k, v in codes.items() if not 200 <= k < 300)
    errs = {k: v for k, v in (d.get("errorDistribution") or {}).items() if k != "aborted due to deadline"}
    pct = d.get("latencyPercentiles") or {}
    ms = lambda s: None if s is None else s * 1000.0
    return {"rps": d["summary"]["requestsPerSec"], "ok": ok, "total": ok + non2xx + sum(errs.values()),
            "errors": non2xx + sum(errs.values()), "p50": ms(pct.get("p50")), "p99": ms(pct.get("p99")),
            "codes": codes, "err_detail": {**{str(k): v for k, v in codes.items() if not 200 <= k < 300}, **errs}}


def one(path):
    n = oha_numbers(path)
    f = lambda x: "-" if x is None else f"{x:.2f}"
    return (f"{n['rps']:.0f} req/s p50={f(n['p50'])}ms p99={f(n['p99'])}ms ok={n['ok']} "
            f"errors={n['errors']}{' ' + str(n['err_detail']) if n['errors'] else ''}")


def read_tsv(path):
    with open(path) as f:
        rows = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    return [dict(zip(rows[0], r)) for r in rows[1:]]


def fmt(x, nd=0):
    return "-" if x is None else f"{x:,.{nd}f}"


def run_numbers(rd, r, tick_us):
    """One row of runs.tsv: oha numbers (several files for `mixed`) + CPU per request."""
    parts = [oha_numbers(os.path.join(rd, j)) for j in r["json"].split(",")]
    total = sum(p["total"] for p in parts)
    n = {
        "rps": sum(p["rps"] for p in parts), "total": total, "errors": sum(p["errors"] for p in parts),
        # mixed: p50 weighted by requests (approximate), p99 the worst component's (upper bound)
        "p50": (sum((p["p50"] or 0) * p["total"] for p in parts) / total) if total else None,
        "p99": max((p["p99"] or 0) for p in parts) if parts else None,
        "err_detail": {}, "parts": parts, "components": (r.get("components") or "").split(","),
    }
    for p in parts:
        for k, v in p["err_detail"].items():
            n["err_detail"][k] = n["err_detail"].get(k, 0) + v
    per = lambda key: (int(r[key]) * tick_us / total) if total and r.get(key) not in (None, "", "-") else None
    n["broker_us"], n["pg_us"], n["s3_us"] = per("broker_ticks"), per("pg_ticks"), per("s3_ticks")
    db, dt = int(r["busy_jiffies"]), int(r["total_jiffies"])
    n["busy_pct"] = 100.0 * db / dt if dt else None
    n["rss_kb"], n["hwm_kb"] = int(r["rss_kb"]), int(r["hwm_kb"])
    return n


def targets(groups, meta_path, col):
    """The issue's targets, from the medians above (matrix mode only)."""
    lines = []
    mark = lambda ok: "met" if ok else "**missed**"
    cp = sorted((c, s, g) for (s, c), g in groups.items() if s in ("create-put", "create-put-owners"))
    if cp:
        for c, s, g in cp:
            us = col(g, "broker_us")
            if us is not None:
                lines.append(f"| broker CPU per create-intent, {s}, c={c} | ≤ 60 µs | {us:,.0f} µs "
                             f"(+ PostgreSQL {fmt(col(g, 'pg_us'))} µs) | {mark(us <= 60)} |")
        best = max(col(g, "rps") for c, s, g in cp)
        lines.append(f"| intents/s (broker pinned to one core; the whole-machine figure is `--scale`) "
                     f"| ≥ 8,000 | {best:,.0f} | {mark(best >= 8000)} |")
    sc = [(s, g) for (s, c), g in groups.items() if s.startswith("create-put") and " broker" in s]
    if sc:
        s, g = max(sc, key=lambda x: col(x[1], "rps"))
        best = col(g, "rps")
        lines.append(f"| intents/s on the whole machine (unpinned; best: {s}) | ≥ 8,000 | {best:,.0f} "
                     f"(broker {fmt(col(g, 'broker_us'))} + PostgreSQL {fmt(col(g, 'pg_us'))} µs/req) | {mark(best >= 8000)} |")
    p100 = sorted((c, g) for (s, c), g in groups.items() if s == "parts-100")
    for c, g in p100:
        us = col(g, "broker_us")
        if us:
            per_core = 100 * 1e6 / us
            lines.append(f"| part URLs/s per core, batches of 100, c={c} (100 x 10^6 / broker µs per request; "
                         f"measured: {100 * col(g, 'rps'):,.0f}/s) | ≥ 50,000 | {per_core:,.0f} | {mark(per_core >= 50000)} |")
    for (s, c), g in sorted(groups.items()):
        if c == 64:
            p99 = col(g, "p99")
            if p99 is not None:
                lines.append(f"| p99 at c=64, {s} | ≤ 10 ms | {p99:,.2f} ms | {mark(p99 <= 10)} |")
    if os.path.exists(meta_path):
        m = dict(l.rstrip("\n").split("\t", 1) for l in open(meta_path) if "\t" in l)
        if m.get("hwm_kb", "").isdigit():
            hwm = int(m["hwm_kb"]) / 1024
            lines.append(f"| broker RSS under load (peak VmHWM) | ≤ 35 MiB | {hwm:,.1f} MiB | {mark(hwm <= 35)} |")
    if lines:
        print()
        print("Against the issue's targets (medians of the repeats):")
        print()
        print("| target | wanted | measured | |")
        print("|---|---:|---:|---|")
        print("\n".join(lines))


def summarize(rd):
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    runs = read_tsv(os.path.join(rd, "runs.tsv"))
    groups, order = {}, []
    for r in runs:
        key = (r["scenario"], int(r["concurrency"]))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(run_numbers(rd, r, tick_us))
    med = lambda xs: statistics.median(xs) if xs else None
    col = lambda g, k: med([x[k] for x in g if x[k] is not None])
    print("| scenario | conc | req/s (median) | min..max | p50 ms | p99 ms | errors | broker CPU µs/req "
          "| PostgreSQL CPU µs/req | s3s-fs CPU µs/req | machine busy % | broker RSS after MiB | reps |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in sorted(order, key=lambda k: (order.index((k[0], min(c for s, c in order if s == k[0]))), k[1])):
        g = groups[key]
        rps = [x["rps"] for x in g]
        errors = sum(x["errors"] for x in g)
        detail = {}
        for x in g:
            for k, v in x["err_detail"].items():
                detail[k] = detail.get(k, 0) + v
        err_s = str(errors) + (f" ({', '.join(f'{k}: {v}' for k, v in detail.items())})" if errors else "")
        print(f"| {key[0]} | {key[1]} | {fmt(med(rps))} | {fmt(min(rps))}..{fmt(max(rps))} "
              f"| {fmt(col(g, 'p50'), 2)} | {fmt(col(g, 'p99'), 2)} | {err_s} | {fmt(col(g, 'broker_us'))} "
              f"| {fmt(col(g, 'pg_us'))} | {fmt(col(g, 's3_us'))} | {fmt(col(g, 'busy_pct'))} "
              f"| {fmt(col(g, 'rss_kb') / 1024, 1)} | {len(g)} |")
    meta_path = os.path.join(rd, "meta.tsv")
    if os.path.exists(meta_path):
        m = dict(l.rstrip("\n").split("\t", 1) for l in open(meta_path) if "\t" in l)
        mib = lambda k: fmt(int(m[k]) / 1024, 1) if m.get(k, "").isdigit() else "-"
        print()
        print(f"Broker RSS: {mib('rss_start_kb')} MiB after start, {mib('rss_before_kb')} MiB before load "
              f"(fixtures made), peak {mib('hwm_kb')} MiB (VmHWM), {mib('rss_after_kb')} MiB after the last run.")
    targets(groups, meta_path, col)
    mixed = [(k, groups[k]) for k in order if k[0] == "mixed"]
    if mixed:
        print()
        print("`mixed`, per component (median req/s of the repeats; each component is its own oha process):")
        print()
        print("| conc | component | req/s | p50 ms | p99 ms | errors |")
        print("|---:|---|---:|---:|---:|---:|")
        for (s, c), g in mixed:
            for i, name in enumerate(g[0]["components"]):
                ps = [x["parts"][i] for x in g if i < len(x["parts"])]
                print(f"| {c} | {name} | {fmt(med([p['rps'] for p in ps]))} | {fmt(med([p['p50'] for p in ps]), 2)} "
                      f"| {fmt(med([p['p99'] for p in ps]), 2)} | {sum(p['errors'] for p in ps)} |")


# ----------------------------------------------------------------------------- main


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return
    cmd, a = argv[0], argv[1:]
    if cmd == "setup":
        asyncio.run(setup(a[0], a[1], a[2], int(os.environ.get("PARTS_SIZE", 2 * 1024**3))))
    elif cmd == "prepare-complete":
        asyncio.run(prepare_complete(a[0], a[1], int(a[2]), a[3], profile=a[4] if len(a) > 4 else None))
    elif cmd == "complete":
        complete(a[0], a[1], a[2], int(a[3]), int(a[4]), int(a[5]), a[6])
    elif cmd == "sample":
        sample(a)
    elif cmd == "one":
        print(one(a[0]))
    elif cmd == "summarize":
        summarize(a[0])
    else:
        raise SystemExit(f"r2b.py: unknown command {cmd!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
