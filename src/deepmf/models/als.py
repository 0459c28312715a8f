"""Alternating least squares: iALS for implicit feedback, ALS-WR for ratings.

These models are not trained by gradient steps. Each epoch is one :meth:`sweep`: every
user's factors are solved in closed form with the items' fixed, then every item's with the
users' fixed (:func:`deepmf.solve.solve_rows`). A sweep never raises the training objective
(an exact solve minimises each side's quadratic; each conjugate gradient step from the
current factors lowers it), and the model is usable after every one, so the training loop
validates, stops early and keeps the best sweep as it does for epochs of SGD.

The factors are parameters with ``requires_grad=False``: they are saved and loaded with the
state dict, and no optimizer ever sees them. Initialisation is drawn at construction from
``torch.Generator().manual_seed(seed)`` (N(0, init_std²/dim)), so a model is deterministic
on the CPU for its ``seed`` keyword; the generator passed to :meth:`sweep` is not used.
"""

from __future__ import annotations

import scipy.sparse as sp
import torch
from torch import nn

from deepmf.data import Interactions
from deepmf.errors import ConfigError
from deepmf.models.base import Recommender, chosen
from deepmf.models.layers import biased_product
from deepmf.solve import RowIndex, solve_rows

SOLVERS = ("cg", "cholesky")


