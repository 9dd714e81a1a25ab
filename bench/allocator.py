"""Keep freed memory in the process: glibc's ``mallopt`` thresholds for the training commands.

By default glibc hands every freed block above a dynamic threshold (128 KiB to 32 MiB) back to
the kernel with ``munmap`` and maps fresh pages for the next allocation of that size, paying a
page fault per 4 KiB on first touch. A training step allocates and frees the same activation and
gradient buffers every time, so that round trip is pure overhead. Raising ``M_MMAP_THRESHOLD``
and ``M_TRIM_THRESHOLD`` to 1 GiB makes glibc recycle them instead. Measured side by side on the
2-core development VM, AdamW through :func:`bench.run.run`, 1 thread, ms per step::

                            1 chain        16 chains
    add_mod31_mlp         2.16 -> 1.23   28.1 -> 18.0
    add_mod31_quadratic   2.53 -> 1.54   42.0 -> 31.4

The cost: the process keeps up to 1 GiB of freed memory instead of returning it. Every
``python -m bench`` command applies it; set ``GROKBENCH_MALLOC_TUNING=0`` to opt out. It is
process-wide and changes no number, only time. (``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=
1073741824:glibc.malloc.trim_threshold=1073741824`` does the same for any process.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 2**30


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds; False where there is no glibc or it refuses."""
    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, _THRESHOLD)
        )
    except (OSError, AttributeError):
        return False


def tune_from_environment() -> bool:
    """:func:`keep_freed_memory` unless ``GROKBENCH_MALLOC_TUNING=0``."""
    if os.environ.get("GROKBENCH_MALLOC_TUNING", "1") == "0":
        return False
    return keep_freed_memory()
