"""Additive transformations: decoupled weight decay and annealed gradient noise."""
from typing import Any, Callable, NamedTuple, Optional, Union

import ember.core as em

from .. import base, numerics
from .. import tree as otree
from .._trees import is_none, tree_flatten, tree_map


class WeightDecaySchedule(NamedTuple):
    """The step count, kept when the weight decay is a schedule."""
    count: em.array


AddDecayedWeightsState = base.EmptyState


def add_decayed_weights(weight_decay: base.ScalarOrSchedule = 0.0,
                        mask: Optional[Union[Any, Callable]] = None
                        ) -> base.GradientTransformation:
    """u <- u + weight_decay * p (AdamW's decoupled weight decay); weight_decay may be
    a schedule of the step count. mask (a tree of bools, or a function of the params
    giving one) limits the decay to the params it marks True."""

    def init_fn(params):
        del params
        if callable(weight_decay):
            return WeightDecaySchedule(count=em.zeros([], em.int32))
        return base.EmptyState()

    def update_fn(updates, state, params):
        if params is None:
            raise ValueError(base.NO_PARAMS_MSG)
        new_state = (WeightDecaySchedule(numerics.safe_increment(state.count))
                     if callable(weight_decay) else state)
        if isinstance(weight_decay, (int, float)) and weight_decay == 0.0:
            return updates, new_state
        s = weight_decay(state.count) if callable(weight_decay) else weight_decay
        updates = tree_map(lambda g, p: None if g is None else g + s * p, updates, params,
                           names=("updates", "params"), is_leaf=is_none)
        return updates, new_state

    tx = base.GradientTransformation(init_fn, update_fn)
    if mask is not None:
        from ..wrappers import masked  # wrappers builds on the transforms, not the reverse
        return masked(tx, mask)
    return tx


def _normal_like(key, tree):
    """Standard normal noise shaped like each leaf, one key split off per leaf (as
    optax.tree.random_like does)."""
    leaves, treedef = tree_flatten(tree)
    keys = em.random.split(key, len(leaves)) if leaves else []
    return treedef.unflatten([em.random.normal(leaf.shape, leaf.dtype, key=k)
                              for leaf, k in zip(leaves, keys)])


class AddNoiseState(NamedTuple):
    count: em.array
    rng_key: em.array


def add_noise(eta, gamma, key=None) -> base.GradientTransformation:
    """Annealed Gaussian gradient noise: u <- u + N(0, eta / t^gamma) at step t.

    key: an ember random key, or an int seed (0 when None). ember.core.random draws
    as JAX does, so a seed gives the same noise as optax.add_noise with it."""
    if key is None:
        key = 0

    def init_fn(params):
        del params
        rng_key = em.random.key(key) if isinstance(key, int) else key
        return AddNoiseState(count=em.zeros([], em.int32), rng_key=rng_key)

    def update_fn(updates, state, params=None):
        del params
        count_inc = numerics.safe_increment(state.count)
        t = count_inc.astype(numerics.scalar_dtype(tree_flatten(updates)[0]))
        standard_deviation = em.sqrt(eta / t ** gamma)
        rng_key, sample_key = em.random.split(state.rng_key)
        noise = _normal_like(sample_key, updates)
        updates = otree.add_scale(updates, standard_deviation, noise)
        return updates, AddNoiseState(count=count_inc, rng_key=rng_key)

    return base.GradientTransformation(init_fn, update_fn)
