"""Fenchel-Young losses (Blondel et al., 2020) built from a regularised max function."""
import ember.core as em

from ._checks import as_array


def make_fenchel_young_loss(max_fun):
    """The Fenchel-Young loss of `max_fun`, a convex function of a 1-D score vector:

        loss(scores, targets) = max_fun(scores) - <targets, scores>

    over the last axis (e.g. max_fun = em.logsumexp gives softmax cross entropy).
    `max_fun` sees one row at a time (em.vmap over the leading axes, as Optax's
    jnp.vectorize); extra arguments reach it unbatched.
    """
    def fenchel_young_loss(scores, targets, *args, **kwargs):
        scores, targets = as_array(scores), as_array(targets)
        rows = em.reshape(scores, (-1, scores.shape[-1]))
        max_values = em.vmap(lambda row: max_fun(row, *args, **kwargs))(rows)
        max_values = em.reshape(max_values, tuple(scores.shape[:-1]))
        return max_values - em.sum(targets * scores, axis=-1)

    return fenchel_young_loss
