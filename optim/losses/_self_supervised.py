"""Contrastive and metric-learning losses on embeddings."""
import ember.core as em

from ._checks import as_array, check_floating
from ._regression import cosine_similarity


def ntxent(embeddings, labels, temperature=0.07):
    """Normalised temperature-scaled cross entropy (SimCLR, Chen et al., 2020).

    With c_ij = cos(e_i, e_j) / temperature, for every positive pair (i, j) (same label,
    i != j):
        l_ij = -log( exp(c_ij) / (exp(c_ij) + sum_{k: label_k != label_i} exp(c_ik)) )
    and the loss is the mean of l_ij over positive pairs.
    """
    embeddings, labels = as_array(embeddings), as_array(labels)
    check_floating("ntxent", "embeddings", embeddings)
    if labels.shape[0] != embeddings.shape[0]:
        raise ValueError("[ntxent] labels and embeddings must have the same leading "
                         f"dimension, got {labels.shape[0]} for labels and "
                         f"{embeddings.shape[0]} for embeddings")
    eps = em.finfo(embeddings.dtype).eps
    similarity = cosine_similarity(embeddings[None, :, :], embeddings[:, None, :],
                                   epsilon=eps) / temperature
    same_label = em.expand_dims(labels, 1) == em.expand_dims(labels, 0)
    negatives = em.logical_not(same_label)
    positives = same_label & em.logical_not(em.eye(labels.shape[0], dtype=em.bool_))
    inf = float("inf")
    negative_scores = em.where(negatives, similarity, -inf)
    positive_scores = em.where(positives, similarity, -inf)
    peak = em.stop_gradient(em.max(em.concatenate([negative_scores, positive_scores], axis=-1),
                                   axis=1, keepdims=True))
    numerator = positive_scores - peak
    denominator = (em.sum(em.exp(negative_scores - peak), axis=1, keepdims=True)
                   + em.exp(numerator))
    log_softmax = numerator - em.log(denominator)
    return (-em.sum(em.where(positives, log_softmax, 0.0))
            / em.sum(positives.astype(log_softmax.dtype)))


def triplet_margin_loss(anchors, positives, negatives, axis=-1, norm_degree=2, margin=1.0,
                        eps=1e-6):
    """Triplet margin loss (Schroff et al., FaceNet 2015):

        d(x, y) = (sum |x - y|^p + eps)^(1/p)   (p = norm_degree, along `axis`)
        loss = max(d(a, pos) - d(a, neg) + margin, 0)
    """
    anchors, positives, negatives = (as_array(x) for x in (anchors, positives, negatives))
    for name, x in (("anchors", anchors), ("positives", positives), ("negatives", negatives)):
        check_floating("triplet_margin_loss", name, x)
    positive_distance = em.power(
        em.sum(em.power(anchors - positives, norm_degree), axis=axis) + eps, 1 / norm_degree)
    negative_distance = em.power(
        em.sum(em.power(anchors - negatives, norm_degree), axis=axis) + eps, 1 / norm_degree)
    return em.maximum(positive_distance - negative_distance + margin, 0)
