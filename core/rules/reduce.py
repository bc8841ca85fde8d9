"""Rules of reductions (axes kept as size 1), arg-reductions and scans.

Reductions' outputs keep the reduced axes, so a cotangent broadcasts straight
back over the input. prod's derivative uses the product of the *other*
elements (exclusive cumulative products from both sides), which stays exact
when an element is zero. max and min share the gradient among tied maxima.
Scans are handled in a normalized frame: a reversed scan is a forward scan of
the flipped input, and an exclusive scan is an inclusive one shifted by one.
"""
from .. import dtypes as _dt
from .. import elementwise as ew
from .._ffi import lib
from ..array import _op
from ..creation import arange, zeros
from ..manipulation import broadcast_to, reshape, where
from ..primitives import register, zero_cotangents, zero_tangent
from ._util import batch_first

P = lib


def _sum_kept(x, axes):
    return _op(P.EM_P_SUM, [x], axes)


def _vmap_axes(node, inputs, axes):
    x = batch_first(inputs[0], axes[0])
    return _op(node.prim, [x], tuple(a + 1 for a in node.ip)), 0


register(P.EM_P_SUM, jvp=lambda node, t: _sum_kept(t[0], node.ip),
         vjp=lambda node, g: [broadcast_to(g, node.inputs[0].shape)], vmap=_vmap_axes)


def _product_of_others(x, axes):
    """For each element, the product of the other elements reduced with it."""
    keep = [d for d in range(x.ndim) if d not in axes]
    perm = keep + list(axes)
    xt = _op(P.EM_P_TRANSPOSE, [x], tuple(perm))
    moved_shape = xt.shape
    n = 1
    for a in axes:
        n *= x.shape[a]
    flat = reshape(xt, moved_shape[:len(keep)] + (n,))
    axis = flat.ndim - 1
    left = _op(P.EM_P_CUMPROD, [flat], (axis, 0, 0))
    right = _op(P.EM_P_CUMPROD, [flat], (axis, 1, 0))
    others = reshape(left * right, moved_shape)
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return _op(P.EM_P_TRANSPOSE, [others], tuple(inverse))


register(P.EM_P_PROD,
         jvp=lambda node, t: _sum_kept(t[0] * _product_of_others(node.inputs[0], node.ip),
                                       node.ip),
         vjp=lambda node, g: [g * _product_of_others(node.inputs[0], node.ip)],
         vmap=_vmap_axes)


def _extremum_weights(node):
    x, y = node.inputs[0], node.out
    mask = (x == y).astype(y.dtype)
    return mask / _sum_kept(mask, node.ip)


for _prim in (P.EM_P_MAX, P.EM_P_MIN):
    register(_prim, jvp=lambda node, t: _sum_kept(t[0] * _extremum_weights(node), node.ip),
             vjp=lambda node, g: [g * _extremum_weights(node)], vmap=_vmap_axes)

for _prim in (P.EM_P_ALL, P.EM_P_ANY):
    register(_prim, jvp=zero_tangent, vjp=zero_cotangents, vmap=_vmap_axes)


def _argreduce_vmap(node, inputs, axes):
    x = batch_first(inputs[0], axes[0])
    return _op(node.prim, [x], (node.ip[0] + 1,)), 0


for _prim in (P.EM_P_ARGMAX, P.EM_P_ARGMIN):
    register(_prim, jvp=zero_tangent, vjp=zero_cotangents, vmap=_argreduce_vmap)


# ---- scans ----

def _flip(x, axis):
    n = x.shape[axis]
    ip = []
    for d, s in enumerate(x.shape):
        ip += [n - 1, -1, -1] if d == axis else [0, s, 1]
    return _op(P.EM_P_SLICE, [x], tuple(ip))


def _shift(x, axis, toward_end):
    """x moved one step along axis (toward the end or the start), zero-filled."""
    n = x.shape[axis]
    if n == 0:
        return x
    keep, pad_shape = [], list(x.shape)
    for d, s in enumerate(x.shape):
        keep += ([0, n - 1, 1] if toward_end else [1, n, 1]) if d == axis else [0, s, 1]
    pad_shape[axis] = 1
    body = _op(P.EM_P_SLICE, [x], tuple(keep))
    pad = zeros(tuple(pad_shape), x.dtype)
    parts = [pad, body] if toward_end else [body, pad]
    return _op(P.EM_P_CONCATENATE, parts, (axis,))


class _Frame:
    """A scan node seen as a forward, inclusive scan: `to_frame` maps arrays in
    the node's orientation into it, `from_frame` maps them back."""

    def __init__(self, node):
        self.axis, self.reverse, self.inclusive = node.ip
        self.prim = node.prim

    def to_frame(self, x):
        return _flip(x, self.axis) if self.reverse else x

    def from_frame(self, x):
        return _flip(x, self.axis) if self.reverse else x

    def inclusive_scan(self, x):
        """The forward inclusive scan of x (already in the frame)."""
        return _op(self.prim, [x], (self.axis, 0, 1))

    def cotangent_to_inclusive(self, g):
        """g (in the frame) of the node's output -> cotangent of the inclusive scan."""
        return g if self.inclusive else _shift(g, self.axis, toward_end=False)

    def tangent_from_inclusive(self, t):
        return t if self.inclusive else _shift(t, self.axis, toward_end=True)


