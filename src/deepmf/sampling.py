"""Negative sampling: items a user never interacted with, drawn uniformly and vectorized.

Membership is tested in a bitmap of the ``n_users × n_items`` pairs (one bit a pair, up
to ``BITMAP_BYTES``; ml-1m's takes 2.8 MB and answers 40 times faster than a binary
search), else against the sorted keys ``user * n_items + item`` of the positives
(:attr:`Interactions.pair_keys`) with ``searchsorted``; no Python sets, no per-user loops.
Rejection sampling redraws only the collisions. For the few draws still colliding after
``max_attempts`` rounds (users who interacted with almost every item), an exact draw from the
user's complement finishes the job, so the result is always uniform over the non-positives.
"""

from __future__ import annotations

import numpy as np
import torch

from deepmf.data import Interactions
from deepmf.errors import DataError


def _no_negatives_error(users) -> DataError:
    users = sorted({int(u) for u in users})
    shown = ", ".join(map(str, users[:20])) + (" ..." if len(users) > 20 else "")
    return DataError(
        f"no negative items left for {len(users)} user(s) who interacted with every item: {shown}"
    )


BITMAP_BYTES = 1 << 29
"""Largest pair bitmap built (512 MB: 4.3G pairs, e.g. ml-20m's 138,493 users × 26,744
items). On a log of that shape with 20M pairs, 210,000 draws took 8 ms through the bitmap
against 65 ms by binary search over the sorted keys (``benchmarks/scale.py``'s ``neumf``
batches; the searches miss the cache at every level)."""


def _bitmap(keys: np.ndarray, n_pairs: int) -> torch.Tensor | None:
    """Bit ``k`` (of byte ``k >> 3``) set for each key ``k``; None when over the bound."""
    n_bytes = (n_pairs + 7) // 8
    if n_bytes > BITMAP_BYTES:
        return None
    keys = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    bits = torch.zeros(n_bytes, dtype=torch.uint8)
    # distinct keys: the bits of one byte never collide, so adding them is or-ing them
    return bits.index_put_((keys >> 3,), (1 << (keys & 7)).to(torch.uint8), accumulate=True)


def _complement_table(keys: np.ndarray, n_users: int, n_items: int):
    """Lookup table for exact draws from each user's non-positive items.

    For user ``u`` with sorted positives ``p_0 < p_1 < ...``, ``p_j - j`` is non-decreasing,
    and the ``r``-th non-positive item (0-based) is ``r + #{j : p_j - j <= r}``. Storing
    ``u * n_items + p_j - j`` keeps the table globally sorted, so one ``searchsorted`` serves
    every user at once.

    Returns:
        ``(starts int64[n_users + 1], shifted int64[nnz])``.
    """
    users = keys // n_items
    starts = np.searchsorted(keys, np.arange(n_users + 1, dtype=np.int64) * n_items)
    local = np.arange(len(keys), dtype=np.int64) - starts[users]
    return starts, keys - local


def _nth_free(starts: torch.Tensor, shifted: torch.Tensor, users: torch.Tensor,
              r: torch.Tensor, n_items: int) -> torch.Tensor:
    """The ``r``-th (0-based) item each user never interacted with, via the table of
    :func:`_complement_table`: ``r + #{j : p_j - j <= r}``."""
    below = torch.searchsorted(shifted, users * n_items + r, right=True) - starts[users]
    return r + below


