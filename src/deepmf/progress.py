"""Rich progress display as a training callback."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from deepmf.train import Callback


class ProgressBar(Callback):
    """One bar per ``fit`` call, advanced each epoch, showing the latest metrics."""

    def __init__(self, console: Console | None = None, label: str = "train"):
        self.console = console or Console(stderr=True)
        self.label = label
        self.progress: Progress | None = None

    def on_train_begin(self, model, config):
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
            console=self.console, transient=not sys.stderr.isatty(),
            disable=not self.console.is_terminal,
        )
        self.progress.start()
        self.task = self.progress.add_task(self.label, total=config.epochs, info="")

    def on_epoch_end(self, record, model):
        shown = {k: v for k, v in record.items() if k not in ("epoch", "seconds")}
        info = "  ".join(f"{k} {v:.4f}" for k, v in shown.items() if isinstance(v, float))
        self.progress.update(self.task, advance=1, info=info)

    def on_train_end(self, history):
        if self.progress is not None:
            self.progress.stop()
