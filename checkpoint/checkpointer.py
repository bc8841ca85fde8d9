"""PyTreeCheckpointer: save a pytree to a directory and restore it, as
orbax.checkpoint.PyTreeCheckpointer does.

    ckptr = PyTreeCheckpointer()
    ckptr.save("run/model.ckpt", params)
    ckptr.restore("run/model.ckpt")                       # the tree as saved
    ckptr.restore("run/model.ckpt", item=params)          # into a target
    ckptr.restore("run/model.ckpt", item={"w": w},        # one subtree only
                  partial_restore=True)
    ckptr.restore("run/model.ckpt", item=params,          # an explicit cast
                  restore_args={"w": ArrayRestoreArgs(dtype=em.float16), ...})

A target fixes the structure (its containers, NamedTuple classes included),
and each of its array leaves fixes the shape and dtype (anything with .shape
and .dtype works, ember or numpy arrays or jax.ShapeDtypeStruct): the first
path where the checkpoint differs is named in a ValueError. A dtype change is
never silent: it needs a RestoreArgs(dtype=...) for that leaf. The layout on
disk and crash safety are format.py's.
"""
import dataclasses
from typing import Any, Optional

import numpy as np

from ember.core import array
from ember.core import dtypes as dt

from . import format as fmt


@dataclasses.dataclass
class RestoreArgs:
    """How to restore one leaf (orbax's RestoreArgs): `restore_type` picks
    ember.core.array or np.ndarray for the result (default: as saved), `dtype`
    casts the leaf after reading it."""
    restore_type: Optional[Any] = None
    dtype: Optional[Any] = None


@dataclasses.dataclass
class ArrayRestoreArgs(RestoreArgs):
    """orbax's ArrayRestoreArgs; on one host its sharding fields have no
    meaning, so it carries what RestoreArgs does."""


class PyTreeCheckpointer:
    """Saves pytrees of arrays and scalars as checkpoint directories."""

    def __init__(self, shard_bytes: int = fmt.DEFAULT_SHARD_BYTES):
        if shard_bytes <= 0:
            raise ValueError(f"[PyTreeCheckpointer] shard_bytes must be positive, got "
                             f"{shard_bytes}")
        self.shard_bytes = shard_bytes

    def save(self, directory, item, force: bool = False) -> None:
        """Writes `item` to `directory`, atomically. An existing directory is
        an error unless force=True, which replaces it."""
        self._save(directory, item, force)

    def _save(self, directory, item, force, extra=None, on_commit=None):
        """save() with further JSON files (`extra`) and a callback run once the
        checkpoint is in place: what CheckpointManager needs."""
        node, arrays = fmt.encode_tree(item)
        self._commit(directory, node, arrays, force, extra)
        if on_commit is not None:
            on_commit()

    def _commit(self, directory, node, arrays, force, extra=None):
        with fmt.atomic_directory(directory, overwrite=force) as temp:
            fmt.write_checkpoint(temp, node, arrays, self.shard_bytes, extra)

    def restore(self, directory, item=None, restore_args=None,
                partial_restore: bool = False):
        """The saved tree, or `item`'s structure filled from the checkpoint.

        restore_args: a tree of RestoreArgs with the structure of `item` (or of
        the saved tree when there is no item). partial_restore: `item` may
        leave out dict entries; only what it holds is read."""
        index = fmt.read_index(directory)
        saved = fmt.decode_tree(index, directory)
        if item is None:
            if partial_restore:
                raise ValueError("[restore] partial_restore needs an item naming the "
                                 "subtrees to restore")
            plan = _plan_without_target(saved, restore_args)
        else:
            plan = _plan_with_target(saved, item, restore_args, partial_restore)
        refs = []
        _collect_refs(plan, refs)
        loaded = fmt.load_arrays(directory, index, refs)
        return _fill(plan, loaded)

    def metadata(self, directory):
        """The saved tree with an ArrayRef (path, shape, dtype) per array; no
        array data is read."""
        return fmt.decode_tree(fmt.read_index(directory), directory)

    def wait_until_finished(self) -> None:
        """Saves are synchronous: nothing to wait for (AsyncCheckpointer's API)."""

    def close(self) -> None:
        """Nothing to release (AsyncCheckpointer's API)."""


# ---- restore plans: the tree of what each leaf becomes ----

