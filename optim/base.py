"""The interface every optimizer in ember.optim shares, as in optax.base.

A gradient transformation is a pair of pure functions held in a NamedTuple:

    state = tx.init(params)
    updates, state = tx.update(grads, state, params)
    params = apply_updates(params, updates)

`init` builds the state (a pytree of ember arrays, usually a NamedTuple, so it
flattens, checkpoints and compiles like any other tree); `update` maps
candidate updates and the old state to new updates and the new state. Nothing
is kept inside the closures between calls: everything that changes lives in
the state. Transformations compose with `optim.chain` (combine.py).
"""
from typing import Any, Callable, NamedTuple, Optional, Protocol, Union, runtime_checkable

import ember.core as em

from ._trees import is_none, tree_map

PyTree = Any
ArrayTree = Any
OptState = ArrayTree  # states are nests of ember arrays
Params = ArrayTree
Updates = Params  # updates have the structure of the params

Schedule = Callable[[Any], Any]  # step count -> scalar (learning rate, ...)
ScheduleState = Any
ScalarOrSchedule = Union[float, em.array, Schedule]

NO_PARAMS_MSG = ("You are using a transformation that requires the current value of parameters, "
                 "but you are not passing `params` when calling `update`.")


@runtime_checkable
class StatefulSchedule(Protocol):
    """A schedule that keeps a state: `init()`, `update(state, **extra_args)`,
    and `__call__(state, **extra_args)` for the current value."""

    def init(self) -> ScheduleState: ...

    def update(self, state: ScheduleState, **extra_args) -> ScheduleState: ...

    def __call__(self, state: ScheduleState, **extra_args) -> Any: ...


class TransformInitFn(Protocol):
    """`init(params) -> state`."""

    def __call__(self, params: Params) -> OptState: ...


class TransformUpdateFn(Protocol):
    """`update(updates, state, params=None) -> (updates, state)`."""

    def __call__(self, updates: Updates, state: OptState,
                 params: Optional[Params] = None) -> tuple: ...


class TransformUpdateExtraArgsFn(Protocol):
    """`update(updates, state, params=None, **extra_args) -> (updates, state)`:
    extra keyword arguments (a loss value, ...) that a transformation does not
    use are ignored."""

    def __call__(self, updates: Updates, state: OptState, params: Optional[Params] = None,
                 **extra_args: Any) -> tuple: ...


class GradientTransformation(NamedTuple):
    """A pair of pure functions: `init(params) -> state` and
    `update(updates, state, params=None) -> (updates, state)`."""
    init: TransformInitFn
    update: TransformUpdateFn


class GradientTransformationExtraArgs(GradientTransformation):
    """A GradientTransformation whose update accepts (and may ignore) extra
    keyword arguments: `update(updates, state, params=None, **extra_args)`."""
    update: TransformUpdateExtraArgsFn


class EmptyState(NamedTuple):
    """The state of a transformation that keeps none."""


def init_empty_state(params: Params) -> EmptyState:
    """The init function of a stateless transformation."""
    del params
    return EmptyState()


def identity() -> GradientTransformation:
    """Passes the updates through unchanged (not `set_to_zero`, which freezes params)."""

    def update_fn(updates, state, params=None):
        del params
        return updates, state

    return GradientTransformation(init_empty_state, update_fn)


def set_to_zero() -> GradientTransformation:
    """Maps the updates to zeros of the same shapes and dtypes, so that applying
    them leaves the params as they are (freezing, with `partition`)."""

    def update_fn(updates, state, params=None):
        del params
        return tree_map(em.zeros_like, updates), state

    return GradientTransformation(init_empty_state, update_fn)


def stateless(f: Callable[[Updates, Optional[Params]], Updates]) -> GradientTransformation:
    """A stateless transformation from `f(updates, params) -> updates` (params may be None)."""

    def update_fn(updates, state, params=None):
        del state
        return f(updates, params), EmptyState()

    return GradientTransformation(init_empty_state, update_fn)


def stateless_with_tree_map(f: Callable[[Any, Any], Any]) -> GradientTransformation:
    """A stateless transformation from a per-array `f(update, param) -> update`,
    mapped over the leaves (param is None when update is called without params)."""

    def update_fn(updates, state, params=None):
        del state
        if params is not None:
            return tree_map(f, updates, params, names=("updates", "params")), EmptyState()
        return tree_map(lambda u: f(u, None), updates), EmptyState()

    return GradientTransformation(init_empty_state, update_fn)


def with_extra_args_support(tx: GradientTransformation) -> GradientTransformationExtraArgs:
    """tx, made to accept (and ignore) extra keyword arguments to update."""
    if isinstance(tx, GradientTransformationExtraArgs):
        return tx

    def update(updates, state, params=None, **extra_args):
        del extra_args
        return tx.update(updates, state, params)

    return GradientTransformationExtraArgs(tx.init, update)


def apply_updates(params: Params, updates: Updates) -> Params:
    """params + updates, leaf by leaf, each result in its param's dtype.

    None params stay None (as in optax, which masks params with None)."""
    def add(p, u):
        if p is None:
            return None
        p = em.asarray(p)
        return (p + u).astype(p.dtype)
    return tree_map(add, params, updates, names=("params", "updates"), is_leaf=is_none)


def incremental_update(new_tensors: Params, old_tensors: Params, step_size) -> Params:
    """Polyak averaging: `step_size * new + (1 - step_size) * old`, leaf by leaf."""
    def mix(new, old):
        return None if new is None else step_size * new + (1.0 - step_size) * old
    return tree_map(mix, new_tensors, old_tensors, names=("new_tensors", "old_tensors"),
                    is_leaf=is_none)


def periodic_update(new_tensors: Params, old_tensors: Params, steps, update_period) -> Params:
    """new_tensors when `steps % update_period == 0`, else old_tensors (a slow
    "target" copy of the params refreshed every update_period steps).

    The condition is a value in the graph (as `jax.lax.cond` is), so both trees
    must have the same structure, and each leaf is chosen with `where`."""
    take_new = em.remainder(em.asarray(steps), update_period) == 0
    return tree_map(lambda new, old: em.where(take_new, new, old), new_tensors, old_tensors,
                    names=("new_tensors", "old_tensors"))
