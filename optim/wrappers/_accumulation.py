"""Gradient accumulation: MultiSteps (and its skip rules) and apply_every."""
from typing import Any, Callable, NamedTuple, Optional, Union

import ember.core as em

from .. import base, tree
from .._trees import tree_leaves, tree_map
from ..numerics import safe_increment
from ._select import as_flag, select_tree


def skip_not_finite(updates, gradient_step, params):
    """A `should_skip_update_fn` for MultiSteps: skip when any update entry is inf or nan.

    Returns (should_skip, {'should_skip', 'num_not_finite'}); the count is int32
    (optax counts in JAX's default int, int64 under jax_enable_x64).
    """
    del gradient_step, params
    counts = [em.sum(em.logical_not(em.isfinite(u))) for u in tree_leaves(updates)]
    num_not_finite = em.sum(em.stack(counts)).astype(em.int32)
    should_skip = num_not_finite > 0
    return should_skip, {"should_skip": should_skip, "num_not_finite": num_not_finite}


def skip_large_updates(updates, gradient_step, params, max_squared_norm):
    """A `should_skip_update_fn` for MultiSteps (bind `max_squared_norm` with
    functools.partial): skip when sum of squared updates >= max_squared_norm (or nan).

    Returns (should_skip, {'should_skip', 'norm_squared'}).
    """
    del gradient_step, params
    norm_sq = em.sum(em.stack([em.sum(u**2) for u in tree_leaves(updates)]))
    should_skip = em.logical_not(norm_sq < max_squared_norm)
    return should_skip, {"should_skip": should_skip, "norm_squared": norm_sq}


class MultiStepsState(NamedTuple):
    """mini_step: steps accumulated since the last inner update (int32);
    gradient_step: inner updates done so far (int32); inner_opt_state; acc_grads:
    the running mean (or sum) of the gradients; skip_state: what the skip rule reports."""
    mini_step: Any
    gradient_step: Any
    inner_opt_state: Any
    acc_grads: Any
    skip_state: Any = ()


def _never_skip(*args, **kwargs):
    del args, kwargs
    return em.array(False), ()


class MultiSteps:
    """Gradient accumulation: the inner optimizer steps once every k calls.

    Each call adds the gradients to an accumulator,

        acc <- acc + (g - acc) / (mini_step + 1)    (use_grad_mean, the running mean)
        acc <- acc + g                              (otherwise)

    and returns zero updates, except on the k-th call, which feeds `acc` to the
    inner optimizer, returns its updates and resets the accumulator. k =
    every_k_schedule(gradient_step), an int or a schedule of the number of inner
    steps done. `should_skip_update_fn(updates, gradient_step, params)` can veto a
    call (e.g. `skip_not_finite`): the state then stays as it was. As everywhere in
    ember.optim, both outcomes are computed and chosen with em.where, so the update
    traces into one graph.
    """

    def __init__(self, opt: base.GradientTransformation,
                 every_k_schedule: Union[int, Callable[[Any], Any]],
                 use_grad_mean: bool = True,
                 should_skip_update_fn: Optional[Callable] = None,
                 accumulator_dtype=em.float32):
        self._opt = base.with_extra_args_support(opt)
        if isinstance(every_k_schedule, int):
            self._every_k_schedule = lambda step: every_k_schedule
        else:
            self._every_k_schedule = every_k_schedule
        self._use_grad_mean = use_grad_mean
        self._accumulator_dtype = tree.canonicalize_dtype(accumulator_dtype)
        self._should_skip_update_fn = should_skip_update_fn or _never_skip

    @property
    def inner_opt(self):
        return self._opt

    def _accumulate(self, grad, acc, mini_step):
        if self._use_grad_mean:
            return acc + (grad - acc) / (mini_step + 1)
        return grad + acc

    def init(self, params) -> MultiStepsState:
        gradient_step = em.zeros((), em.int32)
        _, skip_state = self._should_skip_update_fn(tree.zeros_like(params), gradient_step,
                                                    params)
        return MultiStepsState(
            mini_step=em.zeros((), em.int32), gradient_step=gradient_step,
            inner_opt_state=self._opt.init(params),
            acc_grads=tree.zeros_like(params, dtype=self._accumulator_dtype),
            skip_state=skip_state)

    def update(self, updates, state: MultiStepsState, params=None, **extra_args):
        k_steps = self._every_k_schedule(state.gradient_step)
        should_skip, skip_state = self._should_skip_update_fn(updates, state.gradient_step,
                                                              params)
        should_skip = em.asarray(should_skip)
        if should_skip.dtype != em.bool_ or tuple(should_skip.shape) != ():
            raise ValueError("[MultiSteps] should_skip_update_fn must return a boolean scalar "
                             f"array, got dtype {should_skip.dtype} and shape "
                             f"{tuple(should_skip.shape)}")

        acc_grads = tree_map(lambda u, acc: self._accumulate(u, acc, state.mini_step),
                             updates, state.acc_grads)
        inner_updates, new_inner_state = self._opt.update(
            tree.cast_like(acc_grads, updates), state.inner_opt_state, params=params,
            **extra_args)
        emit = state.mini_step == k_steps - 1
        stepped = MultiStepsState(
            mini_step=em.remainder(safe_increment(state.mini_step), k_steps).astype(em.int32),
            gradient_step=em.where(emit, safe_increment(state.gradient_step),
                                   state.gradient_step),
            inner_opt_state=select_tree(emit, new_inner_state, state.inner_opt_state),
            acc_grads=tree_map(lambda acc: ((1 - as_flag(emit, acc.dtype)) * acc)
                               .astype(self._accumulator_dtype), acc_grads),
            skip_state=skip_state)
        stepped_updates = tree_map(lambda u: as_flag(emit, u.dtype) * u, inner_updates)

        skipped = state._replace(skip_state=skip_state)
        new_updates = tree_map(lambda u: em.where(should_skip, em.zeros_like(u), u),
                               stepped_updates)
        return new_updates, select_tree(should_skip, skipped, stepped)

    def has_updated(self, state) -> Any:
        """Whether the last call ran the inner optimizer (mini_step back at 0 after a step)."""
        return em.logical_and(state.mini_step == 0, state.gradient_step > 0)

    def gradient_transformation(self) -> base.GradientTransformation:
        """This accumulator as a plain GradientTransformation(init, update)."""
        return base.GradientTransformation(init=self.init, update=self.update)


class ApplyEvery(NamedTuple):
    """count: calls since the last emission (int32); grad_acc: summed gradients."""
    count: Any
    grad_acc: Any


def apply_every(k=1) -> base.GradientTransformation:
    """Sum the updates over k calls and emit the sum on every k-th call (zeros between).

    Transformations chained before it still step every call; `MultiSteps` is the
    wrapper that makes k small batches act like one big one.
    """
    def init_fn(params):
        return ApplyEvery(count=em.zeros((), em.int32), grad_acc=tree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        c = em.remainder(state.count, k)
        keep = c != 0
        grad_acc = tree_map(lambda g, acc: as_flag(keep, acc.dtype) * acc + g,
                            updates, state.grad_acc)
        emit = c == (k - 1)
        updates = tree_map(lambda acc: as_flag(emit, acc.dtype) * acc, grad_acc)
        count = em.remainder(safe_increment(state.count), k).astype(em.int32)
        return updates, ApplyEvery(count=count, grad_acc=grad_acc)

    return base.GradientTransformation(init_fn, update_fn)
