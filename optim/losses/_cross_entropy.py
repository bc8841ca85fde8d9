"""Softmax and sigmoid cross-entropy losses (optax.losses classification losses)."""
import ember.core as em

from ._checks import (as_array, check_floating, check_integer, log_sigmoid, log_softmax,
                      masked_sum)


def sigmoid_binary_cross_entropy(logits, labels):
    """Element-wise binary cross entropy of sigmoid(logits) against `labels` in [0, 1].

        loss = -labels log sigmoid(logits) - (1 - labels) log(1 - sigmoid(logits))

    computed with log_sigmoid for stability. `labels` are cast to the logits' dtype.
    """
    logits = as_array(logits)
    check_floating("sigmoid_binary_cross_entropy", "logits", logits)
    labels = as_array(labels).astype(logits.dtype)
    return -labels * log_sigmoid(logits) - (1.0 - labels) * log_sigmoid(-logits)


def sigmoid_focal_loss(logits, labels, *, alpha=None, gamma=2.0):
    """Focal loss (Lin et al., 2017): binary cross entropy down-weighted where confident.

        p_t = p if label = 1 else 1 - p,     p = sigmoid(logits)
        loss = (1 - p_t)^gamma CE(p, label)                    (alpha None)
        loss = (alpha label + (1 - alpha)(1 - label)) (1 - p_t)^gamma CE
    log(1 - p_t) is formed in log space, log((1-y) p + y (1-p)), for stability.
    """
    logits = as_array(logits)
    check_floating("sigmoid_focal_loss", "logits", logits)
    labels = as_array(labels).astype(logits.dtype)
    ce_loss = sigmoid_binary_cross_entropy(logits, labels)
    log_p, log_q = log_sigmoid(logits), log_sigmoid(-logits)
    # log((1 - y) p + y q) as a weighted logsumexp; terms of zero weight don't set the peak.
    inf = float("inf")
    peak = em.stop_gradient(em.maximum(em.where(labels != 1, log_p, -inf),
                                       em.where(labels != 0, log_q, -inf)))
    log_one_minus_p_t = peak + em.log((1 - labels) * em.exp(log_p - peak)
                                      + labels * em.exp(log_q - peak))
    loss = ce_loss * em.exp(gamma * log_one_minus_p_t)
    if alpha is None:
        return loss
    return (alpha * labels + (1.0 - alpha) * (1.0 - labels)) * loss


def softmax_cross_entropy(logits, labels, axis=-1, where=None):
    """Cross entropy between softmax(logits) and the distributions `labels` along `axis`.

        loss = -sum_i labels_i log softmax(logits)_i

    `where` (boolean, the logits' shape or missing `axis`) leaves entries out of both
    the normalisation and the sum.
    """
    logits = as_array(logits)
    check_floating("softmax_cross_entropy", "logits", logits)
    labels = as_array(labels)
    if where is not None and where.ndim != logits.ndim:
        where = em.expand_dims(where, axis)
    log_probs = log_softmax(logits, axis, where)
    return -masked_sum(labels * log_probs, axis=axis, where=where)


def softmax_cross_entropy_with_integer_labels(logits, labels, axis=-1, where=None):
    """Cross entropy with the target class given as an integer index.

        loss = logsumexp(logits) - logits[label]

    `axis` is the class axis (an int, or a tuple of axes flattened into one class
    axis); `labels` has the logits' shape without it. Rows fully masked by `where`
    give 0.
    """
    op = "softmax_cross_entropy_with_integer_labels"
    logits, labels = as_array(logits), as_array(labels)
    check_floating(op, "logits", logits)
    check_integer(op, "labels", labels)
    if where is not None and where.ndim != logits.ndim:
        where = em.expand_dims(where, axis)
    if isinstance(axis, int):
        axis = _canonical_axis(op, axis, logits.ndim)
    elif isinstance(axis, tuple):
        class_axes = tuple(_canonical_axis(op, a, logits.ndim) for a in axis)
        batch_axes = tuple(a for a in range(logits.ndim) if a not in class_axes)
        logits = _flatten_classes(logits, batch_axes, class_axes)
        if where is not None:
            where = _flatten_classes(where, batch_axes, class_axes)
        axis = len(batch_axes)
    else:
        raise ValueError(f"[{op}] axis must be an int or a tuple of ints, got {type(axis)}")
    label_logits = em.squeeze(
        em.take_along_axis(logits, em.expand_dims(labels, axis), axis=axis), axis)
    masked_logits = logits if where is None else em.where(where, logits, -float("inf"))
    out = em.logsumexp(masked_logits, axis=axis) - label_logits
    if where is not None:
        out = em.where(em.any(where, axis=axis), out, 0.0)
    return out


def _canonical_axis(op, axis, ndim):
    if not -ndim <= axis < ndim:
        raise ValueError(f"[{op}] axis {axis} is out of bounds for an array of {ndim} dimensions")
    return axis % ndim


def _flatten_classes(x, batch_axes, class_axes):
    x = em.transpose(x, batch_axes + class_axes)
    return em.reshape(x, tuple(x.shape[:len(batch_axes)]) + (-1,))


def safe_softmax_cross_entropy(logits, labels):
    """softmax_cross_entropy over the last axis where 0 * log(0) counts as 0.

        loss = -sum_{i: labels_i != 0} labels_i log softmax(logits)_i

    so logits of -inf on classes with zero label give a finite loss.
    """
    logits = as_array(logits)
    check_floating("safe_softmax_cross_entropy", "logits", logits)
    labels = as_array(labels)
    weighted = em.where(labels != 0.0, labels * log_softmax(logits, -1), 0.0)
    return -em.sum(weighted, axis=-1)


def poly_loss_cross_entropy(logits, labels, *, epsilon=2.0, axis=-1, where=None):
    """PolyLoss (Leng et al., 2022): cross entropy plus epsilon times the first poly term.

        loss = CE(logits, labels) + epsilon sum_i labels_i (1 - softmax(logits)_i)
    """
    logits, labels = as_array(logits), as_array(labels)
    check_floating("poly_loss_cross_entropy", "logits", logits)
    check_floating("poly_loss_cross_entropy", "labels", labels)
    if where is not None and where.ndim != logits.ndim:
        where = em.expand_dims(where, axis)
    probs = em.exp(log_softmax(logits, axis, where))
    one_minus_pt = masked_sum(labels * (1 - probs), axis=axis, where=where)
    cross_entropy = softmax_cross_entropy(logits, labels, axis=axis, where=where)
    return cross_entropy + epsilon * one_minus_pt
