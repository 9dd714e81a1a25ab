"""The one "did you mean ...?" hint every registry gives for an unknown name (tasks, samplers,
claims).

It lives in :mod:`tasks`, the lowest layer of the import contracts (``bench -> samplers ->
tasks``), so that every package may import it and none has to copy it. The closeness is
:func:`difflib.get_close_matches`' ratio (twice the matched characters over the total length).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, known: Iterable[str], *, n: int = 3, cutoff: float = 0.6) -> str:
    """``"did you mean 'a' or 'b'?"`` for the names of ``known`` closest to ``name``, or ``""``
    when none is close (ratio below ``cutoff``)."""
    close = difflib.get_close_matches(name, list(known), n=n, cutoff=cutoff)
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


__all__ = ["did_you_mean"]
