"""Array creation: constants, ranges and the identity-like matrices."""
import math

from . import dtypes as _dt
from ._ffi import lib
from .array import _op, array, asarray


def _shape_tuple(shape, op):
    if isinstance(shape, int):
        shape = (shape,)
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"[{op}] shape must be an int or a sequence of ints, got {shape!r}") from None
    for s in shape:
        if s < 0:
            raise ValueError(f"[{op}] negative dimensions are not allowed, got shape {shape}")
    return shape


def full(shape, vals, dtype=None, *, stream=None):
    """An array of `shape` filled with `vals` (broadcast to the shape)."""
    from .manipulation import broadcast_to
    shape = _shape_tuple(shape, "full")
    vals = asarray(vals) if dtype is None else asarray(vals, _dt.as_dtype(dtype))
    return _op(lib.EM_P_COPY, [broadcast_to(vals, shape, stream=stream)], stream=stream)


def zeros(shape, dtype=_dt.float32, *, stream=None):
    """An array of zeros."""
    return full(shape, array(0, _dt.as_dtype(dtype)), stream=stream)


def ones(shape, dtype=_dt.float32, *, stream=None):
    """An array of ones."""
    return full(shape, array(1, _dt.as_dtype(dtype)), stream=stream)


def empty(shape, dtype=_dt.float32, *, stream=None):
    """An array whose values do not matter (ember fills it with zeros)."""
    return zeros(shape, dtype, stream=stream)


def zeros_like(a, /, *, stream=None):
    a = asarray(a)
    return zeros(a.shape, a.dtype, stream=stream)


def ones_like(a, /, *, stream=None):
    a = asarray(a)
    return ones(a.shape, a.dtype, stream=stream)


def full_like(a, /, vals, dtype=None, *, stream=None):
    a = asarray(a)
    return full(a.shape, vals, dtype or a.dtype, stream=stream)


def empty_like(a, /, *, stream=None):
    return zeros_like(a, stream=stream)


def arange(*args, dtype=None, stream=None, **kwargs):
    """arange(stop), arange(start, stop[, step]): evenly spaced values in [start, stop).

    The dtype is int32 when every bound is an int, float32 otherwise."""
    names = ("start", "stop", "step")
    if len(args) > 3:
        raise TypeError("[arange] takes at most 3 positional arguments")
    given = dict(zip(names if len(args) > 1 else ("stop",), args))
    given.update(kwargs)
    unknown = set(given) - set(names)
    if unknown:
        raise TypeError(f"[arange] unexpected arguments {sorted(unknown)}")
    if "stop" not in given:
        if "start" in given:
            given["stop"], given["start"] = given.pop("start"), 0
        else:
            raise TypeError("[arange] missing stop")
    start, stop, step = given.get("start", 0), given["stop"], given.get("step", 1)
    bounds = (start, stop, step)
    for v in bounds:
        if isinstance(v, array):
            raise TypeError("[arange] bounds must be Python scalars")
    if step == 0:
        raise ValueError("[arange] step cannot be 0")
    if dtype is None:
        dtype = _dt.int32 if all(isinstance(v, int) for v in bounds) else _dt.float32
    dtype = _dt.as_dtype(dtype)
    if any(isinstance(v, float) and (math.isnan(v) or math.isinf(v)) for v in bounds):
        raise ValueError("[arange] bounds must be finite")
    n = max(int(math.ceil((stop - start) / step)), 0)
    return _op(lib.EM_P_ARANGE, [], (dtype.value, n), (float(start), float(step)), stream=stream)


def linspace(start, stop, num=50, dtype=_dt.float32, *, stream=None):
    """`num` evenly spaced values from start to stop, both included."""
    if num < 0:
        raise ValueError(f"[linspace] num must be non-negative, got {num}")
    dtype = _dt.as_dtype(dtype)
    step = (stop - start) / (num - 1) if num > 1 else 0.0
    return _op(lib.EM_P_ARANGE, [], (dtype.value, int(num)), (float(start), float(step)),
               stream=stream)


def _index_grid(n, m, k, stream):
    """Row index + k and column index, broadcastable to (n, m)."""
    from .manipulation import expand_dims
    rows = expand_dims(arange(n, stream=stream), 1, stream=stream) + k
    cols = expand_dims(arange(m, stream=stream), 0, stream=stream)
    return rows, cols


def eye(n, m=None, k=0, dtype=_dt.float32, *, stream=None):
    """An n x m matrix with ones on the k-th diagonal."""
    m = n if m is None else m
    rows, cols = _index_grid(n, m, k, stream)
    return (rows == cols).astype(dtype, stream=stream)


def identity(n, dtype=_dt.float32, *, stream=None):
    """The n x n identity matrix."""
    return eye(n, dtype=dtype, stream=stream)


def tri(n, m=None, k=0, dtype=_dt.float32, *, stream=None):
    """An n x m matrix with ones at and below the k-th diagonal."""
    m = n if m is None else m
    rows, cols = _index_grid(n, m, k, stream)
    return (cols <= rows).astype(dtype, stream=stream)


def meshgrid(*arrays, sparse=False, indexing="xy", stream=None):
    """Coordinate matrices from 1-D coordinate vectors (as numpy.meshgrid)."""
    from .manipulation import broadcast_arrays, reshape
    if indexing not in ("xy", "ij"):
        raise ValueError(f"[meshgrid] indexing must be 'xy' or 'ij', got {indexing!r}")
    arrays = [asarray(a) for a in arrays]
    n = len(arrays)
    outs = []
    for i, a in enumerate(arrays):
        axis = i
        if indexing == "xy" and n >= 2 and i < 2:
            axis = 1 - i  # 'xy' lays the first two vectors out as columns, then rows
        shape = [1] * n
        shape[axis] = -1
        outs.append(reshape(a, shape, stream=stream))
    return outs if sparse else list(broadcast_arrays(*outs, stream=stream))
