"""ember.core.fast: fused kernels with mlx.core.fast's API.

Four primitives run one C kernel each (native/kernels/fast.c): rms_norm and
layer_norm normalise the last axis in one pass over each row, rope rotates
feature pairs by position-dependent angles, and scaled_dot_product_attention
computes softmax(q k^T * scale + mask) v per head and block of queries
without storing a head's whole score matrix. float16 and bfloat16 compute in
float32; integer inputs give float32. Two more, softmax_last and
logsumexp_last, are core's softmax and logsumexp over one axis in one pass
(core/reductions.py calls them).

Their transform rules are written with ember ops below. The normalisations'
derivatives are the standard ones; rope is a rotation, so its vjp in x is rope
with the angles negated, and its derivative in the frequencies turns each pair
by a further quarter turn scaled by the position; attention's rules recompute
the softmax weights from q, k, the mask and the sinks (as flash-attention
backward passes do) and express the rest as matmuls. vmap folds the mapped
axis into the kernels' leading (batch) axis (attention with sinks per batch
entry folds it into the heads).
"""
import math
import operator

from . import dtypes as _dt
from . import elementwise as _ew
from . import manipulation as _mp
from . import reductions as _rd
from ._ffi import lib
from .array import _op, array, asarray
from .creation import arange, ones, zeros, zeros_like
from .primitives import register
from .products import matmul
from .rules._util import batch_first, batch_size, unbroadcast, with_batch


def _float_like(x):
    """The dtype a fast op returns for x: x's float dtype, else float32."""
    return x.dtype if _dt.issubdtype(x.dtype, _dt.floating) else _dt.float32


def _last_size(x, name):
    if x.ndim < 1:
        raise ValueError(f"[{name}] expected an array with at least 1 dimension, got shape {x.shape}")
    return x.shape[-1]


# ---- rms_norm and layer_norm ----

def rms_norm(x, weight, eps, *, stream=None):
    """x / sqrt(mean(x**2, axis=-1) + eps) * weight; weight (None: ones) has the
    size of x's last axis."""
    x = asarray(x)
    d = _last_size(x, "rms_norm")
    w = ones((d,), _float_like(x)) if weight is None else asarray(weight)
    return _op(lib.EM_P_RMS_NORM, [x, w], (), (float(eps),), stream=stream)


def layer_norm(x, weight, bias, eps, *, stream=None):
    """(x - mean) / sqrt(var + eps) * weight + bias over x's last axis; weight
    (None: ones) and bias (None: zeros) have the size of that axis."""
    x = asarray(x)
    d = _last_size(x, "layer_norm")
    w = ones((d,), _float_like(x)) if weight is None else asarray(weight)
    b = zeros((d,), _float_like(x)) if bias is None else asarray(bias)
    return _op(lib.EM_P_LAYER_NORM, [x, w, b], (), (float(eps),), stream=stream)


def _mean_last(x):
    return _rd.mean(x, axis=-1, keepdims=True)


def _sum_leading(x, shape):
    """Sums x (..., D) down to a weight's shape (D,)."""
    return unbroadcast(x, shape)


def _rms_inv(x, eps):
    return _ew.rsqrt(_mean_last(x * x) + eps)


def _rms_jvp(node, tangents):
    x, w = node.inputs
    tx, tw = tangents
    r = _rms_inv(x, node.fp[0])
    out = None
    if tx is not None:
        out = w * (tx * r - x * (r * r * r) * _mean_last(x * tx))
    if tw is not None:
        term = x * r * tw
        out = term if out is None else out + term
    return out


def _rms_vjp(node, ct):
    x, w = node.inputs
    r = _rms_inv(x, node.fp[0])
    g = ct * w
    dx = g * r - x * (r * r * r) * _mean_last(g * x)
    return [dx, _sum_leading(ct * x * r, w.shape)]


def _layer_parts(x, eps):
    centred = x - _mean_last(x)
    r = _ew.rsqrt(_mean_last(centred * centred) + eps)
    return centred * r, r


