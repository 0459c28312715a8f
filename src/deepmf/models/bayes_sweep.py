"""One Gibbs sweep of :class:`~deepmf.models.bayes.BayesMF` over its training log.

Each step draws one block from its exact conditional given everything else: the
hyper-parameters, the offset ``w₀``, each field's rows (every user at once, then every
item, then every day) followed by that field's extra blocks one by one, the per-user noise
scales and the noise precision. The per-rating state (each field's current vector for
every training rating, the current prediction and each rating's noise weight) lives in a
:class:`Chain` built from the log on the first sweep and updated in place by each block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from deepmf.data import Interactions
from deepmf.errors import ConfigError
from deepmf.models.bayes_gibbs import Field, day_numbers, gamma, implicit_design, normal_gamma


@dataclass(eq=False)
class Chain:
    """What the sweeps over one training log share (rebuilt from the log, never saved)."""

    train: Interactions
    fields: dict[str, Field]
    ratings: torch.Tensor  # [nnz]
    gathered: dict[str, torch.Tensor]  # field -> its current vector for each rating [nnz, D]
    prediction: torch.Tensor  # [nnz], of the current sample
    weights: torch.Tensor  # [nnz], each rating's noise precision divided by τ


def run_sweep(model, train: Interactions, generator: torch.Generator) -> dict[str, float]:
    """Hyper-parameters, ``w₀``, each field and its blocks, noise scales, then ``τ``."""
    chain = _chain(model, train, generator)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    rng = np.random.default_rng(seed)  # for the Gamma draws, which torch cannot seed
    if int(model.drawn) > 0:  # the initial values are no sample to learn them from
        _draw_hypers(model, chain, rng)
    _draw_offset(model, chain, generator)
    keep = int(model.drawn) >= model.burn_in and int(model.kept) < model.samples
    averaged = ("user", "item")[int(model.kept) % 2] if keep else None
    for field in chain.fields.values():
        _draw_field(model, chain, field, generator, keep=field.name == averaged)
    squares = (chain.ratings - chain.prediction).double().square()
    if model.user_noise:
        _draw_user_noise(model, chain, squares, rng)
    shape, rate = model.model_args["prior_shape"], model.model_args["prior_rate"]
    weighted = float((chain.weights.double() * squares).sum())
    model.noise_precision.fill_(gamma(rng, shape + 0.5 * len(squares), rate + 0.5 * weighted))
    model.drawn += 1
    model.kept += int(keep)
    return {"loss": float(squares.mean()) ** 0.5 if len(squares) else 0.0,
            "noise_std": float(model.noise_precision) ** -0.5, "kept": float(model.kept)}


def _chain(model, train: Interactions, generator: torch.Generator) -> Chain:
    """The log's fields and per-rating state; on the very first sweep, the initial sample."""
    if model._chain is not None and model._chain.train is train:
        return model._chain
    if train.ratings is None:
        raise ConfigError("train must hold ratings: BayesMF predicts explicit ratings")
    if (train.n_users, train.n_items) != (model.n_users, model.n_items):
        raise ConfigError("train does not match the model's n_users and n_items")
    ids = {"user": train.users, "item": train.items}
    if "day" in model.fields:
        if train.timestamps is None:
            raise ConfigError("days=True needs training timestamps")
        last = model.day_sample.shape[0] - 1
        ids["day"] = np.clip(day_numbers(train.timestamps) - model.first_day, 0, last)
    implicit = {"user": train.csr, "item": train.csr.T.tocsr()}
    fields = {}
    for f, blocks in model.fields.items():
        designs = {b: implicit_design(implicit[f]) if b == "implicit" else model.designs[f]
                   for b in blocks}
        fields[f] = Field.of(f, ids[f], getattr(model, f"{f}_sample").shape[0], model.dim + 1,
                             designs, model.user_sample.dtype)
    if int(model.drawn) == 0:
        for f in fields:
            sample = getattr(model, f"{f}_sample")
            factors = torch.randn(sample[:, : model.dim].shape, generator=generator,
                                  device=generator.device, dtype=sample.dtype)
            sample.zero_()[:, : model.dim] = factors.to(sample.device) * model.init_std
    gathered = {f: getattr(model, f"{f}_sample").index_select(0, x.ids) for f, x in fields.items()}
    ratings = torch.tensor(train.ratings, dtype=model.user_sample.dtype)
    model._chain = Chain(train, fields, ratings, gathered, _predict(model, gathered),
                         _weights(model, fields["user"]))
    return model._chain


def _weights(model, users: Field) -> torch.Tensor:
    return model.user_noise_scale.index_select(0, users.ids) if model.user_noise else \
        torch.ones(len(users.ids), dtype=model.user_sample.dtype)


def _rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise dot products ``[n]`` of two ``[n, D]`` tensors."""
    return torch.bmm(a[:, None, :], b[:, :, None]).view(-1)


def _predict(model, gathered: dict[str, torch.Tensor]) -> torch.Tensor:
    vecs = [g[:, : model.dim] for g in gathered.values()]
    pairs = sum(_rowdot(vecs[a], vecs[b])
                for a in range(len(vecs)) for b in range(a + 1, len(vecs)))
    biases = sum(g[:, model.dim] for g in gathered.values())
    return model.global_mean + model.w0 + biases + pairs


def _block_sum(model, field: Field, skip: str | None = None) -> torch.Tensor | float:
    """``Σ_b X_b Θ_b`` over the field's blocks (but ``skip``): ``[n_rows, D]`` or 0."""
    return sum((x.times(getattr(model, f"{field.name}_{b}"))
                for b, x in field.blocks.items() if b != skip), 0.0)


