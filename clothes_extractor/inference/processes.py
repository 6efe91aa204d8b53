"""Folder mode on several GPUs and machines: ``torchrun ... clothes-extractor extract --images``.

Started by ``torchrun`` (WORLD_SIZE > 1), each process of `extract --images` and `segment
--images` runs on its own device (``cuda:LOCAL_RANK``, or the CPU) and takes its share of the
photos: the folder's jobs in their order (the ids, sorted) in chunks of ``--batch-size``, every
WORLD_SIZE-th chunk from its RANK, each chunk one batch as in one process (a photo meets the
same others in the model). The split is made before looking at what exists, so a rerun splits the same way and each
process skips the outputs of its own share that are there: a killed job resumes. The outputs
are the files one process writes. At the end the processes gather their reports over gloo (the
only traffic between them; the GPUs never talk) and every process holds the job's report, in
job order; rank 0 alone draws the progress bar, prints it and exits with its code (a failed
photo: 1, which torchrun passes on after listing rank 0 as failed); the others end with 0.

Without torchrun nothing here does anything: one process, all the photos.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from clothes_extractor.distributed import Dist, all_gather_objects, barrier, close_distributed, init_distributed
from clothes_extractor.inference.folder import FolderReport, merge_reports
from clothes_extractor.inference.output import check_output_folder

# How long a finished process waits for the slowest at the end (and rank 0's folder check at
# the start): a share of a large folder can take hours.
GATHER_TIMEOUT = timedelta(hours=24)


@contextlib.contextmanager
def folder_processes(device: str) -> Iterator[Dist]:
    """This process's place in a folder run: under torchrun, joined to the group (gloo) on the
    device of its LOCAL_RANK, left at the end; else the one process on ``device``."""
    ctx = init_distributed(device, backend="gloo", timeout=GATHER_TIMEOUT)
    try:
        yield ctx
    finally:
        close_distributed(ctx)


def check_shared_output(out: str | os.PathLike, ctx: Dist) -> Path:
    """:func:`check_output_folder` for every process, rank 0 first: it checks and makes the
    folder, then the others check it. (Each at once would race: a check removes the folder it
    made while another process probes it.)"""
    out = Path(out)
    if ctx.main:
        check_output_folder(out)
        if ctx.active:
            out.mkdir(parents=True, exist_ok=True)
    barrier(ctx)
    if not ctx.main:
        check_output_folder(out)
    return out


def share(ctx: Dist) -> tuple[int, int]:
    """(rank, processes): the ``share`` argument of the folder functions."""
    return ctx.rank, ctx.world


def gather_report(report: FolderReport, ctx: Dist) -> FolderReport:
    """The job's report from this process's: every process's merged in job order (on every
    process); the report itself for a single process."""
    if not ctx.active:
        return report
    return merge_reports(all_gather_objects(report, ctx))
