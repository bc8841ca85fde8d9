"""Quantization with mlx.core's API: quantize, dequantize, quantized_matmul.

Affine mode, mlx's packed layout and rounding, bit for bit: groups of
`group_size` (32, 64, 128) consecutive elements of the last axis share a scale
and a bias in the weight's dtype, and each element becomes a `bits`-bit code
(1, 2, 3, 4, 5, 6 or 8) with w ~ scale * code + bias. Codes are packed
lowest bits first into uint32 words, one little-endian bit stream per row, so
a (N, K) weight packs into (N, K * bits / 32) words and (N, K / group_size)
scales and biases. The layout, the rounding of quantize and the kernels are
described in native/kernels/quantize.c.

Three primitives:
  QUANTIZE          w -> packed codes, scales or biases (one node per output)
  DEQUANTIZE        (w_q, scales, biases) -> scale * code + bias
  QUANTIZED_MATMUL  (x, w_q, scales, biases) -> x @ W.T (transpose) or x @ W,
                    never materialising W for small batches: a batch-1 vector
                    product reads the packed weight once.

Their rules: quantize's scales and biases are differentiated as mlx
differentiates its composition of ops (the rounding held fixed, the group's
extremes passing their tangents on); the packed codes carry nothing.
dequantize is linear in the scales and biases: its jvp is dequantize of the
tangents, its vjp sums the cotangent (times the codes, for the scales) over
each group. The packed weight is integer and gets no cotangent.
quantized_matmul is linear in x (the vjp for x is a quantized_matmul with
transpose flipped, as in mlx) and in the scales and biases (through
dW = ct^T x, or x^T ct, summed per group like dequantize's). vmap moves the
batch axis in front, where the kernels broadcast batch axes.

float64 works in dequantize; quantize and quantized_matmul reject it, as
mlx's CPU build does. Modes mxfp4, mxfp8 and nvfp4 are not built: they raise
a ValueError naming the mode. One deliberate difference: an x of one or two
dimensions against a batched weight broadcasts like matmul ((B, M, N));
mlx 0.32 returns (M, N) from w[0] there.
"""
import operator

from . import dtypes as _dt
from . import elementwise as _ew
from . import reductions as _rd
from ._ffi import lib
from .array import _op, asarray
from .creation import ones, zeros
from .manipulation import expand_dims, reshape, squeeze, swapaxes, where
from .primitives import register
from .products import matmul
from .rules._util import batch_first, batch_size, unbroadcast, with_batch

_MODES = ("affine", "mxfp4", "mxfp8", "nvfp4")


def _params(op, group_size, bits, mode):
    """The (group_size, bits) of an affine call: mlx's defaults are 64 and 4."""
    if mode not in _MODES:
        raise ValueError(f"[{op}] Invalid quantization mode '{mode}'.")
    if mode != "affine":
        raise ValueError(f"[{op}] mode '{mode}' is not supported by ember; only 'affine' is.")
    try:
        group_size = 64 if group_size is None else operator.index(group_size)
        bits = 4 if bits is None else operator.index(bits)
    except TypeError:
        raise TypeError(f"[{op}] group_size and bits must be integers, got "
                        f"{type(group_size).__name__} and {type(bits).__name__}") from None
    return group_size, bits


def quantize(w, /, group_size=None, bits=None, mode="affine", *, global_scale=None, stream=None):
    """Quantizes w (at least 2-D, last axis divisible by group_size) in groups
    of its last axis; returns (w_q, scales, biases): w_q uint32 with the last
    axis K * bits / 32, scales and biases in w's dtype with K / group_size."""
    group_size, bits = _params("quantize", group_size, bits, mode)
    if global_scale is not None:
        raise ValueError("[quantize] Global scale is only supported for 'nvfp4' quantization mode.")
    w = asarray(w)
    return tuple(_op(lib.EM_P_QUANTIZE, [w], (group_size, bits, which), stream=stream)
                 for which in range(3))


def dequantize(w, /, scales, biases=None, group_size=None, bits=None, mode="affine",
               global_scale=None, dtype=None, *, stream=None):
    """scales * codes + biases per group, rounded like mlx (the product in the
    scales' dtype, the sum in the scales' and biases' common dtype); the
    result's dtype is `dtype`, else that common dtype."""
    group_size, bits = _params("dequantize", group_size, bits, mode)
    if global_scale is not None:
        raise ValueError("[dequantize] Global scale is only supported for 'nvfp4' quantization "
                         "mode.")
    if biases is None:
        raise ValueError("[dequantize] Biases must be provided for affine quantization.")
    w, scales, biases = asarray(w), asarray(scales), asarray(biases)
    out = _dt.promote_types(scales.dtype, biases.dtype) if dtype is None else _dt.as_dtype(dtype)
    return _op(lib.EM_P_DEQUANTIZE, [w, scales, biases], (group_size, bits, out.value),
               stream=stream)


