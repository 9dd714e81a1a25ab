#!/usr/bin/env bash
# One-time set-up, idempotent: install the project and its dependencies into the current Python.
#
# torch first: where no torch is installed, pin the CPU build that lies on these machines' disk
# (torch==2.13.0). An unpinned `torch` would pull a multi-GB CUDA build on a CPU machine. Where a
# torch is already installed (a GPU user's CUDA build, say), it is kept: pyproject asks only for
# torch>=2.4.
set -euo pipefail
PYTHON="${PYTHON:-python3}"
cd "$(dirname "$0")/.."

if ! "$PYTHON" -c "import torch" >/dev/null 2>&1; then
    echo "setup: no torch found; installing the CPU build torch==2.13.0"
    "$PYTHON" -m pip install --quiet "torch==2.13.0"
fi
"$PYTHON" -m pip install --quiet -e ".[dev]"
"$PYTHON" -c "import torch, samplers, tasks, bench; print(f'setup: ok (torch {torch.__version__}, cuda available: {torch.cuda.is_available()})')"
