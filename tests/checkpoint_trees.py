"""Random pytrees for the checkpoint tests: every ember dtype, nested dict /
list / tuple / NamedTuple containers, scalars, and a bit-exact comparison."""
from typing import NamedTuple

import ml_dtypes
import numpy as np

import ember.core as em
from ember.core import io as em_io

DTYPES = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
          "float16", "float32", "float64", "bfloat16", "complex64"]


class Pair(NamedTuple):
    first: object
    second: object


def random_numpy(rng, dtype: str, shape) -> np.ndarray:
    """Random values of `dtype` (bfloat16 as ml_dtypes), specials included for floats."""
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype.startswith(("uint", "int")):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    if dtype == "complex64":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    x = rng.standard_normal(shape) * 100
    if x.size >= 4:
        x.flat[:3] = [np.nan, np.inf, -0.0]
    return x.astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)


def random_array(rng, dtype: str, shape) -> em.array:
    return em.array(random_numpy(rng, dtype, shape))


def random_shape(rng):
    return tuple(int(n) for n in rng.integers(0, 6, size=int(rng.integers(0, 4))))


def random_tree(rng):
    """A nested tree holding one array of every dtype plus scalars."""
    arrays = {d: random_array(rng, d, random_shape(rng)) for d in DTYPES}
    return {
        "params": {"dense": {"kernel": random_array(rng, "float32", (7, 5)),
                             "bias": random_array(rng, "bfloat16", (5,))},
                   "by_dtype": arrays},
        "layers": [random_array(rng, "float16", (3,)),
                   (random_array(rng, "int32", (2, 2)), Pair(random_array(rng, "uint8", (4,)),
                                                             [int(rng.integers(-9, 9))]))],
        "step": int(rng.integers(0, 2**40)),
        "lr": float(rng.random()),
        "name": "run-" + str(int(rng.integers(0, 1000))),
        "nothing": None,
        "flag": bool(rng.random() < 0.5),
        "np_scalar": np.float64(rng.standard_normal()),
        "np_int": np.int16(rng.integers(-100, 100)),
        "np_array": random_numpy(rng, "float64", (3, 2)),
        3: random_array(rng, "complex64", (2,)),
    }


def exact_bytes(x) -> bytes:
    """The exact bytes of an ember or numpy array (bfloat16 as its bits)."""
    if isinstance(x, em.array):
        return bytes(em_io._array_bytes(x))
    return np.ascontiguousarray(x).tobytes()


def assert_same_tree(got, want, path="<root>", ordered=True):
    """Same containers (types included, dict order too when `ordered`), same
    leaf types, identical bytes."""
    assert type(got) is type(want), f"{path}: {type(got).__name__} vs {type(want).__name__}"
    if isinstance(want, dict):
        keys_got, keys_want = (list(got), list(want)) if ordered else (set(got), set(want))
        assert keys_got == keys_want, f"{path}: keys {list(got)} vs {list(want)}"
        for k in want:
            assert_same_tree(got[k], want[k], f"{path}.{k}", ordered)
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same_tree(g, w, f"{path}.{i}", ordered)
    elif isinstance(want, (em.array, np.ndarray)):
        assert got.shape == want.shape and got.dtype == want.dtype, path
        assert exact_bytes(got) == exact_bytes(want), path
    elif isinstance(want, float):
        assert got.hex() == want.hex(), path
    elif isinstance(want, np.generic):
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), path
    else:
        assert got == want, path


def without_namedtuples(tree):
    """`tree` as a restore without a target gives it back: NamedTuples become
    their field dicts (a checkpoint never names a class to import)."""
    if isinstance(tree, dict):
        return {k: without_namedtuples(v) for k, v in tree.items()}
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return {f: without_namedtuples(v) for f, v in zip(tree._fields, tree)}
    if isinstance(tree, (list, tuple)):
        return type(tree)(without_namedtuples(v) for v in tree)
    return tree
