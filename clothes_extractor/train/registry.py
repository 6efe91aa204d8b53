"""The trainable tasks by name: the one place that maps a run configuration to its task.

A run's ``config.json`` records ``task`` (the config class's ``task``, the task's ``kind``);
this dict turns it back into its config class and its task.
"""

from __future__ import annotations

from typing import Any

from clothes_extractor.errors import ConfigError
from clothes_extractor.train.config import LoopConfig
from clothes_extractor.train.generator import GeneratorTask
from clothes_extractor.train.segmenter import SegmenterTask
from clothes_extractor.train.task import TrainTask

TASKS: dict[str, type[TrainTask]] = {t.kind: t for t in (GeneratorTask, SegmenterTask)}


def task_class(name: str) -> type[TrainTask]:
    if name not in TASKS:
        raise ConfigError(f"unknown training task {name!r}; expected one of {', '.join(TASKS)}")
    return TASKS[name]


def task_for(cfg: LoopConfig) -> TrainTask:
    """The task that trains what ``cfg`` describes."""
    return task_class(cfg.task)(cfg)


def config_from_dict(data: dict[str, Any]) -> LoopConfig:
    """A run configuration read back as the config class of its task (runs written before the
    segmenter existed have no ``task``: generator)."""
    return task_class(data.get("task", GeneratorTask.kind)).config_class.from_dict(data)
