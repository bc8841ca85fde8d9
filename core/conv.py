"""Convolutions (mlx.core's conv1d/2d/3d, conv_general, conv_transpose1d/2d/3d).

Layouts are channels-last as in mlx: input (N, *spatial, C_in), weight
(C_out, *kernel, C_in / groups), output (N, *out, C_out). Every op here is
the one CONV primitive (native/kernels/conv.c: im2col + BLAS gemm) with its
strides, padding (low and high, per spatial axis), kernel and input
dilation, groups and flip; a transposed convolution is a convolution of the
input dilated by the stride with the kernel flipped. The rules below write
the primitive's derivatives and batching with the same primitive, so grad
and vmap compose to any depth.
"""
import operator

from ._ffi import lib
from .array import _op, asarray
from .manipulation import moveaxis, reshape, transpose
from .primitives import register


def _conv(x, w, strides, lo, hi, kdil, idil, groups, flip, stream=None):
    n = len(strides)
    ip = (n, *strides, *lo, *hi, *kdil, *idil, groups, int(bool(flip)))
    return _op(lib.EM_P_CONV, [x, w], ip, stream=stream)


def _per_axis(value, n, what, op):
    """An int or a sequence of n ints, as a tuple of n ints."""
    try:
        return (operator.index(value),) * n
    except TypeError:
        pass
    try:
        value = tuple(operator.index(v) for v in value)
    except TypeError:
        value = None
    if value is None or len(value) != n:
        raise ValueError(f"[{op}] {what} must be an int or {n} ints")
    return value


def _check_ranks(x, w, n, op):
    if x.ndim != n + 2 or w.ndim != n + 2:
        raise ValueError(f"[{op}] expected input and weight of {n + 2} dimensions "
                         f"(channels last), got shapes {x.shape} and {w.shape}")


def conv_general(input, weight, /, stride=1, padding=0, kernel_dilation=1, input_dilation=1,
                 groups=1, flip=False, *, stream=None):
    """General convolution over input (N, ..., C_in) with weight (C_out, ..., C_in / groups).

    padding is an int, one int per spatial axis (symmetric), or a pair of
    sequences (low, high) of one int each per spatial axis. flip=True flips
    the kernel's spatial axes (a convolution rather than a cross-correlation)."""
    x, w = asarray(input), asarray(weight)
    n = x.ndim - 2
    if n < 1:
        raise ValueError(f"[conv] input must have at least 3 dimensions (N, ..., C_in), "
                         f"got shape {x.shape}")
    _check_ranks(x, w, n, "conv")
    strides = _per_axis(stride, n, "stride", "conv")
    if isinstance(padding, tuple) and len(padding) == 2 and isinstance(padding[0], (list, tuple)):
        lo = _per_axis(padding[0], n, "padding", "conv")
        hi = _per_axis(padding[1], n, "padding", "conv")
    else:
        lo = hi = _per_axis(padding, n, "padding", "conv")
    kdil = _per_axis(kernel_dilation, n, "kernel_dilation", "conv")
    idil = _per_axis(input_dilation, n, "input_dilation", "conv")
    return _conv(x, w, strides, lo, hi, kdil, idil, groups, flip, stream)


def _conv_nd(n, input, weight, stride, padding, dilation, groups, stream, op):
    x, w = asarray(input), asarray(weight)
    _check_ranks(x, w, n, op)
    pad = _per_axis(padding, n, "padding", op)
    return _conv(x, w, _per_axis(stride, n, "stride", op), pad, pad,
                 _per_axis(dilation, n, "dilation", op), (1,) * n, groups, False, stream)


def conv1d(input, weight, /, stride=1, padding=0, dilation=1, groups=1, *, stream=None):
    """1-D convolution: input (N, L, C_in), weight (C_out, K, C_in / groups)."""
    return _conv_nd(1, input, weight, stride, padding, dilation, groups, stream, "conv1d")


def conv2d(input, weight, /, stride=1, padding=0, dilation=1, groups=1, *, stream=None):
    """2-D convolution: input (N, H, W, C_in), weight (C_out, KH, KW, C_in / groups)."""
    return _conv_nd(2, input, weight, stride, padding, dilation, groups, stream, "conv2d")


