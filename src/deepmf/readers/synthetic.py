"""A synthetic interaction log with learnable structure, for scale tests and demos."""

from __future__ import annotations

import numpy as np

from deepmf.data import Dataset, Interactions, Vocabulary
from deepmf.device import check_memory
from deepmf.errors import ConfigError

_KEYS = {"users": int, "items": int, "interactions": int, "seed": int, "ratings": str}


def parse_synthetic(spec: str) -> dict:
    """``users=U,items=I,interactions=N[,seed=S][,ratings=true]`` -> keyword arguments."""
    options = {}
    for part in filter(None, spec.split(",")):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in _KEYS:
            raise ConfigError(
                f"bad synthetic option {part!r}; use users=U,items=I,interactions=N"
                "[,seed=S][,ratings=true]"
            )
        try:
            options[key] = _KEYS[key](value.strip().replace("_", ""))
        except ValueError:
            raise ConfigError(f"synthetic option {key} needs a whole number, not {value!r}") \
                from None
    missing = [k for k in ("users", "items", "interactions") if k not in options]
    if missing:
        raise ConfigError(f"synthetic dataset needs {', '.join(missing)} (e.g. "
                          "synthetic:users=1000,items=500,interactions=20000)")
    if "ratings" in options:
        flag = options["ratings"].lower()
        if flag not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"synthetic option ratings must be true or false, got {flag!r}")
        options["ratings"] = flag in ("true", "1", "yes")
    return options


def synthetic(
    users: int,
    items: int,
    interactions: int,
    *,
    seed: int = 0,
    ratings: bool = False,
    clusters: int = 16,
    affinity: float = 0.8,
    zipf: float = 0.8,
) -> Dataset:
    """Generate ``interactions`` rows over ``users`` x ``items``, vectorized.

    Item popularity follows a Zipf law (weight ``1 / rank**zipf``, ranks shuffled). Users
    and items belong to one of ``clusters`` taste groups (a rank-``clusters`` structure):
    with probability ``affinity`` a row's item is drawn by popularity from the user's
    group, otherwise from all items. With ``ratings``, in-group items get higher 1..5
    ratings (plus user and item biases and noise). Duplicate pairs may occur.
    Memory is a few arrays of length ``interactions``: 20M rows take well under 1 GB.
    """
    if min(users, items, interactions) <= 0:
        raise ConfigError("synthetic users, items and interactions must be positive")
    if seed < 0:
        raise ConfigError(f"synthetic seed must be 0 or more, not {seed}")
    check_memory(48 * interactions + 32 * (users + items),
                 f"synthetic data of {interactions:,} interactions over {users:,} users and "
                 f"{items:,} items")
    clusters = max(1, min(clusters, items, users))
    rng = np.random.default_rng(seed)
    popularity = _Popularity(rng, items, clusters, zipf)
    user_group = rng.integers(0, clusters, users)
    activity = rng.pareto(2.0, users) + 1.0
    user_cdf = np.cumsum(activity / activity.sum())
    row_users = np.minimum(np.searchsorted(user_cdf, rng.random(interactions)), users - 1)
    row_items = popularity.draw(rng, user_group[row_users], affinity)
    values = None
    if ratings:
        liked = popularity.group[row_items] == user_group[row_users]
        values = _ratings(rng, users, items, row_users, row_items, liked)
    log = Interactions(row_users.astype(np.int64), row_items.astype(np.int64), values, None,
                       users, items)
    return Dataset(
        name=f"synthetic:users={users},items={items},interactions={interactions},seed={seed}",
        interactions=log,
        users=Vocabulary(np.arange(users)),
        items=Vocabulary(np.arange(items)),
        rating_range=(1.0, 5.0) if ratings else None,
        source="synthetic",
    )


class _Popularity:
    """Zipf item popularity (``1 / rank**zipf``, ranks shuffled), items in taste groups."""

    def __init__(self, rng: np.random.Generator, items: int, clusters: int, zipf: float):
        weight = 1.0 / np.arange(1, items + 1) ** zipf
        weight = weight[rng.permutation(items)]  # popularity of item i
        self.group = rng.integers(0, clusters, items)
        self.order = np.argsort(self.group, kind="stable")  # items grouped by cluster
        self.cum = np.cumsum(weight[self.order])
        bounds = np.searchsorted(self.group[self.order], np.arange(clusters + 1))
        edges = np.concatenate([[0.0], self.cum])
        self.low, self.high = edges[bounds[:-1]], edges[bounds[1:]]  # each group's weight span
        empty = self.high <= self.low
        self.low[empty], self.high[empty] = 0.0, self.cum[-1]  # empty group: all items

    def draw(self, rng: np.random.Generator, groups: np.ndarray, affinity: float) -> np.ndarray:
        """One item per row: by popularity within the row's group with probability
        ``affinity``, else among all items."""
        n = len(groups)
        in_group = rng.random(n) < affinity
        start = np.where(in_group, self.low[groups], 0.0)
        width = np.where(in_group, self.high[groups] - self.low[groups], self.cum[-1])
        target = start + rng.random(n) * width
        del start, width
        index = np.minimum(np.searchsorted(self.cum, target, side="right"), len(self.cum) - 1)
        return self.order[index]


def _ratings(rng, users: int, items: int, row_users, row_items, liked) -> np.ndarray:
    """1..5 ratings: higher in the user's taste group, plus user and item biases and noise."""
    user_bias = rng.normal(0.0, 0.4, users).astype(np.float32)
    item_bias = rng.normal(0.0, 0.4, items).astype(np.float32)
    score = 2.6 + 1.4 * liked + user_bias[row_users] + item_bias[row_items]
    score += rng.normal(0.0, 0.5, len(row_users)).astype(np.float32)
    return np.clip(np.rint(score), 1, 5).astype(np.float32)
