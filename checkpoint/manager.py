"""CheckpointManager: numbered checkpoints of a training run with a policy for
when to save and which to keep, as orbax.checkpoint.CheckpointManager's
classic API (one item, a checkpointer passed in) has it.

    options = CheckpointManagerOptions(max_to_keep=4, create=True)
    mngr = CheckpointManager("run/managed", PyTreeCheckpointer(), options)
    for step in range(10):
        mngr.save(step, params, metrics={"loss": loss})
    mngr.all_steps()        # [6, 7, 8, 9]
    mngr.restore(mngr.latest_step())

Layout: one checkpoint directory per step, named `<step>` (or
`<step_prefix>_<step>`, zero-padded to step_format_fixed_length), holding the
tree (format.py) and `metrics.json` when metrics were given; each appears by
an atomic rename, so after a crash `all_steps` sees only complete steps.

The policies follow orbax's legacy options:
- should_save(step): False when step <= latest_step; else True when there is
  no checkpoint yet, step % save_interval_steps == 0, or step in save_on_steps
  (should_save_fn(step, latest_step), when given, decides instead).
- after each save, a checkpoint is kept if any of these keeps it: keep_period
  (step % keep_period == 0); with best_fn, the max_to_keep best by
  best_fn(metrics) (best_mode "max" or "min"; those without metrics kept when
  keep_checkpoints_without_metrics); without best_fn, the max_to_keep latest.
  The new checkpoint is written before the old ones are deleted.
"""
import dataclasses
import datetime
import json
import os
import re
import shutil
import threading
import warnings
from typing import Any, Callable, Container, Optional

import numpy as np

import ember.core as em

from . import format as fmt
from .async_checkpointer import AsyncCheckpointer
from .checkpointer import PyTreeCheckpointer

METRICS_FILE = "metrics.json"


class StepAlreadyExistsError(ValueError):
    """A save asked for a step that already has a checkpoint."""


@dataclasses.dataclass
class CheckpointManagerOptions:
    """Options of CheckpointManager; names and defaults are orbax's."""
    save_interval_steps: int = 1
    max_to_keep: Optional[int] = None
    keep_period: Optional[int] = None
    best_fn: Optional[Callable[[Any], float]] = None
    best_mode: str = "max"
    keep_checkpoints_without_metrics: bool = True
    step_prefix: Optional[str] = None
    step_format_fixed_length: Optional[int] = None
    create: bool = True
    cleanup_tmp_directories: bool = False
    save_on_steps: Optional[Container[int]] = None
    should_save_fn: Optional[Callable[[int, Optional[int]], bool]] = None
    read_only: bool = False
    enable_async_checkpointing: bool = True

    def __post_init__(self):
        if self.best_mode not in ("min", "max"):
            raise ValueError("`CheckpointManagerOptions.best_mode` must be one of None, 'min' "
                             f"or 'max'. Got {self.best_mode}.")
        if self.max_to_keep is not None and self.max_to_keep < 0:
            raise ValueError("Setting of `max_to_keep` must be None or non-negative.")
        if self.keep_period is not None and self.keep_period <= 0:
            raise ValueError(f"`keep_period` must be positive, got {self.keep_period}")
        if self.read_only:
            self.save_interval_steps = 0
            self.max_to_keep = None
            self.keep_period = None


@dataclasses.dataclass
class CheckpointInfo:
    step: int
    time: datetime.datetime
    metrics: Optional[Any]


def _plain_metrics(metrics, path="metrics"):
    """Metrics as JSON values: one-element ember or numpy arrays (a loss
    straight from a train step) become Python numbers, at save time."""
    if metrics is None or isinstance(metrics, (bool, int, float, str)):
        return metrics
    if isinstance(metrics, dict):
        return {str(k): _plain_metrics(v, f"{path}.{k}") for k, v in metrics.items()}
    if isinstance(metrics, (list, tuple)):
        return [_plain_metrics(v, f"{path}.{i}") for i, v in enumerate(metrics)]
    if isinstance(metrics, (em.array, np.ndarray, np.generic)) and metrics.size == 1:
        return metrics.item()
    raise TypeError(f"[CheckpointManager] {path} is a {type(metrics).__name__}; metrics hold "
                    "numbers, strings and one-element arrays")


