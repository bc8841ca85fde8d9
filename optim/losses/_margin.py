"""Margin losses for binary (targets in {-1, 1}) and multiclass (integer labels) scores."""
import ember.core as em

from ._checks import as_array, check_same_shape, one_hot


def hinge_loss(predictor_outputs, targets):
    """Binary hinge loss, targets in {-1, 1}:  loss = max(0, 1 - y s)."""
    return em.maximum(0, 1 - as_array(predictor_outputs) * targets)


def perceptron_loss(predictor_outputs, targets):
    """Binary perceptron loss, targets in {-1, 1}:  loss = max(0, -y s)."""
    predictor_outputs, targets = as_array(predictor_outputs), as_array(targets)
    check_same_shape("perceptron_loss", ("predictor_outputs", "targets"),
                     predictor_outputs, targets)
    return em.maximum(0, -predictor_outputs * targets)


def multiclass_hinge_loss(scores, labels):
    """Multiclass hinge loss (Crammer & Singer):

        loss = max_k (s_k + 1 - [k = y]) - s_y
    """
    scores = as_array(scores)
    labels_one_hot = one_hot(as_array(labels), scores.shape[-1], scores.dtype)
    return (em.max(scores + 1.0 - labels_one_hot, axis=-1)
            - em.sum(scores * labels_one_hot, axis=-1))


def multiclass_perceptron_loss(scores, labels):
    """Multiclass perceptron loss:  loss = max_k s_k - s_y."""
    scores = as_array(scores)
    labels_one_hot = one_hot(as_array(labels), scores.shape[-1], scores.dtype)
    return em.max(scores, axis=-1) - em.sum(scores * labels_one_hot, axis=-1)