class _Load:
    """One array to read, then cast and convert."""

    __slots__ = ("ref", "dtype", "to_numpy")

    def __init__(self, ref, dtype, to_numpy):
        self.ref, self.dtype, self.to_numpy = ref, dtype, to_numpy


def _leaf_args(args, path):
    if args is None:
        return RestoreArgs()
    if not isinstance(args, RestoreArgs):
        raise TypeError(f"[restore] restore_args at {path or '<root>'!r} must be a "
                        f"RestoreArgs, got {type(args).__name__}")
    return args


def _wants_numpy(restore_type, path, saved_kind):
    if restore_type is None:
        return saved_kind == "numpy"
    if restore_type is np.ndarray:
        return True
    if restore_type is array:
        return False
    raise TypeError(f"[restore] restore_type at {path!r} must be ember.core.array or "
                    f"np.ndarray, got {restore_type!r}")


def _args_child(args, key, path):
    """The restore_args subtree under `key`, or None when there are none."""
    if args is None:
        return None
    try:
        return args[key]
    except (KeyError, IndexError, TypeError):
        raise ValueError(f"[restore] restore_args has no entry at "
                         f"{fmt._join(path, key)!r}") from None


def _plan_without_target(saved, args, path=""):
    if isinstance(saved, fmt.ArrayRef):
        a = _leaf_args(args, path)
        return _Load(saved, _as_dtype(a.dtype, path),
                     _wants_numpy(a.restore_type, path, saved.kind))
    if isinstance(saved, dict):
        return {k: _plan_without_target(v, _args_child(args, k, path), fmt._join(path, k))
                for k, v in saved.items()}
    if isinstance(saved, (list, tuple)):
        return type(saved)(_plan_without_target(v, _args_child(args, i, path),
                                                fmt._join(path, i))
                           for i, v in enumerate(saved))
    return saved


def _as_dtype(d, path):
    if d is None:
        return None
    try:
        return dt.as_dtype(d)
    except (TypeError, ValueError, KeyError):
        raise TypeError(f"[restore] restore_args dtype at {path!r} is not an ember dtype: "
                        f"{d!r}") from None


def _kind(x):
    """What x is, with its article, for error messages."""
    if isinstance(x, dict):
        return "a dict"
    if fmt._is_namedtuple(x):
        return f"a NamedTuple {type(x).__name__}"
    if isinstance(x, list):
        return "a list"
    if isinstance(x, tuple):
        return "a tuple"
    if isinstance(x, fmt.ArrayRef) or _is_array_like(x):
        return "an array"
    return f"a {type(x).__name__} leaf"


def _is_array_like(x):
    """Arrays and array specs (jax.ShapeDtypeStruct): what fixes a shape and
    dtype in a target; numpy scalars are scalars."""
    return hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, np.generic)


