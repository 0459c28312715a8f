"""The fast training paths give the values of the plain ones: fused gradients against
autograd's, the lean Adam step against ``torch.optim.Adam``'s, whole epochs side by side."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from deepmf.data import Interactions
from deepmf.losses import bce, mse
from deepmf.models import build_model
from deepmf.models.compiled import first_size_compiled
from deepmf.models.fused import LOSS_GRADS
from deepmf.optim import LeanAdam
from deepmf.tasks import RankingTask, RatingTask
from deepmf.train import TrainConfig, fit

FUSED = ("mf", "biased-mf", "gmf")


def ratings(n_users=40, n_items=30, n=600, seed=0) -> Interactions:
    rng = np.random.default_rng(seed)
    return Interactions(rng.integers(0, n_users, n), rng.integers(0, n_items, n),
                        rng.integers(1, 6, n).astype(np.float32), n_users=n_users,
                        n_items=n_items)


def model_for(name: str, log: Interactions):
    torch.manual_seed(0)
    model = build_model(name, log, dim=6)
    with torch.no_grad():  # biases and heads off their zero start, so every term counts
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def autograd_grads(model, loss):
    return torch.autograd.grad(loss, list(model.parameters()))


def fused_grads_of(model, users, items, dloss, reg):
    loss = model.fused_grads(users, items, dloss, reg)
    return loss, [p.grad for p in model.parameters()]


@pytest.fixture(params=[1 << 18, 64], ids=["whole", "in-parts"])
def part_size(request, monkeypatch):
    """The batch in one part, and in parts of a few pairs (``PART_ELEMENTS`` values)."""
    monkeypatch.setattr("deepmf.models.fused.PART_ELEMENTS", request.param)


@pytest.mark.parametrize("reg", [0.0, 0.05])
@pytest.mark.parametrize("name", FUSED)
def test_fused_gradients_equal_autograd_for_mse(name, reg, part_size):
    log = ratings()
    model = model_for(name, log)
    users, items = torch.tensor(log.users[:200]), torch.tensor(log.items[:200])
    target = torch.tensor(log.ratings[:200])  # repeated ids: the scatter must add them up
    scores, penalty = model.scores_and_penalty(users, items)
    expected = autograd_grads(model, mse(scores, target) + reg * penalty)
    plain_loss = mse(scores, target) + reg * penalty

    def dloss(s, part):
        error = s - target[part]
        return torch.dot(error, error) / len(target), error * (2.0 / len(target))

    loss, grads = fused_grads_of(model, users, items, dloss, reg)
    torch.testing.assert_close(loss, plain_loss.detach())
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", FUSED)
def test_fused_gradients_equal_autograd_for_bce(name, part_size):
    log = ratings()
    model = model_for(name, log)
    users, items = torch.tensor(log.users[:300]), torch.tensor(log.items[:300])
    labels = torch.tensor((log.ratings[:300] > 3).astype(np.float32))
    scores, penalty = model.scores_and_penalty(users, items)
    expected = autograd_grads(model, bce(scores, labels) + 0.01 * penalty)

    def dloss(s, part):
        wanted = labels[part]
        return bce(s, wanted) * len(wanted) / len(labels), (torch.sigmoid(s) - wanted) / 300

    _, grads = fused_grads_of(model, users, items, dloss, 0.01)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


def test_lean_adam_step_is_bit_for_bit_adams():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(50, 4)), torch.nn.Parameter(torch.randn(7))]
    twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
    lean = LeanAdam(params, lr=0.01, weight_decay=0.001, fused=True)
    plain = torch.optim.Adam(twins, lr=0.01, weight_decay=0.001, fused=True)
    for step in range(6):
        grads = [torch.randn_like(p) for p in params]
        for p, q, g in zip(params, twins, grads):
            p.grad, q.grad = g.clone(), g.clone()
        if step == 3:  # a schedule changes the rate between steps
            lean.param_groups[0]["lr"] = plain.param_groups[0]["lr"] = 0.003
        lean.lean_step()
        plain.step()
        for p, q in zip(params, twins):
            assert torch.equal(p, q)
    for a, b in zip(lean.state.values(), plain.state.values()):
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(a[key], b[key])


def test_lean_adam_leaves_a_parameter_without_gradient_to_step():
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    opt = LeanAdam([a, b], lr=0.1, fused=True)
    a.grad, b.grad = torch.ones(3), torch.ones(3)
    opt.lean_step()
    a_before, b_before = a.detach().clone(), b.detach().clone()
    a.grad, b.grad = torch.ones(3), None
    opt.lean_step()  # falls back to step(), which skips b
    assert torch.equal(b, b_before) and not torch.equal(a, a_before)


def train(name, log, task_kind, *, fused: bool, epochs=3):
    model = model_for(name, log)
    cpu = torch.device("cpu")
    if task_kind == "rating":
        task = RatingTask(log, log, batch_size=64, device=cpu, reg=0.05, clip=(1, 5))
    else:
        implicit = log.implicit()
        task = RankingTask(implicit, None, batch_size=100, device=cpu, num_neg=2, reg=0.01)
    if not fused:
        task.fused_step = lambda model: None  # the plain path: autograd
    history = fit(model, task, TrainConfig(epochs=epochs, lr=0.01, patience=0))
    return model, history


@pytest.mark.parametrize("name,task_kind", [("biased-mf", "rating"), ("mf", "rating"),
                                            ("gmf", "ranking"), ("biased-mf", "ranking")])
def test_a_fused_run_ends_where_the_autograd_run_does(name, task_kind):
    log = ratings()
    fused, fused_history = train(name, log, task_kind, fused=True)
    plain, plain_history = train(name, log, task_kind, fused=False)
    for a, b in zip(fused.parameters(), plain.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # float order differs
    for a, b in zip(fused_history, plain_history):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)


def test_train_rmse_is_the_epochs_own_predictions():
    log = ratings()
    model = model_for("biased-mf", log)
    task = RatingTask(log, log, batch_size=64, device=torch.device("cpu"), clip=(1, 5))
    before = task.validate(model)["train_rmse"]  # no epoch yet: the full pass
    fit(model, task, TrainConfig(epochs=1, lr=1e-12, patience=0))  # weights all but fixed
    after = task.validate(model)["train_rmse"]  # unclipped running figure
    scores = model(torch.tensor(log.users), torch.tensor(log.items)).detach().numpy()
    unclipped = float(np.sqrt(np.mean((scores - log.ratings) ** 2)))
    assert after == pytest.approx(unclipped, rel=1e-5)
    assert before <= unclipped + 1e-6  # clipping only helps


needs_compiler = pytest.mark.skipif(not shutil.which("g++"), reason="torch.compile needs g++")


@needs_compiler
@pytest.mark.parametrize("name,loss,sparse", [("biased-mf", "mse", False), ("mf", "bce", False),
                                              ("gmf", "bce", False), ("biased-mf", "bce", True),
                                              ("gmf", "mse", True)])
def test_compiled_step_gives_the_eager_steps_loss_and_gradients(name, loss, sparse):
    """Dense tables, and row-sparse ones (lazy-adam: one gradient row per distinct id)."""
    log = ratings()
    model = model_for(name, log)
    for table in model.modules():
        if isinstance(table, torch.nn.Embedding):
            table.sparse = sparse
    users, items = torch.tensor(log.users[:200]), torch.tensor(log.items[:200])
    targets = torch.tensor(log.ratings[:200])
    if loss == "bce":
        targets = (targets > 3).float()
    eager = model.fused_grads(users, items, lambda s, part: LOSS_GRADS[loss](
        s, targets[part], 200)[:2], 0.05)
    expected = [p.grad.clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    value, tally = model.compiled_grads(loss, 0.05)(users, items, targets)
    assert float(value) == pytest.approx(float(eager), rel=1e-5)
    for p, grad in zip(model.parameters(), expected):
        assert p.grad.is_sparse == grad.is_sparse
        if grad.is_sparse:  # the same distinct rows, flagged coalesced for the optimizer
            assert p.grad.is_coalesced() and torch.equal(p.grad.indices(), grad.indices())
        torch.testing.assert_close(p.grad.to_dense(), grad.to_dense(), rtol=1e-5, atol=1e-7)
    if loss == "mse":  # the tally is the squared error the epoch's train_rmse sums
        scores = model(users, items).detach()
        assert float(tally) == pytest.approx(float(((scores - targets) ** 2).sum()), rel=1e-5)


def test_only_batches_the_size_of_the_first_run_compiled():
    ran = []
    step = first_size_compiled(lambda b: ran.append(("compiled", len(b[0]))),
                               lambda b: ran.append(("eager", len(b[0]))))
    for size in (4, 4, 3, 4):
        step((torch.zeros(size),))
    assert ran == [("compiled", 4), ("compiled", 4), ("eager", 3), ("compiled", 4)]
    assert first_size_compiled(None, len) is len  # nothing compiled: the eager step


def test_a_failed_compilation_falls_back_to_the_same_function(monkeypatch, capsys):
    """A compiler that cannot build the kernels costs one line, not the run."""
    from deepmf.models import compiled

    def broken(*args):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    monkeypatch.setattr(compiled, "_COMPILED", {compiled.mf_whole: broken})
    log = ratings()
    model = model_for("biased-mf", log)
    users, items = torch.tensor(log.users[:200]), torch.tensor(log.items[:200])
    targets = torch.tensor(log.ratings[:200])
    step = model.compiled_grads("mse", 0.05)  # keeps the broken "compiled" function
    value, _ = step(users, items, targets)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "compiling the training step failed" in err
    assert "InvalidCxxCompiler" in err
    fallback = [p.grad.clone() for p in model.parameters()]
    eager = model.fused_grads(users, items, lambda s, part: LOSS_GRADS["mse"](
        s, targets[part], 200)[:2], 0.05)
    assert float(value) == pytest.approx(float(eager), rel=1e-5)
    for grad, p in zip(fallback, model.parameters()):
        torch.testing.assert_close(grad, p.grad, rtol=1e-5, atol=1e-7)
    step(users, items, targets)  # from then on uncompiled, without another line
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("capability,user,expected", [
    ("AVX512", None, [True, None]),  # the compiling call only
    ("AVX2", None, [True, None]),
    ("DEFAULT", None, [None, None]),  # ATen runs no vector ISA: the Inductor checks
    ("AVX512", False, [False, False]),  # TORCHINDUCTOR_VEC_ISA_OK=0: the user's choice
])
def test_the_compiling_call_trusts_the_vector_isa_aten_runs(monkeypatch, capability, user,
                                                             expected):
    """The Inductor checks each vector ISA by loading a test library in a fresh Python
    (a second a process); the call that compiles skips that where ATen's own kernels
    already run those instructions, and the setting is back as it was afterwards."""
    import platform
    import sys

    from torch._inductor import config

    from deepmf.models import compiled

    seen = []
    monkeypatch.setattr(compiled, "_COMPILED", {
        compiled.mf_whole: lambda *args: seen.append(config.cpp.vec_isa_ok)})
    monkeypatch.setattr(compiled, "_RAN", set())
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    with config.patch({"cpp.vec_isa_ok": user}):
        compiled._run(compiled.mf_whole, ())
        compiled._run(compiled.mf_whole, ())
        assert config.cpp.vec_isa_ok is user
    assert seen == expected


def test_a_compile_failing_with_the_trusted_isa_is_tried_with_the_inductors_checks(
        monkeypatch, capsys):
    """A compiler too old for the instructions ATen runs fails the trusted compile; the
    Inductor's own checks then pick narrower ones, and the step stays compiled."""
    import platform
    import sys

    from torch._inductor import config

    from deepmf.models import compiled

    calls = []

    def fake(*args):
        calls.append(config.cpp.vec_isa_ok)
        if config.cpp.vec_isa_ok:
            raise RuntimeError("g++: error: unrecognized command-line option '-mavx512vnni'")
        return "compiled"

    monkeypatch.setattr(compiled, "_COMPILED", {compiled.mf_whole: fake})
    monkeypatch.setattr(compiled, "_RAN", set())
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    with config.patch({"cpp.vec_isa_ok": None}):
        assert compiled._run(compiled.mf_whole, ()) == "compiled"
        assert compiled._run(compiled.mf_whole, ()) == "compiled"
    assert calls == [True, None, None]
    assert capsys.readouterr().err == ""
