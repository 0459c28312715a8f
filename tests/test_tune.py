"""deepmf tune: results, resuming, pruning and every failure path, on a tiny synthetic log."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from deepmf.cli import main
from deepmf.experiment.config import RunConfig, read_config
from deepmf.experiment.recipes import EXPLICIT
from deepmf.models import EXPLICIT_MODELS, MODELS

optuna = pytest.importorskip("optuna")

DATA = "synthetic:users=50,items=30,interactions=1000,ratings=true"
SPACE = 'epochs = 4\npatience = 0\nlr = { low = 0.002, high = 0.05, log = true }\n' \
        'dim = { choices = [4, 8] }\n'


def tune(tmp_path, capsys, *extra, space=SPACE, model="biased-mf", trials=3):
    space_file = tmp_path / "space.toml"
    space_file.write_text(space)
    code = main(["tune", "--model", model, "--dataset", DATA, "--trials", str(trials),
                 "--space", str(space_file), "--quiet", "--out", str(tmp_path / "study"),
                 *map(str, extra)])
    out, err = capsys.readouterr()
    return code, out, err


def test_tune_writes_its_files_and_resumes_the_study(tmp_path, capsys):
    code, out, err = tune(tmp_path, capsys, "--tensorboard")
    assert code == 0, err
    folder = tmp_path / "study"
    trial_runs = sorted(p.name for p in (folder / "tensorboard").iterdir())
    assert trial_runs == ["trial-0000", "trial-0001", "trial-0002"]
    summary = json.loads((folder / "tune.json").read_text())
    assert summary["n_trials"] == 3 and summary["objective"] == "valid_rmse"
    assert set(summary["best_params"]) == {"lr", "dim"} and summary["test"]["rmse"] > 0
    assert "trial 2 (3/3): valid_rmse" in err
    first = next(line for line in err.splitlines() if line.startswith("trial 0 (1/3)"))
    # trial 0 is the recipe's learning rate (its dim 64 is not a choice)
    assert f"lr={EXPLICIT['biased-mf']['lr']} " in first
    # The objective is the retrained run's own validation (carved from train), not test.
    rows = list(csv.DictReader((folder / "best" / "history.csv").open()))
    valid = [float(r["valid_rmse"]) for r in rows if r["phase"] == "select"]
    assert min(valid) == pytest.approx(summary["best_value"])
    # The best settings are a config file deepmf train accepts.
    settings = RunConfig(**read_config(folder / "config.toml"))
    assert settings.lr == pytest.approx(summary["best_params"]["lr"]) and settings.epochs == 4
    for picture in ("history.png", "importance.png"):
        assert (folder / picture).read_bytes()[:4] == b"\x89PNG"
    best_weights = (folder / "best" / "checkpoints").stat().st_mtime_ns
    code, out, err = tune(tmp_path, capsys, trials=1)
    assert code == 0 and "resuming the study" in err and "3 trials so far" in err
    summary = json.loads(out)
    assert summary["n_trials"] == 4 and "trial 3 (1/1)" in err
    if summary["best_trial"] < 3:  # the best did not change: its run is reused, not redone
        assert "reused" in err
        assert (folder / "best" / "checkpoints").stat().st_mtime_ns == best_weights


def test_a_recipe_value_outside_a_range_starts_at_its_nearest_end(tmp_path, capsys):
    code, _, err = tune(tmp_path, capsys, trials=1,
                        space="epochs = 2\nreg = { low = 0.2, high = 1.0, log = true }\n")
    assert code == 0, err
    assert "trial 0 (1/1): valid_rmse" in err and "reg=0.2 " in err  # the recipe's is 0.1


@pytest.mark.parametrize("space, message", [
    ("foo = { low = 1, high = 2 }\n", "unknown parameter 'foo'"),
    ("", "is empty"),
    ("epochs = 3\n", "fixes every setting"),
    ("lr = { low = 0.1, high = 0.01 }\n", "lr: low 0.1 is above high 0.01"),
    ("lr = { low = 0.0, high = 0.1, log = true }\n", "log = true needs a positive low"),
    ("dim = { choices = [] }\n", "choices must be a non-empty list"),
    ("dropout = { low = 0.0, high = 1.5 }\n", "dropout"),
    ("layers = { choices = [[8, 4]] }\n", "--layers does not apply to model biased-mf"),
    ("num_neg = { low = 1, high = 4 }\n", "--num-neg does not apply"),
    ("lr = { lo = 0.1, high = 0.2 }\n", "unknown key 'lo'"),
])
def test_a_bad_space_is_one_line_and_exit_2(space, message, tmp_path, capsys):
    code, _, err = tune(tmp_path, capsys, space=space)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "study" / "study.db").exists()


def test_a_study_of_another_model_is_refused(tmp_path, capsys):
    assert tune(tmp_path, capsys, trials=1)[0] == 0
    code, _, err = tune(tmp_path, capsys, model="mf", trials=1)
    assert code == 2 and "holds a study of biased-mf" in err and "differs in model" in err


def test_a_file_that_is_not_a_study_is_refused(tmp_path, capsys):
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "study.db").write_text("not a database")
    code, _, err = tune(tmp_path, capsys)
    assert code == 2 and "not an Optuna study" in err


def test_ctrl_c_mid_trial_keeps_the_finished_trials_and_resumes(tmp_path, capsys,
                                                                monkeypatch):
    import deepmf.experiment.tune as tuning

    real, calls = tuning.fit_split, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(tuning, "fit_split", interrupted)
    code, _, err = tune(tmp_path, capsys, trials=5)
    assert code == 130 and "keeps its finished trials" in err
    monkeypatch.setattr(tuning, "fit_split", real)
    code, out, err = tune(tmp_path, capsys, trials=1)
    assert code == 0 and "3 trials so far (2 complete, 1 fail)" in err
    assert json.loads(out)["trials"] == {"complete": 3, "pruned": 0, "fail": 1}


def test_missing_optuna_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    code, _, err = tune(tmp_path, capsys)
    assert code == 2 and "pip install 'deepmf[tune]'" in err


def test_a_lagging_trial_is_pruned_on_its_best_value_so_far():
    from deepmf.experiment.tune import PruneTrial, Search

    class Trial:
        reports: list = []

        def report(self, value, step):
            self.reports.append((step, value))

        def should_prune(self):
            return len(self.reports) == 3

        def set_user_attr(self, key, value):
            pass

    search = Search(None, None, {}, "valid_rmse", "minimize")
    callback, trial = PruneTrial(Trial(), search), Trial()
    callback.trial = trial
    callback.on_epoch_end({"epoch": 1, "valid_rmse": 1.0}, None)
    callback.on_epoch_end({"epoch": 2, "valid_rmse": 0.9}, None)
    with pytest.raises(optuna.TrialPruned):
        callback.on_epoch_end({"epoch": 3, "valid_rmse": 0.95}, None)
    assert trial.reports == [(1, 1.0), (2, 0.9), (3, 0.9)]


@pytest.mark.parametrize("model", [m for m in MODELS if MODELS[m].trainer is not None])
def test_every_trained_model_has_a_default_space_that_applies(model):
    from deepmf.experiment.space import check_space, default_space

    tasks = ("explicit", "implicit") if model in EXPLICIT_MODELS else ("implicit",)
    tasks = (MODELS[model].task,) if hasattr(MODELS[model], "task") else tasks  # one only
    for task in tasks:
        if model == "deepmf" and task == "implicit":
            continue
        config = RunConfig(model=model, task=task, split="loo")
        check_space(default_space(model, task), {}, config)


def test_trial_0_is_the_recipe_as_near_as_the_space_allows():
    from deepmf.experiment.space import Param, choose

    assert choose(1024, 4096).nearest(256) == 1024  # a small log's halved batch
    assert choose((64, 32), (128, 64)).nearest((64, 32)) == (64, 32)
    assert choose((64, 32)).nearest((8, 4)) is None
    assert Param(1e-5, 0.1, log=True).nearest(0.0) == 1e-5
    assert Param(0.0, 0.5).nearest(None) is None
