"""DeepCF (Deng et al., AAAI 2019): CFNet-rl (``dmf``), CFNet-ml and their fusion CFNet.

Each model reads a user as her binary interaction row ``r_u ∈ {0,1}^|I|`` and an item as its
column ``r_i ∈ {0,1}^|U|`` of the *training* matrix. A linear layer over a binary row is the
sum of the weight rows of its non-zeros, ``r_u W = Σ_{j: r_uj = 1} W_j``, so the first layer of
every tower is a gather-sum over the training CSR (see :mod:`deepmf.models.sparse_rows`); no
dense users × items tensor exists anywhere. Towers run once per distinct user and item of a
batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepmf.data import Interactions
from deepmf.errors import ConfigError
from deepmf.models.base import Recommender, SplitTower, chosen
from deepmf.models.layers import biased_product, layer_sizes, mlp, tower_scores
from deepmf.models.sparse_rows import first_layers, interaction_rows


def _head(n_in: int) -> nn.Linear:
    head = nn.Linear(n_in, 1)  # LeCun normal, as DeepCF's prediction layer
    nn.init.normal_(head.weight, std=1 / math.sqrt(n_in))
    nn.init.zeros_(head.bias)
    return head


def _glorot(module: nn.Module) -> nn.Module:
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return module


def _tower(sizes: tuple[int, ...]) -> nn.Sequential:
    """What follows a tower's linear first layer: ReLU, then Linear+ReLU, linear at the end."""
    if len(sizes) == 1:
        return nn.Sequential()
    return nn.Sequential(nn.ReLU(), _glorot(mlp(sizes, last_activation=False)))


def _distinct(ids: torch.Tensor, tower) -> torch.Tensor:
    """``tower`` run once per distinct id, then spread back to ``ids``' positions."""
    unique, inverse = torch.unique(ids, return_inverse=True)
    return tower(unique).index_select(0, inverse)  # backward: index_add


def _chunked(fn, n: int, device, chunk: int = 4096) -> torch.Tensor:
    ids = torch.arange(n, device=device)
    return torch.cat([fn(ids[i : i + chunk]) for i in range(0, n, chunk)])


class DMF(Recommender):
    """CFNet-rl, DeepCF's representation-learning part (seed 000's "DMF").

    ``ŷ_ui = σ(wᵀ (f_U(r_u) ⊙ f_I(r_i)) + b)``: a user tower ``f_U`` over the interaction
    row ``r_u`` (``|I| → 512 → 64`` by default), an item tower ``f_I`` over ``r_i``
    (``|U| → 1024 → 64``). Each tower is an MLP: ReLU after every layer but the last.
    DeepCF's code instead leaves the first layer linear and puts ReLU after the last; the
    product of two non-negative vectors then often dies into constant scores (we saw it
    on ml-1m at Adam's usual learning rates, and on small block-structured data).
    Deng et al., "DeepCF: A Unified Framework of Representation Learning and Matching
    Function Learning in Recommender System", AAAI 2019.

    Args:
        n_users: size of the user id space.
        n_items: size of the item id space.
        interactions: the training log whose rows feed the towers (never the test items).
        user_layers: user tower sizes after the |I| input; the last must equal item_layers'.
        item_layers: item tower sizes after the |U| input.
    """

    wide_steps = True
    # Not screened in full ranking (``scores_subsets``): its towers, not its one product,
    # are most of the cost, and the screen runs them again (ml-1m, trained three epochs:
    # 0.44 against 0.28 s).

    def __init__(self, n_users: int, n_items: int, interactions: Interactions | None = None,
                 user_layers: tuple[int, ...] = (512, 64),
                 item_layers: tuple[int, ...] = (1024, 64)):
        super().__init__()
        user_layers = layer_sizes("user_layers", user_layers)
        item_layers = layer_sizes("item_layers", item_layers)
        if user_layers[-1] != item_layers[-1]:
            raise ConfigError("user_layers and item_layers must end in the same size")
        self.n_users, self.n_items = n_users, n_items
        self.model_args = dict(n_users=n_users, n_items=n_items, user_layers=list(user_layers),
                               item_layers=list(item_layers))
        self.user_rows, self.item_rows = interaction_rows(n_users, n_items, interactions)
        self.user_first, self.item_first = first_layers(
            self.user_rows, self.item_rows, user_layers[0], item_layers[0])
        self.user_tower = _tower(user_layers)
        self.item_tower = _tower(item_layers)
        self.head = _head(user_layers[-1])
        self.out_features = user_layers[-1]

    def user_latent(self, users: torch.Tensor) -> torch.Tensor:
        """``f_U(r_u)`` for each user: ``[B, d]``."""
        return self.user_tower(self.user_first(self.user_rows, users))

    def item_latent(self, items: torch.Tensor) -> torch.Tensor:
        """``f_I(r_i)`` for each item: ``[B, d]``."""
        return self.item_tower(self.item_first(self.item_rows, items))

    def features(self, users, items, vectors: torch.Tensor | None = None):
        """``f_U(r_u) ⊙ f_I(r_i)`` for each pair; ``f_I`` read from ``vectors`` (every
        item's, :meth:`item_vectors`) where given."""
        q = _distinct(items, self.item_latent) if vectors is None else vectors[items]
        return _distinct(users, self.user_latent) * q

    def forward(self, users, items):
        return self.head(self.features(users, items))[:, 0]

    def pair_scorer(self):
        vectors = self.item_vectors()
        return lambda users, items: self.head(self.features(users, items, vectors))[:, 0]

    def scorer(self):
        vectors = self.item_vectors()  # [I, d]: the item tower once per evaluation
        weight, bias = self.head.weight[0], self.head.bias

        def score(users, items=None):
            return biased_product(self.user_latent(users) * weight, chosen(vectors, items),
                                  col_bias=bias)

        return score

    def item_vectors(self):
        with torch.no_grad():
            return _chunked(self.item_latent, self.n_items, self.head.weight.device)


