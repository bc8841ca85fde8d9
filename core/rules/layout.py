"""Rules of the layout primitives: copies, dtype casts, reshapes, transposes,
broadcasts, slices, strided views, concatenation and slice updates.

All of them are linear in their array inputs, so each jvp applies the same
primitive to the tangents and each vjp is the transpose: a slice's transpose
writes the cotangent into zeros, a broadcast's sums it back, and so on.
"""
from .. import dtypes as _dt
from .._ffi import lib
from ..array import _op
from ..creation import arange, zeros
from ..manipulation import broadcast_to, reshape
from ..primitives import register
from ._util import batch_first, batch_size, same_op, tangent_or_zeros, unbroadcast, with_batch

P = lib


def _linear_jvp(node, tangents):
    return same_op(node, [tangent_or_zeros(t, x) for t, x in zip(tangents, node.inputs)])


def _vmap_elementwise(node, inputs, axes):
    return same_op(node, inputs), axes[0]


def _identity_vjp(node, g):
    return [g]


register(P.EM_P_COPY, jvp=_linear_jvp, vjp=_identity_vjp, vmap=_vmap_elementwise)
register(P.EM_P_IDENTITY, jvp=_linear_jvp, vjp=_identity_vjp, vmap=_vmap_elementwise)
register(P.EM_P_STOP_GRADIENT, jvp=lambda node, t: None, vjp=lambda node, g: [None],
         vmap=_vmap_elementwise)


def _astype_jvp(node, tangents):
    if not _dt.issubdtype(node.out.dtype, _dt.inexact):
        return None
    return same_op(node, tangents)


def _astype_vjp(node, g):
    x = node.inputs[0]
    if not _dt.issubdtype(x.dtype, _dt.inexact):
        return [None]
    if x.dtype != _dt.complex64 and g.dtype == _dt.complex64:
        from ..elementwise import real
        g = real(g)
    return [g.astype(x.dtype)]


register(P.EM_P_ASTYPE, jvp=_astype_jvp, vjp=_astype_vjp, vmap=_vmap_elementwise)


# ---- reshape, transpose, broadcast ----

def _reshape_vmap(node, inputs, axes):
    x = batch_first(inputs[0], axes[0])
    return reshape(x, (x.shape[0],) + node.out.shape), 0


register(P.EM_P_RESHAPE, jvp=_linear_jvp,
         vjp=lambda node, g: [reshape(g, node.inputs[0].shape)], vmap=_reshape_vmap)


def _inverse_permutation(perm):
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def _transpose_vmap(node, inputs, axes):
    x = batch_first(inputs[0], axes[0])
    return _op(P.EM_P_TRANSPOSE, [x], (0,) + tuple(p + 1 for p in node.ip)), 0


register(P.EM_P_TRANSPOSE, jvp=_linear_jvp,
         vjp=lambda node, g: [_op(P.EM_P_TRANSPOSE, [g], _inverse_permutation(node.ip))],
         vmap=_transpose_vmap)


def _broadcast_vmap(node, inputs, axes):
    x = batch_first(inputs[0], axes[0])
    target = node.out.shape
    missing = len(target) - (x.ndim - 1)
    x = reshape(x, (x.shape[0],) + (1,) * missing + x.shape[1:])
    return broadcast_to(x, (x.shape[0],) + target), 0


register(P.EM_P_BROADCAST, jvp=_linear_jvp,
         vjp=lambda node, g: [unbroadcast(g, node.inputs[0].shape)], vmap=_broadcast_vmap)


# ---- slices and strided views ----

def _slice_vjp(node, g):
    x = node.inputs[0]
    return [_op(P.EM_P_SLICE_UPDATE, [zeros(x.shape, g.dtype), g], node.ip)]


def _slice_vmap(node, inputs, axes):
    x = batch_first(inputs[0], axes[0])
    return _op(P.EM_P_SLICE, [x], (0, x.shape[0], 1) + node.ip), 0


