"""ember.core.fft against numpy.fft (and JAX for the transform rules).

numpy computes the reference in double precision on the exact complex64 /
float32 values ember holds, so the tolerance covers ember's single-precision
arithmetic: a relative error of about 1e-5 * log2(n) of the largest output.
Sizes cover every code path: radix 4, 2, 3 and 5 stages, generic prime
radices (7, 17), Bluestein's algorithm (97, 1009, 10007), a single long line
(stages split over threads) and many short lines (lines split over threads).
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ember.core as em
from ember.core._ffi import lib
from ember.core.primitives import Node, rules_of

SIZES = [1, 2, 3, 4, 7, 8, 17, 97, 1009, 1024, 2 ** 6 * 3 * 5, 4096]
NORMS = [None, "backward", "ortho", "forward"]


def tol(n):
    return 1e-5 * max(1.0, math.log2(max(n, 2)))


def assert_close(got, ref, n):
    got = np.asarray(got)
    ref = np.asarray(ref)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    scale = max(np.abs(ref).max() if ref.size else 0.0, 1e-30)
    np.testing.assert_allclose(got, ref, rtol=tol(n), atol=tol(n) * scale)


def complex_input(rng, shape):
    x = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    return em.array(x), x.astype(np.complex128)


def real_input(rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    return em.array(x), x.astype(np.float64)


@pytest.mark.parametrize("n", SIZES)
def test_fft_ifft_sizes(rng, n):
    a, x = complex_input(rng, (3, n))
    out = em.fft.fft(a)
    assert out.dtype == em.complex64
    assert_close(out, np.fft.fft(x), n)
    assert_close(em.fft.ifft(a), np.fft.ifft(x), n)


@pytest.mark.parametrize("n", SIZES)
def test_rfft_irfft_sizes(rng, n):
    a, x = real_input(rng, (2, n))
    out = em.fft.rfft(a)
    assert out.dtype == em.complex64 and out.shape == (2, n // 2 + 1)
    assert_close(out, np.fft.rfft(x), n)
    c, z = complex_input(rng, (2, n // 2 + 1))
    back = em.fft.irfft(c, n)
    assert back.dtype == em.float32
    assert_close(back, np.fft.irfft(z, n), n)


def test_every_length_up_to_130(rng):
    # every mix of radices and primes up to 127 (Bluestein above 61); more
    # lengths than the plan cache holds, so uncached plans run too
    for n in range(1, 131):
        a, x = complex_input(rng, (2, n))
        assert_close(em.fft.fft(a), np.fft.fft(x), n)
        assert_close(em.fft.ifft(a), np.fft.ifft(x), n)


@pytest.mark.parametrize("n", [2 ** 15, 2 ** 13 * 3 * 5, 10007])
def test_long_single_lines(rng, n):
    a, x = complex_input(rng, (n,))
    assert_close(em.fft.fft(a), np.fft.fft(x), n)
    assert_close(em.fft.ifft(a), np.fft.ifft(x), n)
    r, xr = real_input(rng, (n,))
    assert_close(em.fft.rfft(r), np.fft.rfft(xr), n)


def test_many_lines_threaded(rng):
    a, x = complex_input(rng, (64, 4096))
    assert_close(em.fft.fft(a), np.fft.fft(x), 4096)
    b, y = complex_input(rng, (500, 12))
    assert_close(em.fft.ifft(b, axis=0), np.fft.ifft(y, axis=0), 500)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int32", "bool",
                                   "complex64"])
def test_input_dtypes(rng, dtype):
    x = rng.standard_normal((4, 12)) * 3
    if dtype == "complex64":
        x = x + 1j * rng.standard_normal((4, 12))
    a = em.array(x).astype(getattr(em, "bool_" if dtype == "bool" else dtype))
    exact = np.array(a).astype(np.complex128)
    out = em.fft.fft(a)
    assert out.dtype == em.complex64  # mlx computes in complex64, float64 input included
    assert_close(out, np.fft.fft(exact), 12)
    assert em.fft.rfft(a).dtype == em.complex64
    # rfft of complex input uses the real part (mlx casts silently)
    assert_close(em.fft.rfft(a), np.fft.rfft(exact.real), 12)
    assert em.fft.irfft(a).dtype == em.float32


@pytest.mark.parametrize("op", ["fft", "ifft", "rfft", "irfft"])
@pytest.mark.parametrize("n", [1, 5, 8, 13, 16, 31])
def test_n_crops_and_pads(rng, op, n):
    shape = (3, 10)
    if op == "rfft":
        a, x = real_input(rng, shape)
    else:
        a, x = complex_input(rng, shape)
    got = getattr(em.fft, op)(a, n)
    ref = getattr(np.fft, op)(x, n)
    assert_close(got, ref, n)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("op", ["fft", "ifft", "rfft", "irfft"])
def test_norm_1d(rng, op, norm):
    if op == "rfft":
        a, x = real_input(rng, (2, 30))
    else:
        a, x = complex_input(rng, (2, 30))
    assert_close(getattr(em.fft, op)(a, norm=norm), getattr(np.fft, op)(x, norm=norm), 30)


@pytest.mark.parametrize("axis", [0, 1, 2, -2])
def test_axes_1d(rng, axis):
    a, x = complex_input(rng, (6, 7, 5))
    assert_close(em.fft.fft(a, axis=axis), np.fft.fft(x, axis=axis), 7)
    r, xr = real_input(rng, (6, 7, 5))
    assert_close(em.fft.rfft(r, axis=axis), np.fft.rfft(xr, axis=axis), 7)
    c = em.fft.rfft(r, axis=axis)
    m = xr.shape[axis]
    assert_close(em.fft.irfft(c, m, axis=axis), xr, 7)  # round trip


def test_strided_inputs(rng):
    a, x = complex_input(rng, (12, 20))
    assert_close(em.fft.fft(a.T), np.fft.fft(x.T), 12)
    assert_close(em.fft.fft(a[::2, ::-3]), np.fft.fft(x[::2, ::-3]), 7)
    r, xr = real_input(rng, (12, 20))
    assert_close(em.fft.rfft(r[:, 1::2], axis=0), np.fft.rfft(xr[:, 1::2], axis=0), 12)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("s,axes", [(None, None), (None, (0, 2)), ((4, 6), None), ((5, 3), (2, 0)),
                                    ((8, 7, 3), (0, 1, 2)), (None, (-1,))])
def test_nd_transforms(rng, norm, s, axes):
    a, x = complex_input(rng, (5, 6, 7))
    kw = dict(s=s, axes=axes, norm=norm)
    # mlx (and numpy before 2.0): s without axes means the last len(s) axes
    ref = dict(kw, axes=tuple(range(-len(s), 0)) if axes is None and s is not None else axes)
    assert_close(em.fft.fftn(a, **kw), np.fft.fftn(x, **ref), 210)
    assert_close(em.fft.ifftn(a, **kw), np.fft.ifftn(x, **ref), 210)
    r, xr = real_input(rng, (5, 6, 7))
    assert_close(em.fft.rfftn(r, **kw), np.fft.rfftn(xr, **ref), 210)
    assert_close(em.fft.irfftn(a, **kw), np.fft.irfftn(x, **ref), 210)


@pytest.mark.parametrize("s", [None, (4, 9), (6, 6)])
def test_2d_transforms(rng, s):
    a, x = complex_input(rng, (3, 6, 8))
    r, xr = real_input(rng, (3, 6, 8))
    assert_close(em.fft.fft2(a, s), np.fft.fft2(x, s), 48)
    assert_close(em.fft.ifft2(a, s), np.fft.ifft2(x, s), 48)
    assert_close(em.fft.rfft2(r, s), np.fft.rfft2(xr, s), 48)
    assert_close(em.fft.irfft2(a, s), np.fft.irfft2(x, s), 48)
    assert_close(em.fft.fft2(a, axes=(0, 2), norm="ortho"), np.fft.fft2(x, axes=(0, 2), norm="ortho"), 48)


def test_empty_arrays():
    assert em.fft.fft(em.zeros((0, 8))).shape == (0, 8)
    assert em.fft.rfft(em.zeros((3, 0, 8))).shape == (3, 0, 5)
    assert em.fft.irfft(em.zeros((0, 5), em.complex64)).shape == (0, 8)
    # an empty axis padded by n: a transform of zeros
    np.testing.assert_array_equal(np.array(em.fft.fft(em.zeros((0,)), n=4)), np.zeros(4))


def test_errors():
    a = em.zeros((3, 4), em.complex64)
    with pytest.raises(ValueError, match=r"\[fft\] axis 2 is out of bounds for array of dimension 2"):
        em.fft.fft(a, axis=2)
    with pytest.raises(ValueError, match=r"\[irfft\] axis -3 is out of bounds"):
        em.fft.irfft(a, axis=-3)
    with pytest.raises(ValueError, match=r"\[fft\] invalid number of data points \(0\) along axis 1"):
        em.fft.fft(a, n=0)
    with pytest.raises(ValueError, match=r"\[rfft\] invalid number of data points \(-2\)"):
        em.fft.rfft(a, n=-2)
    with pytest.raises(ValueError, match=r"\[fft\] invalid number of data points \(0\) along axis 0 "
                                         r"of an array of shape \(0,\)"):
        em.fft.fft(em.zeros((0,)))
    with pytest.raises(ValueError, match=r"\[irfft\] invalid number of data points \(0\)"):
        em.fft.irfft(em.zeros((3, 1)))
    with pytest.raises(ValueError, match=r'\[ifft\] norm must be "backward", "ortho" or "forward", '
                                         r"got 'sideways'"):
        em.fft.ifft(a, norm="sideways")
    with pytest.raises(ValueError, match=r"\[fftn\] s and axes must have the same length"):
        em.fft.fftn(a, s=(2, 2), axes=(0,))
    with pytest.raises(ValueError, match=r"\[rfft2\] axis 5 is out of bounds"):
        em.fft.rfft2(a, axes=(0, 5))
    with pytest.raises(ValueError, match=r"\[ifftn\] invalid number of data points \(0\) along axis 0"):
        em.fft.ifftn(a, s=(0, 4))
    with pytest.raises(ValueError, match=r"\[fftfreq\] n must be a positive integer, got 0"):
        em.fft.fftfreq(0)
    with pytest.raises(ValueError, match=r"\[fftshift\] axis 3 is out of bounds"):
        em.fft.fftshift(a, axes=3)


@pytest.mark.parametrize("axes", [None, 0, 1, (0, 1), (-1,)])
def test_fftshift(rng, axes):
    x = rng.standard_normal((5, 8)).astype(np.float32)
    a = em.array(x)
    np.testing.assert_array_equal(np.array(em.fft.fftshift(a, axes)), np.fft.fftshift(x, axes))
    np.testing.assert_array_equal(np.array(em.fft.ifftshift(a, axes)), np.fft.ifftshift(x, axes))
    np.testing.assert_array_equal(np.array(em.fft.ifftshift(em.fft.fftshift(a, axes), axes)), x)


@pytest.mark.parametrize("n,d", [(1, 1.0), (2, 1.0), (7, 0.5), (8, 0.1), (101, 3.0)])
def test_fftfreq(n, d):
    out = em.fft.fftfreq(n, d)
    assert out.dtype == em.float32
    np.testing.assert_allclose(np.array(out), np.fft.fftfreq(n, d), rtol=1e-6)
    np.testing.assert_allclose(np.array(em.fft.rfftfreq(n, d)), np.fft.rfftfreq(n, d), rtol=1e-6)


def test_imported_as_module():
    import ember.core.fft as fft_module
    assert fft_module is em.fft
    assert callable(em.fft.fftn)


# ---- transform rules, checked against JAX ----

def node_of(out):
    """The Node view of a pending op's output (what transforms hand the rules)."""
    p = out._p
    inputs = []
    for i in range(lib.em_num_inputs(p)):
        q = lib.em_input(p, i)
        lib.em_retain(q)
        x = em.array.__new__(em.array)
        x._p = q
        inputs.append(x)
    ip = tuple(lib.em_iparams(p)[i] for i in range(lib.em_num_iparams(p)))
    fp = tuple(lib.em_fparams(p)[i] for i in range(lib.em_num_fparams(p)))
    return Node(lib.em_prim_of(p), inputs, ip, fp, out)


