"""mlx.nn.losses on ember: the same names, signatures, defaults and `reduction` argument.

    from ember.optim.losses import nn as L
    L.cross_entropy(logits, targets, label_smoothing=0.1, reduction="mean")

`reduction` is 'none' (per-element losses), 'mean' or 'sum' (over all elements). The
functions whose names Optax also uses with other signatures (hinge_loss, huber_loss)
live only here; the others are re-exported by `ember.optim.losses` as well.
"""
import math

import ember.core as em

from ._checks import as_array

_REDUCTIONS = ("none", "mean", "sum")


def _reduce(loss, reduction: str, op: str):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"[{op}] invalid reduction {reduction!r}; must be one of {_REDUCTIONS}")
    if reduction == "mean":
        return em.mean(loss)
    if reduction == "sum":
        return em.sum(loss)
    return loss


def _check_same_shape(op, first_name, first, second_name, second):
    if tuple(first.shape) != tuple(second.shape):
        raise ValueError(f"[{op}] {first_name} shape {tuple(first.shape)} does not match "
                         f"{second_name} shape {tuple(second.shape)}")


def _apply_weights(op, loss, weights):
    if weights is None:
        return loss
    weights = as_array(weights)
    if tuple(weights.shape) != tuple(loss.shape):
        raise ValueError(f"[{op}] weights shape {tuple(weights.shape)} is not the shape of "
                         f"the loss {tuple(loss.shape)}")
    return loss * weights


def cross_entropy(logits, targets, weights=None, axis: int = -1, label_smoothing: float = 0.0,
                  reduction: str = "none"):
    """Cross entropy of softmax(logits) along `axis`.

    `targets` are class indices (the logits' shape without `axis`) or class
    probabilities (the logits' shape). With label smoothing s and score
    z_y (the target logit, or sum_k t_k z_k for probabilities):

        loss = logsumexp(z) - (1 - s) z_y - s mean_k z_k

    `weights` (the loss's shape) multiply the per-example losses before `reduction`.
    """
    op = "cross_entropy"
    if label_smoothing < 0 or label_smoothing >= 1:
        raise ValueError(f"[{op}] label_smoothing must be in [0, 1), got {label_smoothing}")
    logits, targets = as_array(logits), as_array(targets)
    targets_are_probabilities = targets.ndim == logits.ndim
    if not -logits.ndim <= axis < logits.ndim:
        raise ValueError(f"[{op}] axis {axis} is out of bounds for logits of shape "
                         f"{tuple(logits.shape)}")
    class_axis = axis % logits.ndim
    expected = (tuple(logits.shape) if targets_are_probabilities else
                tuple(d for i, d in enumerate(logits.shape) if i != class_axis))
    if tuple(targets.shape) != expected:
        raise ValueError(f"[{op}] targets shape {tuple(targets.shape)} does not match "
                         f"logits shape {tuple(logits.shape)}")
    if targets_are_probabilities:
        score = em.sum(logits * targets, axis=class_axis)
    else:
        score = em.squeeze(em.take_along_axis(logits, em.expand_dims(targets, class_axis),
                                              axis=class_axis), class_axis)
    logsumexp_logits = em.logsumexp(logits, axis=class_axis)
    if label_smoothing > 0:
        loss = (logsumexp_logits - (1 - label_smoothing) * score
                - label_smoothing * em.mean(logits, axis=class_axis))
    else:
        loss = logsumexp_logits - score
    return _reduce(_apply_weights(op, loss, weights), reduction, op)


def binary_cross_entropy(inputs, targets, weights=None, with_logits: bool = True,
                         reduction: str = "mean"):
    """Binary cross entropy against targets in {0, 1}.

    with_logits:  loss = log(1 + exp(x)) - x y
    otherwise:    loss = -(y max(log p, -100) + (1 - y) max(log(1 - p), -100))
    """
    op = "binary_cross_entropy"
    inputs, targets = as_array(inputs), as_array(targets)
    _check_same_shape(op, "inputs", inputs, "targets", targets)
    if with_logits:
        loss = em.logaddexp(0.0, inputs) - inputs * targets
    else:
        log_p = em.maximum(em.log(inputs), -100)
        log_not_p = em.maximum(em.log(1 - inputs), -100)
        loss = -(targets * log_p + (1 - targets) * log_not_p)
    return _reduce(_apply_weights(op, loss, weights), reduction, op)


def l1_loss(predictions, targets, reduction: str = "mean"):
    """|predictions - targets|."""
    predictions, targets = as_array(predictions), as_array(targets)
    _check_same_shape("l1_loss", "predictions", predictions, "targets", targets)
    return _reduce(em.abs(predictions - targets), reduction, "l1_loss")


def mse_loss(predictions, targets, reduction: str = "mean"):
    """(predictions - targets)^2."""
    predictions, targets = as_array(predictions), as_array(targets)
    _check_same_shape("mse_loss", "predictions", predictions, "targets", targets)
    return _reduce(em.square(predictions - targets), reduction, "mse_loss")


def nll_loss(inputs, targets, axis: int = -1, reduction: str = "none"):
    """Negative log likelihood of class indices `targets` under log-probabilities `inputs`:

        loss = -inputs[..., target, ...]   (class axis `axis`)
    """
    inputs, targets = as_array(inputs), as_array(targets)
    axis = axis % inputs.ndim
    loss = -em.squeeze(em.take_along_axis(inputs, em.expand_dims(targets, axis), axis=axis), axis)
    return _reduce(loss, reduction, "nll_loss")