def _plan_with_target(saved, target, args, partial, path=""):
    where = path or "<root>"
    if fmt._is_namedtuple(target):
        # The checkpoint holds a NamedTuple as its field dict; the target's
        # class rebuilds it.
        if not isinstance(saved, dict) or (list(saved) != list(target._fields)
                                           and not partial):
            raise ValueError(f"[restore] structure differs at {where!r}: the checkpoint "
                             f"has {_kind(saved)}, the target {_kind(target)} with "
                             f"fields {list(target._fields)}")
        children = []
        for field, child in zip(target._fields, target):
            if field not in saved:
                raise ValueError(f"[restore] structure differs at "
                                 f"{fmt._join(path, field)!r}: the checkpoint has no such "
                                 "field")
            children.append(_plan_with_target(saved[field], child,
                                              _args_child(args, field, path), partial,
                                              fmt._join(path, field)))
        return type(target)(*children)
    if isinstance(target, dict):
        if not isinstance(saved, dict):
            raise ValueError(f"[restore] structure differs at {where!r}: the checkpoint "
                             f"has {_kind(saved)}, the target a dict")
        missing = [k for k in target if k not in saved]
        if missing:
            raise ValueError(f"[restore] structure differs at "
                             f"{fmt._join(path, missing[0])!r}: the target has this key, "
                             "the checkpoint does not")
        extra = [k for k in saved if k not in target]
        if extra and not partial:
            raise ValueError(f"[restore] structure differs at {fmt._join(path, extra[0])!r}: "
                             "the checkpoint has this key, the target does not (pass "
                             "partial_restore=True to restore a subset)")
        return {k: _plan_with_target(saved[k], v, _args_child(args, k, path), partial,
                                     fmt._join(path, k))
                for k, v in target.items()}
    if isinstance(target, (list, tuple)):
        if not isinstance(saved, (list, tuple)) or (
                isinstance(saved, list) != isinstance(target, list)):
            raise ValueError(f"[restore] structure differs at {where!r}: the checkpoint "
                             f"has {_kind(saved)}, the target {_kind(target)}")
        if len(saved) != len(target):
            raise ValueError(f"[restore] structure differs at {where!r}: the checkpoint's "
                             f"{type(saved).__name__} has {len(saved)} entries, the "
                             f"target's {len(target)}")
        return type(target)(_plan_with_target(s, t, _args_child(args, i, path), partial,
                                              fmt._join(path, i))
                            for i, (s, t) in enumerate(zip(saved, target)))
    if isinstance(saved, fmt.ArrayRef):
        if not _is_array_like(target):
            raise ValueError(f"[restore] structure differs at {where!r}: the checkpoint has "
                             f"an array, the target {_kind(target)}")
        a = _leaf_args(args, path)
        cast = _as_dtype(a.dtype, where)
        if tuple(target.shape) != saved.shape:
            raise ValueError(f"[restore] shape differs at {where!r}: the checkpoint has "
                             f"{saved.shape}, the target {tuple(target.shape)}")
        want = _target_dtype(target, where)
        got = cast or saved.dtype
        if want != got:
            hint = "" if cast else " (pass restore_args with dtype= to cast)"
            raise ValueError(f"[restore] dtype differs at {where!r}: the checkpoint has "
                             f"{saved.dtype.name}{' cast to ' + got.name if cast else ''}, "
                             f"the target {want.name}{hint}")
        restore_type = a.restore_type
        if restore_type is None:
            restore_type = np.ndarray if isinstance(target, np.ndarray) else (
                array if isinstance(target, array) else None)
        return _Load(saved, cast, _wants_numpy(restore_type, where, saved.kind))
    if _kind(saved) != _kind(target) and isinstance(saved, (dict, list, tuple)):
        raise ValueError(f"[restore] structure differs at {where!r}: the checkpoint has "
                         f"{_kind(saved)}, the target {_kind(target)}")
    if _is_array_like(target):
        raise ValueError(f"[restore] structure differs at {where!r}: the checkpoint has "
                         f"{_kind(saved)}, the target an array")
    return saved


def _target_dtype(target, where):
    d = target.dtype
    if isinstance(d, dt.Dtype):
        return d
    try:
        return dt.from_numpy_dtype(d)
    except TypeError:
        raise ValueError(f"[restore] target at {where!r} has dtype {d}, which ember cannot "
                         "hold") from None


def _collect_refs(plan, out):
    if isinstance(plan, _Load):
        out.append(plan.ref)
    elif isinstance(plan, dict):
        for v in plan.values():
            _collect_refs(v, out)
    elif isinstance(plan, (list, tuple)):
        for v in plan:
            _collect_refs(v, out)


def _fill(plan, loaded):
    if isinstance(plan, _Load):
        value = loaded[plan.ref.index]
        if isinstance(value, np.ndarray):
            if plan.dtype is not None and plan.dtype != plan.ref.dtype:
                value = array(value).astype(plan.dtype)
            return np.asarray(value) if plan.to_numpy else (
                value if isinstance(value, array) else array(value))
        if plan.dtype is not None:
            value = value.astype(plan.dtype)
        return _numpy_copy(value) if plan.to_numpy else value
    if isinstance(plan, dict):
        return {k: _fill(v, loaded) for k, v in plan.items()}
    if fmt._is_namedtuple(plan):
        return type(plan)(*(_fill(v, loaded) for v in plan))
    if isinstance(plan, (list, tuple)):
        return type(plan)(_fill(v, loaded) for v in plan)
    return plan


def _numpy_copy(a: array) -> np.ndarray:
    """A numpy array owning a copy of `a` (bfloat16 as ml_dtypes.bfloat16)."""
    if a.dtype == dt.bfloat16:
        import ml_dtypes
        from ember.core.io import _element_view
        return np.array(_element_view(a)).view(ml_dtypes.bfloat16)
    return np.array(a)
