"""The model queue: one thread, requests that wait at the same time share a batch, a bad item
fails alone, stopping refuses with a message."""

from __future__ import annotations

import threading
import time

import pytest

from clothes_extractor.serve.batcher import STOPPING, ModelQueue, ServerStopping


def _submit_all(queue: ModelQueue, run, items) -> dict:
    results: dict = {}

    def one(item):
        try:
            results[item] = queue.submit(run, item)
        except Exception as exc:  # noqa: BLE001 - checked by the tests
            results[item] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_jobs_waiting_together_share_a_batch_of_at_most_max_batch():
    queue = ModelQueue(max_batch=3)
    gate, seen = threading.Event(), []

    def slow(items):  # the first batch holds the thread while the others queue
        gate.wait(5)
        return [f"slow {i}" for i in items]

    def double(items):
        seen.append(list(items))
        return [2 * i for i in items]

    first = threading.Thread(target=queue.submit, args=(slow, 0))
    first.start()
    time.sleep(0.1)
    waiting = threading.Thread(target=lambda: results.update(_submit_all(queue, double, range(1, 8))))
    results: dict = {}
    waiting.start()
    time.sleep(0.3)
    gate.set()
    waiting.join(10)
    first.join(10)
    assert results == {i: 2 * i for i in range(1, 8)}
    assert sorted(len(b) for b in seen)[-1] == 3 and sum(len(b) for b in seen) == 7
    assert queue.stop(timeout=5)


def test_a_batch_that_fails_is_run_one_by_one_so_only_the_bad_item_fails():
    queue = ModelQueue(max_batch=8)

    def picky(items):
        if 3 in items:
            raise ValueError("3 is bad")
        return [i + 100 for i in items]

    results = _submit_all(queue, picky, range(6))
    assert isinstance(results.pop(3), ValueError)
    assert results == {i: i + 100 for i in (0, 1, 2, 4, 5)}
    queue.stop()


def test_stop_lets_the_running_batch_finish_and_refuses_the_rest():
    queue = ModelQueue(max_batch=1)
    started, release = threading.Event(), threading.Event()

    def running(items):
        started.set()
        release.wait(5)
        return ["finished" for _ in items]

    results: dict = {}
    t = threading.Thread(target=lambda: results.update(_submit_all(queue, running, ["a"])))
    t.start()
    started.wait(5)
    waiting = threading.Thread(target=lambda: results.update(_submit_all(queue, running, ["b"])))
    waiting.start()
    time.sleep(0.1)
    stopper = threading.Thread(target=queue.stop, kwargs={"timeout": 5})
    stopper.start()
    time.sleep(0.1)
    release.set()
    for th in (t, waiting, stopper):
        th.join(10)
    assert results["a"] == "finished"
    assert isinstance(results["b"], ServerStopping) and str(results["b"]) == STOPPING
    with pytest.raises(ServerStopping, match="^this server is stopping; try again once it is back$"):
        queue.submit(running, "c")
