"""AsyncCheckpointer: a PyTreeCheckpointer whose saves run in the background,
as orbax.checkpoint.AsyncCheckpointer's do.

    ckptr = AsyncCheckpointer(PyTreeCheckpointer())
    ckptr.save("run/step_10", params)     # returns at once
    params = train_step(params, ...)       # training goes on, rebinding params
    ckptr.wait_until_finished()            # the checkpoint is on disk

`save` takes its snapshot at call time: ember arrays are immutable values, so
holding references to them is the snapshot (the background thread evaluates
any still lazy ones and writes their buffers); containers are rebuilt and
numpy leaves, which can be mutated in place, are copied. Leaf types are
checked before `save` returns. One save runs at a time: a second save waits
for the first. An error in the background is raised by the next
`wait_until_finished`, `save` or `restore`.
"""
import threading
from typing import Optional

import numpy as np

from . import format as fmt
from .checkpointer import PyTreeCheckpointer


def _snapshot(tree):
    """New containers over the same ember arrays; numpy leaves copied."""
    if isinstance(tree, np.ndarray):
        return tree.copy()
    if isinstance(tree, dict):
        return {k: _snapshot(v) for k, v in tree.items()}
    if fmt._is_namedtuple(tree):
        return type(tree)(*(_snapshot(v) for v in tree))
    if isinstance(tree, (list, tuple)):
        return type(tree)(_snapshot(v) for v in tree)
    return tree


class AsyncCheckpointer:
    """Wraps a PyTreeCheckpointer; save() returns before the write is done."""

    def __init__(self, checkpointer: Optional[PyTreeCheckpointer] = None):
        self._checkpointer = checkpointer if checkpointer is not None else PyTreeCheckpointer()
        self._thread = None
        self._error = None

    @property
    def checkpointer(self) -> PyTreeCheckpointer:
        return self._checkpointer

    def save(self, directory, item, force: bool = False) -> None:
        """Starts writing `item` to `directory` in a background thread."""
        self._save(directory, item, force)

    def _save(self, directory, item, force, extra=None, on_commit=None):
        node, arrays = fmt.encode_tree(_snapshot(item))
        self.wait_until_finished()

        def run():
            try:
                self._checkpointer._commit(directory, node, arrays, force, extra)
                if on_commit is not None:
                    on_commit()
            except BaseException as e:  # noqa: BLE001  handed to the caller's thread
                self._error = e

        # Not a daemon: a program that ends right after save() still gets its
        # checkpoint, as the interpreter waits for the thread at exit.
        self._thread = threading.Thread(target=run, name="ember-checkpoint-save")
        self._thread.start()

    def wait_until_finished(self) -> None:
        """Blocks until the save in flight (if any) is on disk; raises its error."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.check_for_errors()

    def check_for_errors(self) -> None:
        """Raises the error of a finished background save, once."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def restore(self, directory, *args, **kwargs):
        """Waits for the save in flight, then restores as PyTreeCheckpointer does."""
        self.wait_until_finished()
        return self._checkpointer.restore(directory, *args, **kwargs)

    def metadata(self, directory):
        self.wait_until_finished()
        return self._checkpointer.metadata(directory)

    def close(self) -> None:
        """Waits for the save in flight."""
        self.wait_until_finished()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
