"""Epochs with the batches drawn ahead on a thread against drawn in turn, in one run.

    DEEPMF_DATA_DIR=../shared/data .venv/bin/python -m benchmarks.prefetch [--epochs N]
        [--rounds R] [--models neumf,biased-mf]

Each model trains with its NCF ml-1m recipe as ``deepmf train`` would (compiled where the
command line compiles by default, one training thread, the sampled test HR@10 after each
epoch), ``N`` epochs (default 4) in a fresh process, once with the batches drawn ahead
(:mod:`deepmf.prefetch`) and once in turn, alternating for ``R`` rounds (default 2), so that
the machine's drift falls on both alike. Reports each process's epoch seconds (the first
holds the compiling and is left out of the medians), the median over the later epochs of
each way and their ratio, the process CPU seconds, and whether both ways gave the same
HR@10 after every epoch (they draw the same batches). Prints JSON.
"""

from __future__ import annotations

import argparse
import resource
import statistics

from benchmarks._common import child_json, child_or_main, data_dir, emit, machine


def one(name: str, ahead: bool, epochs: int, data: str) -> dict:
    """Runs inside the child process."""
    import torch

    from deepmf import train as loop
    from deepmf.experiment.plan import compiles_by_default
    from deepmf.experiment.recipes import recipe
    from deepmf.models import build_model
    from deepmf.readers import load_dataset
    from deepmf.split import make_splits
    from deepmf.tasks import RankingTask

    torch.set_num_threads(1)
    loop.draws_ahead = lambda task: ahead
    dataset = load_dataset("ncf:deepcf/ml-1m", data)
    split = make_splits(dataset, "given")[0]
    train = split.train.implicit()
    settings = recipe(name, "implicit", n_train=len(train))
    compiled = compiles_by_default({**settings, "model": name, "task": "implicit",
                                    "device": "cpu"}, len(train), None)
    torch.manual_seed(0)
    model = build_model(name, train, dim=settings["dim"])
    task = RankingTask(train, split.test, batch_size=settings["batch_size"],
                       device=torch.device("cpu"), num_neg=settings["num_neg"],
                       reg=settings.get("reg", 0.0), valid_negatives=dataset.test_negatives,
                       prefix="test", compiled=compiled)
    history = loop.fit(model, task, loop.TrainConfig(epochs=epochs, lr=settings["lr"],
                                                     patience=0))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": [round(r["seconds"], 3) for r in history],
            "hr@10": [round(r["test_hr@10"], 6) for r in history],
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1), "compiled": compiled}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--models", default="neumf,biased-mf")
    args = parser.parse_args()
    data = str(data_dir().resolve())
    result = {"benchmark": "prefetch", "epochs": args.epochs, "machine": machine()}
    for name in args.models.split(","):
        runs: dict[str, list[dict]] = {"ahead": [], "in_turn": []}
        for _ in range(args.rounds):
            for label in runs:
                settings = {"name": name, "ahead": label == "ahead", "epochs": args.epochs,
                            "data": data}
                runs[label].append(child_json("benchmarks.prefetch", settings))
        later = {label: statistics.median(s for r in rs for s in r["seconds"][1:])
                 for label, rs in runs.items()}
        result[name] = {
            **runs, "median_later_epoch_seconds": {k: round(v, 3) for k, v in later.items()},
            "ahead_over_in_turn": round(later["ahead"] / later["in_turn"], 3),
            "same_hr": all(r["hr@10"] == runs["in_turn"][0]["hr@10"]
                           for rs in runs.values() for r in rs)}
    emit(result)


if __name__ == "__main__":
    child_or_main(one, main)
