"""Wrappers that apply a transformation only when a condition holds.

Optax branches with `jax.lax.cond`; here both outcomes are computed and chosen
leaf by leaf with em.where (see _select.py), so the condition may be a traced array.
"""
from typing import Any, NamedTuple

import ember.core as em

from .. import base, tree
from .._trees import tree_leaves
from ..numerics import safe_increment
from ._select import select_tree


class ConditionallyTransformState(NamedTuple):
    """The inner state and the number of calls so far (int32)."""
    inner_state: Any
    step: Any


def conditionally_transform(inner: base.GradientTransformation, should_transform_fn,
                            forward_extra_args: bool = False
                            ) -> base.GradientTransformationExtraArgs:
    """`inner` on the calls where should_transform_fn(step) is true; otherwise the
    updates pass through and the inner state is kept.

    With `forward_extra_args`, the update's extra keyword arguments reach
    should_transform_fn too.
    """
    inner = base.with_extra_args_support(inner)

    def init_fn(params):
        return ConditionallyTransformState(inner_state=inner.init(params),
                                           step=em.zeros((), em.int32))

    def update_fn(updates, state, params=None, **extra_args):
        condition_kwargs = extra_args if forward_extra_args else {}
        condition = should_transform_fn(state.step, **condition_kwargs)
        new_updates, new_inner_state = inner.update(updates, state.inner_state, params,
                                                    **extra_args)
        updates = select_tree(condition, new_updates, updates)
        inner_state = select_tree(condition, new_inner_state, state.inner_state)
        return updates, ConditionallyTransformState(inner_state, safe_increment(state.step))

    return base.GradientTransformationExtraArgs(init_fn, update_fn)


class ConditionallyMaskState(NamedTuple):
    """The number of calls so far (int32) and the inner state."""
    step: Any
    inner_state: Any


def conditionally_mask(inner: base.GradientTransformation, should_transform_fn,
                       forward_extra_args: bool = False) -> base.GradientTransformationExtraArgs:
    """`inner` on the calls where should_transform_fn(step) is true; otherwise zero
    updates and the inner state is kept."""
    inner = base.with_extra_args_support(inner)

    def init_fn(params):
        return ConditionallyMaskState(step=em.zeros((), em.int32), inner_state=inner.init(params))

    def update_fn(updates, state, params=None, **extra_args):
        condition_kwargs = extra_args if forward_extra_args else {}
        condition = should_transform_fn(state.step, **condition_kwargs)
        new_updates, new_inner_state = inner.update(updates, state.inner_state, params,
                                                    **extra_args)
        updates = select_tree(condition, new_updates, tree.zeros_like(updates))
        inner_state = select_tree(condition, new_inner_state, state.inner_state)
        return updates, ConditionallyMaskState(step=safe_increment(state.step),
                                               inner_state=inner_state)

    return base.GradientTransformationExtraArgs(init_fn, update_fn)


class ApplyIfFiniteState(NamedTuple):
    """notfinite_count: consecutive non-finite calls (int32); last_finite: whether the
    last call's updates were finite; total_notfinite: non-finite calls in all
    (int32); inner_state."""
    notfinite_count: Any
    last_finite: Any
    total_notfinite: Any
    inner_state: Any


def apply_if_finite(inner: base.GradientTransformation,
                    max_consecutive_errors: int) -> base.GradientTransformationExtraArgs:
    """`inner` only on calls whose updates are all finite; other calls give zero updates
    and leave the inner state alone, until more than `max_consecutive_errors` come in a
    row, when the (non-finite) update goes through to signal the problem."""
    inner = base.with_extra_args_support(inner)

    def init_fn(params):
        return ApplyIfFiniteState(notfinite_count=em.zeros((), em.int32),
                                  last_finite=em.array(True),
                                  total_notfinite=em.zeros((), em.int32),
                                  inner_state=inner.init(params))

    def update_fn(updates, state, params=None, **extra_args):
        isfinite = em.all(em.stack([em.all(em.isfinite(u)) for u in tree_leaves(updates)]))
        notfinite_count = em.where(isfinite, em.zeros((), em.int32),
                                   safe_increment(state.notfinite_count))
        apply = em.logical_or(isfinite, notfinite_count > max_consecutive_errors)
        new_updates, new_inner_state = inner.update(updates, state.inner_state, params,
                                                    **extra_args)
        updates = select_tree(apply, new_updates, tree.zeros_like(updates))
        return updates, ApplyIfFiniteState(
            notfinite_count=notfinite_count, last_finite=isfinite,
            total_notfinite=em.where(isfinite, state.total_notfinite,
                                     safe_increment(state.total_notfinite)),
            inner_state=select_tree(apply, new_inner_state, state.inner_state))

    return base.GradientTransformationExtraArgs(init_fn, update_fn)
