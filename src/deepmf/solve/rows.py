"""One side of a sparse matrix as torch CSR arrays, grouped for the batched row solves."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch


@dataclass(frozen=True, eq=False)
class RowIndex:
    """One side of a sparse matrix as torch CSR arrays: ``indices[indptr[r]:indptr[r+1]]``
    are the columns of row ``r``, ``values`` the entries (or None for a binary matrix).

    :meth:`chunks` groups the rows for :func:`solve_rows`.
    """

    indptr: torch.Tensor
    indices: torch.Tensor
    values: torch.Tensor | None
    n_cols: int

    @classmethod
    def from_csr(cls, matrix: sp.csr_matrix, device=None, dtype=torch.float32) -> "RowIndex":
        matrix = matrix.tocsr()
        matrix.sort_indices()
        return cls(
            torch.from_numpy(matrix.indptr.astype(np.int64)).to(device),
            torch.from_numpy(matrix.indices.astype(np.int64)).to(device),
            torch.from_numpy(matrix.data).to(device=device, dtype=dtype),
            matrix.shape[1],
        )

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def lengths(self) -> torch.Tensor:
        return self.indptr[1:] - self.indptr[:-1]

    def row_ids(self) -> torch.Tensor:
        """The row of each stored entry, ``[nnz]``."""
        return torch.repeat_interleave(torch.arange(self.n_rows, device=self.indptr.device),
                                       self.lengths)

    def chunks(self, dim: int, block: int = 1 << 22) -> list[tuple[torch.Tensor, int]]:
        """``(rows, padded length)`` pairs covering every row once, for a ``dim``-wide solve.

        Rows are sorted by length and grouped by ``floor(log2(length))``; each group is
        cut so that ``rows × length × dim`` stays near ``block`` (one row at least).
        """
        lengths = self.lengths.cpu().numpy()
        order = np.argsort(lengths, kind="stable")
        sorted_len = lengths[order]
        group = np.where(sorted_len > 0, np.floor(np.log2(np.maximum(sorted_len, 1))) + 1, 0)
        out = []
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        ends = np.r_[starts[1:], len(order)]
        for start, end in zip(starts.tolist(), ends.tolist()):
            width = int(sorted_len[end - 1])
            per_chunk = max(1, block // max(width * dim, dim))
            for lo in range(start, end, per_chunk):
                rows = torch.from_numpy(order[lo : min(lo + per_chunk, end)].copy())
                out.append((rows.to(self.indptr.device), width))
        return out

    def padded(self, rows: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions ``[R, width]`` of the rows' entries, and a mask of the real ones."""
        starts = self.indptr[rows]  # [R]
        offsets = torch.arange(width, device=rows.device)  # [W]
        mask = offsets < (self.indptr[rows + 1] - starts)[:, None]  # [R, W]
        positions = torch.where(mask, starts[:, None] + offsets, 0)
        return positions, mask

    def sparse(self, values: torch.Tensor, start: int = 0, stop: int | None = None):
        """Rows ``start:stop`` as a torch sparse CSR tensor holding ``values`` (``[nnz]``,
        all entries in stored order)."""
        stop = self.n_rows if stop is None else stop
        lo, hi = (int(self.indptr[start]), int(self.indptr[stop])) if start or stop < \
            self.n_rows else (0, len(self.indices))
        with warnings.catch_warnings():  # "sparse CSR support is in beta", on every build
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(self.indptr[start : stop + 1] - lo,
                                           self.indices[lo:hi], values[lo:hi],
                                           (stop - start, self.n_cols), check_invariants=False)

    def transpose(self) -> "RowIndex":
        """The other side's rows, with the same values."""
        n_rows = self.n_rows
        values = self.values.cpu().numpy() if self.values is not None else np.ones(
            len(self.indices), dtype=np.float32)
        matrix = sp.csr_matrix((values, self.indices.cpu().numpy(), self.indptr.cpu().numpy()),
                               shape=(n_rows, self.n_cols))
        dtype = self.values.dtype if self.values is not None else torch.float32
        out = RowIndex.from_csr(matrix.T.tocsr(), self.indptr.device, dtype)
        return out if self.values is not None else RowIndex(out.indptr, out.indices, None,
                                                            n_rows)


def _per_row(value, rows: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A scalar or ``[R_total]`` tensor, restricted to ``rows`` as ``[R]``."""
    if isinstance(value, torch.Tensor) and value.dim() > 0:
        return value[rows].to(like.dtype)
    return torch.full((len(rows),), float(value), dtype=like.dtype, device=like.device)
