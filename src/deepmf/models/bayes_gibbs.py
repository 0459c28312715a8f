"""The pieces of the Gibbs sampler behind :class:`~deepmf.models.bayes.BayesMF`.

A rating ``(u, i, t)`` is scored from one vector per *field* (user, item, day); a field
row's vector is ``E_r = P_r + Σ_b X_b,r Θ_b``: an id part ``P_r`` plus fixed, train-only
design rows ``X_b,r`` (the normalised implicit set, the row's labels) times shared blocks
``Θ_b``. The sampler keeps ``E`` itself ("centred"), so a field costs exact block draws:

* every row's ``E_r`` given the rest: one independent Gaussian per row, drawn for all
  rows at once by :class:`RowLayout` with prior mean ``μ_P + Σ_b X_b,r Θ_b``;
* each block ``Θ_b`` given ``E`` and the other blocks: a Bayesian linear regression of
  ``E − μ_P − Σ_{b'≠b} X_b' Θ_b'`` on ``X_b`` whose precision, column ``f`` by column,
  is ``λ_P,f XᵀX + λ_Θ,f I``. Every column and every sweep shares the eigenvectors of
  the fixed ``XᵀX``, so :class:`Spectral` decomposes it once and then draws the whole
  block (all items' ``y_j`` at once, coupled as they are) with three dense products.

:class:`RowLayout` is :func:`deepmf.solve.solve_rows` specialised to one weight per
entry and a diagonal shared precision, with its entry layout built once per training
log: each chunk's padded entries are gathered with one flat ``index_select`` (no masks,
which take three quarters of ``solve_rows``' time at ``d = 10`` on a CPU) and all rows
share one batched Cholesky. It draws the same distribution (the tests check its means
against ``solve_rows``) about three times faster, which the comparison with myFM needs.

Hyper-parameters are Normal-Gamma per group and column (Freudenthaler, Schmidt-Thieme and
Rendle 2011, as libFM and myFM): :func:`normal_gamma` draws them jointly from their
conjugate posterior. Gamma variates come from a NumPy generator seeded from the torch
generator of the sweep, so a run is fixed by that generator alone.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from deepmf.solve import RowIndex

SECONDS_PER_DAY = 86_400


def normal_gamma(values: torch.Tensor, rng: np.random.Generator, shape: float, rate: float,
                 strength: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``(μ, λ)`` per column from the Normal-Gamma posterior of ``values`` ``[n, D]``.

    Prior: ``λ ~ Gamma(shape, rate)`` and ``μ | λ ~ N(0, 1 / (strength λ))``; the rows
    are i.i.d. ``N(μ, 1/λ)``. Posterior: ``λ ~ Gamma(shape + n/2, rate + ½ Σ(x − x̄)² +
    strength n x̄² / (2 (strength + n)))`` and ``μ | λ ~ N(n x̄ / (strength + n),
    1 / ((strength + n) λ))``.
    """
    data = values.double().cpu().numpy()
    n = data.shape[0]
    mean = data.mean(0) if n else np.zeros(data.shape[1])
    spread = ((data - mean) ** 2).sum(0)
    beta = rate + 0.5 * spread + strength * n * mean**2 / (2.0 * (strength + n))
    lam = rng.gamma(shape + 0.5 * n, 1.0 / beta)
    mu = n * mean / (strength + n) + rng.standard_normal(len(lam)) / np.sqrt((strength + n) * lam)
    like = dict(dtype=values.dtype, device=values.device)
    return torch.as_tensor(mu, **like), torch.as_tensor(lam, **like)


def gamma(rng: np.random.Generator, shape: float, rate: float) -> float:
    """One ``Gamma(shape, rate)`` variate (rate, not scale)."""
    return float(rng.gamma(shape, 1.0 / rate))


def implicit_design(csr: sp.csr_matrix) -> sp.csr_matrix:
    """Each row's set, normalised by ``|N(r)|^-1/2`` (SVD++'s implicit term, Koren 2008);
    empty rows stay zero."""
    csr = sp.csr_matrix(csr, dtype=np.float64)
    counts = np.diff(csr.indptr)
    return sp.diags(1.0 / np.sqrt(np.maximum(counts, 1))) @ csr


