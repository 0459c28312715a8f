"""Per-model defaults ("recipes"): what a run uses for every setting the user leaves unset.

The measurements behind each value are in the README's results and in ``benchmarks/``;
the short notes here say only what each recipe is for.
"""

from __future__ import annotations

import math

TRAINING = dict(epochs=30, batch_size=1024, lr=0.005, optimizer="adam", weight_decay=0.0,
                reg=0.0, num_neg=4, patience=5, lr_decay=1.0)
"""Training settings of every run unless its recipe or the user says otherwise."""

EXPLICIT: dict[str, dict] = {
    # (Biased) MF with per-row L2 and early stopping, then a refit on train + validation;
    # halving the rate on a stall gave lower RMSE in fewer epochs on ml-100k and ml-1m.
    "mf": dict(dim=64, epochs=80, batch_size=1024, lr=0.007, reg=0.1, patience=2,
               lr_decay=0.5),
    "biased-mf": dict(dim=64, epochs=80, batch_size=1024, lr=0.007, reg=0.1, patience=2,
                      lr_decay=0.5),
    "deepmf": dict(dim=32, layers=(64, 32), dropout=0.2, epochs=80, batch_size=1024,
                   lr=0.005, reg=0.1, patience=5),
    # Closed-form sweeps: a few suffice; the model's own defaults (dim 16, λ 0.15) hold.
    "als": dict(epochs=15, patience=3),
    # Gibbs sampling: the model's own defaults (rank 10, 20 burn-in, 500 kept samples).
    "bayes-mf": dict(),
}
"""Recipes for rating prediction, by model."""

WARM_REFIT = {"biased-mf": 2}
"""Models whose refit goes on from the chosen epoch's weights for this many epochs on all
of train (validation rows included) at that epoch's learning rate, where that was measured
to match retraining from scratch in fewer epochs. The others retrain from scratch for the
chosen number of epochs, replaying the selection's rates (for ``mf`` and ``deepmf`` the
warm refit was worse; the README's "Honest by default" has the numbers)."""

IMPLICIT: dict[str, dict] = {
    "mf": dict(dim=64, epochs=30, batch_size=8192, lr=0.005, num_neg=4, patience=4,
               lr_decay=0.5),
    # The tuned dot product of Rendle et al. (2020): biases, 128 factors, L2, 8 negatives.
    "biased-mf": dict(dim=128, epochs=40, batch_size=16384, lr=0.003, num_neg=8, reg=0.003,
                      patience=4, lr_decay=0.5),
    # The MLP tower keeps improving with four times the steps of GMF's batch.
    "mlp": dict(dim=8, epochs=30, batch_size=4096, lr=0.004, num_neg=4, patience=4),
    # Fine-tuning from trained parts starts at the average of their logits; Adam moves
    # every weight by about lr a step, so the step must be small to keep that start.
    "neumf+pretrain": dict(dim=8, epochs=10, batch_size=16384, lr=0.00003, num_neg=4,
                           patience=3),
    # DeepCF models: each step runs the towers over nearly every user and item, so large
    # batches (few steps per epoch) with a higher learning rate train fastest on a CPU.
    "dmf": dict(epochs=20, batch_size=65536, lr=0.005, num_neg=4, patience=3),
    "cfnet-ml": dict(epochs=30, batch_size=65536, lr=0.005, num_neg=4, patience=4,
                     lr_decay=0.5),
    "cfnet": dict(epochs=20, batch_size=65536, lr=0.001, num_neg=4, patience=3),
    # Fine-tuned with plain SGD, as Deng et al. do: Adam drifts away from the parts' start.
    "cfnet+pretrain": dict(epochs=10, batch_size=65536, lr=0.01, num_neg=4, patience=3,
                           optimizer="sgd"),
    # iALS (Rendle et al. 2022's weighting): the model's defaults, 20 sweeps at the most.
    "ials": dict(epochs=20, patience=4),
}
"""Recipes for top-K ranking, by model (``NAME+pretrain``: fine-tuning from trained parts)."""

IMPLICIT_DEFAULT = dict(dim=8, epochs=30, batch_size=16384, lr=0.015, num_neg=4, patience=3)
"""NCF models (gmf, mlp, neumf): few large batches at a higher learning rate than NCF's
(256 and 0.001) reach the same hit rate per epoch in a fraction of the steps."""

MIN_STEPS = 64
"""Fewest optimizer steps an implicit epoch should take with a recipe's batch size."""

LAZY_ROWS = 100_000
"""Users plus items above which ``LAZY_MODELS`` train with ``lazy-adam``: dense Adam reads
and writes every row of every table each step, which costs more than the batch on
ml-20m-sized tables and less on ml-1m-sized ones (README, "Large logs";
``benchmarks/lazy_adam.py``)."""

LAZY_MODELS = ("mf", "biased-mf")
"""The wide-table models that rule was measured on; the NCF models' 8-factor tables are
small even at 20M interactions, so they keep dense Adam."""

GROW_ROWS = 20_000
"""Users plus items above which ``GROW_MODELS`` grow their batch to the tables' rows."""

GROW_MODELS = ("neumf",)
"""Models whose dense Adam pass over their tables each step costs more than the batch where
the tables hold more rows than a batch has pairs (benchmarks/batch_growth.py, synthetic
logs, compiled steps, one thread): at 5M interactions (48,000 users and items) `neumf` with
batches of 65,536 at twice the rate trained epochs in 16 s against 26 s with 16,384, at the
same hit rate over the first 5,000 held-out users; at 20M (165,000) 262,144 at four times
the rate took 107 and 89 s against 217 and 196 s for its first two epochs, with HR@10 over
all 138,000 held-out users of 0.0628 and 0.0668 against 0.0586 and 0.0664. `gmf` (whose
compiled step is cheap beside even these tables) gained no time at 5M, and `mlp` (whose
recipe keeps a small batch for more steps) fell behind there, HR@10 0.0885 against 0.0976
after two epochs with 65,536 at four times its rate, so both keep their batches.
`biased-mf` (lazy-adam at 20M, whose update touches only the looked-up rows) with 262,144 at
four times its rate took 312 and 270 s against 345 and 361 s, at HR@10 0.0806 and 0.0827
against 0.0824 and 0.0845 (first 5,000 users): its recipe reaches more in one epoch than the
grown batch in two, so it keeps its batch."""


