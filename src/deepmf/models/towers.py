"""Training steps without autograd for NCF's tower models (MLP, NeuMF).

The forward pass is NCF's: the first layer over ``[p_u ; q_i]`` split by side, ReLU
layers, and for NeuMF a GMF product beside the tower's output, into one head. The backward
pass is written out: the head's gradient ``d`` (from the loss) goes back through each
layer as ``dz = d a ⊙ [a > 0]`` (ReLU's backward on its output), ``dW = dzᵀ a_prev``,
``d a_prev = dz W``, and into the embedding rows. Where a batch holds more ids than a
table has rows (ml-1m: 16,384 pairs, 6,040 users) the first layer runs once per table
row and the batch's gradients are summed per row before the matrix products, as
:func:`deepmf.models.layers.linear_rows` does in the forward pass; else per pair.

The step is a pure function of the weights (:func:`tower_whole`) that ``--compile`` hands
to :func:`deepmf.models.compiled.compiled_step`. On one CPU thread a NeuMF step at ml-1m's
recipe (8 factors, 16,384 pairs) took 11.2-11.8 ms by autograd and 6.0-7.5 ms compiled,
an epoch 5.0-5.3 s against 3.0-3.4 s. Uncompiled it is about as fast as autograd, so
without ``--compile`` these models keep autograd and its exact numbers; the step runs
uncompiled only beside the compiled one (an epoch's shorter last batch, a compiler that
fails). Dropout is not written out: a tower with dropout trains by autograd. The
gradients equal autograd's to float rounding (``tests/test_towers.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from deepmf.models.compiled import _tallying, compiled_step, summed_rows


def _side(table: torch.Tensor, ids: torch.Tensor, weight: torch.Tensor, decay: float):
    """One side's share of the first layer, ``table[ids] @ weightᵀ`` (``[B, h]``), the sum
    of the looked-up rows' squared norms (for the L2 penalty; 0 without ``decay``), and a
    function of that share's gradient giving the table's and the weight's gradients (with
    ``decay`` × each looked-up row added to its row gradient)."""
    if len(ids) > table.shape[0]:  # once per table row
        projected = table @ weight.T
        counts = torch.bincount(ids, minlength=table.shape[0]).to(table.dtype) if decay \
            else None
        squares = torch.dot(counts, torch.linalg.vecdot(table, table)) if decay else 0.0

        def backward(dz):
            summed = torch.zeros_like(projected).index_add_(0, ids, dz)
            grad = summed @ weight
            if decay:
                grad = grad.addcmul_(counts[:, None], table, value=decay)
            return grad, summed.T @ table

        return projected.index_select(0, ids), squares, backward
    rows = table.index_select(0, ids)

    def backward(dz):
        grad = dz @ weight
        if decay:
            grad = grad.add_(rows, alpha=decay)
        return summed_rows(table, ids, grad, None), dz.T @ rows

    return rows @ weight.T, torch.linalg.vecdot(rows, rows).sum() if decay else 0.0, backward


def tower_grads(weights: list[torch.Tensor], gmf: bool, users: torch.Tensor,
                items: torch.Tensor, dloss: Callable, reg: float):
    """A batch's loss (plus ``reg`` × the penalty on the looked-up rows) and every weight's
    gradient, in the order of :func:`tower_parameters` (dense tables). ``dloss(logits)``:
    the loss and its logits' gradients."""
    n, decay = len(users), 2.0 * reg / len(users)
    tables = 4 if gmf else 2
    first, first_bias, *layers, head, head_bias = weights[tables:]
    half = weights[tables - 2].shape[1]
    h_user, squares_user, back_user = _side(weights[tables - 2], users, first[:, :half],
                                            decay)
    h_item, squares_item, back_item = _side(weights[tables - 1], items, first[:, half:],
                                            decay)
    acts = [(h_user + h_item).add_(first_bias).relu_()]
    for weight, bias in zip(layers[0::2], layers[1::2]):
        acts.append(torch.addmm(bias, acts[-1], weight.T).relu_())
    width = weights[0].shape[1] if gmf else 0
    logits = torch.mv(acts[-1], head[0, width:]).add_(head_bias)
    if gmf:
        p, q = weights[0].index_select(0, users), weights[1].index_select(0, items)
        product = p * q
        logits = logits.addmv_(product, head[0, :width])
    share, d = dloss(logits)
    if reg:
        squares = squares_user + squares_item
        if gmf:
            squares = squares + torch.linalg.vecdot(p, p).sum() + torch.linalg.vecdot(q, q).sum()
        share = share + (reg / n) * squares
    grads: list[torch.Tensor] = []
    head_grad = [torch.mv(acts[-1].T, d)]
    if gmf:
        head_grad.insert(0, torch.mv(product.T, d))
        d_product = torch.outer(d, head[0, :width])
        grad_p = (d_product * q).add_(p, alpha=decay) if reg else d_product * q
        grad_q = (d_product.mul_(p)).add_(q, alpha=decay) if reg else d_product.mul_(p)
        grads += [summed_rows(weights[0], users, grad_p, None),
                  summed_rows(weights[1], items, grad_q, None)]
    d_act = torch.outer(d, head[0, width:])
    layer_grads = []
    for k in range(len(layers) // 2, 0, -1):
        dz = torch.ops.aten.threshold_backward(d_act, acts[k], 0)
        layer_grads[:0] = [dz.T @ acts[k - 1], dz.sum(0)]
        d_act = dz @ layers[2 * (k - 1)]
    dz = torch.ops.aten.threshold_backward(d_act, acts[0], 0)
    (grad_pu, grad_wu), (grad_qi, grad_wi) = back_user(dz), back_item(dz)
    grads += [grad_pu, grad_qi, torch.cat([grad_wu, grad_wi], 1), dz.sum(0), *layer_grads,
              torch.cat(head_grad)[None], d.sum().reshape(1)]
    return share, grads


def _tables(model) -> list[nn.Embedding]:
    """The embedding tables a tower step looks up: GMF's (NeuMF) then the MLP's."""
    mlp = getattr(model, "mlp", model)
    tables = [mlp.user_embedding, mlp.item_embedding]
    return [model.gmf.user_embedding, model.gmf.item_embedding] + tables \
        if hasattr(model, "gmf") else tables


def tower_parameters(model) -> tuple[list[nn.Parameter], bool]:
    """The parameters a tower step writes, in :func:`tower_grads`' order, and whether the
    model has a GMF side (NeuMF)."""
    mlp = getattr(model, "mlp", model)
    params = [t.weight for t in _tables(model)]
    for layer in [m for m in mlp.tower if isinstance(m, nn.Linear)] + [model.head]:
        params += [layer.weight, layer.bias]
    return params, hasattr(model, "gmf")


def tower_ready(model) -> bool:
    """Whether the step applies: every parameter it writes trainable, dense tables (the
    row-sparse gradients of ``lazy-adam`` go through autograd: on ml-20m-sized tables a
    prototype of this step with them took 39-45 ms a step with lazy-adam's update, against
    27 ms dense with Adam's) and no dropout (whose masks the step does not write out)."""
    mlp = getattr(model, "mlp", model)
    return not mlp.model_args["dropout"] and not any(t.sparse for t in _tables(model)) \
        and all(p.requires_grad for p in tower_parameters(model)[0])


def tower_fused_grads(model, users: torch.Tensor, items: torch.Tensor, dloss: Callable,
                      reg: float) -> torch.Tensor:
    """The eager step: the batch's loss with every gradient set (``dloss(logits, part)``
    as for :mod:`deepmf.models.fused`'s steps; the batch is one part)."""
    params, gmf = tower_parameters(model)
    with torch.no_grad():
        loss, grads = tower_grads([p.detach() for p in params], gmf, users, items,
                                  lambda s: dloss(s, slice(None)), reg)
    for param, grad in zip(params, grads):
        param.grad = grad
    return loss


def tower_whole(weights: list[torch.Tensor], gmf: bool, users: torch.Tensor,
                items: torch.Tensor, targets: torch.Tensor, loss: str, reg: float, where: tuple):
    """:func:`tower_grads` with the loss named, for :func:`compiled_step` (dense tables:
    ``where`` is all None)."""
    del where
    tally: list = []
    value, grads = tower_grads(weights, gmf, users, items,
                               _tallying(loss, targets, len(targets), tally), reg)
    return value, tally[0], grads


def tower_compiled(model, loss: str, reg: float):
    """The tower step compiled (:func:`deepmf.models.compiled.compiled_step`), dense tables."""
    params, gmf = tower_parameters(model)
    return compiled_step(tower_whole, params, (None,) * len(params), [False] * len(params),
                         gmf, loss, reg)


class TowerStep:
    """The tower step's methods for :class:`~deepmf.models.ncf.MLP` and NeuMF: compiled
    (``--compile``); uncompiled it is no faster than autograd, which keeps its exact
    numbers, so it runs only where the compiled one cannot (batches of another size, a
    compiler that fails)."""

    eager_fused = False

    def fused_grads(self, users, items, dloss, reg):
        """One step's loss with every gradient set, without autograd."""
        return tower_fused_grads(self, users, items, dloss, reg)

    def fused_ready(self) -> bool:
        return tower_ready(self)

    def compiled_grads(self, loss, reg):
        return tower_compiled(self, loss, reg)
