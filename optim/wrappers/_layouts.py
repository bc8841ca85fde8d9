"""flatten: run a transformation on all params concatenated into one vector."""
import math

import ember.core as em

from .. import base
from .._trees import tree_flatten


def _flatten(tree):
    leaves, _ = tree_flatten(tree)
    return em.concatenate([em.reshape(leaf, (-1,)) for leaf in leaves])


def _unflatten(like, flat):
    """Split `flat` back into arrays with the shapes and tree of `like`."""
    leaves, treedef = tree_flatten(like)
    offsets, total = [], 0
    for leaf in leaves[:-1]:
        total += math.prod(leaf.shape)
        offsets.append(total)
    pieces = em.split(flat, offsets) if offsets else [flat]
    return treedef.unflatten([em.reshape(piece, leaf.shape)
                              for piece, leaf in zip(pieces, leaves)])


def flatten(inner: base.GradientTransformation) -> base.GradientTransformationExtraArgs:
    """`inner` applied to one vector holding every leaf (raveled, in tree order).

    Transformations with per-leaf loops (many small leaves) then do one big
    operation per step; the updates come back in the params' tree and shapes.
    """
    inner = base.with_extra_args_support(inner)

    def init_fn(params):
        return inner.init(_flatten(params))

    def update_fn(updates, state, params=None, **extra_args):
        flat_params = None if params is None else _flatten(params)
        flat_updates, state = inner.update(_flatten(updates), state, flat_params, **extra_args)
        return _unflatten(updates, flat_updates), state

    return base.GradientTransformationExtraArgs(init_fn, update_fn)
