"""Drawing an epoch's batches: this checkout against an older one, in one run.

    DEEPMF_DATA_DIR=../shared/data .venv/bin/python -m benchmarks.batching [--old REF]
        [--repeats N]

For ``neumf`` and ``biased-mf`` with their NCF ml-1m recipes (batch, negatives), one thread:
the seconds to draw every batch of an epoch (negatives, shuffles, gathers; no training),
the median of ``N`` (default 5) epochs, in this checkout and in ``REF`` (default ddb996a,
before the shuffles were gathered once an epoch with ``index_select``), each in a fresh
process; and whether both drew the same batches (a digest of every tensor). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks._common import ROOT, data_dir, old_checkout

MODELS = ("neumf", "biased-mf")


def one(data: str, repeats: int) -> dict:
    """Runs inside the child process, with the code under test first on ``sys.path``."""
    import hashlib
    import statistics
    import time

    import torch

    from deepmf.experiment.recipes import recipe
    from deepmf.readers.ncf import read_ncf
    from deepmf.tasks import RankingTask

    torch.set_num_threads(1)
    train, _ = read_ncf(Path(data) / "deepcf" / "ml-1m").given["given"]
    result = {}
    for name in MODELS:
        settings = recipe(name, "implicit", n_train=len(train))
        task = RankingTask(train, None, batch_size=settings["batch_size"],
                           device=torch.device("cpu"), num_neg=settings["num_neg"])
        seconds, digest = [], hashlib.sha1()
        for repeat in range(repeats):
            start = time.perf_counter()
            batches = list(task.batches(torch.Generator().manual_seed(0)))
            seconds.append(time.perf_counter() - start)
            if repeat == 0:
                for tensor in (t for batch in batches for t in batch):
                    digest.update(tensor.numpy().tobytes())
        result[name] = {"batches": len(batches), "seconds": round(statistics.median(seconds), 3),
                        "digest": digest.hexdigest()[:16]}
    return result


def run(src: Path, data: str, repeats: int) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(ROOT)])}
    child = subprocess.run([sys.executable, "-m", "benchmarks.batching", "--one", data,
                            str(repeats)], capture_output=True, text=True, env=env, cwd=ROOT)
    if child.returncode:
        return {"error": child.stderr[-500:]}
    return json.loads(child.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="ddb996a")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    data = str(data_dir().resolve())
    with old_checkout(args.old) as old_src:
        new, old = run(ROOT / "src", data, args.repeats), run(old_src, data, args.repeats)
    result = {"benchmark": "batching", "old": args.old, "new": new, "old_run": old}
    if "error" not in new and "error" not in old:
        result["new_over_old"] = {m: round(new[m]["seconds"] / old[m]["seconds"], 3)
                                  for m in MODELS}
        result["same_batches"] = {m: new[m]["digest"] == old[m]["digest"] for m in MODELS}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(one(sys.argv[2], int(sys.argv[3]))))
    else:
        main()
