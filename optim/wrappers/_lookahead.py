"""Lookahead (Zhang et al., 2019): slow weights that follow the fast optimizer's."""
import logging
from typing import Any, NamedTuple

import ember.core as em

from .. import base
from .._trees import tree_map
from ._select import as_flag


class LookaheadState(NamedTuple):
    """The fast optimizer's state and the calls since the last sync (int32)."""
    fast_state: Any
    steps_since_sync: Any


class LookaheadParams(NamedTuple):
    """The two copies of the params lookahead works on."""
    fast: Any
    slow: Any

    @classmethod
    def init_synced(cls, params) -> "LookaheadParams":
        """Fast and slow params both starting at `params`."""
        return cls(slow=params, fast=params)


def lookahead(fast_optimizer: base.GradientTransformation, sync_period: int,
              slow_step_size, reset_state: bool = False) -> base.GradientTransformation:
    """Lookahead around `fast_optimizer`, on LookaheadParams(fast, slow).

    The fast params take the fast optimizer's steps; every `sync_period` steps the
    slow params move toward them and the fast ones are reset onto the slow ones:

        slow <- slow + alpha (fast - slow),   fast <- slow     (alpha = slow_step_size)

    The updates are a LookaheadParams of updates for both copies (apply them with
    apply_updates). `reset_state` re-initialises the fast optimizer's state at each
    sync.
    """
    if sync_period < 1:
        raise ValueError(f"[lookahead] sync_period must be >= 1, got {sync_period}")

    def init_fn(params) -> LookaheadState:
        fast_params = getattr(params, "fast", None)
        if fast_params is None:
            logging.getLogger(__name__).warning(
                "`params` has no attribute `fast`. Continuing by assuming that only fast "
                "parameters were passed to lookahead init.")
            fast_params = params
        return LookaheadState(fast_state=fast_optimizer.init(fast_params),
                              steps_since_sync=em.zeros((), em.int32))

    def update_fn(updates, state: LookaheadState, params: LookaheadParams):
        updates, fast_state = fast_optimizer.update(updates, state.fast_state, params.fast)
        sync_next = state.steps_since_sync == sync_period - 1
        updates = _lookahead_update(updates, sync_next, params, slow_step_size)
        if reset_state:
            initial_state = fast_optimizer.init(params.fast)
            fast_state = tree_map(
                lambda current, init: ((1 - as_flag(sync_next, current.dtype)) * current
                                       + as_flag(sync_next, current.dtype) * init),
                fast_state, initial_state)
        steps_since_sync = em.remainder(state.steps_since_sync + 1, sync_period)
        return updates, LookaheadState(fast_state, steps_since_sync.astype(em.int32))

    return base.GradientTransformation(init_fn, update_fn)


def _lookahead_update(updates, sync_next, params: LookaheadParams, slow_step_size):
    """Updates for both copies; on a sync step they bring fast and slow to the new slow."""
    last_difference = tree_map(lambda f, u, s: f + u - s, params.fast, updates, params.slow)
    slow_updates = tree_map(
        lambda diff: slow_step_size * as_flag(sync_next, diff.dtype) * diff, last_difference)
    fast_updates = tree_map(
        lambda up, diff: up - as_flag(sync_next, diff.dtype) * (1 - slow_step_size) * diff,
        updates, last_difference)
    return LookaheadParams(fast=fast_updates, slow=slow_updates)
