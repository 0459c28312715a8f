"""The Typer application every command registers on, and the error console."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Matrix-factorization recommenders, classic and deep, on PyTorch.",
)
err = Console(stderr=True)
