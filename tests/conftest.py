"""Shared fixtures: real data through DEEPMF_DATA_DIR (skipped when absent), small logs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Tiny models gain nothing from a second thread, and spinning threads slow a shared machine.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` skip, with the reason, where CUDA is absent."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (marked gpu)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def shared_data_dir() -> Path | None:
    """$DEEPMF_DATA_DIR made absolute: the README sets it relative (``../shared/data``), and
    a test that builds links or changes directory must not depend on the working directory."""
    value = os.environ.get("DEEPMF_DATA_DIR")
    return Path(value).resolve() if value and Path(value).is_dir() else None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data_dir()
    if root is None:
        pytest.skip("DEEPMF_DATA_DIR is not set to a folder: real MovieLens/NCF files unavailable")
    return root


@pytest.fixture(scope="session")
def ml100k(data_root):
    if not (data_root / "ml-100k" / "u.data").is_file():
        pytest.skip("ml-100k is missing from DEEPMF_DATA_DIR")
    from deepmf.readers import load_dataset

    return load_dataset("ml-100k", data_root, download=False)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, data_root):
    """A small trained ml-100k run, shared by the recommend, serve and browser tests."""
    from serve_run import make_run

    return make_run(tmp_path_factory, data_root)


@pytest.fixture(scope="session")
def trained(run_dir, data_root):
    """That run loaded once for serving."""
    from deepmf.experiment.trained import TrainedModel

    return TrainedModel(run_dir, data_dir=str(data_root))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A miniature ml-100k release (200 users, 100 items, titles and genres) generated in a
    fresh folder: pass it as ``--data-dir``. Tests built on it need no real data."""
    from helpers import write_movielens

    return write_movielens(tmp_path_factory.mktemp("tiny-data"), users=200, items=100,
                           per_user=10)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_data) -> Path:
    """biased-mf trained for one epoch on :func:`tiny_data` (explicit, random split)."""
    from deepmf.cli import main

    out = tmp_path_factory.mktemp("tiny-runs") / "bmf"
    code = main(["train", "--model", "biased-mf", "--dataset", "ml-100k", "--split",
                 "random:0.2", "--epochs", "1", "--dim", "8", "--quiet", "--data-dir",
                 str(tiny_data), "--out", str(out)])
    assert code == 0, "training the tiny test run failed"
    return out
