"""What a person sees: a labelled bar with an ETA, or one line an epoch; defaults in --help."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from deepmf.progress import ProgressBar
from deepmf.train import TrainConfig

RECORD = {"loss": 0.81234, "seconds": 1.25, "train_rmse": 0.8, "valid_rmse": 0.93456,
          "valid_mae": 0.74, "lr": 0.005}


def bar_text(width: int, label: str, split: str, phase: str) -> str:
    bar = ProgressBar(Console(file=io.StringIO(), width=width, force_terminal=True), label)
    bar.on_stage(split, phase)
    bar.on_train_begin(None, TrainConfig(epochs=80))
    for epoch in (1, 2, 3):
        bar.on_epoch_end({"epoch": epoch, **RECORD}, None)
    shown = Console(width=width, record=True, file=io.StringIO())
    shown.print(bar.progress.make_tasks_table(bar.progress.tasks))
    bar.on_train_end([])
    return shown.export_text()


@pytest.mark.parametrize("width", [60, 80, 120])
def test_a_narrow_terminal_keeps_label_counter_and_eta(width):
    text = bar_text(width, "biased-mf", "u1", "refit")
    assert len(text.splitlines()) == 1 and len(text.rstrip("\n")) <= width
    assert "3/80" in text and "eta" in text and "biased-mf u1 refit" in text
    if width >= 80:
        assert "rmse 0.9346" in text  # the monitored metric, before the loss
    if width >= 120:
        assert "loss 0.8123" in text


def test_piped_output_gets_one_plain_line_per_epoch():
    stream = io.StringIO()
    bar = ProgressBar(Console(file=stream, width=80), label="gmf")
    bar.on_stage("loo", "select")
    bar.on_train_begin(None, TrainConfig(epochs=30))
    for epoch in (1, 2):
        bar.on_epoch_end({"epoch": epoch, **RECORD}, None)
    bar.on_train_end([])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # never wrapped at the console's width
    assert lines[1].startswith("gmf loo select  epoch 2/30  loss 0.8123")
    assert "valid_rmse 0.9346" in lines[1] and "1.2s" in lines[1]


def test_train_help_shows_a_default_for_every_setting(capsys, monkeypatch):
    from deepmf.cli import main

    monkeypatch.setenv("COLUMNS", "250")  # one line per option
    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Unset options take the model's recipe" in text
    for shown in ("[default: (recipe)]", "[default: (biased-mf)]", "[default: (auto)]"):
        assert shown in text
