"""Sparsemax losses (Martins & Astudillo, 2016) and the simplex projection they rest on."""
import ember.core as em

from ._checks import as_array, one_hot


def projection_simplex(scores):
    """Euclidean projection of each row (last axis) of `scores` onto the probability simplex.

        p = max(z - tau, 0),   tau such that sum_i p_i = 1.

    tau = (sum_{j in S} z_j - 1) / |S| with S = {j : 1 + k_j z_j > sum_{i: z_i >= z_j} z_i},
    k_j = #{i : z_i >= z_j}. Computed with an n x n comparison instead of a sort, so
    it costs O(n^2) per row; fine for the class counts losses see.
    """
    z = as_array(scores)
    at_least = (em.expand_dims(z, -2) >= em.expand_dims(z, -1)).astype(z.dtype)
    rank = em.sum(at_least, axis=-1)
    sum_at_least = em.sum(at_least * em.expand_dims(z, -2), axis=-1)
    in_support = 1 + rank * z > sum_at_least
    support_size = em.sum(in_support.astype(z.dtype), axis=-1, keepdims=True)
    tau = (em.sum(em.where(in_support, z, 0), axis=-1, keepdims=True) - 1) / support_size
    return em.maximum(z - tau, 0)


def sparse_plus(x):
    """0 for x <= -1, (x + 1)^2 / 4 for -1 < x < 1, x for x >= 1 (jax.nn.sparse_plus)."""
    return em.where(x <= -1.0, 0.0, em.where(x >= 1.0, x, (x + 1.0) ** 2 / 4))


def sparsemax_loss(logits, labels):
    """Binary sparsemax loss, labels in {0, 1}:  loss = sparse_plus(labels ? -s : s)."""
    logits = as_array(logits)
    return sparse_plus(em.where(as_array(labels) != 0, -logits, logits))


def multiclass_sparsemax_loss(scores, labels):
    """Multiclass sparsemax loss, integer labels:

        p = sparsemax(s),   loss = <p, s - s_y> + (1 - <p, p>) / 2

    with the label's own term set to 0 (batched over leading axes).
    """
    scores = as_array(scores)
    proba = projection_simplex(scores)
    is_label = one_hot(as_array(labels), scores.shape[-1], em.bool_)
    label_score = em.sum(em.where(is_label, scores, 0), axis=-1, keepdims=True)
    shifted = em.where(is_label, 0.0, scores - label_score)
    return (em.sum(proba * em.where(proba != 0, shifted, 0.0), axis=-1)
            + 0.5 * (1.0 - em.sum(proba * proba, axis=-1)))
