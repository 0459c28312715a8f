"""The batched row solve under every alternating model: see :mod:`deepmf.solve.direct`
(exact solves and Gibbs draws by batched Cholesky) and :mod:`deepmf.solve.cg` (a few
conjugate gradient steps for all rows at once)."""

from deepmf.solve.direct import solve_rows
from deepmf.solve.rows import RowIndex

__all__ = ["RowIndex", "solve_rows"]
