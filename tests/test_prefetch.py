"""Batches drawn ahead on a thread: the same batches, the same training, resumable, and the
thread gone when training ends."""

from __future__ import annotations

import copy
import threading

import pytest
import torch

from deepmf import batching, prefetch, train
from deepmf.distributed import Shard
from deepmf.models import build_model
from deepmf.readers.synthetic import synthetic
from deepmf.split import leave_one_out
from deepmf.tasks import RankingTask, RatingTask
from deepmf.train import TrainConfig, fit


@pytest.fixture(scope="module")
def log():
    train_log, valid = leave_one_out(synthetic(300, 120, 6_000, seed=3).interactions)
    return train_log, valid


def task_of(log, **kwargs) -> RankingTask:
    train_log, valid = log
    return RankingTask(train_log, valid, batch_size=512, device=torch.device("cpu"),
                       num_neg=3, valid_negatives=negatives_for(valid), **kwargs)


def negatives_for(valid, n: int = 20):
    return torch.randint(0, valid.n_items, (len(valid), n),
                         generator=torch.Generator().manual_seed(9)).numpy()


def drawn_in_turn(task, epochs: int, seed: int = 5):
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(epochs):
        out.append((list(task.batches(generator)), generator.get_state()))
    return out


def drawn_ahead(task, epochs: int, ahead: int, seed: int = 5):
    ahead_of = prefetch.DrawnAhead(task.batches, torch.Generator().manual_seed(seed), ahead)
    try:
        return [(list(ahead_of.epoch()), ahead_of.get_state()) for _ in range(epochs)]
    finally:
        ahead_of.close()


def assert_same(left, right):
    assert len(left) == len(right)
    for (batches_a, state_a), (batches_b, state_b) in zip(left, right):
        assert torch.equal(state_a, state_b)  # where a snapshot would resume from
        assert len(batches_a) == len(batches_b)
        for a, b in zip(batches_a, batches_b):
            assert all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("ahead", [1, 2_000, prefetch.AHEAD_SAMPLES])
@pytest.mark.parametrize("whole_epoch", [True, False])
@pytest.mark.parametrize("loss", ["bce", "bpr"])
def test_batches_drawn_ahead_are_the_batches_drawn_in_turn(log, monkeypatch, ahead,
                                                           whole_epoch, loss):
    if not whole_epoch:  # each batch's negatives drawn when it comes (large logs)
        monkeypatch.setattr(batching, "WHOLE_EPOCH_NEGATIVES", 0)
    task = task_of(log, loss=loss)
    assert_same(drawn_ahead(task, 3, ahead), drawn_in_turn(task, 3))


def test_the_thread_draws_no_epoch_past_the_last(log):
    task = task_of(log)
    generator = torch.Generator().manual_seed(5)
    ahead = prefetch.DrawnAhead(task.batches, generator, epochs=2)
    assert_same([(list(ahead.epoch()), ahead.get_state()) for _ in range(2)],
                drawn_in_turn(task, 2))
    ahead._thread.join(timeout=30)
    assert not ahead._thread.is_alive()
    assert torch.equal(generator.get_state(), drawn_in_turn(task, 2)[-1][1])  # no 3rd draw
    with pytest.raises(RuntimeError, match="only 2 epochs"):  # rather than wait forever
        next(ahead.epoch())


def train_once(log, monkeypatch, ahead: bool, epochs: int = 3, store=None,
               compiled: bool = False):
    monkeypatch.setattr(train, "draws_ahead", lambda task: ahead)
    task = task_of(log, compiled=compiled)
    torch.manual_seed(0)
    model = build_model("gmf", task.train, dim=8)
    history = fit(model, task, TrainConfig(epochs=epochs, lr=0.01, patience=0), store=store)
    return history, model.state_dict()


def test_training_on_batches_drawn_ahead_is_training_in_turn(log, monkeypatch):
    threads = []
    start = threading.Thread.start

    def spy(thread):
        threads.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", spy)
    history_a, weights_a = train_once(log, monkeypatch, ahead=True)
    assert threads == ["deepmf-batches"]
    history_b, weights_b = train_once(log, monkeypatch, ahead=False)
    assert threads == ["deepmf-batches"]  # no second thread: in turn
    drop = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert drop(history_a) == drop(history_b)
    assert history_a[-1]["valid_hr@10"] > 0
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert not [t for t in threading.enumerate() if t.name == "deepmf-batches"]


class Memory:
    """A loop store in memory: every epoch saved, and a state to start from."""

    def __init__(self, start: dict | None = None):
        self.start, self.saved = start, []

    def load(self):
        return self.start

    def save(self, state):
        self.saved.append(copy.deepcopy(state))  # as written to disk: nothing shared


class Always:
    """A save budget that is always due (every epoch's state kept)."""

    def __init__(self, share):
        pass

    def due(self):
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_run_resumed_from_a_snapshot_drawn_ahead_ends_as_the_whole_run(log, monkeypatch):
    monkeypatch.setattr(train, "Budget", Always)
    whole = Memory()
    history, weights = train_once(log, monkeypatch, ahead=True, epochs=3, store=whole)
    assert [s["epoch"] for s in whole.saved] == [1, 2, 3]
    after_one = {**whole.saved[0], "done": False}
    resumed_history, resumed = train_once(log, monkeypatch, ahead=True, epochs=3,
                                          store=Memory(after_one))
    assert [r["loss"] for r in resumed_history] == [r["loss"] for r in history]
    assert all(torch.equal(weights[k], resumed[k]) for k in weights)


def test_an_error_while_drawing_is_raised_where_the_batches_are_taken():
    def draw(generator):
        yield (torch.zeros(4),)
        raise ValueError("the sampler failed")

    ahead = prefetch.DrawnAhead(draw, torch.Generator())
    batches = ahead.epoch()
    assert torch.equal(next(batches)[0], torch.zeros(4))
    with pytest.raises(ValueError, match="the sampler failed"):
        next(batches)
    assert not ahead._thread.is_alive()


def test_closing_mid_epoch_stops_the_thread_and_lets_go_of_its_batches():
    def draw(generator):
        for _ in range(1_000):
            yield (torch.randint(10, (100,), generator=generator),)

    ahead = prefetch.DrawnAhead(draw, torch.Generator(), ahead=500)
    batches = ahead.epoch()
    next(batches)
    ahead.close()
    assert not ahead._thread.is_alive() and ahead._ready.empty()


def test_which_runs_draw_ahead(log, monkeypatch):
    monkeypatch.setattr(prefetch, "free_cores", lambda: 2)
    task = task_of(log)
    assert prefetch.draws_ahead(task)
    assert not prefetch.draws_ahead(task_of(log, shard=Shard(0, 2)))  # a core each
    rating = RatingTask(synthetic(50, 40, 500, seed=1, ratings=True).interactions, None,
                        batch_size=64, device=torch.device("cpu"))
    assert not prefetch.draws_ahead(rating)  # a shuffle's slices: nothing to win
    monkeypatch.setattr(prefetch, "free_cores", lambda: 1)
    assert not prefetch.draws_ahead(task)  # the other core is busy
