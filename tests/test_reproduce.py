"""deepmf reproduce and the shipped recipes: every recipe applies to its model, a table
trains its pre-training chain in order, and train --recipe starts from a row."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from deepmf.cli import main
from deepmf.experiment import reproduce as rep
from deepmf.experiment.plan import check_settings
from deepmf.experiment.reproduce import Row, Table

DATA = "synthetic:users=40,items=30,interactions=800"
TINY = Table("tiny-syn", "A tiny table", "tiny", DATA, "syn", "HR@10 / NDCG@10", (
    Row("pop", "itempop", published=(0.3, 0.1), source="a paper"),
    Row("gmf", "gmf", {"epochs": 1, "dim": 4}),
    Row("mlp", "mlp", {"epochs": 1, "dim": 4, "dropout": 0.1}),
    Row("neumf", "neumf", {"epochs": 1}, ("gmf", "mlp"), (0.5, 0.3), "a paper",
        readme={"test": [0.4, 0.2]}),
))


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(rep, "load_tables", lambda: {TINY.key: TINY})
    return TINY


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("key", sorted(rep.load_tables()))
def test_every_shipped_recipe_applies_to_its_model(key):
    table = rep.load_tables()[key]
    seen = set()
    for row in table.rows:
        assert set(row.pretrain) <= seen, f"{row.name} is pre-trained from a later row"
        pretrain = "a,b" if row.pretrain else None
        check_settings(replace(table.config(row), task="implicit", split="given",
                               pretrain=pretrain))
        if row.published:
            assert len(row.published) == 2
        seen.add(row.name)
    assert table.dataset.startswith("ncf:deepcf/")


def test_reproduce_trains_the_parts_first_then_reuses_them(tiny, tmp_path, capsys):
    code, out, err = cli(capsys, "reproduce", "tiny", "--rows", "neumf", "--quiet",
                         "--out", tmp_path)
    assert code == 0, err
    folder = tmp_path / "syn"
    trained = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert trained == ["gmf-test", "gmf-valid", "mlp-test", "mlp-valid", "neumf-test",
                       "neumf-valid"]  # not pop, which neumf does not need
    config = (folder / "neumf-test" / "config.toml").read_text()
    assert f'pretrain = "{folder / "gmf-test"},{folder / "mlp-test"}"' in config
    assert 'select_on = "test"' in config
    summary = json.loads(out)[0]
    neumf = summary["rows"][-1]
    assert neumf["published"] == [0.5, 0.3] and set(neumf["ours"]) == {"valid", "test"}
    table = (folder / "reproduce.md").read_text()
    assert "| neumf |" in table and "0.5000 / 0.3000" in table and "test 0.4000" in table
    code, _, err = cli(capsys, "reproduce", "tiny", "--rows", "neumf", "--select", "test",
                       "--quiet", "--out", tmp_path)
    assert code == 0 and err.count("reused") == 3


def test_train_starts_from_a_recipe_and_flags_override_it(tiny, tmp_path, capsys):
    code, _, err = cli(capsys, "train", "--recipe", "tiny-syn/mlp", "--epochs", "1", "--quiet",
                       "--out", tmp_path / "run")
    assert code == 0, err
    config = (tmp_path / "run" / "config.toml").read_text()
    assert 'model = "mlp"' in config and "dim = 4" in config and "dropout = 0.1" in config
    assert "epochs = 1" in config
    code, _, err = cli(capsys, "train", "--recipe", "tiny-syn/neumf", "--out", tmp_path / "x")
    assert code == 2 and "fine-tunes gmf and mlp" in err and "--pretrain" in err
    code, _, err = cli(capsys, "train", "--recipe", "tiny-syn/nope", "--out", tmp_path / "x")
    assert code == 2 and "no row 'nope'" in err
    code, _, err = cli(capsys, "reproduce", "nope", "--out", tmp_path / "x")
    assert code == 2 and "unknown table 'nope'" in err
    assert not (tmp_path / "x").exists()


def test_recipes_lists_the_shipped_rows_and_a_models_defaults(capsys):
    code, out, _ = cli(capsys, "recipes")
    assert code == 0 and "ncf-ml-1m/neumf-32" in out and "deepcf-AMusic/cfnet" in out
    code, out, _ = cli(capsys, "recipes", "--model", "gmf")
    assert code == 0 and json.loads(out)["dim"] == 8
