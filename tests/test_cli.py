"""Bad input on the command line: one clear line on stderr, exit status 2, nothing written, no
hang and no traceback. Each case failed before it was listed here (it hung, ran, or raised)."""

from __future__ import annotations

import pytest
import torch

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
