"""Adafactor's factored second moments (scale_by_factored_rms).

For a matrix-like gradient (its two largest axes at least min_dim_size_to_factor
long) the second moment is kept as a row vector and a column vector, whose
outer product (normalized by the mean of the rows) approximates it: memory
O(n + m) instead of O(nm). Smaller arrays keep a full moment v.
"""
from typing import Callable, NamedTuple, Optional

import ember.core as em

from .. import base, numerics
from .._trees import flatten_matching, tree_map


def _decay_rate_pow(i, exponent=0.8):
    """The second moment decay 1 - (i + 1)^(-exponent), in float32."""
    t = em.asarray(i + 1).astype(em.float32)
    return 1.0 - t ** (-exponent)


def _factored_dims(shape, factored: bool, min_dim_size_to_factor: int) -> Optional[tuple]:
    """(the second largest axis, the largest axis) of shape, or None if it is not factored."""
    if not factored or len(shape) < 2:
        return None
    sorted_dims = sorted(range(len(shape)), key=lambda axis: shape[axis])
    if shape[sorted_dims[-2]] < min_dim_size_to_factor:
        return None
    return int(sorted_dims[-2]), int(sorted_dims[-1])


def _zeros_without_axis(x, axis: int):
    shape = tuple(n for i, n in enumerate(x.shape) if i != axis)
    return em.zeros(shape, x.dtype)


class FactoredState(NamedTuple):
    """count; v_row, v_col: the factored moments ((1,) placeholders for unfactored
    leaves); v: the full moment ((1,) placeholders for factored leaves)."""
    count: em.array
    v_row: base.ArrayTree
    v_col: base.ArrayTree
    v: base.ArrayTree


def scale_by_factored_rms(factored: bool = True, decay_rate=0.8, step_offset=0,
                          min_dim_size_to_factor: int = 128, epsilon=1e-30,
                          decay_rate_fn: Callable = _decay_rate_pow):
    """u <- g / sqrt(v_hat), v_hat = v_row v_col^T / mean(v_row) for factored leaves
    (v for the others), the moments tracking g^2 + epsilon with decay
    decay_rate_fn(count - step_offset, decay_rate)."""

    def init_fn(params):
        def placeholder(p):
            return em.zeros((1,), p.dtype)

        def v_row(p):
            dims = _factored_dims(p.shape, factored, min_dim_size_to_factor)
            return placeholder(p) if dims is None else _zeros_without_axis(p, dims[1])

        def v_col(p):
            dims = _factored_dims(p.shape, factored, min_dim_size_to_factor)
            return placeholder(p) if dims is None else _zeros_without_axis(p, dims[0])

        def v_full(p):
            dims = _factored_dims(p.shape, factored, min_dim_size_to_factor)
            return em.zeros(p.shape, p.dtype) if dims is None else placeholder(p)

        return FactoredState(count=em.zeros([], em.int32), v_row=tree_map(v_row, params),
                             v_col=tree_map(v_col, params), v=tree_map(v_full, params))

    def _update(grad, v_row, v_col, v, param, step):
        dtype = param.dtype
        decay_rate_t = decay_rate_fn(step - step_offset, decay_rate)
        placeholder = em.zeros((1,), dtype)
        dims = _factored_dims(param.shape, factored, min_dim_size_to_factor)
        grad_sqr = numerics.abs_sq(grad) + epsilon
        if dims is not None:
            d1, d0 = dims
            new_v_row = (decay_rate_t * v_row
                         + (1.0 - decay_rate_t) * em.mean(grad_sqr, axis=d0)).astype(dtype)
            new_v_col = (decay_rate_t * v_col
                         + (1.0 - decay_rate_t) * em.mean(grad_sqr, axis=d1)).astype(dtype)
            reduced_d1 = d1 - 1 if d1 > d0 else d1
            row_col_mean = em.mean(new_v_row, axis=reduced_d1, keepdims=True)
            row_factor = (new_v_row / row_col_mean) ** (-0.5)
            col_factor = new_v_col ** (-0.5)
            update = (grad * em.expand_dims(row_factor, axis=d0)
                      * em.expand_dims(col_factor, axis=d1))
            return update, new_v_row, new_v_col, placeholder
        new_v = (decay_rate_t * v + (1.0 - decay_rate_t) * grad_sqr).astype(dtype)
        return grad * new_v ** (-0.5), placeholder, placeholder, new_v

    def update_fn(grads, state, params):
        if params is None:
            raise ValueError(base.NO_PARAMS_MSG)
        columns, treedef = flatten_matching(
            (grads, state.v_row, state.v_col, state.v, params),
            names=("updates", "state.v_row", "state.v_col", "state.v", "params"))
        results = [_update(*leaves, state.count) for leaves in zip(*columns)]
        updates, v_row, v_col, v = (treedef.unflatten(part) for part in zip(*results)) \
            if results else (treedef.unflatten([]),) * 4
        return updates, FactoredState(numerics.safe_increment(state.count), v_row, v_col, v)

    return base.GradientTransformation(init_fn, update_fn)
