"""The one scoring contract every deepmf model shares."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from torch import nn

SCORE_ELEMENTS = 1 << 22
"""Scores (users × items) one batch of a full ranking or of ``recommend`` holds by default,
16 MB in float32. A batch's scores and their masked copy are each a new tensor, and glibc
serves allocations above its mmap threshold (32 MB at most) with memory mapped afresh,
each page faulted in on first touch: ranking 20,000 users of ml-20m's shape (27,000 items;
alternating, four runs each) took 770,000 page faults and 2.41 s with ``biased-mf`` in
batches of 1,024 users, 6,000-30,000 and 1.72 s in batches of 155, the default there
(``gmf``: 2.33 against 1.05 s). ml-1m's 3,706 items keep batches of 1,024."""


def users_per_batch(n_items: int, most: int = 1024) -> int:
    """Users whose scores of all ``n_items`` fit in ``SCORE_ELEMENTS``: 1 to ``most``."""
    return max(1, min(most, SCORE_ELEMENTS // max(n_items, 1)))


def scorer_of(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model.scorer()`` (the item side's work done once) where it has one, else its
    ``score_all``: scores of every item for batches of users, all through one ranking."""
    return model.scorer() if hasattr(model, "scorer") else model.score_all


def pair_scorer_of(model: nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``model.pair_scorer()`` where it has one (the item side's work done once), else the
    model itself: scores of ``(users, items)`` pairs for the many batches of one evaluation."""
    return model.pair_scorer() if hasattr(model, "pair_scorer") else model


def chosen(rows: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
    """``rows`` (one per item: vectors, biases) for ``items``, or all where it is None."""
    return rows if items is None else rows[items]


class SplitTower:
    """:meth:`Recommender.scorer` for a tower whose first layer splits into a user part and
    an item part (MLP, CFNet-ml): the model's ``item_part()`` once per evaluation, then its
    ``pair_scores(users, item_part, weight)`` for each batch of users, the head's bias
    added."""

    def scorer(self):
        item_part, weight, bias = self.item_part(), self.head.weight[0], self.head.bias

        def score(users, items=None):
            return self.pair_scores(users, chosen(item_part, items), weight).add_(bias)

        return score


def masked_scores(model: nn.Module, scores: torch.Tensor, rows: torch.Tensor,
                  cols: torch.Tensor) -> torch.Tensor:
    """``scores`` with ``-inf`` at ``(rows, cols)`` (items a user has seen): in place where
    ``model`` declares its scores ``fresh_scores``, else in a copy, so that model state is
    never written. Ranking 20,000 users of ml-20m's shape (27,000 items; two rounds of
    alternating processes) took 0.71 s in place against 0.84 s with the copy for ``gmf``
    (8 factors), 1.62 against 1.66 s for ``biased-mf`` (128)."""
    minus_inf = torch.tensor(float("-inf"), device=scores.device)
    if getattr(model, "fresh_scores", False):
        return scores.index_put_((rows, cols), minus_inf)
    return scores.index_put((rows, cols), minus_inf)


class Recommender(nn.Module):
    """Base class: score (user, item) pairs, or every item for a batch of users.

    Subclasses implement ``forward(users, items) -> scores[B]``: a predicted rating for
    explicit models, a logit for implicit ones; higher always means "more relevant".
    ``score_all`` has a generic (broadcasting) default; models that can do better
    (a single matmul, towers computed once) override ``scorer``, which ``score_all``
    then goes through.

    ``model_args`` holds the constructor keywords, so a checkpoint can rebuild the model.
    ``trainer`` says how the model learns: ``"sgd"`` (minibatch steps on a loss),
    ``"sweep"`` (one closed-form or sampling sweep an epoch, see ``sweep``), or None
    (nothing to learn).
    """

    n_users: int
    n_items: int
    trainer: str | None = "sgd"
    selects_epochs: bool = True
    """False for models whose every further epoch can only help (Gibbs samplers averaging
    more samples): they train once, on all training data, for their own number of epochs."""
    wide_steps: bool = False
    """Whether a training step is mostly wide matrix products (DeepCF's towers over
    interaction rows), which pay for more than one thread: such models train on the free
    cores by default (:func:`deepmf.device.training_threads`)."""
    scores_subsets: bool = False
    """Whether the function ``scorer()`` returns scores a subset of the items,
    ``score(users, items)``, at a cost in proportion to it (a product with those items'
    vectors, a tower over those pairs): full ranking then rules most users out on the
    popular items first (:func:`~deepmf.evaluate.evaluate_full`'s ``screen``)."""
    fresh_scores: bool = True
    """Whether ``score_all`` (and the function ``scorer()`` returns) gives a new tensor each
    call, which full ranking and ``recommend`` then mask in place (see
    :func:`masked_scores`); False where it may be model state or a view of it (ItemPop's
    counts), which they copy first."""

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for each user: ``[B, n_items]``; through :meth:`scorer`
        (without gradients) where a model defines its own, else every pair's ``forward``."""
        if type(self).scorer is not Recommender.scorer:
            with torch.no_grad():
                return self.scorer()(users)
        n = users.shape[0]
        items = torch.arange(self.n_items, device=users.device)
        pairs_users = users.repeat_interleave(self.n_items)  # [B * n_items]
        return self.forward(pairs_users, items.repeat(n)).view(n, self.n_items)

    def scorer(self) -> Callable[..., torch.Tensor]:
        """``score_all`` for the many user batches of one evaluation: ``score(users)`` scores
        every item, ``score(users, items)`` only ``items`` (``[B, len(items)]``).

        Models whose item side is costly (towers over interaction rows) compute it once
        here and return a function that closes over it, so a full ranking costs one pass
        over the items however many batches it takes, and nothing stays cached on the
        model for training to invalidate. Call it (and the function) without gradients.
        Here a subset's scores are sliced from all of them; models that score it for less
        say so with ``scores_subsets``.
        """
        def score(users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
            scores = self.score_all(users)
            return scores if items is None else scores[:, items]

        return score

    def pair_scorer(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """``forward`` for the many pair batches of one evaluation (sampled ranking): models
        whose item side is costly (towers over interaction rows) compute it once here, not
        for each batch's items. Call it (and the function) without gradients."""
        return self.forward

    @classmethod
    def penalized(cls) -> bool:
        """Whether the model has per-row parameters that an L2 ``penalty`` acts on."""
        return (cls.penalty is not Recommender.penalty
                or cls.scores_and_penalty is not Recommender.scores_and_penalty)

    def penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Mean squared norm of the parameter rows a batch used (L2 on the rows, not the table).

        Models without per-id parameters return zero; the trainer multiplies by ``reg``.
        """
        return torch.zeros((), device=users.device)

    def scores_and_penalty(self, users: torch.Tensor, items: torch.Tensor):
        """``forward`` and ``penalty`` of one batch together.

        Models override this when both read the same embedding rows, so that a regularized
        step looks each row up (and scatters its gradient back) once instead of twice.
        """
        return self.forward(users, items), self.penalty(users, items)

    def item_vectors(self) -> torch.Tensor | None:
        """One vector per item for similarity search, or None if the model has none."""
        return None


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer; CPU if it has neither."""
    tensor = next(itertools.chain(model.parameters(), model.buffers()), None)
    return torch.device("cpu") if tensor is None else tensor.device
