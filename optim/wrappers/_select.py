"""Choosing between two results of a wrapper by a condition held in an array.

Optax chooses with `jax.lax.cond`, which runs one branch. Here the condition may
be a traced value inside a compiled step, so both branches are computed and every
leaf is chosen with `em.where`; each leaf keeps the dtype of the `otherwise` tree
(as lax.cond insists both branches agree).
"""
import ember.core as em

from .._trees import tree_map


def select_tree(condition, chosen, otherwise):
    """chosen's leaves where `condition` holds, else otherwise's, in otherwise's dtypes."""
    return tree_map(lambda a, b: em.where(condition, a, b).astype(em.asarray(b).dtype),
                    chosen, otherwise)


def as_flag(condition, dtype):
    """A boolean condition as 0 / 1 of `dtype`, for Optax's `emit * x` arithmetic."""
    return em.asarray(condition).astype(dtype)
