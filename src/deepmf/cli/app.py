"""The Typer application every command registers on, and the error console."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Matrix-factorization recommenders, classic and deep, on PyTorch.",
)
err = Console(stderr=True)

RECIPE = "recipe"
TRAIN_DEFAULTS = {
    **dict.fromkeys(("epochs", "batch_size", "lr", "dim", "layers", "user_layers",
                     "item_layers", "dropout", "num_neg", "reg", "weight_decay", "optimizer",
                     "patience", "lr_decay"), RECIPE),
    "model": "biased-mf", "dataset": "ml-100k", "seed": "0", "device": "auto",
    "select_on": "valid", "valid_fraction": "0.05", "k": "10",
    "split": "the data's own, loo or u1", "task": "by model and data", "refit": "on",
    "loss": "mse or bce", "out": "runs/MODEL-DATASET-SPLIT-TIME", "compile": "where it pays",
}
"""What ``deepmf train --help`` shows for options left unset on the command line, which
the run resolves later (from the model's recipe or the data)."""


def show_defaults(command) -> None:
    """Label the defaults that ``--help`` would otherwise leave blank (a None default)."""
    train = getattr(command, "commands", {}).get("train")
    if train is None:
        return
    train.help = (train.help or "") + ("\n\nUnset options take the model's recipe, which "
                                       "deepmf recipes --model M prints.")
    for param in train.params:
        if param.default is None and param.name in TRAIN_DEFAULTS:
            param.show_default = TRAIN_DEFAULTS[param.name]
