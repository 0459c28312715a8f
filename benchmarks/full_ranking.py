"""Seconds to rank every item for every user of the NCF ml-1m files (full-ranking protocol).

    DEEPMF_DATA_DIR=../shared/data .venv/bin/python -m benchmarks.full_ranking \
        [--models gmf,mlp,neumf,dmf,cfnet-ml] [--repeats 3] [--old REF]

Times ``evaluate_full`` (score all 3,706 items for each of the 6,040 test users in batches
of 1,024, mask training items, take the top 10, compute the metrics) for models built with
seed 0 at their default sizes: the cost does not depend on the weights. The first call
(warm-up: thread pools, allocator) is reported apart; ``seconds`` is the median of the
repeats after it. With ``--old REF`` the same runs, in a fresh process, use commit REF's
``src/`` (checked out into a temporary worktree), and each model reports the time ratio and
the largest difference between the two versions' metrics. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks._common import ROOT, data_dir, emit, machine, old_checkout


def measure(models: list[str], repeats: int) -> dict:
    import torch

    from deepmf.evaluate import evaluate_full
    from deepmf.models import build_model
    from deepmf.readers import load_dataset
    from deepmf.split import make_splits

    split = make_splits(load_dataset("ncf:deepcf/ml-1m", data_dir()), "given")[0]
    results = {}
    for name in models:
        torch.manual_seed(0)
        model = build_model(name, split.train)
        start = time.perf_counter()
        metrics = evaluate_full(model, split.train, split.test)
        first = time.perf_counter() - start
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            evaluate_full(model, split.train, split.test)
            times.append(time.perf_counter() - start)
        results[name] = {"seconds": round(statistics.median(times), 3),
                         "runs": [round(t, 3) for t in times], "first_call": round(first, 3),
                         "metrics": metrics}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="gmf,mlp,neumf,dmf")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--old", help="also time commit OLD's code, in its own process")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    models = args.models.split(",")
    if args.worker:  # the old code's side: plain JSON on stdout
        print(json.dumps(measure(models, args.repeats)))
        return
    result = {"benchmark": "full_ranking", "dataset": "ncf:deepcf/ml-1m",
              "models": measure(models, args.repeats), "machine": machine()}
    if args.old:
        with old_checkout(args.old) as old_src:
            child = subprocess.run(
                [sys.executable, "-m", "benchmarks.full_ranking", "--worker", "--models",
                 args.models, "--repeats", str(args.repeats)],
                cwd=ROOT, capture_output=True, text=True, check=True,
                env={**os.environ, "PYTHONPATH": f"{old_src}{os.pathsep}{ROOT}"})
        old = json.loads(child.stdout)
        result["old"] = {"ref": args.old, "models": old}
        for name, new in result["models"].items():
            new["new_over_old"] = round(new["seconds"] / old[name]["seconds"], 3)
            new["max_metric_difference"] = max(abs(v - old[name]["metrics"][k])
                                               for k, v in new["metrics"].items())
    emit(result)


if __name__ == "__main__":
    main()
