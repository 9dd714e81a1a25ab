"""``--executor ray`` (bench/ray_executor.py): the same numbers as the local executor, resources
per job (GPU shares computed on the CPU), a killed worker's job rerun, a killed driver resumed.

The tests that need Ray skip where it is not installed (``pip install -e '.[ray]'``); one local
2-CPU cluster is shared by the default-run ones. The whole smoke compare on ``add_mod31_mlp``,
the driver killed with ``kill -9`` and a cluster joined by ``--address`` run with ``-m slow``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import tasks
from bench import board as boards
from bench import compare as C
from bench.__main__ import main
from bench.jobs import Job, LocalExecutor, Runner
from bench.ray_executor import (
    FULL_GPU_CHAIN_PARAMS,
    GPU_SHARE_STEP,
    RayExecutor,
    gpu_share,
    job_resources,
    visible_device,
)
from bench.spec import RunSpec
from bench.store import Store

ROOT = Path(__file__).resolve().parent.parent
TINY = "add_mod7_mlp"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _spec(chains: int, start: bool = False) -> RunSpec:
    return RunSpec(
        "sgld",
        seeds=range(chains),
        budget=10,
        eval_every=5,
        start=[f"k{c}" for c in range(chains)] if start else "init",
    )


# -- resources, computed without a GPU ---------------------------------------------------------
def test_gpu_share_grows_with_chains_times_params_in_eighths():
    transformer = tasks.make("add_mod113").num_params  # 226,688
    mlp = tasks.make("add_mod31_mlp").num_params  # 42,975
    assert gpu_share(1, mlp) == GPU_SHARE_STEP  # small jobs: eight share one device
    assert gpu_share(24, mlp) == GPU_SHARE_STEP  # 1.03M chain-parameters: 0.06 of a GPU
    assert gpu_share(64, mlp) == 0.25  # 2.75M chain-parameters: 0.16, rounded up
    assert gpu_share(16, transformer) == 0.25  # the paper preset's jobs: four per GPU
    assert gpu_share(64, transformer) == 0.875
    assert gpu_share(1000, transformer) == 1.0  # never more than one device
    for chains in (1, 3, 17, 64):
        share = gpu_share(chains, transformer)
        assert share / GPU_SHARE_STEP == int(share / GPU_SHARE_STEP)  # a whole number of grains
        assert share >= min(1.0, chains * transformer / FULL_GPU_CHAIN_PARAMS)
    with pytest.raises(ValueError):
        gpu_share(0, mlp)


def test_job_resources_follow_the_device_string_and_the_spec():
    task = tasks.make("add_mod113")
    args = (task, _spec(16), None, "cpu")
    assert job_resources(args, "cpu") == {"num_cpus": 1}
    assert job_resources(args, "cuda") == {"num_cpus": 1, "num_gpus": 0.25}
    assert job_resources(args, "cuda:1") == {"num_cpus": 1, "num_gpus": 0.25}
    # from memorized checkpoints the chains are the starts
    assert job_resources((task, _spec(64, start=True), None, "cuda"), "cuda")["num_gpus"] == 0.875
    assert job_resources(args, "cuda", gpu_per_job=0.5)["num_gpus"] == 0.5
    assert job_resources(("no job here",), "cuda")["num_gpus"] == 1.0


def test_device_strings_flow_through_as_the_ray_task_sees_them():
    assert visible_device("cuda:3") == "cuda"  # Ray exposes the task's GPU as the first visible
    assert visible_device("cuda") == "cuda"
    assert visible_device("cpu") == "cpu"
    assert visible_device(torch.device("cuda", 2)) == torch.device("cuda")
    assert visible_device(7) == 7


class Arrived(Exception):
    pass


def test_the_runner_runs_every_job_with_its_executor_s_settings(monkeypatch, tmp_path):
    seen = []

    def fake_run(task, spec, **kwargs):
        seen.append((spec, kwargs["threads"], kwargs["compile"], kwargs["progress"]))
        raise Arrived  # enough: the settings arrived

    import bench.jobs as jobs

    monkeypatch.setattr(jobs, "run", fake_run)
    task = tasks.make(TINY, width=8, d_embed=4)
    job = Job(_spec(1), "t")
    with Store(tmp_path / "s.sqlite") as store:
        for executor, settings in (
            (None, (1, False)),  # no executor: one thread of this process, the defaults
            (LocalExecutor(1, threads=3, compile=True), (3, True)),
        ):
            with pytest.raises(Arrived):
                Runner(task, store, executor=executor, log=lambda line: None).run_all([job])
            assert seen[-1] == (job.spec, *settings, False)


# -- refusals, with or without Ray -------------------------------------------------------------
def test_without_ray_the_ray_executor_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    args = ["compare", "--task", TINY, "--preset", "smoke", "--executor", "ray"]
    args += ["--store", str(tmp_path / "s.sqlite"), "--reports", str(tmp_path / "r")]
    assert main(args) == 2
    assert "pip install -e '.[ray]'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_address_without_the_ray_executor_is_refused(tmp_path, capsys):
    args = ["compare", "--task", TINY, "--preset", "smoke", "--address", "auto"]
    args += ["--store", str(tmp_path / "s.sqlite"), "--reports", str(tmp_path / "r")]
    assert main(args) == 2
    assert "--executor ray" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# -- on a local Ray cluster --------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    """One local Ray of two CPUs for this module's in-process tests, stopped at its end; it
    declares one GPU, which no CPU job asks for, so that the GPU path can be followed here."""
    pytest.importorskip("ray")
    executor = RayExecutor(workers=2, num_gpus=1, log=lambda line: None)
    yield executor
    executor.shutdown()


def _numbers(path: Path) -> dict:
    """Everything a store's runs and comparisons say, less the clocks and the device's name."""
    out: dict = {}
    with Store(path) as store:
        for key in store.run_keys():
            result = store.get_run(key).result
            chains = [
                {k: v for k, v in vars(c).items() if not k.endswith("_seconds")}
                for c in result.chains
            ]
            curves = [{k: v for k, v in row.items() if k != "seconds"} for row in result.curves]
            out[key] = (result.steps_run, result.grad_evals_per_step, chains, curves)
        for compare in store.compares():
            entries = [
                (e.sampler, e.role, e.chosen, e.trials, e.tuning_runs, e.final_runs)
                for e in store.entries(compare.key)
            ]
            board = boards.build_board(store, compare)
            rows = [(r.sampler, r.n, r.grokked, r.memorized) for r in board.rows]
            out[compare.key] = (entries, rows)
    return out


def test_ray_compare_gives_the_local_numbers_bit_for_bit(tmp_path, cluster):
    task = tasks.make(TINY, width=32, d_embed=16)
    preset = replace(C.PRESETS["smoke"], budget=200, eval_every=20, trials=2, seeds=2)
    names = ["adamw", "hmc"]
    with LocalExecutor(1) as local:
        for where, executor in (("local", local), ("ray", cluster)):
            with Store(tmp_path / f"{where}.sqlite") as store:
                C.compare(task, names, preset, store, executor=executor, log=lambda line: None)
    local, ray = _numbers(tmp_path / "local.sqlite"), _numbers(tmp_path / "ray.sqlite")
    assert len(local) > len(names) and local == ray


def test_cli_compare_with_the_ray_executor_matches_the_local_one(tmp_path, cluster, capsys):
    common = ["compare", "--task", TINY, "--preset", "smoke", "--samplers", "adamw,sghmc"]
    common += ["--budget", "100", "--eval-every", "20", "--seeds", "2", "--no-report"]
    assert main([*common, "--store", str(tmp_path / "l.sqlite"), "--workers", "1"]) == 0
    assert main([*common, "--store", str(tmp_path / "r.sqlite"), "--executor", "ray"]) == 0
    out = capsys.readouterr().out
    assert "2 worker(s)" in out and "in flight" in out  # the cluster's capacity, progress
    assert _numbers(tmp_path / "l.sqlite") == _numbers(tmp_path / "r.sqlite")


def test_gpu_jobs_get_their_share_and_see_their_device_as_cuda(cluster):
    import ray

    def where(task, spec, theta0, device):  # what run would be given, and the share held
        assigned = ray.get_runtime_context().get_assigned_resources()
        return device, assigned.get("GPU"), os.environ.get("CUDA_VISIBLE_DEVICES")

    gpu = RayExecutor(device="cuda:1", log=lambda line: None)  # joins the fixture's Ray
    assert gpu.workers == 2  # eight shares of the one GPU, but two CPUs
    task = tasks.make("add_mod113")
    device, share, visible = gpu.submit(where, task, _spec(16), None, "cuda:1").result(60)
    assert (device, share, visible) == ("cuda", 0.25, "0")
    device, share, _ = cluster.submit(where, task, _spec(16), None, "cpu").result(60)
    assert (device, share) == ("cpu", None)  # a CPU job holds no GPU
    gpu.shutdown()
    assert ray.is_initialized()  # the connection it found stays open


def test_a_killed_worker_s_job_is_run_again(tmp_path, cluster):
    marker = tmp_path / "died-once"

    def die_once(path: str) -> int:  # a closure: Ray ships it by value
        if not os.path.exists(path):
            open(path, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-job
        return os.getpid()

    pid = cluster.submit(die_once, str(marker)).result(timeout=120)
    assert marker.exists() and pid != os.getpid()


# -- slow: the whole smoke compare, kill -9 of the driver, a cluster joined by address ---------
def _cli_compare(store: Path, reports: Path, *extra: str, task: str = TINY) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench",
        "compare",
        "--task",
        task,
        "--preset",
        "smoke",
        "--store",
        str(store),
        "--reports",
        str(reports),
        *extra,
    ]


@pytest.mark.slow
def test_smoke_compare_on_add_mod31_mlp_same_board_on_ray_and_locally(tmp_path):
    pytest.importorskip("ray")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for where, extra in (("local", ["--workers", "2"]), ("ray", ["--executor", "ray"])):
        cmd = _cli_compare(
            tmp_path / f"{where}.sqlite", tmp_path / where, *extra, task="add_mod31_mlp"
        )
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "runs trained, 0 reused from the store" in done.stdout
    assert _numbers(tmp_path / "local.sqlite") == _numbers(tmp_path / "ray.sqlite")
    pages = [(tmp_path / w / "add_mod31_mlp.md").read_text() for w in ("local", "ray")]
    assert _without_clocks(pages[0]) == _without_clocks(pages[1])


def _without_clocks(page: str) -> list[str]:
    """A leaderboard page without its rows of hardware, commit and wall-clock time."""
    header = ("| hardware |", "| code |", "| compute |")
    return [line for line in page.splitlines() if not line.startswith(header)]


@pytest.mark.slow
def test_kill_9_of_the_ray_driver_then_rerun_loses_and_duplicates_nothing(
    tmp_path, kill_9, finished_runs
):
    pytest.importorskip("ray")
    store, reports = tmp_path / "store.sqlite", tmp_path / "reports"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    extra = ["--samplers", "adamw,sgd,sgld,sghmc", "--budget", "300", "--eval-every", "20"]
    extra += ["--trials", "2", "--seeds", "3", "--executor", "ray"]
    kill_9(
        _cli_compare(store, reports, *extra),
        ready=lambda: len(finished_runs(store)) >= 2,
        cwd=tmp_path,
        env=env,
        timeout=240,
    )
    before = finished_runs(store)
    assert 2 <= len(before) < 9  # killed mid-compare: some runs stored, not all
    assert not (reports / f"{TINY}.md").exists()

    done = subprocess.run(
        _cli_compare(store, reports, *extra), cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "reused from the store" in done.stdout
    after = finished_runs(store)
    for key, finished_at in before.items():  # nothing lost, nothing recomputed
        assert after[key] == finished_at
    with Store(store) as s:
        (compare,) = s.compares()
        entries = s.entries(compare.key)
        assert len(entries) == 5  # four samplers and the reference
        referenced = {k for e in entries for k in (*e.tuning_runs, *e.final_runs)}
        assert referenced == set(after)
        assert s.count("chains") == sum(len(s.get_run(k).result.chains) for k in after)
    with sqlite3.connect(store) as db:
        dup = db.execute(
            "SELECT run_key, chain, count(*) FROM chains GROUP BY 1, 2 HAVING count(*) > 1"
        )
        assert dup.fetchall() == []
    db.close()
    assert (reports / f"{TINY}.md").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_compare_on_a_cluster_joined_by_address_ships_this_checkout(tmp_path):
    pytest.importorskip("ray")
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_ADDRESS": ""}
    env.pop("RAY_AUTH_MODE", None)  # Ray's default: a token, which the driver must send
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    head = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block"]
        + [f"--port={port}", "--num-cpus=2", "--include-dashboard=false"]
        + ["--node-ip-address=127.0.0.1", f"--temp-dir={temp}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        extra = ["--samplers", "adamw", "--budget", "100", "--eval-every", "20", "--seeds", "2"]
        extra += ["--no-report", "--executor", "ray", "--address", f"127.0.0.1:{port}"]
        deadline = time.monotonic() + 120
        while head.poll() is None and time.monotonic() < deadline:  # the head comes up
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(1)
        time.sleep(3)  # the GCS port opens before the raylet is registered
        done = subprocess.run(
            _cli_compare(tmp_path / "s.sqlite", tmp_path / "r", *extra),
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert "executor: Ray" in done.stdout and "2 job(s) in flight" in done.stdout
    finally:
        head.send_signal(signal.SIGTERM)  # --block: stopping it stops the head it started
        head.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)
