"""How an epoch is cut into batches: each epoch a fresh random permutation of the log,
gathered once and sliced (no per-sample Python); for ranking, each positive's negatives.

Ranking with the log loss: a batch is a random slice of the positives plus the ``k``
negatives of each positive in another random slice, so that a user's positive and her
negatives seldom share a step, as in a shuffle of all ``(1 + k) n`` samples (keeping them
together costs hit rate). Negatives are drawn for the positives in log order (user-sorted:
the sampler's searches stay in cache), and only the ``n`` positions are shuffled, not the
``(1 + k) n`` samples, whose random reads cost a large share of an epoch. With BPR a batch
is a slice of the shuffled positives, each with its ``k`` negatives.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from deepmf.distributed import Shard, shard_of
from deepmf.sampling import NegativeSampler

WHOLE_EPOCH_NEGATIVES = 1 << 25
"""Above this many negatives an epoch (33.5M: 268 MB of ids, and several times that in
temporaries while drawing), they are drawn batch by batch instead of all at once."""

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def shuffled(n: int, generator: torch.Generator, device) -> torch.Tensor:
    """A random permutation of ``0..n-1`` on ``device``, drawn on the generator's device."""
    return torch.randperm(n, generator=generator, device=generator.device).to(device)


def slices(n: int, size: int, generator: torch.Generator, device) -> list[torch.Tensor]:
    """A random permutation of ``0..n-1`` cut into parts of ``size``."""
    return list(torch.split(shuffled(n, generator, device), size))


def take(rows: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each tensor's ``rows``: ``index_select``, which took a third of ``t[rows]``'s time
    for an epoch's 1-D gathers and a quarter for its ``[n, k]`` negatives."""
    return tuple(t.index_select(0, rows) for t in tensors)


def rating_batches(columns: tuple[torch.Tensor, ...], size: int, generator: torch.Generator,
                   shard: Shard) -> Iterator[tuple[torch.Tensor, ...]]:
    """Slices of ``size`` of the columns (users, items, ratings) in a random order, one
    gather each an epoch; with several processes this process's share of the slices."""
    perm = shuffled(len(columns[0]), generator, columns[0].device)
    if shard.world > 1:
        perm = torch.cat(shard_of(list(torch.split(perm, size)), shard) or [perm[:0]])
    yield from zip(*(torch.split(t, size) for t in take(perm, *columns)))


def ranking_batches(users: torch.Tensor, items: torch.Tensor, sampler: NegativeSampler, *,
                    k: int, size: int, pairwise: bool, generator: torch.Generator,
                    shard: Shard) -> Iterator[Batch]:
    """An epoch of the positive pairs ``(users, items)`` with ``k`` negatives each, in
    batches of about ``size`` samples: ``(users, items, labels)`` for the log loss, or
    ``(users, positives, negatives [b, k])`` (``pairwise``, BPR) of ``size`` positives."""
    n = len(users)
    if n == 0:
        return
    if shard.world > 1:
        yield from _sharded(users, items, sampler, k, size, pairwise, generator, shard)
    elif n * k > WHOLE_EPOCH_NEGATIVES:  # a large log: negatives batch by batch
        yield from _lean(users, items, sampler, k, size, pairwise, generator)
    elif pairwise:
        negatives = sampler.sample(users, k, generator)  # [n, k]
        perm = shuffled(n, generator, users.device)
        yield from zip(*(torch.split(t, size) for t in take(perm, users, items, negatives)))
    else:
        yield from _whole(users, items, sampler, k, size, generator)


def _whole(users, items, sampler, k, size, generator) -> Iterator[Batch]:
    """The log loss's batches with the epoch's negatives drawn at once: each of the two
    shuffles (of the positives, and of the anchors whose negatives join each batch)
    gathered once, and the batches slices of them."""
    n, device = len(users), users.device
    negatives = sampler.sample(users, k, generator)  # [n, k], in log order
    step = max(1, min(size // (1 + k), n))  # positives per batch
    labels = _labels(step, k, device)
    positive_users, positive_items = take(shuffled(n, generator, device), users, items)
    anchors, negatives = take(shuffled(n, generator, device), users, negatives)
    for start in range(0, n, step):
        rows = slice(start, start + step)
        yield _joined(positive_users[rows], positive_items[rows], anchors[rows],
                      negatives[rows], labels if n - start >= step else None)


def _labels(m: int, k: int, device) -> torch.Tensor:
    return torch.cat([torch.ones(m, device=device), torch.zeros(m * k, device=device)])


def _joined(users, items, anchors, negatives, labels=None) -> Batch:
    """A log-loss batch: the positive pairs ``(users, items)``, then each anchor user with
    her ``k`` negatives (``negatives [m, k]``), and their labels (made here unless given)."""
    k = negatives.shape[1]
    if labels is None:
        labels = _labels(len(users), k, users.device)
    return (torch.cat([users, anchors.repeat_interleave(k)]),
            torch.cat([items, negatives.reshape(-1)]), labels)


def _lean(users, items, sampler, k, size, pairwise, generator) -> Iterator[Batch]:
    """The same batches, with each batch's negatives drawn when it comes: memory stays a
    batch's worth however large the log (an epoch of 20M positives with 8 negatives each
    would otherwise hold 160M item ids at once, with as many temporaries)."""
    n, device = len(users), users.device
    if pairwise:
        for rows in slices(n, size, generator, device):
            mine, theirs = take(rows, users, items)
            yield mine, theirs, sampler.sample(mine, k, generator)
        return
    step = max(1, size // (1 + k))
    positives, anchors = slices(n, step, generator, device), slices(n, step, generator, device)
    for rows, others in zip(positives, anchors):
        anchor_users = users.index_select(0, others)
        negatives = sampler.sample(anchor_users, k, generator)  # [m, k]
        yield _joined(*take(rows, users, items), anchor_users, negatives)


def _sharded(users, items, sampler, k, size, pairwise, generator, shard) -> Iterator[Batch]:
    """This process's batches of the epoch every process shuffles alike, with negatives
    drawn for them alone from a generator of its own (seeded from the shared one)."""
    n, device = len(users), users.device
    seed = int(torch.randint(2**62, (1,), generator=generator)) + shard.rank
    local = torch.Generator(device=generator.device).manual_seed(seed)
    if pairwise:
        mine = shard_of(slices(n, size, generator, device), shard)
        rows = torch.cat(mine or [users[:0]])
        negatives = sampler.sample(users.index_select(0, rows), k, local)  # [rows, k]
        for part, negs in zip(mine, torch.split(negatives, [len(m) for m in mine])):
            yield (*take(part, users, items), negs)
        return
    step = max(1, size // (1 + k))
    pairs = shard_of(list(zip(slices(n, step, generator, device),
                              slices(n, step, generator, device))), shard)
    anchors = torch.cat([others for _, others in pairs] or [users[:0]])
    negatives = sampler.sample(users.index_select(0, anchors), k, local)  # [anchors, k]
    parts = torch.split(negatives, [len(others) for _, others in pairs])
    for (rows, others), negs in zip(pairs, parts):
        yield _joined(*take(rows, users, items), users.index_select(0, others), negs)
