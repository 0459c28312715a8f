"""The everyday commands, this checkout against an older one and Surprise's SVD, in one run.

    DEEPMF_DATA_DIR=../shared/data .venv/bin/python -m benchmarks.speed [--old REF] [--parts P]

``--old REF`` (default f0a8f5a, the code before the speed, structure and solver work) is
checked out into a temporary git worktree and run from its own ``src/`` with this venv.
Every command runs in a fresh process; CPU is the child's user + system time
(``getrusage``), so the shared machine's load shows in wall time more than in CPU.

Parts (``--parts``, comma-separated, default all):

- ``startup``: ``deepmf --help`` and ``deepmf train --model nope`` (median of 3).
- ``main``: the README's main command (``biased-mf`` on the five ml-100k folds), old and
  new, beside Surprise's SVD on the same folds (its defaults, 20 epochs); then the new one
  again with a CPU burner on the other core (``busy_over_quiet_wall``).
- ``gmf``: one epoch of ``gmf`` (its NCF ml-1m recipe) in samples per second, 1 and 2
  threads, and 1 thread with ``--compile``'s step (the second epoch: compiling is in the
  first).
- ``ncf``: time to the same quality on the NCF ml-1m files: ``neumf`` (8 factors) and
  ``biased-mf`` (its recipe), old and new (each also new with ``--no-compile``: both
  compile by default at this size), each for a fixed number of epochs with
  ``--select-on test`` so that every epoch's test HR@10 is in its history; the seconds
  each needs (training epochs summed) to first reach the lowest of their best HR@10s.

Prints JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks._common import ROOT, data_dir, deepmf, old_checkout, timed

SURPRISE = """
import json, sys, numpy as np
from surprise import SVD, Dataset, Reader, accuracy
root = sys.argv[1]
reader = Reader(line_format="user item rating timestamp", sep="\\t", rating_scale=(1, 5))
rmses = []
for fold in range(1, 6):
    train = Dataset.load_from_file(f"{root}/ml-100k/u{fold}.base", reader).build_full_trainset()
    test = Dataset.load_from_file(f"{root}/ml-100k/u{fold}.test", reader).build_full_trainset()
    model = SVD(random_state=0).fit(train)
    predictions = model.test(test.build_testset())
    rmses.append(accuracy.rmse(predictions, verbose=False))
print(json.dumps({"rmse": float(np.mean(rmses))}))
"""

GMF = """
import json, sys, time, torch
from deepmf.experiment.recipes import recipe
from deepmf.models import build_model
from deepmf.readers import load_dataset
from deepmf.split import make_splits
from deepmf.tasks import RankingTask
from deepmf.train import TrainConfig, fit
torch.set_num_threads(int(sys.argv[2]))
train = make_splits(load_dataset("ncf:deepcf/ml-1m", sys.argv[1]), "given")[0].train.implicit()
settings = recipe("gmf", "implicit", n_train=len(train))
model = build_model("gmf", train, dim=settings.get("dim", 8))
task = RankingTask(train, None, batch_size=settings["batch_size"], device=torch.device("cpu"),
                   num_neg=settings["num_neg"], reg=settings.get("reg", 0.0),
                   compiled=sys.argv[3] == "compiled")
history = fit(model, task, TrainConfig(epochs=2, lr=settings["lr"], patience=0))
seconds = history[-1]["seconds"]
samples = len(train) * (1 + settings["num_neg"])
print(json.dumps({"samples": samples, "epoch_seconds": round(seconds, 3),
                  "samples_per_second": round(samples / seconds), "threads": int(sys.argv[2]),
                  "step": sys.argv[3]}))
