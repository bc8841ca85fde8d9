"""Reductions, arg-reductions, scans and the compositions built on them
(mean, var, std, logsumexp, softmax).

Reduction primitives keep the reduced axes (size 1) and `keepdims=False` is a
reshape on top, so every reduction has one shape rule in C.
"""
from . import dtypes as _dt
from ._ffi import lib
from .array import _op, asarray
from .manipulation import reshape


def _reduce_axes(a, axis, name):
    if axis is None:
        return tuple(range(a.ndim))
    if isinstance(axis, int):
        axis = (axis,)
    ndim = a.ndim
    out = []
    for ax in axis:
        ax = int(ax)
        if not -ndim <= ax < ndim:
            raise ValueError(f"[{name}] axis {ax} is out of bounds for array of dimension {ndim}")
        out.append(ax % ndim)
    return tuple(out)


def _drop_axes(a, out, axes, keepdims, stream):
    if keepdims:
        return out
    return reshape(out, tuple(s for i, s in enumerate(a.shape) if i not in axes), stream=stream)


def _reduction(prim, name, doc):
    def op(a, /, axis=None, keepdims=False, *, stream=None):
        a = asarray(a)
        axes = _reduce_axes(a, axis, name)
        out = _op(prim, [a], axes, stream=stream)
        return _drop_axes(a, out, set(axes), keepdims, stream)
    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


sum = _reduction(lib.EM_P_SUM, "sum", "Sum over axes (all when axis is None); bool sums to int32.")
prod = _reduction(lib.EM_P_PROD, "prod", "Product over axes.")
max = _reduction(lib.EM_P_MAX, "max", "Maximum over axes (NaN propagates).")
min = _reduction(lib.EM_P_MIN, "min", "Minimum over axes (NaN propagates).")
all = _reduction(lib.EM_P_ALL, "all", "Whether every element over the axes is true.")
any = _reduction(lib.EM_P_ANY, "any", "Whether some element over the axes is true.")


def _count(a, axes):
    n = 1
    for ax in axes:
        n *= a.shape[ax]
    return n


def mean(a, /, axis=None, keepdims=False, *, stream=None):
    """Arithmetic mean over axes (integer inputs give float32)."""
    a = asarray(a)
    if not _dt.is_inexact(a.dtype):
        a = a.astype(_dt.float32, stream=stream)
    axes = _reduce_axes(a, axis, "mean")
    return sum(a, axes, keepdims, stream=stream) / _count(a, axes)


def var(a, /, axis=None, keepdims=False, ddof=0, *, stream=None):
    """Variance over axes: mean((a - mean(a))**2) * n / (n - ddof)."""
    a = asarray(a)
    if not _dt.is_inexact(a.dtype):
        a = a.astype(_dt.float32, stream=stream)
    axes = _reduce_axes(a, axis, "var")
    centered = a - mean(a, axes, True, stream=stream)
    n = _count(a, axes)
    if a.dtype == _dt.complex64:  # |a - mean|^2 is real, as in mlx
        from .elementwise import real
        sq = real(centered * centered.conj(), stream=stream)
    else:
        sq = centered * centered
    return sum(sq, axes, keepdims, stream=stream) / (n - ddof if n - ddof > 0 else float("nan"))


def std(a, /, axis=None, keepdims=False, ddof=0, *, stream=None):
    """Standard deviation over axes (square root of var)."""
    from .elementwise import sqrt
    return sqrt(var(a, axis, keepdims, ddof, stream=stream), stream=stream)


def _argreduction(prim, name, doc):
    def op(a, /, axis=None, keepdims=False, *, stream=None):
        a = asarray(a)
        if axis is None:
            flat = reshape(a, (-1,), stream=stream)
            out = _op(prim, [flat], (0,), stream=stream)
            return reshape(out, (1,) * a.ndim if keepdims else (), stream=stream)
        axes = _reduce_axes(a, axis, name)
        out = _op(prim, [a], axes, stream=stream)
        return _drop_axes(a, out, set(axes), keepdims, stream)
    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


argmax = _argreduction(lib.EM_P_ARGMAX, "argmax", "Index of the maximum along an axis (uint32).")
argmin = _argreduction(lib.EM_P_ARGMIN, "argmin", "Index of the minimum along an axis (uint32).")


