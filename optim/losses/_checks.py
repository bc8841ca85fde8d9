"""Argument checks and small masked-reduction helpers shared by the losses.

Optax's losses take an optional boolean `where` mask (as `jnp.sum(..., where=)`):
here it is applied with `em.where` before the reduction, so masked entries never
reach the result even when they hold inf or nan.
"""
import ember.core as em


def as_array(x):
    return em.asarray(x)


def check_floating(op: str, name: str, x):
    """Raise TypeError unless `x` has a floating dtype."""
    if not em.issubdtype(x.dtype, em.floating):
        raise TypeError(f"[{op}] {name} must have a floating dtype, got {x.dtype}")


def check_integer(op: str, name: str, x):
    """Raise TypeError unless `x` has an integer dtype."""
    if not em.issubdtype(x.dtype, em.integer):
        raise TypeError(f"[{op}] {name} must have an integer dtype, got {x.dtype}")


def check_same_shape(op: str, names, *arrays):
    """Raise ValueError unless all `arrays` share one shape."""
    shapes = [tuple(a.shape) for a in arrays]
    if any(shape != shapes[0] for shape in shapes):
        listed = ", ".join(f"{n} {s}" for n, s in zip(names, shapes))
        raise ValueError(f"[{op}] shapes must be equal, got {listed}")


def masked_sum(x, axis=None, where=None, keepdims=False):
    """sum(x) over `axis`, counting only entries where `where` is true."""
    if where is not None:
        x = em.where(where, x, 0)
    return em.sum(x, axis=axis, keepdims=keepdims)


def log_softmax(x, axis=-1, where=None):
    """log softmax(x) along `axis`; masked-out entries (where false) are -inf.

        log_softmax(x)_i = x_i - max(x) - log sum_j exp(x_j - max(x))
    """
    if where is not None:
        x = em.where(where, x, -float("inf"))
    shifted = x - em.stop_gradient(em.max(x, axis=axis, keepdims=True))
    result = shifted - em.log(em.sum(em.exp(shifted), axis=axis, keepdims=True))
    if where is not None:
        result = em.where(where, result, -float("inf"))
    return result


def one_hot(labels, num_classes: int, dtype):
    """labels[..., None] == arange(num_classes), as `dtype` (out-of-range labels: all 0)."""
    return (em.expand_dims(labels, -1) == em.arange(num_classes)).astype(dtype)


def log_sigmoid(x):
    """log sigmoid(x) = -softplus(-x), stable for large |x|."""
    return -em.logaddexp(-x, 0.0)
