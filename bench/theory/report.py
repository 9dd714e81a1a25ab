"""The claims' pages: ``reports/theory/<task>/<claim>.md`` with its figure (PNG, and SVG beside
it), and the index ``reports/theory/README.md``.

Figures follow :mod:`bench.plots`' style (its ``STYLE``; fixed SVG ids and no dates, so the same
numbers give the same bytes); files are written whole or not at all (:mod:`bench.files`).
Censored chains are drawn as open upward triangles at their censoring time: the truth lies
above them.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter  # noqa: E402

from bench.files import atomic_write, publish  # noqa: E402
from bench.plots import STYLE  # noqa: E402
from bench.theory.claims import ClaimResult, Table  # noqa: E402

COLORS = plt.get_cmap("tab10").colors
_METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}
PANEL = (3.2, 2.5)  # inches per panel
ARM_MARKERS = {"full": "o", "minibatch": "s"}


# -- pages ------------------------------------------------------------------------------------
def render_table(table: Table) -> list[str]:
    lines = ["| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return lines


def render_page(
    result: ClaimResult, task: str, header: Mapping[str, str], figure: str | None
) -> str:
    lines = [f"# {task}: {result.title}", "", f"**Claim.** {result.prediction}", ""]
    lines += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in header.items()] + [""]
    lines += ["## Setup", ""] + [f"- {s}" for s in result.setup] + [""]
    lines += ["## Verdict", "", result.verdict or "No verdict: no fit.", ""]
    if figure:
        lines += [f"![{result.figure_caption}]({figure})", "", f"*{result.figure_caption}*", ""]
    for sec in result.sections:
        lines += [f"## {sec.title[0].upper()}{sec.title[1:]}", ""]
        for caption, table in sec.tables:
            lines += [caption, ""] + render_table(table) + [""]
        for note in sec.notes:
            lines += [note, ""]
        if sec.verdict:
            lines += [f"**Verdict.** {sec.verdict}", ""]
    lines += [
        "## Method",
        "",
        "Times are in steps, known to the evaluation grid: an observed t_grok lies in "
        "(t − e, t], a chain that did not grok is right-censored; each fit maximizes the "
        "likelihood of these intervals (bench/theory/fits.py, statsmodels' "
        "GenericLikelihoodModel), so no censored time is fitted as observed. Intervals of a "
        "fitted parameter are profile-likelihood intervals; AIC compares laws on the same "
        "chains. Exponents of distances are least-squares slopes on log–log axes "
        "(scipy.optimize.curve_fit) with percentile-bootstrap intervals. Diverged chains are "
        "left out and counted.",
        "",
        "Store keys of the runs: " + ", ".join(f"`{k}`" for k in result.runs),
        "",
    ]
    return "\n".join(lines)


def render_index(pages: Mapping[str, Mapping[str, tuple[ClaimResult | None, str]]]) -> str:
    """``pages``: task -> claim -> (result, page path relative to the index)."""
    lines = [
        "# The thermodynamic predictions, measured",
        "",
        "`python -m bench theory [CLAIM ...] --task T` runs each claim's sweep through the "
        "store (reused on rerun, resumable) and writes one page per claim: the fitted law with "
        "its interval, the competing law, a model comparison and a verdict "
        "(bench/theory/).",
        "",
    ]
    for task, claims in sorted(pages.items()):
        lines += [f"## {task}", ""]
        known = [r for r, _ in claims.values() if r is not None and len(r.setup) == 2]
        presets = sorted({r.setup[0] for r in known if r.setup[0]})
        if known:
            minutes = sum(float(r.setup[1]) for r in known)
            lines += [
                f"Preset {', '.join(f'`{p}`' for p in presets) or '–'}; {minutes:.1f} min of "
                "worker time for the runs behind these pages (two run side by side on two "
                "cores).",
                "",
            ]
        lines += ["| claim | result | verdict |", "|---|---|---|"]
        for claim, (result, path) in claims.items():
            if result is None:
                lines.append(f"| [{claim}]({path}) | – | – |")
                continue
            summary = "; ".join(f"{k}: {v}" for k, v in result.summary.items()) or "–"
            first = _first_sentence(result.verdict)
            lines.append(f"| [{claim}]({path}) | {summary} | {first} |")
        lines.append("")
    return "\n".join(lines)


def _first_sentence(text: str) -> str:
    text = re.sub(r"\*\*[^*]+\*\*: ", "", text or "")
    return (text.split(". ")[0].rstrip(".") + ".") if text else "–"


def write_claim(result: ClaimResult, folder: Path, task: str, header: Mapping[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    figure = FIGURES[result.claim](result.panels)
    name = None
    if figure is not None:
        png = folder / f"{result.claim}.png"
        save(figure, png)
        name = png.name
    page = folder / f"{result.claim}.md"
    atomic_write(page, render_page(result, task, header, name))
    return page


# -- figures ----------------------------------------------------------------------------------
def save(fig, png: Path) -> list[Path]:
    """Write ``png`` and its SVG twin, each whole or not at all."""
    written = []
    try:
        for target in (png, png.with_suffix(".svg")):
            fmt = target.suffix.lstrip(".")
            fd, tmp = tempfile.mkstemp(
                dir=target.parent, prefix=f".{target.name}.", suffix=f".{fmt}"
            )
            os.close(fd)
            try:
                with plt.rc_context(STYLE):
                    fig.savefig(tmp, format=fmt, dpi=150, metadata=_METADATA[fmt])
                publish(tmp, target)
                written.append(target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    finally:
        plt.close(fig)
    return written


def _figure(n: int):
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            1, max(n, 1), figsize=(PANEL[0] * max(n, 1), PANEL[1]), squeeze=False
        )
    return fig, axes[0]


def _scatter_times(ax, x, times, color, label=None, marker="o"):
    obs = times.observed
    y = times.point()
    ax.scatter(x[obs], y[obs], s=14, color=color, marker=marker, label=label, zorder=3)
    if (~obs).any():
        ax.scatter(
            x[~obs], y[~obs], s=22, facecolors="none", edgecolors=color, marker="^", zorder=3
        )


def _plain_ticks(ax) -> None:
    """Plain numbers (not powers of ten) on log axes, as bench/plots.py draws them."""
    for axis, scale, limits in (
        (ax.xaxis, ax.get_xscale(), ax.get_xlim()),
        (ax.yaxis, ax.get_yscale(), ax.get_ylim()),
    ):
        if scale == "log" and limits[0] > 1e-4 and limits[1] < 1e5:
            formatter = ScalarFormatter()
            formatter.set_scientific(False)
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(formatter)
            axis.set_minor_formatter(NullFormatter())


def _legend(ax) -> None:
    _plain_ticks(ax)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize=6)


def _title(panel: Mapping[str, Any]) -> str:
    return "full batch" if panel["arm"] == "full" else "minibatch"


def tmem_figure(panels: Sequence[Mapping[str, Any]]):
    if not panels:
        return None
    fig, axes = _figure(len(panels))
    for ax, p in zip(axes, panels, strict=True):
        with plt.rc_context(STYLE):
            etas = sorted(set(p["eta"]))
            for i, eta in enumerate(etas):
                m = p["eta"] == eta
                _scatter_times(ax, p["x"][m], p["times"].subset(m), COLORS[i % 10], f"η = {eta:g}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            if "power" in p:
                xs = np.geomspace(p["x"].min(), p["x"].max(), 50)
                fit = p["power"]
                ax.plot(
                    xs,
                    np.exp(fit["a"] + fit["b"] * np.log(xs)),
                    color="k",
                    lw=1.2,
                    label=f"fit: slope {fit['b']:.2f}",
                )
                cx, cy = (
                    np.exp(np.mean(np.log(p["x"]))),
                    np.exp(fit["a"] + fit["b"] * np.mean(np.log(p["x"]))),
                )
                ax.plot(xs, cy * (xs / cx) ** 2, color="grey", ls="--", lw=1, label="slope 2")
                pred = p["x"] + math.exp(p["decay"]["log_c"]) * p["drive"]
                ax.scatter(
                    p["x"], pred, marker="x", s=14, color="grey", label="norm-decay law", zorder=2
                )
                pred = p["x"] + math.exp(p["scale"]["log_c"]) / p["rate"]
                ax.scatter(
                    p["x"], pred, marker="+", s=18, color="k", label="decay-time law", zorder=2
                )
            ax.set_xlabel("t_mem (steps)")
            ax.set_ylabel("t_grok (steps)")
            ax.set_title(_title(p))
            _legend(ax)
    fig.tight_layout()
    return fig


def drift_figure(panels: Sequence[Mapping[str, Any]]):
    if not panels:
        return None
    arms = list(dict.fromkeys(p["arm"] for p in panels))
    fig, axes = _figure(len(arms))
    for ax, arm in zip(axes, arms, strict=True):
        with plt.rc_context(STYLE):
            for p in (q for q in panels if q["arm"] == arm):
                s, w = p["steps"], p["window"]
                ls = "-" if p["start"] == "memorized" else ":"
                for key, color in (("drift", COLORS[3]), ("spread", COLORS[0])):
                    y = p[key]
                    ok = (s > 0) & (y > 0)
                    ax.plot(s[ok], y[ok], color=color, ls=ls, lw=1, label=f"{key} ({p['start']})")
                    f = p["fitted"][key]
                    if f is not None and w.any():
                        xs = s[w]
                        ax.plot(xs, f(xs), color="k", lw=0.8)
                if w.any():
                    ax.axvspan(
                        s[w].min(), s[w].max(), color="grey" if ls == "-" else "tan", alpha=0.08
                    )
            ax.set_xscale("log")
            ax.set_yscale("log")
            lo, hi = ax.get_xlim()
            ylo, yhi = ax.get_ylim()
            xs = np.geomspace(lo, hi, 10)
            mid = math.sqrt(ylo * yhi)
            ax.plot(xs, mid * xs / math.sqrt(lo * hi), color="grey", lw=0.6, ls="--")
            ax.plot(xs, mid * np.sqrt(xs / math.sqrt(lo * hi)), color="grey", lw=0.6, ls="-.")
            ax.set_ylim(ylo, yhi)
            ax.set_xlabel("steps from the start")
            ax.set_ylabel("distance")
            ax.set_title(_title({"arm": arm}))
            _legend(ax)
    fig.tight_layout()
    return fig


def fraction_figure(panels: Sequence[Mapping[str, Any]]):
    if not panels:
        return None
    fig, axes = _figure(len(panels))
    for ax, p in zip(axes, panels, strict=True):
        with plt.rc_context(STYLE):
            _scatter_times(ax, p["f"], p["times"], COLORS[0], "chains")
            ax.set_yscale("log")
            if "expo" in p:
                fs = np.linspace(p["f"].min(), p["f"].max(), 50)
                e, w = p["expo"], p["power"]
                ax.plot(fs, np.exp(e["a"] + e["b"] * fs), color="k", lw=1.2, label="exponential")
                ax.plot(
                    fs,
                    np.exp(w["a"] + w["k"] * np.log(fs)),
                    color="k",
                    ls="--",
                    lw=1,
                    label="power law",
                )
                mid = float(np.mean(fs))
                y0 = math.exp(e["a"] + e["b"] * mid)
                lo = y0 * np.exp(-100 * math.log(1.40) * (fs - mid))
                hi = y0 * np.exp(-100 * math.log(1.50) * (fs - mid))
                ax.fill_between(
                    fs,
                    np.minimum(lo, hi),
                    np.maximum(lo, hi),
                    color="grey",
                    alpha=0.2,
                    label="Power et al. +40–50 %/−1 %",
                )
                ax.set_ylim(*_ylim(p["times"]))
            ax.set_xlabel("training fraction")
            ax.set_ylabel("t_grok (steps)")
            ax.set_title(_title(p))
            _legend(ax)
    fig.tight_layout()
    return fig


def _ylim(times) -> tuple[float, float]:
    y = times.point()
    return float(y.min()) / 2, float(y.max()) * 2


def eyring_figure(panels: Sequence[Mapping[str, Any]]):
    if not panels:
        return None
    arms = list(dict.fromkeys(p["arm"] for p in panels))
    fig, axes = _figure(len(arms))
    samplers = list(dict.fromkeys(p["sampler"] for p in panels))
    for ax, arm in zip(axes, arms, strict=True):
        with plt.rc_context(STYLE):
            for p in (q for q in panels if q["arm"] == arm):
                color = COLORS[samplers.index(p["sampler"]) % 10]
                from bench.theory.claims import km_median

                levels = sorted(set(p["tau"]))
                for lv in levels:
                    sub = p["times"].subset(p["tau"] == lv)
                    med = km_median(sub)[0]
                    if med is not None:
                        ax.scatter(1 / lv, 1 / med, color=color, s=16, zorder=3)
                    else:
                        ax.scatter(
                            1 / lv,
                            1 / float(sub.lower.max()),
                            facecolors="none",
                            edgecolors=color,
                            marker="v",
                            s=22,
                            zorder=3,
                        )
                if "fit" in p:
                    xs = np.geomspace(min(1 / t for t in levels), max(1 / t for t in levels), 50)
                    f = p["fit"]
                    ax.plot(
                        xs,
                        np.exp(-(f["a"] + p["dF"] * xs)),
                        color=color,
                        lw=1,
                        label=f"{p['sampler']}: ΔF = {p['dF']:.2g}",
                    )
                    ax.axhline(math.exp(-p["flat"]["a"]), color=color, lw=0.7, ls=":")
            ax.set_yscale("log")
            ax.set_xscale("log")
            ax.set_xlabel("1/τ")
            ax.set_ylabel("rate = 1 / median t_grok (per step)")
            ax.set_title(_title({"arm": arm}))
            _legend(ax)
    fig.tight_layout()
    return fig


def decay_figure(panels: Sequence[Mapping[str, Any]]):
    if not panels:
        return None
    fig, axes = _figure(len(panels))
    for ax, p in zip(axes, panels, strict=True):
        with plt.rc_context(STYLE):
            for i, lv in enumerate(p["levels"]):
                m = p["tau"] == lv
                color = COLORS[i % 10]
                _scatter_times(ax, p["lam"][m], p["times"].subset(m), color, f"τ = {lv:g}")
                if "fit" in p:
                    f = p["fit"]
                    shift = 0.0 if i == 0 else f[f"τ={_short(lv)}"]
                    ls = np.geomspace(p["lam"].min(), p["lam"].max(), 20)
                    ax.plot(ls, np.exp(f["a"] + f["b"] * np.log(ls) + shift), color=color, lw=1)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("prior precision λ")
            ax.set_ylabel("t_grok (steps)")
            ax.set_title(_title(p))
            _legend(ax)
    fig.tight_layout()
    return fig


def _short(v: float) -> str:
    from bench.theory.claims import fmt

    return fmt(v)


FIGURES = {
    "tgrok_tmem2": tmem_figure,
    "drift_diffusion": drift_figure,
    "fraction": fraction_figure,
    "eyring": eyring_figure,
    "weight_decay": decay_figure,
}
