"""A rating model's recipe against an older commit's, on two data sets and two seeds.

    DEEPMF_DATA_DIR=../shared/data .venv/bin/python -m benchmarks.explicit_recipe \
        [--model biased-mf] [--old 174b3b7] [--seeds 0,1] [--data ml-100k,ml-1m]

Each run is the command line's ``deepmf train --model MODEL`` in a fresh process, this
checkout's and the old commit's side by side: ml-100k on its five folds, and ml-1m on the
partial ratings file the data folder has (users 1-2999, ``random:0.1``). Prints JSON per
data set, seed and version: the validation RMSE the recipe selects on (each split's best,
averaged), the test RMSE, the epochs trained (selection and refit) and the process's CPU
seconds. The choice between recipes is made on ``valid``; ``test`` is reported only.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._common import ROOT, data_dir, emit, machine, old_checkout

ML1M_FILES = {"ratings.dat": "ratings.users1-2999.dat", "movies.dat": "movies.dat",
              "users.dat": "users.dat"}


def ml1m_folder(root: Path, tmp: Path) -> Path:
    """A data folder whose ``ml-1m`` holds the partial ratings file as ``ratings.dat``."""
    folder = tmp / "ml-1m"
    folder.mkdir()
    for name, source in ML1M_FILES.items():
        (folder / name).symlink_to((root / "ml-1m" / source).resolve())
    return tmp


def one_run(src: Path, args: list[str], data: Path) -> dict:
    """``deepmf train`` with ``src`` first on the path: valid/test RMSE, epochs, CPU."""
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        child = subprocess.run(
            [sys.executable, "-m", "deepmf", "train", *args,
             "--out", f"{tmp}/run", "--quiet"], capture_output=True, text=True,
            env={**os.environ, "PYTHONPATH": str(src), "DEEPMF_DATA_DIR": str(data)})
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if child.returncode:
            return {"error": child.stderr.strip()[-300:]}
        best: dict[str, float] = {}
        rows = list(csv.DictReader(open(f"{tmp}/run/history.csv")))
        for row in rows:
            if row["phase"] == "select":
                value = float(row["valid_rmse"])
                best[row["split"]] = min(best.get(row["split"], value), value)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"valid": round(sum(best.values()) / len(best), 5),
            "test": round(json.loads(child.stdout)["rmse"], 5), "epochs": len(rows),
            "cpu": round(cpu, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="biased-mf")
    parser.add_argument("--old", default="174b3b7")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--data", default="ml-100k,ml-1m")
    args = parser.parse_args()
    root = data_dir().resolve()
    result = {"benchmark": "explicit_recipe", "model": args.model, "old": args.old,
              "machine": machine()}
    with old_checkout(args.old) as old_src, tempfile.TemporaryDirectory() as tmp:
        data = {"ml-100k": (["--dataset", "ml-100k", "--split", "folds"], root),
                "ml-1m": (["--dataset", "ml-1m", "--split", "random:0.1"],
                          ml1m_folder(root, Path(tmp)))}
        for name in args.data.split(","):
            flags, folder = data[name]
            for seed in args.seeds.split(","):
                result[f"{name} seed {seed}"] = {
                    label: one_run(src, ["--model", args.model, *flags, "--seed", seed], folder)
                    for label, src in (("new", ROOT / "src"), ("old", old_src))}
    emit(result)


if __name__ == "__main__":
    main()