def drawing_on(device: torch.device, generator: torch.Generator) -> torch.Generator:
    """The epoch's source of shuffles and negatives: ``generator`` on the CPU, else one on
    ``device`` seeded from it, so that a GPU draws them itself (no copy over each batch)."""
    if device.type == "cpu":
        return generator
    seed = int(torch.randint(2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


class NegativeSampler:
    """Draws items that are not training positives of the given users.

    Args:
        train: the training log; its (user, item) pairs are the positives.
        max_attempts: rejection rounds before the remaining collisions are drawn exactly
            from the users' complements.

    Example:
        >>> sampler = NegativeSampler(train)
        >>> negs = sampler.sample(users, 4, torch.Generator().manual_seed(0))  # [B, 4]
    """

    def __init__(self, train: Interactions, max_attempts: int = 50):
        self.n_users = train.n_users
        self.n_items = train.n_items
        self.max_attempts = max_attempts
        self._keys_np = train.pair_keys
        self.keys = torch.from_numpy(self._keys_np)  # sorted user * n_items + item
        self.bits = _bitmap(self._keys_np, self.n_users * self.n_items)
        counts = np.bincount(self._keys_np // max(self.n_items, 1), minlength=self.n_users)
        self.full_users = np.flatnonzero(counts >= self.n_items)  # no negatives left
        self._table: tuple[torch.Tensor, torch.Tensor] | None = None

    def to(self, device) -> "NegativeSampler":
        """Move the key tables to ``device`` (also done on demand by :meth:`sample`)."""
        self.keys = self.keys.to(device)
        if self.bits is not None:
            self.bits = self.bits.to(device)
        if self._table is not None:
            self._table = tuple(t.to(device) for t in self._table)
        return self

    def is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Boolean mask: is ``(users[i], items[i])`` a training pair? (same shapes)."""
        if self.keys.numel() == 0:
            return torch.zeros(items.shape, dtype=torch.bool, device=items.device)
        wanted = users * self.n_items + items
        if self.bits is not None:
            byte = self.bits.index_select(0, (wanted >> 3).view(-1)).view(wanted.shape)
            return (byte >> (wanted & 7).to(torch.uint8)) & 1 == 1
        pos = torch.searchsorted(self.keys, wanted).clamp_(max=self.keys.numel() - 1)
        return self.keys[pos] == wanted

    def sample(
        self, users: torch.Tensor, n_neg: int, generator: torch.Generator
    ) -> torch.Tensor:
        """``n_neg`` uniform non-positive items for each user (repeats within a row allowed).

        Draws happen on ``generator.device`` (pass a generator on the users' device to avoid a
        copy); the result is on the device of ``users``. The same generator state gives the
        same result.

        Args:
            users: ``int64[B]`` user indices.
            n_neg: negatives per user.
            generator: source of randomness.

        Returns:
            ``int64[B, n_neg]`` on ``users.device``.

        Raises:
            DataError: naming the users who interacted with every item.
        """
        device = users.device
        users = users.long()
        if self.keys.device != device:
            self.to(device)
        if len(self.full_users):
            full = torch.from_numpy(self.full_users).to(device)
            blocked = torch.isin(users, full)
            if blocked.any():
                raise _no_negatives_error(users[blocked].tolist())
        shape = (users.shape[0], n_neg)
        items = self._randint(shape, generator, device)
        rows, cols = self.is_positive(users[:, None], items).nonzero(as_tuple=True)
        for _ in range(self.max_attempts):
            if rows.numel() == 0:
                return items
            redraw = self._randint(rows.shape, generator, device)
            items[rows, cols] = redraw
            keep = self.is_positive(users[rows], redraw)
            rows, cols = rows[keep], cols[keep]
        if rows.numel():
            items[rows, cols] = self._exact(users[rows], generator, device)
        return items

    def _randint(self, shape, generator: torch.Generator, device) -> torch.Tensor:
        drawn = torch.randint(self.n_items, shape, generator=generator, device=generator.device)
        return drawn.to(device)

    def _exact(self, users: torch.Tensor, generator, device) -> torch.Tensor:
        """One uniform draw from each user's non-positive items (no rejection)."""
        if self._table is None:
            starts, shifted = _complement_table(self._keys_np, self.n_users, self.n_items)
            self._table = (torch.from_numpy(starts), torch.from_numpy(shifted))
        if self._table[0].device != device:
            self._table = tuple(t.to(device) for t in self._table)
        starts, shifted = self._table
        n_free = self.n_items - (starts[users + 1] - starts[users])  # [R], all >= 1
        big = torch.randint(2**62, users.shape, generator=generator, device=generator.device)
        r = big.to(device) % n_free  # uniform in 0..n_free-1 up to a 2**-40 bias
        return _nth_free(starts, shifted, users, r, self.n_items)


def sample_test_negatives(
    known: Interactions,
    test: Interactions,
    n_neg: int = 99,
    seed: int = 0,
    max_attempts: int = 50,
) -> np.ndarray:
    """Negatives for the sampled protocol when a dataset ships none (leave-one-out).

    Each test row gets ``n_neg`` items drawn uniformly from those its user never interacted
    with in ``known`` (normally the whole log, train and test); repeats within a row are
    possible, as in the NCF files.

    Args:
        known: every interaction; no drawn item is one of the user's items here.
        test: the test rows to draw for.
        n_neg: negatives per test row.
        seed: seed of the ``numpy.random.Generator``.
        max_attempts: rejection rounds before exact draws from the complements.

    Returns:
        ``int64[len(test), n_neg]``.

    Raises:
        DataError: naming the test users who interacted with every item.
    """
    rng = np.random.default_rng(seed)
    n_items, n_users = known.n_items, max(known.n_users, test.n_users)
    counts = np.bincount(known.pair_keys // max(n_items, 1), minlength=n_users)
    full = counts[test.users] >= n_items
    if full.any():
        raise _no_negatives_error(test.users[full])
    users = np.repeat(test.users[:, None], n_neg, axis=1)  # [n_test, n_neg]
    items = rng.integers(0, n_items, size=users.shape, dtype=np.int64)
    bad = np.flatnonzero(known.contains(users.ravel(), items.ravel()))
    flat = items.reshape(-1)
    for _ in range(max_attempts):
        if len(bad) == 0:
            return items
        flat[bad] = rng.integers(0, n_items, size=len(bad), dtype=np.int64)
        bad = bad[known.contains(users.ravel()[bad], flat[bad])]
    if len(bad):
        starts, shifted = _complement_table(known.pair_keys, n_users, n_items)
        rows = users.ravel()[bad]
        n_free = n_items - (starts[rows + 1] - starts[rows])
        r = rng.integers(0, n_free, dtype=np.int64)  # one draw per row, high per row
        as_t = torch.from_numpy
        flat[bad] = _nth_free(as_t(starts), as_t(shifted), as_t(rows), as_t(r), n_items).numpy()
    return items
