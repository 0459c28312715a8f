"""Seconds to rank every item for every user of the NCF ml-1m files (full-ranking protocol).

    DEEPMF_DATA_DIR=../shared/data .venv/bin/python -m benchmarks.full_ranking \
        [--models gmf,mlp,neumf,dmf,cfnet-ml] [--repeats 3]

Times ``evaluate_full`` (score all 3,706 items for each of the 6,040 test users in batches
of 1,024, mask training items, take the top 10, compute the metrics) for freshly built
models at their default sizes: the cost does not depend on the weights. The first call
(warm-up: thread pools, allocator) is reported apart; ``seconds`` is the median of the
repeats after it. Prints JSON.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks._common import data_dir, emit, machine
from deepmf.evaluate import evaluate_full
from deepmf.models import build_model
from deepmf.readers import load_dataset
from deepmf.split import make_splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="gmf,mlp,neumf,dmf")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    dataset = load_dataset("ncf:deepcf/ml-1m", data_dir())
    split = make_splits(dataset, "given")[0]
    results = {}
    for name in args.models.split(","):
        torch.manual_seed(0)
        model = build_model(name, split.train)
        start = time.perf_counter()
        evaluate_full(model, split.train, split.test)
        first = time.perf_counter() - start
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            evaluate_full(model, split.train, split.test)
            times.append(time.perf_counter() - start)
        results[name] = {"seconds": round(statistics.median(times), 3),
                         "runs": [round(t, 3) for t in times], "first_call": round(first, 3)}
    emit({"benchmark": "full_ranking", "dataset": "ncf:deepcf/ml-1m",
          "users": int(len(set(split.test.users.tolist()))), "items": split.train.n_items,
          "models": results, "machine": machine()})


if __name__ == "__main__":
    main()
