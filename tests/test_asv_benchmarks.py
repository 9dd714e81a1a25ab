"""The asv suite: every benchmark module imports and every benchmark runs once, so a broken
benchmark fails CI instead of a user's ``asv run``.

Each benchmark runs as asv would call it (``setup_cache`` once per class, then ``setup``, the
benchmark, ``teardown``) on the smallest parameters: the light task and one chain, for every
sampler. The quality training and the throughput runs are shrunk to a few steps.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import numbers
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import bench.asv_benchmarks as suite
import samplers
import tasks
from bench import metrics
from bench.asv_benchmarks import common, cost, quality

ROOT = Path(__file__).resolve().parents[1]
PREFIXES = ("time_", "timeraw_", "mem_", "peakmem_", "track_")
MODULES = [
    importlib.import_module(f"{suite.__name__}.{info.name}")
    for info in pkgutil.iter_modules(suite.__path__)
]


def _collect():
    """(module, class or None, benchmark name, params), the smallest parameters of each axis
    except the sampler, which runs every value."""
    cases = []
    for module in MODULES:
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and obj.__module__ == module.__name__:
                methods = [m for m in vars(obj) if m.startswith(PREFIXES)]
                for combo in _smallest(obj):
                    cases += [(module, obj, m, combo) for m in methods]
            elif inspect.isfunction(obj) and name.startswith(PREFIXES):
                cases += [(module, None, name, combo) for combo in _smallest(obj)]
    return cases


def _smallest(obj) -> list[tuple]:
    params = getattr(obj, "params", None)
    if params is None:
        return [()]
    names = list(getattr(obj, "param_names", ()))
    if params and not isinstance(params[0], (list, tuple)):
        params = [params]
    axes = []
    for i, values in enumerate(params):
        values = list(values)
        axes.append(values if i < len(names) and names[i] == "sampler" else values[:1])
    combos = [()]
    for values in axes:
        combos = [c + (v,) for c in combos for v in values]
    return combos


CASES = _collect()


@pytest.fixture(scope="module", autouse=True)
def shrunk():
    """A few steps instead of the real budgets; the thread count restored afterwards."""
    threads = torch.get_num_threads()
    patch = pytest.MonkeyPatch()
    patch.setattr(quality, "SEEDS", 2)
    patch.setattr(quality, "BUDGET", 40)  # gradient evaluations
    patch.setattr(quality, "EVAL_EVERY", 10)
    patch.setattr(cost, "THROUGHPUT_SECONDS", 0.01)
    patch.setattr(cost, "THROUGHPUT_REPEATS", 1)
    patch.setattr(cost, "THROUGHPUT_STEPS", (2, 3))
    yield
    patch.undo()
    torch.set_num_threads(threads)


_CACHES: dict[type, object] = {}


def _cache(cls):
    if cls not in _CACHES:
        _CACHES[cls] = cls().setup_cache()
    return _CACHES[cls]


def _case_id(module, cls, name, params) -> str:
    where = module.__name__.rsplit(".", 1)[-1] + (f".{cls.__name__}" if cls else "")
    return f"{where}.{name}[{'-'.join(map(str, params))}]"


@pytest.mark.parametrize("module, cls, name, params", CASES, ids=[_case_id(*c) for c in CASES])
def test_benchmark_runs_once(module, cls, name, params):
    if cls is None:
        func, owner = getattr(module, name), module
    else:
        owner = cls()
        func = getattr(owner, name)
    args = list(params)
    if cls is not None and hasattr(cls, "setup_cache"):
        args.insert(0, _cache(cls))
    try:
        if hasattr(owner, "setup"):
            owner.setup(*args)
    except NotImplementedError as skip:  # asv's way of skipping a parameter combination
        pytest.skip(str(skip))
    value = func(*args)
    if hasattr(owner, "teardown"):
        owner.teardown(*args)

    if name.startswith("track_"):
        assert isinstance(value, numbers.Real) and not isinstance(value, bool), value
        if module is cost:
            assert math.isfinite(value) and value > 0
        else:  # quality figures are NaN when the budget runs out first, never the budget
            assert math.isnan(value) or value >= 0
    else:
        assert value is None


def test_every_benchmark_is_collected():
    names = {f"{c.__name__}.{n}" if c else n for _, c, n, _ in CASES}
    expected = {
        "SamplerStep.time_step",
        "SamplerStep.peakmem_step",
        "DevicePeakMemory.track_device_peak_bytes",
        "ChainThroughput.track_chain_steps_per_second",
        "Grokking.track_steps_to_grok",
        "Grokking.track_grad_evals_to_grok",
        "Grokking.track_steps_to_memorize",
        "Grokking.track_fraction_not_grokked",
        "Grokking.track_final_val_error",
    }
    assert expected <= names


def test_quality_reports_nan_when_nothing_groks():
    figures = _cache(quality.Grokking)
    for sampler in common.SAMPLERS:
        assert "error" not in figures[sampler], figures[sampler]
    # 40 gradient evaluations are far too few to grok: every sampler reports NaN, not the budget.
    assert all(math.isnan(figures[s]["t_grok"]) for s in common.SAMPLERS)
    assert all(figures[s]["grok_fraction"] == 0.0 for s in common.SAMPLERS)


def test_every_registered_sampler_is_benchmarked():
    assert sorted(common.registered_samplers()) == sorted(common.SAMPLERS)
    for sampler in common.SAMPLERS:
        hparams, _ = common.sampler_config(sampler, tasks.make(common.LIGHT_TASK))
        samplers.make(sampler, **hparams)  # valid hyperparameters


def test_tasks_exist_and_light_reference_is_adamw():
    for name in common.TASKS:
        tasks.make(name)
    assert tasks.make(common.LIGHT_TASK).reference["sampler"] == "adamw"


@pytest.mark.parametrize(
    "times, expected",
    [
        ([100, 300, 200, 400], 250.0),  # KM flat at ½ between 200 and 300: the midpoint
        ([100, None, 200], 200.0),
        ([100, None, None, None], math.nan),  # half not reached: NaN, not the budget
        ([None], math.nan),
        ([], math.nan),
        ([7], 7.0),
    ],
)
def test_median_to_target_is_the_leaderboards_median(times, expected):
    """One censored median in the suite: asv's figure equals :func:`bench.metrics.median_time`
    (until this test, asv took the 2nd of 4 and reported 200 where the board said 250)."""
    censored_at = [1000] * len(times)
    got = common.median_to_target(times, censored_at)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected
    if times and not math.isnan(expected):
        assert got == metrics.median_time(times, censored_at)


def test_asv_config():
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    assert conf["environment_type"] == "existing"
    assert (ROOT / conf["benchmark_dir"]).resolve() == Path(suite.__file__).parent
    assert Path(conf["benchmark_dir"]).name != "asv"  # asv would import itself
    ignored = (ROOT / ".gitignore").read_text().split()
    for key in ("results_dir", "html_dir", "env_dir"):
        top = Path(conf[key]).parts[0]
        assert f"/{top}/" in ignored or f"{top}/" in ignored, f"{conf[key]} is not git-ignored"


def test_asv_check_finds_no_problems():
    """asv's own discovery and signature check, in a subprocess as ``asv run`` does it."""
    pytest.importorskip("asv")
    proc = subprocess.run(
        [sys.executable, "-m", "asv", "check", "--config", str(ROOT / "asv.conf.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No problems found" in proc.stdout, proc.stdout + proc.stderr
