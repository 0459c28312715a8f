"""The batched row solve under every alternating model (ALS, iALS, Bayesian MF by Gibbs).

Fixing one side's factors ``F`` (``[m, d]``), each row ``r`` of the other side has a small
regularised least-squares problem over the entries ``j`` it interacted with:

    A_r = S + Σ_j w_rj f_j f_jᵀ + λ_r I        (d × d, positive definite)
    b_r = Σ_j t_rj f_j + β_r                   (d)

``S`` is shared by every row (iALS: the weighted Gramian ``w₀ FᵀF``, the term that stands for
all unobserved entries, computed once; Bayesian MF: the prior precision), ``w`` and ``t``
are per-entry weights and targets, ``λ_r`` a per-row ridge and ``β_r`` a prior term.
:func:`solve_rows` returns ``x_r = A_r⁻¹ b_r`` for all rows at once, or, given a random
generator, a draw from ``N(A_r⁻¹ b_r, A_r⁻¹)`` (the Gibbs step: the mean plus ``L_r⁻ᵀ z``
with ``A_r = L_r L_rᵀ``).

Rows are solved in chunks of similar length: each chunk gathers its entries' factor rows
into a padded ``[rows, length, d]`` block, forms the Gram matrices with one batched matmul
and factorises them with one batched Cholesky. Lengths are grouped by powers of two, so
padding at most doubles the work, and a chunk holds about ``block`` floats, so memory stays
bounded whatever the data's size. The loop runs over chunks (tens per sweep), never rows,
and the same code runs on the CPU and on CUDA.

``method="cg"`` solves the same systems approximately, by a few steps of the conjugate
gradient method run on all rows at once and warm-started from ``x0`` (Takács, Pilászy &
Tikk, RecSys 2011; the ``implicit`` package's default, with 3 steps; in
:mod:`deepmf.solve.cg`). It never forms
``A_r``: the product ``A_r p_r = S p_r + Σ_j w_rj (f_j · p_r) f_j + λ_r p_r`` for every row is
one sampled dense-dense product (the ``f_j · p_r`` at the stored entries only) and one
sparse-dense product, ``O(nnz · d)`` per step instead of ``O(nnz · d²)`` for the Gram
matrices and ``O(rows · d³)`` for their factorisations. Alternating models lose little by
solving each side inexactly, since the next sweep starts from where this one stopped.
"""

from __future__ import annotations

import torch

from deepmf.solve.rows import RowIndex, _per_row


def solve_rows(
    index: RowIndex,
    factors: torch.Tensor,
    *,
    weights: torch.Tensor | float = 1.0,
    targets: torch.Tensor | float = 1.0,
    shared: torch.Tensor | None = None,
    ridge: torch.Tensor | float = 0.0,
    prior: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    block: int = 1 << 22,
    method: str = "cholesky",
    x0: torch.Tensor | None = None,
    cg_steps: int = 3,
) -> torch.Tensor:
    """Solve (or sample) every row's system; see the module docstring for the equations.

    Args:
        index: the rows and the columns each one interacted with.
        factors: ``F``, ``[n_cols, d]``, the fixed side's factors.
        weights: ``w``, per stored entry ``[nnz]`` or one number for all.
        targets: ``t``, per stored entry ``[nnz]`` or one number for all.
        shared: ``S``, ``[d, d]``, added to every row's matrix (None: zero).
        ridge: ``λ``, per row ``[n_rows]`` or one number; with ``S`` and ``w`` it must make
            every ``A_r`` positive definite (rows without entries get ``S + λ_r I``).
        prior: ``β``, ``[n_rows, d]`` or ``[d]`` for all (None: zero).
        generator: draw ``x_r ~ N(A_r⁻¹ b_r, A_r⁻¹)`` with it instead of returning the mean.
        block: about how many floats one chunk's gathered factors may take (Cholesky).
        method: ``"cholesky"`` (exact, or a draw) or ``"cg"`` (``cg_steps`` conjugate
            gradient steps from ``x0``; a row whose ``A_r`` is singular keeps its start).
        x0: ``[n_rows, d]``, where the conjugate gradient starts (None: zero).
        cg_steps: conjugate gradient steps; ``d`` of them solve exactly, up to rounding.

    Returns:
        ``[n_rows, d]`` in the factors' dtype and device.

    Raises:
        ValueError: for an unknown ``method``, a ``generator`` with ``method="cg"``, a
            negative ``cg_steps``, an ``x0`` of the wrong shape, or (Cholesky) a singular row.
    """
    if method == "cg":
        from deepmf.solve.cg import conjugate_gradient

        if generator is not None:
            raise ValueError("generator: a draw needs method='cholesky'")
        return conjugate_gradient(index, factors, weights=weights, targets=targets,
                                  shared=shared, ridge=ridge, prior=prior, x0=x0,
                                  steps=cg_steps)
    if method != "cholesky":
        raise ValueError(f"method must be 'cholesky' or 'cg', got {method!r}")
    return _cholesky(index, factors, weights, targets, shared, ridge, prior, generator, block)


