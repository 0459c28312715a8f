"""The malformed-input corpus, part 2: every numeric flag of ``train`` at NaN, infinity,
below its range, zero and absurdly large; unknown names; ``--pretrain``, ``--config`` and
``--data-dir`` mistakes; and ``compare`` and ``datasets``. Same contract as part 1."""

from __future__ import annotations

import shutil

import pytest
from helpers import refused, tiny_ratings, write_log

HUGE = str(10**30)
"""Past 64 bits: refused before anything can overflow."""

# (flags, needles); the model is mf (explicit) unless the flags name another.
TRAIN_FLAGS = [
    (["--lr", "nan"], ["--lr must be a finite number, not nan"]),
    (["--lr", "inf"], ["--lr must be a finite number, not inf"]),
    (["--lr", "-1"], ["--lr must be a positive number"]),
    (["--lr", "0"], ["--lr must be a positive number"]),
    (["--epochs", "0"], ["--epochs"]),
    (["--epochs", "-3"], ["--epochs"]),
    (["--epochs", HUGE], ["--epochs must fit in 64 bits"]),
    (["--dim", "0"], ["--dim"]),
    (["--dim", str(10**15)], ["--dim 1000000000000000", "needs about", "of memory of"]),
    (["--dim", str(2**63 - 1)], ["too large to build"]),
    (["--batch-size", "0"], ["--batch-size"]),
    (["--batch-size", HUGE], ["--batch-size must fit in 64 bits"]),
    (["--reg", "inf"], ["--reg must be a finite number, not inf"]),
    (["--reg", "-1"], ["--reg"]),
    (["--weight-decay", "nan"], ["--weight-decay"]),
    (["--model", "mlp", "--dropout", "1.5"], ["--dropout"]),
    (["--model", "mlp", "--dropout", "nan"], ["--dropout"]),
    (["--lr-decay", "0"], ["--lr-decay must lie in (0, 1]"]),
    (["--lr-decay", "2"], ["--lr-decay must lie in (0, 1]"]),
    (["--lr-decay", "nan"], ["--lr-decay must be a finite number"]),
    (["--model", "gmf", "--num-neg", "0"], ["--num-neg"]),
    (["--model", "gmf", "--num-neg", str(10**13)], ["--num-neg 10000000000000 over",
                                                    "needs about"]),
    (["--seed", "-1"], ["--seed must be at least 0"]),
    (["--seed", HUGE], ["--seed must fit in 64 bits"]),
    (["--valid-fraction", "0"], ["--valid-fraction must lie strictly between 0 and 1"]),
    (["--valid-fraction", "nan"], ["--valid-fraction must be a finite number"]),
    (["--model", "gmf", "--min-rating", "nan"], ["--min-rating must be a finite number"]),
    (["--model", "gmf", "--min-rating", "-inf"], ["--min-rating must be a finite number"]),
    (["--k", "0"], ["--k"]),
    (["--model", "gmf", "--k", str(10**11)], ["--k 100000000000 is more than the"]),
    (["--sample-users", "0"], ["--sample-users must be at least 1"]),
    (["--patience", "-1"], ["--patience"]),
    (["--model", "mlp", "--layers", "64,-3"], ["--layers must be sizes like 64,32,16"]),
    (["--model", "mlp", "--layers", "abc"], ["--layers must be sizes like 64,32,16"]),
    (["--model", "mlp", "--layers", "16,0"], ["layers must be one or more positive sizes"]),
    (["--model", "mlp", "--layers", f"{10**11},8"], ["--layers 100000000000,8", "needs about"]),
    (["--model", "dmf", "--user-layers", "64,x"], ["--user-layers must be sizes"]),
    (["--rating-range", "5,1"], ["--rating-range must be two numbers LOW,HIGH"]),
    (["--rating-range", "nan,5"], ["--rating-range must be a finite number"]),
    (["--rating-range", "1"], ["--rating-range must be LOW,HIGH"]),
    (["--sep", ""], ["--sep must be one character"]),
    (["--split", "random:nan"], ["split 'random:nan': P must be a number between 0 and 1"]),
    (["--split", "random:2"], ["P must be a number between 0 and 1"]),
    (["--split", "sideways"], ["unknown split 'sideways'"]),
    (["--split", "u1"], ["split 'u1' needs ml-100k's official folds"]),
    (["--model", "nope"], ["unknown model 'nope'"]),
    (["--device", "tpu"], ["unknown device 'tpu'"]),
    (["--optimizer", "lbfgs"], ["unknown optimizer 'lbfgs'"]),
    (["--model", "gmf", "--loss", "hinge"], ["unknown loss 'hinge'"]),
    (["--task", "sideways"], ["--task must be explicit or implicit"]),
    (["--select-on", "train"], ["--select-on must be valid or test"]),
    (["--model", "biased-mf", "--layers", "8"], ["--layers does not apply to model biased-mf"]),
    (["--model", "gmf", "--task", "explicit"], ["model gmf ranks items"]),
    (["--model", "dmf", "--compile"], ["--compile does not apply to model dmf"]),
    (["--model", "mlp", "--dropout", "0.2", "--compile"], ["towers without dropout"]),
    (["--compile", "--device", "cuda"], ["--compile", "--device cuda"]),
    (["--model", "mf", "--task", "implicit", "--loss", "bpr", "--compile"],
     ["--compile", "--loss bpr"]),
    (["--no-such-flag", "1"], ["No such option"]),
]


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    """A valid generated log: 20 users, 30 items, 8 rows each."""
    return write_log(tmp_path_factory.mktemp("flags") / "log.csv", tiny_ratings())


@pytest.mark.parametrize(("flags", "needles"), TRAIN_FLAGS,
                         ids=[" ".join(f[0])[:40] for f in TRAIN_FLAGS])
