"""Writes tests/golden/store_v3.sqlite: a store made by the code of e80d56b, before RunSpec.

``python tests/golden/store_v3.py tests/golden/store_v3.sqlite`` (11 s on one core). The store
holds both protocols of a smoke comparison (AdamW, SGLD and HMC, two trials on one tuning seed,
two fresh seeds, the reference) on a small add_mod7_mlp, with its memorized checkpoints; it is
committed so that tests/test_store.py can check that the run keys of today's code still find
the runs of a store written before (a store must stay valid across such refactors).
"""

import sys
from dataclasses import replace

import torch

import tasks
from bench import compare as C
from bench.store import Store

TASK = {"name": "add_mod7_mlp", "width": 16, "d_embed": 8}
SAMPLERS = ["adamw", "sgld", "hmc"]
PRESET = {"budget": 200, "eval_every": 20, "trials": 2, "tune_seeds": 1, "seeds": 2}


def make(path: str) -> list[str]:
    """The comparisons' keys, one per protocol."""
    task = tasks.make(TASK["name"], width=TASK["width"], d_embed=TASK["d_embed"])
    preset = replace(C.PRESETS["smoke"], **PRESET)
    with Store(path) as store:
        return [
            C.compare(task, SAMPLERS, preset, store, start=start) for start in ("memorized", "init")
        ]


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(make(sys.argv[1]))