def label_design(labels: list[list[str]]) -> tuple[sp.csr_matrix, list[str]]:
    """One row per entity: its labels one-hot, normalised by ``(number of labels)^-1/2``.

    Returns the design and its columns' labels (sorted, so the same lists give the same
    design).
    """
    vocabulary = sorted({str(x) for row in labels for x in row})
    column = {label: j for j, label in enumerate(vocabulary)}
    rows = [[column[str(x)] for x in dict.fromkeys(row)] for row in labels]
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.array([j for r in rows for j in r], dtype=np.int64)
    binary = sp.csr_matrix((np.ones(len(indices)), indices, indptr),
                           shape=(len(rows), len(vocabulary)))
    return implicit_design(binary), vocabulary


def day_numbers(timestamps) -> np.ndarray:
    """Unix seconds -> whole days since 1970-01-01 (UTC)."""
    return np.floor_divide(np.asarray(timestamps, dtype=np.int64), SECONDS_PER_DAY)


def _torch_csr(matrix: sp.csr_matrix, dtype: torch.dtype) -> torch.Tensor:
    matrix = matrix.tocsr()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": mm is all we use
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.from_numpy(matrix.indptr.astype(np.int64)),
                                       torch.from_numpy(matrix.indices.astype(np.int64)),
                                       torch.from_numpy(matrix.data).to(dtype), matrix.shape,
                                       check_invariants=False)


