"""Weight files other tools write and read.

- Flat weight files, as MLX's save_weights / load_weights use them: one
  .safetensors or .npz file whose keys are the dotted paths of the tree
  ("layers.0.w"), made with ember.core.utils.tree_flatten / tree_unflatten.

      save_weights("model.safetensors", params)
      params = load_weights("model.safetensors")               # nested dicts/lists
      params = load_weights("model.npz", item=params)          # into a target

- flax.serialization.to_bytes files (msgpack state dicts), read with our
  own decoder (msgpack.py): ndarrays are flax's ext type 1, payload
  msgpack (shape, dtype name, C-order bytes); numpy scalars ext 3 (same
  payload, 0-d); Python complex ext 2 (msgpack (real, imag)); arrays over
  1 GiB are split into {"__msgpack_chunked_array__": True, "shape", "chunks"}.
  Lists, tuples and NamedTuples are dicts keyed "0", "1", ... / by field, as
  flax's state dicts have them; a target restores those containers.

      params = restore_flax_msgpack("flax_model.msgpack", item=params)
"""
import os

import numpy as np

import ember.core as em
from ember.core import dtypes as dt
from ember.core import io as _io
from ember.core.utils import tree_flatten, tree_unflatten

from . import format as fmt
from . import msgpack

_WEIGHT_FORMATS = (".safetensors", ".npz")


def _weights_format(file) -> str:
    name = os.fspath(file)
    for extension in _WEIGHT_FORMATS:
        if name.endswith(extension):
            return extension
    raise ValueError(f"[save_weights] unsupported file extension in {name!r}; use "
                     ".safetensors or .npz")


def save_weights(file, tree) -> None:
    """Writes the array leaves of `tree` to one flat .safetensors or .npz file
    keyed by dotted path (atomically, as ember.core.io writes files)."""
    extension = _weights_format(file)
    flat = tree_flatten(tree)
    for path, leaf in flat:
        if not isinstance(leaf, (em.array, np.ndarray)):
            raise TypeError(f"[save_weights] leaf at {path!r} is a {type(leaf).__name__}, "
                            "not an array")
    weights = dict(flat)
    if len(weights) != len(flat):
        raise ValueError("[save_weights] two leaves have the same dotted path")
    if extension == ".safetensors":
        em.save_safetensors(file, weights)
    else:
        em.savez(file, **weights)


def load_weights(file, item=None, strict: bool = True):
    """The tree in a flat weight file: nested dicts and lists rebuilt from the
    dotted keys, or `item`'s structure filled from them. With strict, keys the
    file has and item lacks (or the reverse) are an error, and shapes and dtypes
    must match; without, item's leaves missing from the file are kept."""
    name = os.fspath(file)
    if not name.endswith(_WEIGHT_FORMATS):
        raise ValueError(f"[load_weights] unsupported file extension in {name!r}; use "
                         ".safetensors or .npz")
    weights = em.load(file)
    if item is None:
        return tree_unflatten(list(weights.items()))
    target = dict(tree_flatten(item))
    if strict:
        extra = sorted(set(weights) - set(target))
        missing = sorted(set(target) - set(weights))
        if extra or missing:
            raise ValueError(f"[load_weights] {name}: keys differ from the target: "
                             f"missing {missing[:5]}, unexpected {extra[:5]}")
    for path, value in weights.items():
        if path not in target:
            continue
        want = target[path]
        if tuple(want.shape) != value.shape:
            raise ValueError(f"[load_weights] {name}: shape differs at {path!r}: the file "
                             f"has {value.shape}, the target {tuple(want.shape)}")
        if strict and dt.as_dtype(want.dtype) != value.dtype:
            raise ValueError(f"[load_weights] {name}: dtype differs at {path!r}: the file "
                             f"has {value.dtype.name}, the target {want.dtype}")
    return em.utils.tree_map_with_path(lambda path, leaf: weights.get(path, leaf), item)


# ---- flax msgpack ----

_FLAX_NDARRAY, _FLAX_COMPLEX, _FLAX_NPSCALAR = 1, 2, 3
_CHUNKED = "__msgpack_chunked_array__"
_BY_NAME = {d.name: d for d in dt.ALL}


