"""Transformations that keep updates or params within bounds."""
from typing import Any, NamedTuple

import ember.core as em

from .. import base
from .._trees import is_none, tree_map

NonNegativeParamsState = base.EmptyState


def keep_params_nonnegative() -> base.GradientTransformation:
    """Where p + u would go below zero, u <- -p (the param lands on 0)."""

    def update_fn(updates, state, params):
        if params is None:
            raise ValueError(base.NO_PARAMS_MSG)
        updates = tree_map(lambda p, u: None if p is None else em.where(p + u < 0.0, -p, u),
                           params, updates, names=("params", "updates"), is_leaf=is_none)
        return updates, state

    return base.GradientTransformation(base.init_empty_state, update_fn)


class ZeroNansState(NamedTuple):
    """Per leaf, whether the last updates held a NaN."""
    found_nan: Any


def zero_nans() -> base.GradientTransformation:
    """Replaces NaNs in the updates by 0, recording per leaf whether there were any."""

    def init_fn(params):
        return ZeroNansState(found_nan=tree_map(lambda p: em.array(False), params))

    def update_fn(updates, opt_state, params=None):
        del params, opt_state
        found_nan = tree_map(lambda u: em.any(em.isnan(u)), updates)
        updates = tree_map(lambda u: em.where(em.isnan(u), em.zeros_like(u), u), updates)
        return updates, ZeroNansState(found_nan=found_nan)

    return base.GradientTransformation(init_fn, update_fn)
