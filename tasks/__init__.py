"""Grokking tasks: modular arithmetic, S5 permutations, and Gaussian toy targets.

::

    import tasks
    tasks.names("*_mod113")            # ['add_mod113', 'sub_mod113']
    task = tasks.make("add_mod113")    # or any prime: tasks.make("div_mod59", frac_train=0.4)
    theta = task.init(seed=0, chains=4)
    U = task.potential()               # U(theta, batch) -> (C,)
    task.evaluate(theta)               # {"train_loss", "train_acc", "val_loss", "val_acc"}: (C,)

``tasks.Task`` is the contract every task keeps (a ``typing.Protocol``: ``isinstance(task,
tasks.Task)``); ``tasks.TableTask`` is the table task that keeps it. See :mod:`tasks.base` for
both, :mod:`tasks.models` for the chain-batched models, :mod:`tasks.toy` for the Gaussians.
"""

from .base import ModelPotential, TableTask, Task, TaskError
from .models import ChainModel
from .registry import LIGHT_TASK, LIGHT_TASKS, MEDIUM_TASK, PAPER_TASK, make, names, register

__all__ = [
    "LIGHT_TASK",
    "LIGHT_TASKS",
    "MEDIUM_TASK",
    "PAPER_TASK",
    "ChainModel",
    "ModelPotential",
    "TableTask",
    "Task",
    "TaskError",
    "make",
    "names",
    "register",
]
