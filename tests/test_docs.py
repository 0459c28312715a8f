"""The Python examples of the README and docs/python.md, run as written (on a sample of
ml-100k and in a temporary folder), so that they cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import deepmf
from deepmf.split import sample_users

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def blocks(name: str) -> list[str]:
    found = BLOCK.findall((ROOT / name).read_text())
    assert found, f"{name} has no python blocks"
    return found


@pytest.fixture
def small_ml100k(ml100k, data_root, monkeypatch, tmp_path):
    """``load_dataset`` answers with 150 of ml-100k's users; the data dir made absolute."""
    sample = ml100k.restrict_users(sample_users(ml100k.interactions, 150, seed=0))
    monkeypatch.setattr(deepmf, "load_dataset", lambda *args, **kwargs: sample, raising=False)
    monkeypatch.setenv("DEEPMF_DATA_DIR", str(data_root))
    monkeypatch.chdir(tmp_path)
    return sample


def run_blocks(name: str) -> dict:
    namespace: dict = {}
    for number, code in enumerate(blocks(name), 1):
        exec(compile(code, f"{name} python block {number}", "exec"), namespace)
    return namespace


def test_the_python_walkthrough_runs(small_ml100k, capsys):
    namespace = run_blocks("docs/python.md")
    assert 0.7 < namespace["best"]["valid_rmse"] < 1.3
    assert namespace["items"].shape == (3, 5) and len(namespace["titles"]) == 5
    assert namespace["name"] == "biased-mf"
    assert "rmse" in namespace["metrics"]["test"]
    assert "hr@10" in capsys.readouterr().out


def test_the_readme_python_examples_run(small_ml100k, run_dir, tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "my-run").symlink_to(run_dir)
    run_blocks("README.md")
    printed = capsys.readouterr().out.splitlines()
    assert "hr@10" in printed[0] and len(printed) == 11  # the metrics, then ten items
