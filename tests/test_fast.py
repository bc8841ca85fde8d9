"""ember.core.fast against torch (F.rms_norm, F.layer_norm,
F.scaled_dot_product_attention) and a numpy rope following mlx's definition;
gradients against torch's autograd. The transform rules are also checked by
the registry harness (tests/test_transform_rules.py)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ember.core as em

DTYPES = {"float32": (em.float32, 2e-5), "float64": (em.float64, 1e-12),
          "float16": (em.float16, 2e-2), "bfloat16": (em.bfloat16, 8e-2)}


def _in(x, dtype):
    """x (float64 numpy) as an ember array of dtype, and the float64 values it holds."""
    a = em.array(x).astype(dtype)
    return a, np.array(a.astype(em.float64))


def _out(a):
    return np.array(a.astype(em.float64))


def _t(x):
    return torch.tensor(x, dtype=torch.float64)


# ---- rms_norm and layer_norm ----

@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("shape", [(7,), (3, 5, 16), (2, 1, 33), (4, 300)])
def test_rms_norm_matches_torch(rng, dtype, shape):
    dt, tol = DTYPES[dtype]
    x, xv = _in(rng.standard_normal(shape) * 3, dt)
    w, wv = _in(rng.standard_normal(shape[-1]), dt)
    out = em.fast.rms_norm(x, w, 1e-5)
    assert out.dtype == dt and out.shape == shape
    ref = F.rms_norm(_t(xv), (shape[-1],), _t(wv), 1e-5).numpy()
    np.testing.assert_allclose(_out(out), ref, rtol=tol, atol=tol)
    ref = F.rms_norm(_t(xv), (shape[-1],), None, 0.5).numpy()
    np.testing.assert_allclose(_out(em.fast.rms_norm(x, None, 0.5)), ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("shape", [(9,), (3, 5, 16), (2, 1, 33), (4, 300)])
def test_layer_norm_matches_torch(rng, dtype, shape):
    dt, tol = DTYPES[dtype]
    x, xv = _in(rng.standard_normal(shape) * 2 + 5, dt)
    w, wv = _in(rng.standard_normal(shape[-1]), dt)
    b, bv = _in(rng.standard_normal(shape[-1]), dt)
    d = (shape[-1],)
    out = em.fast.layer_norm(x, w, b, 1e-5)
    assert out.dtype == dt
    np.testing.assert_allclose(_out(out), F.layer_norm(_t(xv), d, _t(wv), _t(bv), 1e-5).numpy(),
                               rtol=tol, atol=tol)
    for weight, bias, tw, tb in [(None, b, None, _t(bv)), (w, None, _t(wv), None),
                                 (None, None, None, None)]:
        np.testing.assert_allclose(_out(em.fast.layer_norm(x, weight, bias, 1e-3)),
                                   F.layer_norm(_t(xv), d, tw, tb, 1e-3).numpy(),
                                   rtol=tol, atol=tol)


def test_norms_of_strided_inputs_and_promotion(rng):
    x = rng.standard_normal((6, 4))
    xt = em.transpose(em.array(x, em.float32))           # (4, 6), not row-major
    xv = x.T.astype(np.float32).astype(np.float64)
    w = rng.standard_normal(6)
    out = em.fast.rms_norm(xt, em.array(w), 1e-6)         # float32 with float64 -> float64
    assert out.dtype == em.float64
    np.testing.assert_allclose(np.array(out), F.rms_norm(_t(xv), (6,), _t(w), 1e-6).numpy(),
                               rtol=1e-12, atol=1e-12)
    ref = F.layer_norm(_t(xv), (6,), None, None, 1e-6).numpy()
    np.testing.assert_allclose(_out(em.fast.layer_norm(xt, None, None, 1e-6)), ref,
                               rtol=2e-5, atol=2e-5)
    ints = em.array(np.arange(12).reshape(3, 4))
    assert em.fast.layer_norm(ints, None, None, 1e-5).dtype == em.float32


def test_norm_gradients_match_torch(rng):
    x, w, b, ct = (rng.standard_normal(s) for s in [(3, 8), (8,), (8,), (3, 8)])

    def ours(fn, *args):
        return em.grad(lambda *a: em.sum(fn(*a) * em.array(ct)), argnums=tuple(range(len(args))))(
            *[em.array(a) for a in args])

    tx, tw, tb = (_t(a).requires_grad_() for a in (x, w, b))
    (F.rms_norm(tx, (8,), tw, 1e-5) * _t(ct)).sum().backward()
    for g, ref in zip(ours(lambda x, w: em.fast.rms_norm(x, w, 1e-5), x, w), (tx, tw)):
        np.testing.assert_allclose(np.array(g), ref.grad.numpy(), rtol=1e-10, atol=1e-12)
    tx, tw, tb = (_t(a).requires_grad_() for a in (x, w, b))
    (F.layer_norm(tx, (8,), tw, tb, 1e-5) * _t(ct)).sum().backward()
    grads = ours(lambda x, w, b: em.fast.layer_norm(x, w, b, 1e-5), x, w, b)
    for g, ref in zip(grads, (tx, tw, tb)):
        np.testing.assert_allclose(np.array(g), ref.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---- rope ----

def _rope_reference(x, dims, traditional, base, scale, offset, freqs=None):
    """mlx.core.fast.rope's definition in numpy (float64)."""
    L = x.shape[-2]
    half = dims // 2
    inv = 1.0 / freqs if freqs is not None else base ** (-np.arange(half) * 2.0 / dims)
    theta = ((np.arange(L) + offset) * scale)[:, None] * inv[None, :]
    c, s = np.cos(theta), np.sin(theta)
    out = x.copy()
    if traditional:
        x1, x2 = x[..., 0:dims:2], x[..., 1:dims:2]
        out[..., 0:dims:2] = x1 * c - x2 * s
        out[..., 1:dims:2] = x1 * s + x2 * c
    else:
        x1, x2 = x[..., :half], x[..., half:dims]
        out[..., :half] = x1 * c - x2 * s
        out[..., half:dims] = x1 * s + x2 * c
    return out


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("traditional", [False, True])
@pytest.mark.parametrize("shape,dims", [((2, 3, 7, 16), 16), ((5, 12), 8), ((1, 2, 9, 10), 6)])
def test_rope_matches_the_reference(rng, dtype, traditional, shape, dims):
    dt, tol = DTYPES[dtype]
    x, xv = _in(rng.standard_normal(shape), dt)
    base, scale, offset = float(rng.choice([10.0, 10000.0])), float(rng.uniform(0.5, 2)), np.int64(3)
    out = em.fast.rope(x, dims, traditional=traditional, base=base, scale=scale, offset=offset)
    assert out.dtype == dt and out.shape == shape
    ref = _rope_reference(xv, dims, traditional, base, scale, offset)
    np.testing.assert_allclose(_out(out), ref, rtol=tol, atol=tol * 2)