def _one_axis_last(a, axes, stream):
    """a with its single reduced axis moved last, or None when several axes
    are reduced or the dtype is complex (those keep the compositions)."""
    if len(axes) != 1 or a.dtype == _dt.complex64:
        return None
    from .manipulation import moveaxis
    return a if axes[0] == a.ndim - 1 else moveaxis(a, axes[0], -1, stream=stream)


def logsumexp(a, /, axis=None, keepdims=False, *, stream=None):
    """log(sum(exp(a))) over axes, computed stably around the maximum (one pass
    per row, core/fast.py's logsumexp_last, for a single axis or all axes)."""
    from .elementwise import exp, isinf, log
    from .manipulation import where
    a = asarray(a)
    if not _dt.is_inexact(a.dtype):
        a = a.astype(_dt.float32, stream=stream)
    axes = _reduce_axes(a, axis, "logsumexp")
    if a.dtype != _dt.complex64 and a.ndim > 0 and (axis is None or len(axes) == 1):
        from .fast import logsumexp_last
        from .manipulation import moveaxis
        if axis is None:
            out = logsumexp_last(reshape(a, (-1,), stream=stream), stream=stream)
            return reshape(out, (1,) * a.ndim if keepdims else (), stream=stream)
        out = logsumexp_last(_one_axis_last(a, axes, stream), stream=stream)
        if axes[0] != a.ndim - 1:
            out = moveaxis(out, -1, axes[0], stream=stream)
        return _drop_axes(a, out, set(axes), keepdims, stream)
    if a.size == 0:
        return log(sum(exp(a), axes, keepdims, stream=stream), stream=stream)
    m = max(a, axes, True, stream=stream)
    # An infinite maximum would give inf - inf = nan below; shift by 0 there.
    shift = where(isinf(m, stream=stream), 0.0, m, stream=stream)
    from .elementwise import stop_gradient
    shift = stop_gradient(shift, stream=stream)
    out = log(sum(exp(a - shift, stream=stream), axes, True, stream=stream), stream=stream) + shift
    return _drop_axes(a, out, set(axes), keepdims, stream)


def softmax(a, /, axis=None, *, precise=False, stream=None):
    """exp(a - logsumexp(a)) over axes, computed stably (one pass per row,
    core/fast.py's softmax_last, over a single axis)."""
    from .elementwise import exp
    from .manipulation import where
    from .elementwise import isinf, stop_gradient
    a = asarray(a)
    axes = _reduce_axes(a, axis, "softmax")
    last = _one_axis_last(a, axes, stream) if a.ndim > 0 else None
    if last is not None:
        from .fast import softmax_last
        from .manipulation import moveaxis
        out = softmax_last(last, stream=stream)
        return out if axes[0] == a.ndim - 1 else moveaxis(out, -1, axes[0], stream=stream)
    m = max(a, axes, True, stream=stream)
    m = stop_gradient(where(isinf(m, stream=stream), 0.0, m, stream=stream), stream=stream)
    e = exp(a - m, stream=stream)
    return e / sum(e, axes, True, stream=stream)


def _scan(prim, name, doc):
    def op(a, /, axis=None, *, reverse=False, inclusive=True, stream=None):
        a = asarray(a)
        if axis is None:
            a = reshape(a, (-1,), stream=stream)
            axis = 0
        return _op(prim, [a], (int(axis), int(bool(reverse)), int(bool(inclusive))), stream=stream)
    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


cumsum = _scan(lib.EM_P_CUMSUM, "cumsum", "Cumulative sum along an axis.")
cumprod = _scan(lib.EM_P_CUMPROD, "cumprod", "Cumulative product along an axis.")
cummax = _scan(lib.EM_P_CUMMAX, "cummax", "Cumulative maximum along an axis.")
cummin = _scan(lib.EM_P_CUMMIN, "cummin", "Cumulative minimum along an axis.")
logcumsumexp = _scan(lib.EM_P_LOGCUMSUMEXP, "logcumsumexp",
                     "Cumulative log(sum(exp(a))) along an axis, computed stably.")
