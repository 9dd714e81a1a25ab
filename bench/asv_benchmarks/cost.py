"""What the suite costs: one sampler step, its memory, and chain throughput of the runner.

Every sampler of :data:`.common.SAMPLERS` on the light and the medium task, with the suite's
hyperparameters (they matter for cost only through HMC's leapfrog count), on
:data:`.common.THREADS` CPU threads or the GPU.

* ``SamplerStep.time_step``: seconds of one ``sampler.step`` on one chain, from the task's first
  batch (the full training set for full-batch tasks and HMC), gradient included.
* ``SamplerStep.peakmem_step``: the peak resident memory of the benchmark process around that step
  (Python, PyTorch and the task included; CPU memory only).
* ``DevicePeakMemory.track_device_peak_bytes``: on a GPU, the peak memory PyTorch allocated on the
  device for that step; skipped (n/a) on a CPU.
* ``ChainThroughput.track_chain_steps_per_second``: chains x steps per second of training time of
  :func:`bench.run.run` (evaluation excluded) for 1 and :data:`MANY_CHAINS` chains: the median of
  :data:`THROUGHPUT_REPEATS` runs, each with enough steps to fill about
  :data:`THROUGHPUT_SECONDS` seconds (sized by a 5-step run after a 2-step warm-up). Higher is
  better here, the one such figure in the suite: asv marks any rise as ``+`` (a "regression").
"""

from __future__ import annotations

import statistics

import torch

import samplers
from bench.run import run
from bench.spec import RunSpec
from bench.timing import synchronize

from .common import (
    SAMPLERS,
    TASKS,
    configure,
    first_batch,
    load_task,
    sampler_config,
)

#: "Many" chains for the throughput benchmark: enough to show what vectorizing over chains buys.
MANY_CHAINS = 8
#: Runs per throughput figure (the median is reported: one slow run on a shared machine is ignored).
THROUGHPUT_REPEATS = 3
#: Seconds of training time each throughput run aims at.
THROUGHPUT_SECONDS = 0.5
#: Bounds on the steps of a throughput measurement.
THROUGHPUT_STEPS = (3, 1000)


class SamplerStep:
    """One step of one chain: its seconds (``time_step``) and peak resident memory
    (``peakmem_step``)."""

    params = (list(TASKS), list(SAMPLERS))
    param_names = ("task", "sampler")
    # Bump when the measured step changes meaning (batch, chain count, hyperparameters).
    version = "2"  # 2: HMC carries its gradient (L a step) with a float64 test
    # asv re-runs ``setup`` before every timed call (the task itself is built once per process);
    # each sample is one step. Two rounds, 5..50 samples each, at most 2 s of sampling per round.
    rounds = 2
    repeat = (5, 50, 2.0)
    warmup_time = 0.2
    timeout = 120

    def setup(self, task: str, sampler: str) -> None:
        self.device = configure()
        problem = load_task(task, self.device)
        hparams, prior_precision = sampler_config(sampler, problem)
        self.sampler = samplers.make(sampler, **hparams)
        self.potential = problem.potential(prior_precision=prior_precision)
        self.batch = first_batch(problem, self.sampler, torch.Generator().manual_seed(0))
        self.state = self.sampler.init(problem.init(0, 1, device=self.device))
        self.generator = torch.Generator(device=self.device).manual_seed(0)

    def _step(self) -> None:
        self.sampler.step(self.state, self.potential, self.batch, self.generator)
        synchronize(self.device)

    def time_step(self, task: str, sampler: str) -> None:
        self._step()

    def peakmem_step(self, task: str, sampler: str) -> None:
        self._step()


class DevicePeakMemory:
    """Peak device memory of one step of one chain (GPU only)."""

    params = (list(TASKS), list(SAMPLERS))
    param_names = ("task", "sampler")
    version = "2"
    timeout = 120
    unit = "bytes"

    def setup(self, task: str, sampler: str) -> None:
        device = configure()
        if device.type != "cuda":
            raise NotImplementedError("device memory is tracked on a GPU only")
        self.step = SamplerStep()
        self.step.setup(task, sampler)

    def track_device_peak_bytes(self, task: str, sampler: str) -> int:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(self.step.device)
        self.step._step()
        return torch.cuda.max_memory_allocated(self.step.device)


class ChainThroughput:
    """Chain-steps per second of training time of the runner, for 1 and many chains."""

    params = (list(TASKS), list(SAMPLERS), [1, MANY_CHAINS])
    param_names = ("task", "sampler", "chains")
    version = "2"
    timeout = 300
    unit = "chain-steps/s"

    def setup(self, task: str, sampler: str, chains: int) -> None:
        self.device = configure()
        self.task = load_task(task, self.device)
        self.hparams, self.prior_precision = sampler_config(sampler, self.task)
        self._run(sampler, chains, steps=2)  # warm-up: first-call costs, allocator
        sizing = self._run(sampler, chains, steps=5)
        low, high = THROUGHPUT_STEPS
        self.steps = int(min(max(THROUGHPUT_SECONDS / sizing.seconds_per_step, low), high))

    def _run(self, sampler: str, chains: int, steps: int):
        # One evaluation at the start and one at the end; neither is counted as training time.
        spec = RunSpec(
            sampler,
            self.hparams,
            prior_precision=self.prior_precision,
            seeds=chains,
            budget=steps,
            eval_every=steps,
        )
        return run(
            self.task,
            spec,
            device=self.device,
            progress=False,
            threads=None,  # THREADS, pinned by common.configure()
        )

    def track_chain_steps_per_second(self, task: str, sampler: str, chains: int) -> float:
        rates = []
        for _ in range(THROUGHPUT_REPEATS):
            result = self._run(sampler, chains, self.steps)
            rates.append(chains * result.steps_run / result.seconds_train)
        return statistics.median(rates)