def test_rope_with_freqs_and_its_inverse(rng):
    x = rng.standard_normal((2, 5, 8))
    freqs = rng.uniform(1.0, 50.0, 4)
    out = em.fast.rope(em.array(x), 8, traditional=False, base=None, scale=1.5, offset=1,
                       freqs=em.array(freqs))
    np.testing.assert_allclose(np.array(out), _rope_reference(x, 8, False, None, 1.5, 1, freqs),
                               rtol=1e-12, atol=1e-12)
    # a rotation: the vjp (rope with the angles negated) undoes it
    g = em.vjp(lambda a: em.fast.rope(a, 8, traditional=False, base=None, scale=1.5, offset=1,
                                      freqs=em.array(freqs)), [em.array(x)], [out])[1][0]
    np.testing.assert_allclose(np.array(g), x, rtol=1e-12, atol=1e-12)


# rope's frequencies and array offsets (mlx.core.fast.rope as the forward oracle)

def _mlx_rope(x, dims, traditional, scale, offset, freqs):
    import mlx.core as mx
    off = mx.array(offset) if isinstance(offset, np.ndarray) else offset
    return np.array(mx.fast.rope(mx.array(x), dims, traditional=traditional, base=None, scale=scale,
                                 offset=off, freqs=mx.array(freqs)))


