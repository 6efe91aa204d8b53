"""Process pools for the data commands (`downsample`, `split`, `prepare`, `dedup`).

Their workers ignore Ctrl-C. A terminal sends SIGINT to the whole process group; the parent
alone reacts (KeyboardInterrupt, then leaving the pool's ``with`` block terminates the workers),
so the user sees one line and no traceback from each worker.

No torch and no numpy here: the data commands start fast.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator
from multiprocessing.pool import Pool


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _start_worker(initializer: Callable[..., None] | None, initargs: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)


@contextlib.contextmanager
def process_pool(workers: int, initializer: Callable[..., None] | None = None, initargs: tuple = ()) -> Iterator[Pool]:
    """A pool of ``workers`` processes whose workers ignore SIGINT; leaving the block terminates
    them. On Linux the workers fork (instant start): open it before any thread exists (a
    progress bar)."""
    method = "fork" if sys.platform.startswith("linux") else None
    context = multiprocessing.get_context(method)
    with context.Pool(workers, initializer=_start_worker, initargs=(initializer, initargs)) as pool:
        yield pool
