"""CPU settings made before torch loads (OpenMP wait policy) and the thread count."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from clothes_extractor.runtime import OPENMP_DEFAULTS, cpu_threads, openmp_wait, prefer_short_spin


def test_the_short_spin_is_set_only_where_the_user_chose_no_wait_policy():
    env: dict[str, str] = {}
    assert prefer_short_spin(env) == {"GOMP_SPINCOUNT": "10000"}
    assert env == OPENMP_DEFAULTS
    for user in ({"OMP_WAIT_POLICY": "PASSIVE"}, {"GOMP_SPINCOUNT": "0"}):
        chosen = dict(user)
        assert prefer_short_spin(chosen) == {}
        assert chosen == user


def test_the_wait_setting_reads_in_words(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv("GOMP_SPINCOUNT", "10000")
    assert openmp_wait() == "GOMP_SPINCOUNT 10000"
    monkeypatch.delenv("GOMP_SPINCOUNT")
    assert openmp_wait() == "libgomp's default wait"


def test_the_command_sets_it_before_torch_loads():
    """The environment the OpenMP runtime sees when a command imports torch."""
    code = (
        "import sys; sys.argv = ['clothes-extractor', '--version']\n"
        "from clothes_extractor import cli\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "import os; print('torch' in sys.modules, os.environ.get('GOMP_SPINCOUNT'))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split()[-2:] == ["False", "10000"]


def test_cpu_threads_sets_and_reports():
    before = torch.get_num_threads()
    try:
        assert cpu_threads(None) == before
        assert cpu_threads(1) == 1 == torch.get_num_threads()
        with pytest.raises(ValueError, match="at least 1"):
            cpu_threads(0)
    finally:
        torch.set_num_threads(before)


def test_retain_freed_memory_on_glibc():
    import platform

    from clothes_extractor.runtime import retain_freed_memory

    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert retain_freed_memory() is expected
    big = torch.empty(64 << 20, dtype=torch.uint8)  # a block past glibc's default 32 MB threshold still works
    big.fill_(1)
    assert int(big[-1]) == 1
