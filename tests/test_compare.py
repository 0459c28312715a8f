"""deepmf compare with seeds: the table's numbers are the runs' numbers, the best is marked,
parallel processes give the same results, and the pictures stay readable."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from deepmf.cli import main
from deepmf.experiment import plots

DATA = "synthetic:users=80,items=50,interactions=2000,ratings=true"


def compare(out, *extra, models="mf,biased-mf"):
    return main(["compare", "--models", models, "--dataset", DATA, "--epochs", "2",
                 "--seeds", "2", "--quiet", "--out", str(out), *extra])


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp") / "cmp"
    assert compare(out, "--tensorboard") == 0
    return out


def test_table_holds_mean_and_std_of_the_seeds(compared):
    rows = {r["model"]: r for r in csv.DictReader((compared / "comparison.csv").open())}
    for model in ("mf", "biased-mf"):
        runs = [json.loads((compared / model / f"seed-{s}" / "metrics.json").read_text())
                for s in (0, 1)]
        rmse = [m["test"]["rmse"] for m in runs]
        assert float(rows[model]["rmse"]) == pytest.approx(np.mean(rmse))
        assert float(rows[model]["rmse_std"]) == pytest.approx(np.std(rmse))
        assert rmse[0] != rmse[1]  # the seeds differ
        assert int(rows[model]["parameters"]) == runs[0]["parameters"] > 0
    table = (compared / "comparison.md").read_text()
    best = min(rows, key=lambda m: float(rows[m]["rmse"]))
    line = next(x for x in table.splitlines() if x.startswith(f"| `{best}`"))
    assert line.count("**") == 4 and " ± " in line  # best RMSE and MAE in bold
    assert (compared / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((compared / "compare.json").read_text())
    assert len(summary["runs"]) == 4 and summary["seeds"] == [0, 1]


def test_running_again_reuses_the_finished_runs(compared, capsys):
    before = (compared / "mf" / "seed-1" / "metrics.json").stat().st_mtime_ns
    assert compare(compared) == 0
    assert capsys.readouterr().err.count("reused") == 4
    assert (compared / "mf" / "seed-1" / "metrics.json").stat().st_mtime_ns == before


def test_parallel_jobs_give_the_same_numbers(compared, tmp_path):
    assert compare(tmp_path / "par", "--jobs", "2", models="mf") == 0
    ours = json.loads((tmp_path / "par" / "compare.json").read_text())["runs"]
    theirs = json.loads((compared / "compare.json").read_text())["runs"]
    assert [r["rmse"] for r in ours] == [r["rmse"] for r in theirs if r["model"] == "mf"]


def test_close_values_cut_the_axis_far_ones_start_at_zero():
    assert plots.tight_limits([0.91, 0.92, 0.93], [0.002, 0.001, 0.003])[0] > 0.8
    assert plots.tight_limits([0.2, 0.7], [0.01, 0.01]) is None


def test_five_fold_curves_show_a_short_legend(monkeypatch, tmp_path):
    from types import SimpleNamespace

    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig))
    rng = np.random.default_rng(0)
    results = [SimpleNamespace(split=SimpleNamespace(name=f"u{i}"), best_epoch=3, history=[
        {"epoch": e, "loss": 1.0 / e, "train_rmse": 1 - 0.01 * e + rng.normal(0, 0.01),
         "valid_rmse": 1 - 0.005 * e} for e in range(1, 6)]) for i in range(1, 6)]
    plots.plot_curves(tmp_path / "c.png", results, "explicit")
    labels = [t.get_text() for t in figures[0].axes[0].get_legend().get_texts()]
    assert labels == ["train RMSE (mean of 5)", "validation RMSE (mean of 5)", "chosen epoch"]
    plots.plot_curves(tmp_path / "c.png", results[:1], "implicit")
    assert len(figures[1].axes) == 2  # the loss and the ranking metrics apart


def test_each_trained_model_is_one_tensorboard_run(compared):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for model in ("mf", "biased-mf"):
        for seed in (0, 1):
            board = EventAccumulator(str(compared / model / f"seed-{seed}" / "tensorboard"
                                         / "random:0.2"))
            board.Reload()
            assert [e.step for e in board.Scalars("valid/rmse")] == [1, 2]
            assert "result/rmse" in board.Tags()["scalars"]
