"""Jobs as tasks on a Ray cluster: ``python -m bench compare --executor ray [--address ADDR]``.

:class:`RayExecutor` is an executor for :class:`bench.jobs.Runner` (``workers``, ``submit``,
``shutdown``), so whatever trains through a Runner (``compare``, and any command built on it)
runs on a cluster by being handed one. With no address it starts a local Ray for the run (one
CPU per worker) and stops it at the end; with ``--address`` it joins an existing cluster and
ships this checkout's ``bench``, ``samplers`` and ``tasks`` with the job (Ray's
``runtime_env={"py_modules": ...}``), so the workers run the driver's code; the cluster's Python
needs the dependencies (torch, numpy, ...).

**Resources.** Every vectorized job is one Ray task that asks for what it uses. On a CPU: one
core (``num_cpus=1``) and one torch thread (:class:`bench.jobs.JobSettings`; workers are one
per core). On a GPU: one core and a share of a device from the job's size, chains x parameters
(:func:`gpu_share`): a job of :data:`FULL_GPU_CHAIN_PARAMS` or more takes a whole GPU, a smaller
one a multiple of :data:`GPU_SHARE_STEP`, so up to eight small jobs share one device. Ray hands a
GPU task its device through ``CUDA_VISIBLE_DEVICES``, so inside the task the job's device is
``cuda`` (the first visible one) whatever index the driver named. ``workers``, the jobs the
Runner keeps in flight, is the cluster's capacity: its CPUs, or on a GPU as many of the smallest
shares as its GPUs hold (and no more than its CPUs); jobs beyond what is free wait in Ray's queue.

**The store.** Tasks return their :class:`bench.run.RunResult` to the driver, which alone writes
the SQLite store, one transaction per run, exactly as with the local executor: a driver killed
at any moment (``kill -9`` included) loses at most the jobs in flight. The local Ray it started
dies with it (its helper processes exit a minute or two later, when they find their parent
gone), its claims expire, and a rerun reuses every stored run and trains the rest. A worker
killed mid-job makes Ray run the task again (``max_retries``); a job that fails for good raises
in the driver, which releases its claims.

**Numbers.** A job computes the same numbers wherever it runs: on CPUs a Ray worker and a local
one give bitwise-identical results (tested in tests/test_ray_executor.py); a CPU and a GPU agree
in law, as the store's keys assume (:mod:`bench.store`).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import importlib.util
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench.allocator import tune_from_environment
from bench.jobs import JobSettings
from bench.spec import RunSpec

#: Chains x parameters of a job that takes a whole GPU (64 chains of Nanda et al.'s 226,688-
#: parameter transformer is 0.86 of it); smaller jobs take a share.
FULL_GPU_CHAIN_PARAMS = 2**24
#: The smallest share of a GPU a job asks for, and the grain of every share: at most eight jobs
#: on one device.
GPU_SHARE_STEP = 0.125
#: Ray's object store for a local cluster started on the fly: jobs and results are small.
LOCAL_OBJECT_STORE_BYTES = 2**29
#: Times Ray reruns a job whose worker died.
MAX_RETRIES = 3


class RayUnavailable(ValueError):
    """Ray is not installed, or the cluster cannot be started, joined or used as asked."""


def gpu_share(
    chains: int,
    num_params: int,
    *,
    full: int = FULL_GPU_CHAIN_PARAMS,
    step: float = GPU_SHARE_STEP,
) -> float:
    """The share of one GPU a job of ``chains`` chains of ``num_params`` parameters asks for:
    its size over ``full``, rounded up to a multiple of ``step``, between ``step`` and 1."""
    if chains < 1 or num_params < 1:
        raise ValueError(
            f"a job has at least one chain and one parameter, got {chains}, {num_params}"
        )
    grains = math.ceil(chains * num_params / full / step)
    return min(1.0, max(1, grains) * step)


def job_resources(
    args: tuple[Any, ...], device: str, gpu_per_job: float | None = None
) -> dict[str, float]:
    """Ray's ``num_cpus``/``num_gpus`` for one submitted call: one core on a CPU; on a GPU also
    ``gpu_per_job``, else the :func:`gpu_share` of the :class:`bench.spec.RunSpec` among
    ``args`` on the task among them (the object with ``num_params``), else a whole device."""
    if not device.startswith("cuda"):
        return {"num_cpus": 1}
    share = gpu_per_job
    if share is None:
        spec = next((a for a in args if isinstance(a, RunSpec)), None)
        task = next((a for a in args if hasattr(a, "num_params")), None)
        if spec is not None and task is not None:
            share = gpu_share(spec.chains, int(task.num_params))
    return {"num_cpus": 1, "num_gpus": 1.0 if share is None else float(share)}


def visible_device(arg: Any) -> Any:
    """A device name as the task sees it: ``cuda:N`` becomes ``cuda`` (Ray exposes the task's
    GPU as the first visible device); anything else is returned as it is."""
    if isinstance(arg, str) and arg.startswith("cuda:"):
        return "cuda"
    if isinstance(arg, torch.device) and arg.type == "cuda":
        return torch.device("cuda")
    return arg


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """What a Ray worker runs: ``fn(*args, **kwargs)`` with glibc keeping freed memory
    (:mod:`bench.allocator`) and devices renamed as the task sees them."""
    tune_from_environment()
    args = tuple(visible_device(a) for a in args)
    return fn(*args, **{k: visible_device(v) for k, v in kwargs.items()})


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            f"--executor ray needs Ray ({err}): pip install -e '.[ray]' (ray 2.x)"
        ) from err
    return ray


def _token_auth_if_available() -> None:
    """Send the cluster's token when one is at hand, as ``ray start`` does: Ray 2.5x turns on
    token authentication for the clusters it starts, but a driver that joins one sends its token
    (``RAY_AUTH_TOKEN`` or ``~/.ray/auth_token``) only with ``RAY_AUTH_MODE=token``; without
    it the join fails with ``InvalidAuthToken``. An explicit ``RAY_AUTH_MODE`` is respected."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def package_dirs() -> list[str]:
    """This checkout's ``bench``, ``samplers`` and ``tasks`` folders (shipped to a cluster)."""
    out = []
    for name in ("bench", "samplers", "tasks"):
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise RayUnavailable(f"cannot find the {name} package to ship to the cluster")
        out.append(str(Path(next(iter(spec.submodule_search_locations))).resolve()))
    return out


