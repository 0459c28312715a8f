"""Training steps without autograd for the dot-product models (MF, biased MF, GMF).

A step of these models is a handful of row lookups, a dot product and a scatter of row
gradients; autograd's graph costs more than the arithmetic (on one CPU thread the plain
step of biased MF at batch 1,024 took 2.7 ms, this one 1.3 ms with the same Adam). Each
model's ``fused_grads(users, items, dloss, reg)`` computes the scores, asks ``dloss`` for
the loss and its gradient with respect to each score, and writes every parameter's
gradient (dense, as autograd's would be) to its ``.grad``. The values equal autograd's up
to float rounding (``tests/test_fused.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

LossGrad = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""``scores -> (loss, d loss / d scores)``: a loss and its gradient, from the task."""


def fusable(model: nn.Module, users: torch.Tensor) -> bool:
    """Whether the fused step applies: CPU tensors (CUDA keeps autograd's deterministic
    embedding backward) and every parameter trainable (the step writes them all)."""
    return not users.is_cuda and all(p.requires_grad for p in model.parameters())


def scatter_rows(table: nn.Embedding, ids: torch.Tensor, rows: torch.Tensor) -> None:
    """``table.weight.grad = Σ`` of ``rows`` into the rows ``ids`` (an ``index_add``, the
    same as the backward of a lookup)."""
    weight = table.weight
    weight.grad = torch.zeros_like(weight).index_add_(0, ids, rows.view(len(ids), -1))


def dot_grads(p: torch.Tensor, q: torch.Tensor, d: torch.Tensor,
              decay: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of ``Σ_b d_b (p_b · q_b) + decay/2 Σ (|p_b|² + |q_b|²)`` with respect to the
    rows ``p`` and ``q``: ``d q + decay p`` and ``d p + decay q`` (``[B, k]`` each)."""
    column = d[:, None]
    grad_q = torch.addcmul(q * decay, column, p) if decay else column * p
    grad_p = torch.addcmul(p * decay, column, q) if decay else column * q
    return grad_p, grad_q


def penalty_of(*rows: torch.Tensor) -> torch.Tensor:
    """``Σ |row|² / B`` over tensors of B rows: the L2 term ``row_norms`` computes."""
    return sum(torch.dot(r.reshape(-1), r.reshape(-1)) for r in rows) / rows[0].shape[0]


def mf_grads(model, users: torch.Tensor, items: torch.Tensor, dloss: LossGrad,
             reg: float, biased: bool) -> torch.Tensor:
    """:class:`~deepmf.models.mf.MF` (``biased``: with user and item biases and the global
    mean): the loss plus ``reg`` × the penalty, gradients set."""
    with torch.no_grad():
        p, q = model.user_factors(users), model.item_factors(items)
        scores = torch.linalg.vecdot(p, q)
        if biased:
            b_u, b_i = model.user_bias(users).view(-1), model.item_bias(items).view(-1)
            scores = scores + (b_u + b_i + model.global_mean)
        loss, d = dloss(scores)
        decay = 2.0 * reg / len(users)
        if reg:
            loss = loss + reg * (penalty_of(p, q, b_u, b_i) if biased else penalty_of(p, q))
        grad_p, grad_q = dot_grads(p, q, d, decay)
        scatter_rows(model.user_factors, users, grad_p)
        scatter_rows(model.item_factors, items, grad_q)
        if biased:
            scatter_rows(model.user_bias, users, torch.add(d, b_u, alpha=decay))
            scatter_rows(model.item_bias, items, torch.add(d, b_i, alpha=decay))
    return loss


def gmf_grads(model, users: torch.Tensor, items: torch.Tensor, dloss: LossGrad,
              reg: float) -> torch.Tensor:
    """:class:`~deepmf.models.ncf.GMF`: ``h · (p ⊙ q) + b``, loss plus ``reg`` × penalty."""
    with torch.no_grad():
        p, q = model.user_embedding(users), model.item_embedding(items)
        h = model.head.weight[0]
        product = p * q  # [B, F]
        loss, d = dloss(torch.mv(product, h) + model.head.bias)
        if reg:
            loss = loss + reg * penalty_of(p, q)
        model.head.weight.grad = torch.mv(product.T, d)[None]
        model.head.bias.grad = d.sum().view(1)
        grad_p, grad_q = dot_grads(p * h, q * h, d, 0.0)  # d (q ⊙ h), d (p ⊙ h)
        if reg:
            decay = 2.0 * reg / len(users)
            grad_p.add_(p, alpha=decay)
            grad_q.add_(q, alpha=decay)
        scatter_rows(model.user_embedding, users, grad_p)
        scatter_rows(model.item_embedding, items, grad_q)
    return loss