def _check(name: str, value, low: float, *, strict: bool) -> float:
    """``value`` as a float, or a ConfigError naming ``name`` when it is not above ``low``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not (number > low if strict else number >= low) or number != number:
        bound = f"{'>' if strict else '>='} {low:g}"
        raise ConfigError(f"{name} must be a number {bound}, got {value!r}")
    return number


class Alternating(Recommender):
    """Shared parts: factor tables, scoring, the solver choice and the cached sparse sides."""

    task: str
    trainer = "sweep"
    scores_subsets = True

    def __init__(self, n_users: int, n_items: int, dim: int, reg: float, init_std: float,
                 solver: str, cg_steps: int, seed: int):
        super().__init__()
        if isinstance(dim, bool) or int(dim) != dim or dim < 1:
            raise ConfigError(f"dim must be a positive integer, got {dim!r}")
        if solver not in SOLVERS:
            raise ConfigError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
        if isinstance(cg_steps, bool) or int(cg_steps) != cg_steps or cg_steps < 1:
            raise ConfigError(f"cg_steps must be a positive integer, got {cg_steps!r}")
        self.n_users, self.n_items = n_users, n_items
        self.reg = _check("reg", reg, 0.0, strict=True)
        init_std = _check("init_std", init_std, 0.0, strict=True)
        self.solver, self.cg_steps = solver, int(cg_steps)
        self.model_args = dict(n_users=n_users, n_items=n_items, dim=int(dim), reg=self.reg,
                               init_std=init_std, solver=solver, cg_steps=self.cg_steps,
                               seed=int(seed))
        generator = torch.Generator().manual_seed(int(seed))
        scale = init_std / float(dim) ** 0.5
        self.user_factors = nn.Parameter(  # randn × scale, drawn in place: the same values
            torch.empty(n_users, int(dim)).normal_(0.0, scale, generator=generator),
            requires_grad=False)
        self.item_factors = nn.Parameter(
            torch.empty(n_items, int(dim)).normal_(0.0, scale, generator=generator),
            requires_grad=False)
        self._sides: tuple[Interactions, RowIndex, RowIndex] | None = None

    def forward(self, users, items):
        return torch.linalg.vecdot(self.user_factors[users], self.item_factors[items])  # [B]

    def scorer(self):
        return lambda users, items=None: (
            self.user_factors[users] @ chosen(self.item_factors, items).T)  # [B, I]

    def item_vectors(self):
        return self.item_factors

    def sides(self, train: Interactions) -> tuple[RowIndex, RowIndex]:
        """``train`` by user and by item, built once per training log and device."""
        device = self.user_factors.device
        cached = self._sides
        if cached is None or cached[0] is not train or cached[1].indptr.device != device:
            if (train.n_users, train.n_items) != (self.n_users, self.n_items):
                raise ConfigError(f"train has {train.n_users} users and {train.n_items} items; "
                                 f"the model was built for {self.n_users} and {self.n_items}")
            by_user = RowIndex.from_csr(self.matrix(train), device)
            self._sides = cached = (train, by_user, by_user.transpose())
        return cached[1], cached[2]

    def matrix(self, train: Interactions):
        """The users × items scipy CSR matrix the sweeps fit."""
        return train.csr

    def solve(self, index: RowIndex, fixed: torch.Tensor, start: torch.Tensor,
              **system) -> torch.Tensor:
        """One side's rows given the other side's ``fixed`` factors (``start``: CG's x0)."""
        return solve_rows(index, fixed, method=self.solver, x0=start, cg_steps=self.cg_steps,
                          **system)


class IALS(Alternating):
    """Implicit alternating least squares with frequency-scaled L2 (task: implicit).

    ``ŷ(u, i) = w_u · h_i``, fit to 1 on observed pairs ``S`` and to 0 on all pairs, the
    latter with weight ``α₀`` (Rendle, Krichene, Zhang & Koren, "Revisiting the Performance
    of iALS on Item Recommendation Benchmarks", RecSys 2022; Hu, Koren & Volinsky, ICDM 2008):

        L = Σ_{(u,i)∈S} (ŷ(u,i) − 1)² + α₀ Σ_u Σ_i ŷ(u,i)²
            + λ Σ_u (|I_u| + α₀ |I|)^ν ‖w_u‖² + λ Σ_i (|U_i| + α₀ |U|)^ν ‖h_i‖²

    Fixing ``H``, each user solves ``(α₀ HᵀH + Σ_{i∈I_u} h_i h_iᵀ + λ_u I) w_u = Σ_{i∈I_u} h_i``;
    the Gramian ``HᵀH`` stands for every unobserved pair and is computed once per side.
    ``ν = 1`` scales the penalty with the number of terms each row's loss has, so one ``λ``
    suits users and items with few or many interactions alike (``ν = 0``: plain L2).

    Defaults were chosen on ml-1m validation data (one held-out training item per user):
    α₀ in {0.03, 0.05, 0.1, 0.2, 0.3, 1} × λ in {0.001 ... 0.03} at 128 factors, then 192
    factors; they carry over to AMusic (test HR@10 0.419 validation-selected, published best
    0.412). Small logs may want a larger ``reg``: ml-100k's validation prefers 0.02.

    Args:
        n_users: size of the user id space.
        n_items: size of the item id space.
        dim: number of latent factors.
        unobserved_weight: ``α₀``, the weight of the squared score of every pair.
        reg: ``λ``, the scale of the L2 penalty.
        reg_exponent: ``ν``, the frequency-scaling exponent of the penalty.
        init_std: the factors start from N(0, init_std² / dim), rows of norm about
            ``init_std``. From 0.1 the first sweeps are little more than a power iteration;
            from 1 the objective falls faster and ml-1m's validation HR@10 peaks 4 sweeps
            sooner, at the same height.
        solver: ``"cg"`` (``cg_steps`` conjugate gradient steps per row and side, warm-started
            from the previous sweep) or ``"cholesky"`` (exact solves; slower beyond ~32
            factors).
        cg_steps: conjugate gradient steps per row and side.
        seed: seed of the initialisation.
    """

    task = "implicit"

    def __init__(self, n_users: int, n_items: int, dim: int = 192,
                 unobserved_weight: float = 0.1, reg: float = 0.01, reg_exponent: float = 1.0,
                 init_std: float = 1.0, solver: str = "cg", cg_steps: int = 3, seed: int = 0):
        super().__init__(n_users, n_items, dim, reg, init_std, solver, cg_steps, seed)
        self.unobserved_weight = _check("unobserved_weight", unobserved_weight, 0.0,
                                        strict=False)
        self.reg_exponent = _check("reg_exponent", reg_exponent, float("-inf"), strict=True)
        self.model_args.update(unobserved_weight=self.unobserved_weight,
                               reg_exponent=self.reg_exponent)

    def ridge(self, index: RowIndex, n_other: int) -> torch.Tensor:
        """``λ (|rows' entries| + α₀ n_other)^ν`` per row."""
        counts = index.lengths.to(self.user_factors.dtype) + self.unobserved_weight * n_other
        return self.reg * counts.clamp(min=1e-12) ** self.reg_exponent

    def sweep(self, train: Interactions, generator: torch.Generator | None = None) -> dict:
        """Solve the users with the items fixed, then the items; return the objective.

        Returns:
            ``{"loss": L / |S|}``, ``L`` the objective above after the sweep, with ``S`` the
            distinct observed pairs (the generator is unused: sweeps are deterministic).
        """
        self.update_users(train)
        self.update_items(train)
        by_user, by_item = self.sides(train)
        with torch.no_grad():
            return {"loss": self.objective(by_user, by_item) / max(len(by_user.indices), 1)}

    @torch.no_grad()
    def update_users(self, train: Interactions) -> None:
        """The user half of a sweep: every ``w_u`` solved with ``H`` fixed."""
        self._side(self.sides(train)[0], self.user_factors, self.item_factors)

    @torch.no_grad()
    def update_items(self, train: Interactions) -> None:
        """The item half of a sweep: every ``h_i`` solved with ``W`` fixed."""
        self._side(self.sides(train)[1], self.item_factors, self.user_factors)

    def _side(self, index: RowIndex, factors: torch.Tensor, other: torch.Tensor) -> None:
        """Solve one side's ``factors`` against the other's, whose Gramian is the shared
        unobserved term."""
        factors.copy_(self.solve(index, other, factors,
                                 shared=self.unobserved_weight * (other.T @ other),
                                 ridge=self.ridge(index, len(other))))

    def objective(self, by_user: RowIndex, by_item: RowIndex) -> float:
        """``L`` for the current factors: the unobserved term by the Gramian trick,
        ``Σ_u Σ_i ŷ² = ⟨WᵀW, HᵀH⟩``, the observed one from the scores at ``S`` only."""
        w, h = self.user_factors, self.item_factors
        pattern = by_user.sparse(torch.ones_like(by_user.indices, dtype=w.dtype))
        scores = torch.sparse.sampled_addmm(pattern, w, h.T, beta=0.0).values()
        loss = (scores - 1).square().sum() + self.unobserved_weight * ((w.T @ w) * (h.T @ h)).sum()
        loss += torch.dot(self.ridge(by_user, self.n_items), w.square().sum(1))
        loss += torch.dot(self.ridge(by_item, self.n_users), h.square().sum(1))
        return float(loss)


class ALS(Alternating):
    """Biased ALS with weighted-λ regularisation, for rating prediction (task: explicit).

    ``r̂(u, i) = μ + b_u + c_i + p_u · q_i``, with ``μ`` the global mean of the training
    ratings, fit by alternating ridge regressions (Zhou, Wilkinson, Schreiber & Pan,
    "Large-Scale Parallel Collaborative Filtering for the Netflix Prize", AAIM 2008):

        L = Σ_{(u,i)∈R} (r_ui − r̂(u, i))² + λ Σ_u n_u (‖p_u‖² + b_u²) + λ Σ_i n_i (‖q_i‖² + c_i²)

    with ``n_u``, ``n_i`` the numbers of ratings of the row (ALS-WR's weighted λ; a row
    without ratings is penalised as if it had one, so it solves to zero). Each bias is
    solved together with its factors: the user side regresses ``r_ui − μ − c_i`` on the
    augmented item vectors ``[q_i, 1]``, so ``[p_u, b_u]`` comes out of one
    ``(d+1) × (d+1)`` system, and the item side likewise. Defaults: the best mean RMSE on
    5% validation splits of the ml-100k folds over dim 4 ... 64 and reg 0.05 ... 0.3.

    Args:
        n_users: size of the user id space.
        n_items: size of the item id space.
        dim: number of latent factors.
        reg: ``λ``, the weighted-λ penalty scale (on factors and biases alike).
        global_mean: ``μ``, set from the training ratings.
        init_std: the factors start from N(0, init_std² / dim), the biases from zero.
        solver: ``"cholesky"`` (exact) or ``"cg"`` (``cg_steps`` warm-started steps).
        cg_steps: conjugate gradient steps per row and side.
        seed: seed of the initialisation.
    """

    task = "explicit"

    def __init__(self, n_users: int, n_items: int, dim: int = 16, reg: float = 0.15,
                 global_mean: float = 0.0, init_std: float = 0.1, solver: str = "cholesky",
                 cg_steps: int = 3, seed: int = 0):
        super().__init__(n_users, n_items, dim, reg, init_std, solver, cg_steps, seed)
        self.model_args["global_mean"] = float(global_mean)
        self.user_bias = nn.Parameter(torch.zeros(n_users), requires_grad=False)
        self.item_bias = nn.Parameter(torch.zeros(n_items), requires_grad=False)
        self.register_buffer("global_mean", torch.tensor(float(global_mean)))

    def forward(self, users, items):
        biases = self.user_bias[users] + self.item_bias[items] + self.global_mean
        return super().forward(users, items) + biases

    def scorer(self):
        biases = self.item_bias + self.global_mean
        return lambda users, items=None: biased_product(
            self.user_factors[users], chosen(self.item_factors, items), self.user_bias[users],
            chosen(biases, items))  # [B, I]

    def matrix(self, train: Interactions):
        """Ratings as a users × items CSR matrix; a pair rated twice keeps its mean."""
        if train.ratings is None:
            raise ConfigError("ALS fits ratings; train has none (use IALS for implicit data)")
        shape = (train.n_users, train.n_items)
        total = sp.csr_matrix((train.ratings.astype("float64"), (train.users, train.items)),
                              shape=shape)
        count = sp.csr_matrix((train.ratings * 0 + 1.0, (train.users, train.items)),
                              shape=shape)
        total.sum_duplicates()
        count.sum_duplicates()
        total.data /= count.data
        return total.astype("float32")

    def sweep(self, train: Interactions, generator: torch.Generator | None = None) -> dict:
        """Solve ``[p_u, b_u]`` with the items fixed, then ``[q_i, c_i]``.

        Returns:
            ``{"loss": L / |R|, "rmse": training RMSE}`` after the sweep, ``R`` the distinct
            rated pairs (the generator is unused: sweeps are deterministic).
        """
        self.update_users(train)
        self.update_items(train)
        with torch.no_grad():
            return self.objective(self.sides(train)[0])

    @torch.no_grad()
    def update_users(self, train: Interactions) -> None:
        """The user half of a sweep: every ``[p_u, b_u]`` solved with the items fixed."""
        self._side(self.sides(train)[0], self.user_factors, self.user_bias,
                   self.item_factors, self.item_bias)

    @torch.no_grad()
    def update_items(self, train: Interactions) -> None:
        """The item half of a sweep: every ``[q_i, c_i]`` solved with the users fixed."""
        self._side(self.sides(train)[1], self.item_factors, self.item_bias,
                   self.user_factors, self.user_bias)

    def _side(self, index: RowIndex, factors, bias, other, other_bias) -> None:
        """Ridge-solve one side's ``[factors, bias]`` against the other's ``[other, 1]``."""
        fixed = torch.cat([other, torch.ones_like(other[:, :1])], dim=1)  # [m, d + 1]
        start = torch.cat([factors, bias[:, None]], dim=1)
        targets = index.values - self.global_mean - other_bias[index.indices]
        ridge = self.reg * index.lengths.clamp(min=1).to(factors.dtype)
        solution = self.solve(index, fixed, start, targets=targets, ridge=ridge)
        factors.copy_(solution[:, :-1])
        bias.copy_(solution[:, -1])

    def objective(self, by_user: RowIndex) -> dict:
        """``L / |R|`` and the training RMSE for the current parameters."""
        pattern = by_user.sparse(torch.ones_like(by_user.values))
        p, q = self.user_factors, self.item_factors
        dots = torch.sparse.sampled_addmm(pattern, p, q.T, beta=0.0).values()
        rows = by_user.row_ids()
        pred = dots + self.user_bias[rows] + self.item_bias[by_user.indices] + self.global_mean
        squared = (by_user.values - pred).square().sum()
        by_item_counts = torch.bincount(by_user.indices, minlength=self.n_items)
        penalty = torch.dot(by_user.lengths.clamp(min=1).to(p.dtype),
                            p.square().sum(1) + self.user_bias.square())
        penalty += torch.dot(by_item_counts.clamp(min=1).to(p.dtype),
                             q.square().sum(1) + self.item_bias.square())
        n = max(len(by_user.values), 1)
        return {"loss": float(squared + self.reg * penalty) / n, "rmse": float(squared / n) ** 0.5}