@pytest.mark.parametrize("traditional", [False, True])
@pytest.mark.parametrize("offset", ["int", "scalar", "vector"])
def test_rope_array_offsets_and_freqs_match_mlx(rng, traditional, offset):
    x = rng.standard_normal((3, 2, 5, 10)).astype(np.float32)
    freqs = rng.uniform(0.5, 20.0, 3).astype(np.float32)
    off = {"int": int(rng.integers(0, 9)), "scalar": np.array(rng.integers(0, 9), np.int32),
           "vector": rng.integers(0, 9, size=3).astype(np.int32)}[offset]
    ours = em.fast.rope(em.array(x), 6, traditional=traditional, base=None, scale=0.7,
                        offset=em.array(off) if isinstance(off, np.ndarray) else off, freqs=em.array(freqs))
    assert ours.dtype == em.float32
    np.testing.assert_allclose(np.array(ours), _mlx_rope(x, 6, traditional, 0.7, off, freqs),
                               rtol=2e-5, atol=2e-5)
    if offset == "vector":   # each batch entry as rope with its own integer offset
        for b in range(3):
            one = em.fast.rope(em.array(x[b:b + 1]), 6, traditional=traditional, base=None, scale=0.7,
                               offset=int(off[b]), freqs=em.array(freqs))
            np.testing.assert_allclose(np.array(ours)[b:b + 1], np.array(one), rtol=2e-5, atol=2e-5)


def _jax_rope(jnp, x, dims, traditional, scale, offset, freqs):
    half = dims // 2
    positions = (jnp.arange(x.shape[-2]) + jnp.asarray(offset).reshape((-1,) + (1,) * (x.ndim - 2))) * scale
    theta = positions[..., None] / freqs
    c, s = jnp.cos(theta), jnp.sin(theta)
    if traditional:
        x1, x2 = x[..., 0:dims:2], x[..., 1:dims:2]
        y = jnp.stack([x1 * c - x2 * s, x1 * s + x2 * c], -1).reshape(x.shape[:-1] + (dims,))
    else:
        x1, x2 = x[..., :half], x[..., half:dims]
        y = jnp.concatenate([x1 * c - x2 * s, x1 * s + x2 * c], -1)
    return jnp.concatenate([y, x[..., dims:]], -1)


@pytest.mark.parametrize("traditional", [False, True])
@pytest.mark.parametrize("offset", ["int", "vector"])
def test_rope_gradients_in_freqs_match_jax(rng, traditional, offset):
    import jax
    import jax.numpy as jnp
    x = rng.standard_normal((2, 3, 4, 8))
    freqs = rng.uniform(0.5, 5.0, 3)
    weights = rng.standard_normal(x.shape)
    off = 2 if offset == "int" else rng.integers(0, 6, size=2).astype(np.int32)
    em_off = em.array(off) if offset == "vector" else off

    def ours(xx, f):
        y = em.fast.rope(xx, 6, traditional=traditional, base=None, scale=0.8, offset=em_off, freqs=f)
        return em.sum(y * y * y * em.array(weights))

    def ref(xx, f):
        return jnp.sum(_jax_rope(jnp, xx, 6, traditional, 0.8, off, f) ** 3 * weights)

    gx, gf = em.grad(ours, argnums=(0, 1))(em.array(x), em.array(freqs))
    with jax.enable_x64(True):
        rx, rf = jax.grad(ref, argnums=(0, 1))(jnp.asarray(x), jnp.asarray(freqs))
    np.testing.assert_allclose(np.array(gf), np.asarray(rf), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.array(gx), np.asarray(rx), rtol=1e-10, atol=1e-10)
    # float32 inputs: gradients in float32 precision, freqs' in freqs' dtype
    gf32 = em.grad(lambda f: ours(em.array(x.astype(np.float32)), f))(em.array(freqs.astype(np.float32)))
    assert gf32.dtype == em.float32
    np.testing.assert_allclose(np.array(gf32), np.asarray(rf), rtol=1e-4, atol=1e-4 * np.abs(rf).max())


