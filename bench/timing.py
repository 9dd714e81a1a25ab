"""One clock for every timing in the suite: wall time that includes the device's queued work.

On a GPU, kernels run asynchronously: a timer read right after a step measures the launch, not
the work. :func:`synchronize` waits for the device first (a GPU sync point, so it is called only
where a time is read); on a CPU it does nothing.
"""

from __future__ import annotations

import time

import torch


def synchronize(device: torch.device | str | torch.Tensor) -> None:
    """Wait until ``device`` (or the device of a tensor) has finished its queued work."""
    if isinstance(device, torch.Tensor):
        device = device.device
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # GPU sync point: timings must include queued kernels


def clock(device: torch.device | str | torch.Tensor) -> float:
    """``time.perf_counter()`` once ``device`` is idle."""
    synchronize(device)
    return time.perf_counter()