def conv3d(input, weight, /, stride=1, padding=0, dilation=1, groups=1, *, stream=None):
    """3-D convolution: input (N, D, H, W, C_in), weight (C_out, KD, KH, KW, C_in / groups)."""
    return _conv_nd(3, input, weight, stride, padding, dilation, groups, stream, "conv3d")


def _conv_transpose_nd(n, input, weight, stride, padding, dilation, output_padding, groups,
                       stream, op):
    """The transpose (gradient w.r.t. its input) of a convolution with these
    parameters: the input dilated by the stride, convolved with the flipped
    kernel, padded by dilation * (k - 1) - padding (plus output_padding on the
    high side)."""
    x, w = asarray(input), asarray(weight)
    _check_ranks(x, w, n, op)
    strides = _per_axis(stride, n, "stride", op)
    pad = _per_axis(padding, n, "padding", op)
    dil = _per_axis(dilation, n, "dilation", op)
    out_pad = _per_axis(output_padding, n, "output_padding", op)
    for s, d, p in zip(strides, dil, out_pad):
        if p < 0 or p >= max(s, d):
            raise ValueError(f"[{op}] output_padding ({p}) must be non-negative and smaller "
                             f"than the stride ({s}) or the dilation ({d})")
    span = [d * (k - 1) for d, k in zip(dil, w.shape[1:-1])]
    lo = tuple(e - p for e, p in zip(span, pad))
    hi = tuple(e - p + q for e, p, q in zip(span, pad, out_pad))
    return _conv(x, w, (1,) * n, lo, hi, dil, strides, groups, True, stream)


def conv_transpose1d(input, weight, /, stride=1, padding=0, dilation=1, output_padding=0,
                     groups=1, *, stream=None):
    """1-D transposed convolution: input (N, L, C_in), weight (C_out, K, C_in / groups)."""
    return _conv_transpose_nd(1, input, weight, stride, padding, dilation, output_padding,
                              groups, stream, "conv_transpose1d")


def conv_transpose2d(input, weight, /, stride=1, padding=0, dilation=1, output_padding=0,
                     groups=1, *, stream=None):
    """2-D transposed convolution: input (N, H, W, C_in), weight (C_out, KH, KW, C_in / groups)."""
    return _conv_transpose_nd(2, input, weight, stride, padding, dilation, output_padding,
                              groups, stream, "conv_transpose2d")


def conv_transpose3d(input, weight, /, stride=1, padding=0, dilation=1, output_padding=0,
                     groups=1, *, stream=None):
    """3-D transposed convolution: input (N, D, H, W, C_in), weight (C_out, KD, KH, KW,
    C_in / groups)."""
    return _conv_transpose_nd(3, input, weight, stride, padding, dilation, output_padding,
                              groups, stream, "conv_transpose3d")


# ---- transform rules ----

def _params(node):
    ip = node.ip
    n = ip[0]
    strides, lo, hi, kdil, idil = (tuple(ip[1 + i * n: 1 + (i + 1) * n]) for i in range(5))
    return n, strides, lo, hi, kdil, idil, ip[5 * n + 1], ip[5 * n + 2]


def _same_conv(node, x, w):
    return _op(lib.EM_P_CONV, [x, w], node.ip)


def _conv_jvp(node, tangents):
    x, w = node.inputs
    tx, tw = tangents
    out = None if tx is None else _same_conv(node, tx, w)
    if tw is not None:
        term = _same_conv(node, x, tw)
        out = term if out is None else out + term
    return out


def _input_cotangent(node, g):
    """x's cotangent: g dilated by the stride, convolved (stride: the input
    dilation) with the kernel flipped the other way and its channel axes
    swapped within each group; padding puts every input position under it."""
    n, strides, lo, hi, kdil, idil, groups, flip = _params(node)
    x, w = node.inputs
    c_out, c_in = w.shape[0], x.shape[-1]
    kernel = w.shape[1:-1]
    cg, co = c_in // groups, c_out // groups
    # (G, co, *k, cg) -> (G, cg, *k, co) -> (C_in, *k, co)
    wg = reshape(w, (groups, co) + kernel + (cg,))
    wt = transpose(wg, (0, n + 2) + tuple(range(2, n + 2)) + (1,))
    wt = reshape(wt, (c_in,) + kernel + (co,))
    lo2, hi2 = [], []
    for d in range(n):
        span = kdil[d] * (kernel[d] - 1)
        g_len = (g.shape[d + 1] - 1) * strides[d] + 1
        lo2.append(span - lo[d])
        hi2.append(1 + lo[d] + (x.shape[d + 1] - 1) * idil[d] - g_len)
    return _conv(g, wt, idil, lo2, hi2, kdil, strides, groups, not flip)


