"""``python -m bench compare``: every sampler tuned with the same budget, then run on fresh seeds.

The protocol is stated in :mod:`bench.compare.protocol`; the package reads top to bottom as

* :mod:`~bench.compare.units`: the checkpoint's scales, and hyperparameters in shared units;
* :mod:`~bench.compare.spaces`: the grids of samplers without a row (peers, plugins);
* :mod:`~bench.compare.rows`: the factorial's rows and their search spaces;
* :mod:`~bench.compare.presets`: how much (budget, trials, seeds) and the runtime estimate;
* :mod:`~bench.compare.protocol`: how a trial is scored and what a comparison's key covers;
* :mod:`~bench.compare.jobs`: chains packed into vectorized jobs (trained by :mod:`bench.jobs`);
* :mod:`~bench.compare.tuner`: Optuna's TPE with successive halving, its studies in the store;
* :mod:`~bench.compare.loop`: the main loop that ties them together.
"""

from bench.compare.jobs import grad_evals_per_step, jobs_for
from bench.compare.loop import compare
from bench.compare.presets import (
    CPU_LIMIT_MINUTES,
    CPU_MODEL,
    MEMORIZED,
    PRESETS,
    STARTS,
    Preset,
    choose_preset,
    estimate_minutes,
)
from bench.compare.protocol import BASELINE, FRESH_SEED, protocol_for, reference_config, score
from bench.compare.rows import (
    FRONTIER,
    FRONTIER_GROUP,
    ROWS,
    TWIN,
    Row,
    row_names,
    rows_for,
    twin_of,
)
from bench.compare.spaces import SEARCH_SPACES, Axis, SearchSpace, own_samplers, search_space
from bench.compare.units import Scales

__all__ = [
    "FRONTIER",
    "FRONTIER_GROUP",
    "row_names",
    "BASELINE",
    "CPU_LIMIT_MINUTES",
    "CPU_MODEL",
    "FRESH_SEED",
    "MEMORIZED",
    "PRESETS",
    "ROWS",
    "SEARCH_SPACES",
    "STARTS",
    "TWIN",
    "Axis",
    "Preset",
    "Row",
    "Scales",
    "SearchSpace",
    "choose_preset",
    "compare",
    "estimate_minutes",
    "grad_evals_per_step",
    "jobs_for",
    "own_samplers",
    "protocol_for",
    "reference_config",
    "rows_for",
    "score",
    "search_space",
    "twin_of",
]