def _layer_jvp(node, tangents):
    x, w, _ = node.inputs
    tx, tw, tb = tangents
    xhat, r = _layer_parts(x, node.fp[0])
    terms = []
    if tx is not None:
        terms.append(w * r * (tx - _mean_last(tx) - xhat * _mean_last(xhat * tx)))
    if tw is not None:
        terms.append(xhat * tw)
    if tb is not None:
        terms.append(_mp.broadcast_to(tb, node.out.shape))
    if not terms:
        return None
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def _layer_vjp(node, ct):
    x, w, b = node.inputs
    xhat, r = _layer_parts(x, node.fp[0])
    g = ct * w
    dx = r * (g - _mean_last(g) - xhat * _mean_last(g * xhat))
    return [dx, _sum_leading(ct * xhat, w.shape), _sum_leading(ct, b.shape)]


def _params_first(params, axes, ndim):
    """Batched weights/biases (n, D) reshaped to broadcast over a batched x of
    rank ndim (batch first); unbatched ones stay (D,)."""
    out = []
    for p, a in zip(params, axes):
        if a is None:
            out.append(p)
        else:
            p = batch_first(p, a)
            out.append(_mp.reshape(p, (p.shape[0],) + (1,) * (ndim - 2) + p.shape[1:]))
    return out


def _norm_vmap(node, inputs, axes):
    n = batch_size(inputs, axes)
    x = with_batch(inputs[0], axes[0], n)
    eps = node.fp[0]
    if all(a is None for a in axes[1:]):
        return _op(node.prim, [x] + list(inputs[1:]), (), (eps,)), 0
    # A weight or bias per batch entry: the kernel takes one, so compose.
    params = _params_first(inputs[1:], axes[1:], x.ndim)
    if node.prim == lib.EM_P_RMS_NORM:
        return x * _rms_inv(x, eps) * params[0], 0
    return _layer_parts(x, eps)[0] * params[0] + params[1], 0


register(lib.EM_P_RMS_NORM, jvp=_rms_jvp, vjp=_rms_vjp, vmap=_norm_vmap)
register(lib.EM_P_LAYER_NORM, jvp=_layer_jvp, vjp=_layer_vjp, vmap=_norm_vmap)


# ---- rope ----

