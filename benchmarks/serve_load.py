"""Load test of ``deepmf serve``: a bounded burst of recommendation requests on loopback.

Starts the server on 127.0.0.1 (a free port) with a trained ml-100k run, then sends
``--requests`` GET /users/{id}/recommendations?k=10 requests, cycling over every user, over
``--concurrency`` keep-alive httpx connections offering ``--rate`` requests a second in all
(``--rate 0``: each connection sends back to back, which measures saturation), and prints
JSON: requests/s, latency percentiles (counted from when each request was due) and the error
count. Without ``--run`` it first trains a small biased-mf run on ml-100k (needs
DEEPMF_DATA_DIR or the dataset in the cache). Traffic goes to 127.0.0.1 only and is bounded
in count and time.

    python benchmarks/serve_load.py [--run RUN_DIR] [--requests 5000] [--concurrency 16]
                                    [--rate 800]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2 as httpx

CLI = "from deepmf.cli import run; run()"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train(out: Path) -> Path:
    subprocess.run([sys.executable, "-c", CLI, "train", "--model", "biased-mf", "--dataset",
                    "ml-100k", "--split", "u1", "--epochs", "5", "--quiet", "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    return out


def start_server(run_dir: Path, port: int, cpus: set[int] | None,
                 cache_size: int) -> subprocess.Popen:
    command = [sys.executable, "-c", CLI, "serve", str(run_dir), "--port", str(port),
               "--cache-size", str(cache_size)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL,
                            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)


def wait_healthy(base: str, server: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited early with code {server.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server not healthy after {timeout:.0f} s")


def connection(base: str, users: list, k: int, interval: float, phase: float,
               time_limit: float, go, out: list) -> None:
    """One keep-alive connection sending its share of requests, one every ``interval``
    seconds (0: back to back). A request's latency counts from when it was due, so a server
    that falls behind the schedule is charged for the wait (no coordinated omission).

    Requests are built before the clock starts and sent through httpx's transport, so the
    load generator's own cost (URL parsing, cookie jar, redirects: about 1 ms of CPU a
    request in ``httpx.Client``) does not crowd the server out of the shared cores.
    """
    latencies, errors = [], 0
    requests = [httpx.Request("GET", f"{base}/users/{user}/recommendations?k={k}")
                for user in users]
    with httpx.HTTPTransport() as transport:
        transport.handle_request(httpx.Request("GET", f"{base}/health")).read()  # connect
        go.wait()
        start = time.perf_counter() + phase  # connections take turns, not all at once
        deadline = start + time_limit
        for i, request in enumerate(requests):
            now = time.perf_counter()
            if now > deadline:
                break
            t0 = max(now, start + i * interval) if interval else now
            if t0 > now:
                time.sleep(t0 - now)
            try:
                response = transport.handle_request(request)
                body = response.read()
                response.close()
                ok = response.status_code == 200 and len(json.loads(body)["items"]) == k
            except (httpx.HTTPError, ValueError, KeyError):
                ok = False
            latencies.append(time.perf_counter() - t0)
            errors += not ok
    out.append((latencies, errors, time.perf_counter()))


def client(shares: list, time_limit: float, go, results) -> None:
    """One load-generating process: a thread per connection (a blocked socket read lets
    the others run)."""
    sys.setswitchinterval(1e-4)  # a thread whose answer came should not wait 5 ms for the GIL
    out: list = []
    threads = [threading.Thread(target=connection, args=(*share, time_limit, go, out))
               for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(out)


def burst(base: str, users: list, n: int, concurrency: int, k: int, rate: float,
          time_limit: float, processes: int = 2) -> tuple[list[float], int, float]:
    """``n`` requests over ``concurrency`` connections, ``rate`` a second in all (0: as
    fast as they go); (latencies, errors, seconds).

    The connections are threads of a few processes rather than asyncio tasks (httpx's async
    client costs several times more CPU a request) or a process each (a dozen processes
    waking up in turn on two cores is what the latency tail would then measure).
    """
    ctx = multiprocessing.get_context("fork")
    go, results = ctx.Event(), ctx.Queue()
    wanted = [users[i % len(users)] for i in range(n)]
    interval = concurrency / rate if rate else 0.0
    shares = [(base, wanted[c::concurrency], k, interval, c * interval / concurrency)
              for c in range(concurrency)]
    procs = [ctx.Process(target=client, args=(shares[p::processes], time_limit, go, results))
             for p in range(min(processes, concurrency))]
    for proc in procs:
        proc.start()
    time.sleep(2.0)  # let every connection open
    start = time.perf_counter()
    go.set()
    parts = [part for _ in procs for part in results.get(timeout=time_limit + 60)]
    for proc in procs:
        proc.join()
    latencies = [x for part in parts for x in part[0]]
    return latencies, sum(p[1] for p in parts), max(p[2] for p in parts) - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="run directory (default: train one)")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=800.0,
                        help="requests a second offered in all (0: closed loop, flat out)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds, at most")
    parser.add_argument("--cache-size", type=int, default=4096,
                        help="server's answer cache (0: every request computes)")
    parser.add_argument("--pin", action="store_true",
                        help="pin the server to CPU 0 and this client to CPU 1")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run or train(Path(tmp) / "run")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        pinned = args.pin and len(os.sched_getaffinity(0)) >= 2
        server = start_server(run_dir, port, {0} if pinned else None, args.cache_size)
        try:
            if pinned:
                os.sched_setaffinity(0, {1})
            wait_healthy(base, server)
            model = httpx.get(f"{base}/model").json()
            users = httpx.get(f"{base}/users", params={"limit": 100_000}).json()["users"]
            burst(base, users, args.warmup, args.concurrency, args.k, args.rate, 30.0)
            latencies, errors, seconds = burst(base, users, args.requests, args.concurrency,
                                               args.k, args.rate, args.time_limit)
        finally:
            server.terminate()
            server.wait(timeout=30)

    print(json.dumps({
        "benchmark": "serve_load", "endpoint": "/users/{id}/recommendations",
        "model": model["model"], "dataset": model["dataset"], "k": args.k,
        "requests": len(latencies), "concurrency": args.concurrency,
        "offered_per_s": args.rate or None,
        "seconds": round(seconds, 3), "requests_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(1000 * percentile(latencies, 0.50), 2),
        "p90_ms": round(1000 * percentile(latencies, 0.90), 2),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 2),
        "max_ms": round(1000 * max(latencies), 2), "errors": errors,
        "server_cache_size": args.cache_size, "distinct_users": min(len(users), args.requests),
        "cpus": len(os.sched_getaffinity(0)) if not pinned else 2, "pinned": pinned,
    }, indent=2))


if __name__ == "__main__":
    main()
