"""Order statistics and NaN-aware reductions, composed from sort and the
plain reductions (so every transform comes from theirs): median (mlx.core's),
numpy's quantile, percentile and their nan-variants, nanmedian, and the
numpy-style nansum, nanprod, nanmean, nanvar, nanstd, nanmax, nanmin.

The NaN-aware reductions treat NaN as missing: replaced by the reduction's
identity (0 for sums, 1 for products, -inf/+inf for max/min) and left out
of the counts. A slice holding nothing but NaN gives NaN, as numpy does
(without numpy's warning).
"""
from . import dtypes as _dt
from .array import asarray
from .elementwise import isnan, logical_not, sqrt
from .manipulation import _axis_slice, reshape, transpose, where
from .reductions import _drop_axes, _reduce_axes, all, any, max, min, prod, sum
from .sorting import sort


def _inexact(a, stream):
    return a if _dt.is_inexact(a.dtype) else a.astype(_dt.float32, stream=stream)


def median(a, /, axis=None, keepdims=False, *, stream=None):
    """Median over axes (all when axis is None): the middle element of the
    sorted values, or the mean of the two middle ones for an even count.
    Integers give float32; a slice containing NaN gives NaN (numpy's rule)."""
    a = _inexact(asarray(a), stream)
    axes = _reduce_axes(a, axis, "median")
    if not axes and a.ndim:
        return a
    n = 1
    for ax in axes:
        n *= a.shape[ax]
    if n == 0:
        raise ValueError(f"[median] cannot take the median of an empty slice (shape {a.shape}, "
                         f"axes {axis})")
    kept = [i for i in range(a.ndim) if i not in axes]
    # The reduced axes go last and are merged into one, which is sorted.
    flat = reshape(transpose(a, kept + list(axes), stream=stream),
                   tuple(a.shape[i] for i in kept) + (n,), stream=stream)
    ordered = sort(flat, axis=-1, stream=stream)
    hi = _axis_slice(ordered, flat.ndim - 1, n // 2, n // 2 + 1, stream=stream)
    if n % 2:
        mid = hi
    else:
        lo = _axis_slice(ordered, flat.ndim - 1, n // 2 - 1, n // 2, stream=stream)
        mid = (lo + hi) * 0.5
    # sort puts NaN last, so the middle may miss it: a NaN anywhere wins.
    mid = where(any(isnan(flat, stream=stream), -1, True, stream=stream), float("nan"), mid,
                stream=stream)
    out_shape = tuple(1 if i in axes else s for i, s in enumerate(a.shape))
    # The kept axes kept their order, so a reshape puts the 1s back in place.
    out = reshape(mid, out_shape, stream=stream)
    return _drop_axes(a, out, set(axes), keepdims, stream)


def _nan_masked(a, fill, stream):
    """a with NaN replaced by fill, and the NaN mask (None for non-float a)."""
    a = asarray(a)
    if not _dt.is_inexact(a.dtype):
        return a, None
    mask = isnan(a, stream=stream)
    return where(mask, fill, a, stream=stream), mask


def nansum(a, /, axis=None, keepdims=False, *, stream=None):
    """Sum over axes treating NaN as zero."""
    filled, _ = _nan_masked(a, 0.0, stream)
    return sum(filled, axis, keepdims, stream=stream)


def nanprod(a, /, axis=None, keepdims=False, *, stream=None):
    """Product over axes treating NaN as one."""
    filled, _ = _nan_masked(a, 1.0, stream)
    return prod(filled, axis, keepdims, stream=stream)


def _count_present(a, mask, axis, keepdims, stream, name):
    if mask is None:
        axes = _reduce_axes(a, axis, name)
        n = 1
        for ax in axes:
            n *= a.shape[ax]
        return n
    return sum(logical_not(mask, stream=stream), axis, keepdims,
               stream=stream).astype(a.dtype, stream=stream)


def nanmean(a, /, axis=None, keepdims=False, *, stream=None):
    """Mean over axes of the non-NaN elements (NaN for an all-NaN slice)."""
    a = _inexact(asarray(a), stream)
    filled, mask = _nan_masked(a, 0.0, stream)
    count = _count_present(a, mask, axis, keepdims, stream, "nanmean")
    return sum(filled, axis, keepdims, stream=stream) / count


def nanvar(a, /, axis=None, keepdims=False, ddof=0, *, stream=None):
    """Variance over axes of the non-NaN elements, divided by count - ddof."""
    a = _inexact(asarray(a), stream)
    filled, mask = _nan_masked(a, 0.0, stream)
    count = _count_present(a, mask, axis, True, stream, "nanvar")
    centered = filled - sum(filled, axis, True, stream=stream) / count
    if mask is not None:
        centered = where(mask, 0.0, centered, stream=stream)
    out = sum(centered * centered, axis, True, stream=stream) / (count - ddof)
    return _drop_axes(a, out, set(_reduce_axes(a, axis, "nanvar")), keepdims, stream)


def nanstd(a, /, axis=None, keepdims=False, ddof=0, *, stream=None):
    """Standard deviation over axes of the non-NaN elements."""
    return sqrt(nanvar(a, axis, keepdims, ddof, stream=stream), stream=stream)


def _nan_extreme(reduce, fill, name):
    def op(a, /, axis=None, keepdims=False, *, stream=None):
        filled, mask = _nan_masked(a, fill, stream)
        out = reduce(filled, axis, keepdims, stream=stream)
        if mask is None:
            return out
        return where(all(mask, axis, keepdims, stream=stream), float("nan"), out, stream=stream)
    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"{name[3:].capitalize()}imum over axes ignoring NaN (NaN for an all-NaN slice)."
    return op


nanmax = _nan_extreme(max, float("-inf"), "nanmax")
nanmin = _nan_extreme(min, float("inf"), "nanmin")


def _sorted_slices(a, axes, op, stream):
    """a's reduced axes merged into one last axis and sorted along it (NaN
    last); returns (sorted, shape with 1s at the reduced axes)."""
    n = 1
    for ax in axes:
        n *= a.shape[ax]
    if n == 0:
        raise ValueError(f"[{op}] cannot reduce an empty slice (shape {a.shape}, axes {axes})")
    kept = [i for i in range(a.ndim) if i not in axes]
    flat = reshape(transpose(a, kept + list(axes), stream=stream),
                   tuple(a.shape[i] for i in kept) + (n,), stream=stream)
    return sort(flat, axis=-1, stream=stream), \
        tuple(1 if i in axes else s for i, s in enumerate(a.shape))


def _quantiles(a, q, axis, keepdims, skip_nan, op, stream):
    """numpy's 'linear' quantiles: the sorted values at position q * (k - 1)
    interpolated between its two neighbours, k the slice's length (its
    count of non-NaN values when skip_nan). q: a float or a sequence of
    floats in [0, 1]; a sequence puts its axis first, as numpy does."""
    from .creation import zeros
    from .elementwise import floor
    from .indexing import take_along_axis
    a = _inexact(asarray(a), stream)
    scalar = isinstance(q, (int, float))
    qs = [float(q)] if scalar else [float(x) for x in q]
    for x in qs:
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"[{op}] quantiles must be in [0, 1] (percentiles in [0, 100]), "
                             f"got {x}")
    axes = _reduce_axes(a, axis, op)
    ordered, out_shape = _sorted_slices(a, axes, op, stream)
    n = ordered.shape[-1]
    if skip_nan:
        count = sum(logical_not(isnan(ordered, stream=stream), stream=stream), -1, True,
                    stream=stream)
    else:
        count = zeros(ordered.shape[:-1] + (1,), dtype=_dt.int32) + n
    last = (count - 1).astype(a.dtype, stream=stream)
    results = []
    for x in qs:
        position = last * x
        lo = floor(position, stream=stream)
        frac = position - lo
        lo_index = lo.astype(_dt.int32, stream=stream)
        lo_index = where(lo_index < 0, 0, lo_index, stream=stream)  # an all-NaN slice
        # The upper neighbour stays inside the slice's values (NaN sorts after them).
        hi_index = where(lo_index + 1 < count, lo_index + 1, lo_index, stream=stream)
        below = take_along_axis(ordered, lo_index, axis=-1, stream=stream)
        above = take_along_axis(ordered, hi_index, axis=-1, stream=stream)
        value = below + (above - below) * frac
        if skip_nan:
            value = where(count == 0, float("nan"), value, stream=stream)
        else:
            value = where(any(isnan(ordered, stream=stream), -1, True, stream=stream),
                          float("nan"), value, stream=stream)
        results.append(_drop_axes(a, reshape(value, out_shape, stream=stream), set(axes),
                                  keepdims, stream))
    if scalar:
        return results[0]
    from .manipulation import stack
    return stack(results, axis=0, stream=stream)


def quantile(a, /, q, axis=None, keepdims=False, *, stream=None):
    """numpy.quantile with its default 'linear' method; NaN in a slice gives
    NaN. Integers give float32."""
    return _quantiles(a, q, axis, keepdims, False, "quantile", stream)


def nanquantile(a, /, q, axis=None, keepdims=False, *, stream=None):
    """quantile of the non-NaN values of each slice (NaN for an all-NaN one)."""
    return _quantiles(a, q, axis, keepdims, True, "nanquantile", stream)


def _as_fractions(q):
    return q / 100.0 if isinstance(q, (int, float)) else [x / 100.0 for x in q]


def percentile(a, /, q, axis=None, keepdims=False, *, stream=None):
    """quantile with q in percent."""
    return _quantiles(a, _as_fractions(q), axis, keepdims, False, "percentile", stream)


def nanpercentile(a, /, q, axis=None, keepdims=False, *, stream=None):
    """nanquantile with q in percent."""
    return _quantiles(a, _as_fractions(q), axis, keepdims, True, "nanpercentile", stream)


def nanmedian(a, /, axis=None, keepdims=False, *, stream=None):
    """Median of the non-NaN values over axes (NaN for an all-NaN slice)."""
    return _quantiles(a, 0.5, axis, keepdims, True, "nanmedian", stream)