@dataclass(frozen=True, eq=False)
class Spectral:
    """A fixed design ``X`` (``[n, k]``) and ``XᵀX = Q diag(s) Qᵀ`` (``Q``: ``[k, r]``).

    ``r = min(n, k)`` less the zero eigenvalues: when ``k > n`` the decomposition comes
    from the smaller ``XXᵀ = W diag(s) Wᵀ`` as ``Q = Xᵀ W diag(s)^-1/2``. Memory is
    ``k × r`` numbers; the one-time cost an ``r × r`` eigen-decomposition.
    """

    design: torch.Tensor  # sparse CSR [n, k]
    transposed: torch.Tensor  # sparse CSR [k, n]
    basis: torch.Tensor  # [k, r]
    values: torch.Tensor  # [r]

    @classmethod
    def of(cls, matrix: sp.csr_matrix, dtype: torch.dtype = torch.float32) -> "Spectral":
        n, k = matrix.shape
        small = matrix.T if k <= n else matrix  # the Gram matrix of the smaller side
        gram = torch.from_numpy((small @ small.T).toarray())
        values, vectors = torch.linalg.eigh(gram)
        keep = values > 1e-9 * max(float(values.max()), 1e-300) if len(values) else values > 0
        values, vectors = values[keep], vectors[:, keep]
        if k > n:
            vectors = torch.from_numpy(matrix.T @ vectors.numpy()) / values.sqrt()
        return cls(_torch_csr(matrix, dtype), _torch_csr(matrix.T.tocsr(), dtype),
                   vectors.to(dtype), values.to(dtype))

    def times(self, theta: torch.Tensor) -> torch.Tensor:
        """``X Θ``: ``[n, D]``."""
        return torch.sparse.mm(self.design, theta)

    def draw(self, target: torch.Tensor, row_precision: torch.Tensor, mean: torch.Tensor,
             precision: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Draw ``Θ`` (``[k, D]``) given ``target = E − μ_P`` (``[n, D]``).

        Column ``f`` has precision ``A = λ_P XᵀX + λ_Θ I`` (``λ_P = row_precision[f]``,
        ``λ_Θ = precision[f]``) and linear term ``b = λ_P Xᵀ target + λ_Θ μ_Θ``; the draw
        is ``A⁻¹ b + A^-1/2 ε``. In the eigenbasis ``A`` is ``λ_P s + λ_Θ``, and on the
        complement of ``Q``'s span it is ``λ_Θ``.
        """
        b = row_precision * torch.sparse.mm(self.transposed, target) + precision * mean
        noise = torch.randn(b.shape, generator=generator, dtype=b.dtype)
        scaled = self.values[:, None] * row_precision + precision  # [r, D]
        pb, pe = (self.basis.T @ torch.cat([b, noise], 1)).split(b.shape[1], 1)
        outside = b / precision + noise / precision.sqrt()
        inside = pb * (1 / scaled - 1 / precision) + pe * (scaled.rsqrt() - precision.rsqrt())
        return outside + self.basis @ inside


@dataclass(frozen=True, eq=False)
class RowLayout:
    """Which training ratings each row of a field owns, laid out for batched Gram matrices.

    Rows are grouped as :meth:`deepmf.solve.RowIndex.chunks` groups them (similar lengths,
    bounded memory); each chunk keeps a flat index into the ratings, padded with the index
    ``nnz`` of an appended zero row, so gathering a chunk is one ``index_select`` and needs
    no mask. ``order`` lists the rows chunk by chunk: results come out in that order.
    """

    n_rows: int
    nnz: int
    order: torch.Tensor  # [n_rows]
    chunks: tuple[tuple[torch.Tensor, int, int], ...]  # (flat index [R * W], R, W)

    @classmethod
    def of(cls, index: RowIndex, dim: int, block: int = 1 << 20) -> "RowLayout":
        chunks, order = [], []
        for rows, width in index.chunks(dim, block):
            positions, mask = index.padded(rows, width)
            flat = torch.where(mask, index.indices[positions], len(index.indices))
            chunks.append((flat.reshape(-1), len(rows), width))
            order.append(rows)
        return cls(index.n_rows, len(index.indices), torch.cat(order), tuple(chunks))

    def draw(self, partners: torch.Tensor, targets: torch.Tensor, weight: float,
             precision: torch.Tensor, prior: torch.Tensor,
             generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw every row ``x_r ~ N(A_r⁻¹ b_r, A_r⁻¹)``; returns the draws and the means
        ``A_r⁻¹ b_r``, both ``[n_rows, D]``.

        ``A_r = diag(precision) + weight Σ_n z_n z_nᵀ`` and ``b_r = prior_r + Σ_n t_n z_n``
        over the row's ratings ``n``: :func:`deepmf.solve.solve_rows` with one weight for
        every entry, ``S = diag(precision)`` and ``β = prior``, the same distribution.
        With ``A = L Lᵀ`` the draw is ``L⁻ᵀ (L⁻¹ b + ε)`` and the mean ``L⁻ᵀ L⁻¹ b``.
        """
        dim = partners.shape[1]
        z = torch.cat([partners, partners.new_zeros(1, dim)])
        t = torch.cat([targets, targets.new_zeros(1)])  # so that b = Σ t_n z_n
        grams, rhs = [], []
        for flat, n, width in self.chunks:
            block = z.index_select(0, flat).view(n, width, dim)
            grams.append(torch.bmm(block.transpose(1, 2), block))
            rhs.append(torch.bmm(block.transpose(1, 2), t.index_select(0, flat).view(n, width, 1)))
        a = torch.cat(grams).mul_(weight) + torch.diag(precision)
        b = torch.cat(rhs)[..., 0] + (prior[self.order] if prior.dim() == 2 else prior)
        chol, info = torch.linalg.cholesky_ex(a)
        if bool((info > 0).any()):
            raise ValueError("a row's posterior precision is not positive definite")
        noise = torch.randn(b.shape, generator=generator, device=generator.device,
                            dtype=b.dtype).to(b.device)
        half = torch.linalg.solve_triangular(chol, b[..., None], upper=False)
        both = torch.linalg.solve_triangular(chol.mT, torch.cat([half + noise[..., None], half], 2),
                                             upper=True)  # [n, D, 2]
        out = torch.empty_like(both).index_copy_(0, self.order, both)
        return out[..., 0], out[..., 1]


@dataclass(eq=False)
class Field:
    """One side of a rating (users, items or days) as the sampler sees it.

    Attributes:
        name: ``user``, ``item`` or ``day``: the model's buffers are named after it.
        ids: the field row of each training rating, ``[nnz]``.
        rows: field rows -> their ratings, laid out for the batched row draw.
        blocks: name -> design ``X`` (and its decomposition) of each extra block, whose
            ``X Θ`` adds to the rows' vectors (``implicit``, ``attributes``).
    """

    name: str
    ids: torch.Tensor
    rows: RowLayout
    blocks: dict[str, Spectral]

    @classmethod
    def of(cls, name: str, ids: np.ndarray, n_rows: int, dim: int,
           blocks: dict[str, sp.csr_matrix], dtype: torch.dtype) -> "Field":
        positions = np.arange(len(ids))
        rows = sp.csr_matrix((np.ones(len(ids), np.float32), (ids, positions)),
                             shape=(n_rows, len(ids)))
        return cls(name, torch.from_numpy(np.asarray(ids, np.int64)),
                   RowLayout.of(RowIndex.from_csr(rows, dtype=dtype), dim),
                   {b: Spectral.of(x, dtype) for b, x in blocks.items()})
