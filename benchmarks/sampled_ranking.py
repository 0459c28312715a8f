"""Seconds and page faults of sampled ranking (each held-out item against its negatives),
by rows per batch, on a log of ml-20m's shape.

    .venv/bin/python -m benchmarks.sampled_ranking [--models biased-mf,neumf]
        [--batch-sizes 1024,default] [--rounds 2] [--calls 3] [--size 20000000]

Each (model, batch size) runs in a fresh process, the batch sizes alternating for
``--rounds`` rounds (the machine's pace drifts, and a process's heap remembers its earlier
allocations, so sizes are never mixed in one process). A process builds the synthetic log
of ``--size`` interactions (``benchmarks/scale.py``'s shape: 138,000 users x 27,000 items at
20M), holds out each user's latest item, draws 100 uniform negatives per user (seed 0),
builds the model with seed 0 at its default size (``biased-mf`` at its ranking recipe's
128 factors; the cost does not depend on the weights) and calls ``evaluate_sampled``
``--calls`` times on one thread, timing each and counting its minor page faults. ``default``
is ``evaluate_sampled``'s own batch (``SAMPLED_PAIRS`` pairs). Prints JSON.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

from benchmarks._common import child_json, child_or_main, emit, machine


def one(model_name: str, batch: str, calls: int, size: int) -> dict:
    """Runs inside the child process."""
    import numpy as np
    import torch

    from deepmf.evaluate import evaluate_sampled
    from deepmf.models import build_model
    from deepmf.readers.synthetic import synthetic
    from deepmf.split import leave_one_out

    torch.set_num_threads(1)
    scale = size / 20_000_000
    users, items = max(100, int(138_000 * scale)), max(100, int(27_000 * scale ** 0.5))
    train, test = leave_one_out(synthetic(users, items, size, seed=0).interactions)
    negatives = np.random.default_rng(0).integers(0, items, (len(test), 100))
    torch.manual_seed(0)
    model = build_model(model_name, train, **({"dim": 128} if model_name == "biased-mf" else {}))
    rows = None if batch == "default" else int(batch)
    seconds, faults = [], []
    for _ in range(calls):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        metrics = evaluate_sampled(model, test, negatives, batch_size=rows)
        seconds.append(round(time.perf_counter() - start, 2))
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return {"seconds": seconds, "page_faults": faults, "hr@10": metrics["hr@10"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="biased-mf,neumf")
    parser.add_argument("--batch-sizes", default="1024,default")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--size", type=int, default=20_000_000)
    args = parser.parse_args()
    result = {"benchmark": "sampled_ranking", "size": args.size, "machine": machine()}
    for name in args.models.split(","):
        runs: dict[str, list[dict]] = {b: [] for b in args.batch_sizes.split(",")}
        for _ in range(args.rounds):
            for batch in runs:
                settings = {"model_name": name, "batch": batch, "calls": args.calls,
                            "size": args.size}
                runs[batch].append(child_json("benchmarks.sampled_ranking", settings))
        result[name] = {
            "same_hr": len({r["hr@10"] for rs in runs.values() for r in rs}) == 1,
            **{batch: {"median_seconds": statistics.median(s for r in rs for s in r["seconds"]),
                       "runs": rs} for batch, rs in runs.items()}}
    emit(result)


if __name__ == "__main__":
    child_or_main(one, main)
