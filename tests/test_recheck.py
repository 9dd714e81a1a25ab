"""Rechecking a board: its choices rerun unchanged from other checkpoints for longer."""

from __future__ import annotations

import sqlite3

import pytest

from bench import recheck_page
from bench.__main__ import main
from bench.compare import recheck
from bench.compare.protocol import FRESH_SEED
from bench.grokking import ChainResult
from bench.run import RunResult
from bench.spec import RunSpec
from bench.store import Entry

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

TINY = "add_mod7_mlp"


def _final() -> RunSpec:
    return RunSpec.from_chains(
        "riemannian_langevin",
        [{"step_size": 1e-3, "temperature": 1e-6, "freeze_after": 60}] * 4,
        [3e-3] * 4,
        list(range(FRESH_SEED, FRESH_SEED + 4)),
        budget=300,
        eval_every=10,
        start=[f"ck{i}" for i in range(4)],
        max_norm_growth=10.0,
        data_seed=5,
    )


def test_respec_replaces_seeds_start_and_budget_and_keeps_the_rest():
    final = _final()
    new = recheck.respec(final, [2000, 2001], ["a", "b"], 2.0)
    assert list(new.seeds) == [2000, 2001] and list(new.start) == ["a", "b"]
    assert new.budget == 600
    assert new.per_chain()[0] == final.per_chain()[0]  # every hyperparameter and the prior
    assert new.per_chain()[0]["freeze_after"] == 60  # the warm-up stays where the board had it
    for field in ("eval_every", "max_norm_growth", "data_seed", "batch_size", "confirm"):
        assert getattr(new, field) == getattr(final, field)
    assert final.budget == 300 and list(final.seeds)[0] == FRESH_SEED  # not mutated


def test_respec_refuses_a_run_of_several_settings():
    mixed = RunSpec("sgd", {"step_size": [0.1, 0.2]}, seeds=(0, 1), budget=10)
    with pytest.raises(ValueError, match="one setting"):
        recheck.respec(mixed, [2000], ["a"], 2.0)


def test_recheck_seeds_are_disjoint_from_the_boards():
    assert recheck.RECHECK_SEED > FRESH_SEED + 100


def _entry(name: str, role: str = "tuned") -> Entry:
    return Entry("k", name, [], [], {}, [f"run-{name}"], role)


def test_pick_rows_names_the_nearest_rows():
    entries = [_entry("sgd"), _entry("sghmc"), _entry("sghmc@0", "twin"), _entry("x", "other")]
    assert [e.sampler for e in recheck.pick_rows(entries, None)] == ["sgd", "sghmc", "sghmc@0"]
    assert [e.sampler for e in recheck.pick_rows(entries, ["sghmc"])] == ["sghmc"]
    with pytest.raises(ValueError, match=r"did you mean 'sghmc'"):
        recheck.pick_rows(entries, ["sghcm"])


def _chain(t_grok, *, diverged=False, touch=None, censored_at=100) -> ChainResult:
    return ChainResult(
        chain=0,
        seed=0,
        hparams={},
        t_mem=0,
        t_grok=t_grok,
        t_mem_grad_evals=0,
        t_grok_grad_evals=None if t_grok is None else 2 * t_grok,
        t_mem_seconds=0.0,
        t_grok_seconds=None,
        censored_at=censored_at,
        t_touch=touch,
        t_touch_grad_evals=None if touch is None else 2 * touch,
        diverged=diverged,
    )


def _checked(chains) -> recheck.Rechecked:
    result = RunResult("t", _final(), "cpu", None, 100, 2, 0.0, 0.0, chains, [])
    return recheck.Rechecked("row", _entry("row"), _final(), result, {2000: 300})


def test_a_row_holds_only_when_every_chain_grokked_and_none_diverged():
    assert recheck_page.holds(_checked([_chain(10), _chain(20)]))
    assert not recheck_page.holds(_checked([_chain(10), _chain(None, touch=30)]))
    assert not recheck_page.holds(_checked([_chain(10), _chain(None, diverged=True)]))


def test_the_end_state_shows_the_norm_and_training_loss_of_a_finite_chain():
    chain = _chain(None)
    chain.final.update(weight_norm=36.71, train_loss=0.8172, val_acc=0.9)
    assert recheck_page._end_state(chain) == "36.7 / 0.82"
    assert recheck_page._end_state(_chain(None, diverged=True)) == "–"
    assert recheck_page._end_state(_chain(10)) == "–"  # a record without the metrics


def test_the_recheck_median_is_kaplan_meiers_in_gradient_evaluations():
    # two gradient evaluations a step: 10, 20, 30 steps are 20, 40, 60 evaluations
    assert recheck_page.median_evals(_checked([_chain(10), _chain(20), _chain(30)])) == 40
    # one censored at 100 steps (200 evaluations) of three: the median is the second event
    assert recheck_page.median_evals(_checked([_chain(10), _chain(20), _chain(None)])) == 40
    assert recheck_page.median_evals(_checked([_chain(None), _chain(None), _chain(5)])) is None


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """A smoke board of SGD on the tiny task: its store and reports folder."""
    folder = tmp_path_factory.mktemp("board")
    store, reports = folder / "s.sqlite", folder / "reports"
    argv = ["compare", "--task", TINY, "--preset", "smoke", "--samplers", "sgd"]
    argv += ["--budget", "60", "--eval-every", "20", "--trials", "2", "--seeds", "2"]
    argv += ["--store", str(store), "--reports", str(reports), "--workers", "1", "--threads", "1"]
    assert main(argv) == 0
    return store, reports


def test_a_recheck_reruns_the_boards_rows_from_new_checkpoints_and_reuses_its_runs(
    board, tmp_path, capsys
):
    store, reports = tmp_path / "s.sqlite", tmp_path / "reports"
    with sqlite3.connect(board[0]) as source, sqlite3.connect(store) as copy:
        source.backup(copy)  # the store's write-ahead log included (a file copy may miss it)
    source.close()
    copy.close()
    argv = ["recheck", "--task", TINY, "--seeds", "2", "--store", str(store)]
    argv += ["--reports", str(reports), "--workers", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "checkpoints 2000-2001" in out and "2 runs trained" in out  # sgd and the reference
    page = (reports / f"{TINY}.recheck.md").read_text()
    assert "2× the board's 60" in page and "| `sgd` |" in page and "| `reference` |" in page
    assert main(argv) == 0  # a rerun trains nothing and writes the same page
    assert "0 runs trained, 2 reused" in capsys.readouterr().out
    assert (reports / f"{TINY}.recheck.md").read_text() == page


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--rows", "sgf"], "did you mean 'sgd'"),
        (["--factor", "0.5"], "--factor must be at least 1"),
        (["--seeds", "0"], "--seeds"),
    ],
)
def test_bad_recheck_input_exits_2_saying_why(board, tmp_path, capsys, extra, message):
    store, reports = board[0], tmp_path / "reports"
    argv = ["recheck", "--task", TINY, "--store", str(store), "--reports", str(reports), *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_recheck_of_a_task_without_a_board_says_which_boards_there_are(board, tmp_path, capsys):
    store, reports = board[0], tmp_path / "reports"
    argv = ["recheck", "--task", "add_mod113", "--store", str(store), "--reports", str(reports)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no board of add_mod113" in err and TINY in err