def quantized_matmul(x, w, /, scales, biases=None, transpose=True, group_size=None, bits=None,
                     mode="affine", *, stream=None):
    """x @ W.T (transpose, W of shape (N, K)) or x @ W (W (K, N)) for the W that
    (w, scales, biases) quantize; batch axes of x and w broadcast."""
    group_size, bits = _params("quantized_matmul", group_size, bits, mode)
    if biases is None:
        raise ValueError("[quantized_matmul] Biases must be provided for affine quantization.")
    x, w, scales, biases = asarray(x), asarray(w), asarray(scales), asarray(biases)
    return _op(lib.EM_P_QUANTIZED_MATMUL, [x, w, scales, biases],
               (group_size, bits, int(bool(transpose))), stream=stream)


# ---- rules: quantize ----
#
# The scales and biases are differentiated as mlx's own composition of ops
# differentiates them: the rounding q0 = rint(edge / scale) is held fixed and
# the extremes pass their tangents on (split among the elements tied for each). With
# q0 != 0: scale = edge / q0 and bias = edge; with q0 == 0: scale =
# +-max((hi - lo) / n, eps) and bias = 0; one bit: scale = max(hi - lo, eps),
# bias = lo. The packed codes are integers and carry nothing.

def _share(mask):
    """Weights that split an extreme's tangent evenly among the elements tied
    for it (mlx's max and min do)."""
    mask = mask.astype(_dt.float32)
    return mask / _rd.sum(mask, axis=-1, keepdims=True)


class _Groups:
    """Per group of w (float32, as the kernel computes): the extremes, where
    they are, and the branch quantize took."""

    def __init__(self, w, group_size, bits):
        n_groups = w.shape[-1] // group_size
        self.shape = w.shape[:-1] + (n_groups, group_size)
        wg = reshape(w.astype(_dt.float32), self.shape)
        self.hi, self.lo = _rd.max(wg, axis=-1), _rd.min(wg, axis=-1)
        self.at_hi = _share(wg == expand_dims(self.hi, -1))
        self.at_lo = _share(wg == expand_dims(self.lo, -1))
        self.n = float(2 ** bits - 1)
        span = (self.hi - self.lo) / self.n
        self.live = span > 1e-7                 # else the scale is the constant eps
        self.one_bit = bits == 1
        self.low_edge = _ew.abs(self.lo) > _ew.abs(self.hi)
        scale0 = _ew.maximum(span, 1e-7)
        scale0 = where(self.low_edge, scale0, -scale0)
        edge = where(self.low_edge, self.lo, self.hi)
        q0 = _ew.round(edge / scale0)
        self.snapped = q0 != 0
        self.q0 = where(self.snapped, q0, 1.0)


def _quantize_jvp(node, tangents):
    t = tangents[0]
    which = node.ip[2]
    if t is None or which == 0:
        return None
    p = _Groups(node.inputs[0], node.ip[0], node.ip[1])
    tg = reshape(t.astype(_dt.float32), p.shape)
    t_hi, t_lo = _rd.sum(tg * p.at_hi, axis=-1), _rd.sum(tg * p.at_lo, axis=-1)
    t_span = where(p.live, (t_hi - t_lo) / p.n, 0.0)
    if p.one_bit:
        out = t_span if which == 1 else t_lo
    else:
        t_edge = where(p.low_edge, t_lo, t_hi)
        if which == 1:
            out = where(p.snapped, t_edge / p.q0, where(p.low_edge, t_span, -t_span))
        else:
            out = where(p.snapped, t_edge, 0.0)
    return out.astype(node.out.dtype)


def _quantize_vjp(node, cotangent):
    which = node.ip[2]
    if which == 0:
        return [None]
    w = node.inputs[0]
    p = _Groups(w, node.ip[0], node.ip[1])
    ct = cotangent.astype(_dt.float32)
    zero = zeros(ct.shape, _dt.float32)
    if p.one_bit:                       # scale = hi - lo, bias = lo
        ct_span = ct if which == 1 else zero
        ct_edge_lo, ct_edge_hi = (zero if which == 1 else ct), zero
    else:
        if which == 1:
            ct_edge = where(p.snapped, ct / p.q0, 0.0)
            unsnapped = where(p.snapped, 0.0, ct)
            ct_span = where(p.low_edge, unsnapped, -unsnapped)
        else:
            ct_edge = where(p.snapped, ct, 0.0)
            ct_span = zero
        ct_edge_lo = where(p.low_edge, ct_edge, 0.0)
        ct_edge_hi = where(p.low_edge, 0.0, ct_edge)
    ct_span = where(p.live, ct_span / p.n, 0.0)
    ct_hi, ct_lo = ct_edge_hi + ct_span, ct_edge_lo - ct_span
    grads = p.at_hi * expand_dims(ct_hi, -1) + p.at_lo * expand_dims(ct_lo, -1)
    return [reshape(grads, w.shape).astype(w.dtype)]


def _quantize_vmap(node, inputs, axes):
    return _op(node.prim, [batch_first(inputs[0], axes[0])], node.ip), 0


register(lib.EM_P_QUANTIZE, jvp=_quantize_jvp, vjp=_quantize_vjp, vmap=_quantize_vmap)


# ---- rules: dequantize ----