"""


def median_of(runs: list[dict]) -> dict:
    runs = sorted(runs, key=lambda r: r["cpu"])
    middle = runs[len(runs) // 2]
    return {"wall": middle["wall"], "cpu": middle["cpu"], "code": middle["code"]}


def startup(versions: dict[str, Path]) -> dict:
    result = {}
    for label, src in versions.items():
        result[label] = {
            "help": median_of([timed(deepmf("--help"), src) for _ in range(3)]),
            "train_model_nope": median_of([timed(deepmf("train", "--model", "nope",
                                                        "--dataset", "ml-100k"), src)
                                           for _ in range(3)]),
        }
    new, old = result["new"], result["old"]
    result["new_over_old_cpu"] = {k: round(new[k]["cpu"] / old[k]["cpu"], 3) for k in new}
    return result


def main_command(versions: dict[str, Path], data: str) -> dict:
    result = {}
    for label, src in versions.items():
        with tempfile.TemporaryDirectory() as tmp:
            run = timed(deepmf("train", "--model", "biased-mf", "--dataset", "ml-100k",
                               "--split", "folds", "--out", f"{tmp}/run", "--quiet"), src,
                        {"DEEPMF_DATA_DIR": data})
        result[label] = _with_rmse(run)
    try:
        import surprise  # noqa: F401
        result["surprise_svd"] = _with_rmse(timed([sys.executable, "-c", SURPRISE, data]))
    except ImportError:
        result["surprise_svd"] = {"error": "pip install scikit-surprise to compare"}
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            busy = timed(deepmf("train", "--model", "biased-mf", "--dataset",
                                "ml-100k", "--split", "folds", "--out", f"{tmp}/run",
                                "--quiet"), versions["new"], {"DEEPMF_DATA_DIR": data})
    finally:
        burner.kill()
    result["new_busy"] = _with_rmse(busy)
    new = result["new"]
    result["new_over_old_cpu"] = round(new["cpu"] / result["old"]["cpu"], 3)
    if "cpu" in result["surprise_svd"]:
        result["new_over_surprise_cpu"] = round(new["cpu"] / result["surprise_svd"]["cpu"], 2)
    result["busy_over_quiet_wall"] = round(busy["wall"] / new["wall"], 2)
    return result


def _with_rmse(run: dict) -> dict:
    out = {"wall": run["wall"], "cpu": run["cpu"], "code": run["code"]}
    try:
        out["rmse"] = round(json.loads(run["stdout"])["rmse"], 5)
    except (ValueError, KeyError):
        out["error"] = run["stderr"]
    return out


def gmf(versions: dict[str, Path], data: str) -> dict:
    result = {}
    for threads, step in ((1, "eager"), (2, "eager"), (1, "compiled")):
        run = timed([sys.executable, "-c", GMF, data, str(threads), step], versions["new"])
        label = f"threads_{threads}" + ("_compiled" if step == "compiled" else "")
        result[label] = json.loads(run["stdout"]) if run["code"] == 0 else \
            {"error": run["stderr"]}
    return result


NCF_EPOCHS = {"neumf": 10, "biased-mf": 6}
COMPILED = ("biased-mf", "neumf")
"""Models whose new run compiles its steps by default at this size (its first epoch includes
the compilation, from whatever Inductor cache the machine has), also timed with
``--no-compile`` (label ``eager``)."""


def ncf(versions: dict[str, Path], data: str) -> dict:
    result = {}
    for model, epochs in NCF_EPOCHS.items():
        curves = {}
        runs = [(label, src, []) for label, src in versions.items()]
        if model in COMPILED:
            runs.append(("eager", versions["new"], ["--no-compile"]))
        for label, src, flags in runs:
            with tempfile.TemporaryDirectory() as tmp:
                run = timed(deepmf("train", "--model", model, "--dataset", "ncf:deepcf/ml-1m",
                                   "--select-on", "test", "--epochs", str(epochs), "--quiet",
                                   "--out", f"{tmp}/run", *flags), src,
                            {"DEEPMF_DATA_DIR": data})
                history = Path(tmp, "run", "history.csv")
                if run["code"] or not history.is_file():
                    curves[label] = {"error": run["stderr"]}
                    continue
                rows = [r for r in csv.DictReader(history.open()) if r.get("seconds")]
            seconds = np.cumsum([float(r["seconds"]) for r in rows])
            hr = [float(r["test_hr@10"]) for r in rows]
            curves[label] = {"hr": hr, "cumulative_seconds": seconds.round(1).tolist(),
                             "process_cpu": run["cpu"], "process_wall": run["wall"]}
        if any("error" in c for c in curves.values()):
            result[model] = curves
            continue
        target = min(max(c["hr"]) for c in curves.values())
        for c in curves.values():
            first = next(i for i, h in enumerate(c["hr"]) if h >= target)
            c["seconds_to_target"] = c["cumulative_seconds"][first]
            c["epochs_to_target"] = first + 1
        result[model] = {"target_hr@10": round(target, 4), **curves, **{
            f"{label}_over_old_seconds": round(curves[label]["seconds_to_target"]
                                               / curves["old"]["seconds_to_target"], 3)
            for label in curves if label != "old"}}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="f0a8f5a")
    parser.add_argument("--parts", default="startup,main,gmf,ncf")
    args = parser.parse_args()
    data = str(data_dir().resolve())
    parts = args.parts.split(",")
    with old_checkout(args.old) as old_src:
        versions = {"new": ROOT / "src", "old": old_src}
        result = {"benchmark": "speed", "old": args.old, "cpus": os.cpu_count()}
        if "startup" in parts:
            result["startup"] = startup(versions)
        if "main" in parts:
            result["main_command"] = main_command(versions, data)
        if "gmf" in parts:
            result["gmf_epoch"] = gmf(versions, data)
        if "ncf" in parts:
            result["ncf_ml1m"] = ncf(versions, data)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