def gaussian_nll_loss(inputs, targets, vars, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean"):
    """Negative log likelihood of `targets` under N(inputs, vars):

        loss = (log(max(vars, eps)) + (targets - inputs)^2 / max(vars, eps)) / 2
               (+ log(2 pi) / 2 when `full`)
    """
    op = "gaussian_nll_loss"
    inputs, targets, vars = as_array(inputs), as_array(targets), as_array(vars)
    _check_same_shape(op, "inputs", inputs, "targets", targets)
    _check_same_shape(op, "inputs", inputs, "vars", vars)
    vars = em.maximum(vars, eps)
    loss = 0.5 * (em.log(vars) + em.square(targets - inputs) / vars)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction, op)


def kl_div_loss(inputs, targets, axis: int = -1, reduction: str = "none"):
    """KL(targets || inputs), both given as log-probabilities along `axis`:

        loss = sum exp(targets) (targets - inputs)
    """
    inputs, targets = as_array(inputs), as_array(targets)
    loss = em.sum(em.exp(targets) * (targets - inputs), axis=axis)
    return _reduce(loss, reduction, "kl_div_loss")


def smooth_l1_loss(predictions, targets, beta: float = 1.0, reduction: str = "mean"):
    """Smooth L1: 0.5 d^2 / beta for d = |predictions - targets| < beta, d - beta / 2 beyond."""
    predictions, targets = as_array(predictions), as_array(targets)
    _check_same_shape("smooth_l1_loss", "predictions", predictions, "targets", targets)
    diff = em.abs(predictions - targets)
    loss = em.where(diff < beta, 0.5 * em.square(diff) / beta, diff - 0.5 * beta)
    return _reduce(loss, reduction, "smooth_l1_loss")


def triplet_loss(anchors, positives, negatives, axis: int = -1, p: int = 2,
                 margin: float = 1.0, eps: float = 1e-6, reduction: str = "none"):
    """max(d(A, P) - d(A, N) + margin, 0) with d(x, y) = sqrt(sum (x - y)^p + eps).

    As in MLX, the root is a square root whatever `p` (so p = 2 gives the Euclidean
    distance).
    """
    anchors, positives, negatives = (as_array(x) for x in (anchors, positives, negatives))
    positive_distance = em.sqrt(em.sum(em.power(anchors - positives, p), axis=axis) + eps)
    negative_distance = em.sqrt(em.sum(em.power(anchors - negatives, p), axis=axis) + eps)
    loss = em.maximum(positive_distance - negative_distance + margin, 0)
    return _reduce(loss, reduction, "triplet_loss")


def hinge_loss(inputs, targets, reduction: str = "none"):
    """max(1 - inputs targets, 0), targets in {-1, 1}."""
    loss = em.maximum(1 - as_array(inputs) * targets, 0)
    return _reduce(loss, reduction, "hinge_loss")


def huber_loss(inputs, targets, delta: float = 1.0, reduction: str = "none"):
    """Huber loss: a^2 / 2 for |a| <= delta, delta (|a| - delta / 2) beyond (a = error)."""
    abs_errors = em.abs(as_array(inputs) - targets)
    quadratic = em.minimum(abs_errors, delta)
    loss = 0.5 * quadratic**2 + delta * (abs_errors - quadratic)
    return _reduce(loss, reduction, "huber_loss")


def log_cosh_loss(inputs, targets, reduction: str = "none"):
    """log(cosh(inputs - targets)), as logaddexp(e, -e) - log 2."""
    errors = as_array(inputs) - targets
    loss = em.logaddexp(errors, -errors) - math.log(2)
    return _reduce(loss, reduction, "log_cosh_loss")


def cosine_similarity_loss(x1, x2, axis: int = 1, eps: float = 1e-8, reduction: str = "none"):
    """Cosine similarity along `axis`:  x1 . x2 / max(|x1| |x2|, eps)."""
    x1, x2 = as_array(x1), as_array(x2)
    x1_norm = em.sqrt(em.sum(em.square(x1), axis=axis))
    x2_norm = em.sqrt(em.sum(em.square(x2), axis=axis))
    loss = em.sum(x1 * x2, axis=axis) / em.maximum(x1_norm * x2_norm, eps)
    return _reduce(loss, reduction, "cosine_similarity_loss")


def margin_ranking_loss(inputs1, inputs2, targets, margin: float = 0.0,
                        reduction: str = "none"):
    """max(0, -y (x1 - x2) + margin), y in {-1, 1} saying which input should rank higher."""
    inputs1, inputs2, targets = as_array(inputs1), as_array(inputs2), as_array(targets)
    if not tuple(inputs1.shape) == tuple(inputs2.shape) == tuple(targets.shape):
        raise ValueError("[margin_ranking_loss] the shapes of the arguments do not match: "
                         f"inputs1 {tuple(inputs1.shape)}, inputs2 {tuple(inputs2.shape)}, "
                         f"targets {tuple(targets.shape)}")
    loss = em.maximum(0, -targets * (inputs1 - inputs2) + margin)
    return _reduce(loss, reduction, "margin_ranking_loss")