def test_rope_vmap_over_freqs_matches_a_loop(rng):
    x = rng.standard_normal((2, 5, 8))
    freqs = rng.uniform(0.5, 20.0, (4, 3))
    for traditional in (False, True):
        def fn(xx, f):
            return em.fast.rope(xx, 6, traditional=traditional, base=None, scale=1.3, offset=1, freqs=f)
        out = np.array(em.vmap(fn, in_axes=(None, 1))(em.array(x), em.array(freqs.T)))
        loop = np.stack([np.array(fn(em.array(x), em.array(f))) for f in freqs])
        np.testing.assert_allclose(out, loop, rtol=1e-12, atol=1e-12)
        xs = rng.standard_normal((4, 2, 5, 8))
        out = np.array(em.vmap(fn)(em.array(xs), em.array(freqs)))
        loop = np.stack([np.array(fn(em.array(a), em.array(f))) for a, f in zip(xs, freqs)])
        np.testing.assert_allclose(out, loop, rtol=1e-12, atol=1e-12)


# ---- scaled dot-product attention ----

def _torch_sdpa(q, k, v, scale, mask=None, causal=False):
    groups = q.shape[1] // k.shape[1]
    k, v = _t(k).repeat_interleave(groups, 1), _t(v).repeat_interleave(groups, 1)
    m = None if mask is None else torch.tensor(mask) if mask.dtype == bool else _t(mask)
    return F.scaled_dot_product_attention(_t(q), k, v, attn_mask=m, is_causal=causal,
                                          scale=scale).numpy()


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("heads,lq,lk,d,dv", [((2, 2), 5, 5, 8, 8), ((4, 1), 70, 70, 16, 8),
                                             ((6, 3), 13, 33, 8, 12), ((2, 2), 130, 64, 32, 32),
                                             ((2, 1), 300, 520, 8, 8)])  # blocks cut by L2 size
@pytest.mark.parametrize("mask", ["none", "causal", "additive", "bool"])
def test_attention_matches_torch(rng, dtype, heads, lq, lk, d, dv, mask):
    dt, tol = DTYPES[dtype]
    hq, hkv = heads
    q, qv = _in(rng.standard_normal((2, hq, lq, d)), dt)
    k, kv = _in(rng.standard_normal((2, hkv, lk, d)), dt)
    v, vv = _in(rng.standard_normal((2, hkv, lk, dv)), dt)
    scale = 1 / np.sqrt(d)
    if mask == "none":
        out, ref = (em.fast.scaled_dot_product_attention(q, k, v, scale=scale),
                    _torch_sdpa(qv, kv, vv, scale))
    elif mask == "causal":
        # mlx aligns the causal mask at the last key; torch at the first: give torch the mask
        keep = np.arange(lq)[:, None] + (lk - lq) >= np.arange(lk)[None, :]
        out, ref = (em.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask="causal"),
                    _torch_sdpa(qv, kv, vv, scale, mask=keep))
        if lq == lk:
            np.testing.assert_allclose(_torch_sdpa(qv, kv, vv, scale, causal=True), ref, atol=1e-12)
    elif mask == "additive":
        m, mv = _in(rng.standard_normal((hq, 1, lk)), dt)         # broadcasts over batch, queries
        out, ref = (em.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=m),
                    _torch_sdpa(qv, kv, vv, scale, mask=np.broadcast_to(mv, (2, hq, lq, lk))))
    else:
        keep = rng.random((2, 1, lq, lk)) < 0.6
        keep[..., 0] = True                                         # no row fully masked
        out, ref = (em.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=em.array(keep)),
                    _torch_sdpa(qv, kv, vv, scale, mask=np.broadcast_to(keep, (2, hq, lq, lk))))
    assert out.dtype == dt and out.shape == (2, hq, lq, dv)
    np.testing.assert_allclose(_out(out), ref, rtol=tol, atol=tol)


