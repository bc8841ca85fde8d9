"""Label smoothing."""
import ember.core as em

from ._checks import as_array, check_floating


def smooth_labels(labels, alpha, *, axis=-1, where=None):
    """Mix one-hot (or soft) labels with the uniform distribution over K classes:

        smoothed = (1 - alpha) labels + alpha / K

    K is the size of `axis`, or the number of entries `where` keeps along it.
    """
    labels = as_array(labels)
    check_floating("smooth_labels", "labels", labels)
    if where is None:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        num_categories = 1
        for a in axes:
            num_categories *= labels.shape[a]
    else:
        num_categories = em.sum(em.asarray(where).astype(labels.dtype), axis=axis, keepdims=True)
    return (1.0 - alpha) * labels + alpha / num_categories
