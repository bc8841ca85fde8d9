"""Transformations that rescale updates by a factor: a constant, a schedule,
a norm of the params, a trust ratio, a Polyak step."""
from typing import Optional

import ember.core as em

from .. import base, numerics
from .. import tree as otree
from .._trees import tree_map

ScaleState = base.EmptyState
ScaleByTrustRatioState = base.EmptyState


def scale(step_size) -> base.GradientTransformation:
    """u <- step_size * u."""

    def update_fn(updates, state, params=None):
        del params
        return tree_map(lambda g: step_size * g, updates), state

    return base.GradientTransformation(base.init_empty_state, update_fn)


class ScaleByScheduleState(base.NamedTuple):
    """The number of updates seen so far (the argument of the schedule)."""
    count: em.array


def scale_by_schedule(step_size_fn: base.Schedule) -> base.GradientTransformation:
    """u <- step_size_fn(count) * u, count the number of previous updates."""

    def init_fn(params):
        del params
        return ScaleByScheduleState(count=em.zeros([], em.int32))

    def update_fn(updates, state, params=None):
        del params
        step_size = step_size_fn(state.count)
        updates = tree_map(lambda g: numerics.scalar_as(step_size, g.dtype) * g, updates)
        return updates, ScaleByScheduleState(count=numerics.safe_increment(state.count))

    return base.GradientTransformation(init_fn, update_fn)


def scale_by_learning_rate(learning_rate: Optional[base.ScalarOrSchedule] = None, *,
                           flip_sign: bool = True) -> base.GradientTransformation:
    """u <- -lr * u (the sign flipped for descent unless flip_sign=False).

    A callable learning rate is a schedule of the step count; None is the identity."""
    if learning_rate is None:
        return base.identity()
    m = -1 if flip_sign else 1
    if callable(learning_rate):
        return scale_by_schedule(lambda count: m * learning_rate(count))
    return scale(m * learning_rate)


def scale_by_sign() -> base.GradientTransformation:
    """u <- sign(u)."""

    def update_fn(updates, state, params=None):
        del params
        return tree_map(em.sign, updates), state

    return base.GradientTransformation(base.init_empty_state, update_fn)


def _require(params):
    if params is None:
        raise ValueError(base.NO_PARAMS_MSG)


def scale_by_param_block_norm(min_scale=1e-3) -> base.GradientTransformation:
    """u <- u * max(||p||_2, min_scale), the norm over each param array (block)."""

    def update_fn(updates, state, params):
        _require(params)
        updates = tree_map(lambda u, p: u * numerics.safe_norm(p, min_scale), updates, params,
                           names=("updates", "params"))
        return updates, state

    return base.GradientTransformation(base.init_empty_state, update_fn)


def scale_by_param_block_rms(min_scale=1e-3) -> base.GradientTransformation:
    """u <- u * max(rms(p), min_scale), the RMS over each param array (block)."""

    def update_fn(updates, state, params):
        _require(params)
        updates = tree_map(lambda u, p: u * numerics.safe_root_mean_squares(p, min_scale),
                           updates, params, names=("updates", "params"))
        return updates, state

    return base.GradientTransformation(base.init_empty_state, update_fn)


def scale_by_trust_ratio(min_norm=0.0, trust_coefficient=1.0,
                         eps=0.0) -> base.GradientTransformation:
    """The layer-wise trust ratio of LARS/LAMB:
    u <- u * trust_coefficient * ||p|| / (||u|| + eps), and u unchanged where
    either norm is zero (norms clamped below at min_norm)."""

    def _scale_update(update, param):
        param_norm = numerics.safe_norm(param, min_norm)
        update_norm = numerics.safe_norm(update, min_norm)
        trust_ratio = trust_coefficient * param_norm / (update_norm + eps)
        zero_norm = em.logical_or(param_norm == 0.0, update_norm == 0.0)
        safe_trust_ratio = em.where(zero_norm, em.array(1.0, param.dtype), trust_ratio)
        return update * safe_trust_ratio

    def update_fn(updates, state, params):
        _require(params)
        return tree_map(_scale_update, updates, params, names=("updates", "params")), state

    return base.GradientTransformation(base.init_empty_state, update_fn)


_FLOAT64_EPS = 2.220446049250313e-16  # numpy.finfo(float).eps, the threshold optax uses


def scale_by_polyak(f_min=0.0, max_learning_rate=1.0, eps=0.0,
                    variant: str = "sps") -> base.GradientTransformationExtraArgs:
    """The Polyak step size: u <- min((f(x) - f_min) / (||u||^2 + eps), max_learning_rate) u.

    update takes the loss as the keyword `value`. variant 'sps+' clamps the gap
    f(x) - f_min at zero; the step is 0 where ||u||^2 + eps is below float64 eps."""
    if variant not in ("sps", "sps+"):
        raise ValueError(f"Invalid argument value for Polyak SGD: variant={variant!r}")

    def update_fn(updates, state, params=None, *, value, **extra_args):
        del params, extra_args
        grad_sq_norm = otree.norm(updates, squared=True)
        gap = numerics.scalar_as(value - f_min, grad_sq_norm.dtype)
        if variant == "sps+":
            gap = em.maximum(gap, 0)
        step = em.where(grad_sq_norm + eps <= _FLOAT64_EPS, em.array(0.0),
                        em.minimum(gap / (grad_sq_norm + eps), max_learning_rate))
        return otree.scale(step, updates), state

    return base.GradientTransformationExtraArgs(base.init_empty_state, update_fn)


def _subtract_mean(g):
    if g.ndim > 1:
        return g - g.mean(axis=tuple(range(1, g.ndim)), keepdims=True)
    return g


def centralize() -> base.GradientTransformation:
    """Gradient centralization: subtracts from each update of rank > 1 its mean
    over all axes but the first (rank 0 and 1 updates pass unchanged)."""

    def update_fn(updates, state, params=None):
        del params
        return tree_map(_subtract_mean, updates), state

    return base.GradientTransformation(base.init_empty_state, update_fn)


def normalize_by_update_norm(scale_factor=1.0, eps=1e-6) -> base.GradientTransformation:
    """u <- scale_factor * u / (||u|| + eps), ||u|| the global norm of all updates."""

    def update_fn(updates, state, params=None):
        del params
        g_norm = (otree.norm(updates) + eps) / scale_factor
        return tree_map(lambda g: g / g_norm, updates), state

    return base.GradientTransformation(base.init_empty_state, update_fn)
