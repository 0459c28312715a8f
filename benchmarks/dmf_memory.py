"""Peak memory of training ``dmf`` on a large synthetic log (no dense users x items anywhere).

Trains DMF (default towers: |I| -> 512 -> 64 and |U| -> 1024 -> 64) with BCE on batches of
positives plus 4 sampled negatives each (the library's ``NegativeSampler`` and loss), drawn
per step rather than for a whole epoch up front, and CPU-fused Adam (no parameter-sized
temporaries), for a bounded number of optimizer steps. Prints one JSON line: peak RSS
(``resource.getrusage``, lifetime peak including data generation), seconds, steps.
The model alone holds 256M parameters (1 GB) plus gradients and two Adam states. Usage:

    python benchmarks/dmf_memory.py [--users 200000 --items 100000 --interactions 5000000]
                                    [--steps 20 --batch-size 16384]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import torch

from deepmf.losses import bce
from deepmf.models import build_model
from deepmf.readers.synthetic import synthetic
from deepmf.sampling import NegativeSampler


def peak_rss_gb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return kb / (1 << 30) if sys.platform == "darwin" else kb / (1 << 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=5_000_000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16384)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    data = synthetic(args.users, args.items, args.interactions, seed=0).interactions.implicit()
    rss_data = peak_rss_gb()
    torch.manual_seed(0)
    model = build_model("dmf", data)
    sampler = NegativeSampler(data)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.002, fused=True)
    generator = torch.Generator().manual_seed(0)
    users_all, items_all = torch.from_numpy(data.users), torch.from_numpy(data.items)
    n_pos = args.batch_size // 5  # each positive brings 4 negatives
    built = time.perf_counter()
    losses = []
    for _ in range(args.steps):
        rows = torch.randint(len(data), (n_pos,), generator=generator)
        users, items = users_all[rows], items_all[rows]
        negatives = sampler.sample(users, 4, generator)  # [n_pos, 4]
        batch_users = torch.cat([users, users.repeat_interleave(4)])
        batch_items = torch.cat([items, negatives.reshape(-1)])
        labels = torch.cat([torch.ones(n_pos), torch.zeros(4 * n_pos)])
        loss = bce(model(batch_users, batch_items), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    steps = len(losses)
    end = time.perf_counter()
    print(json.dumps({
        "benchmark": "dmf_memory",
        "users": args.users, "items": args.items, "interactions": len(data),
        "nnz": int(data.csr.nnz), "parameters": sum(p.numel() for p in model.parameters()),
        "steps": steps, "batch_size": args.batch_size, "optimizer": "adam",
        "scope": f"{steps} optimizer steps (batches drawn per step)", "fused_adam": True,
        "peak_rss_gb": round(peak_rss_gb(), 3), "peak_rss_gb_after_data": round(rss_data, 3),
        "setup_seconds": round(built - start, 1), "seconds_per_step": round(
            (end - built) / max(steps, 1), 2),
        "seconds": round(end - start, 1), "first_loss": losses[0], "last_loss": losses[-1],
        "threads": args.threads,
    }))


if __name__ == "__main__":
    main()
