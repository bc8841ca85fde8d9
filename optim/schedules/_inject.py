"""inject_hyperparams: hyperparameters that live in the optimizer state.

A wrapped factory (`inject_hyperparams(optim.adam)(learning_rate=schedule)`) keeps
its numeric hyperparameters in the state, so they can be read (for logging) or
changed between steps without rebuilding the optimizer, and evaluates scheduled
ones from a step count kept there as well.
"""
import functools
import inspect
import warnings
from typing import Any, Callable, Iterable, NamedTuple, Optional, Union

import numpy as np

import ember.core as em

from .. import base, tree
from ..numerics import safe_increment


def _convert_floats(x, dtype):
    """Python floats and numpy float values as `dtype` arrays; anything else unchanged.

    Optax converts weakly typed values (Python scalars, results computed only from
    them) and keeps typed arrays. An ember array counts as typed, so a schedule's
    float32 result stays float32 next to float64 params, as in Optax.
    """
    if isinstance(x, (float, np.floating)) or (
            isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)):
        return em.array(x, dtype)
    return x


class InjectHyperparamsState(NamedTuple):
    """The older state layout (optax < 0.1.9), kept for compatibility."""
    count: Any
    hyperparams: dict
    inner_state: Any


class InjectStatefulHyperparamsState(NamedTuple):
    """count (int32), the current hyperparameters, the schedules' states and the
    inner transformation's state."""
    count: Any
    hyperparams: dict
    hyperparams_states: dict
    inner_state: Any


class WrappedScheduleState(NamedTuple):
    count: Any


class WrappedSchedule:
    """A stateful schedule around a plain one: its state is the step count."""

    def __init__(self, schedule_fn: base.Schedule):
        self.schedule_fn = schedule_fn

    def init(self) -> WrappedScheduleState:
        return WrappedScheduleState(count=em.zeros((), em.int32))

    def update(self, state: WrappedScheduleState, **extra_args) -> WrappedScheduleState:
        del extra_args
        return WrappedScheduleState(count=safe_increment(state.count))

    def __call__(self, state: WrappedScheduleState, **extra_args):
        del extra_args
        return self.schedule_fn(state.count)


def inject_hyperparams(inner_factory: Callable[..., base.GradientTransformation],
                       static_args: Union[str, Iterable[str]] = (),
                       hyperparam_dtype: Optional[Any] = None
                       ) -> Callable[..., base.GradientTransformationExtraArgs]:
    """Wrap `inner_factory` so that its numeric arguments live in the state.

    The wrapped factory takes the same arguments; any of them may be a schedule
    (a function of the step count) or a stateful schedule (init/update/__call__).
    Booleans, the names in `static_args` and non-numeric values are passed as they
    are. Each update rebuilds the inner transformation from the state's
    hyperparameters, so `state.hyperparams['learning_rate'] = 0.01` takes effect on
    the next step (for those that are not scheduled). Python float hyperparameters
    are cast to `hyperparam_dtype`, or to the params' highest dtype; ember arrays
    (including schedule results) keep theirs.
    """
    static_args = {static_args} if isinstance(static_args, str) else set(static_args)
    inner_signature = inspect.signature(inner_factory)
    if not static_args.issubset(inner_signature.parameters):
        raise ValueError(
            "[inject_hyperparams] static_args must name parameters of inner_factory; got "
            f"{sorted(static_args)}, inner_factory takes {list(inner_signature.parameters)}")

    @functools.wraps(inner_factory)
    def wrapped_transform(*args, **kwargs) -> base.GradientTransformationExtraArgs:
        bound = inner_signature.bind(*args, **kwargs)
        bound.apply_defaults()
        scheduled, numeric, other = {}, {}, {}
        for name, value in bound.arguments.items():
            if name in static_args or isinstance(value, bool):
                other[name] = value
            elif isinstance(value, base.StatefulSchedule):
                scheduled[name] = value
            elif callable(value):
                scheduled[name] = WrappedSchedule(value)
            elif isinstance(value, (int, float, em.array, np.ndarray)):
                numeric[name] = value
            else:
                other[name] = value

        def dtype_for(params):
            if hyperparam_dtype is not None:
                return tree.canonicalize_dtype(hyperparam_dtype)
            return tree.dtype(params, "highest")

        def init_fn(params):
            dtype = dtype_for(params)
            hyperparams = {k: em.asarray(_convert_floats(v, dtype)) for k, v in numeric.items()}
            schedule_states = {k: f.init() for k, f in scheduled.items()}
            hyperparams.update({k: _convert_floats(f(schedule_states[k]), dtype)
                                for k, f in scheduled.items()})
            return InjectStatefulHyperparamsState(
                count=em.zeros((), em.int32), hyperparams=hyperparams,
                hyperparams_states=schedule_states,
                inner_state=inner_factory(**other, **hyperparams).init(params))

        def update_fn(updates, state, params=None, **extra_args):
            dtype = dtype_for(params)
            hyperparams = {k: _convert_floats(v, dtype) for k, v in state.hyperparams.items()}
            hyperparams.update({
                k: _convert_floats(f(state.hyperparams_states[k], **extra_args), dtype)
                for k, f in scheduled.items()})
            schedule_states = {k: f.update(state.hyperparams_states[k], **extra_args)
                               for k, f in scheduled.items()}
            updates, inner_state = base.with_extra_args_support(
                inner_factory(**other, **hyperparams)).update(
                    updates, state.inner_state, params, **extra_args)
            return updates, InjectStatefulHyperparamsState(
                count=safe_increment(state.count), hyperparams=hyperparams,
                hyperparams_states=schedule_states, inner_state=inner_state)

        return base.GradientTransformationExtraArgs(init_fn, update_fn)

    return wrapped_transform


def inject_stateful_hyperparams(inner_factory: Callable[..., base.GradientTransformation],
                                static_args: Union[str, Iterable[str]] = (),
                                hyperparam_dtype: Optional[Any] = None
                                ) -> Callable[..., base.GradientTransformationExtraArgs]:
    """Deprecated alias of `inject_hyperparams` (which handles stateful schedules too)."""
    warnings.warn("inject_stateful_hyperparams is deprecated, use inject_hyperparams instead",
                  DeprecationWarning, stacklevel=2)
    return inject_hyperparams(inner_factory, static_args, hyperparam_dtype)
