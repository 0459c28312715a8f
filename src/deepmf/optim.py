"""The optimizers a run can name, and Adam's step without its per-step overhead."""

from __future__ import annotations

import math

import torch


def _unwrapped(method):
    """``method`` without ``torch._disable_dynamo``'s wrapper, whose first call imports
    ``torch._dynamo`` (2-2.5 s of CPU on the shared machine, a fifth of a whole ml-100k
    run); the training loop is never compiled, so the wrapper has nothing to do."""
    return getattr(method, "__wrapped__", method)


def _adam_state(state: dict, p: torch.Tensor) -> dict:
    """``p``'s Adam state, made on first use as Adam's ``_init_group`` makes it for the
    fused kernel: a float32 step count and two zero moments shaped like ``p``."""
    if not state:
        state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return state


def _fused_adam(lists, group: dict) -> None:
    """The two calls ``Adam.step`` ends in: count the step, then ``_fused_adam_`` over
    ``lists`` (params, grads, first moments, second moments, step counts)."""
    params, grads, averages, squares, counts = lists
    beta1, beta2 = group["betas"]
    torch._foreach_add_(counts, 1)
    torch._fused_adam_(params, grads, averages, squares, [], counts, amsgrad=False,
                       lr=group["lr"], beta1=beta1, beta2=beta2,
                       weight_decay=group["weight_decay"], eps=group["eps"],
                       maximize=group.get("maximize", False), grad_scale=None,
                       found_inf=None)


class LeanAdam(torch.optim.Adam):
    """``torch.optim.Adam`` (fused) with :meth:`lean_step`, which calls the kernel directly.

    ``step`` wraps the kernel in hooks, profiler records, grad-mode switches and a regrouping
    of the tensors by device, which on one CPU thread cost about 0.4 ms a step, as much as
    the kernel itself over an ml-100k model. ``lean_step`` creates the state as ``step``
    would and runs the same two calls ``step`` ends in (count the step, then
    ``_fused_adam_``), so parameters and state come out bit for bit the same
    (``tests/test_fused.py``). With several groups, a parameter without gradient, hooks
    or options the direct call leaves out, it is ``step``. Neither it nor the methods a
    run uses (building, saving and loading the state) import ``torch._dynamo``.
    """

    add_param_group = _unwrapped(torch.optim.Optimizer.add_param_group)
    state_dict = _unwrapped(torch.optim.Optimizer.state_dict)
    load_state_dict = _unwrapped(torch.optim.Optimizer.load_state_dict)

    def lean_step(self) -> None:
        """One optimizer step, as ``step()`` does it."""
        lean = self._lean_lists()
        if lean is None:
            self.step()
            return
        _fused_adam(lean, self.param_groups[0])

    def _lean_lists(self):
        """The kernel's tensor lists, or None where ``step`` must run."""
        if len(self.param_groups) != 1 or self._optimizer_step_pre_hooks or \
                self._optimizer_step_post_hooks or not hasattr(torch, "_fused_adam_"):
            return None
        group = self.param_groups[0]
        if not group["fused"] or group["amsgrad"] or group["capturable"] or \
                group["differentiable"] or group["decoupled_weight_decay"] or \
                torch.is_tensor(group["lr"]):
            return None
        params = group["params"]
        if any(p.grad is None or p.grad.is_sparse or p.is_complex() for p in params):
            return None
        states = [_adam_state(self.state[p], p) for p in params]
        return (params, [p.grad for p in params], [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states], [s["step"] for s in states])


