"""Reading an ml-20m-sized ratings file, this checkout against an older one, in one run.

    .venv/bin/python -m benchmarks.load_log [--interactions N] [--old REF]

Writes two ``ratings.csv`` files in ml-20m's layout (``userId,movieId,rating,timestamp``,
138,000 users x 27,000 movies at the default 20M drawn interactions) from the synthetic
generator into a temporary ``ml-20m/`` folder:

- ``distinct``: one row per pair, sorted by user then movie, as GroupLens ships ml-20m
  (the drawn log's repeated pairs dropped: about 15M rows at 20M drawn);
- ``repeated``: every drawn row, repeated pairs included, in time order (a log in which
  ratings were changed: a quarter of its rows repeat a pair).

Each is loaded by name (``load_dataset("ml-20m", folder)``: parsing, ids to dense
indices, one row per pair) and split (``loo``, ``time:0.2``) in a fresh process, by this
checkout and by ``--old`` (default 8e58091, before the sort-free repeated-pair and split
searches, the id table and the sort-based distinct pairs), checked out into a temporary
git worktree. Prints JSON: seconds and CPU of the load (imports apart), seconds of each
split and of setting up a ranking task over the log (its sorted pairs for negative
sampling), the process's peak RSS, rows kept and a digest of the loaded arrays and test
sets, which must be the same for both codes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks._common import ROOT, emit, old_checkout

LOAD = """
import hashlib, json, resource, sys, time
import deepmf.readers.load  # the parsers, pandas and torch: imported before the clock starts
from deepmf.readers import load_dataset
from deepmf.split import make_splits
start, cpu = time.perf_counter(), time.process_time()
dataset = load_dataset("ml-20m", sys.argv[1])
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
log = dataset.interactions
digest = hashlib.sha256()
for array in (log.users, log.items, log.ratings, log.timestamps):
    digest.update(array.tobytes())
result = {"seconds": round(seconds, 2), "cpu": round(cpu, 2), "rows": len(log),
          "users": log.n_users, "items": log.n_items}
for spec in ("loo", "time:0.2"):
    start = time.perf_counter()
    test = make_splits(dataset, spec)[0].test
    result[f"split_{spec}_seconds"] = round(time.perf_counter() - start, 2)
    digest.update(test.ratings.tobytes() + test.timestamps.tobytes())
import torch
from deepmf.tasks import RankingTask
start = time.perf_counter()  # the training task's set-up: its pairs for negative sampling
RankingTask(dataset.interactions.implicit(), None, batch_size=262144, device=torch.device("cpu"))
result["ranking_task_seconds"] = round(time.perf_counter() - start, 2)
result["digest"] = digest.hexdigest()[:16]
result["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)
print(json.dumps(result))
"""


def write_files(folder: Path, interactions: int) -> dict:
    """The two ratings files (``distinct``, ``repeated``), each in its own ``ml-20m/``."""
    import pandas as pd

    from deepmf.readers import load_dataset

    users, items = 138_000 * interactions // 20_000_000, 27_000 * interactions // 20_000_000
    log = load_dataset(f"synthetic:users={max(users, 100)},items={max(items, 100)},"
                       f"interactions={interactions},ratings=true").interactions
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"userId": log.users + 1, "movieId": log.items + 1,
                          "rating": log.ratings,
                          "timestamp": np.sort(rng.integers(789_652_004, 1_427_784_002,
                                                            len(log)))})
    distinct = frame.drop_duplicates(["userId", "movieId"], keep="last") \
        .sort_values(["userId", "movieId"])
    paths = {}
    for name, table in (("distinct", distinct), ("repeated", frame)):
        where = folder / name / "ml-20m"
        where.mkdir(parents=True)
        table.to_csv(where / "ratings.csv", index=False, float_format="%.1f")
        pd.DataFrame({"movieId": np.arange(1, log.n_items + 1), "title": "A movie (1999)",
                      "genres": "Drama"}).to_csv(where / "movies.csv", index=False)
        paths[name] = folder / name
    return {"paths": paths, "drawn": len(frame), "distinct_rows": len(distinct)}


def load(src: Path, folder: Path) -> dict:
    child = subprocess.run([sys.executable, "-c", LOAD, str(folder)], capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(src)})
    if child.returncode:
        return {"error": child.stderr[-400:]}
    return json.loads(child.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactions", type=int, default=20_000_000)
    parser.add_argument("--old", default="8e58091")
    args = parser.parse_args()
    result = {"benchmark": "load_log", "old": args.old, "interactions": args.interactions}
    with tempfile.TemporaryDirectory() as tmp, old_checkout(args.old) as old_src:
        files = write_files(Path(tmp), args.interactions)
        result["rows_written"] = {"distinct": files["distinct_rows"], "repeated": files["drawn"]}
        for name, folder in files["paths"].items():
            new, old = load(ROOT / "src", folder), load(old_src, folder)
            entry = {"new": new, "old": old}
            if "seconds" in new and "seconds" in old:
                entry["new_over_old_seconds"] = round(new["seconds"] / old["seconds"], 3)
                entry["same_data"] = new["digest"] == old["digest"]
            result[name] = entry
    emit(result)


if __name__ == "__main__":
    main()
