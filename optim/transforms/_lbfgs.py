"""L-BFGS preconditioning (scale_by_lbfgs): the inverse-Hessian estimate built
from the last memory_size pairs of param and gradient differences, applied to
the update by the two-loop recursion."""
from typing import NamedTuple

import ember.core as em

from .. import base, numerics
from .. import tree as otree
from .._trees import tree_leaves, tree_map


class ScaleByLBFGSState(NamedTuple):
    """count; the params and updates of the previous step; the ring buffers of
    differences (each leaf stacked memory_size deep) and their weights 1 / <dw, du>."""
    count: em.array
    params: base.Params
    updates: base.Params
    diff_params_memory: base.ArrayTree
    diff_updates_memory: base.ArrayTree
    weights_memory: em.array


def _row(tree, idx):
    """Row idx (a 0-d int array) of every stacked leaf."""
    return tree_map(lambda x: em.take(x, idx, axis=0), tree)


def _precondition_by_lbfgs(updates, diff_params_memory, diff_updates_memory, weights_memory,
                           identity_scale, memory_idx):
    """The two-loop recursion: H u for the L-BFGS inverse-Hessian estimate H, the
    pairs visited from the newest to the oldest and back."""
    rhos = weights_memory
    memory_size = weights_memory.shape[0]
    indices = em.remainder(memory_idx + em.arange(memory_size), memory_size)
    vec = updates
    alphas = [None] * memory_size
    for k in reversed(range(memory_size)):
        idx = indices[k]
        dwi, dui = _row(diff_params_memory, idx), _row(diff_updates_memory, idx)
        alphas[k] = rhos[idx] * em.real(otree.vdot(dwi, vec))
        vec = otree.cast_like(otree.add_scale(vec, -alphas[k], dui), vec)
    vec = otree.scale(identity_scale, vec)
    for k in range(memory_size):
        idx = indices[k]
        dwi, dui = _row(diff_params_memory, idx), _row(diff_updates_memory, idx)
        beta = rhos[idx] * em.real(otree.vdot(dui, vec))
        vec = otree.cast_like(otree.add_scale(vec, alphas[k] - beta, dwi), vec)
    return vec


def scale_by_lbfgs(memory_size: int = 10,
                   scale_init_precond: bool = True) -> base.GradientTransformation:
    """u <- H u, H the L-BFGS inverse-Hessian estimate from the last memory_size
    pairs (dw, du) of param and update differences, weighted by 1 / <dw, du>.

    With scale_init_precond the initial estimate is <dw, du> / ||du||^2 times the
    identity (and min(1, 1 / ||u||) at the first step)."""
    if memory_size < 1:
        raise ValueError("memory_size must be >= 1")

    def init_fn(params):
        stacked = tree_map(lambda leaf: em.zeros((memory_size,) + tuple(leaf.shape), leaf.dtype),
                           params)
        return ScaleByLBFGSState(
            count=em.array(0, em.int32), params=otree.zeros_like(params),
            updates=otree.zeros_like(params), diff_params_memory=stacked,
            diff_updates_memory=stacked,
            weights_memory=em.zeros((memory_size,), numerics.scalar_dtype(tree_leaves(params))))

    def update_fn(updates, state, params):
        if params is None:
            raise ValueError(base.NO_PARAMS_MSG)
        memory_idx = em.remainder(state.count, memory_size)
        prev_memory_idx = em.remainder(state.count - 1, memory_size)
        diff_params = otree.sub(params, state.params)
        diff_updates = otree.sub(updates, state.updates)
        vdot_diff = em.real(otree.vdot(diff_updates, diff_params))
        weight = em.where(vdot_diff == 0.0, 0.0, 1.0 / vdot_diff)
        started = state.count > 0
        diff_params, diff_updates, weight = tree_map(
            lambda x: em.where(started, x, em.zeros_like(x)), (diff_params, diff_updates, weight))
        diff_params_memory, diff_updates_memory, weights_memory = tree_map(
            lambda x, y: x.at[prev_memory_idx].set(y),
            (state.diff_params_memory, state.diff_updates_memory, state.weights_memory),
            (diff_params, diff_updates, weight), names=("state", "new differences"))
        if scale_init_precond:
            numerator = em.real(otree.vdot(diff_updates, diff_params))
            denominator = otree.norm(diff_updates, squared=True)
            identity_scale = em.where(denominator > 0.0, numerator / denominator, 1.0)
            update_norm = otree.norm(tree_map(em.stop_gradient, updates))
            capped_inv_norm = em.minimum(1.0, 1.0 / update_norm)
            identity_scale = em.where(started, identity_scale, capped_inv_norm)
        else:
            identity_scale = 1.0
        precond_updates = _precondition_by_lbfgs(updates, diff_params_memory, diff_updates_memory,
                                                 weights_memory, identity_scale, memory_idx)
        return precond_updates, ScaleByLBFGSState(
            count=numerics.safe_increment(state.count), params=params, updates=updates,
            diff_params_memory=diff_params_memory, diff_updates_memory=diff_updates_memory,
            weights_memory=weights_memory)

    return base.GradientTransformation(init_fn, update_fn)
