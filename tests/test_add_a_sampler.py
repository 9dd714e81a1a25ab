"""The README's "Add a sampler" steps, followed to the letter: a sampler class registered in
process, and a plugin package declared under the ``grokbench.samplers`` entry point, each run
through the comparison. The sampler is the README's example (unadjusted Langevin)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types
from dataclasses import replace

import pytest

import samplers
from bench import compare as C
from bench.store import Store

#: The README's example, as a plugin module would hold it (``name`` is filled in per test).
SAMPLER_SOURCE = '''
"""Unadjusted Langevin: theta <- theta - h grad U + sqrt(2 h tau) xi (the README's example)."""

from dataclasses import dataclass

import torch

from samplers import Axis, Example, Info, Param, Sampler, SearchSpace, value_and_grad
from samplers.base import finite_rows, keep_finite, noise, ones


@dataclass(frozen=True)
class LangevinState:
    theta: torch.Tensor  # (C, D)


class Langevin(Sampler):
    name = "{name}"
    params = {{
        "step_size": Param(0.1, low=0.0, low_open=True, why="the step size must be positive"),
        "temperature": Param(0.0, low=0.0, why="a temperature is non-negative"),
    }}
    examples = {{"toy": Example(dict(step_size=1e-3, temperature=1.0))}}
    search_space = SearchSpace(
        axes=(Axis("step_size", (0.3, 1.0)), Axis("prior_precision", (1e-4, 1e-3))),
        fixed={{"temperature": 1e-6}},
    )

    def init(self, theta):
        return LangevinState(theta)

    def _step(self, state, potential, batch, generator):
        theta = state.theta
        u, grad = value_and_grad(potential, theta, batch)
        h, tau = self.h("step_size", theta), self.h("temperature", theta)
        proposal = theta - h * grad + (2 * h * tau) ** 0.5 * noise(theta, generator)
        ok = finite_rows(u, proposal)
        (new,) = keep_finite(ok, (proposal, theta))
        return LangevinState(new), Info(1, ones(theta), ~ok, u)
'''


@pytest.fixture
def langevin(monkeypatch):
    """Step 1 of the README (the sampler's module, here built from its source) and step 2
    (``samplers.register``); unregistered afterwards."""
    module = types.ModuleType("readme_example")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(SAMPLER_SOURCE.format(name="readme_langevin"), module.__dict__)
    cls = module.Langevin
    samplers.register(cls.name, cls)
    yield cls
    samplers.unregister(cls.name)


def test_a_registered_sampler_keeps_the_contract_and_runs_a_comparison(
    langevin, tmp_path, tiny_task, target, run_sampler, one_thread
):
    name = langevin.name
    assert name in samplers.names() and name not in C.own_samplers()  # named, not by default
    sampler = samplers.make(name, **samplers.example(name).hparams)
    state, infos = run_sampler(sampler, target.init(0, 3), target.potential(), steps=3)
    assert state.theta.shape == (3, 2) and [i.grad_evals for i in infos] == [1, 1, 1]
    with pytest.raises(samplers.HyperparameterError, match="step_size must be > 0"):
        samplers.make(name, step_size=0.0)

    preset = replace(C.PRESETS["smoke"], budget=60, eval_every=20, trials=2, seeds=2)
    with Store(tmp_path / "s.sqlite") as store:
        key = C.compare(tiny_task, [name, "adamw"], preset, store, log=lambda line: None)
        entries = store.entries(key)
    (tuned,) = [e for e in entries if e.sampler == name]
    assert len(tuned.trials) == 2 and tuned.chosen["hparams"]["temperature"] == 1e-6
    assert tuned.chosen["prior_precision"] in (1e-4, 1e-3)


def _install_plugin(root, name: str) -> None:
    """A package ``toy_plugin`` and its ``.dist-info`` with an ``entry_points.txt``: what
    ``pip install`` of a package with the README's pyproject table leaves in site-packages."""
    package = root / "toy_plugin"
    package.mkdir()
    (package / "__init__.py").write_text(SAMPLER_SOURCE.format(name=name))
    info = root / "toy_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[{samplers.ENTRY_POINT_GROUP}]\n{name} = toy_plugin:Langevin\n"
    )


def test_a_plugin_package_appears_in_list_and_in_compare(tmp_path, repo_env):
    name = "plugin_langevin"
    _install_plugin(tmp_path, name)
    env = {**repo_env, "PYTHONPATH": f"{tmp_path}:{repo_env['PYTHONPATH']}"}
    code = textwrap.dedent(
        f"""
        import importlib.metadata, samplers, tasks
        from bench import compare
        from bench.cli.inputs import parse_samplers
        group = importlib.metadata.entry_points(group=samplers.ENTRY_POINT_GROUP)
        assert [e.name for e in group] == [{name!r}], group
        assert {name!r} in samplers.names()
        assert parse_samplers({name!r} + ",adamw") == [{name!r}, "adamw"]
        (row,) = compare.rows_for([{name!r}])
        axes = row.bounds(tasks.make("add_mod7_mlp"))
        print(sorted((k, b.choices) for k, b in axes.items()))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[('prior_precision', (0.0001, 0.001)), ('step_size', (0.3, 1.0))]"

    listing = subprocess.run(
        [sys.executable, "-m", "bench", "list"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if line.strip().startswith(name))
    assert "Unadjusted Langevin" in row


def test_a_broken_plugin_is_named_in_the_error(tmp_path, repo_env):
    _install_plugin(tmp_path, "wrong_name")  # the class's name is "wrong_name"; rename the entry
    entry_points = tmp_path / "toy_plugin-0.1.dist-info" / "entry_points.txt"
    entry_points.write_text(entry_points.read_text().replace("wrong_name =", "other ="))
    env = {**repo_env, "PYTHONPATH": f"{tmp_path}:{repo_env['PYTHONPATH']}"}
    out = subprocess.run(
        [sys.executable, "-c", "import samplers; samplers.names()"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert "sampler plugin 'other' (toy_plugin:Langevin)" in out.stderr
    assert "the entry point's name and the class's must agree" in out.stderr
