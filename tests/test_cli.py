"""Bad input on the command line: one clear line on stderr, exit status 2, nothing written, no
hang and no traceback. Each case failed before it was listed here (it hung, ran, or raised)."""

from __future__ import annotations

import csv
import json

import pytest
import torch

import tasks
from bench.cli import main

RUN = ["run", "--task", "add_mod7_mlp", "--sampler", "sgd", "--budget", "5"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (RUN + ["--batch-size", "-1"], "--batch-size must be at least 1"),  # hung forever
        (RUN + ["--batch-size", "0"], "--batch-size must be at least 1"),  # Python's own error
        (RUN + ["--prior-precision", "-1"], "unbounded below"),  # trained on it
        (RUN + ["--set", "prior_precision=-3"], "unbounded below"),
        (RUN + ["--eval-every", "0"], "--eval-every must be at least 1"),  # silently replaced
        (RUN + ["--eval-every", "-3"], "--eval-every must be at least 1"),  # ran
        (RUN + ["--set", "step_size=0.1", "--set", "step_size=0.2"], "given twice"),
        (["list", "zzz*"], "no registered task matches"),  # empty heading, exit 0
        (RUN + ["--device", "tpu"], "--device must be cpu or cuda"),  # traceback
        (RUN + ["--seeds", "0"], "--seeds must be at least 1"),
        (RUN + ["--budget", "0"], "--budget must be at least 1"),
        (["run", "--task", "add_mod7_mpl", "--sampler", "sgd"], "did you mean"),
        (["run", "--task", "add_mod7_mlp", "--sampler", "sgdl"], "did you mean"),
        (RUN + ["--curves", "out.txt"], "--curves writes .csv (CSV), .jsonl (JSON lines)"),
        (RUN + ["--curves", "."], "--curves writes"),
        (RUN + ["--prior-precision", "abc"], "--prior-precision takes a number or one per chain"),
        (RUN + ["--prior-precision", "[1e-4,x]"], "--prior-precision takes a number"),
        (RUN + ["--prior-precision", "[]"], "--prior-precision takes a number"),
        (RUN + ["--prior-precision", "[1e-4,1e-3]"], "2 values but the run has 1 chains"),
        (RUN + ["--seeds", "2", "--prior-precision", "[1e-4,-1]"], "unbounded below"),
        (RUN + ["--store", "x.sqlite"], "--store keeps the memorized checkpoints"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.count("\n") == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a CPU-only torch")
def test_cuda_on_a_cpu_only_torch_is_refused_before_any_file_is_written(tmp_path, capsys):
    assert main(RUN + ["--device", "cuda"]) == 2
    assert "sees no CUDA device" in capsys.readouterr().err
    store = tmp_path / "s.sqlite"
    argv = ["compare", "--task", "add_mod7_mlp", "--preset", "smoke", "--device", "cuda"]
    assert main(argv + ["--store", str(store), "--reports", str(tmp_path / "r")]) == 2
    assert "sees no CUDA device" in capsys.readouterr().err
    assert not store.exists()


def test_run_without_set_uses_the_tasks_reference_setting(capsys):
    """``bench run`` with the task's reference sampler trains at the reference setting (it used
    the sampler's own defaults), with --set on top; another sampler keeps its defaults."""
    import tasks
    from bench.cli import run_settings

    task = tasks.make("add_mod7_mlp")
    reference = {k: v for k, v in task.reference.items() if k != "sampler"}
    hparams, prior = run_settings(task, "adamw", {}, None)
    assert hparams == reference and prior == 0.0
    assert "reference setting" in capsys.readouterr().err
    hparams, _ = run_settings(task, "adamw", {"step_size": 0.5}, None)
    assert hparams == {**reference, "step_size": 0.5}
    assert run_settings(task, "sgld", {"step_size": 0.5}, 1e-3) == ({"step_size": 0.5}, 1e-3)


def test_run_with_a_prior_per_chain_writes_curves_to_plot(tmp_path, capsys):
    """``--prior-precision [a,b]`` gives each chain its own λ, as ``--set key=[a,b]`` does;
    ``--curves`` writes every evaluation of every chain, as CSV or as JSON lines."""
    argv = RUN + ["--seeds", "2", "--prior-precision", "[1e-4,1e-3]", "--eval-every", "1"]
    assert main([*argv, "--json", "--curves", str(tmp_path / "c.csv")]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [c["hparams"]["prior_precision"] for c in payload["chains"]] == [1e-4, 1e-3]
    assert payload["prior_precision"] == [1e-4, 1e-3] and "curves" not in payload
    with open(tmp_path / "c.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 6  # two chains, evaluated at steps 0..5
    assert {"chain", "step", "grad_evals", "train_loss", "val_acc", "weight_norm"} <= set(rows[0])
    assert [int(r["step"]) for r in rows if r["chain"] == "1"] == list(range(6))
    assert main([*argv, "--curves", str(tmp_path / "c.jsonl")]) == 0
    lines = (tmp_path / "c.jsonl").read_text().splitlines()
    points = [json.loads(line) for line in lines]  # strict JSON: NaN written as null
    assert len(points) == 12 and points[0]["accept"] is None and points[0]["dist_mem"] is None
    assert [float(r["val_acc"]) for r in rows] == pytest.approx([p["val_acc"] for p in points])


def test_run_from_the_memorized_checkpoints_of_compare(tmp_path, capsys):
    """``run --start memorized`` starts each seed from the checkpoint compare uses, made once in
    the store (the same key, so a compare on that store finds it, and a second run reuses it)."""
    from bench import checkpoints
    from bench import compare as C
    from bench.store import Store

    store = tmp_path / "s.sqlite"
    argv = ["run", "--task", "add_mod7_mlp", "--sampler", "sgld", "--seeds", "2", "--budget", "3"]
    argv += ["--start", "memorized", "--store", str(store), "--json"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "memorized checkpoints for seeds [0, 1]" in err
    result = json.loads(out)
    task = tasks.make("add_mod7_mlp")
    keys = [checkpoints.checkpoint_key(task, s, C.PRESETS["cpu"].memorized) for s in (0, 1)]
    assert result["start"] == keys
    assert all(c["t_mem"] == 0 for c in result["chains"])  # memorized from the start
    with Store(store) as s:
        assert s.count("checkpoints") == 2 and s.count("runs") == 0
        assert [s.get_checkpoint(k).seed for k in keys] == [0, 1]
    assert main(argv) == 0
    assert "memorized checkpoints" not in capsys.readouterr().err  # found, not made again
    assert main([*argv[:-5], "--start", "memorized", "--store", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