class CFNetML(SplitTower, Recommender):
    """CFNet-ml, DeepCF's matching-function-learning part.

    ``ŷ_ui = σ(wᵀ φ([P r_u ; Q r_i]) + b)``: linear user and item latent vectors from the
    same interaction rows (``layers[0] / 2`` each), concatenated and passed through ReLU
    layers ``layers[1:]`` (default 512-256-128-64). Deng et al., AAAI 2019.

    Args:
        n_users: size of the user id space.
        n_items: size of the item id space.
        interactions: the training log whose rows feed the model.
        layers: concatenation size followed by the hidden sizes.
    """

    wide_steps = True
    scores_subsets = True

    def __init__(self, n_users: int, n_items: int, interactions: Interactions | None = None,
                 layers: tuple[int, ...] = (512, 256, 128, 64)):
        super().__init__()
        layers = layer_sizes("layers", layers, concat=True)
        self.n_users, self.n_items = n_users, n_items
        self.model_args = dict(n_users=n_users, n_items=n_items, layers=list(layers))
        self.user_rows, self.item_rows = interaction_rows(n_users, n_items, interactions)
        self.user_first, self.item_first = first_layers(
            self.user_rows, self.item_rows, layers[0] // 2, layers[0] // 2)
        self.tower = _glorot(mlp(layers))
        self.head = _head(layers[-1])
        self.out_features = layers[-1]

    def features(self, users, items, item_part: torch.Tensor | None = None):
        # The tower's first layer over [p ; q] is W_u p + W_i q + b: each side's share is
        # computed once per distinct id, so only the add and the later layers run per
        # sample (the per-sample 512 -> 256 matmul was two thirds of a step's work). The
        # item side's comes from ``item_part`` (every item's, :meth:`item_part`) if given.
        p = _distinct(users, self._user_share)
        q = _distinct(items, self._item_share) if item_part is None else item_part[items]
        return self.tower[1:](p + q)  # [B, layers[-1]]

    def _user_share(self, users: torch.Tensor) -> torch.Tensor:
        """``W_u p_u`` for each of ``users``: the user side's part of the first hidden layer."""
        w_u = self.tower[0].weight[:, : self.user_first.weight.shape[1]]
        return F.linear(self.user_first(self.user_rows, users), w_u)

    def _item_share(self, items: torch.Tensor) -> torch.Tensor:
        """``W_i q_i + b`` for each of ``items``: the item side's part, bias included."""
        first = self.tower[0]
        w_i = first.weight[:, self.user_first.weight.shape[1]:]
        return F.linear(self.item_first(self.item_rows, items), w_i, first.bias)

    def forward(self, users, items):
        return self.head(self.features(users, items))[:, 0]

    def pair_scorer(self):
        item_part = self.item_part()
        return lambda users, items: self.head(self.features(users, items, item_part))[:, 0]

    def item_part(self) -> torch.Tensor:
        """Every item's share of the first hidden layer, bias included: ``[I, h]``."""
        with torch.no_grad():
            return _chunked(self._item_share, self.n_items, self.head.weight.device)

    def pair_scores(self, users, item_part: torch.Tensor, weight: torch.Tensor,
                    into: torch.Tensor | None = None) -> torch.Tensor:
        """``weight · φ(u, i)`` for every item of each user, ``[B, n_items]`` (added ``into``
        a tensor of those scores where one is given; of fewer items for the rows of
        ``item_part`` given).

        The first hidden layer splits into a user part and an item part (``item_part()``,
        computed once per evaluation by :meth:`scorer`) that meet per pair in
        :func:`~deepmf.models.layers.tower_scores`.
        """
        with torch.no_grad():
            user_part = self._user_share(users)
        return tower_scores(user_part, item_part, self.tower[1:], weight, into=into)


class CFNet(Recommender):
    """CFNet: CFNet-rl and CFNet-ml fused by concatenating their last layers into one head.

    ``ŷ_ui = σ(hᵀ [f_U(r_u) ⊙ f_I(r_i) ; φ(P r_u, Q r_i)] + b)``. Train end to end, or build
    from trained parts with :meth:`from_pretrained` and fine-tune, as Deng et al. do.

    Args:
        n_users: size of the user id space.
        n_items: size of the item id space.
        interactions: the training log whose rows feed both parts.
        user_layers: the DMF part's user tower.
        item_layers: the DMF part's item tower.
        layers: the CFNet-ml part's layers.
    """

    wide_steps = True
    scores_subsets = True

    def __init__(self, n_users: int, n_items: int, interactions: Interactions | None = None,
                 user_layers: tuple[int, ...] = (512, 64),
                 item_layers: tuple[int, ...] = (1024, 64),
                 layers: tuple[int, ...] = (512, 256, 128, 64)):
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.dmf = DMF(n_users, n_items, interactions, user_layers, item_layers)
        self.ml = CFNetML(n_users, n_items, interactions, layers)
        self.ml.user_rows, self.ml.item_rows = self.dmf.user_rows, self.dmf.item_rows  # shared
        self.model_args = dict(n_users=n_users, n_items=n_items,
                               user_layers=self.dmf.model_args["user_layers"],
                               item_layers=self.dmf.model_args["item_layers"],
                               layers=self.ml.model_args["layers"])
        self.head = _head(self.dmf.out_features + self.ml.out_features)
        for part in (self.dmf, self.ml):  # the parts' own heads are unused inside CFNet
            part.head.requires_grad_(False)

    @classmethod
    def from_pretrained(cls, dmf: DMF, ml: CFNetML, alpha: float = 0.5) -> "CFNet":
        """CFNet initialised from trained parts: head ``[α w_rl ; (1-α) w_ml]``, bias mixed."""
        if (dmf.n_users, dmf.n_items) != (ml.n_users, ml.n_items):
            raise ConfigError("the dmf and cfnet-ml parts have different id spaces")
        model = cls(dmf.n_users, dmf.n_items, None, dmf.model_args["user_layers"],
                    dmf.model_args["item_layers"], ml.model_args["layers"])
        model.dmf.user_rows, model.dmf.item_rows = dmf.user_rows, dmf.item_rows
        model.ml.user_rows, model.ml.item_rows = dmf.user_rows, dmf.item_rows
        model.dmf.load_state_dict(dmf.state_dict())
        model.ml.load_state_dict(ml.state_dict())
        with torch.no_grad():
            model.head.weight.copy_(torch.cat([alpha * dmf.head.weight,
                                               (1 - alpha) * ml.head.weight], dim=1))
            model.head.bias.copy_(alpha * dmf.head.bias + (1 - alpha) * ml.head.bias)
        return model.to(dmf.head.weight.device)

    def forward(self, users, items):
        return self._pairs(users, items)

    def pair_scorer(self):
        vectors, item_part = self.dmf.item_vectors(), self.ml.item_part()
        return lambda users, items: self._pairs(users, items, vectors, item_part)

    def _pairs(self, users, items, vectors=None, item_part=None):
        """Scores of the pairs, each part's item side read from ``vectors`` and
        ``item_part`` (every item's, computed once per evaluation) where given."""
        x = torch.cat([self.dmf.features(users, items, vectors),
                       self.ml.features(users, items, item_part)], -1)
        return self.head(x)[:, 0]

    def scorer(self):
        d, weights, bias = self.dmf.out_features, self.head.weight[0], self.head.bias
        vectors, item_part = self.dmf.item_vectors(), self.ml.item_part()  # once per evaluation

        def score(users, items=None):
            rl = biased_product(self.dmf.user_latent(users) * weights[:d],
                                chosen(vectors, items), col_bias=bias)  # [B, I]
            return self.ml.pair_scores(users, chosen(item_part, items), weights[d:], into=rl)

        return score

    def item_vectors(self):
        return self.dmf.item_vectors()
