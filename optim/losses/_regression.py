"""Regression losses: squared error, Huber, log-cosh and cosine similarity."""
import math

import ember.core as em

from ._checks import as_array, check_floating, check_same_shape, masked_sum


def _errors(op, predictions, targets, same_shape=True):
    """predictions - targets; Optax's squared errors insist on equal shapes, the rest broadcast."""
    predictions = as_array(predictions)
    check_floating(op, "predictions", predictions)
    if targets is None:
        return predictions
    targets = as_array(targets)
    if same_shape:
        check_same_shape(op, ("predictions", "targets"), predictions, targets)
    return predictions - targets


def squared_error(predictions, targets=None):
    """(predictions - targets)^2, element-wise (targets default to 0)."""
    return _errors("squared_error", predictions, targets) ** 2


def l2_loss(predictions, targets=None):
    """(predictions - targets)^2 / 2, element-wise."""
    return 0.5 * _errors("l2_loss", predictions, targets) ** 2


def huber_loss(predictions, targets=None, *, delta=1.0):
    """Huber loss: quadratic for |e| <= delta, linear beyond.

        loss = q^2 / 2 + delta (|e| - q),   q = min(|e|, delta)
    """
    abs_errors = em.abs(_errors("huber_loss", predictions, targets, same_shape=False))
    quadratic = em.minimum(abs_errors, delta)
    return 0.5 * quadratic**2 + delta * (abs_errors - quadratic)


def log_cosh(predictions, targets=None):
    """log(cosh(e)) = logaddexp(e, -e) - log 2, stable for large |e|."""
    errors = _errors("log_cosh", predictions, targets, same_shape=False)
    return em.logaddexp(errors, -errors) - math.log(2.0)


def cosine_similarity(predictions, targets, *, epsilon=0.0, axis=-1, where=None):
    """Cosine of the angle between `predictions` and `targets` along `axis`:

        a / sqrt(max(|a|^2, eps)) . b / sqrt(max(|b|^2, eps))
    """
    a, b = as_array(predictions), as_array(targets)
    check_floating("cosine_similarity", "predictions", a)
    check_floating("cosine_similarity", "targets", b)
    a_norm = em.sqrt(em.maximum(masked_sum(a * a, axis=axis, where=where, keepdims=True), epsilon))
    b_norm = em.sqrt(em.maximum(masked_sum(b * b, axis=axis, where=where, keepdims=True), epsilon))
    return masked_sum((a / a_norm) * (b / b_norm), axis=axis, where=where)


def cosine_distance(predictions, targets, *, epsilon=0.0, axis=-1, where=None):
    """1 - cosine_similarity(predictions, targets)."""
    return 1.0 - cosine_similarity(predictions, targets, epsilon=epsilon, axis=axis, where=where)
