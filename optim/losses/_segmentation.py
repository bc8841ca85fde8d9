"""Dice losses for segmentation: overlap between predicted and target class masks."""
import ember.core as em

from ._checks import as_array, check_same_shape


def _reduce_loss(loss, reduction: str, axis=None):
    if reduction == "mean":
        return em.mean(loss, axis=axis)
    if reduction == "sum":
        return em.sum(loss, axis=axis)
    if reduction == "none":
        return loss
    raise ValueError(f"[dice_loss] unsupported reduction {reduction!r}; "
                     "use 'none', 'mean' or 'sum'")


def dice_loss(predictions, targets, *, class_weights=None, smooth=1.0, alpha=0.5, beta=0.5,
              apply_softmax=True, reduction="mean", ignore_background=False, axis=None):
    """Tversky / Dice loss per (batch, class), reduced over classes.

        I = sum p t,   P = sum p,   T = sum t      (over the spatial `axis`)
        loss = 1 - (I + smooth) / (I + alpha (P - I) + beta (T - I) + smooth)

    alpha = beta = 0.5 is the Dice loss. `predictions` are logits turned into
    probabilities by softmax over classes (sigmoid for one class) unless
    `apply_softmax` is False, when they must already sum to 1. The class axis is last;
    spatial axes default to all but the first and the last.
    """
    predictions, targets = as_array(predictions), as_array(targets)
    if predictions.ndim == targets.ndim - 1:
        predictions = em.expand_dims(predictions, -1)
    if targets.ndim == predictions.ndim - 1:
        targets = em.expand_dims(targets, -1)
    check_same_shape("dice_loss", ("predictions", "targets"), predictions, targets)
    if not apply_softmax:
        pred_sums = em.sum(predictions, axis=-1)
        if not em.allclose(pred_sums, 1.0, rtol=1e-05).item():
            raise ValueError(
                "[dice_loss] with apply_softmax=False, predictions must be probability "
                "distributions summing to 1 along the class axis; sums range over "
                f"[{em.min(pred_sums).item():.6f}, {em.max(pred_sums).item():.6f}]")
    probs = predictions
    if apply_softmax:
        probs = (em.sigmoid(predictions) if predictions.shape[-1] == 1
                 else em.softmax(predictions, axis=-1, precise=True))
    axis = tuple(range(1, probs.ndim - 1)) if axis is None else axis
    intersection = em.sum(probs * targets, axis=axis)
    pred_sum = em.sum(probs, axis=axis)
    target_sum = em.sum(targets, axis=axis)
    denominator = (intersection + alpha * (pred_sum - intersection)
                   + beta * (target_sum - intersection) + smooth)
    loss = 1.0 - (intersection + smooth) / denominator
    if class_weights is not None:
        class_weights = as_array(class_weights)
        if class_weights.ndim != 1:
            raise ValueError("[dice_loss] class_weights must be 1-D, "
                             f"got shape {class_weights.shape}")
        loss = loss * class_weights
    if ignore_background and probs.shape[-1] > 1:
        loss = loss[..., 1:]
    return _reduce_loss(loss, reduction, axis=-1)


def multiclass_generalized_dice_loss(predictions, targets, *, smooth=1.0, apply_softmax=True,
                                     ignore_background=False):
    """Generalised Dice (Sudre et al., 2017): classes weighted by 1 / frequency^2.

        w_c = 1 / (f_c^2 + 1e-7), normalised to sum to the number of classes;
        loss = mean over batch and classes of w_c dice_c
    """
    predictions, targets = as_array(predictions), as_array(targets)
    check_same_shape("multiclass_generalized_dice_loss", ("predictions", "targets"),
                     predictions, targets)
    class_frequencies = em.sum(targets, axis=tuple(range(targets.ndim - 1)))
    class_weights = 1.0 / (class_frequencies**2 + 1e-7)
    class_weights = class_weights / em.sum(class_weights) * class_weights.shape[0]
    return em.mean(dice_loss(predictions, targets, class_weights=class_weights, smooth=smooth,
                             apply_softmax=apply_softmax, reduction="none",
                             ignore_background=ignore_background))


def binary_dice_loss(predictions, targets, *, smooth=1.0, apply_sigmoid=True):
    """Dice loss for one foreground class: sigmoid of logits against binary targets."""
    predictions, targets = as_array(predictions), as_array(targets)
    if predictions.ndim == targets.ndim and predictions.shape[-1] != 1:
        predictions = em.expand_dims(predictions, -1)
        targets = em.expand_dims(targets, -1)
    return dice_loss(predictions, targets, smooth=smooth, apply_softmax=apply_sigmoid,
                     reduction="mean")
