"""One process against several (torchrun, DistributedDataParallel over gloo) on the same data.

    DEEPMF_DATA_DIR=../shared/data .venv/bin/python benchmarks/ddp.py [MODEL] [DATASET] [N]

Trains MODEL (default neumf) on DATASET (default the NCF AMusic files) once in one process
and once under ``torchrun --nproc-per-node N`` (default 2), each with its defaults and one
thread per process, and prints JSON: seconds per epoch, epochs, best epoch and test HR@10 /
NDCG@10 of each, and the ratios. On a machine with N cores busy with other work, expect
the several processes to be slower, not faster: each step's gradient all-reduce costs
about as much as the step itself for embedding-sized models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import data_dir, emit, machine


def run(model: str, dataset: str, processes: int, out: Path) -> dict:
    python = Path(sys.executable)
    command = [str(python.parent / "torchrun"), "--standalone", "--nproc-per-node",
               str(processes)] if processes > 1 else [str(python)]
    command += ["-m", "deepmf", "train", "--model", model, "--dataset", dataset, "--quiet",
                "--out", str(out), "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DEEPMF_DATA_DIR": str(data_dir())}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(done.stderr[-2000:])
    metrics = json.loads((out / "metrics.json").read_text())
    seconds = metrics["epoch_seconds"]
    return {"processes": processes, "wall_seconds": round(wall, 1),
            "seconds_per_epoch": round(sum(seconds) / len(seconds), 3),
            "epochs": len(seconds), "best_epoch": metrics["best_epoch"],
            "hr@10": round(metrics["test"]["hr@10"], 4),
            "ndcg@10": round(metrics["test"]["ndcg@10"], 4)}


def main(model: str, dataset: str, processes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        one = run(model, dataset, 1, Path(tmp) / "one")
        many = run(model, dataset, processes, Path(tmp) / "many")
    emit({"benchmark": "ddp", "model": model, "dataset": dataset, "machine": machine(),
          "single": one, "distributed": many,
          "epoch_time_ratio": round(many["seconds_per_epoch"] / one["seconds_per_epoch"], 2),
          "hr_difference": round(many["hr@10"] - one["hr@10"], 4)})


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else "neumf", args[1] if len(args) > 1 else "ncf:deepcf/AMusic",
         int(args[2]) if len(args) > 2 else 2)
