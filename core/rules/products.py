"""Rules of matmul: (..., m, k) @ (..., k, n) with broadcast batch axes."""
from .._ffi import lib
from ..array import _op
from ..manipulation import swapaxes
from ..primitives import register
from ._util import align_batched, unbroadcast

P = lib


def _matmul(a, b):
    return _op(P.EM_P_MATMUL, [a, b])


def _matmul_jvp(node, tangents):
    a, b = node.inputs
    ta, tb = tangents
    out = None if ta is None else _matmul(ta, b)
    if tb is not None:
        out = _matmul(a, tb) if out is None else out + _matmul(a, tb)
    return out


def _matmul_vjp(node, g):
    a, b = node.inputs
    return [unbroadcast(_matmul(g, swapaxes(b, -1, -2)), a.shape),
            unbroadcast(_matmul(swapaxes(a, -1, -2), g), b.shape)]


def _matmul_vmap(node, inputs, axes):
    return _matmul(*align_batched(inputs, axes)), 0


register(P.EM_P_MATMUL, jvp=_matmul_jvp, vjp=_matmul_vjp, vmap=_matmul_vmap)
