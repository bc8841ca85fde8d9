"""Sorting and selection along an axis: sort, argsort, partition, argpartition, topk.

Four primitives (SORT, ARGSORT, PARTITION, ARGPARTITION; C kernels in
native/kernels/sort.c) follow numpy's order for every dtype: NaNs last,
complex numbers by real then imaginary part. argsort is stable. The index
forms return uint32, as in mlx. `axis=None` works on the flattened array.
topk is a partition followed by a slice.

Transform rules: sort and partition permute their input, so their tangents
and cotangents move through the same permutation (from argsort /
argpartition, which the kernels guarantee matches the values they return);
the index forms are piecewise constant and carry no derivative.
"""
from . import dtypes as _dt
from ._ffi import lib
from .array import _op, asarray
from .creation import zeros_like
from .indexing import put_along_axis, take_along_axis
from .manipulation import _axis_slice, reshape
from .primitives import register, zero_cotangents, zero_tangent


def _prepare(a, axis, stream):
    a = asarray(a)
    if axis is None:
        return reshape(a, (-1,), stream=stream), 0
    return a, int(axis)


def sort(a, /, axis=-1, *, stream=None):
    """The sorted copy of `a` along `axis` (the flattened array when None)."""
    a, axis = _prepare(a, axis, stream)
    return _op(lib.EM_P_SORT, [a], (axis,), stream=stream)


def argsort(a, /, axis=-1, *, stream=None):
    """Indices (uint32) that sort `a` along `axis`; equal elements keep their order."""
    a, axis = _prepare(a, axis, stream)
    return _op(lib.EM_P_ARGSORT, [a], (axis,), stream=stream)


def partition(a, /, kth, axis=-1, *, stream=None):
    """A copy of `a` with the element at index `kth` (along `axis`) where sorting
    would put it, no larger element before it and no smaller one after it."""
    a, axis = _prepare(a, axis, stream)
    return _op(lib.EM_P_PARTITION, [a], (axis, int(kth)), stream=stream)


def argpartition(a, /, kth, axis=-1, *, stream=None):
    """Indices (uint32) that partition `a` around index `kth` along `axis`."""
    a, axis = _prepare(a, axis, stream)
    return _op(lib.EM_P_ARGPARTITION, [a], (axis, int(kth)), stream=stream)


def topk(a, /, k, axis=-1, *, stream=None):
    """The `k` largest elements of `a` along `axis`, in no particular order
    (NaNs count as the largest, as in numpy's order)."""
    a, axis = _prepare(a, axis, stream)
    if a.ndim == 0:
        raise ValueError("[topk] axis -1 is out of bounds for array of dimension 0")
    ndim = a.ndim
    if not -ndim <= axis < ndim:
        raise ValueError(f"[topk] axis {axis} is out of bounds for array of dimension {ndim}")
    axis %= ndim
    n = a.shape[axis]
    k = int(k)
    if not 0 <= k <= n:
        raise ValueError(f"[topk] k must be between 0 and {n} (the size of axis {axis}), got {k}")
    if k == 0:
        return _axis_slice(a, axis, 0, 0, stream=stream)
    return _axis_slice(partition(a, n - k, axis, stream=stream), axis, n - k, n, stream=stream)


# ---- transform rules ----

def _index_of(node, x):
    """The permutation the node applied to x (argsort or argpartition)."""
    if node.prim == lib.EM_P_SORT:
        return argsort(x, node.ip[0])
    return argpartition(x, node.ip[1], node.ip[0])


def _permute_jvp(node, tangents):
    (t,) = tangents
    if t is None:
        return None
    return take_along_axis(t, _index_of(node, node.inputs[0]), node.ip[0])


def _permute_vjp(node, cotangent):
    x = node.inputs[0]
    if not _dt.is_inexact(x.dtype):
        return [None]
    idx = _index_of(node, x)
    return [put_along_axis(zeros_like(cotangent), idx, cotangent, node.ip[0])]


def _along_axis_vmap(node, inputs, axes):
    """The batch axis is one more axis the op does not touch."""
    (x,), (b,) = inputs, axes
    axis = node.ip[0] + (1 if b <= node.ip[0] else 0)
    return _op(node.prim, [x], (axis,) + tuple(node.ip[1:])), b


register(lib.EM_P_SORT, jvp=_permute_jvp, vjp=_permute_vjp, vmap=_along_axis_vmap)
register(lib.EM_P_PARTITION, jvp=_permute_jvp, vjp=_permute_vjp, vmap=_along_axis_vmap)
register(lib.EM_P_ARGSORT, jvp=zero_tangent, vjp=zero_cotangents, vmap=_along_axis_vmap)
register(lib.EM_P_ARGPARTITION, jvp=zero_tangent, vjp=zero_cotangents, vmap=_along_axis_vmap)


def searchsorted(a, v, /, side="left", sorter=None, *, stream=None):
    """Indices where v's elements would be inserted into the 1-D sorted a to
    keep it sorted (numpy.searchsorted; int32). side='left' gives the first
    such place, 'right' the last; sorter is an argsort of an unsorted a.
    NaN sorts last, as in sort.

    A branch-free binary search: one take and one compare per bit of len(a),
    so it costs O(len(v) log len(a)) and builds no len(a) x len(v) matrix."""
    from .elementwise import isnan, less, less_equal, logical_and, logical_not, logical_or
    from .creation import zeros
    from .indexing import take
    from .manipulation import where
    a, v = asarray(a), asarray(v)
    if a.ndim != 1:
        raise ValueError(f"[searchsorted] a must be 1-D, got shape {a.shape}")
    if side not in ("left", "right"):
        raise ValueError(f"[searchsorted] side must be 'left' or 'right', got {side!r}")
    if sorter is not None:
        a = take_along_axis(a, asarray(sorter), axis=0, stream=stream)
    dtype = _dt.promote_types(a.dtype, v.dtype)
    a, v = a.astype(dtype, stream=stream), v.astype(dtype, stream=stream)
    n = a.size
    nan_aware = _dt.is_inexact(dtype)

    def before(x):
        """Whether element x of a belongs before v's element (x < v for
        'left', x <= v for 'right'), with NaN greater than every number."""
        if side == "left":
            out = less(x, v, stream=stream)
            if nan_aware:
                out = logical_or(out, logical_and(isnan(v, stream=stream),
                                                  logical_not(isnan(x, stream=stream),
                                                              stream=stream), stream=stream),
                                 stream=stream)
        else:
            out = less_equal(x, v, stream=stream)
            if nan_aware:
                out = logical_or(out, isnan(v, stream=stream), stream=stream)
        return out

    found = zeros(v.shape, dtype=_dt.int32)
    step = 1
    while step * 2 <= n:
        step *= 2
    # found = how many leading elements of a are before v; each step tries to
    # advance it by a power of two, largest first.
    while step >= 1 and n:
        candidate = found + step
        in_range = less_equal(candidate, n, stream=stream)
        probe = take(a, where(in_range, candidate - 1, 0, stream=stream), stream=stream)
        found = where(logical_and(in_range, before(probe), stream=stream), candidate, found,
                      stream=stream)
        step //= 2
    return found
