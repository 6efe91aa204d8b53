"""Start `clothes-extractor serve` many times, quickly: torch and the models' libraries imported
once here, then each server is a fork of this process running the real command line.

Used by test_shutdown.py. Reads commands on stdin, one a line, answers on stdout:

- ``serve TMPDIR LOG ARGS...`` -> ``pid PID``: a child runs ``clothes-extractor serve ARGS``
  with TMPDIR as its temporary folder, its output to LOG; then, once it has exited,
  ``exit CODE`` (negative: killed by that signal, e.g. -6 for SIGABRT).

gradio is not imported here: it fixes some of its folders at import, from GRADIO_TEMP_DIR, which
`serve` sets first. No thread is started here either, so that forking is safe.
"""

from __future__ import annotations

import os
import sys
import tempfile

from clothes_extractor.runtime import prefer_short_spin

prefer_short_spin()  # as clothes_extractor.cli.main does, before torch
import torch  # noqa: E402,F401  - imported once, for every child

import clothes_extractor.cli  # noqa: E402,F401
import clothes_extractor.inference.extractor  # noqa: E402,F401
import clothes_extractor.inference.segmenter  # noqa: E402,F401
import clothes_extractor.serve.engine  # noqa: E402,F401


def child(tmp: str, log: str, args: list[str]) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdin.close()
    os.environ.update(TMPDIR=tmp, GRADIO_ANALYTICS_ENABLED="False", NO_PROXY="127.0.0.1,localhost")
    os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
    tempfile.tempdir = None  # gettempdir() again, from TMPDIR
    sys.argv = ["clothes-extractor", "serve", *args]
    from clothes_extractor.cli import main

    main()  # SystemExit: the interpreter ends as the real command's does


def loop() -> None:
    for line in sys.stdin:
        cmd, *rest = line.split()
        if cmd != "serve":
            raise SystemExit(f"unknown command {cmd!r}")
        tmp, log, *args = rest
        pid = os.fork()
        if pid == 0:
            child(tmp, log, args)
            os._exit(99)  # not reached: main() exits
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)


if __name__ == "__main__":
    loop()