def _draw_hypers(model, chain: Chain, rng: np.random.Generator) -> None:
    """Normal-Gamma ``(μ, λ)`` of each group: a field's id parts ``E − Σ X Θ``, and each
    of its blocks ``Θ``."""
    shape, rate = model.model_args["prior_shape"], model.model_args["prior_rate"]
    for g, (name, kind) in enumerate(model.groups):
        field = chain.fields[name]
        values = (getattr(model, f"{name}_sample") - _block_sum(model, field) if kind == "ids"
                  else getattr(model, f"{name}_{kind}"))
        model.hyper_mean[g], model.hyper_precision[g] = normal_gamma(values, rng, shape, rate)


def _draw_offset(model, chain: Chain, generator: torch.Generator) -> None:
    """``w₀ ~ N(τ Σ w_n (r_n − r̂₋w₀) / P, 1 / P)``, ``P = τ Σ w_n + 1`` (prior N(0, 1))."""
    tau = float(model.noise_precision)
    rest = chain.prediction - model.w0
    precision = tau * float(chain.weights.double().sum()) + 1.0
    mean = tau * float((chain.weights * (chain.ratings - rest)).double().sum()) / precision
    noise = float(torch.randn((), generator=generator, device=generator.device))
    model.w0.fill_(mean + noise / precision**0.5)
    chain.prediction = rest + model.w0


def _draw_field(model, chain: Chain, field: Field, generator: torch.Generator,
                keep: bool = False) -> None:
    """Every row of one field at once, then each of its blocks given the rows.

    With the other fields fixed, rating ``n`` of row ``r`` is linear in ``E_r``:
    ``r̂_n = o_n + z_n · E_r`` with ``z_n = [Σ other fields' factors, 1]`` (the 1 meets
    the bias column). So ``E_r ~ N(A⁻¹b, A⁻¹)`` with ``A = Λ + τ Σ_n w_n z_n z_nᵀ`` and
    ``b = Λ m_r + τ Σ_n w_n (r_n − o_n) z_n``, ``m_r = μ + Σ_b X_b,r Θ_b`` the prior mean.

    ``keep``: record this moment's state for the posterior mean, with this field's
    conditional mean ``A⁻¹b`` in place of its draw (see :func:`_keep`).
    """
    d, name = model.dim, field.name
    sample = getattr(model, f"{name}_sample")
    g = model.groups.index((name, "ids"))
    mu, lam = model.hyper_mean[g], model.hyper_precision[g]
    others = [v for f, v in chain.gathered.items() if f != name]
    partner = others[0].clone()
    for other in others[1:]:
        partner += other
    partner[:, d] = 1.0  # [nnz, D]
    offset = chain.prediction - _rowdot(partner, chain.gathered[name])
    root = (float(model.noise_precision) * chain.weights).sqrt()
    prior_mean = mu + _block_sum(model, field)
    draw, mean = field.rows.draw(partner * root[:, None], root * (chain.ratings - offset), 1.0,
                                 lam, lam * prior_mean, generator)
    if keep:
        _keep(model, name, mean)
    sample.copy_(draw)
    for b, design in field.blocks.items():
        e = model.groups.index((name, b))
        target = sample - mu - _block_sum(model, field, skip=b)
        getattr(model, f"{name}_{b}").copy_(design.draw(
            target, lam, model.hyper_mean[e], model.hyper_precision[e], generator))
    chain.gathered[name] = sample.index_select(0, field.ids)
    chain.prediction = offset + _rowdot(partner, chain.gathered[name])


def _draw_user_noise(model, chain: Chain, squares: torch.Tensor, rng) -> None:
    """Per-user noise scales ``s_u ~ Gamma(ν/2 + n_u/2, ν/2 + τ/2 Σ_n e_n²)``: a rating
    of ``u`` has precision ``τ s_u``, ``s_u ~ Gamma(ν/2, ν/2)`` a priori (mean 1)."""
    nu, tau = model.noise_dof, float(model.noise_precision)
    users = chain.fields["user"].ids
    sums = torch.zeros(model.n_users, dtype=torch.float64).index_add_(0, users, squares)
    counts = np.bincount(users.numpy(), minlength=model.n_users)
    draws = rng.gamma(nu / 2 + counts / 2, 1.0 / (nu / 2 + tau / 2 * sums.numpy()))
    model.user_noise_scale.copy_(torch.from_numpy(draws))
    chain.weights = _weights(model, chain.fields["user"])


def _keep(model, averaged: str, mean: torch.Tensor) -> None:
    """Append the current state to the posterior-mean accumulators (slot ``kept``), with
    field ``averaged`` at its conditional mean given the rest (Rao-Blackwellised).

    The prediction is linear in each field given the others, so its expectation over
    that field's conditional is the prediction at the conditional mean: an unbiased
    term with less Monte Carlo noise than the draw. Kept sweeps alternate the field
    (users, items); the other fields enter with their current draws.
    """
    k, d = int(model.kept), model.dim
    for f in model.fields:
        state = mean if f == averaged else getattr(model, f"{f}_sample")
        getattr(model, f"{f}_kept")[:, k * d : (k + 1) * d] = state[:, :d]
        getattr(model, f"{f}_bias_sum").add_(state[:, d])
    model.w0_sum.add_(model.w0)