def recipe(model: str, task: str, *, pretrain: bool = False, n_train: int | None = None,
           num_neg: int | None = None, n_rows: int | None = None,
           batch_size: int | None = None, notes: dict | None = None) -> dict:
    """The model's defaults for this task, fitted to a training log of ``n_train`` pairs
    over ``n_rows`` users and items.

    The implicit recipes were tuned on ml-1m (a million positives); on a small log their
    large batches would leave a handful of steps an epoch, so the batch is halved (down
    to 256 at least) until an epoch of ``n_train × (1 + num_neg)`` samples takes at least
    ``MIN_STEPS`` steps, the learning rate kept. ``GROW_MODELS`` over more than
    ``GROW_ROWS`` users and items grow their batch to the tables' rows (unless the run sets
    ``batch_size``), the rate with it. ``LAZY_MODELS`` over more than ``LAZY_ROWS`` users
    and items train with ``lazy-adam``. Each setting such a rule
    changes gets a line in ``notes`` (when given), which ``config.toml`` keeps as a comment.
    """
    defaults = _by_size(model, task, pretrain, n_train, num_neg, notes)
    if n_rows and n_rows > GROW_ROWS and model in GROW_MODELS and n_train and not pretrain \
            and task == "implicit" and batch_size is None:
        defaults = _grown(defaults, n_train * (1 + (num_neg or defaults["num_neg"])), n_rows,
                          notes)
    if n_rows and n_rows > LAZY_ROWS and model in LAZY_MODELS:
        if notes is not None:
            notes["optimizer"] = (f"lazy-adam for {n_rows:,} users and items (over "
                                  f"{LAZY_ROWS:,}: updating whole tables each step costs more "
                                  "than the batch)")
        defaults = {**defaults, "optimizer": "lazy-adam"}
    return defaults


def _grown(defaults: dict, samples: int, n_rows: int, notes: dict | None) -> dict:
    """The batch doubled until it holds as many pairs as the tables have rows (keeping
    ``MIN_STEPS`` steps an epoch), the rate times the square root of the growth."""
    batch = grown = defaults["batch_size"]
    while grown < n_rows and samples >= 2 * MIN_STEPS * grown:
        grown *= 2
    if grown == batch:
        return defaults
    lr = round(defaults["lr"] * math.sqrt(grown / batch), 6)
    if notes is not None:
        notes["batch_size"] = (f"{grown:,}: the recipe's {batch:,} doubled up to the "
                               f"{n_rows:,} users and items (over {GROW_ROWS:,}), so that "
                               "Adam's pass over the tables costs no more than the batch")
        notes["lr"] = f"{lr}: the recipe's {defaults['lr']} x sqrt({grown // batch})"
    return {**defaults, "batch_size": grown, "lr": lr}


def _by_size(model: str, task: str, pretrain: bool, n_train: int | None,
             num_neg: int | None, notes: dict | None) -> dict:
    if task == "explicit":
        return EXPLICIT.get(model, EXPLICIT["biased-mf"])
    if pretrain and f"{model}+pretrain" in IMPLICIT:
        defaults = IMPLICIT[f"{model}+pretrain"]
    else:
        defaults = IMPLICIT.get(model, IMPLICIT_DEFAULT)
    if n_train and "batch_size" in defaults:
        samples = n_train * (1 + (num_neg or defaults["num_neg"]))
        batch = defaults["batch_size"]
        while batch > 256 and samples < MIN_STEPS * batch:
            batch //= 2
        if notes is not None and batch != defaults["batch_size"]:
            notes["batch_size"] = (f"the recipe's {defaults['batch_size']} halved (not below "
                                   f"256) for an epoch of {n_train:,} pairs x "
                                   f"{samples // n_train} samples to take {MIN_STEPS} steps")
        defaults = {**defaults, "batch_size": batch}
    return defaults


def lazy_tables_note(config, n_users: int, n_items: int) -> str | None:
    """For a run with ``lazy-adam``: which tables keep dense Adam, since one batch looks up
    more than ``optim.DENSE_SHARE`` of their rows (every one: it trains as ``adam``)."""
    if config.optimizer != "lazy-adam":
        return None
    from deepmf.optim import DENSE_SHARE, keeps_dense, lookup_shares

    ranking = config.task == "implicit"
    shares = lookup_shares(n_users, n_items, config.batch_size,
                           config.num_neg if ranking else 0,
                           anchors=ranking and config.loss == "bce")
    tables = list(zip(("users", "items"), (n_users, n_items), shares))
    dense = [f"the {n:,} {what} (a batch looks up about {share:.0%})"
             for what, n, share in tables if keeps_dense(share)]
    if not dense:
        return None
    reason = (f"over {DENSE_SHARE:.0%} of a table's rows, streaming it whole costs less than "
              "updating its looked-up rows")
    if len(dense) == 2:
        return f"{dense[0]} and {dense[1]} both keep dense Adam ({reason}): it trains as adam"
    sparse = next(what for what, _, share in tables if not keeps_dense(share))
    return f"{dense[0]} keep dense Adam ({reason}); the {sparse} update their looked-up rows"
