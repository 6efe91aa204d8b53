"""One thread for the models: requests that wait at the same time share one batch.

Every model call of the server (the segmenter, the generator) goes through a :class:`ModelQueue`:
a request hands in its prepared input and waits; the queue's one thread takes the oldest waiting
job and every other waiting job for the same model (up to ``max_batch``) and runs them as one
batch. Nothing waits for a batch to fill: under light load a batch is one photo, under load the
photos that queued while the previous batch ran. Decoding, the preview and the PNGs are done by
the requests' own threads, beside the model, never by this one.

On a GPU a batch of 8 costs little more than one photo; on a CPU it pays less, but the one
thread also keeps torch's own threads from being shared by several requests at once
(docs/speed.md, "serve").

:meth:`ModelQueue.stop` refuses new jobs (:data:`STOPPING`), lets the batch being run finish and
refuses the jobs still waiting: `serve` calls it on SIGTERM or Ctrl-C before it removes its files.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from clothes_extractor.errors import ClothesExtractorError

STOPPING = "this server is stopping; try again once it is back"


class ServerStopping(ClothesExtractorError):
    """A request refused (or cut short) because the server is shutting down."""

    def __init__(self, message: str = STOPPING) -> None:
        super().__init__(message)


@dataclass(eq=False)
class _Job:
    run: Callable[[Sequence[Any]], Sequence[Any]]
    item: Any
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class ModelQueue:
    """Runs ``run(items) -> results`` batches on one thread; :meth:`submit` one item and wait.

    Jobs are batched with the others of the same ``run`` function (one per model). A batch that
    raises is run again one item at a time, so that a bad photo fails alone.
    """

    def __init__(self, max_batch: int = 8, name: str = "clothes-extractor-models") -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.max_batch = max_batch
        self.batches: list[int] = []  # sizes of the last batches run (for details, tests)
        self._jobs: deque[_Job] = deque()
        self._cv = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, run: Callable[[Sequence[Any]], Sequence[Any]], item: Any) -> Any:
        """``run([item, ...])[i]`` for this item, batched with the other jobs of ``run`` waiting."""
        job = _Job(run, item)
        with self._cv:
            if self._stopping:
                raise ServerStopping()
            self._jobs.append(job)
            self._cv.notify()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def stop(self, timeout: float | None = None) -> bool:
        """Refuse new jobs and the waiting ones, let the running batch finish (at most
        ``timeout`` s); True when the thread is done."""
        with self._cv:
            self._stopping = True
            waiting, self._jobs = list(self._jobs), deque()
            self._cv.notify_all()
        for job in waiting:
            job.error = ServerStopping()
            job.done.set()
        if threading.current_thread() is self._thread:  # stopped from a batch: it ends after it
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def _next_batch(self) -> list[_Job] | None:
        with self._cv:
            while not self._jobs and not self._stopping:
                self._cv.wait()
            if self._stopping:
                return None
            run = self._jobs[0].run
            batch = [j for j in self._jobs if j.run is run][: self.max_batch]
            taken = set(map(id, batch))
            self._jobs = deque(j for j in self._jobs if id(j) not in taken)
            return batch

    def _loop(self) -> None:
        while (batch := self._next_batch()) is not None:
            self.batches = [*self.batches[-99:], len(batch)]
            self._run(batch)

    @staticmethod
    def _run(batch: list[_Job]) -> None:
        try:
            results = list(batch[0].run([j.item for j in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} gave {len(results)} results")
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
            if len(batch) > 1:  # one at a time: only the bad one fails
                for job in batch:
                    ModelQueue._run([job])
                return
            batch[0].error = exc
            batch[0].done.set()
            return
        for job, result in zip(batch, results):
            job.result = result
            job.done.set()
