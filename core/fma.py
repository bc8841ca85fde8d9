"""fma(a, b, c) = a * b + c rounded once: the FMA primitive.

mlx.core has no fma; ember has it because XLA fuses a multiply feeding an add
into one instruction, and results that must equal JAX's bit for bit
(random.uniform's `floats * (high - low) + low`) have to round the same way.
It broadcasts and promotes its three operands like the binary ops.
"""
from ._ffi import lib
from .array import _op, asarray
from .manipulation import broadcast_to
from .primitives import register
from .rules._util import align_batched, unbroadcast


def fma(a, b, c, /, *, stream=None):
    """a * b + c with a single rounding."""
    return _op(lib.EM_P_FMA, [asarray(a), asarray(b), asarray(c)], stream=stream)


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
    return fma(*align_batched(inputs, axes)), 0


register(lib.EM_P_FMA, jvp=_jvp, vjp=_vjp, vmap=_vmap)
