"""Numbers as the pages print them: counts, settings, medians with intervals, ratios, durations."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from bench.metrics import Ratio, Survival

AXIS_NAMES = {"prior_precision": "λ", "temperature": "τ", "eta": "η", "num_leapfrog": "L"}


def axis_name(key: str) -> str:
    return AXIS_NAMES.get(key, key)


def sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def integer(value: Any) -> str:
    if value is None:
        return "?"
    return f"{float(value):,.0f}"


def number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(number(v) for v in value) + ")"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == 0:
            return "0"
        return f"{value:.3g}"
    return str(value)


def hparams(hparams: Mapping[str, Any], symbols: bool = True) -> str:
    name = axis_name if symbols else str
    return ", ".join(f"{name(k)}={number(v)}" for k, v in hparams.items())


def value(x: float, *, seconds: bool = False, ratio: bool = False) -> str:
    if seconds:
        return f"{x:.3g}" if x < 100 else f"{x:,.0f}"
    if ratio:
        return f"{x:.2f}" if x < 100 else f"{x:,.0f}"
    return f"{x:,.0f}"


def median(s: Survival | None, *, seconds: bool = False, ratio: bool = False) -> str:
    if s is None:
        return "–"
    if s.median is None:
        return f"> {value(s.last, seconds=seconds, ratio=ratio)}"
    return value(s.median, seconds=seconds, ratio=ratio)


def median_ci(s: Survival, grid: int = 0) -> str:
    if s.median is None:
        return f"not reached (> {value(s.last)})"
    low = "?" if s.median_low is None else value(max(0.0, s.median_low - grid))
    high = "∞" if s.median_high is None else value(s.median_high)
    return f"**{value(s.median)}** ({low} – {high})"


def hours(hours: float) -> str:
    minutes = hours * 60
    return f"{minutes:.1f} min" if minutes < 90 else f"{hours:.1f} h"


def ratio(r: Ratio | None) -> str:
    if r is None or r.value is None:
        return "– (neither reached)"
    if r.value == 0:
        return "not reached"
    if math.isinf(r.value):
        return "∞ (only this row reached)"

    def f(x: float | None) -> str:
        if x is None:
            return "?"
        if math.isinf(x):
            return "∞"
        return f"{x:.2f}"

    return f"{f(r.value)}× ({f(r.low)} – {f(r.high)})"