def _codes(w, scales, group_size, bits):
    """The codes of w as float32 (exact integers), shaped like the dequantized w."""
    return dequantize(w, ones(scales.shape, _dt.float32), zeros(scales.shape, _dt.float32),
                      group_size, bits)


def _group_cotangents(dw, w, scales, biases, group_size, bits):
    """Cotangents of scales and biases from the cotangent dw of the
    dequantized weight: per group, sum(dw * codes) and sum(dw)."""
    groups = dw.shape[:-1] + (dw.shape[-1] // group_size, group_size)
    codes = _codes(w, scales, group_size, bits).astype(dw.dtype)
    ds = _rd.sum(reshape(dw * codes, groups), axis=-1)
    db = _rd.sum(reshape(dw, groups), axis=-1)
    return ds.astype(scales.dtype), db.astype(biases.dtype)


def _dequantize_jvp(node, tangents):
    w, s, b = node.inputs
    ts, tb = tangents[1], tangents[2]
    if ts is None and tb is None:
        return None
    ts = zeros(s.shape, s.dtype) if ts is None else ts
    tb = zeros(b.shape, b.dtype) if tb is None else tb
    return _op(node.prim, [w, ts, tb], node.ip)


def _dequantize_vjp(node, cotangent):
    w, s, b = node.inputs
    ds, db = _group_cotangents(cotangent, w, s, b, node.ip[0], node.ip[1])
    return [None, ds, db]


def _dequantize_vmap(node, inputs, axes):
    n = batch_size(inputs, axes)
    parts = [with_batch(x, a, n) for x, a in zip(inputs, axes)]
    return _op(node.prim, parts, node.ip), 0


register(lib.EM_P_DEQUANTIZE, jvp=_dequantize_jvp, vjp=_dequantize_vjp, vmap=_dequantize_vmap)


# ---- rules: quantized_matmul ----

def _qmm(x, w, s, b, ip, transpose):
    return _op(lib.EM_P_QUANTIZED_MATMUL, [x, w, s, b], (ip[0], ip[1], int(transpose)))


def _qmm_jvp(node, tangents):
    x, w, s, b = node.inputs
    tx, _, ts, tb = tangents
    g, bits, transpose = node.ip
    terms = []
    if tx is not None:
        terms.append(_qmm(tx, w, s, b, node.ip, transpose))
    if ts is not None or tb is not None:
        ts = zeros(s.shape, s.dtype) if ts is None else ts
        tb = zeros(b.shape, b.dtype) if tb is None else tb
        dw = dequantize(w, ts, tb, g, bits)
        terms.append(matmul(x, swapaxes(dw, -1, -2) if transpose else dw).astype(node.out.dtype))
    if not terms:
        return None
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def _qmm_vjp(node, ct):
    x, w, s, b = node.inputs
    g, bits, transpose = node.ip
    one_d = x.ndim == 1
    ct2 = expand_dims(ct, -2) if one_d else ct                 # (..., M, N)
    x2 = expand_dims(x, 0) if one_d else x                     # (..., M, K)
    dx = _qmm(ct2, w, s, b, node.ip, not transpose)            # (..., M, K)
    dx = unbroadcast(squeeze(dx, -2) if one_d else dx, x.shape)
    # dW over the broadcast batch, then summed to w's batch shape
    ctf, xf = ct2.astype(_dt.float32), x2.astype(_dt.float32)
    dw = matmul(swapaxes(ctf, -1, -2), xf) if transpose else matmul(swapaxes(xf, -1, -2), ctf)
    dw = unbroadcast(dw, w.shape[:-1] + (s.shape[-1] * g,))
    ds, db = _group_cotangents(dw, w, s, b, g, bits)
    return [dx.astype(x.dtype), None, ds, db]


def _qmm_vmap(node, inputs, axes):
    """The batch axis goes first on x and on the weight (broadcast among w,
    scales and biases); singleton axes line the remaining batch axes up."""
    x, w, s, b = inputs
    ax, weight_axes = axes[0], axes[1:]
    n = batch_size(inputs, axes)
    x_batched, w_batched = ax is not None, any(a is not None for a in weight_axes)
    if x_batched:
        x = batch_first(x, ax)
    one_d = x.ndim - x_batched == 1
    if one_d:
        x = expand_dims(x, -2)
    if w_batched:
        w, s, b = (with_batch(t, a, n) for t, a in zip((w, s, b), weight_axes))
    x_rank, w_rank = x.ndim - 2 - x_batched, w.ndim - 2 - w_batched
    rank = max(x_rank, w_rank)
    lead = (n,) if x_batched else (1,)
    x = reshape(x, lead + (1,) * (rank - x_rank) + x.shape[x_batched:])
    if w_batched:
        pad = (1,) * (rank - w_rank)
        w, s, b = (reshape(t, (n,) + pad + t.shape[1:]) for t in (w, s, b))
    out = _op(node.prim, [x, w, s, b], node.ip)
    return (squeeze(out, -2) if one_d else out), 0


register(lib.EM_P_QUANTIZED_MATMUL, jvp=_qmm_jvp, vjp=_qmm_vjp, vmap=_qmm_vmap)