def test_attention_fully_masked_rows_are_zero_like_torch(rng):
    q, k, v = (rng.standard_normal(s) for s in [(1, 1, 3, 4), (1, 1, 5, 4), (1, 1, 5, 4)])
    keep = np.ones((1, 1, 3, 5), bool)
    keep[0, 0, 1] = False
    out = np.array(em.fast.scaled_dot_product_attention(em.array(q), em.array(k), em.array(v),
                                                        scale=0.5, mask=em.array(keep)))
    ref = _torch_sdpa(q, k, v, 0.5, mask=keep)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    assert (out[0, 0, 1] == 0).all() and (out[0, 0, [0, 2]] != 0).all()
    g = em.grad(lambda q: em.sum(em.fast.scaled_dot_product_attention(
        q, em.array(k), em.array(v), scale=0.5, mask=em.array(keep))))(em.array(q))
    assert np.isfinite(np.array(g)).all() and (np.array(g)[0, 0, 1] == 0).all()
    # causal with more queries than keys: the first queries see no key
    q = rng.standard_normal((1, 1, 4, 4))
    out = np.array(em.fast.scaled_dot_product_attention(em.array(q), em.array(k[:, :, :2]),
                                                        em.array(v[:, :, :2]), scale=1.0,
                                                        mask="causal"))
    assert (out[0, 0, :2] == 0).all() and (out[0, 0, 2:] != 0).all()


