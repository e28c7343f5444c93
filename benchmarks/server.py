"""Benchmark: the HTTP server's ``ask`` on a cached twin (the example twin) under 1, 4 and 16 concurrent clients.

Starts ``python -m fastreasonseg serve`` on a free loopback port with a temporary store and the offline default
reasoner, warms it up (model load + the twin's prompt prefix), then for each concurrency level sends a bounded
number of ``POST /twins/example/ask`` requests from that many client threads (httpx, one connection each),
rotating through a few questions. Reports requests/s, p50/p95/max latency, status codes and the server process's
peak RSS (psutil, sampled every 50 ms). Writes ``benchmarks/results/server.json``.

    python benchmarks/server.py                     # 1, 4, 16 clients; 12/16/32 requests
    python benchmarks/server.py --ask-workers 1 --requests 8,8,16
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
QUERIES = [
    "what would I drink coffee from?",
    "the spoon",
    "what is the cup standing on?",
    "the thing farthest from the camera",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stop_event = threading.Event()

    def current(self) -> int:
        rss = self.proc.memory_info().rss
        for ch in self.proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                rss += ch.memory_info().rss
        return rss

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.peak = max(self.peak, self.current())
            except psutil.Error:
                return
            time.sleep(0.05)


def run_level(url: str, clients: int, requests: int, timeout: float) -> dict:
    lock = threading.Lock()
    counter = [0]
    lat: list[float] = []
    server_ms: list[float] = []
    model_ms: list[float] = []
    codes: dict[str, int] = {}

    def client() -> None:
        with httpx.Client(base_url=url, timeout=timeout) as c:
            while True:
                with lock:
                    i = counter[0]
                    if i >= requests:
                        return
                    counter[0] += 1
                t0 = time.perf_counter()
                try:
                    r = c.post("/twins/example/ask", json={"query": QUERIES[i % len(QUERIES)]})
                    code = str(r.status_code)
                except httpx.HTTPError as exc:
                    r, code = None, type(exc).__name__
                dt = time.perf_counter() - t0
                with lock:
                    codes[code] = codes.get(code, 0) + 1
                    if r is not None and r.status_code == 200:
                        lat.append(dt)
                        t = r.json().get("timings_ms", {})
                        server_ms.append(t.get("server_ms", 0.0))
                        model_ms.append(t.get("total_ms", 0.0))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {
        "clients": clients,
        "requests": requests,
        "ok": len(lat),
        "codes": codes,
        "wall_s": round(wall, 3),
        "req_per_s": round(len(lat) / wall, 3) if wall > 0 else 0.0,
        "p50_ms": round(_pct(lat, 0.5) * 1000, 1),
        "p95_ms": round(_pct(lat, 0.95) * 1000, 1),
        "max_ms": round(max(lat) * 1000, 1) if lat else None,
        "model_p50_ms": round(_pct(model_ms, 0.5), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default="1,4,16", help="concurrency levels")
    ap.add_argument("--requests", default="12,16,32", help="requests per level (bounded)")
    ap.add_argument("--ask-workers", type=int, default=2)
    ap.add_argument("--max-queued-asks", type=int, default=64)
    ap.add_argument("--reasoner", default=None)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "server.json")
    args = ap.parse_args()
    levels = [int(x) for x in args.clients.split(",")]
    counts = [int(x) for x in args.requests.split(",")]
    if len(counts) != len(levels):
        ap.error("--requests needs one count per --clients level")

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="frs-bench-server-") as tmp:
        cmd = [sys.executable, "-m", "fastreasonseg", "serve", "--port", str(port), "--store", f"{tmp}/store"]
        cmd += ["--ask-workers", str(args.ask_workers), "--max-queued-asks", str(args.max_queued_asks)]
        cmd += ["--log-level", "warning"] + (["--reasoner", args.reasoner] if args.reasoner else [])
        log = open(f"{tmp}/server.log", "wb")  # noqa: SIM115
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            t_start = time.perf_counter()
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"server exited:\n{Path(f'{tmp}/server.log').read_text()[-3000:]}")
                try:
                    if httpx.get(url + "/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.perf_counter() - t_start > 120:
                    raise SystemExit("server did not start in 120 s")
                time.sleep(0.2)
            startup_s = time.perf_counter() - t_start
            sampler = RssSampler(proc.pid)
            idle_rss = sampler.current()
            sampler.start()
            t0 = time.perf_counter()
            with httpx.Client(base_url=url, timeout=args.timeout) as c:
                first = c.post("/twins/example/ask", json={"query": QUERIES[0]})
                first.raise_for_status()
                cold_ms = (time.perf_counter() - t0) * 1000
                for q in QUERIES:  # warm the other questions' paths too
                    c.post("/twins/example/ask", json={"query": q}).raise_for_status()
            rows = []
            for n, k in zip(levels, counts, strict=True):
                row = run_level(url, n, k, args.timeout)
                row["peak_rss_mb_so_far"] = round(sampler.peak / 2**20, 1)
                rows.append(row)
                print(f"  {n:>2} clients: {row['ok']}/{k} ok, {row['req_per_s']} req/s", flush=True)
            sampler.stop_event.set()
            sampler.join()
            health = httpx.get(url + "/health", timeout=10).json()
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()

    print()
    print(f"server ask on the example twin (ask workers {args.ask_workers}, model calls serialised)")
    print(f"startup {startup_s:.1f} s, first ask (loads the reasoner) {cold_ms:.0f} ms")
    print(f"idle RSS {idle_rss / 2**20:.0f} MB")
    head = ("clients", "requests", "ok", "req/s", "p50 ms", "p95 ms", "max ms", "model p50")
    print("{:>7} {:>8} {:>4} {:>7} {:>8} {:>8} {:>8} {:>9}".format(*head))
    for r in rows:
        print(
            f"{r['clients']:>7} {r['requests']:>8} {r['ok']:>4} {r['req_per_s']:>7.2f} {r['p50_ms']:>8.0f} "
            f"{r['p95_ms']:>8.0f} {r['max_ms'] or 0:>8.0f} {r['model_p50_ms']:>9.0f}"
        )
    print(f"peak server RSS {sampler.peak / 2**20:.0f} MB")
    out = {
        "benchmark": "server ask on the example twin (loopback HTTP)",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        },
        "config": {
            "ask_workers": args.ask_workers,
            "max_queued_asks": args.max_queued_asks,
            "reasoner": args.reasoner or "default (offline SmolLM2-135M on llama.cpp)",
            "queries": QUERIES,
        },
        "startup_s": round(startup_s, 2),
        "cold_first_ask_ms": round(cold_ms, 1),
        "idle_rss_mb": round(idle_rss / 2**20, 1),
        "peak_rss_mb": round(sampler.peak / 2**20, 1),
        "levels": rows,
        "health_after": health,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
