"""The command line end to end on small real data, and its error contract."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deepmf.cli import main
from deepmf.experiment.recipes import WARM_REFIT


def run_cli(args, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def explicit_run(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("runs") / "bmf"
    code = main(["train", "--model", "biased-mf", "--dataset", "ml-100k", "--split", "u1",
                 "--epochs", "3", "--quiet", "--data-dir", str(data_root), "--out", str(out)])
    assert code == 0
    return out


def test_train_writes_a_complete_run_directory(explicit_run):
    names = {p.name for p in explicit_run.iterdir()}
    assert {"config.toml", "metrics.json", "history.csv", "curves.png", "vocab.json",
            "items.csv", "checkpoints"} <= names
    metrics = json.loads((explicit_run / "metrics.json").read_text())
    for key in ("model", "dataset", "split", "task", "best_epoch", "epoch_seconds", "test"):
        assert key in metrics
    assert metrics["task"] == "explicit" and metrics["split"] == "u1"
    assert 0.85 < metrics["test"]["rmse"] < 1.1
    assert metrics["test"]["mae"] < metrics["test"]["rmse"]
    # Three selection epochs, then the refit going on from the chosen one on train + valid.
    assert len(metrics["epoch_seconds"]) == 3 + WARM_REFIT["biased-mf"]
    header = (explicit_run / "history.csv").read_text().splitlines()[0]
    assert "train_rmse" in header and "valid_rmse" in header
    assert (explicit_run / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_reproduces_the_test_metrics_exactly(explicit_run, capsys, data_root):
    code, out, _ = run_cli(["evaluate", explicit_run], capsys)
    assert code == 0
    saved = json.loads((explicit_run / "metrics.json").read_text())["test"]
    assert json.loads(out) == saved


def test_config_file_with_flag_override(tmp_path, capsys, data_root):
    config = tmp_path / "run.toml"
    config.write_text('model = "mf"\ndataset = "ml-100k"\nsplit = "u2"\nepochs = 5\n'
                      "dim = 8\n")
    out = tmp_path / "run"
    code, _, _ = run_cli(["train", "--config", config, "--epochs", "1", "--quiet",
                          "--data-dir", data_root, "--out", out], capsys)
    assert code == 0
    saved = (out / "config.toml").read_text()
    assert 'model = "mf"' in saved and "epochs = 1" in saved and "dim = 8" in saved
    assert 'split = "u2"' in saved


def test_implicit_run_reports_sampled_and_full_metrics(tmp_path, capsys, data_root,
                                                        monkeypatch):
    out = tmp_path / "gmf"
    code, stdout, _ = run_cli(["train", "--model", "gmf", "--dataset", "ml-100k", "--epochs",
                               "2", "--quiet", "--data-dir", data_root, "--out", out], capsys)
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "implicit" and metrics["split"] == "loo"
    assert metrics["selection"] == "validation"
    test = metrics["test"]
    assert 0 < test["ndcg@10"] <= test["hr@10"] <= 1
    assert {"hr@10", "ndcg@10", "recall@10"} <= set(test["full"])
    code, stdout, _ = run_cli(["evaluate", out, "--protocol", "sampled"], capsys)
    assert json.loads(stdout) == {key: v for key, v in test.items() if key != "full"}
    import deepmf.experiment.run as run  # one protocol asked for: the other is not computed

    monkeypatch.setattr(run, "evaluate_sampled", lambda *a, **kw: pytest.fail("sampled"))
    code, stdout, _ = run_cli(["evaluate", out, "--protocol", "full"], capsys)
    assert json.loads(stdout) == test["full"]


def test_protocol_of_a_rating_run_is_refused(explicit_run, capsys):
    code, stdout, err = run_cli(["evaluate", explicit_run, "--protocol", "full"], capsys)
    assert code == 2 and stdout == ""
    assert err.strip().count("\n") == 0 and "rating (explicit) run" in err


BAD = [
    (["train", "--model", "nope", "--dataset", "ml-100k"], "unknown model 'nope'"),
    (["train", "--model", "mf", "--dataset", "ml-100k", "--split", "sideways"],
     "unknown split 'sideways'"),
    (["train", "--model", "mf", "--dataset", "no-such-set"], "no-such-set"),
    (["train", "--model", "mf", "--no-such-flag", "1"], "no-such-flag"),
    (["train", "--model", "mf", "--epochs", "0"], "epochs"),
    (["evaluate", "/nonexistent/run"], "not a deepmf run directory"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys, tmp_path, data_root):
    out = tmp_path / "never"
    code, _, err = run_cli([*args, "--data-dir", data_root, "--out", out]
                           if args[0] == "train" else args, capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(("line", "message"), [
    ('epochs = "3"', "--epochs must be a whole number, not '3'"),
    ('dropout = "x"', "--dropout must be a number"),
    ("dropout = 1.5", "--dropout must be at least 0 and below 1"),
    ('layers = [64, "a"]', "--layers must be whole numbers"),
    ('layers = [64, 0]', "layers must be one or more positive sizes"),
    ("dim = 0", "--dim must be at least 1"),
    ("refit = 1", "--refit must be true or false"),
])
def test_config_file_of_the_wrong_kind_is_one_line_and_exit_2(line, message, tmp_path,
                                                              capsys):
    config = tmp_path / "run.toml"
    config.write_text(f'model = "mlp"\n{line}\n')
    code, _, err = run_cli(["train", "--config", config, "--out", tmp_path / "run"], capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_malformed_file_names_file_and_line_and_writes_nothing(tmp_path, capsys):
    log = tmp_path / "log.csv"
    log.write_text("user,item,rating\n1,10,4\n2,11,five\n")
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--model", "mf", "--dataset", log, "--user-col", "user",
                            "--item-col", "item", "--rating-col", "rating", "--out", out],
                           capsys)
    assert code == 2
    assert "log.csv" in err and "line 3" in err
    assert not out.exists() and list(tmp_path.iterdir()) == [log]


def test_console_script_exit_code_without_traceback(tmp_path):
    """The installed ``deepmf`` entry point, as a user runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "deepmf", "train", "--model", "nope"],
        capture_output=True, text=True, env={**os.environ, "DEEPMF_DATA_DIR": str(tmp_path)},
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "deepmf: error: unknown model 'nope'; choose from " + \
        ", ".join(__import__("deepmf.models", fromlist=["MODELS"]).MODELS)


