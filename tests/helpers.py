"""Builders shared by the tests: small known-answer data and models."""

from __future__ import annotations

import numpy as np

from deepmf.data import Interactions
from deepmf.models import build_model, hyperparameters


def build(name: str, train: Interactions, **options):
    """``build_model`` with only the options this model takes (the rest dropped)."""
    return build_model(name, train, **{k: v for k, v in options.items()
                                       if k in hyperparameters(name)})


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
