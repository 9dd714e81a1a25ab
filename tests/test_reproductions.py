"""The frontier's reproductions (bench/frontier.py): names checked with a "did you mean", arms
trained once through the store, a page with the published claim beside what ran and a verdict
per arm; behind ``slow``, Prieto et al.'s ⊥AdamW result on its own setting."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench import frontier
from bench.__main__ import main
from bench.store import Store

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_an_unknown_reproduction_gets_the_nearest_name(capsys):
    with pytest.raises(ValueError, match="did you mean 'prieto'"):
        frontier.check_names(["preito"])
    assert frontier.check_names([]) == list(frontier.REPRODUCTIONS.values())
    assert main(["frontier", "preito"]) == 2
    assert "did you mean 'prieto'" in capsys.readouterr().err
    assert main(["frontier", "prieto", "--seeds", "0"]) == 2
    assert "--seeds must be at least 1" in capsys.readouterr().err


TINY = frontier.Reproduction(
    name="tiny",
    title="a tiny reproduction",
    paper="nobody, never",
    setting="add_mod7 with a small MLP",
    deviations="none",
    task="add_mod7_mlp",
    task_overrides={"width": 32, "d_embed": 16},
    arms=(
        frontier.Arm(
            "fast", "adamw", dict(step_size=1e-2, weight_decay=1.0), "reaches it at once", 5
        ),
        frontier.Arm("never", "sgd", dict(step_size=1e-6), "never reaches it", None),
    ),
    seeds=2,
    budget=20,
    eval_every=5,
    threshold=0.95,
)


def test_a_reproduction_trains_once_and_writes_its_page(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        outcomes = frontier.run_reproduction(TINY, store, log=lambda line: None)
        assert store.count("runs") == 2
        again = frontier.run_reproduction(TINY, store, log=lambda line: None)
        assert store.count("runs") == 2  # reused, not trained again
    assert [[(c.t_mem, c.t_grok, c.final["val_acc"]) for c in o.result.chains] for o in again] == [
        [(c.t_mem, c.t_grok, c.final["val_acc"]) for c in o.result.chains] for o in outcomes
    ]
    fast, never = outcomes
    # 20 steps of add_mod7 from initialization: nothing generalizes, so the arm published as
    # not reaching the threshold agrees and the one published as reaching it falls short
    assert never.survival.median is None and never.agrees
    assert "agrees: as published, it does not generalize (0/2 chains" in never.verdict()
    assert fast.survival.events == 0 and not fast.agrees
    assert fast.verdict().startswith("falls short: not within the published 5 steps (0/2")
    page = frontier.write_page(TINY, outcomes, tmp_path / "reports")
    text = page.read_text()
    assert "**Published setting.** add_mod7 with a small MLP." in text
    assert "| fast | `adamw` | step_size=0.01, weight_decay=1 | reaches it at once | 0/2 |" in text
    assert "- **never** agrees" in text and "- **fast** falls short" in text
    assert (tmp_path / "reports" / "tiny.png").exists()


def test_a_published_reach_within_the_horizon_agrees_and_a_published_failure_does_not(tmp_path):
    """One run judged against two published outcomes: at a threshold of 0.1, which SGD's
    untrained chains (chance on 7 classes) meet from the first evaluation on, "reaches it
    within 5 steps" agrees and "never reaches it" does not."""
    sgd = dict(step_size=1e-6)
    both = replace(
        TINY,
        threshold=0.1,
        arms=(
            frontier.Arm("reaches", "sgd", sgd, "reaches it at once", 5),
            frontier.Arm("never", "sgd", sgd, "never reaches it", None),
        ),
    )
    with Store(tmp_path / "s.sqlite") as store:
        reaches, never = frontier.run_reproduction(both, store, log=lambda line: None)
        assert store.count("runs") == 1  # one setting, one run
    assert reaches.survival.median == 0 and reaches.agrees
    assert reaches.verdict().startswith("agrees: within the published 5 steps (2/2 chains")
    assert not never.agrees and never.verdict().startswith("disagrees: it generalizes here")


@pytest.mark.slow
def test_prieto_ortho_adamw_groks_without_weight_decay_where_adamw_does_not(tmp_path):
    """Prieto et al. 2025's figure 1 on its own setting, through the public API: at lr 1e-2
    and no weight decay, ⊥AdamW holds validation accuracy >= 0.95 within 300 full-batch steps
    on both seeds (measured: memorized at 100-110 steps, 0.99 from 110-120), while AdamW
    memorizes by step 50 and stays at chance (softmax collapse: training loss 0.0, ‖θ‖ 114)."""
    rep = frontier.REPRODUCTIONS["prieto"]
    first = replace(rep, arms=rep.arms[:2], budget=300)
    assert [a.sampler for a in first.arms] == ["ortho_adamw", "adamw"]
    with Store(tmp_path / "s.sqlite") as store:
        ortho, adamw = frontier.run_reproduction(first, store, seeds=2, log=lambda line: None)
    assert ortho.survival.events == 2 and ortho.agrees
    assert all(c.t_grok <= 300 and c.final["train_acc"] == 1.0 for c in ortho.result.chains)
    assert adamw.survival.events == 0 and adamw.agrees
    assert all(c.t_mem is not None for c in adamw.result.chains)  # it memorizes...
    assert all(c.final["val_acc"] < 0.05 for c in adamw.result.chains)  # ...and stays there
