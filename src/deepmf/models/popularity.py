"""The popularity floor: no personalisation at all."""

from __future__ import annotations

import torch

from deepmf.data import Interactions
from deepmf.models.base import Recommender


class ItemPop(Recommender):
    """Popularity: every user gets the items with the most training interactions first.

    Not trained; the floor any personalised model must clear.
    """

    trainer = None
    fresh_scores = False  # score_all is a view of the counts

    def __init__(self, n_users: int, n_items: int, interactions: Interactions | None = None):
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.model_args = dict(n_users=n_users, n_items=n_items)
        counts = torch.zeros(n_items)
        if interactions is not None:
            counts = torch.as_tensor(interactions.item_counts, dtype=torch.float32)
        self.register_buffer("counts", counts)

    def forward(self, users, items):
        return self.counts[items]

    def score_all(self, users):
        return self.counts.expand(len(users), -1)