class CheckpointManager:
    """Saves, lists, restores and prunes the step checkpoints of one run."""

    def __init__(self, directory, checkpointers=None,
                 options: Optional[CheckpointManagerOptions] = None):
        self._options = options if options is not None else CheckpointManagerOptions()
        if checkpointers is None:
            checkpointers = (AsyncCheckpointer() if self._options.enable_async_checkpointing
                             else PyTreeCheckpointer())
        if not isinstance(checkpointers, (PyTreeCheckpointer, AsyncCheckpointer)):
            raise TypeError("[CheckpointManager] checkpointers must be a PyTreeCheckpointer "
                            f"or an AsyncCheckpointer, got {type(checkpointers).__name__}")
        self._checkpointer = checkpointers
        self._directory = os.path.abspath(os.fspath(directory))
        if not os.path.isdir(self._directory):
            if not self._options.create or self._options.read_only:
                raise FileNotFoundError(f"[CheckpointManager] directory {self._directory} "
                                        "does not exist (pass create=True to make it)")
            os.makedirs(self._directory, exist_ok=True)
        if self._options.cleanup_tmp_directories and not self._options.read_only:
            for name in os.listdir(self._directory):
                if fmt.is_temporary(name):
                    shutil.rmtree(os.path.join(self._directory, name), ignore_errors=True)
        self._lock = threading.Lock()  # guards _checkpoints against the save thread
        self._checkpoints = self._load_checkpoint_infos()

    # ---- step directories ----

    @property
    def directory(self) -> str:
        return self._directory

    def _step_name(self, step: int) -> str:
        digits = str(step) if self._options.step_format_fixed_length is None else \
            str(step).zfill(self._options.step_format_fixed_length)
        prefix = self._options.step_prefix
        return f"{prefix}_{digits}" if prefix else digits

    def _step_from_name(self, name: str) -> Optional[int]:
        prefix = self._options.step_prefix
        pattern = (re.escape(prefix) + "_" if prefix else "") + r"(\d+)"
        match = re.fullmatch(pattern, name)
        return int(match[1]) if match else None

    def _step_dir(self, step: int) -> str:
        return os.path.join(self._directory, self._step_name(step))

    def _load_checkpoint_infos(self):
        infos = []
        for name in os.listdir(self._directory):
            step = self._step_from_name(name)
            path = os.path.join(self._directory, name)
            if step is None or not os.path.isfile(os.path.join(path, fmt.INDEX_FILE)):
                continue
            metrics = None
            metrics_file = os.path.join(path, METRICS_FILE)
            if os.path.exists(metrics_file):
                with open(metrics_file, "rb") as f:
                    try:
                        metrics = json.loads(f.read())
                    except ValueError as e:
                        raise ValueError(f"[CheckpointManager] {metrics_file}: not valid JSON "
                                         f"({e})") from None
            mtime = os.stat(path).st_mtime
            infos.append(CheckpointInfo(step, datetime.datetime.fromtimestamp(
                mtime, tz=datetime.timezone.utc), metrics))
        return sorted(infos, key=lambda info: info.step)

    def reload(self) -> None:
        """Re-reads the steps on disk (after another process changed them)."""
        self.wait_until_finished()
        self._refresh()

    def _refresh(self):
        with self._lock:
            self._checkpoints = self._load_checkpoint_infos()

    # ---- queries ----

    def all_steps(self, read: bool = False) -> list:
        """The steps with a checkpoint, ascending (read=True re-reads the disk)."""
        if read:
            self.reload()
        with self._lock:
            return [info.step for info in self._checkpoints]

    def latest_step(self) -> Optional[int]:
        with self._lock:
            return self._checkpoints[-1].step if self._checkpoints else None

    def best_step(self) -> Optional[int]:
        """The step best by options.best_fn (the latest one without best_fn)."""
        if self._options.best_fn is None:
            return self.latest_step()
        with self._lock:
            ranked = self._sorted_by_metrics(self._checkpoints)
        return ranked[-1].step if ranked else None

    def _sorted_by_metrics(self, infos):
        """Infos with metrics, worst first."""
        return sorted((info for info in infos if info.metrics is not None),
                      key=lambda info: self._options.best_fn(info.metrics),
                      reverse=self._options.best_mode == "min")

    def metrics(self, step: int) -> Optional[Any]:
        """The metrics saved with `step` (None when there were none)."""
        with self._lock:
            for info in self._checkpoints:
                if info.step == step:
                    return info.metrics
        raise FileNotFoundError(f"[CheckpointManager] no checkpoint for step {step}")

    def should_save(self, step: int) -> bool:
        options = self._options
        if options.read_only:
            return False
        last = self.latest_step()
        if last is not None and last >= step:
            return False
        if options.should_save_fn is not None:
            return bool(options.should_save_fn(step, last))
        return (last is None
                or (bool(options.save_interval_steps) and step % options.save_interval_steps == 0)
                or (options.save_on_steps is not None and step in options.save_on_steps))

    # ---- save, restore, delete ----

    def save(self, step: int, items, metrics=None, force: bool = False) -> bool:
        """Saves `items` as `step` when should_save(step) (or force) says so;
        returns whether it did. Old checkpoints are pruned once it is on disk."""
        if self._options.read_only:
            return False
        if not force and not self.should_save(step):
            return False
        self.wait_until_finished()
        if step in self.all_steps():
            raise StepAlreadyExistsError(f"Checkpoint for step {step} already exists.")
        if self._options.best_fn is not None and metrics is None:
            warnings.warn("Requested `tracked_metric`; did not provide metrics.")
        metrics = _plain_metrics(metrics)
        extra = {METRICS_FILE: metrics} if metrics is not None else None
        with self._lock:
            self._checkpoints.append(CheckpointInfo(
                step, datetime.datetime.now(tz=datetime.timezone.utc), metrics))
            doomed = self._steps_to_remove()
            self._checkpoints = [info for info in self._checkpoints if info.step not in doomed]

        def prune():
            for old in doomed:
                fmt.remove_directory(self._step_dir(old))

        try:
            self._checkpointer._save(self._step_dir(step), items, False, extra, on_commit=prune)
        except BaseException:
            self._refresh()
            raise
        return True

    def _steps_to_remove(self) -> set:
        options, infos = self._options, self._checkpoints
        keep = [False] * len(infos)
        if options.keep_period is not None:
            keep = [k or info.step % options.keep_period == 0 for k, info in zip(keep, infos)]
        n = options.max_to_keep
        if options.best_fn is not None:
            if n is None or len(infos) <= n:
                best = [True] * len(infos)
            elif n == 0:
                best = [False] * len(infos)
            else:
                chosen = {id(info) for info in self._sorted_by_metrics(infos)[-n:]}
                best = [id(info) in chosen or (
                    info.metrics is None and options.keep_checkpoints_without_metrics)
                    for info in infos]
            keep = [k or b for k, b in zip(keep, best)]
        elif n is None or len(infos) <= n:
            keep = [True] * len(infos)
        else:
            keep = [k or i >= len(infos) - n for i, k in enumerate(keep)]
        return {info.step for info, k in zip(infos, keep) if not k}

    def restore(self, step: Optional[int] = None, items=None, restore_kwargs=None):
        """The tree saved as `step` (the latest step when None), into `items`
        when given; restore_kwargs go to the checkpointer's restore
        (restore_args, partial_restore)."""
        self.wait_until_finished()
        if step is None:
            step = self.latest_step()
            if step is None:
                raise FileNotFoundError(f"[CheckpointManager] no checkpoints in "
                                        f"{self._directory}")
        if step not in self.all_steps():
            raise FileNotFoundError(f"[CheckpointManager] no checkpoint for step {step} in "
                                    f"{self._directory}")
        return self._checkpointer.restore(self._step_dir(step), item=items,
                                          **(restore_kwargs or {}))

    def delete(self, step: int) -> None:
        if self._options.read_only:
            return
        self.wait_until_finished()
        if step not in self.all_steps():
            raise FileNotFoundError(f"Requested deleting a non-existent step: {step}.")
        fmt.remove_directory(self._step_dir(step))
        with self._lock:
            self._checkpoints = [info for info in self._checkpoints if info.step != step]

    def wait_until_finished(self) -> None:
        """Blocks until an asynchronous save (and its pruning) is done; if it
        failed, re-reads the steps on disk and raises its error."""
        try:
            self._checkpointer.wait_until_finished()
        except BaseException:
            self._refresh()
            raise

    def close(self) -> None:
        self.wait_until_finished()
        self._checkpointer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