def _cholesky(index: RowIndex, factors, weights, targets, shared, ridge, prior, generator,
              block: int) -> torch.Tensor:
    """Every row's exact solution (or draw) by batched Cholesky, chunk by chunk."""
    dim = factors.shape[1]
    out = factors.new_zeros(index.n_rows, dim)
    eye = torch.eye(dim, dtype=factors.dtype, device=factors.device)
    noise = None if generator is None else _noise(index, dim, block, generator, factors)
    small = dim <= PRODUCT_DIM and index.n_cols * dim * dim <= PRODUCT_FLOATS
    grams = _products if small else _padded
    for rows, gram, rhs in grams(index, factors, weights, targets, block):
        gram += _per_row(ridge, rows, factors)[:, None, None] * eye
        if shared is not None:
            gram += shared
        if prior is not None:
            rhs += prior[rows] if prior.dim() == 2 else prior
        chol, info = torch.linalg.cholesky_ex(gram)
        if bool((info > 0).any()):
            raise ValueError("a row's system is not positive definite; raise the ridge")
        solution = torch.cholesky_solve(rhs[..., None], chol)[..., 0]
        if noise is not None:
            solution += torch.linalg.solve_triangular(chol.transpose(1, 2), noise[rows, :, None],
                                                      upper=True)[..., 0]
        out[rows] = solution
    return out


PRODUCT_DIM, PRODUCT_FLOATS = 32, 1 << 26
"""Up to this ``d`` (and ``n_cols · d²`` floats), Gram matrices come from one sparse-dense
product with the factors' outer products (ml-1m at d = 16: 0.25 s against 0.9 s padded;
ml-100k at d = 9: 4 ms against 60 ms); beyond it the padded batched matmul is faster
(d = 64: 4 s against 11 s)."""


def _padded(index: RowIndex, factors, weights, targets, block: int):
    """``(rows, Σ_j w f_j f_jᵀ, Σ_j t f_j)`` per chunk of similar-length rows (bmm)."""
    for rows, width in index.chunks(factors.shape[1], block):
        positions, mask = index.padded(rows, width)
        gathered = factors[index.indices[positions]] * mask[..., None]  # [R, W, d]
        w = _entries(weights, positions, mask, factors)  # [R, W]
        t = _entries(targets, positions, mask, factors)
        gram = torch.bmm(gathered.transpose(1, 2) * w[:, None, :], gathered)  # [R, d, d]
        yield rows, gram, torch.bmm(gathered.transpose(1, 2), t[..., None])[..., 0]


def _products(index: RowIndex, factors, weights, targets, block: int):
    """The same, for consecutive rows: ``W_rows @ [f_j f_jᵀ]_j`` as one sparse product."""
    dim = factors.shape[1]
    outer = (factors[:, :, None] * factors[:, None, :]).reshape(len(factors), dim * dim)
    weight = _stored(weights, index, factors)
    rhs = index.sparse(_stored(targets, index, factors)) @ factors  # [n_rows, d]
    step = max(1, block // (dim * dim))
    for start in range(0, index.n_rows, step):
        stop = min(start + step, index.n_rows)
        rows = torch.arange(start, stop, device=factors.device)
        gram = (index.sparse(weight, start, stop) @ outer).view(-1, dim, dim)
        yield rows, gram, rhs[start:stop]


def _noise(index: RowIndex, dim: int, block: int, generator, like) -> torch.Tensor:
    """Standard normal ``[n_rows, d]``, drawn chunk by chunk in the padded order, so a
    seed gives the same draws whichever way the Gram matrices are formed."""
    noise = like.new_empty(index.n_rows, dim)
    for rows, _ in index.chunks(dim, block):
        noise[rows] = torch.randn((len(rows), dim), generator=generator, device=generator.device,
                                  dtype=like.dtype).to(like.device)
    return noise


def _entries(value, positions: torch.Tensor, mask: torch.Tensor,
             like: torch.Tensor) -> torch.Tensor:
    """Per-entry values laid out ``[R, W]`` (zero in the padding)."""
    if isinstance(value, torch.Tensor) and value.dim() > 0:
        return value[positions].to(like.dtype) * mask
    return mask.to(like.dtype) * float(value)


def _stored(value, index: RowIndex, like: torch.Tensor) -> torch.Tensor:
    """Per stored entry ``[nnz]``, from a tensor or one number."""
    if isinstance(value, torch.Tensor) and value.dim() > 0:
        return value.to(like.dtype)
    return torch.full(index.indices.shape, float(value), dtype=like.dtype, device=like.device)