def test_attention_gradients_match_torch(rng):
    q, k, v = (rng.standard_normal(s) for s in [(2, 4, 6, 8), (2, 2, 7, 8), (2, 2, 7, 5)])
    m = rng.standard_normal((2, 4, 6, 7))
    ct = rng.standard_normal((2, 4, 6, 5))
    grads = em.grad(lambda q, k, v, m: em.sum(em.fast.scaled_dot_product_attention(
        q, k, v, scale=0.3, mask=m) * em.array(ct)), argnums=(0, 1, 2, 3))(
        em.array(q), em.array(k), em.array(v), em.array(m))
    tq, tk, tv, tm = (_t(a).requires_grad_() for a in (q, k, v, m))
    out = F.scaled_dot_product_attention(tq, tk.repeat_interleave(2, 1), tv.repeat_interleave(2, 1),
                                         attn_mask=tm, scale=0.3)
    (out * _t(ct)).sum().backward()
    for g, ref in zip(grads, (tq, tk, tv, tm)):
        np.testing.assert_allclose(np.array(g), ref.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_vmap_folds_into_the_batch(rng):
    q, k, v = (em.array(rng.standard_normal(s)) for s in [(3, 2, 2, 4, 8), (2, 1, 4, 8),
                                                          (3, 2, 1, 4, 8)])
    f = lambda q, k, v: em.fast.scaled_dot_product_attention(q, k, v, scale=0.2, mask="causal")
    out = em.vmap(f, in_axes=(0, None, 0))(q, k, v)
    np.testing.assert_array_equal(np.array(out), np.stack([np.array(f(q[i], k, v[i]))
                                                           for i in range(3)]))
    x = em.array(rng.standard_normal((4, 3, 6)))
    w = em.array(rng.standard_normal((3, 6)))
    out = em.vmap(lambda x, w: em.fast.layer_norm(x, w, None, 1e-5), in_axes=(1, 0))(x, w)
    ref = np.stack([np.array(em.fast.layer_norm(x[:, i], w[i], None, 1e-5)) for i in range(3)])
    np.testing.assert_allclose(np.array(out), ref, rtol=1e-12, atol=1e-12)


# ---- errors ----

def test_errors_name_the_op_and_shapes():
    x = em.ones((2, 4))
    with pytest.raises(ValueError, match=r"\[rms_norm\] weight must be 1-D with the size of x's "
                                         r"last axis, got shape \(3,\) for x of shape \(2, 4\)"):
        em.fast.rms_norm(x, em.ones(3), 1e-5)
    with pytest.raises(ValueError, match=r"\[layer_norm\] bias must be 1-D"):
        em.fast.layer_norm(x, None, em.ones((1, 4)), 1e-5)
    with pytest.raises(ValueError, match=r"\[rms_norm\] expected an array with at least 1 dimension"):
        em.fast.rms_norm(em.array(1.0), None, 1e-5)
    with pytest.raises(TypeError, match=r"\[rms_norm\] complex inputs are not supported"):
        em.fast.rms_norm(em.ones(4, em.complex64), None, 1e-5)
    with pytest.raises(ValueError, match=r"\[rope\] dims must be even"):
        em.fast.rope(x, 3, traditional=False, base=10.0, scale=1.0, offset=0)
    with pytest.raises(ValueError, match=r"\[rope\] dims must be even, positive and at most the "
                                         r"last axis \(4\), got 6"):
        em.fast.rope(x, 6, traditional=False, base=10.0, scale=1.0, offset=0)
    with pytest.raises(ValueError, match=r"\[rope\] expected an array with at least 2 dimensions"):
        em.fast.rope(em.ones(4), 4, traditional=False, base=10.0, scale=1.0, offset=0)
    with pytest.raises(ValueError, match=r"\[rope\] exactly one of base and freqs"):
        em.fast.rope(x, 4, traditional=False, base=10.0, scale=1.0, offset=0, freqs=em.ones(2))
    with pytest.raises(TypeError, match=r"\[rope\] offset must be an integer or an integer array, got float"):
        em.fast.rope(x, 4, traditional=False, base=10.0, scale=1.0, offset=1.5)
    with pytest.raises(TypeError, match=r"\[rope\] offset must be an integer array, got float32"):
        em.fast.rope(x, 4, traditional=False, base=10.0, scale=1.0, offset=em.array(1.5))
    with pytest.raises(ValueError, match=r"\[rope\] offset must be a scalar or a vector .* got shape \(3,\)"):
        em.fast.rope(em.ones((2, 3, 4)), 4, traditional=False, base=10.0, scale=1.0, offset=em.array([1, 2, 3]))
    with pytest.raises(ValueError, match=r"\[rope\] freqs must have shape \(2,\)"):
        em.fast.rope(x, 4, traditional=False, base=None, scale=1.0, offset=0, freqs=em.ones(3))
    q, k = em.ones((1, 3, 4, 8)), em.ones((1, 2, 5, 8))
    sdpa = em.fast.scaled_dot_product_attention
    with pytest.raises(ValueError, match=r"query heads \(3\) must be a multiple of the number "
                                         r"of key/value heads \(2\)"):
        sdpa(q, k, k, scale=1.0)
    with pytest.raises(ValueError, match=r"q, k and v must be 4-D .* got shapes \(4, 8\)"):
        sdpa(em.ones((4, 8)), k, k, scale=1.0)
    with pytest.raises(ValueError, match=r"shapes of q \(1, 2, 4, 8\), k \(1, 2, 5, 8\) and v "
                                         r"\(1, 2, 6, 8\) do not match"):
        sdpa(em.ones((1, 2, 4, 8)), k, em.ones((1, 2, 6, 8)), scale=1.0)
    with pytest.raises(ValueError, match=r"mask of shape \(3, 5\) does not broadcast to the "
                                         r"scores' shape \(1, 2, 4, 5\)"):
        sdpa(em.ones((1, 2, 4, 8)), k, k, scale=1.0, mask=em.ones((3, 5)))
    with pytest.raises(ValueError, match=r"the only string mask is 'causal', got 'full'"):
        sdpa(em.ones((1, 2, 4, 8)), k, k, scale=1.0, mask="full")


def test_empty_shapes(rng):
    sdpa = em.fast.scaled_dot_product_attention
    # no keys: no key survives, so every query gives 0
    out = sdpa(em.ones((1, 2, 3, 4)), em.ones((1, 1, 0, 4)), em.ones((1, 1, 0, 5)), scale=1.0)
    np.testing.assert_array_equal(np.array(out), np.zeros((1, 2, 3, 5), np.float32))
    # an empty head dimension scores 0 everywhere: uniform weights, the mean of v
    v = rng.standard_normal((1, 1, 4, 5))
    out = sdpa(em.zeros((1, 2, 3, 0), em.float64), em.zeros((1, 1, 4, 0), em.float64), em.array(v),
               scale=1.0)
    np.testing.assert_allclose(np.array(out), np.broadcast_to(v.mean(axis=2, keepdims=True),
                                                              (1, 2, 3, 5)), rtol=1e-12)
    assert em.fast.rms_norm(em.ones((0, 4)), None, 1e-5).shape == (0, 4)
    assert em.fast.layer_norm(em.ones((3, 0)), None, None, 1e-5).shape == (3, 0)
    rope = em.fast.rope(em.ones((2, 0, 4)), 4, traditional=True, base=10.0, scale=1.0, offset=0)
    assert rope.shape == (2, 0, 4)


def test_compiled_attention_matches(rng):
    q = em.array(rng.standard_normal((1, 2, 5, 4)))
    f = lambda q: em.fast.scaled_dot_product_attention(q, q, q, scale=0.5, mask="causal")
    np.testing.assert_array_equal(np.array(em.compile(f)(q)), np.array(f(q)))


# attention sinks (mlx.core.fast's forward as the oracle): one more logit per head in
# the kernel's softmax; gradients against float64 finite differences

def _sink_masks(rng, kind):
    if kind == "bool":
        m = rng.random((2, 1, 3, 6)) > 0.5
        m[0, 0, 1] = False   # a row with every key masked: the sink takes all the weight
        return m
    return {"none": None, "causal": "causal",
            "additive": rng.standard_normal((3, 6))}[kind]


@pytest.mark.parametrize("mask", ["none", "causal", "bool", "additive"])
def test_attention_sinks_match_mlx(rng, mask):
    import mlx.core as mx
    q = rng.standard_normal((2, 4, 3, 5)).astype(np.float32)
    k = rng.standard_normal((2, 2, 6, 5)).astype(np.float32)
    v = rng.standard_normal((2, 2, 6, 4)).astype(np.float32)
    sinks = rng.standard_normal(4).astype(np.float32)
    m = _sink_masks(rng, mask)
    if isinstance(m, np.ndarray) and m.dtype != bool:
        m = m.astype(np.float32)
    wrap = lambda lib, x: x if x is None or isinstance(x, str) else lib.array(x)
    ours = em.fast.scaled_dot_product_attention(em.array(q), em.array(k), em.array(v), scale=0.4,
                                                mask=wrap(em, m), sinks=em.array(sinks))
    ref = mx.fast.scaled_dot_product_attention(mx.array(q), mx.array(k), mx.array(v), scale=0.4,
                                               mask=wrap(mx, m), sinks=mx.array(sinks))
    assert ours.dtype == em.float32 and ours.shape == (2, 4, 3, 4)
    np.testing.assert_allclose(np.array(ours), np.array(ref), rtol=2e-5, atol=2e-5)


def _numpy_sinks(q, k, v, scale, sinks):
    groups = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, groups, 1), np.repeat(v, groups, 1)
    s = q @ np.swapaxes(k, -1, -2) * scale
    s = np.concatenate([s, np.broadcast_to(sinks[None, :, None, None], s.shape[:3] + (1,))], -1)
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True))[..., :-1] @ v