class RayExecutor:
    """An executor that runs each submitted call as a Ray task (see the module docstring).

    ``address``: an existing cluster (``auto``, ``host:port`` or ``ray://host:port``); ``None``
    starts a local Ray with ``workers`` CPUs (default: this machine's cores) and stops it at
    :meth:`shutdown`. When this process is already connected to Ray, that connection is used
    and left open. ``workers``: jobs in flight (default: the cluster's capacity for ``device``).
    ``threads``/``compile``: every job's :class:`bench.jobs.JobSettings`. ``gpu_per_job``: a
    fixed share of a GPU per job instead of :func:`gpu_share`. ``ship_code``: send this
    checkout's packages to a cluster given by ``address``. ``num_gpus``: the GPUs a local Ray
    declares (default: those Ray detects).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        device: str = "cpu",
        threads: int | None = 1,
        compile: bool = False,
        gpu_per_job: float | None = None,
        max_retries: int = MAX_RETRIES,
        ship_code: bool = True,
        num_gpus: int | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1 or None, got {threads}")
        if gpu_per_job is not None and not 0 < gpu_per_job <= 1:
            raise ValueError(f"gpu_per_job must lie in (0, 1], got {gpu_per_job}")
        ray = self._ray = _import_ray()
        self.device = str(device)
        self.settings = JobSettings(threads=threads, compile=compile)
        self.gpu_per_job = gpu_per_job
        self._owner = False
        if not ray.is_initialized():
            self._start(address, workers, ship_code, num_gpus)
        resources = ray.cluster_resources()
        cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
        if self.device.startswith("cuda") and gpus == 0:
            self.shutdown()
            raise RayUnavailable(
                f"--device {self.device}: the Ray cluster has no GPU ({cpus:g} CPUs); use "
                "--device cpu or a cluster with GPUs"
            )
        if workers is None:
            if self.device.startswith("cuda"):
                smallest = gpu_per_job or GPU_SHARE_STEP
                workers = min(int(gpus / smallest + 1e-9), int(cpus)) or 1
            else:
                workers = max(1, int(cpus))
        self.workers = workers
        self.description = (
            f"Ray {ray.__version__}, {'local cluster' if self._owner else 'cluster'} of "
            f"{cpus:g} CPUs and {gpus:g} GPUs"
        )
        self._remote = ray.remote(max_retries=max_retries)(_call)
        self._shared: dict[int, tuple[Any, Any]] = {}  # id -> (object, its ObjectRef)
        self._refs: dict[cf.Future, Any] = {}
        log(f"executor: {self.description}; {self.workers} job(s) in flight")

    def _start(
        self, address: str | None, workers: int | None, ship_code: bool, num_gpus: int | None
    ) -> None:
        options: dict[str, Any] = {"logging_level": logging.WARNING, "include_dashboard": False}
        try:
            if address:
                if ship_code:
                    options["runtime_env"] = {"py_modules": package_dirs()}
                _token_auth_if_available()
                self._ray.init(address=address, **options)
            else:  # "local": a new instance, never an unrelated cluster found on this machine
                self._ray.init(
                    address="local",
                    num_cpus=workers or os.cpu_count() or 1,
                    num_gpus=num_gpus,
                    object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                    _node_ip_address="127.0.0.1",  # a one-machine cluster talks over loopback
                    **options,
                )
        except Exception as err:  # ConnectionError, RuntimeError, ValueError: say which and why
            where = f"join the Ray cluster at {address}" if address else "start a local Ray"
            raise RayUnavailable(f"could not {where}: {type(err).__name__}: {err}") from err
        self._owner = True

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> cf.Future:
        """``fn(*args, **kwargs)`` as a Ray task with the job's resources; a concurrent.futures
        Future of its result. The task (any argument that is not a spec, a tensor or a plain
        value) is put in Ray's object store once and shared by every job."""
        options = job_resources((*args, *kwargs.values()), self.device, self.gpu_per_job)
        ref = self._remote.options(**options).remote(
            fn,
            *(self._share(a) for a in args),
            **{k: self._share(v) for k, v in kwargs.items()},
        )
        future = ref.future()
        self._refs[future] = ref
        future.add_done_callback(lambda f: self._refs.pop(f, None))
        return future

    def _share(self, arg: Any) -> Any:
        if arg is None or isinstance(
            arg, (str, int, float, bool, RunSpec, torch.Tensor, torch.device)
        ):
            return arg
        if id(arg) not in self._shared:
            self._shared[id(arg)] = (arg, self._ray.put(arg))
        return self._shared[id(arg)][1]

    def shutdown(self) -> None:
        """Cancel the jobs still queued or running; stop the local Ray this executor started, or
        disconnect from the cluster it joined (which stays up); a connection it found open is
        left open."""
        for ref in list(getattr(self, "_refs", {}).values()):
            with contextlib.suppress(Exception):  # already finished, or the cluster is gone
                self._ray.cancel(ref, force=True)
        self._shared = {}
        if self._owner and self._ray.is_initialized():
            self._ray.shutdown()
        self._owner = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
