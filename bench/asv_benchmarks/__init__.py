"""The asv suite (asv's ``benchmark_dir``): what the suite costs and how fast each sampler groks.

``asv run`` imports this package by its folder name, ``asv_benchmarks`` (asv would shadow itself
if the folder were called ``asv``), and runs every ``time_*``, ``peakmem_*`` and ``track_*`` it
finds in its modules:

* :mod:`.cost`: seconds per sampler step, peak memory, and chain-steps per second for 1 and many
  chains, for every sampler on a light and a medium task;
* :mod:`.quality`: steps-to-grok, gradient evaluations to grok and steps-to-memorise for every
  sampler on the light task, trained once per ``asv run`` in ``setup_cache``.

Shared settings (tasks, hyperparameters, threads, device) live in :mod:`.common`.

The working tree that holds this folder is put first on ``sys.path``, so the suite measures the
checkout it belongs to, whatever copy of the packages the Python that runs asv has installed
(asv drops ``PYTHONPATH`` before it runs a benchmark).
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
