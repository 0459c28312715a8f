"""Bayesian matrix factorization sampled by Gibbs, with SVD++, "flipped" and day features."""

from __future__ import annotations

import torch

from deepmf.data import Interactions
from deepmf.errors import ConfigError
from deepmf.models.base import Recommender
from deepmf.models.bayes_gibbs import SECONDS_PER_DAY, day_numbers, label_design
from deepmf.models.bayes_sweep import run_sweep
from deepmf.models.layers import biased_product


class BayesMF(Recommender):
    """Bayesian MF by Gibbs sampling (BPMF, Salakhutdinov & Mnih 2008), written as a
    Bayesian factorization machine over fields, with the features of Rendle, Zhang &
    Koren (2019)'s Bayesian timeSVD++ "flipped", side information and per-user noise.

    ``r̂(u, i, t) = μ + w₀ + b_u + b_i + b_t + U_u·V_i + U_u·C_t + V_i·C_t`` with
    ``U_u = p_u + |N(u)|^-1/2 Σ_{j∈N(u)} y_j + |A(u)|^-1/2 Σ_{a∈A(u)} g_a`` (SVD++:
    ``N(u)`` the items ``u`` rated in the training data; ``A(u)`` the user's labels),
    ``V_i = q_i + |N(i)|^-1/2 Σ_{v∈N(i)} z_v + |A(i)|^-1/2 Σ_{a∈A(i)} h_a`` (flipped:
    the users who rated ``i``; the item's labels), ``C_t`` the vector of the rating's day;
    biases are the same sums over one more column. A rating of ``u`` is
    ``N(r̂, 1/(τ s_u))``: ``s_u ~ Gamma(ν/2, ν/2)`` lets some users be noisier than others
    (a Student-t per user), which the record models lack and which moves ml-100k's test
    RMSE more than any feature (0.005 on validation). Implicit sets come from the log
    handed to :meth:`sweep` (the "stricter" protocol), never from which test pairs exist.

    Unlike libFM's full FM there are no products within a field (``p_u·y_j``): they
    are per-user constants next to ``b_u``, and without them each field is linear in its
    parameters, so every block is drawn exactly and at once (users, items, days, then
    each ``Σ X Θ`` block; see :mod:`deepmf.models.bayes_gibbs`) instead of coordinate by
    coordinate. Priors: every group (user ids, item ids, days, each block) has
    per-column ``N(μ_f, 1/λ_f)`` with Normal-Gamma hyper-priors, as libFM/myFM
    (Freudenthaler et al. 2011), rather than BPMF's Gaussian-Wishart: a diagonal precision
    keeps the coupled blocks separable by column, which is what makes their exact draw
    three dense products, and each feature block gets its own prior scale. ``w₀ ~ N(0, 1)``.

    Prediction is the posterior mean over the ``samples`` sweeps after ``burn_in``, kept
    exactly: each field's factor columns of every kept state are concatenated, so a
    pair's mean score is one dot product of concatenations plus averaged biases. Memory:
    ``(n_users + n_items + n_days) × samples × dim`` floats (ml-100k, 500 × 10: 57 MB),
    allocated up front so that a checkpoint's shapes are fixed. Each kept state holds one
    field (users, items, alternately) at its conditional mean given the rest
    (Rao-Blackwellised), an unbiased and less noisy term than the draw.

    ``uses_times`` is True when the day field is on: ``forward`` then reads the rating's
    time, and evaluation should pass each test rating's timestamp.

    Args:
        n_users: size of the user id space.
        n_items: size of the item id space.
        dim: number of latent factors (10 as the record; 8 and 16 did no better on
            validation data carved from u1.base).
        samples: kept sweeps averaged for prediction (validation RMSE still improves up
            to about 300-400; myFM's ml-100k example keeps 512).
        burn_in: sweeps discarded first (the chain settles in about 20).
        implicit_items: add the items each user rated (SVD++) to the user vector.
        implicit_users: add the users who rated each item ("flipped") to the item vector.
        days: add the day of the rating as a field; None: on when ``interactions`` has
            timestamps (or ``day_range`` is given), the brief's "features on where the data
            has what they need". On ml-100k's five test folds it gains 0.0025 RMSE; on
            validation data carved from u1/u2/u3.base it was neutral to 0.003 worse (and
            0.0016 worse in myFM on u1's), and it costs a sixth more time.
        day_range: first and last training day (days since 1970-01-01 UTC); None: from
            ``interactions``. Days outside it, and ``times=None``, use the nearest end.
        user_features: labels of each user (such as ``"gender:F"``), one list per user id,
            or None; see :mod:`deepmf.readers.side`.
        item_features: labels of each item (``"genre:Comedy"``), or None.
        user_noise: draw a noise scale per user (else one noise precision for all).
        noise_dof: ``ν`` of the per-user noise scales (10; 4 to 100 within 0.001).
        global_mean: μ, the mean training rating (an offset; ``w₀`` is drawn around it).
        prior_shape: shape ``α₀`` of every Gamma hyper-prior (precisions and noise); 0.5
            and ``prior_rate`` 0.5 are libFM's ``Gamma(α/2, β/2)`` with ``α = β = 1``
            (1 and 1 were 0.0016 worse on validation).
        prior_rate: rate ``β₀`` of every Gamma hyper-prior.
        init_std: standard deviation of the first sample's factors.
        interactions: the training log, read only for ``day_range``.
    """

    uses_times = False  # an instance with the day field on sets it True
    trainer = "sweep"
    selects_epochs = False  # more kept samples only help: it runs burn_in + samples sweeps
    task = "explicit"

    def __init__(
        self, n_users: int, n_items: int, dim: int = 10, samples: int = 500, burn_in: int = 20,
        implicit_items: bool = True, implicit_users: bool = True, days: bool | None = None,
        day_range: tuple[int, int] | list[int] | None = None,
        user_features: list[list[str]] | None = None,
        item_features: list[list[str]] | None = None, user_noise: bool = True,
        noise_dof: float = 10.0, global_mean: float = 0.0, prior_shape: float = 0.5,
        prior_rate: float = 0.5, init_std: float = 0.1, interactions: Interactions | None = None,
    ):
        super().__init__()
        _check(dim=dim, samples=samples, burn_in=burn_in, noise_dof=noise_dof,
               prior_shape=prior_shape, prior_rate=prior_rate, init_std=init_std)
        day_range = _day_range(days, day_range, interactions)
        self.n_users, self.n_items, self.dim = n_users, n_items, int(dim)
        self.samples, self.burn_in, self.init_std = int(samples), int(burn_in), float(init_std)
        self.user_noise, self.noise_dof = bool(user_noise), float(noise_dof)
        if day_range is not None:
            self.uses_times = True
        self.first_day = day_range[0] if day_range else 0
        self.model_args = dict(
            n_users=n_users, n_items=n_items, dim=self.dim, samples=self.samples,
            burn_in=self.burn_in, implicit_items=bool(implicit_items),
            implicit_users=bool(implicit_users), days=day_range is not None,
            day_range=None if day_range is None else list(day_range),
            user_features=_labels("user_features", user_features, n_users),
            item_features=_labels("item_features", item_features, n_items),
            user_noise=self.user_noise, noise_dof=self.noise_dof, global_mean=float(global_mean),
            prior_shape=float(prior_shape), prior_rate=float(prior_rate), init_std=self.init_std)
        sizes = {"user": n_users, "item": n_items}
        if day_range:
            sizes["day"] = day_range[1] - day_range[0] + 1
        blocks = {"user": {}, "item": {}, "day": {}}  # field -> block -> columns of Θ
        self.designs = {}  # field -> attribute design (the implicit ones come from train)
        for f, other, on in (("user", n_items, implicit_items), ("item", n_users, implicit_users)):
            if on:
                blocks[f]["implicit"] = other
            if self.model_args[f"{f}_features"] is not None:
                self.designs[f], vocabulary = label_design(self.model_args[f"{f}_features"])
                blocks[f]["attributes"] = len(vocabulary)
        self.fields = {f: list(blocks[f]) for f in sizes}
        self.groups = [(f, kind) for f in self.fields for kind in ("ids", *self.fields[f])]
        width = self.dim + 1  # factors, then the bias column
        for f, n in sizes.items():
            self.register_buffer(f"{f}_sample", torch.zeros(n, width))
            self.register_buffer(f"{f}_kept", torch.zeros(n, self.samples * self.dim))
            self.register_buffer(f"{f}_bias_sum", torch.zeros(n))
            for b, columns in blocks[f].items():
                self.register_buffer(f"{f}_{b}", torch.zeros(columns, width))
        self.register_buffer("hyper_mean", torch.zeros(len(self.groups), width))
        self.register_buffer("hyper_precision", torch.ones(len(self.groups), width))
        self.register_buffer("user_noise_scale", torch.ones(n_users))
        scalars = dict(global_mean=float(global_mean), w0=0.0, w0_sum=0.0, noise_precision=1.0)
        for name, value in scalars.items():
            self.register_buffer(name, torch.tensor(value))
        self.register_buffer("drawn", torch.tensor(0))
        self.register_buffer("kept", torch.tensor(0))
        self._chain = None  # the sampler's per-log state, built by the first sweep

    # ---- prediction -------------------------------------------------------------------
    def _day_rows(self, times: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        last = self.day_sample.shape[0] - 1
        if times is None:
            return torch.full_like(like, last)
        days = torch.div(times.to(like.device), SECONDS_PER_DAY, rounding_mode="floor")
        return (days - self.first_day).clamp(0, last).long()

    def _parts(self, f: str, rows: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Factor columns (concatenated over kept samples) and mean bias of field rows."""
        k = int(self.kept)
        if k == 0:
            sample = getattr(self, f"{f}_sample")[rows]
            return sample[:, : self.dim], sample[:, self.dim]
        kept = getattr(self, f"{f}_kept")[rows, : k * self.dim]
        return kept, getattr(self, f"{f}_bias_sum")[rows] / k

    def _base(self) -> torch.Tensor:
        k = int(self.kept)
        return self.global_mean + (self.w0_sum / k if k else self.w0)

    def forward(self, users, items, times=None):
        """Posterior-mean ratings of pairs (the current sample during burn-in), ``[B]``.

        ``times``: Unix seconds of each pair (the day field); None: the last training day.
        """
        rows = {"user": users, "item": items}
        if self.uses_times:
            rows["day"] = self._day_rows(times, users)
        scale = 1.0 / max(int(self.kept), 1)
        step = max(1, (1 << 22) // (max(int(self.kept), 1) * self.dim * len(rows)))
        out = []
        for lo in range(0, len(users), step):  # bounded memory: chunks of pairs, not rows
            parts = {f: self._parts(f, r[lo : lo + step]) for f, r in rows.items()}
            vecs = [v for v, _ in parts.values()]
            pairs = sum(torch.linalg.vecdot(vecs[a], vecs[b])
                        for a in range(len(vecs)) for b in range(a + 1, len(vecs)))
            out.append(self._base() + sum(b for _, b in parts.values()) + scale * pairs)
        return torch.cat(out) if out else self._base().expand(0)

    def score_all(self, users, times=None):
        """Scores of every item for each user, ``[B, n_items]``, on the day of ``times``
        (one per user, Unix seconds) or the last training day."""
        scale = 1.0 / max(int(self.kept), 1)
        u, bu = self._parts("user", users)
        i, bi = self._parts("item", slice(None))
        scores = biased_product(u, i, bu, self._base() + bi, alpha=scale)
        if self.uses_times:
            c, bc = self._parts("day", self._day_rows(times, users))
            scores += (bc + scale * torch.linalg.vecdot(u, c))[:, None] + scale * (c @ i.T)
        return scores

    def item_vectors(self):
        """Item factors (concatenated over kept samples, scaled so dots are mean scores)."""
        return self._parts("item", slice(None))[0] / max(int(self.kept), 1) ** 0.5

    # ---- sampling ---------------------------------------------------------------------
    def sweep(self, train: Interactions, generator: torch.Generator) -> dict[str, float]:
        """One Gibbs sweep: hyper-parameters, ``w₀``, then each field (users, items, days)
        with its implicit block, then the noise. Sweeps past ``burn_in`` are kept (the
        first ``samples`` of them) for the posterior mean that :meth:`forward` returns.

        All randomness comes from ``generator`` (the first sweep also draws the initial
        sample from it), so a seeded generator makes a run reproducible.

        Returns:
            ``loss``: training RMSE of this sweep's sample; ``noise_std``: ``τ^-1/2``;
            ``kept``: samples in the posterior mean so far.
        """
        with torch.no_grad():
            return run_sweep(self, train, generator)


def _check(**values) -> None:
    for name in ("dim", "samples", "burn_in"):
        value, low = values.pop(name), 0 if name == "burn_in" else 1
        if isinstance(value, bool) or int(value) != value or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    for name, value in values.items():
        if not value > 0:
            raise ConfigError(f"{name} must be positive, got {value!r}")


def _labels(name: str, labels, n: int) -> list[list[str]] | None:
    if labels is None:
        return None
    rows = [[str(x) for x in ([row] if isinstance(row, str) else row)] for row in labels]
    if len(rows) != n:
        raise ConfigError(f"{name} must list labels for each of the {n} ids, got {len(rows)}")
    return rows


def _day_range(days, day_range, interactions) -> tuple[int, int] | None:
    if days is False:
        return None
    if day_range is not None:
        first, last = (int(x) for x in day_range)
        if last < first:
            raise ConfigError("day_range must be (first, last) with first <= last, "
                              f"got {day_range}")
        return first, last
    stamps = None if interactions is None else interactions.timestamps
    if stamps is None or len(stamps) == 0:
        if days:
            raise ConfigError("days=True needs day_range or interactions with timestamps")
        return None
    numbers = day_numbers(stamps)
    return int(numbers.min()), int(numbers.max())
