"""The fused steps of :mod:`deepmf.models.fused` compiled by ``torch.compile`` (``--compile``).

Each model's step over a whole batch is written as a pure function of its weights
(``mf_whole``, ``gmf_whole``: the same part functions as the eager steps, so the same
arithmetic), which the Inductor compiles into a few C++ loops: the row lookups, the
element-wise work, the reductions and the gradient scatters fused. The eager step keeps
its exact numbers; the compiled one agrees to float rounding (``tests/test_fused.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch
from torch import nn

from deepmf.models.fused import LOSS_GRADS, gmf_part, mf_part, mf_tables
from deepmf.models.layers import coalesced_rows


def summed_rows(table: torch.Tensor, ids: torch.Tensor, rows: torch.Tensor,
                where: torch.Tensor | None) -> torch.Tensor:
    """A table's gradient from its looked-up rows' gradients: dense (added into zeros at
    ``ids``), or for a sparse table summed per distinct id into a buffer of one row per
    pair, of which the first as many as there are distinct ids are used (``where``: each
    pair's position among the sorted distinct ids). The buffer's length is the batch's, so
    that a compiled step keeps one shape whatever the batch's ids."""
    if where is None:
        return torch.zeros_like(table).index_add_(0, ids, rows)
    return table.new_zeros((len(ids), table.shape[1])).index_add_(0, where, rows)


def _tallying(loss: str, targets: torch.Tensor, n: int, tally: list) -> Callable:
    """The whole batch's ``dloss(scores)`` for ``loss``, appending its tally to ``tally``."""

    def dloss(scores):
        share, d, tallied = LOSS_GRADS[loss](scores, targets, n)
        tally.append(tallied)
        return share, d

    return dloss


def mf_whole(weights: list[torch.Tensor], mean, users: torch.Tensor, items: torch.Tensor,
             targets: torch.Tensor, loss: str, reg: float, where: tuple):
    """:func:`mf_grads` over the whole batch in one part, as a pure function of the tables'
    weights (what ``torch.compile`` fuses, see :func:`compiled_step`): the loss, the loss
    function's tally and each table's gradient (:func:`summed_rows`)."""
    n, ids = len(targets), (users, items, users, items)
    rows = [w.index_select(0, i) for w, i in zip(weights, ids)]
    tally: list = []
    dloss = _tallying(loss, targets, n, tally)
    value, row_grads = mf_part(rows, mean, dloss, reg, n, len(weights) == 4)
    return value, tally[0], [summed_rows(*args) for args in zip(weights, ids, row_grads, where)]


def mf_compiled(model, loss: str, reg: float, biased: bool):
    """MF's step compiled (:func:`compiled_step`)."""
    tables = mf_tables(model, biased)
    return compiled_step(mf_whole, [t.weight for t in tables], (0, 1, 0, 1)[:len(tables)],
                         [t.sparse for t in tables], model.global_mean if biased else None,
                         loss, reg)


def gmf_whole(weights: list[torch.Tensor], extra, users: torch.Tensor, items: torch.Tensor,
              targets: torch.Tensor, loss: str, reg: float, where: tuple):
    """:func:`gmf_grads` over the whole batch, pure (see :func:`mf_whole`)."""
    del extra
    table_p, table_q, head, bias = weights
    n, tally = len(targets), []
    dloss = _tallying(loss, targets, n, tally)

    value, product, d, grad_p, grad_q = gmf_part(
        table_p.index_select(0, users), table_q.index_select(0, items), head[0], bias, dloss,
        reg, n)
    grads = [summed_rows(table_p, users, grad_p, where[0]),
             summed_rows(table_q, items, grad_q, where[1]),
             torch.mv(product.T, d)[None], d.sum().reshape(1)]
    return value, tally[0], grads


def gmf_compiled(model, loss: str, reg: float):
    """GMF's step compiled (:func:`compiled_step`)."""
    tables = (model.user_embedding, model.item_embedding)
    return compiled_step(gmf_whole, [t.weight for t in tables] + list(model.head.parameters()),
                         (0, 1, None, None), [t.sparse for t in tables] + [False, False],
                         None, loss, reg)


_COMPILED: dict = {}
"""Each whole-batch function compiled once per process; ``torch.compile`` keeps a graph per
shape of its inputs, and the Inductor's kernels are cached on disk between processes."""


def compiled_step(whole: Callable, params: list[nn.Parameter], lookups: tuple, sparse: list,
                  extra, loss: str, reg: float):
    """A step ``(users, items, targets) -> (loss, tally)`` that runs ``whole(weights, extra,
    users, items, targets, loss, reg, where)`` compiled by ``torch.compile`` and sets each
    parameter's ``.grad``. ``lookups``: which ids (0 users, 1 items, None) each parameter is
    looked up by; ``sparse``: whether its gradient is row-sparse (``lazy-adam``), summed per
    distinct id (found here, eagerly: their number varies) and set as a coalesced tensor.

    The Inductor turns the lookups, the arithmetic and the scatters into a few C++ loops: for
    ``biased-mf`` at 128 factors and 16,380 pairs the gradients took 6.1-6.5 ms where the
    eager parts take 28-30 ms (one thread). Compiling costs 10-30 s the first time on this
    machine and a few seconds once the kernels are in the Inductor's on-disk cache."""
    if whole not in _COMPILED:
        _COMPILED[whole] = torch.compile(whole, dynamic=False, fullgraph=True)

    def step(users, items, targets):
        ids = (users, items)
        distinct = {k: torch.unique(ids[k], return_inverse=True)  # once per id kind
                    for k in {k for k, rows in zip(lookups, sparse) if rows}}
        where = tuple(distinct[k][1] if rows else None for k, rows in zip(lookups, sparse))
        with torch.no_grad():
            weights = [p.detach() for p in params]
            args = (weights, extra, users, items, targets, loss, reg, where)
            value, tally, grads = _run(whole, args)
        for param, grad, k, rows in zip(params, grads, lookups, sparse):
            if rows:
                grad = coalesced_rows(distinct[k][0], grad[:len(distinct[k][0])], param.shape)
            param.grad = grad
        return value, tally

    return step


def _run(whole: Callable, args: tuple):
    """``whole(*args)`` compiled; where compiling fails (a compiler that cannot build the
    kernels, missing Python headers), one line says so and the process goes on with the
    same function uncompiled (the same arithmetic, at the eager pace)."""
    run = _COMPILED[whole]
    if run is whole:
        return whole(*args)
    try:
        if whole in _RAN:
            return run(*args)
        value = _compiling_call(run, args)
        _RAN.add(whole)
        return value
    except Exception as error:  # noqa: BLE001 - any compiler failure; a real one recurs below
        _COMPILED[whole] = whole
        reason = " ".join(str(error).split())[:160]
        print(f"deepmf: compiling the training step failed ({reason}); training goes on "
              "without it (--no-compile skips the attempt)", file=sys.stderr)
        return whole(*args)


_RAN: set = set()
"""The whole-batch functions whose compiled form has run once in this process."""


def _compiling_call(run: Callable, args: tuple):
    """The first call, which compiles: the Inductor trusting the vector instructions ATen
    runs (:func:`_trusted_isa`) where that applies, and where a compile so trusted fails
    (a compiler too old for those instructions), once more with the Inductor's own checks,
    which fall back to narrower instructions."""
    trusted = _trusted_isa()
    if trusted is None:
        return run(*args)
    try:
        with trusted:
            return run(*args)
    except Exception:  # noqa: BLE001 - retried below without the trust; a real one recurs
        return run(*args)


def _trusted_isa():
    """A context in which the Inductor takes the vector instructions it finds in the CPU's
    flags as usable, where they are the ones ATen's own kernels already run in this
    process (AVX2 or AVX-512 on x86-64 Linux) and the user has not set
    ``TORCHINDUCTOR_VEC_ISA_OK``; None elsewhere. Left to itself the Inductor checks each
    candidate by loading a test library in a fresh Python process, four of them on this
    machine: 1.0-1.2 s of every compiling process, about half of compiling from a warm
    cache."""
    import platform

    from torch._inductor import config

    trusted = sys.platform == "linux" and platform.machine() == "x86_64" and \
        torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
    if not trusted or config.cpp.vec_isa_ok is not None:
        return None
    return config.patch({"cpp.vec_isa_ok": True})


def first_size_compiled(whole: Callable | None, eager: Callable) -> Callable:
    """A step of a batch: ``whole`` (compiled) for batches as long as the first, ``eager``
    for the others (an epoch's shorter last batch would cost another compilation)."""
    if whole is None:
        return eager
    sizes: list[int] = []

    def step(batch):
        sizes[:] = sizes or [len(batch[0])]
        return whole(batch) if len(batch[0]) == sizes[0] else eager(batch)

    return step