class LazyAdam(torch.optim.Optimizer):
    """Adam whose embedding tables update only the rows a batch looked up.

    With dense gradients every step reads and writes each table whole (weights, gradient
    and two moments), so on a log of 138,000 users and 27,000 items at 128 factors a step
    costs the same whatever its batch, and an epoch grows with the tables times the steps.
    Here a table's gradient is sparse (``nn.Embedding(sparse=True)``, or the fused steps'
    rows): only its looked-up rows get Adam's update, with the step count of the whole run
    in the bias corrections (as ``torch.optim.SparseAdam``, which takes no dense gradients
    and no weight decay); dense gradients get plain Adam, all in one fused kernel. The
    moments of a row not looked up stay as they were, so results differ from Adam's; the
    README says when to choose it. Which tables are sparse is set when the optimizer is
    made (:func:`sparse_tables`: not those a batch mostly covers).
    """

    sparse_embeddings = True
    """:func:`deepmf.train.make_optimizer` switches the model's embeddings to sparse."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, fused: bool | None = None):
        del fused  # one step per tensor either way
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    add_param_group = _unwrapped(torch.optim.Optimizer.add_param_group)
    state_dict = _unwrapped(torch.optim.Optimizer.state_dict)
    load_state_dict = _unwrapped(torch.optim.Optimizer.load_state_dict)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lists, rows_of = self._gather(group)
            if not lists[0]:
                continue
            _fused_adam(lists, group)
            for p, rows, state, weights, average, square in rows_of:  # updated in place
                p.index_copy_(0, rows, weights)
                state["exp_avg"].index_copy_(0, rows, average)
                state["exp_avg_sq"].index_copy_(0, rows, square)
        return None

    def _gather(self, group):
        """The fused kernel's lists: dense parameters whole, sparse ones as copies of their
        looked-up rows (and of those rows' moments), which ``rows_of`` lists to write back."""
        lists, rows_of = [[], [], [], [], []], []
        for p in group["params"]:
            if p.grad is None:
                continue
            state = _adam_state(self.state[p], p)
            if p.grad.is_sparse:
                rows, values = _distinct_rows(p.grad)
                weights, average, square = (t.index_select(0, rows) for t in
                                            (p, state["exp_avg"], state["exp_avg_sq"]))
                rows_of.append((p, rows, state, weights, average, square))
                parts = (weights, values, average, square, state["step"])
            else:
                parts = (p, p.grad, state["exp_avg"], state["exp_avg_sq"], state["step"])
            for lst, part in zip(lists, parts):
                lst.append(part)
        return lists, rows_of


DENSE_SHARE = 0.25
"""``lazy-adam`` keeps a table dense (plain Adam over all of it) where one batch looks up
more than this share of its rows: gathering most rows of a table and of its moments, and
writing them back, costs more than streaming the whole (timed alone on 128 factors: about
1.1 µs a row for the three gathers and scatters of a looked-up row, 0.2-0.3 µs a row for
Adam over a whole table, so they break even near a quarter). With ``biased-mf``'s recipe on
the 20M log's tables a batch looks up about 45 % of the 27,000 items and 2.6 % of the
138,000 users (``benchmarks/lazy_adam.py``)."""


def covered(uniform: float, other: float, rows: int) -> float:
    """About the share of a table's ``rows`` that one batch looks up: ``uniform`` ids drawn
    uniformly at random (negatives) and ``other`` ids besides (at most as many distinct)."""
    return min(1.0, (other - rows * math.expm1(-uniform / rows)) / rows) if rows > 0 else 1.0


def keeps_dense(share: float) -> bool:
    """Whether ``lazy-adam`` keeps a table dense (plain Adam over all of it) where one batch
    looks up ``share`` of its rows: over ``DENSE_SHARE``."""
    return share > DENSE_SHARE


def lookup_shares(n_users: int, n_items: int, batch_size: int, num_neg: int = 0,
                  anchors: bool = False) -> tuple[float, float]:
    """About the share of the user rows and of the item rows one batch looks up: a batch of
    ``batch_size`` pairs, or for ranking (``num_neg`` > 0) its positives' users and items and
    ``num_neg`` uniform negatives a positive, with ``anchors`` (the log loss: a batch holds
    ``1 + num_neg`` samples a positive) as many anchor users again."""
    p = max(1, batch_size // (1 + num_neg)) if anchors else batch_size
    return covered(0, (1 + anchors) * p, n_users), covered(p * num_neg, p, n_items)


def sparse_tables(model: torch.nn.Module, shares: tuple[float, float] | None = None) -> None:
    """Give ``model``'s embedding tables row gradients (for ``lazy-adam``), all but those of
    which one batch looks up more than ``DENSE_SHARE`` of the rows; ``shares``: the share of
    the user rows and of the item rows a batch looks up (None: every table sparse)."""
    spaces = (getattr(model, "n_users", None), getattr(model, "n_items", None))
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            mine = [s for s, n in zip(shares or (), spaces) if n == module.num_embeddings]
            module.sparse = not mine or not keeps_dense(max(mine))


def _distinct_rows(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A sparse row gradient's ids and rows, one per distinct id. The tables' lookups hand
    out coalesced gradients, but autograd's accumulation drops the flag; ids found already
    increasing are taken as they are instead of sorted and summed again."""
    if not grad.is_coalesced():
        rows = grad._indices()[0]
        if not bool((rows[1:] > rows[:-1]).all()):
            grad = grad.coalesce()
        else:
            return rows, grad._values()
    return grad.indices()[0], grad.values()


def make_optimizer(model: torch.nn.Module, config,
                   shares: tuple[float, float] | None = None) -> torch.optim.Optimizer:
    """The optimizer ``config`` names (a :class:`~deepmf.train.TrainConfig`: its
    ``optimizer``, ``lr`` and ``weight_decay``) over the trainable parameters, fused into one
    kernel per step (far fewer small ops than the per-tensor loop; CPU and CUDA alike).
    ``lazy-adam`` gives the tables row gradients (:func:`sparse_tables`; ``shares``: of the
    user and item rows a batch looks up, a task's ``lookup_shares()``)."""
    params = [p for p in model.parameters() if p.requires_grad]
    kind = OPTIMIZERS[config.optimizer]
    if getattr(kind, "sparse_embeddings", False):
        sparse_tables(model, shares)
    return kind(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)


OPTIMIZERS = {
    "adam": LeanAdam,
    "lazy-adam": LazyAdam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
}
"""Optimizers by the name a config gives them (all built with ``fused=True``, which
``lazy-adam`` ignores)."""
