"""ember.core.quantize, dequantize and quantized_matmul against mlx.core (the
oracle for the packed layout, scales, biases and rounding, bit for bit),
numpy float64 (codes unpacked independently, products of the dequantized
weights) and JAX (gradients)."""
import itertools
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_dtypes
import mlx.core as mx
import numpy as np
import pytest

import ember.core as em



@pytest.fixture(autouse=True)
def _jax_in_float64():
    """JAX oracles here compute in float64; the flag is process-wide, so it is
    on only for the duration of each test of this file."""
    with jax.enable_x64(True):
        yield

BITS = (1, 2, 3, 4, 5, 6, 8)
GROUPS = (32, 64, 128)
DTYPES = ("float32", "float16", "bfloat16")
NP_DTYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


def _weights(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _em(a, dtype="float32"):
    return em.array(a).astype(getattr(em, dtype))


def _mx(a, dtype="float32"):
    return mx.array(a).astype(getattr(mx, dtype))


def _bits_of(a):
    """The exact bit patterns of a float array (float32 holds float16 and
    bfloat16 exactly), so -0.0 and 0.0 differ."""
    return np.asarray(a, dtype=np.float32).view(np.uint32)


def _np(a):
    """An ember or mlx array as numpy (half types through float32)."""
    if isinstance(a, mx.array):
        if a.dtype in (mx.float16, mx.bfloat16):
            a = a.astype(mx.float32)
        return np.array(a)
    if a.dtype in (em.float16, em.bfloat16):
        a = a.astype(em.float32)
    return np.array(a)


def _codes(wq, bits, n):
    """numpy's unpacking of the codes: a little-endian bit stream per row."""
    wq = np.ascontiguousarray(np.asarray(wq, dtype=np.uint32))
    stream = np.unpackbits(wq.view(np.uint8), axis=-1, bitorder="little")
    stream = stream.reshape(wq.shape[:-1] + (n, bits)).astype(np.int64)
    return (stream << np.arange(bits)).sum(-1)


def _dequant64(wq, s, b, g, bits):
    s, b = np.asarray(s, np.float64), np.asarray(b, np.float64)
    n = s.shape[-1] * g
    codes = _codes(wq, bits, n).astype(np.float64)
    return codes * np.repeat(s, g, axis=-1) + np.repeat(b, g, axis=-1)


# ---- quantize ----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bits,group_size", list(itertools.product(BITS, GROUPS)))
def test_quantize_equals_mlx_bit_for_bit(dtype, bits, group_size, rng):
    w = _weights(rng, (3, 5, group_size * 3), scale=rng.uniform(0.01, 10))
    mq, ms, mb = mx.quantize(_mx(w, dtype), group_size=group_size, bits=bits)
    eq, es, eb = em.quantize(_em(w, dtype), group_size=group_size, bits=bits)
    assert eq.dtype == em.uint32 and es.dtype == getattr(em, dtype) == eb.dtype
    assert eq.shape == (3, 5, group_size * 3 * bits // 32) == tuple(mq.shape)
    assert es.shape == eb.shape == (3, 5, 3)
    np.testing.assert_array_equal(np.array(eq), np.array(mq))
    np.testing.assert_array_equal(_bits_of(_np(es)), _bits_of(_np(ms)))
    np.testing.assert_array_equal(_bits_of(_np(eb)), _bits_of(_np(mb)))


def test_quantize_defaults_equal_mlx(rng):
    w = _weights(rng, (4, 256))
    mq, ms, mb = mx.quantize(mx.array(w))             # group_size 64, bits 4
    eq, es, eb = em.quantize(em.array(w))
    assert eq.shape == (4, 32) and es.shape == (4, 4)
    np.testing.assert_array_equal(np.array(eq), np.array(mq))
    np.testing.assert_array_equal(np.array(es), np.array(ms))
    np.testing.assert_array_equal(np.array(eb), np.array(mb))


@pytest.mark.parametrize("bits", BITS)
def test_quantize_edge_cases_equal_mlx(bits, rng):
    """Constant groups (zero, positive, negative), a group whose max is the
    larger magnitude, ties at the rounding midpoints, and a strided input."""
    g = 32
    rows = [np.zeros(g), np.full(g, 0.75), np.full(g, -3.5),
            np.linspace(-1, 3, g), np.linspace(-3, 1, g),
            np.round(rng.standard_normal(g) * 4) / 4,
            np.r_[np.zeros(g - 1), 1e-9]]
    w = np.array(rows, dtype=np.float32)
    for dtype in DTYPES:
        mq, ms, mb = mx.quantize(_mx(w, dtype), group_size=g, bits=bits)
        eq, es, eb = em.quantize(_em(w, dtype), group_size=g, bits=bits)
        np.testing.assert_array_equal(np.array(eq), np.array(mq))
        np.testing.assert_array_equal(_bits_of(_np(es)), _bits_of(_np(ms)))
        np.testing.assert_array_equal(_bits_of(_np(eb)), _bits_of(_np(mb)))
    # constant groups come back exactly
    eq, es, eb = em.quantize(em.array(w[:3]), group_size=g, bits=bits)
    np.testing.assert_array_equal(np.array(em.dequantize(eq, es, eb, group_size=g, bits=bits)),
                                  w[:3])
    wt = _weights(rng, (128, 6))
    eq, es, eb = em.quantize(em.swapaxes(em.array(wt), 0, 1), bits=bits)
    mq, ms, mb = mx.quantize(mx.swapaxes(mx.array(wt), 0, 1), bits=bits)
    np.testing.assert_array_equal(np.array(eq), np.array(mq))


@pytest.mark.parametrize("bits,group_size", list(itertools.product(BITS, GROUPS)))
def test_quantize_error_bound(bits, group_size, rng):
    """Each element comes back within half a step, except past the far end of
    the grid: mlx snaps the grid to the group's larger-magnitude extreme (the
    edge, reproduced exactly as code 0) and clamps what the grid misses."""
    w = _weights(rng, (6, group_size * 2), scale=3.0)
    eq, es, eb = em.quantize(em.array(w), group_size=group_size, bits=bits)
    codes = _codes(np.array(eq), bits, w.shape[-1]).reshape(6, 2, group_size)
    assert codes.min() >= 0 and codes.max() <= 2 ** bits - 1
    assert np.all(codes.min(-1) == 0)
    back = _dequant64(np.array(eq), np.array(es), np.array(eb), group_size, bits)
    err = np.abs(back - w).reshape(6, 2, group_size)
    groups = w.reshape(6, 2, group_size)
    step = np.abs(np.array(es, np.float64))
    spread = groups.max(-1) - groups.min(-1)
    missed = np.maximum(spread - (2 ** bits - 1) * step, 0)
    assert np.all(err.max(-1) <= np.maximum(step * 0.5, missed) * (1 + 1e-4) + 1e-6)
    edge = np.where(np.abs(groups.min(-1)) > np.abs(groups.max(-1)), groups.min(-1),
                    groups.max(-1)) if bits > 1 else groups.min(-1)
    at_edge = np.take_along_axis(err, np.argmin(np.abs(groups - edge[..., None]), -1)[..., None], -1)
    assert np.all(at_edge <= 1e-6 * np.abs(edge[..., None]))


# ---- dequantize ----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bits,group_size", list(itertools.product(BITS, GROUPS)))
def test_dequantize_equals_mlx_bit_for_bit(dtype, bits, group_size, rng):
    w = _weights(rng, (2, 7, group_size * 2), scale=2.0)
    mq, ms, mb = mx.quantize(_mx(w, dtype), group_size=group_size, bits=bits)
    eq, es, eb = em.quantize(_em(w, dtype), group_size=group_size, bits=bits)
    md = mx.dequantize(mq, ms, mb, group_size=group_size, bits=bits)
    ed = em.dequantize(eq, es, eb, group_size=group_size, bits=bits)
    assert ed.dtype == getattr(em, dtype) and ed.shape == w.shape
    np.testing.assert_array_equal(_bits_of(_np(ed)), _bits_of(_np(md)))
    ref = _dequant64(np.array(eq), _np(es), _np(eb), group_size, bits)
    tol = {"float32": 1e-6, "float16": 1e-3, "bfloat16": 8e-3}[dtype]
    np.testing.assert_allclose(_np(ed), ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("bits", (2, 3, 4, 8))
def test_dequantize_dtypes_equal_mlx(bits, rng):
    """Scales and biases of other dtypes than each other, float64 ones, the
    dtype argument, and random (not quantize-made) scales and biases."""
    g = 32
    wq = rng.integers(0, 2 ** 32, size=(3, 2 * bits), dtype=np.uint32)
    s, b = _weights(rng, (3, 2)), _weights(rng, (3, 2))
    cases = [("float16", "float32", None), ("bfloat16", "bfloat16", None),
             ("float64", "float64", None), ("float64", "float16", "float64"),
             ("float32", "float32", "float16"),
             ("float16", "float16", "float32"), ("float32", "float32", "bfloat16")]
    for sd, bd, out in cases:
        kw = {} if out is None else {"dtype": getattr(mx, out)}
        md = mx.dequantize(mx.array(wq), _mx(s, sd), _mx(b, bd), group_size=g, bits=bits, **kw)
        kw = {} if out is None else {"dtype": getattr(em, out)}
        ed = em.dequantize(em.array(wq), _em(s, sd), _em(b, bd), group_size=g, bits=bits, **kw)
        assert ed.dtype.size == md.dtype.size and str(ed.dtype).split(".")[-1] == \
            str(md.dtype).split(".")[-1]
        np.testing.assert_array_equal(np.array(ed.astype(em.float64)),
                                      np.array(md.astype(mx.float64)))


# ---- quantized_matmul ----

def _qmm_tol(dtype):
    return {"float32": 2e-5, "float16": 4e-3, "bfloat16": 3e-2}[dtype]


@pytest.mark.parametrize("transpose", (True, False))
@pytest.mark.parametrize("bits,group_size", list(itertools.product(BITS, GROUPS)))
def test_quantized_matmul_against_mlx_and_float64(bits, group_size, transpose, rng):
    k_or_n = group_size * 3
    rows = 37                                        # N (transpose) or K: odd
    w = _weights(rng, (rows, k_or_n), 0.1)
    eq, es, eb = em.quantize(em.array(w), group_size=group_size, bits=bits)
    mq, ms, mb = mx.quantize(mx.array(w), group_size=group_size, bits=bits)
    deq = _dequant64(np.array(eq), np.array(es), np.array(eb), group_size, bits)
    inner = k_or_n if transpose else rows
    for m in (1, 2, 5, 40):                          # fused, gemv, gemv, BLAS paths
        x = _weights(rng, (m, inner))
        out = em.quantized_matmul(em.array(x), eq, es, eb, transpose, group_size, bits)
        ref = x.astype(np.float64) @ (deq.T if transpose else deq)
        assert out.shape == ref.shape and out.dtype == em.float32
        np.testing.assert_allclose(np.array(out), ref, rtol=2e-5, atol=2e-5 * np.abs(ref).max())
        mo = mx.quantized_matmul(mx.array(x), mq, ms, mb, transpose, group_size, bits)
        np.testing.assert_allclose(np.array(out), np.array(mo), rtol=1e-4,
                                   atol=1e-4 * np.abs(ref).max())
    x1 = _weights(rng, (inner,))
    out = em.quantized_matmul(em.array(x1), eq, es, eb, transpose, group_size, bits)
    ref = x1.astype(np.float64) @ (deq.T if transpose else deq)
    assert out.shape == ref.shape
    np.testing.assert_allclose(np.array(out), ref, rtol=2e-5, atol=2e-5 * np.abs(ref).max())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bits", (2, 3, 4, 8))
def test_quantized_matmul_dtypes(dtype, bits, rng):
    g = 64
    w = _weights(rng, (24, 128), 0.2)
    eq, es, eb = em.quantize(_em(w, dtype), group_size=g, bits=bits)
    mq, ms, mb = mx.quantize(_mx(w, dtype), group_size=g, bits=bits)
    deq = _dequant64(np.array(eq), _np(es), _np(eb), g, bits)
    for transpose, m in itertools.product((True, False), (1, 3, 40)):
        x = _weights(rng, (m, 128 if transpose else 24))
        xr = x.astype(NP_DTYPES[dtype]).astype(np.float64)
        out = em.quantized_matmul(_em(x, dtype), eq, es, eb, transpose, g, bits)
        assert out.dtype == getattr(em, dtype)
        ref = xr @ (deq.T if transpose else deq)
        tol = _qmm_tol(dtype)
        np.testing.assert_allclose(_np(out), ref, rtol=tol, atol=tol * np.abs(ref).max())
        mo = mx.quantized_matmul(_mx(x, dtype), mq, ms, mb, transpose, g, bits)
        np.testing.assert_allclose(_np(out), _np(mo), rtol=4 * tol,
                                   atol=4 * tol * np.abs(ref).max())
    # mixed: float16 x with float32 scales promotes to float32, as in mlx
    es32, eb32 = es.astype(em.float32), eb.astype(em.float32)
    out = em.quantized_matmul(_em(w[:2], "float16"), eq, es32, eb32, True, g, bits)
    mo = mx.quantized_matmul(_mx(w[:2], "float16"), mq, ms.astype(mx.float32),
                             mb.astype(mx.float32), True, g, bits)
    assert out.dtype == em.float32 and mo.dtype == mx.float32


@pytest.mark.parametrize("transpose", (True, False))
def test_quantized_matmul_batch_shapes_broadcast_like_mlx(transpose, rng):
    g, bits = 32, 4
    rows, cols = 6, 64
    w = _weights(rng, (5, rows, cols))
    eq, es, eb = em.quantize(em.array(w), group_size=g, bits=bits)
    mq, ms, mb = mx.quantize(mx.array(w), group_size=g, bits=bits)
    inner = cols if transpose else rows
    deq = _dequant64(np.array(eq), np.array(es), np.array(eb), g, bits)
    # x of 1 or 2 dimensions against a batched weight: numpy's matmul rules
    # give (5, N) and (5, M, N); mlx 0.32 returns (N,) and (M, N) there (the
    # weight's batch dropped, only w[0] used), so numpy is the oracle
    for xshape in [(inner,), (3, inner)]:
        x = _weights(rng, xshape)
        out = em.quantized_matmul(em.array(x), eq, es, eb, transpose, g, bits)
        ref = np.matmul(x, np.swapaxes(deq, -1, -2) if transpose else deq)
        assert out.shape == ref.shape
        np.testing.assert_allclose(np.array(out), ref, rtol=1e-5, atol=1e-5)
    for xshape in [(2, 1, 3, inner), (5, 2, inner), (1, 1, inner)]:
        x = _weights(rng, xshape)
        out = em.quantized_matmul(em.array(x), eq, es, eb, transpose, g, bits)
        mo = mx.quantized_matmul(mx.array(x), mq, ms, mb, transpose, g, bits)
        assert out.shape == tuple(mo.shape)
        np.testing.assert_allclose(np.array(out), np.array(mo), rtol=1e-4, atol=1e-4)
    # an unbatched weight under a batched x, and a strided x
    eq2, es2, eb2 = (a[1] for a in (eq, es, eb))
    x = _weights(rng, (4, 3, inner))
    out = em.quantized_matmul(em.swapaxes(em.array(x.swapaxes(0, 1).copy()), 0, 1),
                              eq2, es2, eb2, transpose, g, bits)
    mo = mx.quantized_matmul(mx.array(x), mq[1], ms[1], mb[1], transpose, g, bits)
    np.testing.assert_allclose(np.array(out), np.array(mo), rtol=1e-4, atol=1e-4)


def test_quantized_matmul_empty_and_large_batch(rng):
    w = _weights(rng, (8, 64))
    eq, es, eb = em.quantize(em.array(w), group_size=32)
    assert em.quantized_matmul(em.zeros((0, 64)), eq, es, eb, group_size=32).shape == (0, 8)
    x = _weights(rng, (3, 70, 64))
    deq = _dequant64(np.array(eq), np.array(es), np.array(eb), 32, 4)
    out = em.quantized_matmul(em.array(x), eq, es, eb, group_size=32)
    np.testing.assert_allclose(np.array(out), x @ deq.T, rtol=1e-5, atol=1e-5)
    # an empty inner axis sums to zeros
    q0, s0, b0 = em.quantize(em.zeros((4, 0)))
    assert q0.shape == s0.shape == (4, 0) and em.dequantize(q0, s0, b0).shape == (4, 0)
    np.testing.assert_array_equal(np.array(em.quantized_matmul(em.ones((2, 0)), q0, s0, b0)),
                                  np.zeros((2, 4)))
    # strided scales, biases and packed weight (views: transposed and sliced)
    st = em.swapaxes(em.array(np.ascontiguousarray(np.array(es).T)), 0, 1)
    bt = em.array(np.repeat(np.array(eb), 2, axis=1))[:, ::2]
    qt = em.array(np.repeat(np.array(eq), 2, axis=1))[:, ::2]
    np.testing.assert_array_equal(np.array(em.quantized_matmul(em.array(x), qt, st, bt,
                                                               group_size=32)), np.array(out))
    np.testing.assert_array_equal(np.array(em.dequantize(qt, st, bt, group_size=32)),
                                  np.array(em.dequantize(eq, es, eb, group_size=32)))


_PORTABLE_CHECK = """
import numpy as np, ember.core as em
rng = np.random.default_rng(int(__import__('sys').argv[1]))
for bits in (1, 2, 3, 4, 5, 6, 8):
    for g in (32, 64, 128):
        w = rng.standard_normal((9, 2 * g)).astype(np.float32)
        q, s, b = em.quantize(em.array(w), group_size=g, bits=bits)
        d = np.array(em.dequantize(q, s, b, group_size=g, bits=bits), np.float64)
        for m, t in ((1, True), (2, True), (5, True), (1, False), (40, False)):
            x = rng.standard_normal((m, 2 * g if t else 9)).astype(np.float32)
            out = np.array(em.quantized_matmul(em.array(x), q, s, b, t, g, bits))
            ref = x @ (d.T if t else d)
            assert np.allclose(out, ref, rtol=2e-5, atol=2e-5 * np.abs(ref).max()), (bits, g, m, t)
        np.save(__import__('sys').argv[2] + f"/{bits}_{g}.npy", np.array(q))
print("ok")
"""


def test_portable_paths_equal_the_vector_paths(tmp_path, rng):
    """EMBER_NO_AVX2=1 runs the portable decoders and dots: same codes, same
    products (to rounding) as the AVX2 paths this process uses."""
    seed = int(rng.integers(0, 2 ** 31))
    runs = {}
    for flag in ("1", "0"):
        out = tmp_path / flag
        out.mkdir()
        env = dict(os.environ, EMBER_NO_AVX2=flag)
        done = subprocess.run([sys.executable, "-c", _PORTABLE_CHECK, str(seed), str(out)],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
        runs[flag] = {p.name: np.load(p) for p in out.iterdir()}
    assert runs["1"].keys() == runs["0"].keys() and len(runs["1"]) == 21
    for name in runs["1"]:
        np.testing.assert_array_equal(runs["1"][name], runs["0"][name])


# ---- transforms ----

def _jax_qmm(x, s, b, codes, g, transpose):
    w = codes * jnp.repeat(s, g, axis=-1) + jnp.repeat(b, g, axis=-1)
    return x @ (jnp.swapaxes(w, -1, -2) if transpose else w)


@pytest.mark.parametrize("transpose", (True, False))
@pytest.mark.parametrize("bits", (3, 4, 8))
def test_quantized_matmul_gradients_match_jax(bits, transpose, rng):
    g = 32
    w = _weights(rng, (2, 5, 64))
    eq, es, eb = em.quantize(em.array(w), group_size=g, bits=bits)
    codes = _codes(np.array(eq), bits, 64).astype(np.float64)
    inner = 64 if transpose else 5
    x = _weights(rng, (3, 1, 4, inner))
    out_shape = (3, 2, 4, 5 if transpose else 64)
    u = _weights(rng, out_shape)

    def f(x, s, b):
        return em.sum(em.quantized_matmul(x, eq, s, b, transpose, g, bits) * em.array(u))

    gx, gs, gb = em.grad(f, argnums=(0, 1, 2))(em.array(x), es, eb)
    ref = jax.grad(lambda x, s, b: jnp.sum(_jax_qmm(x, s, b, codes, g, transpose) * u),
                   argnums=(0, 1, 2))(x.astype(np.float64), np.array(es, np.float64),
                                      np.array(eb, np.float64))
    for got, want in zip((gx, gs, gb), ref):
        want = np.asarray(want)
        assert got.shape == want.shape
        np.testing.assert_allclose(np.array(got), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    # jvp in every input against jax's
    tx, ts, tb = (_weights(rng, a.shape) for a in (x, np.array(es), np.array(eb)))
    _, (t,) = em.jvp(lambda x, s, b: em.quantized_matmul(x, eq, s, b, transpose, g, bits),
                     [em.array(x), es, eb], [em.array(tx), em.array(ts), em.array(tb)])
    _, want = jax.jvp(lambda x, s, b: _jax_qmm(x, s, b, codes, g, transpose),
                      (x.astype(np.float64), np.array(es, np.float64), np.array(eb, np.float64)),
                      (tx.astype(np.float64), ts.astype(np.float64), tb.astype(np.float64)))
    np.testing.assert_allclose(np.array(t), np.asarray(want), rtol=1e-4,
                               atol=1e-4 * np.abs(np.asarray(want)).max())


def test_quantized_matmul_vector_gradient_and_second_order(rng):
    g, bits = 64, 4
    w = _weights(rng, (16, 128))
    eq, es, eb = em.quantize(em.array(w), group_size=g, bits=bits)
    deq = _dequant64(np.array(eq), np.array(es), np.array(eb), g, bits)
    x = _weights(rng, (128,))
    gx = em.grad(lambda x: em.sum(em.sin(em.quantized_matmul(x, eq, es, eb, True, g, bits))))(
        em.array(x))
    np.testing.assert_allclose(np.array(gx), np.cos(deq @ x) @ deq, rtol=1e-4, atol=1e-4)
    # the gradient's own gradient (its vjp is a quantized_matmul again)
    hv = em.grad(lambda x: em.sum(em.grad(
        lambda x: em.sum(em.quantized_matmul(x, eq, es, eb, True, g, bits) ** 2))(x)))(em.array(x))
    np.testing.assert_allclose(np.array(hv), 2 * deq.T @ (deq @ np.ones(128)), rtol=1e-4,
                               atol=1e-3)


def test_dequantize_gradients_match_jax(rng):
    g, bits = 32, 3
    w = rng.standard_normal((4, 96)).astype(np.float32)
    eq, es, eb = em.quantize(em.array(w), group_size=g, bits=bits)
    codes = _codes(np.array(eq), bits, 96).astype(np.float64)
    u = rng.standard_normal(w.shape).astype(np.float32)
    gs, gb = em.grad(lambda s, b: em.sum(em.dequantize(eq, s, b, group_size=g, bits=bits)
                                         * em.array(u)), argnums=(0, 1))(es, eb)
    ref = jax.grad(lambda s, b: jnp.sum((codes * jnp.repeat(s, g, -1) + jnp.repeat(b, g, -1))
                                        * u), argnums=(0, 1))(np.array(es), np.array(eb))
    np.testing.assert_allclose(np.array(gs), np.asarray(ref[0]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.array(gb), np.asarray(ref[1]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bits", BITS)
def test_quantize_gradients_equal_mlx(bits, rng):
    """mlx differentiates quantize's scales and biases through its ops (the
    rounding held fixed): ember's vjp and jvp give the same numbers."""
    g = 32
    w = _weights(rng, (4, 96))
    w[0, :32] = 0.5                                   # a constant group
    u = _weights(rng, (4, 3))
    for which in (1, 2):
        f_em = lambda w: em.sum(em.quantize(w, group_size=g, bits=bits)[which] * em.array(u))
        f_mx = lambda w: mx.sum(mx.quantize(w, group_size=g, bits=bits)[which] * mx.array(u))
        got, want = np.array(em.grad(f_em)(em.array(w))), np.array(mx.grad(f_mx)(mx.array(w)))
        # tangents of a group's extremes are differenced (t_hi - t_lo): float32
        # rounding of O(1) values, so the absolute tolerance is a few ulp of 1
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
        assert np.count_nonzero(want) > 0
        t = _weights(rng, w.shape)
        _, (jt,) = em.jvp(lambda w: em.quantize(w, group_size=g, bits=bits)[which],
                          [em.array(w)], [em.array(t)])
        _, mjt = mx.jvp(lambda w: mx.quantize(w, group_size=g, bits=bits)[which],
                        [mx.array(w)], [mx.array(t)])
        # (not at the constant group: there mlx's jvp of max/min disagrees with
        # its own vjp, which splits the tangent among the tied elements, as ember does)
        np.testing.assert_allclose(np.array(jt)[1:], np.array(mjt[0])[1:], rtol=1e-6, atol=1e-6)
        # <jvp(t), u> == <t, vjp(u)>: both sums cancel, so the bound scales with their terms
        terms = float(np.sum(np.abs(np.array(jt, np.float64) * u)))
        assert float(np.vdot(np.array(jt, np.float64), u)) == \
            pytest.approx(float(np.vdot(got.astype(np.float64), t)), rel=1e-5, abs=1e-5 * terms)
    # the packed codes carry no gradient
    gw = em.grad(lambda w: em.sum(em.quantize(w, group_size=g, bits=bits)[0]
                                  .astype(em.float32)))(em.array(w))
    np.testing.assert_array_equal(np.array(gw), np.zeros(w.shape))


@pytest.mark.parametrize("transpose", (True, False))
def test_vmap_matches_a_loop(transpose, rng):
    g, bits, n = 32, 4, 3
    w = _weights(rng, (n, 6, 64))
    parts = [em.quantize(em.array(w[i]), group_size=g, bits=bits) for i in range(n)]
    wq, s, b = (em.stack([p[j] for p in parts]) for j in range(3))
    inner = 64 if transpose else 6
    xs = _weights(rng, (n, 2, inner))
    fn = lambda x, wq, s, b: em.quantized_matmul(x, wq, s, b, transpose, g, bits)
    loop = np.stack([np.array(fn(em.array(xs[i]), wq[i], s[i], b[i])) for i in range(n)])
    for in_axes in [(0, 0, 0, 0), (0, None, None, None), (None, 0, 0, 0), (1, 0, None, 0),
                    (0, 0, 0, None)]:
        args = []
        for a, arr in zip(in_axes, (em.array(xs), wq, s, b)):
            if a is None:
                args.append(arr[0])
            elif a == 1:
                args.append(em.swapaxes(arr, 0, 1))
            else:
                args.append(arr)
        want = np.stack([np.array(fn(*[args[j] if in_axes[j] is None else
                                       (em.swapaxes(args[j], 0, 1) if in_axes[j] == 1 else args[j])[i]
                                       for j in range(4)])) for i in range(n)])
        got = em.vmap(fn, in_axes=in_axes)(*args)
        np.testing.assert_array_equal(np.array(got), want)
    np.testing.assert_array_equal(np.array(em.vmap(fn)(em.array(xs), wq, s, b)), loop)
    # a vector x per batch entry, and dequantize / quantize under vmap
    x1 = _weights(rng, (n, inner))
    got = em.vmap(fn, in_axes=(0, None, None, None))(em.array(x1), wq[0], s[0], b[0])
    want = np.stack([np.array(fn(em.array(x1[i]), wq[0], s[0], b[0])) for i in range(n)])
    np.testing.assert_array_equal(np.array(got), want)
    deq = em.vmap(lambda q, s, b: em.dequantize(q, s, b, group_size=g, bits=bits),
                  in_axes=(0, 1, None))(wq, em.swapaxes(s, 0, 1), b[0])
    np.testing.assert_array_equal(np.array(deq), np.stack(
        [np.array(em.dequantize(wq[i], s[i], b[0], group_size=g, bits=bits)) for i in range(n)]))
    qv = em.vmap(lambda w: em.quantize(w, group_size=g, bits=bits)[0], in_axes=2)(
        em.array(np.moveaxis(w, 0, 2)))
    np.testing.assert_array_equal(np.array(qv), np.array(wq))


def test_compile_matches_eager(rng):
    g, bits = 64, 4
    w = _weights(rng, (32, 128))
    x = _weights(rng, (2, 128))

    def step(x, w):
        q, s, b = em.quantize(w, group_size=g, bits=bits)
        y = em.quantized_matmul(x, q, s, b, True, g, bits)
        return y * 2.0, em.dequantize(q, s, b, group_size=g, bits=bits)

    compiled = em.compile(step)
    for _ in range(2):
        got, want = compiled(em.array(x), em.array(w)), step(em.array(x), em.array(w))
        for a, b in zip(got, want):
            np.testing.assert_array_equal(np.array(a), np.array(b))


# ---- errors ----

def test_errors_name_the_op_and_shapes():
    w = em.zeros((4, 128))
    q, s, b = em.quantize(w)
    cases = [
        (lambda: em.quantize(em.zeros((4, 96))), r"\[quantize\].*group size 64.*\(4, 96\)"),
        (lambda: em.quantize(w, bits=7), r"\[quantize\].*bits 7 is not supported"),
        (lambda: em.quantize(w, group_size=16), r"\[quantize\].*group size 16 is not supported"),
        (lambda: em.quantize(w, mode="foo"), r"\[quantize\] Invalid quantization mode 'foo'"),
        (lambda: em.quantize(w, mode="mxfp4"), r"\[quantize\] mode 'mxfp4' is not supported"),
        (lambda: em.quantize(w, global_scale=em.array(1.0)), r"\[quantize\] Global scale"),
        (lambda: em.quantize(em.zeros((128,))), r"\[quantize\].*at least 2 dimensions.*\(128,\)"),
        (lambda: em.quantize(em.zeros((2, 64), em.int32)), r"\[quantize\].*int32"),
        (lambda: em.quantize(em.zeros((2, 64), em.float64)), r"\[quantize\] float64.*\(2, 64\)"),
        (lambda: em.dequantize(q, s), r"\[dequantize\] Biases must be provided"),
        (lambda: em.dequantize(q, s, b[:, :1]),
         r"\[dequantize\] Scales and biases should have the same shape.*\(4, 2\).*\(4, 1\)"),
        (lambda: em.dequantize(q, s[:, :1], b[:, :1]),
         r"\[dequantize\].*incompatible.*\(4, 16\).*\(4, 1\).*group_size=64.*bits=4"),
        (lambda: em.dequantize(q, s, b, bits=3), r"\[dequantize\].*incompatible.*bits=3"),
        (lambda: em.dequantize(q.astype(em.int32), s, b), r"\[dequantize\].*uint32.*int32"),
        (lambda: em.dequantize(q, s, b, dtype=em.int32), r"\[dequantize\].*int32"),
        (lambda: em.dequantize(q, s.astype(em.int32), b), r"\[dequantize\].*floating.*int32"),
        (lambda: em.dequantize(q[0], s[0], b[0]), r"\[dequantize\].*at least 2 dimensions.*\(16,\)"),
        (lambda: em.dequantize(q, s, b, mode="nvfp4"), r"\[dequantize\] mode 'nvfp4'"),
        (lambda: em.quantized_matmul(em.zeros((2, 64)), q, s, b),
         r"\[quantized_matmul\] Last dimension.*\(2, 64\).*\(128, 4\).*\(4, 16\).*transpose=true"),
        (lambda: em.quantized_matmul(em.zeros((2, 128)), q, s, b, transpose=False),
         r"\[quantized_matmul\] Last dimension.*\(4, 128\).*transpose=false"),
        (lambda: em.quantized_matmul(em.zeros((2, 128)), q, s, b, bits=8),
         r"\[quantized_matmul\].*incompatible.*bits=8"),
        (lambda: em.quantized_matmul(em.zeros((2, 128)), q, s), r"\[quantized_matmul\] Biases"),
        (lambda: em.quantized_matmul(em.zeros((2, 128), em.int32), q, s, b),
         r"\[quantized_matmul\].*int32"),
        (lambda: em.quantized_matmul(em.zeros((2, 128), em.float64), q, s, b),
         r"\[quantized_matmul\] float64 is not supported"),
        (lambda: em.quantized_matmul(em.zeros((2, 128)), q, s, b, mode="mxfp8"),
         r"\[quantized_matmul\] mode 'mxfp8'"),
        (lambda: em.quantized_matmul(em.zeros((3, 2, 128)), em.stack([q, q]),
                                     em.stack([s, s]), em.stack([b, b])),
         r"\[quantized_matmul\].*batch shapes.*\(3, 2, 128\).*\(2, 4, 16\)"),
        (lambda: em.quantized_matmul(em.zeros((2, 128)), em.stack([q, q]), s, b),
         r"\[quantized_matmul\].*incompatible.*\(2, 4, 16\).*\(4, 2\)"),
    ]
    for fn, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            fn()
    with pytest.raises(TypeError, match=r"\[quantize\] group_size and bits must be integers"):
        em.quantize(w, group_size=64.0)
