"""Loss functions against their formulas, written out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from deepmf.losses import RANKING_LOSSES, bce, bpr, mse


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_mse_by_hand():
    # errors 1 and -2: (1 + 4) / 2
    assert mse(torch.tensor([4.0, 1.0]), torch.tensor([3.0, 3.0])).item() == pytest.approx(2.5)


def test_bce_by_hand():
    # -(log σ(2) + log(1 - σ(-1))) / 2 = -(log σ(2) + log σ(1)) / 2
    got = bce(torch.tensor([2.0, -1.0]), torch.tensor([1.0, 0.0])).item()
    assert got == pytest.approx(-(math.log(sigmoid(2)) + math.log(sigmoid(1))) / 2)


def test_bpr_pairs_each_negative_with_its_rows_positive():
    positive = torch.tensor([1.0, 0.0])
    negative = torch.tensor([[0.0, 3.0], [-1.0, 0.0]])
    # pairs: 1-0, 1-3, 0-(-1), 0-0
    want = -sum(math.log(sigmoid(d)) for d in (1.0, -2.0, 1.0, 0.0)) / 4
    assert bpr(positive, negative).item() == pytest.approx(want)


def test_ranking_losses_by_name():
    assert RANKING_LOSSES == {"bce": bce, "bpr": bpr}
