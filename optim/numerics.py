"""Numerically careful helpers shared by the transformations (optax.numerics).

`safe_norm` and `safe_root_mean_squares` clamp from below without a NaN
gradient at zero: the clamped branch replaces x by ones before the norm is
taken again, so differentiating through `maximum(norm(x), min)` at x = 0 never
divides by zero. `safe_increment` keeps step counters from wrapping around.
"""
from typing import Optional, Union

import ember.core as em


def abs_sq(x: em.array) -> em.array:
    """|x|^2 elementwise: x * x for real x, (conj(x) * x).real for complex x."""
    if not isinstance(x, em.array):
        raise ValueError(f"`abs_sq` accepts only arrays, got: {x}.")
    if em.issubdtype(x.dtype, em.complexfloating):
        return em.real(em.conj(x) * x)
    return x * x


def _norm(x: em.array, ord, axis, keepdims: bool) -> em.array:
    """The vector norm of x over axis (all axes when None): 2 (default), 1, inf, -inf, or p."""
    if ord is None or ord == 2:
        return em.sqrt(em.sum(abs_sq(x), axis=axis, keepdims=keepdims))
    magnitude = em.abs(x)
    if ord == 1:
        return em.sum(magnitude, axis=axis, keepdims=keepdims)
    if ord in (float("inf"), "inf"):
        return em.max(magnitude, axis=axis, keepdims=keepdims)
    if ord in (float("-inf"), "-inf"):
        return em.min(magnitude, axis=axis, keepdims=keepdims)
    if isinstance(ord, (int, float)) and ord != 0:
        return em.sum(magnitude ** ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)
    raise ValueError(f"[safe_norm] unsupported ord {ord!r}: use None, 1, 2, inf, -inf or a "
                     "nonzero number")


def _as_axis(axis):
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def safe_norm(x: em.array, min_norm, ord: Optional[Union[int, float, str]] = None,
              axis: Union[None, tuple, int] = None, keepdims: bool = False) -> em.array:
    """maximum(norm(x), min_norm), with a gradient of 0 (not NaN) where the norm is clamped.

    Vector norms only (over `axis`, or over all of x); optax also takes matrix
    norms ('fro', 'nuc') for a 2-tuple axis, which ember does not."""
    x = em.asarray(x)
    axis = _as_axis(axis)
    norm = _norm(x, ord, axis, keepdims=True)
    x = em.where(norm <= min_norm, em.ones_like(x), x)
    norm = norm if keepdims else em.squeeze(norm, axis=axis) if axis is not None else \
        em.reshape(norm, ())
    masked_norm = _norm(x, ord, axis, keepdims=keepdims)
    return em.where(norm <= min_norm, min_norm, masked_norm)


def safe_root_mean_squares(x: em.array, min_rms) -> em.array:
    """maximum(sqrt(mean(|x|^2)), min_rms), with a gradient of 0 where clamped."""
    x = em.asarray(x)
    rms = em.sqrt(em.mean(abs_sq(x)))
    x = em.where(rms <= min_rms, em.ones_like(x), x)
    return em.where(rms <= min_rms, min_rms, em.sqrt(em.mean(abs_sq(x))))


def safe_increment(count) -> em.array:
    """count + 1, staying at the dtype's maximum instead of wrapping around."""
    count = em.asarray(count)
    if em.issubdtype(count.dtype, em.integer):
        max_value = em.iinfo(count.dtype).max
    elif em.issubdtype(count.dtype, em.floating):
        max_value = em.finfo(count.dtype).max
    else:
        raise ValueError(f"Cannot safely increment count with dtype {count.dtype}, valid dtypes "
                         "are subdtypes of integer or floating.")
    max_value = em.array(max_value, count.dtype)
    return em.where(count < max_value, count + em.array(1, count.dtype), max_value)


safe_int32_increment = safe_increment


def scalar_as(value, dtype) -> em.array:
    """value (a Python number or an ember array) as a 0-d array of dtype.

    A Python float goes straight to dtype: going through em.asarray first
    would round it to float32 before a cast to float64."""
    if isinstance(value, em.array):
        return value.astype(dtype)
    return em.array(value, dtype)


def scalar_dtype(tree_leaves) -> em.Dtype:
    """The dtype in which to compute a scalar shared by these leaves (a step
    size, a rate from the step count): float64 if any leaf is float64, else
    float32, as JAX computes such scalars in its default float type."""
    if any(leaf.dtype == em.float64 for leaf in tree_leaves):
        return em.float64
    return em.float32
