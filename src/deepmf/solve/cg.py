"""Conjugate gradient steps on every row's system at once: :func:`deepmf.solve.solve_rows`
with ``method="cg"``.

The systems are :mod:`deepmf.solve`'s, ``A_r x = b_r`` with
``A_r = S + Σ_j w_rj f_j f_jᵀ + λ_r I``. ``A_r p_r`` for all rows is one sampled dense-dense
product (``f_j · p_r`` at the stored entries only) and one sparse-dense product, so a step
costs ``O(nnz · d)``; warm-started from the previous sweep's factors, three steps per sweep
are what alternating models need (Takács, Pilászy & Tikk, "Applications of the conjugate
gradient method for implicit feedback collaborative filtering", RecSys 2011).
"""

from __future__ import annotations

import torch

from deepmf.solve.rows import RowIndex, _per_row


def conjugate_gradient(
    index: RowIndex,
    factors: torch.Tensor,
    *,
    weights: torch.Tensor | float = 1.0,
    targets: torch.Tensor | float = 1.0,
    shared: torch.Tensor | None = None,
    ridge: torch.Tensor | float = 0.0,
    prior: torch.Tensor | None = None,
    x0: torch.Tensor | None = None,
    steps: int = 3,
) -> torch.Tensor:
    """``steps`` conjugate gradient steps on every row's ``A_r x = b_r`` at once.

    The arguments are :func:`deepmf.solve.solve_rows`'s. Each step costs two sparse products
    over the stored entries and a ``[rows, d] × [d, d]`` product with ``S``; the step sizes
    are per row, so rows converge independently, exactly as if each ran its own loop.
    """
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise ValueError(f"cg_steps must be a non-negative integer, got {steps!r}")
    rows, dim = index.n_rows, factors.shape[1]
    if x0 is not None and tuple(x0.shape) != (rows, dim):
        raise ValueError(f"x0 must have shape ({rows}, {dim}), got {tuple(x0.shape)}")
    pattern = index.sparse(torch.ones_like(index.indices, dtype=factors.dtype))
    per_entry = isinstance(weights, torch.Tensor) and weights.dim() > 0
    weight = weights.to(factors.dtype) if per_entry else float(weights)
    ridge_rows = _per_row(ridge, torch.arange(rows, device=factors.device), factors)[:, None]

    def product(p: torch.Tensor) -> torch.Tensor:  # A_r p_r for every row: [rows, d]
        dots = torch.sparse.sampled_addmm(pattern, p, factors.T, beta=0.0)  # f_j · p_r at S
        if per_entry:
            out = index.sparse(dots.values() * weight) @ factors
        else:  # one weight for all: scale the product rather than every entry
            out = (dots @ factors).mul_(weight)
        out += ridge_rows * p
        return out if shared is None else out.addmm_(p, shared)

    if isinstance(targets, torch.Tensor) and targets.dim() > 0:
        rhs = index.sparse(targets.to(factors.dtype)) @ factors  # b: [rows, d]
    else:
        rhs = (pattern @ factors).mul_(float(targets))
    if prior is not None:
        rhs += prior
    x = factors.new_zeros(rows, dim) if x0 is None else x0.to(factors.dtype).clone()
    residual = rhs - product(x) if x0 is not None else rhs
    direction = residual.clone()
    norm = torch.linalg.vecdot(residual, residual)
    for _ in range(int(steps)):
        moved = product(direction)
        curvature = torch.linalg.vecdot(direction, moved)
        alpha = torch.where(curvature > 0, norm / curvature.clamp(min=1e-30), 0.0)
        x.addcmul_(alpha[:, None], direction)
        residual.addcmul_(alpha[:, None], moved, value=-1.0)
        new_norm = torch.linalg.vecdot(residual, residual)
        beta = torch.where(norm > 0, new_norm / norm.clamp(min=1e-30), 0.0)
        direction = residual.addcmul(beta[:, None], direction)
        norm = new_norm
    return x
