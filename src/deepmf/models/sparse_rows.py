"""Linear layers over binary interaction rows, the first layer of every DeepCF tower.

A linear layer over a binary row is the sum of the weight rows of its non-zeros,
``r_u W = Σ_{j: r_uj = 1} W_j``, so it is a gather-sum over the training CSR
(``embedding_bag``), with a backward that gathers over the transposed CSR instead of
scattering. No dense users × items tensor exists anywhere.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepmf.data import Interactions, gather_rows
from deepmf.errors import ConfigError


def _long(array) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))


class InteractionRows(nn.Module):
    """The binary rows of one side of the training matrix, as CSR plus its transpose.

    Buffers are non-persistent: a checkpoint holds weights only and the rows are rebuilt
    from the training log. ``transpose`` serves the backward pass (see :class:`_RowSum`).
    """

    def __init__(self, matrix=None, *, _arrays=None):
        super().__init__()
        if _arrays is None:
            matrix = matrix.tocsr()
            matrix.sort_indices()
            transpose = matrix.T.tocsr()
            transpose.sort_indices()
            _arrays = (matrix.shape, _long(matrix.indptr), _long(matrix.indices),
                       _long(transpose.indptr), _long(transpose.indices))
        (self.n_rows, self.n_cols), *arrays = _arrays
        for name, array in zip(("indptr", "indices", "t_indptr", "t_indices"), arrays):
            self.register_buffer(name, array, persistent=False)

    def transposed(self) -> "InteractionRows":
        """The other side's rows, sharing this object's arrays (no copy)."""
        return InteractionRows(_arrays=((self.n_cols, self.n_rows), self.t_indptr,
                                        self.t_indices, self.indptr, self.indices))

    def gather(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Column indices of the rows ``ids`` and their offsets, for ``embedding_bag``."""
        positions, counts = gather_rows(self.indptr, ids)
        return self.indices[positions], counts.cumsum(0) - counts


PANEL = 64
"""Columns summed per pass of :func:`_bag_sum`."""


def _bag_sum(indices, table, offsets, include_last_offset=False) -> torch.Tensor:
    """``embedding_bag(..., mode="sum")`` over ``PANEL``-column slices of ``table``, side by side.

    Each bag reads rows of ``table`` in random order. A whole row of a wide table (1,024
    floats for DMF's item tower) streams from memory for every non-zero; a 64-column
    slice of the table fits in cache, so summing slice by slice reads memory once per
    slice (about twice as fast on ml-1m's item rows).
    """
    bags = len(offsets) - 1 if include_last_offset else len(offsets)
    out = table.new_empty(bags, table.shape[1])  # filled panel by panel: one temporary
    for start in range(0, table.shape[1], PANEL):
        columns = slice(start, start + PANEL)
        out[:, columns] = F.embedding_bag(indices, table[:, columns].contiguous(), offsets,
                                          mode="sum", include_last_offset=include_last_offset)
    return out


class _RowSum(torch.autograd.Function):
    """``out[r] = Σ_{j ∈ row ids[r]} W_j``, with a backward that also gathers.

    ``dW_j = Σ_{r : j ∈ row ids[r]} g_r`` is a sum over the transposed rows, restricted to
    the batch's rows; running it as a second ``embedding_bag`` over the transpose avoids
    the slow scatter of the generic embedding backward.
    """

    @staticmethod
    def forward(ctx, weight, rows: InteractionRows, ids):
        flat, offsets = rows.gather(ids)
        ctx.rows = rows
        ctx.save_for_backward(ids)
        return _bag_sum(flat, weight, offsets)

    @staticmethod
    def backward(ctx, grad):
        if not ctx.needs_input_grad[0]:
            return None, None, None
        (ids,) = ctx.saved_tensors
        rows: InteractionRows = ctx.rows
        position = torch.full((rows.n_rows,), len(ids), dtype=torch.long, device=ids.device)
        position[ids] = torch.arange(len(ids), device=ids.device)
        source = position[rows.t_indices]  # batch row of each non-zero; len(ids) if absent
        keep = source < len(ids)
        kept = torch.cat([keep.new_zeros(1, dtype=torch.long), keep.long().cumsum(0)])
        grad_weight = _bag_sum(source[keep], grad, kept[rows.t_indptr],
                               include_last_offset=True)  # [n_cols, d]
        return grad_weight, None, None


class SparseLinear(nn.Module):
    """``nn.Linear(n_in, n_out)`` over binary interaction rows: ``h = Σ_{j ∈ row} W_j + b``.

    ``W = s · V`` with ``V`` the trained parameter and ``s = 1 / √(mean non-zeros per row)``
    a fixed buffer: a row sums hundreds of weight rows, so Adam's per-coordinate steps
    would add up to large jumps of ``h``; the scale gives this layer a smaller effective
    learning rate. ``W`` starts Glorot uniform with a zero bias, as Keras' ``Dense`` in DeepCF.

    Args:
        n_in: width of the binary rows (the other side's id space).
        n_out: output size.
        mean_nnz: mean number of non-zeros per row (1 without data).
    """

    def __init__(self, n_in: int, n_out: int, mean_nnz: float = 1.0):
        super().__init__()
        scale = 1.0 / math.sqrt(max(mean_nnz, 1.0))
        bound = math.sqrt(6.0 / (n_in + n_out)) / scale
        self.weight = nn.Parameter(torch.empty(n_in, n_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.register_buffer("scale", torch.tensor(scale))

    def forward(self, rows: InteractionRows, ids: torch.Tensor) -> torch.Tensor:
        unique, inverse = torch.unique(ids, return_inverse=True)  # the backward needs distinct
        summed = _RowSum.apply(self.weight, rows, unique)  # [R, n_out]
        return (summed * self.scale + self.bias).index_select(0, inverse)


def interaction_rows(n_users: int, n_items: int, interactions: Interactions | None):
    if interactions is None:
        interactions = Interactions(np.zeros(0, np.int64), np.zeros(0, np.int64),
                                    n_users=n_users, n_items=n_items)
    if (interactions.n_users, interactions.n_items) != (n_users, n_items):
        raise ConfigError("interactions do not match the model's id spaces")
    user_rows = InteractionRows(interactions.csr)
    return user_rows, user_rows.transposed()


def first_layers(user_rows: InteractionRows, item_rows: InteractionRows, user_out: int,
                  item_out: int) -> tuple[SparseLinear, SparseLinear]:
    """First layers of a user tower (over ``r_u``) and an item tower (over ``r_i``)."""
    nnz = len(user_rows.indices)
    return (SparseLinear(user_rows.n_cols, user_out, nnz / max(user_rows.n_rows, 1)),
            SparseLinear(item_rows.n_cols, item_out, nnz / max(item_rows.n_rows, 1)))
