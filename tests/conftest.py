"""Shared fixtures: real data through DEEPMF_DATA_DIR (skipped when absent), small logs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from deepmf.data import Interactions

# Tiny models gain nothing from a second thread, and spinning threads slow a shared machine.
torch.set_num_threads(1)


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
    from deepmf.recommend import TrainedModel

    return TrainedModel(run_dir, data_dir=str(data_root))


def checkerboard(n_blocks: int = 2, block: int = 8) -> tuple[Interactions, Interactions]:
    """Users and items in blocks; each user has every item of its block but one, withheld.

    The withheld item (the "diagonal") is the only unseen item of the user's own block, so a
    model that learns the block structure must rank it first among unseen items.
    """
    users, items, test_users, test_items = [], [], [], []
    for b in range(n_blocks):
        for j in range(block):
            u = b * block + j
            for i in range(block):
                (test_items if i == j else items).append(b * block + i)
                (test_users if i == j else users).append(u)
    n = n_blocks * block
    return (
        Interactions(np.array(users), np.array(items), n_users=n, n_items=n),
        Interactions(np.array(test_users), np.array(test_items), n_users=n, n_items=n),
    )
