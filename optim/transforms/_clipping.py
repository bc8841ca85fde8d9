"""Clipping updates: elementwise, per block (RMS), by the global norm, per
example (DP-SGD) and adaptively relative to the params (AGC)."""
from typing import Optional, Union

import ember.core as em

from .. import base, numerics
from .. import tree as otree
from .._trees import tree_leaves, tree_map

ClipState = base.EmptyState
ClipByGlobalNormState = base.EmptyState


def clip(max_delta) -> base.GradientTransformation:
    """u <- clip(u, -max_delta, max_delta), elementwise."""

    def update_fn(updates, state, params=None):
        del params
        return otree.clip(updates, -max_delta, max_delta), state

    return base.GradientTransformation(base.init_empty_state, update_fn)


def clip_by_block_rms(threshold) -> base.GradientTransformation:
    """Each leaf u <- u / max(1, rms(u) / threshold): its RMS is at most threshold."""

    def _clip_fn(u):
        clip_denom = em.maximum(1.0, em.sqrt(em.mean(numerics.abs_sq(u))) / threshold)
        return u / clip_denom

    def update_fn(updates, state, params=None):
        del params
        return tree_map(_clip_fn, updates), state

    return base.GradientTransformation(base.init_empty_state, update_fn)


def clip_by_global_norm(max_norm) -> base.GradientTransformation:
    """u <- u max_norm / ||u|| when the global norm ||u|| (over all leaves) exceeds max_norm."""

    def update_fn(updates, state, params=None):
        del params
        g_norm = otree.norm(updates)
        trigger = em.squeeze(g_norm < max_norm)
        if trigger.ndim != 0:
            raise ValueError(f"[clip_by_global_norm] max_norm must be a scalar, got shape "
                             f"{em.asarray(max_norm).shape}")
        updates = tree_map(lambda t: em.where(trigger, t, t / g_norm.astype(t.dtype) * max_norm),
                           updates)
        return updates, state

    return base.GradientTransformation(base.init_empty_state, update_fn)


def _check_batch_dim(grads, name: str):
    leaves = tree_leaves(grads)
    if not leaves:
        return
    batch_size = leaves[0].shape[0] if leaves[0].ndim else None
    if not all(g.ndim >= 1 and g.shape[0] == batch_size for g in leaves):
        raise ValueError(f"Unlike other transforms, `{name}` expects `grads` to have a batch "
                         "dimension in the 0th axis; got shapes: "
                         f"{[tuple(g.shape) for g in leaves]}.")


def per_example_global_norm_clip(grads, l2_norm_clip):
    """(sum_i g_i min(1, l2_norm_clip / ||g_i||), number of clipped examples) for
    per-example gradients g_i stacked along axis 0 of every leaf (DP-SGD)."""
    _check_batch_dim(grads, "per_example_global_norm_clip")
    leaves = tree_leaves(grads)
    squared = [em.sum(numerics.abs_sq(g), axis=tuple(range(1, g.ndim))) if g.ndim > 1
               else numerics.abs_sq(g) for g in leaves]
    global_grad_norms = em.sqrt(sum(squared[1:], squared[0]))
    multipliers = em.nan_to_num(em.minimum(l2_norm_clip / global_grad_norms, 1.0), nan=1.0)
    num_clipped = em.sum(multipliers < 1.0)
    clipped_sum = tree_map(lambda g: em.tensordot(multipliers, g, axes=1), grads)
    return clipped_sum, num_clipped


def unitwise_norm(x, axis: Optional[Union[int, tuple]] = None):
    """The L2 norm of each output unit of x, broadcast to x's shape: over all of x for
    vectors and scalars, over axis 0 for matrices and 3-d arrays, over all but the
    last axis for 4-d and 5-d (convolution) kernels, or over `axis`."""
    x = em.asarray(x)
    if axis is not None:
        squared_norm = em.sum(numerics.abs_sq(x), axis=axis, keepdims=True)
    elif sum(1 for n in x.shape if n != 1) <= 1:
        squared_norm = em.sum(numerics.abs_sq(x), keepdims=True)
    elif x.ndim in (2, 3):
        squared_norm = em.sum(numerics.abs_sq(x), axis=0, keepdims=True)
    elif x.ndim in (4, 5):
        squared_norm = em.sum(numerics.abs_sq(x), axis=tuple(range(x.ndim - 1)), keepdims=True)
    else:
        raise ValueError(f"Expected parameter with shape in (1, 2, 3, 4, 5), got {x.shape}. "
                         "Use axis parameter to specify reduction axes for other shapes.")
    return em.broadcast_to(em.sqrt(squared_norm), x.shape)


def unitwise_clip(g_norm, max_norm, grad, div_eps=1e-6):
    """grad where g_norm < max_norm, else grad rescaled to norm max_norm."""
    if not (g_norm.shape == max_norm.shape == grad.shape):
        raise ValueError(f"[unitwise_clip] g_norm {g_norm.shape}, max_norm {max_norm.shape} "
                         f"and grad {grad.shape} must have the same shape")
    clipped_grad = grad * (max_norm / em.maximum(g_norm, div_eps))
    return em.where(g_norm < max_norm, grad, clipped_grad)


def adaptive_grad_clip(clipping, eps=1e-3,
                       axis: Optional[Union[int, tuple]] = None) -> base.GradientTransformation:
    """Adaptive gradient clipping (AGC, NFNets): each unit's gradient is clipped to
    norm clipping * max(||p_unit||, eps)."""

    def update_fn(updates, state, params):
        if params is None:
            raise ValueError(base.NO_PARAMS_MSG)

        def clip_leaf(u, p):
            max_norm = clipping * em.maximum(unitwise_norm(p, axis=axis), eps)
            return unitwise_clip(unitwise_norm(u, axis=axis), max_norm, u)
        return tree_map(clip_leaf, updates, params, names=("updates", "params")), state

    return base.GradientTransformation(base.init_empty_state, update_fn)