def test_train_refuses_an_existing_run_directory(explicit_run, capsys, data_root):
    code, _, err = run_cli(["train", "--model", "mf", "--dataset", "ml-100k", "--data-dir",
                            data_root, "--out", explicit_run], capsys)
    assert code == 2 and "already exists" in err
    assert (explicit_run / "metrics.json").is_file()


def test_config_toml_reruns_the_run_into_a_new_directory(explicit_run, capsys, tmp_path):
    # Issue 12: the stored `out` made `--config RUN/config.toml` fail with "already exists".
    assert "out =" not in (explicit_run / "config.toml").read_text()
    code, out, err = run_cli(["train", "--config", explicit_run / "config.toml", "--quiet",
                              "--out", tmp_path / "again"], capsys)
    assert code == 0, err
    saved = json.loads((explicit_run / "metrics.json").read_text())
    assert json.loads(out) == saved["test"]  # same settings, same seed: the same run
    assert (tmp_path / "again" / "config.toml").read_text() == \
        (explicit_run / "config.toml").read_text()


def test_sample_users_keeps_that_many_users(tmp_path, capsys, data_root):
    out = tmp_path / "sample"
    code, _, err = run_cli(["train", "--model", "biased-mf", "--dataset", "ml-100k",
                            "--sample-users", "100", "--epochs", "1", "--quiet",
                            "--data-dir", data_root, "--out", out], capsys)
    assert code == 0, err
    vocab = json.loads((out / "vocab.json").read_text())
    assert len(vocab["users"]) == 943  # id space kept; only 100 users have rows
    import numpy as np
    from safetensors.numpy import load_file

    rows = load_file(out / "checkpoints" / "u1" / "interactions.safetensors")
    assert len(np.unique(rows["fit_users"])) == 100
    assert "sample_users = 100" in (out / "config.toml").read_text()


def test_datasets_lists_where_each_is_found(capsys, data_root):
    code, out, _ = run_cli(["datasets", "--data-dir", data_root], capsys)
    assert code == 0
    assert "ml-100k" in out and str(Path(data_root).name) in out


def test_compare_trains_each_model_into_one_table(tmp_path, capsys, data_root):
    out = tmp_path / "cmp"
    code, stdout, _ = run_cli(["compare", "--models", "mf,biased-mf", "--dataset", "ml-100k",
                               "--split", "u1", "--epochs", "2", "--quiet", "--data-dir",
                               data_root, "--out", out], capsys)
    assert code == 0
    summary = json.loads(stdout)
    assert set(summary["models"]) == {"mf", "biased-mf"}
    assert summary["models"]["biased-mf"]["rmse"] < summary["models"]["mf"]["rmse"]
    assert (out / "comparison.png").is_file() and (out / "compare.json").is_file()
    assert (out / "mf" / "seed-0" / "metrics.json").is_file()
    code, _, err = run_cli(["compare", "--models", "mf,nope", "--out", tmp_path / "x"], capsys)
    assert code == 2 and "unknown model 'nope'" in err and not (tmp_path / "x").exists()


