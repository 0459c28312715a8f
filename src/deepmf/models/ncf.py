"""Neural collaborative filtering (He et al., WWW 2017): GMF, MLP and NeuMF.

All output logits; ``σ(logit)`` is the predicted probability of an interaction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepmf.models.base import Recommender, SplitTower, chosen
from deepmf.models.compiled import gmf_compiled
from deepmf.models.fused import gmf_grads
from deepmf.models.layers import (
    biased_product,
    embedding,
    layer_sizes,
    linear_rows,
    mlp,
    row_norms,
    tower_scores,
)
from deepmf.models.towers import TowerStep


class GMF(Recommender):
    """Generalized matrix factorization: ``ŷ = σ(hᵀ(p_u ⊙ q_i) + b)``.

    Args:
        n_users: size of the user id space.
        n_items: size of the item id space.
        dim: predictive factors F (the embedding size).
    """

    scores_subsets = True

    def __init__(self, n_users: int, n_items: int, dim: int = 8):
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.model_args = dict(n_users=n_users, n_items=n_items, dim=dim)
        self.user_embedding = embedding(n_users, dim, 0.01)
        self.item_embedding = embedding(n_items, dim, 0.01)
        self.head = nn.Linear(dim, 1)
        self.out_features = dim

    def features(self, users, items):
        return self.user_embedding(users) * self.item_embedding(items)  # [B, F]

    def forward(self, users, items):
        return self.head(self.features(users, items))[:, 0]

    def scorer(self):
        return lambda users, items=None: biased_product(
            self.user_embedding(users) * self.head.weight[0],
            chosen(self.item_embedding.weight, items), col_bias=self.head.bias)  # [B, I]

    def penalty(self, users, items):
        return row_norms(self.user_embedding(users), self.item_embedding(items))

    def scores_and_penalty(self, users, items):
        p, q = self.user_embedding(users), self.item_embedding(items)
        return self.head(p * q)[:, 0], row_norms(p, q)

    def fused_grads(self, users, items, dloss, reg):
        """One step's loss with every gradient set, without autograd (see
        :mod:`deepmf.models.fused`)."""
        return gmf_grads(self, users, items, dloss, reg)

    def compiled_grads(self, loss, reg):
        """The same step compiled, whole batches at a time (``--compile``, see
        :func:`deepmf.models.compiled.compiled_step`)."""
        return gmf_compiled(self, loss, reg)

    def item_vectors(self):
        return self.item_embedding.weight


def default_layers(dim: int) -> tuple[int, ...]:
    """NCF's tower for F predictive factors: 8F (the concatenation) -> 4F -> 2F -> F."""
    return (8 * dim, 4 * dim, 2 * dim, dim)