def _running_arg(x, y, axis):
    """For a forward inclusive cummax/cummin y of x: the position along axis of
    the element each output came from (the latest position holding it)."""
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    idx = reshape(arange(x.shape[axis], dtype=_dt.int32), tuple(shape))
    candidates = where(x == y, idx, -1)
    return _op(P.EM_P_CUMMAX, [candidates], (axis, 0, 1))


def _cumprod_parts(x, ip):
    """What cumprod's derivatives need to stay exact where x has zeros.

    The derivative of y_i = prod_{k in S_i} x_k by x_j is the product over
    S_i without j. Dividing y_i by x_j gives it only when no x is zero; with
    zeros set to one (y1 = that cumprod) the product without j is y1_i / x_j
    if S_i holds no zero, y1_i if x_j is S_i's only zero, and 0 otherwise. So
    the rules need y1, where x is zero, and the running count of zeros."""
    zero = x == 0
    y1 = _op(P.EM_P_CUMPROD, [where(zero, 1.0, x)], ip)
    count = _op(P.EM_P_CUMSUM, [zero.astype(_dt.int32)], ip)
    return y1, zero, count


def _scan_vjp(node, g):
    f = _Frame(node)
    x = f.to_frame(node.inputs[0])
    gi = f.cotangent_to_inclusive(f.to_frame(g))
    axis = f.axis
    if node.prim == P.EM_P_CUMSUM:
        gx = _op(P.EM_P_CUMSUM, [gi], (axis, 1, 1))
    elif node.prim == P.EM_P_CUMPROD:
        # d y_i / d x_j = (product of the x_k, k <= i, k != j): see _cumprod_parts
        y1, zero, count = _cumprod_parts(x, (axis, 0, 1))
        no_zero = _op(P.EM_P_CUMSUM, [where(count == 0, gi * y1, 0.0)], (axis, 1, 1))
        one_zero = _op(P.EM_P_CUMSUM, [where(count == 1, gi * y1, 0.0)], (axis, 1, 1))
        gx = where(zero, one_zero, no_zero / where(zero, 1.0, x))
    elif node.prim in (P.EM_P_CUMMAX, P.EM_P_CUMMIN):
        y = f.inclusive_scan(x)
        r = _running_arg(x, y, axis)
        gx = _op(P.EM_P_SCATTER_ALONG_AXIS, [zeros(x.shape, gi.dtype), r, gi],
                 (axis, P.EM_SCATTER_ADD))
    else:  # LOGCUMSUMEXP: dx_j = sum_{i>=j} g_i exp(x_j - y_i), split by sign of g
        y = f.inclusive_scan(x)
        pos = _op(P.EM_P_LOGCUMSUMEXP, [ew.log(ew.maximum(gi, 0.0)) - y], (axis, 1, 1))
        neg = _op(P.EM_P_LOGCUMSUMEXP, [ew.log(ew.maximum(-gi, 0.0)) - y], (axis, 1, 1))
        gx = ew.exp(x + pos) - ew.exp(x + neg)
    return [f.from_frame(gx)]


def _scan_jvp(node, tangents):
    t = tangents[0]
    if node.prim == P.EM_P_CUMSUM:
        return _op(P.EM_P_CUMSUM, [t], node.ip)
    x, y = node.inputs[0], node.out
    if node.prim == P.EM_P_CUMPROD:
        y1, zero, count = _cumprod_parts(x, node.ip)
        no_zero = _op(P.EM_P_CUMSUM, [t / where(zero, 1.0, x)], node.ip)
        at_zero = _op(P.EM_P_CUMSUM, [where(zero, t, 0.0)], node.ip)
        return y1 * where(count == 0, no_zero, where(count == 1, at_zero, 0.0))
    if node.prim == P.EM_P_LOGCUMSUMEXP:
        pos = _op(P.EM_P_LOGCUMSUMEXP, [x + ew.log(ew.maximum(t, 0.0))], node.ip)
        neg = _op(P.EM_P_LOGCUMSUMEXP, [x + ew.log(ew.maximum(-t, 0.0))], node.ip)
        out = ew.exp(pos - y) - ew.exp(neg - y)
        return where(ew.isinf(y), 0.0, out)
    f = _Frame(node)
    xf = f.to_frame(x)
    r = _running_arg(xf, f.inclusive_scan(xf), f.axis)
    picked = _op(P.EM_P_TAKE_ALONG_AXIS, [f.to_frame(t), r], (f.axis,))
    return f.from_frame(f.tangent_from_inclusive(picked))


def _scan_vmap(node, inputs, axes):
    x = batch_first(inputs[0], axes[0])
    return _op(node.prim, [x], (node.ip[0] + 1,) + tuple(node.ip[1:])), 0


for _prim in (P.EM_P_CUMSUM, P.EM_P_CUMPROD, P.EM_P_CUMMAX, P.EM_P_CUMMIN,
              P.EM_P_LOGCUMSUMEXP):
    register(_prim, jvp=_scan_jvp, vjp=_scan_vjp, vmap=_scan_vmap)
