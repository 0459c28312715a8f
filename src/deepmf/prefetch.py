"""Batches drawn ahead: the next batches' shuffles and negatives on a thread of their own.

A training step on the CPU runs on one thread (``--threads``), and drawing an epoch's
batches (two shuffles of the positives, a rejection sampler over the pairs, the gathers
that join them) took a tenth of a ``neumf`` epoch and a sixth of a ``biased-mf`` one on
NCF ml-1m, the steps waiting meanwhile. Where another core is free, :class:`DrawnAhead`
draws them on a thread of its own while the steps run, into the next epoch too, from the
same generator in the same order, so the batches are the very ones drawn in turn and a
run gives the same numbers either way (``tests/test_prefetch.py``). The drawing thread
runs at most ``AHEAD_SAMPLES`` samples ahead of the steps. PyTorch's kernels release the
interpreter's lock, so the two threads overlap where the work is in them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator

import torch

from deepmf.device import free_cores

AHEAD_SAMPLES = 1 << 24
"""Samples the drawing thread may hold ready beyond those the steps have taken: a whole
epoch of NCF ml-1m's recipes (5M samples for ``neumf``, 9M for ``biased-mf``), about 340 MB
of batches at most."""


def draws_ahead(task) -> bool:
    """Whether a run of ``task`` draws its batches ahead: a task that says its batches may be
    drawn on another thread (``task.draws_ahead``: on the CPU, in one process) and a second
    core free of other work (:func:`deepmf.device.free_cores`) at the start."""
    return bool(getattr(task, "draws_ahead", False)) and free_cores() > 1


class _End:
    """The end of an epoch's batches, with the generator's state once they were drawn."""

    def __init__(self, state: torch.Tensor):
        self.state = state


class DrawnAhead:
    """Epochs of ``draw(generator)``'s batches, drawn on a thread while they are used.

    ``epoch()`` yields one epoch's batches in order; the thread goes on to the next epoch
    as soon as one is drawn, up to ``epochs`` of them (None: no end). ``get_state()`` is
    the generator's state at the end of the epochs taken so far, which a snapshot keeps
    (the generator itself has moved on). The thread starts with the first epoch, so a
    state restored before that is the one it draws from; ``close()`` stops it. An error
    while drawing is raised by ``epoch()``.
    """

    def __init__(self, draw: Callable[[torch.Generator], Iterable[tuple]],
                 generator: torch.Generator, ahead: int = AHEAD_SAMPLES,
                 epochs: int | None = None):
        self._draw, self._generator, self._limit = draw, generator, ahead
        self._epochs = epochs
        self._ready: queue.SimpleQueue = queue.SimpleQueue()
        self._room = threading.Condition()
        self._held, self._stop, self._thread = 0, False, None
        self._state: torch.Tensor | None = None

    def get_state(self) -> torch.Tensor:
        return self._generator.get_state() if self._state is None else self._state

    def epoch(self) -> Iterator[tuple]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="deepmf-batches",
                                            daemon=True)
            self._thread.start()
        while True:
            item, size = self._ready.get()
            if isinstance(item, BaseException):
                self.close()
                raise item
            if isinstance(item, _End):
                self._state = item.state
                return
            with self._room:
                self._held -= size
                self._room.notify()
            yield item

    def close(self) -> None:
        """Stop the thread and let go of the batches it holds."""
        with self._room:
            self._stop = True
            self._room.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        while not self._ready.empty():
            self._ready.get()

    def _run(self) -> None:
        try:
            drawn = 0
            while self._epochs is None or drawn < self._epochs:
                drawn += 1
                for batch in self._draw(self._generator):
                    if not self._put(batch, len(batch[0])):
                        return
                if not self._put(_End(self._generator.get_state()), 0):
                    return
            raise RuntimeError(f"only {self._epochs} epochs of batches were to be drawn")
        except BaseException as error:  # noqa: BLE001 - raised again by epoch()
            self._ready.put((error, 0))

    def _put(self, item, size: int) -> bool:
        """Hand ``item`` over once there is room for its ``size`` samples (always when
        nothing else is held); False once stopped."""
        with self._room:
            self._room.wait_for(lambda: self._stop or self._held == 0
                                or self._held + size <= self._limit)
            if self._stop:
                return False
            self._held += size
        self._ready.put((item, size))
        return True