def rope(a, dims, *, traditional, base, scale, offset, freqs=None, stream=None):
    """Rotary positional encoding of a (..., L, D) over its first `dims`
    features. Position p (offset + index along L) turns feature pair i by
    p * scale / base**(2i / dims), or p * scale / freqs[i] when freqs (dims/2
    periods, differentiable) is given instead of base. Pairs are (2i, 2i+1)
    when traditional, else (i, i + dims/2). offset is an integer, or (as in
    mlx) an integer array: a scalar, or one offset per entry of a's first
    (batch) axis."""
    a = asarray(a)
    dims = int(dims)
    if dims <= 0 or dims % 2:
        raise ValueError(f"[rope] dims must be even and positive, got {dims}")
    if (base is None) == (freqs is None):
        raise ValueError("[rope] exactly one of base and freqs must be given")
    offset, offsets = _offsets(offset, a)
    if freqs is None:
        exponents = arange(0, dims // 2, dtype=_dt.float64) * (2.0 / dims)
        inv_freqs = _ew.power(float(base), -exponents)
    else:
        freqs = asarray(freqs)
        if freqs.shape != (dims // 2,):
            raise ValueError(f"[rope] freqs must have shape ({dims // 2},) (dims / 2), "
                             f"got {freqs.shape}")
        inv_freqs = _ew.reciprocal(freqs.astype(_dt.float64))
    out = _op(lib.EM_P_ROPE, [a, inv_freqs], (dims, int(bool(traditional)), offset),
              (float(scale),), stream=stream)
    if offsets is None:
        return out
    # Rotations by angles that add compose: turning by (p + o) * scale * f is
    # the kernel's turn by p * scale * f followed by one by o * scale * f.
    theta = _mp.expand_dims(offsets.astype(_dt.float64), -1) * float(scale) * inv_freqs
    if offsets.ndim == 1:
        theta = _mp.reshape(theta, theta.shape[:1] + (1,) * (a.ndim - 2) + theta.shape[1:])
    return _rotate(out, theta, dims, bool(traditional))


def _offsets(offset, a):
    """(a static integer offset, an array of offsets or None). An ember array
    stays an input of the graph (never read back), as in mlx; integers and
    numpy integer scalars are static."""
    if not isinstance(offset, array):
        try:
            return operator.index(offset), None
        except TypeError:
            if not (hasattr(offset, "shape") and hasattr(offset, "dtype")):
                raise TypeError(f"[rope] offset must be an integer or an integer array, got "
                                f"{type(offset).__name__}") from None
    return 0, _offset_array(asarray(offset), a)


def _offset_array(offset, a):
    if not _dt.issubdtype(offset.dtype, _dt.integer):
        raise TypeError(f"[rope] offset must be an integer array, got {offset.dtype.name}")
    if offset.ndim > 1 or (offset.ndim == 1 and (a.ndim < 3 or offset.shape[0] != a.shape[0])):
        raise ValueError(f"[rope] offset must be a scalar or a vector with one entry per entry "
                         f"of a's first axis (a of shape {a.shape} needs at least 3 dimensions "
                         f"for a vector), got shape {offset.shape}")
    return offset


def _pairs(x, dims, traditional):
    """The two members of each rotated feature pair, (..., L, dims/2) each."""
    if traditional:
        return x[..., 0:dims:2], x[..., 1:dims:2]
    half = dims // 2
    return x[..., :half], x[..., half:dims]


def _unpairs(first, second, rest, dims, traditional):
    """The inverse of _pairs, with the unrotated features `rest` (or None) after."""
    if traditional:
        both = _mp.stack([first, second], axis=-1)
        joined = _mp.reshape(both, both.shape[:-2] + (dims,))
    else:
        joined = _mp.concatenate([first, second], axis=-1)
    return joined if rest is None else _mp.concatenate([joined, rest], axis=-1)


def _rest(x, dims, zero=False):
    if x.shape[-1] == dims:
        return None
    rest = x[..., dims:]
    return zeros_like(rest) if zero else rest


def _compute_dtype(dtype):
    return _dt.float64 if dtype == _dt.float64 else _dt.float32


def _rotate(x, theta, dims, traditional):
    """x's pairs turned by theta (broadcasting against (..., L, dims/2)), in ember ops."""
    dtype = x.dtype
    x = x.astype(_compute_dtype(dtype))
    c, s = _ew.cos(theta).astype(x.dtype), _ew.sin(theta).astype(x.dtype)
    x1, x2 = _pairs(x, dims, traditional)
    out = _unpairs(x1 * c - x2 * s, x1 * s + x2 * c, _rest(x, dims), dims, traditional)
    return out.astype(dtype)


def _positions(node, length):
    """(p + offset) * scale for each position p, as a column (L, 1) in float64."""
    p = arange(length, dtype=_dt.float64) + float(node.ip[2])
    return _mp.expand_dims(p * node.fp[0], -1)


def _rope_again(node, x, scale):
    return _op(lib.EM_P_ROPE, [x, node.inputs[1]], node.ip, (scale,))


# Turning pair (y1, y2) by a further d_theta moves it by d_theta * (-y2, y1);
# the angle of pair i at position p is (p + offset) * scale * inv_freqs[i].

def _rope_jvp(node, tangents):
    tx, tf = tangents
    dims, traditional = node.ip[0], bool(node.ip[1])
    out = None if tx is None else _rope_again(node, tx, node.fp[0])
    if tf is not None:
        y = node.out.astype(_compute_dtype(node.out.dtype))
        y1, y2 = _pairs(y, dims, traditional)
        dtheta = (_positions(node, y.shape[-2]) * tf).astype(y.dtype)
        moved = _unpairs(-y2 * dtheta, y1 * dtheta, _rest(y, dims, zero=True), dims, traditional)
        moved = moved.astype(node.out.dtype)
        out = moved if out is None else out + moved
    return out


def _rope_vjp(node, ct):
    # A rotation's transpose is the rotation by the opposite angles.
    dims, traditional = node.ip[0], bool(node.ip[1])
    y = node.out.astype(_compute_dtype(node.out.dtype))
    g1, g2 = _pairs(ct.astype(y.dtype), dims, traditional)
    y1, y2 = _pairs(y, dims, traditional)
    per_angle = g2 * y1 - g1 * y2
    length = per_angle.shape[-2]
    rows = math.prod(per_angle.shape[:-2])
    per_angle = _mp.reshape(per_angle, (rows, length, dims // 2)).astype(_dt.float64)
    summed = _rd.sum(_rd.sum(per_angle, axis=0) * _positions(node, length), axis=0)
    return [_rope_again(node, ct, -node.fp[0]), summed.astype(node.inputs[1].dtype)]


def _rope_vmap(node, inputs, axes):
    x, inv_freqs = inputs
    if axes[1] is None:
        return _op(lib.EM_P_ROPE, [batch_first(x, axes[0]), inv_freqs], node.ip, node.fp), 0
    # One set of frequencies per batch entry: the kernel takes one, so compose.
    n = x.shape[axes[0]] if axes[0] is not None else inv_freqs.shape[axes[1]]
    x = with_batch(x, axes[0], n).astype(node.out.dtype)
    inv_freqs = batch_first(inv_freqs, axes[1])
    theta = _mp.expand_dims(inv_freqs, -2) * _positions(node, x.shape[-2])
    theta = _mp.reshape(theta, (n,) + (1,) * (x.ndim - 3) + theta.shape[1:])
    return _rotate(x, theta, node.ip[0], bool(node.ip[1])), 0


register(lib.EM_P_ROPE, jvp=_rope_jvp, vjp=_rope_vjp, vmap=_rope_vmap)


# ---- scaled dot-product attention ----

_SDPA = "scaled_dot_product_attention"


def scaled_dot_product_attention(q, k, v, *, scale, mask=None, sinks=None, stream=None):
    """softmax(q @ k^T * scale + mask) @ v for q (B, Hq, Lq, D), k (B, Hkv, Lk,
    D), v (B, Hkv, Lk, Dv); Hq must be a multiple of Hkv (grouped-query
    attention: query head h attends with key/value head h // (Hq / Hkv)).
    mask: None; "causal" (query i sees keys j <= i + Lk - Lq); a bool array
    (True keeps a key); or an array added to the scores. Array masks broadcast
    to (B, Hq, Lq, Lk). A query whose keys are all masked gives 0, as in torch.
    sinks (as in mlx): None, or one logit per query head (Hq,) that joins every
    softmax of that head's scores without a value: weights become
    exp(s_j) / (exp(sink) + sum_j exp(s_j))."""
    q, k, v = asarray(q), asarray(k), asarray(v)
    inputs = [q, k, v]
    causal = 0
    if isinstance(mask, str):
        if mask != "causal":
            raise ValueError(f"[{_SDPA}] the only string mask is 'causal', got {mask!r}")
        causal = 1
    elif mask is not None:
        mask = asarray(mask)
        if q.ndim == 4 and k.ndim == 4:
            target = q.shape[:3] + (k.shape[2],)
            try:
                shape = _mp.broadcast_shapes(mask.shape, target)
            except ValueError:
                shape = None
            if shape != target:
                raise ValueError(f"[{_SDPA}] mask of shape {mask.shape} does not broadcast to "
                                 f"the scores' shape {target}")
            mask = _mp.broadcast_to(mask, target)
        inputs.append(mask)
    if sinks is None:
        return _op(lib.EM_P_SDPA, inputs, (causal,), (float(scale),), stream=stream)
    return _op(lib.EM_P_SDPA, inputs + [asarray(sinks)], (causal, 1), (float(scale),), stream=stream)


def _mT(x):
    return _mp.swapaxes(x, -1, -2)


def _heads(x, groups):
    """Key/value heads repeated for each query head that reads them."""
    return x if groups == 1 else _mp.repeat(x, groups, axis=1)


def _fold_heads(x, groups):
    """The transpose of _heads: sums each group of query heads."""
    if groups == 1:
        return x
    b, h, l, d = x.shape
    return _rd.sum(_mp.reshape(x, (b, h // groups, groups, l, d)), axis=2)


def _has_sinks(node):
    return len(node.ip) > 1 and node.ip[1] != 0


def _mask_of(node):
    """The mask input, or None."""
    return node.inputs[3] if len(node.inputs) - _has_sinks(node) == 4 else None


def _weights(node, q, k):
    """The softmax weights (B, Hq, Lq, Lk), recomputed like the kernel; with
    sinks, each head's sink is one more column at the end (Lk + 1)."""
    s = matmul(q, _mT(k)) * node.fp[0]
    lq, lk = s.shape[-2], s.shape[-1]
    if node.ip[0]:
        keep = _mp.expand_dims(arange(lq) + (lk - lq), 1) >= _mp.expand_dims(arange(lk), 0)
        s = _mp.where(keep, s, -math.inf)
    mask = _mask_of(node)
    if mask is not None:
        s = _mp.where(mask, s, -math.inf) if mask.dtype == _dt.bool_ else s + mask.astype(s.dtype)
    if _has_sinks(node):
        sinks = _mp.reshape(node.inputs[-1].astype(s.dtype), (1, -1, 1, 1))
        s = _mp.concatenate([s, _mp.broadcast_to(sinks, s.shape[:3] + (1,))], axis=-1)
    # A query with every key masked attends to nothing (output 0, like the kernel).
    seen = _ew.isfinite(_rd.max(s, axis=-1, keepdims=True))
    return _mp.where(seen, _rd.softmax(s, axis=-1), 0.0)


def _softmax_jvp(p, ds):
    return p * (ds - _rd.sum(p * ds, axis=-1, keepdims=True))


def _keys_only(node, p):
    """The weights of the keys (the sink's column dropped)."""
    if not _has_sinks(node):
        return p
    return p[..., :p.shape[-1] - 1]


def _with_sink_column(node, ds, sink_part):
    """Score tangents (..., Lk) extended by the sinks' column (zero: sink_part None)."""
    if not _has_sinks(node):
        return ds
    column = _mp.broadcast_to(sink_part if sink_part is not None else zeros((1, 1, 1, 1), ds.dtype),
                              ds.shape[:3] + (1,))
    return _mp.concatenate([ds, column.astype(ds.dtype)], axis=-1)


def _sdpa_jvp(node, tangents):
    q, k, v = node.inputs[:3]
    groups = q.shape[1] // k.shape[1]
    kr, vr = _heads(k, groups), _heads(v, groups)
    p = _weights(node, q, kr)
    tq, tk, tv = tangents[:3]
    mask = _mask_of(node)
    ds = None
    if tq is not None:
        ds = matmul(tq, _mT(kr)) * node.fp[0]
    if tk is not None:
        term = matmul(q, _mT(_heads(tk, groups))) * node.fp[0]
        ds = term if ds is None else ds + term
    if mask is not None and tangents[3] is not None and mask.dtype != _dt.bool_:
        term = tangents[3].astype(p.dtype)
        ds = term if ds is None else ds + term
    ts = tangents[-1] if _has_sinks(node) else None
    if ts is not None:
        ts = _mp.reshape(ts.astype(p.dtype), (1, -1, 1, 1))
        if ds is None:
            ds = zeros(p.shape[:3] + (kr.shape[2],), p.dtype)
    out = None
    if ds is not None:
        moved = _softmax_jvp(p, _with_sink_column(node, ds, ts))
        out = matmul(_keys_only(node, moved), vr)
    if tv is not None:
        term = matmul(_keys_only(node, p), _heads(tv, groups))
        out = term if out is None else out + term
    return out


def _sdpa_vjp(node, ct):
    q, k, v = node.inputs[:3]
    groups = q.shape[1] // k.shape[1]
    kr, vr = _heads(k, groups), _heads(v, groups)
    p = _weights(node, q, kr)
    pk = _keys_only(node, p)
    dv = _fold_heads(matmul(_mT(pk), ct), groups)
    ds_all = _softmax_jvp(p, _with_sink_column(node, matmul(ct, _mT(vr)), None))
    ds = _keys_only(node, ds_all)
    # Masked keys have p == 0, so ds is 0 there.
    dq = matmul(ds, kr) * node.fp[0]
    dk = _fold_heads(matmul(_mT(ds), q) * node.fp[0], groups)
    grads = [dq, dk, dv]
    mask = _mask_of(node)
    if mask is not None:
        grads.append(None if mask.dtype == _dt.bool_ else ds.astype(mask.dtype))
    if _has_sinks(node):
        sink_column = ds_all[..., ds_all.shape[-1] - 1]
        grads.append(_rd.sum(sink_column, axis=(0, 2)).astype(node.inputs[-1].dtype))
    return grads


def _sdpa_vmap(node, inputs, axes):
    n = batch_size(inputs, axes)
    if _has_sinks(node) and axes[-1] is not None:
        return _sdpa_vmap_over_heads(node, inputs, axes, n)
    folded = []
    for i, (x, a) in enumerate(zip(inputs, axes)):
        if _has_sinks(node) and i == len(inputs) - 1:
            folded.append(x)   # unbatched sinks: per head, shared by the folded batch
            continue
        x = with_batch(x, a, n)
        folded.append(_mp.reshape(x, (n * x.shape[1],) + x.shape[2:]))
    out = _op(lib.EM_P_SDPA, folded, node.ip, node.fp)
    return _mp.reshape(out, (n, out.shape[0] // n if n else 0) + out.shape[1:]), 0


def _sdpa_vmap_over_heads(node, inputs, axes, n):
    """Sinks per batch entry: the mapped axis folds into the heads instead (query
    head i * Hq + h then reads key/value head i * Hkv + h // groups, as it should)."""
    folded = []
    for i, (x, a) in enumerate(zip(inputs, axes)):
        x = with_batch(x, a, n)
        if i == len(inputs) - 1:
            folded.append(_mp.reshape(x, (-1,)))
            continue
        x = _mp.swapaxes(x, 0, 1)   # (B, n, H, ...)
        folded.append(_mp.reshape(x, (x.shape[0], n * x.shape[2]) + x.shape[3:]))
    out = _op(lib.EM_P_SDPA, folded, node.ip, node.fp)
    b, _, lq, dv = out.shape
    return _mp.reshape(out, (b, n, out.shape[1] // n if n else 0, lq, dv)), 1


register(lib.EM_P_SDPA, jvp=_sdpa_jvp, vjp=_sdpa_vjp, vmap=_sdpa_vmap)


# ---- one-pass softmax and logsumexp over the last axis ----

def softmax_last(x, *, stream=None):
    """softmax over x's last axis, shifted by the row maximum (by 0 where that
    is infinite, like core's composition); core.softmax calls it."""
    return _op(lib.EM_P_SOFTMAX, [asarray(x)], stream=stream)


def logsumexp_last(x, *, stream=None):
    """log(sum(exp(x))) over x's last axis, kept with size 1; core.logsumexp
    calls it."""
    return _op(lib.EM_P_LOGSUMEXP, [asarray(x)], stream=stream)


def _softmax_rule_jvp(node, tangents):
    t = tangents[0]
    return None if t is None else _softmax_jvp(node.out, t)


def _softmax_rule_vjp(node, ct):
    return [_softmax_jvp(node.out, ct)]


def _logsumexp_rule_jvp(node, tangents):
    t = tangents[0]
    if t is None:
        return None
    return _rd.sum(softmax_last(node.inputs[0]) * t, axis=-1, keepdims=True)


def _logsumexp_rule_vjp(node, ct):
    return [ct * softmax_last(node.inputs[0])]


def _last_axis_vmap(node, inputs, axes):
    return _op(node.prim, [batch_first(inputs[0], axes[0])]), 0


register(lib.EM_P_SOFTMAX, jvp=_softmax_rule_jvp, vjp=_softmax_rule_vjp, vmap=_last_axis_vmap)
register(lib.EM_P_LOGSUMEXP, jvp=_logsumexp_rule_jvp, vjp=_logsumexp_rule_vjp,
         vmap=_last_axis_vmap)
