"""Rules of gathers (take, take_along_axis) and scatter_along_axis.

A gather's transpose is a scatter-add of the cotangent into zeros (repeated
indices accumulate). Indices are integers and get no cotangent.
"""
from .._ffi import lib
from ..array import _op
from ..creation import arange, ones_like, zeros
from ..manipulation import broadcast_to, expand_dims, moveaxis, reshape, where
from ..primitives import register
from ._util import batch_first, batch_size, tangent_or_zeros, unbroadcast, with_batch

P = lib
ADD, SET = P.EM_SCATTER_ADD, P.EM_SCATTER_SET


def _scatter(a, idx, updates, axis, mode):
    return _op(P.EM_P_SCATTER_ALONG_AXIS, [a, idx, updates], (axis, mode))


def _take_along(a, idx, axis):
    return _op(P.EM_P_TAKE_ALONG_AXIS, [a, idx], (axis,))


# ---- take(a, indices, axis): out = a[..., indices, ...] ----

def _take_vjp(node, g):
    a, idx = node.inputs
    axis = node.ip[0]
    n = idx.size
    g = reshape(g, a.shape[:axis] + (n,) + a.shape[axis + 1:])
    shape = [1] * a.ndim
    shape[axis] = n
    flat_idx = reshape(idx, tuple(shape))
    return [_scatter(zeros(a.shape, g.dtype), flat_idx, g, axis, ADD), None]


def _take_vmap(node, inputs, axes):
    (a, idx), (aa, ai) = inputs, axes
    axis = node.ip[0]
    if ai is None:
        return _op(P.EM_P_TAKE, [batch_first(a, aa), idx], (axis + 1,)), 0
    if aa is None:
        # the batched indices' axes land where the indices go in the output
        return _op(P.EM_P_TAKE, [a, idx], (axis,)), axis + ai
    # both batched: gather from the batch-flattened array with offset indices
    a = batch_first(a, aa)
    idx = batch_first(idx, ai)
    b, size = a.shape[0], a.shape[axis + 1]
    a = moveaxis(a, axis + 1, 1)
    rest = a.shape[2:]
    a = reshape(a, (b * size,) + rest)
    idx = where(idx < 0, idx + size, idx)
    offsets = reshape(arange(b, dtype=idx.dtype) * size, (b,) + (1,) * (idx.ndim - 1))
    out = _op(P.EM_P_TAKE, [a, idx + offsets], (0,))
    # out: (b, idx..., rest...) with rest = a's axes before and after `axis`
    k = idx.ndim - 1
    perm = [0] + [1 + k + d for d in range(axis)] + [1 + d for d in range(k)] + \
           [1 + k + d for d in range(axis, len(rest))]
    return _op(P.EM_P_TRANSPOSE, [out], tuple(perm)), 0


register(P.EM_P_TAKE,
         jvp=lambda node, t: _op(P.EM_P_TAKE, [tangent_or_zeros(t[0], node.inputs[0]),
                                              node.inputs[1]], node.ip),
         vjp=_take_vjp, vmap=_take_vmap)


# ---- take_along_axis(a, indices, axis) (a and indices broadcast off the axis) ----

def _take_along_vjp(node, g):
    a, idx = node.inputs
    axis = node.ip[0]
    full = list(g.shape)
    full[axis] = a.shape[axis]
    ga = _scatter(zeros(tuple(full), g.dtype), idx, g, axis, ADD)
    return [unbroadcast(ga, a.shape), None]


def _along_axis_vmap(node, inputs, axes):
    """Batch axis first everywhere (size 1 where unbatched: these ops
    broadcast off the axis), the op's axis shifted by one."""
    xs = [batch_first(x, a) if a is not None else expand_dims(x, 0)
          for x, a in zip(inputs, axes)]
    if node.prim == P.EM_P_SCATTER_ALONG_AXIS:
        n = batch_size(inputs, axes)
        xs[0] = with_batch(inputs[0], axes[0], n)
    return _op(node.prim, xs, (node.ip[0] + 1,) + tuple(node.ip[1:])), 0


register(P.EM_P_TAKE_ALONG_AXIS,
         jvp=lambda node, t: _take_along(tangent_or_zeros(t[0], node.inputs[0]),
                                         node.inputs[1], node.ip[0]),
         vjp=_take_along_vjp, vmap=_along_axis_vmap)


# ---- scatter_along_axis(a, indices, updates, axis, mode) ----

def _update_factor(node):
    """For MULTIPLY/DIVIDE: the factor each element of `a` was scaled by."""
    a, idx, u = node.inputs
    return _scatter(ones_like(a), idx, u, node.ip[0], node.ip[1])


def _scatter_vjp(node, g):
    a, idx, u = node.inputs
    axis, mode = node.ip
    y = node.out
    if mode == SET:
        ga = _scatter(g, idx, zeros(u.shape, g.dtype), axis, SET)
        gu = _take_along(g, idx, axis)
    elif mode == ADD:
        ga, gu = g, _take_along(g, idx, axis)
    elif mode in (P.EM_SCATTER_MULTIPLY, P.EM_SCATTER_DIVIDE):
        ga = g * _update_factor(node)
        # y_k = a_k * prod(u)^(+-1): d y_k / d u = +-y_k / u
        gu = _take_along(g * y, idx, axis) / u
        if mode == P.EM_SCATTER_DIVIDE:
            gu = -gu
    else:  # MAXIMUM / MINIMUM: the gradient goes to whichever value won
        ga = g * (y == a).astype(g.dtype)
        gu = _take_along(g, idx, axis) * (u == _take_along(y, idx, axis)).astype(g.dtype)
    return [ga, None, unbroadcast(broadcast_to(gu, _broadcast_shape(gu, u)), u.shape)]


def _broadcast_shape(a, b):
    from ..manipulation import broadcast_shapes
    return broadcast_shapes(a.shape, b.shape)


def _scatter_jvp(node, tangents):
    a, idx, u = node.inputs
    axis, mode = node.ip
    y = node.out
    ta, _, tu = tangents
    ta = tangent_or_zeros(ta, a)
    tu = tangent_or_zeros(tu, u)
    if mode in (SET, ADD):
        return _scatter(ta, idx, tu, axis, mode)
    if mode in (P.EM_SCATTER_MULTIPLY, P.EM_SCATTER_DIVIDE):
        rel = _scatter(zeros(a.shape, y.dtype), idx, tu / u, axis, ADD)
        if mode == P.EM_SCATTER_DIVIDE:
            rel = -rel
        return ta * _update_factor(node) + y * rel
    won_u = (u == _take_along(y, idx, axis)).astype(y.dtype)
    from_updates = _scatter(zeros(a.shape, y.dtype), idx, tu * won_u, axis, ADD)
    return where(y == a, ta, 0.0) + from_updates


register(P.EM_P_SCATTER_ALONG_AXIS, jvp=_scatter_jvp, vjp=_scatter_vjp, vmap=_along_axis_vmap)
