"""One torch thread per job on a CPU by default (bench.run.run's ``threads``, the previous
setting restored), and ``torch.compile`` of the potential (``compile``): the same trajectory,
its time reported apart. The real inductor compile (a minute on two cores) runs with -m slow."""

from __future__ import annotations

import functools
import json

import pytest
import torch

import tasks
from bench.__main__ import main
from bench.run import cpu_threads, run
from bench.spec import RunSpec

TINY = "add_mod7_mlp"


@pytest.fixture
def tiny():
    return tasks.make(TINY, width=32, d_embed=16)


@pytest.fixture
def two_threads():
    """torch set to two threads, as a caller may have left it; restored after the test."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _threads_seen(task, **kwargs) -> tuple[set[int], object]:
    seen: set[int] = set()

    def look(step, metrics, theta):
        seen.add(torch.get_num_threads())

    result = run(
        task, RunSpec("adamw", seeds=range(2), budget=20, eval_every=10), on_eval=look, **kwargs
    )
    return seen, result


def test_run_is_single_threaded_on_a_cpu_by_default_and_restores_the_setting(tiny, two_threads):
    seen, result = _threads_seen(tiny, device="cpu")
    assert seen == {1} and result.device == "cpu (1 threads)"
    assert torch.get_num_threads() == 2  # restored
    seen, result = _threads_seen(tiny, device="cpu", threads=None)  # leave torch's setting
    assert seen == {2} and result.device == "cpu (2 threads)"
    with pytest.raises(ValueError, match="threads must be at least 1"):
        run(tiny, RunSpec("adamw", budget=1), threads=0)
    assert torch.get_num_threads() == 2


def test_cpu_threads_restores_after_an_error(two_threads):
    with pytest.raises(RuntimeError), cpu_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError
    assert torch.get_num_threads() == 2
    with cpu_threads(None):
        assert torch.get_num_threads() == 2


def test_the_run_command_takes_threads_and_refuses_zero(capsys, two_threads):
    args = ["run", "--task", TINY, "--sampler", "sgd", "--budget", "3", "--device", "cpu"]
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["device"] == "cpu (1 threads)"
    assert main([*args, "--json", "--threads", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["device"] == "cpu (2 threads)"
    assert main([*args, "--threads", "0"]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err


@pytest.fixture
def eager_backend(monkeypatch):
    """torch.compile through dynamo's tracing with the eager backend: the compile path of
    bench.run without inductor's minute of code generation."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))


def _numbers(result) -> str:
    """Every number of a run but its clocks, as text (NaN, before memorization, equals NaN)."""
    chains = [{k: v for k, v in vars(c).items() if "seconds" not in k} for c in result.chains]
    curves = [{k: v for k, v in row.items() if k != "seconds"} for row in result.curves]
    return repr((chains, curves))


@pytest.mark.parametrize(
    "sampler, batch_size", [("sgld", 8), ("adamw", None), ("hmc", None), ("muon", None)]
)  # minibatches (the first batch is put back), full batch, float64 energies, the model's layout
def test_compile_keeps_the_trajectory_and_reports_its_time_apart(
    tiny, eager_backend, sampler, batch_size
):
    hparams = {"step_size": 1e-3, "num_leapfrog": 3} if sampler == "hmc" else {}
    spec = RunSpec(sampler, hparams, seeds=[0, 1], budget=30, eval_every=10, batch_size=batch_size)
    eager = run(tiny, spec, device="cpu")
    compiled = run(tiny, spec, compile=True, device="cpu")
    assert eager.seconds_compile is None
    assert compiled.seconds_compile > 0
    assert _numbers(compiled) == _numbers(eager)


def test_compile_leaves_a_fused_gradient_alone():
    task = tasks.make("gaussian_corr")
    result = run(
        task, RunSpec("sgld", {"step_size": 0.1, "temperature": 1.0}, budget=5), compile=True
    )
    assert result.seconds_compile == 0.0


def test_compile_through_the_job_settings_of_an_executor(tmp_path, tiny, eager_backend):
    from bench.cli import build_parser, make_executor
    from bench.jobs import Job, Runner
    from bench.store import Store

    args = build_parser().parse_args(["compare", "--task", TINY, "--compile", "--workers", "1"])
    lines: list[str] = []
    job = Job(RunSpec("sgd", seeds=[0], budget=10, eval_every=5), "t")
    with make_executor(args, "cpu", 1, print) as executor, Store(tmp_path / "s.sqlite") as store:
        assert executor.settings.compile and executor.settings.threads == 1
        ((_, result),) = Runner(tiny, store, executor=executor, log=lines.append).run_all([job])
    assert result.seconds_compile > 0
    assert "torch.compile" in lines[-1]  # each job's compile time, in its progress line


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inductor imports torch.jit's
def test_inductor_compile_gives_the_eager_gradients_to_rounding(tiny):
    from samplers.base import value_and_grad

    theta = tiny.init(0, 4)
    potential = tiny.potential(prior_precision=1e-3)
    _, eager = value_and_grad(potential, theta, tiny.train)
    _, compiled = value_and_grad(torch.compile(potential), theta, tiny.train)
    assert torch.allclose(eager, compiled, rtol=1e-4, atol=1e-6)
    spec = RunSpec("adamw", seeds=[0, 1], budget=100, eval_every=10)
    a = run(tiny, spec, device="cpu")
    b = run(tiny, spec, compile=True, device="cpu")
    assert b.seconds_compile > 0
    assert [c.t_mem for c in a.chains] == [c.t_mem for c in b.chains]
