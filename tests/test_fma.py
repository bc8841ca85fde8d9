"""ember.core.fma.fma (the FMA primitive): a * b + c with one rounding.

The float32 oracle is JAX under jit, where XLA fuses the multiply-add into an
fma; float64 is checked against numpy's longdouble, integers wrap as numpy's.
Broadcasting, promotion and the jvp/vjp/vmap rules (called directly) too.
"""
import jax
import numpy as np
import pytest

import ember.core as em
from ember.core._ffi import lib
from ember.core.fma import fma
from ember.core.primitives import Node, rules_of


def test_float32_rounds_once_like_xla(rng):
    a, b, c = (rng.normal(size=(300, 7)).astype(np.float32) for _ in range(3))
    want = np.asarray(jax.jit(lambda a, b, c: a * b + c)(a, b, c))
    got = np.array(fma(em.array(a), em.array(b), em.array(c)))
    np.testing.assert_array_equal(got, want)
    assert not np.array_equal(got, a * b + c)  # separately rounded differs somewhere


def test_float64_and_integers(rng):
    a, b, c = (rng.normal(size=(50,)) for _ in range(3))
    want = (a.astype(np.longdouble) * b + c).astype(np.float64)
    np.testing.assert_allclose(np.array(fma(em.array(a), em.array(b), em.array(c))), want, rtol=1e-15)
    for dt in ("int32", "uint8", "int64"):
        x, y, z = (rng.integers(0, 100, size=(20,)).astype(dt) for _ in range(3))
        got = fma(em.array(x), em.array(y), em.array(z))
        assert got.dtype == getattr(em, dt)
        np.testing.assert_array_equal(np.array(got), (x * y + z).astype(dt))


def test_broadcast_and_promotion(rng):
    a = rng.normal(size=(4, 1)).astype(np.float32)
    b = rng.normal(size=(5,)).astype(np.float16)
    got = fma(em.array(a), em.array(b), 2.0)
    assert got.shape == (4, 5) and got.dtype == em.float32
    # fma rounds once: the oracle is the float64 result rounded to float32
    want = (a.astype(np.float64) * b.astype(np.float64) + 2).astype(np.float32)
    np.testing.assert_allclose(np.array(got), want, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match=r"\[fma\] shapes \(2,\) and \(3,\) cannot be broadcast"):
        fma(em.zeros((2,)), em.zeros((3,)), 1.0)


def node_of(out, inputs):
    return Node(lib.em_prim_of(out._p), inputs, (), (), out)


def test_rules(rng):
    a = em.array(rng.normal(size=(3, 1)).astype(np.float32))
    b = em.array(rng.normal(size=(4,)).astype(np.float32))
    c = em.array(rng.normal(size=()).astype(np.float32))
    out = fma(a, b, c)
    node = node_of(out, [a, b, c])
    r = rules_of(lib.EM_P_FMA)
    ct = em.array(rng.normal(size=(3, 4)).astype(np.float32))
    ga, gb, gc = r.vjp(node, ct)
    np.testing.assert_allclose(np.array(ga), (np.array(ct) * np.array(b)).sum(1, keepdims=True), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.array(gb), (np.array(ct) * np.array(a)).sum(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.array(gc), np.array(ct).sum(), rtol=1e-5, atol=1e-6)
    assert ga.shape == a.shape and gb.shape == b.shape and gc.shape == c.shape
    ta, tc = em.ones((3, 1)), em.ones(())
    t = r.jvp(node, [ta, None, tc])
    np.testing.assert_allclose(np.array(t), np.array(b)[None, :] + 1 + np.zeros((3, 4)), rtol=1e-6)
    assert r.jvp(node, [None, None, None]) is None
    batch_b = em.array(rng.normal(size=(4, 2)).astype(np.float32))  # batch on axis 1
    out, axis = r.vmap(node, [a, batch_b, c], [None, 1, None])
    assert axis == 0 and out.shape == (2, 3, 4)
    for i in range(2):
        np.testing.assert_array_equal(np.array(out)[i], np.array(fma(a, batch_b[:, i], c)))
