"""The allocator setting every `python -m bench` command applies: opt-out, and no failure."""

from __future__ import annotations

import sys

import pytest

from bench import allocator


def test_opt_out_leaves_the_allocator_alone(monkeypatch):
    monkeypatch.setenv("GROKBENCH_MALLOC_TUNING", "0")
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: pytest.fail("must not be called"))
    assert allocator.tune_from_environment() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_glibc_accepts_the_thresholds():
    assert allocator.keep_freed_memory() is True
