"""Accumulating updates over steps: momentum (trace) and moving averages (ema)."""
from typing import Any, NamedTuple, Optional

import ember.core as em

from .. import base, numerics
from .. import tree as otree
from .._trees import is_none, tree_map


class TraceState(NamedTuple):
    """The momentum buffer."""
    trace: base.Params


def trace(decay, nesterov: bool = False,
          accumulator_dtype: Optional[Any] = None) -> base.GradientTransformation:
    """Momentum: t <- g + decay t, u <- t (u <- g + decay t with nesterov=True)."""
    accumulator_dtype = otree.canonicalize_dtype(accumulator_dtype)

    def init_fn(params):
        return TraceState(trace=otree.zeros_like(params, dtype=accumulator_dtype))

    def update_fn(updates, state, params=None):
        del params
        f = lambda g, t: g + decay * t  # noqa: E731
        new_trace = tree_map(lambda g, t: None if g is None else f(g, t), updates, state.trace,
                             names=("updates", "state.trace"), is_leaf=is_none)
        updates = tree_map(f, updates, new_trace) if nesterov else new_trace
        return updates, TraceState(trace=otree.cast(new_trace, accumulator_dtype))

    return base.GradientTransformation(init_fn, update_fn)


class EmaState(NamedTuple):
    count: em.array
    ema: base.Params


def ema(decay, debias: bool = True,
        accumulator_dtype: Optional[Any] = None) -> base.GradientTransformation:
    """The exponential moving average of the updates: e <- (1 - decay) g + decay e,
    u <- e / (1 - decay^t) (debiased) or u <- e."""
    accumulator_dtype = otree.canonicalize_dtype(accumulator_dtype)

    def init_fn(params):
        return EmaState(count=em.zeros([], em.int32),
                        ema=otree.zeros_like(params, dtype=accumulator_dtype))

    def update_fn(updates, state, params=None):
        del params
        updates = new_ema = otree.update_moment(updates, state.ema, decay, order=1)
        count_inc = numerics.safe_increment(state.count)
        if debias:
            updates = otree.bias_correction(new_ema, decay, count_inc)
        return updates, EmaState(count=count_inc, ema=otree.cast(new_ema, accumulator_dtype))

    return base.GradientTransformation(init_fn, update_fn)