class MLP(TowerStep, SplitTower, Recommender):
    """The NCF multi-layer perceptron: ``ŷ = σ(hᵀ φ([p_u ; q_i]) + b)``.

    Each side is embedded in ``layers[0] / 2`` dimensions; the concatenation runs through
    ReLU layers ``layers[1:]``. By default ``layers = (8F, 4F, 2F, F)``.

    Args:
        n_users: size of the user id space.
        n_items: size of the item id space.
        dim: predictive factors F (the last layer's size when ``layers`` is not given).
        layers: concatenation size followed by the hidden sizes.
        dropout: dropout after each hidden layer.
    """

    scores_subsets = True

    def __init__(self, n_users: int, n_items: int, dim: int = 8,
                 layers: tuple[int, ...] | None = None, dropout: float = 0.0):
        super().__init__()
        layers = layer_sizes("layers", layers, concat=True) if layers else default_layers(dim)
        self.n_users, self.n_items = n_users, n_items
        self.model_args = dict(n_users=n_users, n_items=n_items, dim=dim, layers=list(layers),
                               dropout=dropout)
        half = layers[0] // 2
        self.user_embedding = embedding(n_users, half, 0.01)
        self.item_embedding = embedding(n_items, half, 0.01)
        self.tower = mlp(layers, dropout)
        self.head = nn.Linear(layers[-1], 1)
        self.out_features = layers[-1]

    def _first_layer_sides(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``W_u, W_i, b``: the first layer over ``[p_u ; q_i]`` is ``W_u p_u + W_i q_i + b``."""
        first, half = self.tower[0], self.user_embedding.embedding_dim
        return first.weight[:, :half], first.weight[:, half:], first.bias

    def features(self, users, items):
        w_u, w_i, b = self._first_layer_sides()
        hidden = (linear_rows(self.user_embedding, users, w_u)
                  + linear_rows(self.item_embedding, items, w_i, b))
        return self.tower[1:](hidden)  # [B, layers[-1]]

    def forward(self, users, items):
        return self.head(self.features(users, items))[:, 0]

    def item_part(self) -> torch.Tensor:
        """Every item's share of the first layer, bias included: ``W_i q_i + b``, ``[I, h]``."""
        _, w_i, b = self._first_layer_sides()
        with torch.no_grad():
            return F.linear(self.item_embedding.weight, w_i, b)

    def pair_scores(self, users, item_part: torch.Tensor, weight,
                    into: torch.Tensor | None = None) -> torch.Tensor:
        """``weight · φ(p_u, q_i)`` for each user and each row of ``item_part``,
        ``[B, len(item_part)]`` (added ``into`` a tensor of those scores where one is given).

        The first layer of ``[p_u ; q_i]`` splits into a user part and an item part, each
        computed once, then broadcast: the widest matmul no longer runs per pair.
        """
        w_u = self._first_layer_sides()[0]
        with torch.no_grad():
            user_part = F.linear(self.user_embedding(users), w_u)  # [B, h]
        return tower_scores(user_part, item_part, self.tower[1:], weight, into=into)

    def penalty(self, users, items):
        return row_norms(self.user_embedding(users), self.item_embedding(items))

    @staticmethod
    def compile_width(options: dict) -> int:
        """Values a pair looks up and transforms in the first layer (the plan's rule for
        compiling by default): the width of ``[p_u ; q_i]``."""
        return (options.get("layers") or default_layers(options.get("dim") or 8))[0]


class NeuMF(TowerStep, Recommender):
    """NeuMF: a GMF and an MLP side by side, their last layers concatenated into one head.

    ``ŷ = σ(hᵀ [p_u^G ⊙ q_i^G ; φ(p_u^M, q_i^M)] + b)``. Build it from trained parts with
    :meth:`from_pretrained`, as He et al. do (head weights mixed with α = 0.5).

    Args:
        n_users: size of the user id space.
        n_items: size of the item id space.
        dim: predictive factors F of both parts.
        layers: the MLP's layers (default 8F, 4F, 2F, F).
        dropout: dropout in the MLP tower.
    """

    scores_subsets = True

    def __init__(self, n_users: int, n_items: int, dim: int = 8,
                 layers: tuple[int, ...] | None = None, dropout: float = 0.0):
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.gmf = GMF(n_users, n_items, dim)
        self.mlp = MLP(n_users, n_items, dim, layers, dropout)
        self.model_args = dict(n_users=n_users, n_items=n_items, dim=dim,
                               layers=self.mlp.model_args["layers"], dropout=dropout)
        self.head = nn.Linear(self.gmf.out_features + self.mlp.out_features, 1)
        # The parts' own heads are unused inside NeuMF.
        for part in (self.gmf, self.mlp):
            part.head.requires_grad_(False)

    @classmethod
    def from_pretrained(cls, gmf: GMF, mlp_model: MLP, alpha: float = 0.5) -> "NeuMF":
        """NeuMF initialised from a trained GMF and MLP (He et al. 2017, §3.4.1)."""
        model = cls(gmf.n_users, gmf.n_items, gmf.model_args["dim"],
                    mlp_model.model_args["layers"], mlp_model.model_args["dropout"])
        model.model_args["dim"] = gmf.model_args["dim"]
        model.gmf.load_state_dict(gmf.state_dict())
        model.mlp.load_state_dict(mlp_model.state_dict())
        with torch.no_grad():
            model.head.weight.copy_(torch.cat(
                [alpha * gmf.head.weight, (1 - alpha) * mlp_model.head.weight], dim=1))
            model.head.bias.copy_(alpha * gmf.head.bias + (1 - alpha) * mlp_model.head.bias)
        return model

    def forward(self, users, items):
        x = torch.cat([self.gmf.features(users, items), self.mlp.features(users, items)], -1)
        return self.head(x)[:, 0]

    def scorer(self):
        f, weights = self.gmf.out_features, self.head.weight[0]
        vectors, item_part = self.gmf.item_embedding.weight, self.mlp.item_part()

        def score(users, items=None):
            scores = biased_product(self.gmf.user_embedding(users) * weights[:f],
                                    chosen(vectors, items), col_bias=self.head.bias)
            return self.mlp.pair_scores(users, chosen(item_part, items), weights[f:],
                                        into=scores)  # [B, I]

        return score

    def penalty(self, users, items):
        return self.gmf.penalty(users, items) + self.mlp.penalty(users, items)

    def scores_and_penalty(self, users, items):
        p, q = self.gmf.user_embedding(users), self.gmf.item_embedding(items)
        x = torch.cat([p * q, self.mlp.features(users, items)], -1)
        return self.head(x)[:, 0], row_norms(p, q) + self.mlp.penalty(users, items)

    @staticmethod
    def compile_width(options: dict) -> int:
        return MLP.compile_width(options) + (options.get("dim") or 8)  # and GMF's factors

    def item_vectors(self):
        return self.gmf.item_embedding.weight
