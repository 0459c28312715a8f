"""DeepCF models (dmf, cfnet-ml, cfnet): sparse first layer, leakage, pre-training, known answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepmf.checkpoint import load_checkpoint, save_checkpoint
from deepmf.data import Interactions
from deepmf.errors import ConfigError
from deepmf.evaluate import evaluate_full
from deepmf.models import DMF, CFNet, CFNetML
from deepmf.models.sparse_rows import InteractionRows, SparseLinear
from deepmf.split import leave_one_out
from deepmf.tasks import RankingTask
from deepmf.train import TrainConfig, fit
from tests.helpers import build, checkerboard

SMALL = dict(user_layers=(16, 8), item_layers=(12, 8), layers=(16, 8, 4))


@pytest.fixture(scope="module")
def log() -> Interactions:
    rng = np.random.default_rng(1)
    n_users, n_items, n = 26, 30, 300  # user 25 has no interactions
    return Interactions(rng.integers(0, n_users - 1, n), rng.integers(0, n_items, n),
                        timestamps=rng.permutation(n), n_users=n_users, n_items=n_items)


def perturbed(model):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("n_out", [6, 150])  # one column panel; three, the last ragged
def test_sparse_first_layer_equals_dense_linear(log, n_out):
    torch.manual_seed(0)
    rows = InteractionRows(log.csr)
    layer = SparseLinear(log.n_items, n_out, mean_nnz=log.csr.nnz / log.n_users)
    dense = torch.nn.Linear(log.n_items, n_out)
    with torch.no_grad():
        layer.bias.normal_()
        dense.weight.copy_((layer.weight * layer.scale).T)
        dense.bias.copy_(layer.bias)
    ids = torch.tensor([3, 0, 3, 17, 25])  # a repeated id and an empty row
    binary = torch.as_tensor(log.csr.toarray())[ids]  # a dense [5, n_items] test oracle only
    out_sparse, out_dense = layer(rows, ids), dense(binary)
    torch.testing.assert_close(out_sparse, out_dense, rtol=1e-5, atol=1e-6)
    grad = torch.randn_like(out_dense)
    out_sparse.backward(grad)
    out_dense.backward(grad)
    torch.testing.assert_close(layer.weight.grad / layer.scale, dense.weight.grad.T,
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layer.bias.grad, dense.bias.grad, rtol=1e-5, atol=1e-6)


def test_rows_hold_exactly_the_training_pairs(log):
    rows = InteractionRows(log.csr)
    ids = torch.arange(log.n_users)
    flat, offsets = rows.gather(ids)
    counts = torch.diff(torch.cat([offsets, torch.tensor([len(flat)])]))
    users = torch.repeat_interleave(ids, counts).numpy()
    assert set(zip(users, flat.numpy())) == set(zip(log.users, log.items))


@pytest.mark.parametrize("name", ["dmf", "cfnet-ml", "cfnet"])
def test_no_test_item_leaks_into_interaction_rows(name, log):
    train, test = leave_one_out(log)
    model = build(name, train, **SMALL)
    part = model.dmf if name == "cfnet" else model
    keys = set(zip(train.users, train.items))
    fresh = [(u, i) for u, i in zip(test.users, test.items) if (u, i) not in keys]
    assert fresh  # the check below is not vacuous
    for u, i in fresh:
        user_row, _ = part.user_rows.gather(torch.tensor([u]))
        item_row, _ = part.item_rows.gather(torch.tensor([i]))
        assert i not in user_row.tolist() and u not in item_row.tolist()


def test_state_dict_holds_weights_only(log):
    for name in ("dmf", "cfnet-ml", "cfnet"):
        keys = build(name, log, **SMALL).state_dict()
        assert not [k for k in keys if "indices" in k or "indptr" in k]


def test_cfnet_pretraining_loads_both_parts_exactly(log, tmp_path):
    torch.manual_seed(0)
    dmf = perturbed(DMF(log.n_users, log.n_items, log, (16, 8), (12, 8)))
    ml = perturbed(CFNetML(log.n_users, log.n_items, log, (16, 8, 4)))
    model = CFNet.from_pretrained(dmf, ml).eval()
    for part, source in ((model.dmf, dmf), (model.ml, ml)):
        for key, value in source.state_dict().items():
            assert torch.equal(part.state_dict()[key], value), key
    users, items = torch.tensor([0, 4, 4, 24]), torch.tensor([1, 1, 29, 0])
    with torch.no_grad():
        expected = 0.5 * dmf(users, items) + 0.5 * ml(users, items)
        torch.testing.assert_close(model(users, items), expected)
    assert model.model_args["layers"] == [16, 8, 4]
    assert model.model_args["user_layers"] == [16, 8]
    save_checkpoint(tmp_path, "cfnet", model, log)
    _, loaded, _ = load_checkpoint(tmp_path)
    with torch.no_grad():
        assert torch.equal(loaded.score_all(users), model.score_all(users))


def test_score_all_agrees_with_forward_and_leaves_no_state(log):
    torch.manual_seed(0)
    for name in ("dmf", "cfnet-ml", "cfnet"):
        model = perturbed(build(name, log, **SMALL))
        users = torch.tensor([2, 9, 9])
        before = {k: v.clone() for k, v in model.state_dict().items()}
        with torch.no_grad():
            pairs = model(users.repeat_interleave(log.n_items),
                          torch.arange(log.n_items).repeat(3)).view(3, -1)
        torch.testing.assert_close(model.score_all(users), pairs, rtol=1e-4, atol=1e-5)
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_bad_layers_are_config_errors(log):
    with pytest.raises(ConfigError):
        DMF(log.n_users, log.n_items, log, (16, 8), (16, 4))
    with pytest.raises(ConfigError):
        CFNetML(log.n_users, log.n_items, log, (15, 8))


@pytest.mark.parametrize("name", ["dmf", "cfnet"])
def test_withheld_diagonal_item_ranks_first(name):
    train, test = checkerboard(n_blocks=3, block=8)
    torch.manual_seed(1)
    model = build(name, train, user_layers=(32, 8), item_layers=(32, 8),
                        layers=(32, 16, 8))
    task = RankingTask(train, None, batch_size=128, device=torch.device("cpu"), num_neg=4)
    fit(model, task, TrainConfig(epochs=15, lr=0.01, patience=0))
    assert evaluate_full(model, train, test, k=1)["hr@1"] == 1.0
