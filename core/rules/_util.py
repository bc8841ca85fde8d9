"""Helpers shared by the rule modules."""
from ..array import _op
from ..creation import zeros
from ..manipulation import expand_dims, moveaxis, reshape
from ..reductions import sum as _sum


def unbroadcast(g, shape):
    """Sums g over the axes that broadcasting added or stretched to reach g's
    shape from `shape` (the cotangent of a broadcast input)."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape)
                                      if s == 1 and g.shape[lead + i] != 1)
    if axes:
        g = _sum(g, axis=axes, keepdims=True)
    return reshape(g, tuple(shape))


def zeros_of(a):
    return zeros(a.shape, a.dtype)


def tangent_or_zeros(t, a):
    return zeros_of(a) if t is None else t


def same_op(node, inputs):
    """The node's primitive with its parameters over new inputs."""
    return _op(node.prim, list(inputs), node.ip, node.fp)


def batch_first(x, axis):
    """x with its batch axis (None: none) moved to the front."""
    return x if axis is None or axis == 0 else moveaxis(x, axis, 0)


def align_batched(inputs, axes):
    """For ops that broadcast their inputs (numpy rules, aligned on the right):
    batched inputs get their batch axis first and singleton axes after it up
    to the largest input rank, so the batch axes line up at the front;
    unbatched inputs stay as they are and broadcast over it."""
    rank = max(x.ndim - (a is not None) for x, a in zip(inputs, axes))
    out = []
    for x, a in zip(inputs, axes):
        if a is None:
            out.append(x)
            continue
        x = batch_first(x, a)
        missing = rank - (x.ndim - 1)
        if missing:
            x = reshape(x, (x.shape[0],) + (1,) * missing + x.shape[1:])
        out.append(x)
    return out


def batch_size(inputs, axes):
    for x, a in zip(inputs, axes):
        if a is not None:
            return x.shape[a]
    raise ValueError("no batched input")


def with_batch(x, axis, size):
    """x with a batch axis of `size` at the front (broadcast if it had none)."""
    from ..manipulation import broadcast_to
    if axis is None:
        return broadcast_to(expand_dims(x, 0), (size,) + x.shape)
    return batch_first(x, axis)
