"""Implicit models on the NCF/DeepCF leave-one-out files, next to the published numbers.

    DEEPMF_DATA_DIR=../shared/data .venv/bin/python benchmarks/implicit_tables.py \
        [--datasets ml-1m,AMusic] [--models itempop,gmf,mlp,neumf,biased-mf] [--select valid,test]
        [--dim F] [--epochs N] [--set MODEL.FIELD=VALUE ...] [--keep DIR]

For each dataset, model and selection mode (``valid``: epochs chosen on one held-out
training interaction per user, honest; ``test``: the papers' protocol, best epoch on test)
it trains with the model's recipe and prints HR@10 / NDCG@10 (99 sampled negatives), the
full-ranking metrics, seconds per epoch and peak memory as JSON. ``neumf`` and ``cfnet``
are pre-trained from the ``gmf``+``mlp`` and ``dmf``+``cfnet-ml`` runs of the same mode
when those are in the model list (``neumf-scratch``/``cfnet-scratch`` train from scratch).
``--set`` overrides one model's setting (any ``RunConfig`` field, e.g. ``mlp.dropout=0.1``);
the NeuMF row of the README at 32 factors comes from

    --datasets ml-1m --models gmf,mlp,neumf --dim 32 --set gmf.reg=0.003 \
    --set mlp.reg=0.001 --set mlp.dropout=0.1 --set gmf.lr_decay=0.5 --set mlp.lr_decay=0.5 \
    --set gmf.patience=4 --set mlp.patience=4 --set gmf.epochs=40 --set mlp.epochs=40
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import data_dir, emit, machine
from deepmf.experiment.config import RunConfig
from deepmf.experiment.run import train_run

PUBLISHED = {  # HR@10, NDCG@10 with 99 negatives, from shared/data/README.md
    "ml-1m": {"itempop": (0.4535, 0.2542), "dmf": (0.6565, 0.3761), "neumf": (0.7210, 0.4387),
              "neumf (NCF, pre-trained, 64 factors)": (0.730, 0.447),
              "cfnet-rl": (0.7127, 0.4336), "cfnet-ml": (0.7073, 0.4264),
              "cfnet": (0.7253, 0.4416), "mf (Rendle 2020, tuned)": (0.7294, 0.4523)},
    "AMusic": {"itempop": (0.2483, 0.1304), "dmf": (0.3744, 0.2149),
               "neumf": (0.3891, 0.2391), "cfnet-rl": (0.3947, 0.2504),
               "cfnet-ml": (0.4071, 0.2420), "cfnet": (0.4116, 0.2601)},
}
PRETRAIN = {"neumf": ("gmf", "mlp"), "cfnet": ("dmf", "cfnet-ml")}


def run_one(model: str, dataset: str, select: str, runs: dict, root: Path, tmp: Path,
            extra: dict, own: dict) -> dict:
    name = model.removesuffix("-scratch")
    pretrain = None
    parts = PRETRAIN.get(model)
    if parts and all((p, select) in runs for p in parts):
        pretrain = ",".join(str(runs[(p, select)]) for p in parts)
    out = tmp / f"{model}-{dataset}-{select}"
    start = time.perf_counter()
    _, metrics = train_run(RunConfig(model=name, dataset=f"ncf:deepcf/{dataset}",
                                     data_dir=str(root), out=str(out), select_on=select,
                                     pretrain=pretrain, **extra, **own))
    runs[(model, select)] = out
    test = metrics["test"]
    return {
        "hr@10": round(test["hr@10"], 4), "ndcg@10": round(test["ndcg@10"], 4),
        "full_hr@10": round(test["full"]["hr@10"], 4),
        "full_ndcg@10": round(test["full"]["ndcg@10"], 4),
        "best_epoch": metrics["best_epoch"], "epochs_run": len(metrics["epoch_seconds"]),
        "seconds_per_epoch": round(float(np.mean(metrics["epoch_seconds"] or [0])), 2),
        "total_seconds": round(time.perf_counter() - start, 1),
        "pretrained_from": parts if pretrain else None,
        "settings": own or None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def parse_override(text: str) -> tuple[str, str, object]:
    """``MODEL.FIELD=VALUE`` → (model, field, value as int, float or text)."""
    target, _, raw = text.partition("=")
    model, _, field = target.partition(".")
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    if not raw or not model or field not in fields:
        raise argparse.ArgumentTypeError(f"{text!r}: expected MODEL.FIELD=VALUE with FIELD "
                                         "a RunConfig field, e.g. mlp.dropout=0.1")
    for kind in (int, float):
        try:
            return model, field, kind(raw)
        except ValueError:
            pass
    return model, field, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml-1m,AMusic")
    parser.add_argument("--models",
                        default="itempop,gmf,mlp,neumf,biased-mf,dmf,cfnet-ml,cfnet")
    parser.add_argument("--select", default="valid,test")
    parser.add_argument("--epochs", type=int, default=None, help="override every recipe")
    parser.add_argument("--dim", type=int, default=None, help="predictive factors for all")
    parser.add_argument("--set", type=parse_override, action="append", default=[],
                        metavar="MODEL.FIELD=VALUE", help="one model's setting; repeatable")
    parser.add_argument("--keep", default=None,
                        help="folder to keep the run directories in (default: a temporary one)")
    args = parser.parse_args()
    root = data_dir()
    extra = {k: v for k, v in (("epochs", args.epochs), ("dim", args.dim)) if v}
    table: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep or tmp)
        for dataset in args.datasets.split(","):
            runs: dict = {}
            table[dataset] = {"published": PUBLISHED.get(dataset, {}), "deepmf": {}}
            for model in args.models.split(","):
                own = {f: v for m, f, v in args.set if m == model}
                for select in args.select.split(","):
                    result = run_one(model, dataset, select, runs, root, out, extra, own)
                    table[dataset]["deepmf"].setdefault(model, {})[select] = result
                    print(f"# {dataset} {model} select={select}: {result}", flush=True)
    emit({"benchmark": "implicit_tables", "protocol": "HR@10/NDCG@10, 99 sampled negatives",
          "machine": machine(), "results": table})


if __name__ == "__main__":
    main()