def _flax_array(payload: memoryview, path: str):
    """An ember array from flax's ndarray payload."""
    try:
        shape, dtype_name, buffer = msgpack.unpackb(payload)
    except (TypeError, ValueError) as e:
        raise ValueError(f"[restore_flax_msgpack] array at {path!r}: bad payload ({e})") \
            from None
    name = bytes(dtype_name).decode("ascii", "replace") \
        if isinstance(dtype_name, memoryview) else str(dtype_name)
    if name not in _BY_NAME:
        raise ValueError(f"[restore_flax_msgpack] array at {path!r} has dtype {name!r}, "
                         "which ember cannot hold")
    dtype = _BY_NAME[name]
    if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)
            and isinstance(buffer, memoryview)):
        raise ValueError(f"[restore_flax_msgpack] array at {path!r}: malformed "
                         f"(shape {shape!r})")
    expected = dtype.size * int(np.prod(shape, dtype=object))
    if len(buffer) != expected:
        raise ValueError(f"[restore_flax_msgpack] array at {path!r}: {len(buffer)} bytes "
                         f"for shape {tuple(shape)} of {name} (needs {expected})")
    return _io._array_from_bytes(buffer, dtype, tuple(shape))


def _decode_flax(node, path=""):
    """msgpack values -> ember arrays, numpy scalars and Python values."""
    if isinstance(node, msgpack.ExtType):
        if node.code == _FLAX_NDARRAY:
            return _flax_array(node.data, path)
        if node.code == _FLAX_NPSCALAR:
            a = _flax_array(node.data, path)
            if a.dtype == dt.bfloat16:
                return a  # numpy has no bfloat16 scalar of its own
            return np.asarray(a).reshape(())[()]
        if node.code == _FLAX_COMPLEX:
            real, imag = msgpack.unpackb(node.data)
            return complex(real, imag)
        raise ValueError(f"[restore_flax_msgpack] unknown msgpack ext type {node.code} at "
                         f"{path!r}")
    if isinstance(node, dict):
        if node.get(_CHUNKED) is True:
            return _unchunk(node, path)
        return {k: _decode_flax(v, fmt._join(path, k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_decode_flax(v, fmt._join(path, i)) for i, v in enumerate(node)]
    if isinstance(node, memoryview):
        return bytes(node)
    return node


def _unchunk(node, path):
    try:
        shape = tuple(node["shape"][str(i)] for i in range(len(node["shape"])))
        chunks = [_decode_flax(node["chunks"][str(i)], path)
                  for i in range(len(node["chunks"]))]
    except (KeyError, TypeError):
        raise ValueError(f"[restore_flax_msgpack] chunked array at {path!r} is "
                         "malformed") from None
    return em.concatenate(chunks).reshape(shape)


def _from_state_dict(target, state, path=""):
    """flax.serialization.from_state_dict's rules: the target's containers
    decide; its leaves fix shapes and dtypes."""
    where = path or "<root>"
    if fmt._is_namedtuple(target) or isinstance(target, (list, tuple)):
        keys = list(target._fields) if fmt._is_namedtuple(target) else \
            [str(i) for i in range(len(target))]
        if not isinstance(state, dict) or set(state) != set(keys):
            found = list(state)[:8] if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"[restore_flax_msgpack] structure differs at {where!r}: the "
                             f"target has entries {keys[:8]}, the file {found}")
        children = [_from_state_dict(t, state[k], fmt._join(path, k))
                    for k, t in zip(keys, target)]
        if fmt._is_namedtuple(target):
            return type(target)(*children)
        return type(target)(children)
    if isinstance(target, dict):
        if not isinstance(state, dict):
            raise ValueError(f"[restore_flax_msgpack] structure differs at {where!r}: the "
                             f"target has a dict, the file a {type(state).__name__}")
        missing = [k for k in target if str(k) not in state]
        if missing:
            raise ValueError(f"[restore_flax_msgpack] structure differs at "
                             f"{fmt._join(path, missing[0])!r}: the file has no such key")
        return {k: _from_state_dict(v, state[str(k)], fmt._join(path, k))
                for k, v in target.items()}
    if isinstance(state, em.array):
        if hasattr(target, "shape") and tuple(target.shape) != state.shape:
            raise ValueError(f"[restore_flax_msgpack] shape differs at {where!r}: the file "
                             f"has {state.shape}, the target {tuple(target.shape)}")
        if hasattr(target, "dtype") and not isinstance(target, np.generic) and \
                dt.as_dtype(target.dtype) != state.dtype:
            raise ValueError(f"[restore_flax_msgpack] dtype differs at {where!r}: the file "
                             f"has {state.dtype.name}, the target {target.dtype}")
    return state


def restore_flax_msgpack(file, item=None):
    """The state dict in a flax.serialization.to_bytes file (a path, bytes,
    or a binary file object) with ember arrays for its arrays; with `item`,
    that structure filled from it (flax.serialization.from_bytes's rules)."""
    if isinstance(file, (bytes, bytearray, memoryview)):
        data = file
    elif isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as f:
            data = f.read()
    else:
        data = file.read()
    state = _decode_flax(msgpack.unpackb(data))
    return state if item is None else _from_state_dict(item, state)