def test_attention_sink_gradients_match_finite_differences(rng):
    q, k, v = (rng.standard_normal(s) for s in ((1, 4, 3, 2), (1, 2, 5, 2), (1, 2, 5, 3)))
    sinks = rng.standard_normal(4)
    w = rng.standard_normal((1, 4, 3, 3))

    def loss_np(*xs):
        return np.sum(_numpy_sinks(*xs[:3], 0.6, xs[3]) ** 2 * w)

    def loss(qq, kk, vv, ss):
        out = em.fast.scaled_dot_product_attention(qq, kk, vv, scale=0.6, sinks=ss)
        return em.sum(out * out * em.array(w))

    xs = [q, k, v, sinks]
    grads = em.grad(loss, argnums=(0, 1, 2, 3))(*(em.array(x) for x in xs))
    eps = 1e-6
    for i, (x, g) in enumerate(zip(xs, grads)):
        fd = np.zeros(x.shape)
        for index in np.ndindex(x.shape):
            plus, minus = [y.copy() for y in xs], [y.copy() for y in xs]
            plus[i][index] += eps
            minus[i][index] -= eps
            fd[index] = (loss_np(*plus) - loss_np(*minus)) / (2 * eps)
        np.testing.assert_allclose(np.array(g), fd, rtol=1e-6, atol=1e-8)
    # vmap over the sinks (one set per batch entry) against a loop
    batch = rng.standard_normal((3, 4))
    out = em.vmap(lambda s: em.fast.scaled_dot_product_attention(
        em.array(q), em.array(k), em.array(v), scale=0.6, sinks=s))(em.array(batch))
    for b in range(3):
        np.testing.assert_allclose(np.array(out)[b], _numpy_sinks(q, k, v, 0.6, batch[b]), rtol=1e-12,
                                   atol=1e-12)


