"""What a person sees while a model trains: a labelled bar on a terminal, lines elsewhere."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column

from deepmf.train import Callback


class ProgressBar(Callback):
    """One bar per ``fit`` call, advanced each epoch, with an ETA and the latest metrics.

    The bar is labelled with ``label`` (a model's name in ``deepmf compare``) and the stage
    the caller announces (``u1 select``, ``u1 refit``). When the console is not a terminal
    (output piped or logged) each epoch is one plain line instead, so a long run is never
    silent. At 80 columns the label, the epoch counter and the times keep their place and
    the metrics are cut short. ``transient``: a bar vanishes when its training ends, and
    piped output gets no lines (for many short fits, such as tuning trials).
    """

    def __init__(self, console: Console | None = None, label: str = "",
                 transient: bool = False):
        self.console = console or Console(stderr=True)
        self.label, self.stage, self.transient = label, "", transient
        self.progress: Progress | None = None
        self.total, self.started = 0, 0.0

    @property
    def description(self) -> str:
        return " ".join(part for part in (self.label, self.stage) if part) or "train"

    def on_stage(self, split, phase):
        self.stage = f"{split} {phase}"

    def on_train_begin(self, model, config):
        self.total, self.started = config.epochs, time.perf_counter()
        if not self.console.is_terminal:
            return
        self.progress = make_progress(self.console, self.transient)
        self.progress.start()
        self.task = self.progress.add_task(self.description, total=config.epochs, info="")

    def on_epoch_end(self, record, model):
        if self.transient and self.progress is None:
            return
        if self.progress is not None:
            room = max(0, self.console.width - FIXED_WIDTH)
            info = metric_text(record, short=True)
            info = info if len(info) <= room else info[:max(0, room - 1)] + "…"
            self.progress.update(self.task, advance=1, info=info)
            return
        elapsed = time.perf_counter() - self.started
        self.console.print(f"{self.description}  epoch {record['epoch']}/{self.total}  "
                           f"{metric_text(record)}  {record.get('seconds', 0.0):.1f}s "
                           f"({elapsed:.0f}s in all)", soft_wrap=True, markup=False,
                           highlight=False)

    def on_train_end(self, history):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


FIXED_WIDTH = 66
"""Columns the bar keeps at any width: label (22), ``epoch M/N`` (11), bar (10), elapsed and
ETA (17), and the spaces between them; the metrics get what is left."""


def make_progress(console: Console, transient: bool = False) -> Progress:
    """The bar's columns: label, ``epoch M/N``, bar, elapsed, ETA, then the metrics (cut
    short to the room left, so that a narrow terminal never squeezes the counter)."""
    keep = dict(no_wrap=True)
    return Progress(
        TextColumn("[bold]{task.description}",
                   table_column=Column(max_width=22, overflow="ellipsis", **keep)),
        TextColumn("epoch", table_column=Column(**keep)),
        MofNCompleteColumn(table_column=Column(**keep)),
        BarColumn(bar_width=10),
        TimeElapsedColumn(table_column=Column(**keep)),
        TextColumn("eta", table_column=Column(**keep)),
        TimeRemainingColumn(table_column=Column(**keep)),
        TextColumn("{task.fields[info]}", table_column=Column(**keep)),
        console=console, transient=transient,
    )


def metric_text(record: dict, short: bool = False) -> str:
    """``loss 0.4123  valid_rmse 0.9345 ...``; ``short``: the validation metrics first,
    without their ``valid_`` prefix, then the loss."""
    keys = [k for k, v in record.items() if isinstance(v, float) and k != "seconds"]
    if short:
        keys = [k for k in keys if k.startswith(("valid_", "test_"))] + \
            [k for k in keys if k == "loss"]
    names = {k: k.removeprefix("valid_") if short else k for k in keys}
    return "  ".join(f"{names[k]} {record[k]:.4g}" if k == "lr" else
                     f"{names[k]} {record[k]:.4f}" for k in keys)
