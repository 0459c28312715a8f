"""Building blocks shared by the models: embeddings, split linear layers, MLP towers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepmf.errors import ConfigError


def layer_sizes(name: str, sizes, *, concat: bool = False) -> tuple[int, ...]:
    """``sizes`` as a tuple of positive ints, else ``ConfigError`` naming the parameter.

    With ``concat`` the first size is the width of a concatenation of two equal halves (so
    even) and at least one hidden layer must follow, e.g. ``(64, 32, 16, 8)``.
    """
    try:
        sizes = tuple(int(x) for x in sizes)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be layer sizes such as 64,32, not {sizes!r}") from None
    if not sizes or min(sizes) < 1:
        raise ConfigError(f"{name} must be one or more positive sizes, not {list(sizes)}")
    if concat and (len(sizes) < 2 or sizes[0] % 2):
        raise ConfigError(f"{name} must start with an even concatenation size followed by at "
                         f"least one hidden size, e.g. 64,32,16,8 (got {list(sizes)})")
    return sizes


class Embedding(nn.Embedding):
    """An embedding table whose lookup of a flat index vector is ``index_select``.

    The rows are the same as ``nn.Embedding``'s; on the CPU the backward pass (an
    ``index_add`` into the gradient) costs about a third less than embedding's, and a
    training step does four such lookups. A table made ``sparse`` (for ``lazy-adam``)
    returns its gradient as the sum per distinct looked-up id, already coalesced
    (:class:`_RowLookup`). CUDA keeps embedding's deterministic backward.
    """

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        if indices.dim() == 1 and not indices.is_cuda:
            if self.sparse:
                return _RowLookup.apply(self.weight, indices)
            return self.weight.index_select(0, indices)
        return super().forward(indices)


class _RowLookup(torch.autograd.Function):
    """``weight[ids]`` whose weight gradient is a coalesced sparse tensor of the distinct
    ids' summed row gradients: ``nn.Embedding(sparse=True)`` hands out one row per lookup,
    which the optimizer must coalesce (sort and sum) again, at 4-6 ms a table a step on
    ml-20m-sized tables; here one ``unique`` and one ``index_add`` into a compact buffer."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(ids)
        ctx.shape = weight.shape
        return weight.index_select(0, ids)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (ids,) = ctx.saved_tensors
        distinct, where, rows = distinct_rows(ids, grad)
        return coalesced_rows(distinct, rows.index_add_(0, where, grad), ctx.shape), None


def distinct_rows(ids: torch.Tensor, like: torch.Tensor):
    """``(distinct, where, buffer)``: the sorted distinct ``ids``, each id's position among
    them, and a zero buffer of one row (as wide as ``like``'s) per distinct id, into which
    the looked-up rows' gradients are summed (``buffer.index_add_(0, where, grads)``)."""
    distinct, where = torch.unique(ids, return_inverse=True)
    return distinct, where, like.new_zeros((len(distinct), like.shape[1]))


def coalesced_rows(distinct: torch.Tensor, rows: torch.Tensor, shape) -> torch.Tensor:
    """A table's sparse gradient from :func:`distinct_rows`' ids and summed rows, flagged
    coalesced (its ids are sorted and distinct) so the optimizer does not sort them again."""
    return torch.sparse_coo_tensor(distinct[None], rows, shape, is_coalesced=True,
                                   check_invariants=False)