def test_bad_train_flag(flags, needles, log, tmp_path, capsys):
    out = tmp_path / "run"
    model = [] if "--model" in flags else ["--model", "mf"]
    epochs = [] if "--epochs" in flags else ["--epochs", "1"]
    refused(capsys, ["train", "--dataset", log, *model, *flags, *epochs, "--quiet",
                     "--out", out], *needles, out=out)


@pytest.fixture(scope="module")
def gmf_run(tmp_path_factory, log):
    from deepmf.cli import main

    out = tmp_path_factory.mktemp("flag-runs") / "gmf"
    assert main(["train", "--model", "gmf", "--dataset", str(log), "--epochs", "1", "--quiet",
                 "--out", str(out)]) == 0
    return out


def test_pretrain_from_two_gmf_runs(gmf_run, log, tmp_path, capsys):
    out = tmp_path / "run"
    refused(capsys, ["train", "--model", "neumf", "--dataset", log, "--pretrain",
                     f"{gmf_run},{gmf_run}", "--out", out],
            f"--pretrain: {gmf_run} is a gmf run; neumf is built from a gmf run then a mlp run",
            out=out)


@pytest.mark.skipif(not shutil.which("g++"), reason="--compile needs a C++ compiler first")
def test_compiled_fine_tuning_refuses_a_part_with_dropout(gmf_run, log, tmp_path, capsys):
    from deepmf.cli import main

    mlp = tmp_path / "mlp"
    assert main(["train", "--model", "mlp", "--dataset", str(log), "--epochs", "1",
                 "--dropout", "0.2", "--quiet", "--out", str(mlp)]) == 0
    capsys.readouterr()
    out = tmp_path / "run"
    refused(capsys, ["train", "--model", "neumf", "--dataset", log, "--pretrain",
                     f"{gmf_run},{mlp}", "--compile", "--device", "cpu", "--out", out],
            f"{mlp} trained with dropout 0.2", out=out)


@pytest.mark.parametrize(("pretrain", "needles"), [
    ("{gmf}", ["--pretrain takes 2 runs for neumf: a gmf run then a mlp run"]),
    ("{gmf},", ["--pretrain takes 2 runs"]),
    ("{gmf},{tmp}/nothing", ["nothing: not a deepmf run directory"]),
])
def test_pretrain_mistakes(pretrain, needles, gmf_run, log, tmp_path, capsys):
    out = tmp_path / "run"
    runs = pretrain.format(gmf=gmf_run, tmp=tmp_path)
    refused(capsys, ["train", "--model", "neumf", "--dataset", log, "--pretrain", runs,
                     "--out", out], *needles, out=out)


@pytest.mark.parametrize(("text", "needles"), [
    (None, ["config file not found"]),
    (b"\xff\xfe", ["not valid TOML"]),
    (b"epochs = \n", ["not valid TOML"]),
    (b"lr = nan\n", ["--lr must be a finite number, not nan"]),
    (b"seed = 1e400\n", ["--seed must be a whole number, not inf"]),
    (b"[section]\nx = 1\n", ["unknown setting 'section'"]),
    (b'layers = [64, "a"]\n', ["--layers must be whole numbers"]),
    (b"rating_range = [1, 2, 3]\n", ["--rating-range must be two numbers"]),
])
def test_bad_config_file(text, needles, log, tmp_path, capsys):
    config, out = tmp_path / "run.toml", tmp_path / "run"
    if text is not None:
        config.write_bytes(text)
    refused(capsys, ["train", "--config", config, "--dataset", log, "--out", out],
            *needles, out=out)


def test_missing_data_dir(log, tmp_path, capsys):
    out = tmp_path / "run"
    refused(capsys, ["train", "--dataset", "ml-100k", "--data-dir", tmp_path / "typo",
                     "--out", out], "--data-dir", "typo: no such folder", out=out)


def test_table_options_for_a_named_data_set(tmp_path, capsys):
    out = tmp_path / "run"
    refused(capsys, ["train", "--dataset", "ml-100k", "--user-col", "who", "--out", out],
            "--user-col applies to log files, not to ml-100k", out=out)


def test_existing_run_directory_is_left_alone(log, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    refused(capsys, ["train", "--model", "mf", "--dataset", log, "--out", out],
            "already exists and is not empty")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize(("args", "needles"), [
    (["--models", "mf,nope"], ["unknown model 'nope'"]),
    (["--models", " , "], ["--models needs at least one model name"]),
    (["--models", "mf", "--epochs", "0"], ["--epochs"]),
    (["--models", "mf", "--seed", "-1"], ["--seed must be at least 0"]),
    (["--models", "mf", "--select-on", "train"], ["--select-on must be valid or test"]),
    (["--models", "mf", "--split", "random:1.5"], ["P must be a number between 0 and 1"]),
    (["--models", "mf", "--data-dir", "/no/such/folder"], ["no such folder"]),
])
def test_bad_compare(args, needles, log, tmp_path, capsys):
    out = tmp_path / "cmp"
    refused(capsys, ["compare", "--dataset", log, *args, "--quiet", "--out", out], *needles,
            out=out)


def test_compare_on_a_missing_file(tmp_path, capsys):
    out = tmp_path / "cmp"
    refused(capsys, ["compare", "--models", "mf", "--dataset", tmp_path / "none.csv",
                     "--quiet", "--out", out], "none.csv: no such file", out=out)


@pytest.mark.parametrize("where", ["missing", "file"])
def test_bad_datasets_data_dir(where, tmp_path, capsys):
    target = tmp_path / "data"
    if where == "file":
        target.write_text("not a folder")
    refused(capsys, ["datasets", "--data-dir", target], f"--data-dir {target}: no such folder")