def test_explicit_refit_from_scratch_replays_the_selections_rates(tmp_path, capsys,
                                                                  data_root):
    out = tmp_path / "decay"
    code, _, _ = run_cli(["train", "--model", "mf", "--dataset", "ml-100k", "--split", "u1",
                          "--epochs", "12", "--lr", "0.05", "--lr-decay", "0.5",
                          "--patience", "0", "--quiet", "--data-dir", data_root,
                          "--out", out], capsys)
    assert code == 0
    rows = list(csv.DictReader((out / "history.csv").open()))
    select = [float(r["lr"]) for r in rows if r["phase"] == "select"]
    refit = [float(r["lr"]) for r in rows if r["phase"] == "refit"]
    best = json.loads((out / "metrics.json").read_text())["best_epoch"]
    assert "mf" not in WARM_REFIT and refit == select[:best]
    assert min(select[:best]) < 0.05  # mf at lr 0.05 overfits ml-100k: the decay began before
    # the best epoch, so the refit's rates decay too


def test_alternating_models_train_from_the_command_line(tmp_path, capsys, data_root):
    """ALS on ratings and iALS on the NCF files, a few sweeps each, through `deepmf train`."""
    code, out, err = run_cli(["train", "--model", "als", "--dataset", "ml-100k", "--split",
                              "u1", "--epochs", "4", "--quiet", "--data-dir", data_root,
                              "--out", tmp_path / "als"], capsys)
    assert code == 0, err
    assert json.loads(out)["rmse"] < 0.95  # biased baseline about 0.96 on u1
    code, out, err = run_cli(["train", "--model", "ials", "--dataset", "ncf:deepcf/AMusic",
                              "--epochs", "3", "--dim", "32", "--quiet", "--data-dir",
                              data_root, "--out", tmp_path / "ials"], capsys)
    assert code == 0, err
    assert json.loads(out)["hr@10"] > 0.2387 + 0.05  # itempop 0.2387
    history = (tmp_path / "ials" / "history.csv").read_text().splitlines()
    assert len(history) == 4 and "valid_hr@10" in history[0]


def test_bayes_mf_samples_on_all_of_train_and_reads_test_days(tmp_path, capsys, data_root):
    """A short chain through `deepmf train`: no validation split (more samples only help),
    burn-in + samples sweeps, the day field on (ml-100k has timestamps)."""
    out = tmp_path / "bayes"
    code, stdout, err = run_cli(["train", "--model", "bayes-mf", "--dataset", "ml-100k",
                                 "--split", "u1", "--samples", "12", "--burn-in", "4",
                                 "--no-side-features", "--quiet", "--data-dir", data_root,
                                 "--out", out], capsys)
    assert code == 0, err
    assert json.loads(stdout)["rmse"] < 0.94  # biased baseline about 0.96 on u1
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 16 and ",select," in history[1]
    model = json.loads((out / "checkpoints" / "u1" / "model.json").read_text())
    assert model["model_args"]["days"] is True and model["model_args"]["samples"] == 12
    code, again, _ = run_cli(["evaluate", out, "--data-dir", data_root], capsys)
    assert code == 0 and json.loads(again)["rmse"] == json.loads(stdout)["rmse"]


@pytest.mark.skipif(not shutil.which("g++"), reason="torch.compile needs g++")
def test_compile_trains_to_the_same_metrics(data_root, tmp_path, capsys):
    """``--compile`` from the command line: recorded in config.toml, and the compiled steps
    (full batches) with the eager one (the shorter last batch) end where eager steps do."""
    metrics = {}
    for flag in ("--compile", "--no-compile"):
        out = tmp_path / flag
        code, _, _ = run_cli(["train", "--model", "biased-mf", "--dataset", "ml-100k",
                              "--split", "u1", "--sample-users", "60", "--epochs", "3",
                              "--batch-size", "512", "--quiet", "--data-dir", data_root,
                              "--out", out, flag], capsys)
        assert code == 0
        assert f"compile = {str(flag == '--compile').lower()}" in \
            (out / "config.toml").read_text()
        metrics[flag] = json.loads((out / "metrics.json").read_text())["test"]
    for name, value in metrics["--no-compile"].items():
        assert metrics["--compile"][name] == pytest.approx(value, rel=1e-4)
