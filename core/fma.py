"""fma(a, b, c) = a * b + c rounded once: the FMA primitive.

mlx.core has no fma; ember has it because XLA fuses a multiply feeding an add
into one instruction, and results that must equal JAX's bit for bit
(random.uniform's `floats * (high - low) + low`) have to round the same way.
It broadcasts and promotes its three operands like the binary ops.
"""
from ._ffi import lib
from .array import _op, asarray
from .manipulation import broadcast_to, expand_dims, moveaxis, reshape
from .primitives import register
from .reductions import sum as _sum


def fma(a, b, c, /, *, stream=None):
    """a * b + c with a single rounding."""
    return _op(lib.EM_P_FMA, [asarray(a), asarray(b), asarray(c)], stream=stream)


def unbroadcast(x, shape):
    """Sums x over the axes that broadcasting added to or stretched in `shape`
    (the cotangent of a broadcast operand)."""
    lead = x.ndim - len(shape)
    axes = list(range(lead)) + [lead + d for d, s in enumerate(shape) if s == 1 and x.shape[lead + d] != 1]
    if axes:
        x = _sum(x, axis=axes, keepdims=True)
    return reshape(x, shape) if x.shape != tuple(shape) else x


def batch_first(inputs, axes):
    """Elementwise operands with their batch axes moved to the front and their
    ranks padded so that they broadcast against each other."""
    ndim = max(x.ndim - (ax is not None) for x, ax in zip(inputs, axes))
    out = []
    for x, ax in zip(inputs, axes):
        if ax is None:
            x = expand_dims(reshape(x, (1,) * (ndim - x.ndim) + x.shape), 0)
        else:
            x = moveaxis(x, ax, 0)
            x = reshape(x, x.shape[:1] + (1,) * (ndim - x.ndim + 1) + x.shape[1:])
        out.append(x)
    return out


def _jvp(node, tangents):
    a, b, _ = node.inputs
    ta, tb, tc = tangents
    terms = [t for t in (None if ta is None else ta * b, None if tb is None else a * tb, tc)
             if t is not None]
    if not terms:
        return None
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return broadcast_to(out, node.out.shape)


def _vjp(node, cotangent):
    a, b, c = node.inputs
    return [unbroadcast(cotangent * b, a.shape), unbroadcast(cotangent * a, b.shape),
            unbroadcast(cotangent, c.shape)]


def _vmap(node, inputs, axes):
    return fma(*batch_first(inputs, axes)), 0


register(lib.EM_P_FMA, jvp=_jvp, vjp=_vjp, vmap=_vmap)