def linear_rows(table: nn.Embedding, ids: torch.Tensor, weight: torch.Tensor,
                bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(table(ids), weight, bias)``: ``[B, h]``.

    When the batch holds more ids than the table has rows (ml-1m: 16,384 samples, 6,040
    users), every row is transformed once and the results gathered: fewer multiply-adds,
    and the backward's scatter adds ``h``-wide rows into ``[rows, h]``. The values are the
    same, in less time.
    """
    if len(ids) <= table.num_embeddings or ids.dim() != 1:
        return F.linear(table(ids), weight, bias)
    rows = F.linear(table.weight, weight, bias)  # [rows, h]
    # index_select's backward is an index_add; CUDA keeps embedding's deterministic one
    return F.embedding(ids, rows) if ids.is_cuda else rows.index_select(0, ids)


def embedding(n: int, dim: int, std: float) -> nn.Embedding:
    """An embedding table initialised from N(0, std^2) (zeros for ``std=0``: biases)."""
    table = Embedding(n, dim)
    if std > 0:
        nn.init.normal_(table.weight, std=std)
    else:
        nn.init.zeros_(table.weight)
    return table


def row_norms(*rows: torch.Tensor) -> torch.Tensor:
    """Sum over tensors of the batch-mean squared L2 norm of their rows (``[B, d]`` or
    ``[B]``, all with the same B): one sum of squares per tensor, one division."""
    return sum(torch.dot(r.reshape(-1), r.reshape(-1)) for r in rows) / rows[0].shape[0]


def biased_product(left: torch.Tensor, right: torch.Tensor, row_bias=None, col_bias=None,
                   alpha: float = 1.0) -> torch.Tensor:
    """``alpha · left @ rightᵀ + col_bias + row_bias[:, None]``: every item's score for each
    user, ``[B, I]``, as one new tensor.

    The column biases (``[I]``, or one value for all) start the matrix product's output
    (``addmm``) and the row biases (``[B]``) are added into it in place. For 1,024 users
    and ml-20m's 27,000 items at 128 factors (two threads) that took 101-128 ms against
    297-305 ms for the product followed by a sum per bias, each of which read the whole
    ``[B, I]`` and wrote a new one.
    """
    start = left.new_zeros(()) if col_bias is None else col_bias
    scores = torch.addmm(start, left, right.T, alpha=alpha)
    return scores if row_bias is None else scores.add_(row_bias[:, None])


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
                 weight: torch.Tensor, elements: int = 1 << 20,
                 into: torch.Tensor | None = None) -> torch.Tensor:
    """``weight · tower(user_part[u] + item_part[i])`` for every user and item: ``[B, I]``.

    The scoring half of a tower whose first layer was split by side (see
    :func:`split_linear`): each side's share, ``[B, h]`` and ``[I, h]`` (bias included in
    one of them), is computed once, and only the per-pair remainder runs over
    ``B × I`` pairs, a few users at a time so that each block (about ``elements`` floats)
    stays in cache. The blocks are feature-major, ``[h, users × I]``: each layer is one
    ``W @ X`` whose output rows are long (NCF's towers narrow to 16 and 8 units, and a
    pair-major ``X @ Wᵀ`` with 8 columns runs the matrix product and the bias add at a
    fraction of their speed; ``benchmarks/full_ranking.py``), and every layer writes into
    a buffer reused across blocks. A ReLU after an addition (the two sides' shares, a
    layer's bias) runs in the same pass (:func:`_add`): beside the matrix products,
    the passes over each block are most of the rest. Towers whose every layer is at least
    ``PAIR_MAJOR_WIDTH`` wide (CFNet-ml's 256-128-64) run pair-major instead, through
    oneDNN with weights packed once and bias and ReLU fused into each product
    (:func:`_packed_layers`). Inference only (no gradients); modules other than linear
    layers and ReLUs (dropout in eval mode) are called on the pair-major view. With ``into``
    (``[B, I]``, contiguous) the scores are added to it in place, block by block while the
    block is in cache, and it is returned (a model with another part, NeuMF's GMF, saves a
    pass over all the scores).
    """
    n_items, width = item_part.shape
    step = min(len(user_part), max(1, elements // (n_items * width)))
    scores = user_part.new_empty(len(user_part), n_items) if into is None else into
    leading_relu, steps = _fused_steps(tower)
    packed = _packed_layers(steps, step * n_items, user_part)
    with torch.no_grad():
        if packed is not None:
            block = user_part.new_empty(step, n_items, width)
            for start in range(0, len(user_part), step):
                part = user_part[start : start + step]
                x = _add(item_part[None], part[:, None, :], block[: len(part)],
                         relu=leading_relu).view(-1, width)
                for weight_, bias, post in packed:
                    x = torch.ops.mkldnn._linear_pointwise(x, weight_, bias, post, [], "")
                _score(x, weight, scores[start : start + len(part)].view(-1), into)
            return scores
        items_t = item_part.T.contiguous()  # [h, I]
        block = user_part.new_empty(width, step, n_items)
        buffers = {id(layer): user_part.new_empty(layer.out_features, step * n_items)
                   for layer, _ in steps if isinstance(layer, nn.Linear)}
        for start in range(0, len(user_part), step):
            part = user_part[start : start + step]
            pairs = len(part) * n_items
            x = _add(items_t[:, None, :], part.T[:, :, None], block[:, : len(part)],
                     relu=leading_relu).view(width, pairs)
            for layer, relu in steps:
                if isinstance(layer, nn.Linear):
                    x = torch.mm(layer.weight, x, out=buffers[id(layer)][:, :pairs])
                    x = _add(x, layer.bias[:, None], x, relu=relu)
                else:
                    x = layer(x.T).T
            _score(x.T, weight, scores[start : start + len(part)].view(-1), into)
    return scores


def _score(x: torch.Tensor, weight: torch.Tensor, out: torch.Tensor, into) -> None:
    """``x @ weight`` written to ``out``, or added to it where the scores go ``into`` a tensor."""
    if into is None:
        torch.mv(x, weight, out=out)
    else:
        out.addmv_(x, weight)


PAIR_MAJOR_WIDTH = 64
"""Towers whose linear layers all have at least this many outputs score pair-major through
oneDNN (:func:`_packed_layers`). Scoring every pair of ml-1m's shape (random parts, both
cores, two runs each way, alternating), a 256-128-64 tower (CFNet-ml's) took 8.3-8.6 s
against 9.8 s feature-major; NCF's 32-16-8 took 0.56-0.64 s against 0.42 s, its narrow
products being slow pair-major."""


def _packed_layers(steps: list, rows: int, like: torch.Tensor) -> list | None:
    """Each linear layer's weight packed for oneDNN (for products of about ``rows`` rows),
    its bias and its fused activation (``"relu"`` or ``"none"``), where every step is such a
    layer at least ``PAIR_MAJOR_WIDTH`` wide, on a CPU build with oneDNN enabled; else None."""
    if like.device.type != "cpu" or like.dtype != torch.float32 \
            or not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled) \
            or not steps:
        return None
    if not all(isinstance(layer, nn.Linear) and layer.bias is not None
               and layer.out_features >= PAIR_MAJOR_WIDTH for layer, _ in steps):
        return None
    with torch.no_grad():
        return [(torch.ops.mkldnn._reorder_linear_weight(layer.weight.detach(), rows),
                 layer.bias.detach(), "relu" if relu else "none") for layer, relu in steps]


def _fused_steps(tower: nn.Sequential) -> tuple[bool, list[tuple[nn.Module, bool]]]:
    """Whether the tower starts with a ReLU, and the rest as ``(module, relu_after)``
    steps, each ReLU that follows a linear layer folded into it."""
    modules = list(tower)
    leading = bool(modules) and isinstance(modules[0], nn.ReLU)
    steps: list[tuple[nn.Module, bool]] = []
    for module in modules[leading:]:
        if isinstance(module, nn.ReLU) and steps and isinstance(steps[-1][0], nn.Linear) \
                and not steps[-1][1]:
            steps[-1] = (steps[-1][0], True)
        else:
            steps.append((module, False))
    return leading, steps


def _add(x: torch.Tensor, other: torch.Tensor, out: torch.Tensor, *, relu: bool) -> torch.Tensor:
    """``x + other`` into ``out`` (which may be ``x``), then ReLU if ``relu``: in one pass
    where PyTorch has that kernel (CPU)."""
    if relu and out.is_cpu:
        return torch.ops.aten._add_relu.out(x, other, out=out)
    out = torch.add(x, other, out=out)
    return out.relu_() if relu else out
