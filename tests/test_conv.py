"""Convolutions against torch.nn.functional (channels-first there: the tests
transpose), their gradients against torch's autograd, vmap against a loop,
and the error messages."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ember.core as em
from ember.core._ffi import lib

TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
EM_CONV = {1: em.conv1d, 2: em.conv2d, 3: em.conv3d}
EM_CONV_T = {1: em.conv_transpose1d, 2: em.conv_transpose2d, 3: em.conv_transpose3d}
TOL = {np.float32: 2e-5, np.float64: 1e-12}


def _first(a):
    """Channels-last (N, *sp, C) -> channels-first torch tensor (N, C, *sp)."""
    n = a.ndim - 2
    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, n + 1, *range(1, n + 1))


def _last(t):
    n = t.ndim - 2
    return t.permute(0, *range(2, n + 2), 1).detach().numpy()


def _close(got, want, dtype):
    scale = max(1.0, float(np.abs(want).max()) if want.size else 1.0)
    np.testing.assert_allclose(np.array(got), want, rtol=TOL[dtype], atol=TOL[dtype] * scale)


# (n, batch, spatial, c_in, c_out, kernel, stride, padding, dilation, groups)
CONFIGS = [
    (1, 2, (9,), 3, 4, (3,), 1, 0, 1, 1),
    (1, 3, (11,), 4, 6, (4,), 2, 1, 2, 2),
    (1, 1, (5,), 2, 3, (1,), 1, 0, 1, 1),
    (2, 2, (7, 8), 6, 4, (3, 2), (2, 1), (1, 2), (1, 2), 2),
    (2, 1, (5, 5), 3, 5, (3, 3), 1, 1, 1, 1),
    (2, 2, (9, 6), 4, 4, (2, 3), (3, 2), (0, 1), (2, 1), 4),
    (2, 2, (6, 6), 8, 2, (1, 1), 1, 0, 1, 2),
    (2, 3, (13, 5), 5, 7, (5, 1), 1, (2, 0), 1, 1),
    (3, 2, (5, 6, 4), 4, 6, (3, 2, 2), (1, 2, 1), (1, 0, 1), (1, 1, 2), 2),
    (3, 1, (4, 4, 4), 3, 2, (2, 2, 2), 2, 1, 1, 1),
    # pointwise and big enough that its one gemm per group is split over the pool
    (2, 4, (24, 24), 64, 96, (1, 1), 1, 0, 1, 2),
    # 16 or more channels per group: float32 reads the input in place (runs)
    (2, 2, (9, 7), 32, 20, (3, 3), 1, 1, 1, 1),
    (2, 2, (8, 8), 48, 48, (3, 2), (2, 1), (1, 0), (1, 2), 3),
    (1, 2, (20,), 17, 33, (5,), 1, 2, 1, 1),
    (3, 1, (5, 4, 6), 16, 8, (3, 3, 2), 1, 1, 1, 1),
    (2, 2, (20, 20), 32, 40, (3, 3), 1, 1, 1, 1),     # rows past one block, ragged columns
    (2, 1, (9, 9), 64, 24, (5, 5), 1, 2, 1, 1),       # k past one block, split inside a run
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", CONFIGS)
def test_conv_matches_torch(cfg, dtype, rng):
    n, batch, sp, c_in, c_out, kernel, stride, padding, dilation, groups = cfg
    x = rng.standard_normal((batch, *sp, c_in)).astype(dtype)
    w = rng.standard_normal((c_out, *kernel, c_in // groups)).astype(dtype)
    got = EM_CONV[n](em.array(x), em.array(w), stride=stride, padding=padding,
                     dilation=dilation, groups=groups)
    want = _last(TORCH_CONV[n](_first(x), _first(w), stride=stride, padding=padding,
                               dilation=dilation, groups=groups))
    assert got.shape == want.shape
    assert got.dtype == em.array(x).dtype
    _close(got, want, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", CONFIGS)
def test_conv_grad_matches_torch(cfg, dtype, rng):
    n, batch, sp, c_in, c_out, kernel, stride, padding, dilation, groups = cfg
    x = rng.standard_normal((batch, *sp, c_in)).astype(dtype)
    # unit-variance outputs: sin of an output of size ~40 (a 1,600-term sum)
    # would turn float32's rounding of it into gradient noise of 1e-4
    fan_in = c_in // groups * int(np.prod(kernel))
    w = (rng.standard_normal((c_out, *kernel, c_in // groups)) / np.sqrt(fan_in)).astype(dtype)

    def loss(x, w):
        y = EM_CONV[n](x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
        return em.sum(em.sin(y))

    gx, gw = em.grad(loss, argnums=(0, 1))(em.array(x), em.array(w))
    tx, tw = _first(x).requires_grad_(), _first(w).requires_grad_()
    torch.sin(TORCH_CONV[n](tx, tw, stride=stride, padding=padding, dilation=dilation,
                            groups=groups)).sum().backward()
    _close(gx, _last(tx.grad), dtype)
    _close(gw, _last(tw.grad), dtype)


def _torch_transpose_weight(w, groups):
    """mlx's (C_out, *k, C_in/groups) -> torch's (C_in, C_out/groups, *k)."""
    c_out, kernel, cg = w.shape[0], w.shape[1:-1], w.shape[-1]
    n = len(kernel)
    g = w.reshape(groups, c_out // groups, *kernel, cg)
    g = g.transpose(0, n + 2, 1, *range(2, n + 2))          # (G, cg, co, *k)
    return torch.from_numpy(np.ascontiguousarray(g.reshape(groups * cg, c_out // groups, *kernel)))


# (n, batch, spatial, c_in, c_out, kernel, stride, padding, dilation, output_padding, groups)
T_CONFIGS = [
    (1, 2, (6,), 3, 4, (3,), 1, 0, 1, 0, 1),
    (1, 2, (5,), 4, 6, (3,), 2, 1, 1, 1, 2),
    (2, 2, (4, 5), 4, 6, (3, 2), (2, 3), (1, 0), (1, 2), (1, 2), 2),
    (2, 1, (3, 3), 2, 3, (3, 3), 2, 2, 1, 0, 1),
    (2, 3, (5, 4), 3, 3, (1, 2), 1, 0, (1, 3), 0, 3),
    (3, 1, (3, 4, 2), 2, 4, (2, 3, 2), (2, 1, 2), (0, 1, 1), 1, (1, 0, 0), 2),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", T_CONFIGS)
def test_conv_transpose_matches_torch(cfg, dtype, rng):
    n, batch, sp, c_in, c_out, kernel, stride, padding, dilation, out_pad, groups = cfg
    x = rng.standard_normal((batch, *sp, c_in)).astype(dtype)
    w = rng.standard_normal((c_out, *kernel, c_in // groups)).astype(dtype)
    got = EM_CONV_T[n](em.array(x), em.array(w), stride=stride, padding=padding,
                       dilation=dilation, output_padding=out_pad, groups=groups)
    want = _last(TORCH_CONV_T[n](_first(x), _torch_transpose_weight(w, groups), stride=stride,
                                 padding=padding, output_padding=out_pad, groups=groups,
                                 dilation=dilation))
    assert got.shape == want.shape
    _close(got, want, dtype)


@pytest.mark.parametrize("cfg", T_CONFIGS[1:4])
def test_conv_transpose_grad_matches_torch(cfg, rng):
    n, batch, sp, c_in, c_out, kernel, stride, padding, dilation, out_pad, groups = cfg
    x = rng.standard_normal((batch, *sp, c_in))
    w = rng.standard_normal((c_out, *kernel, c_in // groups))

    def loss(x, w):
        return em.sum(em.tanh(EM_CONV_T[n](x, w, stride=stride, padding=padding,
                                           dilation=dilation, output_padding=out_pad,
                                           groups=groups)))

    gx, gw = em.grad(loss, argnums=(0, 1))(em.array(x), em.array(w))
    tx = _first(x).requires_grad_()
    tw = _torch_transpose_weight(w, groups).requires_grad_()
    torch.tanh(TORCH_CONV_T[n](tx, tw, stride=stride, padding=padding, output_padding=out_pad,
                               groups=groups, dilation=dilation)).sum().backward()
    _close(gx, _last(tx.grad), np.float64)
    # d/dw of the torch layout, rearranged back: the weight map is a permutation
    np.testing.assert_allclose(_torch_transpose_weight(np.array(gw), groups).numpy(),
                               tw.grad.numpy(), rtol=1e-12, atol=1e-10)


def _np_conv_general(x, w, stride, lo, hi, kdil, idil, groups, flip):
    """Oracle for conv_general: dilate and pad x with numpy, flip w, then torch's conv."""
    n = x.ndim - 2
    if flip:
        w = w[(slice(None),) + (slice(None, None, -1),) * n]
    sp = [(s - 1) * d + 1 for s, d in zip(x.shape[1:-1], idil)]
    xd = np.zeros((x.shape[0], *sp, x.shape[-1]), x.dtype)
    xd[(slice(None),) + tuple(slice(None, None, d) for d in idil)] = x
    pads = [(0, 0)] + [(max(a, 0), max(b, 0)) for a, b in zip(lo, hi)] + [(0, 0)]
    xp = np.pad(xd, pads)
    crop = tuple(slice(max(-a, 0), xp.shape[i + 1] - max(-b, 0))
                 for i, (a, b) in enumerate(zip(lo, hi)))
    xp = xp[(slice(None),) + crop]
    return _last(TORCH_CONV[n](_first(xp), _first(np.ascontiguousarray(w)), stride=stride,
                               dilation=kdil, groups=groups))