RULE_CASES = [("fft", None, None), ("fft", 6, "ortho"), ("fft", 13, "forward"),
              ("ifft", None, None), ("ifft", 7, "ortho"),
              ("rfft", None, None), ("rfft", 7, "forward"), ("rfft", 14, None),
              ("irfft", None, None), ("irfft", 9, "ortho"), ("irfft", 20, "forward"),
              ("irfft", 4, None)]


@pytest.mark.parametrize("op,n,norm", RULE_CASES)
def test_fft_rules_match_jax(rng, op, n, norm):
    shape = (3, 10)
    if op == "rfft":
        x = rng.standard_normal(shape).astype(np.float32)
    else:
        x = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    t = (rng.standard_normal(shape) + (0 if op == "rfft" else 1j) * rng.standard_normal(shape))
    t = t.astype(x.dtype)
    out = getattr(em.fft, op)(em.array(x), n, norm=norm)
    node = node_of(out)
    assert node.prim == lib.EM_P_FFT
    rules = rules_of(lib.EM_P_FFT)
    f = lambda v: getattr(jnp.fft, op)(v, n, norm=norm)
    y, jvp_ref = jax.jvp(f, (x,), (t,))
    assert_close(rules.jvp(node, [em.array(t)]), jvp_ref, 20)
    ct_shape = np.asarray(y).shape
    ct = rng.standard_normal(ct_shape) + (1j * rng.standard_normal(ct_shape) if op != "irfft" else 0)
    ct = ct.astype(np.asarray(y).dtype)
    _, pull = jax.vjp(f, x)
    got = rules.vjp(node, em.array(ct))[0]
    assert got.shape == x.shape
    assert_close(got, pull(ct)[0], 20)


@pytest.mark.parametrize("op", ["fft", "rfft", "irfft"])
@pytest.mark.parametrize("batch_axis", [0, 1, 2])
def test_fft_vmap_rule(rng, op, batch_axis):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    node = node_of(getattr(em.fft, op)(em.array(x).astype(em.complex64 if op != "rfft" else
                                                          em.float32), 8, axis=0))
    xb = rng.standard_normal((4, 6, 3)).astype(np.float32)
    xb = np.moveaxis(xb, 2, batch_axis)
    if op != "rfft":
        xb = xb.astype(np.complex64)
    out, out_axis = rules_of(lib.EM_P_FFT).vmap(node, [em.array(xb)], [batch_axis])
    assert out_axis == batch_axis
    ref = np.stack([getattr(np.fft, op)(np.take(xb, i, batch_axis), 8, axis=0) for i in range(3)],
                   axis=batch_axis)
    assert_close(out, ref, 8)
