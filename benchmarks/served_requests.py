"""Milliseconds per one-user recommendation from a loaded run: with the model's scorers
kept (``TrainedModel``, as ``deepmf serve`` and ``deepmf recommend`` answer) against made
afresh for every request (``recommend`` without them, as before), alternating in one
process on one thread.

    .venv/bin/python -m benchmarks.served_requests RUN_DIR [RUN_DIR ...] [--requests 50]
        [--rounds 3]

Each round times ``--requests`` requests of 10 items for users 0, 1, 2, ... each way; a
model's figure is the median over rounds of the mean time a request. ``same_lists`` says
whether both ways gave every user the same items. Prints JSON.
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks._common import emit, machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories (deepmf train --out)")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import torch

    from deepmf.experiment.trained import TrainedModel
    from deepmf.recommend import recommend

    torch.set_num_threads(1)
    result = {"benchmark": "served_requests", "requests": args.requests, "machine": machine(),
              "runs": {}}
    for run in args.runs:
        served = TrainedModel(run, load_data=False)
        users = [u % served.seen.n_users for u in range(args.requests)]
        ways = {"kept": lambda u: served.recommend_indices([u], 10)[0],
                "fresh": lambda u: recommend(served.model, [u], 10, served.exclude)[0][0]}
        seconds: dict[str, list[float]] = {way: [] for way in ways}
        lists: dict[str, list] = {}
        for _ in range(args.rounds):
            for way, ask in ways.items():
                start = time.perf_counter()
                lists[way] = [ask(u) for u in users]
                seconds[way].append((time.perf_counter() - start) / len(users))
        kept_items = [served.item_indices([r.item for r in row]).tolist() for row in lists["kept"]]
        ms = {way: round(1000 * statistics.median(s), 2) for way, s in seconds.items()}
        result["runs"][run] = {"model": served.name, "kept_ms": ms["kept"],
                               "fresh_ms": ms["fresh"],
                               "kept_over_fresh": round(ms["kept"] / ms["fresh"], 3),
                               "same_lists": kept_items == [row.tolist() for row in lists["fresh"]]}
    emit(result)


if __name__ == "__main__":
    main()