register(P.EM_P_SLICE, jvp=_linear_jvp, vjp=_slice_vjp, vmap=_slice_vmap)


def _strided_positions(ip):
    """The flat input positions an AS_STRIDED view reads, in the view's shape."""
    nd = ip[0]
    shape, strides, offset = ip[1:1 + nd], ip[1 + nd:1 + 2 * nd], ip[1 + 2 * nd]
    pos = arange(offset, offset + 1, dtype=_dt.int64).reshape(())
    for d in range(nd):
        axis = arange(shape[d], dtype=_dt.int64) * strides[d]
        pos = pos.reshape(pos.shape + (1,)) + axis
    return pos


def _as_strided_vjp(node, g):
    x = node.inputs[0]
    flat = zeros((x.size,), g.dtype)
    pos = reshape(_strided_positions(node.ip), (-1,))
    out = _op(P.EM_P_SCATTER_ALONG_AXIS, [flat, pos, reshape(g, (-1,))],
              (0, P.EM_SCATTER_ADD))
    return [reshape(out, x.shape)]


def _as_strided_vmap(node, inputs, axes):
    x = batch_first(inputs[0], axes[0])
    n = x.shape[0]
    per = x[0].size if x.ndim else 1
    x = reshape(x, (n, per))  # row-major copy, so each batch entry is one block
    nd = node.ip[0]
    shape, strides = node.ip[1:1 + nd], node.ip[1 + nd:1 + 2 * nd]
    ip = (nd + 1, n, *shape, per, *strides, node.ip[1 + 2 * nd])
    return _op(P.EM_P_AS_STRIDED, [x], ip), 0


register(P.EM_P_AS_STRIDED, jvp=_linear_jvp, vjp=_as_strided_vjp, vmap=_as_strided_vmap)


# ---- concatenate and slice_update ----

def _concatenate_vjp(node, g):
    axis = node.ip[0]
    grads, start = [], 0
    for x in node.inputs:
        stop = start + x.shape[axis]
        ip = []
        for d, s in enumerate(g.shape):
            ip += [start, stop, 1] if d == axis else [0, s, 1]
        grads.append(_op(P.EM_P_SLICE, [g], tuple(ip)))
        start = stop
    return grads


def _concatenate_vmap(node, inputs, axes):
    n = batch_size(inputs, axes)
    xs = [with_batch(x, a, n) for x, a in zip(inputs, axes)]
    return _op(P.EM_P_CONCATENATE, xs, (node.ip[0] + 1,)), 0


register(P.EM_P_CONCATENATE, jvp=_linear_jvp, vjp=_concatenate_vjp, vmap=_concatenate_vmap)


def _slice_update_vjp(node, g):
    a, u = node.inputs
    ga = _op(P.EM_P_SLICE_UPDATE, [g, zeros((), g.dtype)], node.ip)
    gu = unbroadcast(_op(P.EM_P_SLICE, [g], node.ip), u.shape)
    return [ga, gu]


def _slice_update_vmap(node, inputs, axes):
    a, u = inputs
    n = batch_size(inputs, axes)
    a = with_batch(a, axes[0], n)
    if axes[1] is not None:
        u = batch_first(u, axes[1])
        # the update broadcasts against the slice from the right: line its
        # batch axis up with the array's
        missing = (a.ndim - 1) - (u.ndim - 1)
        u = reshape(u, (n,) + (1,) * missing + u.shape[1:])
    return _op(P.EM_P_SLICE_UPDATE, [a, u], (0, n, 1) + node.ip), 0


register(P.EM_P_SLICE_UPDATE, jvp=_linear_jvp, vjp=_slice_update_vjp, vmap=_slice_update_vmap)


# ---- sources: no inputs, so no rules ever run; registered for completeness ----

def _no_inputs(node, *args):
    raise RuntimeError(f"[{node.name}] has no inputs to transform")


for _prim in (P.EM_P_ARANGE, P.EM_P_PLACEHOLDER):
    register(_prim, jvp=_no_inputs, vjp=_no_inputs, vmap=_no_inputs)
