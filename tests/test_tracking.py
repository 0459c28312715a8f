"""TensorBoard events of a run, read back with TensorBoard's own event reader."""

from __future__ import annotations

import json
import sys

import pytest

from deepmf.cli import main
from deepmf.experiment.recipes import EXPLICIT, WARM_REFIT

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

SYNTHETIC = "synthetic:users=120,items=80,interactions=3000,ratings=true"


def events(folder):
    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return accumulator


def steps(accumulator, tag):
    return [(e.step, e.value) for e in accumulator.Scalars(tag)]


def session_hparams(accumulator) -> dict:
    content = accumulator.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {k: v.string_value or v.number_value for k, v in info.hparams.items()}


def test_train_logs_every_epoch_and_the_results(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--model", "biased-mf", "--dataset", SYNTHETIC, "--epochs", "3",
                 "--patience", "0", "--quiet", "--tensorboard", "--out", str(out)]) == 0
    history = [line.split(",") for line in (out / "history.csv").read_text().splitlines()]
    header, rows = history[0], history[1:]
    select = [dict(zip(header, r)) for r in rows if r[1] == "select"]
    board = events(out / "tensorboard" / "random:0.2")
    tags = set(board.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/epoch_seconds", "train/rmse", "valid/rmse",
            "valid/mae", "refit/loss", "result/rmse", "result/mae"} <= tags
    logged = steps(board, "valid/rmse")
    assert [s for s, _ in logged] == [1, 2, 3]
    assert [v for _, v in logged] == pytest.approx([float(r["valid_rmse"]) for r in select])
    rates = [v for _, v in steps(board, "train/lr")]
    assert rates == pytest.approx([float(r["lr"]) for r in select])  # halved on a stall
    assert rates[0] == pytest.approx(EXPLICIT["biased-mf"]["lr"])
    metrics = json.loads((out / "metrics.json").read_text())
    refit_steps = [s for s, _ in steps(board, "refit/loss")]
    assert refit_steps == list(range(1, WARM_REFIT["biased-mf"] + 1))  # warm refit epochs
    assert steps(board, "result/rmse")[0][1] == pytest.approx(metrics["test"]["rmse"])
    hparams = session_hparams(board)
    assert hparams["model"] == "biased-mf" and hparams["dim"] == 64
    assert hparams["epochs"] == 3 and "out" not in hparams


def test_ranking_metrics_are_logged_per_epoch(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--model", "gmf", "--dataset", SYNTHETIC, "--task", "implicit",
                 "--epochs", "2", "--patience", "0", "--lr-decay", "0.5", "--quiet",
                 "--tensorboard", "--out", str(out)]) == 0
    board = events(out / "tensorboard" / "loo")
    assert [s for s, _ in steps(board, "valid/hr@10")] == [1, 2]
    assert [s for s, _ in steps(board, "valid/ndcg@10")] == [1, 2]
    assert "result/full_hr@10" in board.Tags()["scalars"]
    assert len(steps(board, "train/lr")) == 2


def test_missing_tensorboard_is_one_line_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    code = main(["train", "--model", "mf", "--dataset", SYNTHETIC, "--tensorboard",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'deepmf[tensorboard]'" in err
    assert not (tmp_path / "run").exists()
