"""ember.core.random under the transforms: vmap over a batch of keys, keys as
inputs of compiled functions (no sample baked into the trace), the global key
as compile state, and multivariate_normal against JAX."""
import jax
import numpy as np
import pytest

import ember.core as em


def test_vmap_over_split_keys_equals_per_key_draws_and_jax(rng):
    seed = int(rng.integers(0, 2**31))
    keys = em.random.split(em.random.key(seed), 8)
    batched = em.vmap(lambda k: em.random.normal((3,), key=k))(keys)
    loop = np.stack([np.array(em.random.normal((3,), key=keys[i])) for i in range(8)])
    np.testing.assert_array_equal(np.array(batched), loop)
    jkeys = jax.random.split(jax.random.PRNGKey(seed), 8)
    ref = jax.vmap(lambda k: jax.random.normal(k, (3,)))(jkeys)
    np.testing.assert_allclose(np.array(batched), np.array(ref), rtol=0, atol=1e-6)


def test_vmap_over_keys_for_uniform_bits_and_randint(rng):
    keys = em.random.split(em.random.key(int(rng.integers(0, 2**31))), 5)
    for draw in (lambda k: em.random.uniform(shape=(4,), key=k),
                 lambda k: em.random.bits((2, 3), key=k),
                 lambda k: em.random.randint(0, 10, (6,), key=k),
                 lambda k: em.random.permutation(7, key=k)):
        got = np.array(em.vmap(draw)(keys))
        want = np.stack([np.array(draw(keys[i])) for i in range(5)])
        np.testing.assert_array_equal(got, want)


def test_compiled_sampler_takes_the_key_as_an_input(rng):
    sample = em.compile(lambda k, x: x + em.random.normal(x.shape, key=k))
    x = em.zeros((4,))
    k1, k2 = em.random.split(em.random.key(int(rng.integers(0, 2**31))))
    a, b = np.array(sample(k1, x)), np.array(sample(k2, x))
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, np.array(em.random.normal((4,), key=k1)))
    np.testing.assert_array_equal(b, np.array(em.random.normal((4,), key=k2)))
    assert sample.trace_count == 1


def test_global_key_as_compile_state_draws_fresh_samples():
    draw = em.compile(lambda x: x + em.random.uniform(shape=x.shape),
                      inputs=em.random.state, outputs=em.random.state)
    em.random.seed(3)
    compiled = [np.array(draw(em.zeros((3,)))) for _ in range(3)]
    em.random.seed(3)
    eager = [np.array(em.random.uniform(shape=(3,))) for _ in range(3)]
    for c, e in zip(compiled, eager):
        np.testing.assert_array_equal(c, e)
    assert not np.array_equal(compiled[0], compiled[1])
    assert draw.trace_count == 1


@pytest.mark.parametrize("shape", [None, (5,), (2, 4)])
def test_multivariate_normal_equals_jax(shape, rng):
    a = rng.standard_normal((3, 3)).astype(np.float32)
    cov = a @ a.T + np.eye(3, dtype=np.float32)
    mean = rng.standard_normal(3).astype(np.float32)
    seed = int(rng.integers(0, 2**31))
    got = em.random.multivariate_normal(em.array(mean), em.array(cov), shape,
                                        key=em.random.key(seed))
    want = jax.random.multivariate_normal(jax.random.PRNGKey(seed), mean, cov, shape)
    assert got.shape == want.shape
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-6, atol=1e-6)


def test_multivariate_normal_moments(rng):
    cov = np.array([[2.0, 0.6], [0.6, 1.0]], np.float32)
    mean = np.array([1.0, -2.0], np.float32)
    x = np.array(em.random.multivariate_normal(em.array(mean), em.array(cov), (200_000,),
                                               key=em.random.key(int(rng.integers(0, 2**31)))))
    np.testing.assert_allclose(x.mean(0), mean, atol=0.02)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.03)


def test_multivariate_normal_bad_shapes():
    with pytest.raises(ValueError, match=r"\[random.multivariate_normal\]"):
        em.random.multivariate_normal(em.zeros(3), em.eye(2), key=em.random.key(0))
    with pytest.raises(ValueError, match=r"\[random.multivariate_normal\]"):
        em.random.multivariate_normal(em.zeros((2, 3)), em.eye(3), (4,), key=em.random.key(0))