def _weight_cotangent(node, g):
    """w's cotangent: a convolution of the input (channels as its batch, the
    batch as its channels) with g as the kernel, dilated by the stride and
    strided by the kernel dilation; groups pair input and g channel blocks."""
    n, strides, lo, hi, kdil, idil, groups, flip = _params(node)
    x, w = node.inputs
    batch, c_in, c_out = x.shape[0], x.shape[-1], w.shape[0]
    kernel = w.shape[1:-1]
    cg, co = c_in // groups, c_out // groups
    sp = x.shape[1:-1]
    # x (N, *sp, G*cg) -> (cg, *sp, G*N)
    xt = reshape(x, (batch,) + sp + (groups, cg))
    xt = transpose(xt, (n + 2,) + tuple(range(1, n + 1)) + (n + 1, 0))
    xt = reshape(xt, (cg,) + sp + (groups * batch,))
    # g (N, *out, C_out) -> (C_out, *out, N)
    gt = moveaxis(moveaxis(g, -1, 0), 1, -1)
    hi2 = []
    for d in range(n):
        in_len = (sp[d] - 1) * idil[d] + 1
        g_span = (g.shape[d + 1] - 1) * strides[d] + 1
        hi2.append(g_span + (kernel[d] - 1) * kdil[d] - in_len - lo[d])
    z = _conv(xt, gt, kdil, lo, hi2, strides, idil, groups, False)  # (cg, *k, C_out)
    if flip:
        z = z[(slice(None),) + (slice(None, None, -1),) * n]
    return transpose(z, (n + 1,) + tuple(range(1, n + 1)) + (0,))   # (C_out, *k, cg)


def _conv_vjp(node, g):
    return [_input_cotangent(node, g), _weight_cotangent(node, g)]


def _conv_vmap(node, inputs, axes):
    """A batched input folds its batch into N; a batched weight folds it into
    the output channels (group by group); both batched: into the groups."""
    n, strides, lo, hi, kdil, idil, groups, flip = _params(node)
    x, w = inputs
    ax, aw = axes
    args = (strides, lo, hi, kdil, idil)
    if aw is None:
        x = moveaxis(x, ax, 0)
        b, batch = x.shape[0], x.shape[1]
        out = _conv(reshape(x, (b * batch,) + x.shape[2:]), w, *args, groups, flip)
        return reshape(out, (b, batch) + out.shape[1:]), 0
    w = moveaxis(w, aw, 0)
    b, c_out = w.shape[0], w.shape[1]
    co = c_out // groups
    rest = w.shape[2:]
    if ax is None:
        # (B, G, co, ...) -> (G, B, co, ...): output channels g*(B*co) + b*co + o
        wg = reshape(w, (b, groups, co) + rest)
        wg = reshape(moveaxis(wg, 0, 1), (groups * b * co,) + rest)
        out = _conv(x, wg, *args, groups, flip)
        out = reshape(out, out.shape[:-1] + (groups, b, co))
        out = reshape(moveaxis(out, -2, 0), (b,) + out.shape[:-3] + (c_out,))
        return out, 0
    x = moveaxis(x, ax, 0)
    batch, c_in = x.shape[1], x.shape[-1]
    # channels b*C_in + c and output channels b*C_out + o: group b*G + g
    xf = reshape(moveaxis(x, 0, -2), (batch,) + x.shape[2:-1] + (b * c_in,))
    out = _conv(xf, reshape(w, (b * c_out,) + rest), *args, groups * b, flip)
    out = reshape(out, out.shape[:-1] + (b, c_out))
    return moveaxis(out, -2, 0), 0


register(lib.EM_P_CONV, jvp=_conv_jvp, vjp=_conv_vjp, vmap=_conv_vmap)