def test_attention_sinks_vmap_matches_a_loop(rng):
    q = rng.standard_normal((3, 2, 4, 5, 2))
    k, v = rng.standard_normal((2, 2, 6, 2)), rng.standard_normal((2, 2, 6, 3))
    mask = rng.standard_normal((5, 6))
    sinks = rng.standard_normal((3, 4))

    def fn(qq, ss):
        return em.fast.scaled_dot_product_attention(qq, em.array(k), em.array(v), scale=0.5,
                                                    mask=em.array(mask), sinks=ss)

    for in_axes in [(0, 0), (0, None), (None, 1)]:
        qs = em.array(q) if in_axes[0] == 0 else em.array(q[0])
        ss = em.array(sinks if in_axes[1] == 0 else sinks.T) if in_axes[1] is not None \
            else em.array(sinks[0])
        out = np.array(em.vmap(fn, in_axes=in_axes)(qs, ss))
        loop = np.stack([np.array(fn(em.array(q[i] if in_axes[0] == 0 else q[0]),
                                     em.array(sinks[i] if in_axes[1] is not None else sinks[0])))
                         for i in range(3)])
        np.testing.assert_allclose(out, loop, rtol=1e-12, atol=1e-12)


def test_attention_sinks_errors():
    q = em.ones((1, 4, 2, 3))
    with pytest.raises(ValueError, match=r"\[scaled_dot_product_attention\] sinks must have one entry "
                                         r"per query head, shape \(4,\), got \(2, 4\)"):
        em.fast.scaled_dot_product_attention(q, q, q, scale=1.0, sinks=em.ones((2, 4)))
    with pytest.raises(TypeError, match=r"sinks must be floating point, got int32"):
        em.fast.scaled_dot_product_attention(q, q, q, scale=1.0, sinks=em.array([1, 2, 3, 4]))
    with pytest.raises(ValueError, match=r"mask of shape \(3, 3\) does not broadcast"):
        em.fast.scaled_dot_product_attention(q, q, q, scale=1.0, mask=em.ones((3, 3)), sinks=em.ones(4))


# ---- one-pass softmax and logsumexp (core.softmax, core.logsumexp) ----

@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("shape,axis", [((7,), 0), ((3, 5, 16), -1), ((4, 9, 3), 1),
                                        ((2, 300), 0), ((3, 4, 5), None), ((3, 4, 5), (0, 2))])
def test_softmax_and_logsumexp_match_scipy(rng, dtype, shape, axis):
    from scipy.special import logsumexp, softmax
    dt, tol = DTYPES[dtype]
    x, xv = _in(rng.standard_normal(shape) * 4, dt)
    out = em.softmax(x, axis=axis)
    assert out.dtype == dt
    np.testing.assert_allclose(_out(out), softmax(xv, axis=axis), rtol=tol, atol=tol)
    for keepdims in (False, True):
        out = em.logsumexp(x, axis=axis, keepdims=keepdims)
        assert out.dtype == dt
        ref = logsumexp(xv, axis=axis, keepdims=keepdims)
        assert out.shape == np.shape(ref)
        np.testing.assert_allclose(_out(out), ref, rtol=tol, atol=tol * 4)


def test_softmax_and_logsumexp_edge_values():
    inf = np.inf
    x = em.array([[-inf, -inf, -inf], [inf, 1.0, 2.0], [-inf, 0.0, 0.0], [1e30, 1e30, -1e30]])
    np.testing.assert_array_equal(np.array(em.logsumexp(x, axis=1)),
                                  np.array([-inf, inf, np.log(2), 1e30 + np.log(2)], np.float32))
    p = np.array(em.softmax(x, axis=1))
    assert np.isnan(p[0]).all() and np.isnan(p[1, 0]) and (p[1, 1:] == 0).all()
    np.testing.assert_array_equal(p[2:], [[0, 0.5, 0.5], [0.5, 0.5, 0]])
    assert np.array(em.logsumexp(em.zeros((0, 3)), axis=0)).tolist() == [-inf] * 3
    assert em.softmax(em.array([1, 2, 3])).dtype == em.float32