@pytest.mark.parametrize("c_in", [4, 40])
@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_general_asymmetric_padding_input_dilation_flip(flip, dtype, c_in, rng):
    x = rng.standard_normal((2, 5, 7, c_in)).astype(dtype)
    w = rng.standard_normal((6, 3, 2, c_in // 2)).astype(dtype)
    stride, lo, hi, kdil, idil = (2, 1), (3, 0), (1, 2), (1, 2), (2, 3)
    got = em.conv_general(em.array(x), em.array(w), stride=stride, padding=(lo, hi),
                          kernel_dilation=kdil, input_dilation=idil, groups=2, flip=flip)
    _close(got, _np_conv_general(x, w, stride, lo, hi, kdil, idil, 2, flip), dtype)


def test_float32_paths_agree(rng):
    """The input read in place (ember's gemm over runs) and through im2col
    rows (OpenBLAS's sgemm) give the same convolution."""
    from ember.core._ffi import lib
    x = em.array(rng.standard_normal((3, 11, 10, 32)).astype(np.float32))
    w = em.array(rng.standard_normal((24, 3, 3, 16)).astype(np.float32))
    results = []
    for own in (1, 0):
        lib.em_set_sgemm_own(own)
        try:
            results.append(np.array(em.conv2d(x, w, stride=(1, 2), padding=(2, 1), groups=2)))
        finally:
            lib.em_set_sgemm_own(-1)
    np.testing.assert_allclose(results[0], results[1], rtol=2e-5, atol=2e-5 * np.abs(results[1]).max())


def test_conv_general_parameter_forms(rng):
    """Ints, per-axis sequences (numpy ints too) and (low, high) lists give the same result."""
    x = em.array(rng.standard_normal((1, 6, 5, 2)))
    w = em.array(rng.standard_normal((3, 2, 2, 2)))
    a = em.conv_general(x, w, stride=2, padding=1, kernel_dilation=1)
    b = em.conv_general(x, w, stride=(np.int64(2), 2), padding=([1, 1], [1, 1]),
                        kernel_dilation=[1, 1], input_dilation=(1, 1))
    c = em.conv2d(x, w, stride=np.int32(2), padding=(1, 1))
    np.testing.assert_array_equal(np.array(a), np.array(b))
    np.testing.assert_array_equal(np.array(a), np.array(c))


def test_conv_general_negative_padding_crops(rng):
    x = rng.standard_normal((1, 9, 3))
    w = rng.standard_normal((2, 3, 3))
    got = em.conv_general(em.array(x), em.array(w), padding=([-2], [1]))
    _close(got, _np_conv_general(x, w, (1,), (-2,), (1,), (1,), (1,), 1, False), np.float64)


def test_conv_general_grad_with_everything(rng):
    x = rng.standard_normal((2, 6, 5, 4))
    w = rng.standard_normal((4, 2, 3, 2))
    kw = dict(stride=(2, 1), padding=((1, 3), (0, 1)), kernel_dilation=(2, 1),
              input_dilation=(1, 2), groups=2, flip=True)
    gx, gw = em.grad(lambda a, b: em.sum(em.conv_general(a, b, **kw) ** 2), argnums=(0, 1))(
        em.array(x), em.array(w))
    u = rng.standard_normal(x.shape)
    v = rng.standard_normal(w.shape)
    eps = 1e-6
    f = lambda a, b: float(em.sum(em.conv_general(em.array(a), em.array(b), **kw) ** 2).item())
    fd = (f(x + eps * u, w + eps * v) - f(x - eps * u, w - eps * v)) / (2 * eps)
    assert np.vdot(np.array(gx), u) + np.vdot(np.array(gw), v) == pytest.approx(fd, rel=1e-6)


@pytest.mark.parametrize("dtype", [em.float16, em.bfloat16])
def test_half_types_compute_in_float32(dtype, rng):
    x = rng.standard_normal((2, 6, 6, 4)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    xe, we = em.array(x).astype(dtype), em.array(w).astype(dtype)
    got = em.conv2d(xe, we, padding=1)
    assert got.dtype == dtype
    xr = np.array(xe.astype(em.float32))
    wr = np.array(we.astype(em.float32))
    want = _last(F.conv2d(_first(xr), _first(wr), padding=1))
    tol = 1e-2 if dtype == em.float16 else 6e-2
    np.testing.assert_allclose(np.array(got.astype(em.float32)), want, rtol=tol, atol=tol * 4)


def test_mixed_dtypes_promote(rng):
    x = rng.standard_normal((1, 5, 2)).astype(np.float32)
    w = rng.standard_normal((3, 2, 2))
    got = em.conv1d(em.array(x), em.array(w))
    assert got.dtype == em.float64


def test_strided_inputs(rng):
    """Transposed and sliced (non-contiguous) operands."""
    x = rng.standard_normal((6, 3, 8, 2))
    w = rng.standard_normal((3, 3, 3, 4))
    xe = em.transpose(em.array(x), (3, 2, 0, 1))[:, ::2]        # (2, 4, 6, 3)
    we = em.transpose(em.array(w), (3, 0, 1, 2))[:, :, ::-1]    # (4, 3, 3, 3)
    xn = np.array(xe)
    wn = np.array(we)
    got = em.conv2d(xe, we, padding=1)
    _close(got, _last(F.conv2d(_first(xn), _first(wn), padding=1)), np.float64)


def test_empty_batch():
    out = em.conv2d(em.zeros((0, 4, 4, 3)), em.zeros((2, 3, 3, 3)))
    assert out.shape == (0, 2, 2, 2)
    assert np.array(out).size == 0


@pytest.mark.parametrize("in_axes", [(0, None), (None, 0), (0, 0), (2, 1)])
def test_vmap_matches_a_loop(in_axes, rng):
    xs = rng.standard_normal((3, 2, 7, 4))
    ws = rng.standard_normal((3, 6, 3, 2))
    ax, aw = in_axes
    x_in = xs[0] if ax is None else np.moveaxis(xs, 0, ax)
    w_in = ws[0] if aw is None else np.moveaxis(ws, 0, aw)
    f = lambda x, w: em.conv1d(x, w, stride=2, padding=1, groups=2)
    got = em.vmap(f, in_axes=in_axes)(em.array(x_in), em.array(w_in))
    want = np.stack([np.array(f(em.array(xs[0] if ax is None else xs[b]),
                                em.array(ws[0] if aw is None else ws[b]))) for b in range(3)])
    np.testing.assert_allclose(np.array(got), want, rtol=1e-12, atol=1e-12)


def test_grad_of_grad(rng):
    """Second derivatives compose: d/dx of <grad_w f, v> against finite differences."""
    x = rng.standard_normal((1, 6, 2))
    w = rng.standard_normal((3, 3, 2))
    v = em.array(rng.standard_normal(w.shape))

    def inner(x):
        gw = em.grad(lambda w: em.sum(em.tanh(em.conv1d(x, w, padding=1))), argnums=0)(
            em.array(w))
        return em.sum(gw * v)

    g = em.grad(inner)(em.array(x))
    u = rng.standard_normal(x.shape)
    eps = 1e-5
    fd = (inner(em.array(x + eps * u)).item() - inner(em.array(x - eps * u)).item()) / (2 * eps)
    assert np.vdot(np.array(g), u) == pytest.approx(fd, rel=1e-6)


def test_errors():
    x = em.zeros((2, 8, 8, 4))
    with pytest.raises(ValueError, match=r"\[conv\] input channels \(4\) must equal the "
                                         r"weight's last axis \(3\) times groups \(1\)"):
        em.conv2d(x, em.zeros((5, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"\[conv\] groups \(3\) must divide the input channels "
                                         r"\(4\)"):
        em.conv2d(x, em.zeros((6, 3, 3, 1)), groups=3)
    with pytest.raises(ValueError, match=r"\[conv\] groups \(2\) must divide .* output "
                                         r"channels \(5\)"):
        em.conv2d(x, em.zeros((5, 3, 3, 2)), groups=2)
    with pytest.raises(ValueError, match=r"\[conv2d\] expected input and weight of 4 "
                                         r"dimensions"):
        em.conv2d(em.zeros((8, 8, 4)), em.zeros((5, 3, 3, 4)))
    with pytest.raises(ValueError, match=r"\[conv\] the kernel \(9 with dilation 1\) is larger "
                                         r"than the padded input \(8\)"):
        em.conv2d(x, em.zeros((5, 9, 3, 4)))
    with pytest.raises(ValueError, match=r"\[conv\] strides and dilations must be positive"):
        em.conv2d(x, em.zeros((5, 3, 3, 4)), stride=0)
    with pytest.raises(ValueError, match=r"\[conv2d\] stride must be an int or 2 ints"):
        em.conv2d(x, em.zeros((5, 3, 3, 4)), stride=(1, 1, 1))
    with pytest.raises(ValueError, match=r"\[conv\] only floating point types are supported, "
                                         r"got int32 and int32"):
        em.conv1d(em.zeros((1, 4, 2), em.int32), em.zeros((1, 2, 2), em.int32))
    with pytest.raises(ValueError, match=r"\[conv_transpose1d\] output_padding \(2\) must be "
                                         r"non-negative and smaller than the stride \(2\)"):
        em.conv_transpose1d(em.zeros((1, 4, 2)), em.zeros((1, 2, 2)), stride=2,
                            output_padding=2)
    with pytest.raises(ValueError, match=r"\[conv\] input must have at least 3 dimensions"):
        em.conv_general(em.zeros((4, 2)), em.zeros((1, 2)))
