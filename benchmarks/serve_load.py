"""Load test of ``deepmf serve``: a bounded burst of recommendation requests on loopback.

Starts the server on 127.0.0.1 (a free port) with a trained ml-100k run, sends
``--requests`` GET /users/{id}/recommendations?k=10 requests with ``--concurrency`` in
flight (httpx, asyncio), cycling over every user, and prints JSON: requests/s, latency
percentiles and the error count. Without ``--run`` it first trains a small biased-mf run
on ml-100k (needs DEEPMF_DATA_DIR or the dataset in the cache).

    python benchmarks/serve_load.py [--run RUN_DIR] [--requests 5000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

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


def start_server(run_dir: Path, port: int, cpus: set[int] | None) -> subprocess.Popen:
    command = [sys.executable, "-c", CLI, "serve", str(run_dir), "--port", str(port)]
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


async def burst(base: str, users: list, n: int, concurrency: int, k: int,
                time_limit: float) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10.0) as client:
        start = time.perf_counter()

        async def worker():
            nonlocal errors, next_index
            while next_index < n and time.perf_counter() - start < time_limit:
                user = users[next_index % len(users)]
                next_index += 1
                t0 = time.perf_counter()
                try:
                    response = await client.get(f"/users/{user}/recommendations",
                                                params={"k": k})
                    ok = response.status_code == 200 and len(response.json()["items"]) == k
                except (httpx.HTTPError, ValueError, KeyError):
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += not ok

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, errors, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="run directory (default: train one)")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds, at most")
    parser.add_argument("--pin", action="store_true",
                        help="pin the server to CPU 0 and this client to CPU 1")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run or train(Path(tmp) / "run")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        pinned = args.pin and len(os.sched_getaffinity(0)) >= 2
        server = start_server(run_dir, port, {0} if pinned else None)
        try:
            if pinned:
                os.sched_setaffinity(0, {1})
            wait_healthy(base, server)
            model = httpx.get(f"{base}/model").json()
            users = httpx.get(f"{base}/users", params={"limit": 100_000}).json()["users"]
            asyncio.run(burst(base, users, args.warmup, args.concurrency, args.k, 30.0))
            latencies, errors, seconds = asyncio.run(
                burst(base, users, args.requests, args.concurrency, args.k, args.time_limit))
        finally:
            server.terminate()
            server.wait(timeout=30)

    print(json.dumps({
        "benchmark": "serve_load", "endpoint": "/users/{id}/recommendations",
        "model": model["model"], "dataset": model["dataset"], "k": args.k,
        "requests": len(latencies), "concurrency": args.concurrency,
        "seconds": round(seconds, 3), "requests_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(1000 * percentile(latencies, 0.50), 2),
        "p90_ms": round(1000 * percentile(latencies, 0.90), 2),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 2),
        "max_ms": round(1000 * max(latencies), 2), "errors": errors,
        "cpus": len(os.sched_getaffinity(0)) if not pinned else 2, "pinned": pinned,
    }, indent=2))


if __name__ == "__main__":
    main()
