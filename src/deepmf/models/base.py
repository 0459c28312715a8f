"""The one scoring contract every deepmf model shares."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class Recommender(nn.Module):
    """Base class: score (user, item) pairs, or every item for a batch of users.

    Subclasses implement ``forward(users, items) -> scores[B]``: a predicted rating for
    explicit models, a logit for implicit ones; higher always means "more relevant".
    ``score_all`` has a generic (broadcasting) default; models that can do better
    (a single matmul, towers computed once) override it.

    ``model_args`` holds the constructor keywords, so a checkpoint can rebuild the model.
    """

    n_users: int
    n_items: int

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for each user: ``[B, n_items]``."""
        n = users.shape[0]
        items = torch.arange(self.n_items, device=users.device)
        pairs_users = users.repeat_interleave(self.n_items)  # [B * n_items]
        return self.forward(pairs_users, items.repeat(n)).view(n, self.n_items)

    def scorer(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """``score_all`` for the many user batches of one evaluation.

        Models whose item side is costly (towers over interaction rows) compute it once
        here and return a function that closes over it, so a full ranking costs one pass
        over the items however many batches it takes, and nothing stays cached on the
        model for training to invalidate. Call it (and the function) without gradients.
        """
        return self.score_all

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


class Table(nn.Embedding):
    """An embedding table whose lookup of a flat index vector is ``index_select``.

    The rows are the same as ``nn.Embedding``'s; on the CPU the backward pass (an
    ``index_add`` into the gradient) costs about a third less than embedding's, and a
    training step does four such lookups. CUDA keeps embedding's deterministic backward.
    """

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        if indices.dim() == 1 and not indices.is_cuda:
            return self.weight.index_select(0, indices)
        return super().forward(indices)


def linear_rows(table: nn.Embedding, ids: torch.Tensor, weight: torch.Tensor,
                bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(table(ids), weight, bias)``: ``[B, h]``.

    When the batch holds more ids than the table has rows (ml-1m: 16,384 samples, 6,040
    users), every row is transformed once and the results gathered: fewer multiply-adds,
    and the backward's scatter adds ``h``-wide rows into ``[rows, h]``. The values are the
    same; an ml-1m NeuMF epoch takes about a fifth less time (4.9 s against 6.1 s).
    """
    if len(ids) <= table.num_embeddings or ids.dim() != 1:
        return F.linear(table(ids), weight, bias)
    rows = F.linear(table.weight, weight, bias)  # [rows, h]
    # index_select's backward is an index_add; CUDA keeps embedding's deterministic one
    return F.embedding(ids, rows) if ids.is_cuda else rows.index_select(0, ids)


def embedding(n: int, dim: int, std: float) -> nn.Embedding:
    """An embedding table initialised from N(0, std^2) (zeros for ``std=0``: biases)."""
    table = Table(n, dim)
    if std > 0:
        nn.init.normal_(table.weight, std=std)
    else:
        nn.init.zeros_(table.weight)
    return table


def row_norms(*rows: torch.Tensor) -> torch.Tensor:
    """Sum over tensors of the batch-mean squared L2 norm of their rows (``[B, d]`` or
    ``[B]``, all with the same B): one sum of squares per tensor, one division."""
    return sum(torch.dot(r.reshape(-1), r.reshape(-1)) for r in rows) / rows[0].shape[0]


def column(table: nn.Embedding, indices: torch.Tensor) -> torch.Tensor:
    """The entries of a one-column table (biases) for ``indices``: ``[B]`` (a view, whose
    backward is free, where ``[:, 0]`` would scatter into a zero tensor)."""
    return table(indices).view(-1)


def split_linear(layer: nn.Linear, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """``layer(torch.cat([left, right], -1))`` without the concatenation.

    Each side meets its own slice of the weight. Besides skipping a copy, the gradients
    reaching ``left`` and ``right`` come out contiguous (a concatenation's backward hands
    out strided slices), which makes their embedding tables' scatter three times cheaper.
    """
    width = left.shape[-1]
    return F.linear(left, layer.weight[:, :width]) + F.linear(right, layer.weight[:, width:],
                                                            layer.bias)


def mlp(
    sizes: tuple[int, ...], dropout: float = 0.0, last_activation: bool = True
) -> nn.Sequential:
    """Linear+ReLU(+Dropout) stack over ``sizes`` (input size first)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def tower_scores(user_part: torch.Tensor, item_part: torch.Tensor, tower: nn.Sequential,
                 weight: torch.Tensor, elements: int = 1 << 19) -> torch.Tensor:
    """``weight · tower(user_part[u] + item_part[i])`` for every user and item: ``[B, I]``.

    The scoring half of a tower whose first layer was split by side (see
    :func:`split_linear`): each side's share, ``[B, h]`` and ``[I, h]`` (bias included in
    one of them), is computed once, and only the per-pair remainder runs over
    ``B × I`` pairs. It runs a few users at a time so that each ``[users, I, h]`` block
    (about ``elements`` floats) stays in cache, with linear layers and ReLUs applied in
    place: the remainder is memory-bound, and each avoided pass over the block counts.
    Inference only (no gradients); other modules (dropout in eval mode) are called as is.
    """
    n_items, width = item_part.shape
    step = max(1, elements // (n_items * width))
    scores = user_part.new_empty(len(user_part), n_items)
    block = user_part.new_empty(min(step, len(user_part)), n_items, width)
    with torch.no_grad():
        for start in range(0, len(user_part), step):
            part = user_part[start : start + step]
            x = torch.add(part[:, None, :], item_part, out=block[: len(part)]).view(-1, width)
            for layer in tower:
                if isinstance(layer, nn.Linear):
                    x = torch.mm(x, layer.weight.T).add_(layer.bias)
                elif isinstance(layer, nn.ReLU):
                    x = x.relu_()
                else:
                    x = layer(x)
            torch.mv(x, weight, out=scores[start : start + len(part)].view(-1))
    return scores
