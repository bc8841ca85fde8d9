"""Kullback-Leibler divergences between distributions along an axis."""
import ember.core as em

from ._checks import as_array, check_floating, masked_sum


def kl_divergence(log_predictions, targets, axis=-1, where=None):
    """KL(targets || predictions) from log-predictions:

        loss = sum_i t_i (log t_i - log p_i),   with 0 log 0 = 0.
    """
    log_predictions, targets = as_array(log_predictions), as_array(targets)
    check_floating("kl_divergence", "log_predictions", log_predictions)
    check_floating("kl_divergence", "targets", targets)
    log_targets = em.where(targets == 0, 0, em.log(em.where(targets == 0, 1, targets)))
    return masked_sum(targets * (log_targets - log_predictions), axis=axis, where=where)


def kl_divergence_with_log_targets(log_predictions, log_targets, axis=-1, where=None):
    """KL(targets || predictions) with both given as logs:

        loss = sum_i exp(log t_i) (log t_i - log p_i)
    """
    log_predictions, log_targets = as_array(log_predictions), as_array(log_targets)
    check_floating("kl_divergence_with_log_targets", "log_predictions", log_predictions)
    check_floating("kl_divergence_with_log_targets", "log_targets", log_targets)
    loss = em.exp(log_targets) * (log_targets - log_predictions)
    return masked_sum(loss, axis=axis, where=where)


def generalized_kl_divergence(log_predictions, targets, axis=-1, where=None):
    """KL divergence extended to unnormalised non-negative measures:

        loss = sum_i t_i (log t_i - log p_i) + sum_i (p_i - t_i)
    """
    log_predictions, targets = as_array(log_predictions), as_array(targets)
    divergence = kl_divergence(log_predictions, targets, axis=axis, where=where)
    return divergence + masked_sum(em.exp(log_predictions) - targets, axis=axis, where=where)


def convex_kl_divergence(log_predictions, targets, axis=-1, where=None):
    """The old name of `generalized_kl_divergence` (deprecated in Optax), same value."""
    return generalized_kl_divergence(log_predictions, targets, axis=axis, where=where)
