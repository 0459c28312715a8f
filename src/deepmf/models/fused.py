"""Training steps without autograd for the dot-product models (MF, biased MF, GMF).

A step of these models is a handful of row lookups, a dot product and a scatter of row
gradients; autograd's graph costs more than the arithmetic (on one CPU thread the plain
step of biased MF at batch 1,024 took 2.7 ms, this one 1.3 ms with the same Adam). Each
model's ``fused_grads(users, items, dloss, reg)`` computes the scores, asks ``dloss`` for
the loss and its gradient with respect to each score, and writes every parameter's
gradient (dense, as autograd's would be) to its ``.grad``. The values equal autograd's up
to float rounding (``tests/test_fused.py``).

The batch is processed in parts of about ``PART_ELEMENTS`` looked-up values, so that a
part's rows and their gradients stay in the core's cache between the lookup, the dot
product and the scatter (at 128 factors and 16,384 pairs a step takes 23 ms in parts of
2,048 pairs, 30 ms whole). The losses are means over pairs, so each part's share of the
loss and of the score gradients is its own (``dloss`` is called once a part). Each part's
arithmetic is a function of its looked-up rows (``mf_part``, ``gmf_part``), which the
compiled steps of :mod:`deepmf.models.compiled` apply to whole batches.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from deepmf.models.layers import coalesced_rows, distinct_rows

LossGrad = Callable[[torch.Tensor, slice], tuple[torch.Tensor, torch.Tensor]]
"""``(scores, part) -> (loss, d loss / d scores)`` for the pairs ``part`` of the batch: that
part's share of the batch loss (the shares add up to it) and its scores' gradients."""

PART_ELEMENTS = 1 << 18
"""Looked-up values (pairs × factors) per part of a batch."""


def mse_grad(scores: torch.Tensor, targets: torch.Tensor, n: int):
    """A part's share of the mean squared error over a batch of ``n`` pairs, its scores'
    gradients, and its sum of squared errors (the epoch's ``train_rmse``)."""
    error = scores - targets
    total = torch.dot(error, error)
    return total / n, error.mul_(2.0 / n), total


def bce_grad(logits: torch.Tensor, labels: torch.Tensor, n: int):
    """A part's share of the mean log loss over a batch of ``n`` pairs, its logits'
    gradients, and the share again (nothing else to tally)."""
    share = F.binary_cross_entropy_with_logits(logits, labels) * (len(labels) / n)
    return share, torch.sigmoid(logits).sub_(labels).div_(n), share


LOSS_GRADS = {"mse": mse_grad, "bce": bce_grad}
"""The losses a fused step can take, by name: ``(scores, targets, n) -> (share, d share /
d scores, tally)``."""


def fusable(model: nn.Module, users: torch.Tensor, compiled: bool = False) -> bool:
    """Whether the fused step applies: CPU tensors (CUDA keeps autograd's deterministic
    embedding backward), a step that runs uncompiled too (a model whose ``eager_fused`` is
    False trains by autograd unless compiled), and the model's ``fused_ready()`` where it
    has one, else every parameter trainable (the step writes them all)."""
    if users.is_cuda or not (compiled or getattr(model, "eager_fused", True)):
        return False
    ready = getattr(model, "fused_ready", None)
    return ready() if ready is not None else all(p.requires_grad for p in model.parameters())


class RowGrads:
    """The tables' weight gradients, summed from the gradients of the rows a batch looked
    up: dense (added into zeros, as a lookup's backward does), or for a ``sparse`` table
    (``lazy-adam``) summed per distinct id into a compact buffer and set as a coalesced
    sparse tensor of those rows. ``ids``: each table's looked-up ids for the whole batch."""

    def __init__(self, tables: tuple[nn.Embedding, ...], ids: tuple[torch.Tensor, ...]):
        self.tables, self.slots = tables, []
        found = {}  # ids that two tables look up (factors and biases) are sorted once
        for table, looked_up in zip(tables, ids):
            if table.sparse:
                if id(looked_up) in found:  # a buffer of its own, the ids found already
                    distinct, where = found[id(looked_up)]
                    buffer = table.weight.new_zeros((len(distinct), table.weight.shape[1]))
                else:
                    distinct, where, buffer = distinct_rows(looked_up, table.weight)
                    found[id(looked_up)] = distinct, where
                self.slots.append((buffer, where, distinct))
            else:
                self.slots.append((torch.zeros_like(table.weight), looked_up, None))

    def add(self, table: int, part: slice, rows: torch.Tensor) -> None:
        """Add the gradients of the rows the pairs ``part`` looked up in ``table``."""
        buffer, where, _ = self.slots[table]
        buffer.index_add_(0, where[part], rows)

    def set(self) -> None:
        """Each table's gradient as its weight's ``.grad``."""
        for table, (buffer, _, distinct) in zip(self.tables, self.slots):
            table.weight.grad = buffer if distinct is None else coalesced_rows(
                distinct, buffer, table.weight.shape)


def parts(n: int, width: int) -> list[slice]:
    """Slices of ``n`` pairs, each about ``PART_ELEMENTS / width`` long."""
    step = max(1, PART_ELEMENTS // max(width, 1))
    return [slice(start, start + step) for start in range(0, n, step)]


def squares(*rows: torch.Tensor) -> torch.Tensor:
    """``Σ |row|²`` over tensors of rows (the L2 penalty before its division by B). Compiled,
    row by row: the Inductor turns a flat sum over looked-up rows into scalar loads that
    find each element's row by a division, which took half the compiled step."""
    if torch.compiler.is_compiling():
        return sum(torch.linalg.vecdot(r, r).sum() for r in rows)
    flat = [r.view(-1) for r in rows]  # looked-up rows: contiguous
    return functools.reduce(operator.add, (torch.dot(r, r) for r in flat))


def dot_grads(p: torch.Tensor, q: torch.Tensor, d: torch.Tensor,
              decay: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of ``Σ_b d_b (p_b · q_b) + decay/2 Σ (|p_b|² + |q_b|²)`` with respect to the
    rows ``p`` and ``q``: ``d q + decay p`` and ``d p + decay q`` (``[B, k]`` each)."""
    column = d[:, None]
    grad_q, grad_p = p * column, q * column  # two passes each, not addcmul's three
    if decay:
        grad_q.add_(q, alpha=decay)
        grad_p.add_(p, alpha=decay)
    return grad_p, grad_q


def mf_part(rows: list[torch.Tensor], mean, dloss: Callable, reg: float, n: int,
            biased: bool) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """One part of an MF batch from its looked-up rows ``p, q(, b_u, b_i)``: its share of the
    loss plus ``reg`` × the penalty, and each row's gradient. ``dloss(scores)``: the part's
    loss share and score gradients."""
    scores = torch.linalg.vecdot(rows[0], rows[1])
    if biased:  # in place: the scores are this part's own
        scores = scores.add_(rows[2].view(-1)).add_(rows[3].view(-1)).add_(mean)
    share, d = dloss(scores)
    loss = share + (reg / n) * squares(*rows) if reg else share
    decay = 2.0 * reg / n
    row_grads = dot_grads(rows[0], rows[1], d, decay)
    if biased:
        row_grads += tuple(torch.add(d[:, None], b, alpha=decay) for b in rows[2:])
    return loss, row_grads


def mf_tables(model, biased: bool) -> list[nn.Embedding]:
    tables = [model.user_factors, model.item_factors]
    return tables + [model.user_bias, model.item_bias] if biased else tables


def mf_grads(model, users: torch.Tensor, items: torch.Tensor, dloss: LossGrad,
             reg: float, biased: bool) -> torch.Tensor:
    """:class:`~deepmf.models.mf.MF` (``biased``: with user and item biases and the global
    mean): the loss plus ``reg`` × the penalty, gradients set."""
    tables = mf_tables(model, biased)
    grads = RowGrads(tuple(tables), (users, items, users, items))
    n, loss = len(users), 0.0
    mean = model.global_mean if biased else None
    with torch.no_grad():
        for part in parts(n, tables[0].embedding_dim):
            u, i = users[part], items[part]
            rows = [t.weight.index_select(0, ids) for t, ids in zip(tables, (u, i, u, i))]
            share, row_grads = mf_part(rows, mean, lambda s: dloss(s, part), reg, n, biased)
            loss = loss + share
            for table, row_grad in enumerate(row_grads):
                grads.add(table, part, row_grad)
    grads.set()
    return loss


def gmf_part(p: torch.Tensor, q: torch.Tensor, h: torch.Tensor, bias: torch.Tensor,
             dloss: Callable, reg: float, n: int):
    """One part of a GMF batch from its looked-up rows: its share of the loss plus ``reg`` ×
    the penalty, ``p ⊙ q`` and the score gradients (for the head's), and the rows'."""
    product = p * q  # [b, F]
    share, d = dloss(torch.mv(product, h) + bias)
    loss = share + (reg / n) * squares(p, q) if reg else share
    grad_p, grad_q = dot_grads(p * h, q * h, d, 0.0)  # d (q ⊙ h), d (p ⊙ h)
    if reg:
        decay = 2.0 * reg / n
        grad_p.add_(p, alpha=decay)
        grad_q.add_(q, alpha=decay)
    return loss, product, d, grad_p, grad_q


def gmf_grads(model, users: torch.Tensor, items: torch.Tensor, dloss: LossGrad,
              reg: float) -> torch.Tensor:
    """:class:`~deepmf.models.ncf.GMF`: ``h · (p ⊙ q) + b``, loss plus ``reg`` × penalty."""
    grads = RowGrads((model.user_embedding, model.item_embedding), (users, items))
    head = model.head
    h = head.weight[0]
    grad_h, grad_b = torch.zeros_like(h), torch.zeros_like(head.bias)
    n, loss = len(users), 0.0
    with torch.no_grad():
        for part in parts(n, len(h)):
            u, i = users[part], items[part]
            share, product, d, grad_p, grad_q = gmf_part(
                model.user_embedding(u), model.item_embedding(i), h, head.bias,
                lambda s: dloss(s, part), reg, n)
            loss = loss + share
            grad_h.addmv_(product.T, d)
            grad_b += d.sum()
            grads.add(0, part, grad_p)
            grads.add(1, part, grad_q)
    grads.set()
    head.weight.grad, head.bias.grad = grad_h[None], grad_b
    return loss
