"""masked: apply a transformation to part of the params only."""
from typing import Any, NamedTuple

import optree

from .. import base
from .._trees import tree_leaves


class MaskedState(NamedTuple):
    """The inner transformation's state (built on the masked params)."""
    inner_state: Any


class MaskedNode(NamedTuple):
    """Stands where a masked-out leaf was: an empty subtree, so the inner
    transformation's tree maps skip it."""


def _mask_is_callable(mask) -> bool:
    callable_leaves = tree_leaves(optree.tree_map(callable, mask, none_is_leaf=False))
    return len(callable_leaves) > 0 and all(callable_leaves)


def _mask_tree(tree, mask_tree):
    """tree with the subtrees whose mask is false replaced by MaskedNode()."""
    return optree.tree_map(lambda m, t: t if m else MaskedNode(), mask_tree, tree,
                           none_is_leaf=False)


def masked(inner: base.GradientTransformation, mask, *,
           mask_compatible_extra_args: bool = False) -> base.GradientTransformationExtraArgs:
    """`inner` applied to the params where `mask` is true; the other updates pass through.

    `mask` is a tree of booleans with the params' structure (or a prefix of it: one
    boolean for a whole subtree), or a function of the params returning one. The
    inner transformation sees a tree where masked-out leaves are MaskedNode()
    (empty), so its state only holds the leaves it transforms. With
    `mask_compatible_extra_args`, extra arguments shaped like the updates are masked
    the same way before they reach `inner`.
    """
    inner = base.with_extra_args_support(inner)

    def mask_for(tree):
        return mask(tree) if _mask_is_callable(mask) else mask

    def mask_extra_args(extra_args, updates, mask_tree):
        structure = optree.tree_structure(updates, none_is_leaf=False)

        def maybe_mask(value):
            if (mask_compatible_extra_args
                    and optree.tree_structure(value, none_is_leaf=False) == structure):
                return _mask_tree(value, mask_tree)
            return value
        return {k: maybe_mask(v) for k, v in extra_args.items()}

    def init_fn(params):
        return MaskedState(inner_state=inner.init(_mask_tree(params, mask_for(params))))

    def update_fn(updates, state, params=None, **extra_args):
        mask_tree = mask_for(updates)
        masked_params = None if params is None else _mask_tree(params, mask_tree)
        new_masked_updates, new_inner_state = inner.update(
            _mask_tree(updates, mask_tree), state.inner_state, masked_params,
            **mask_extra_args(extra_args, updates, mask_tree))
        new_updates = optree.tree_map(lambda m, new, old: new if m else old, mask_tree,
                                      new_masked_updates, updates, none_is_leaf=False)
        return new_updates, MaskedState(inner_state=new_inner_state)

    return base.GradientTransformationExtraArgs(init_fn, update_fn)
