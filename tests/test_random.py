"""ember.core.random against JAX (the oracle for keys and samples) and scipy.stats.

JAX runs with its defaults (jax_threefry_partitionable=True, 32-bit types).
Keys, split, fold_in, bits, uniform, bernoulli, randint, categorical,
permutation, laplace and gumbel must equal JAX's exactly, in float16,
bfloat16 and float32 (multivariate_normal within float32 rounding); normal and
truncated_normal within 2 ulp, the bound the issue sets (they are equal on
x86 with FMA, where this was written).
64-bit types are compared with JAX in x64 mode in a child process. Every
distribution also passes a Kolmogorov-Smirnov or chi-square test on 200k
samples with a fresh seed, and the transform rules of the new primitives are
checked by calling them directly.
"""
import math

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from scipy import stats

import ember.core as em
from ember.core._ffi import lib
from ember.core.primitives import Node, rules_of

JAX_FLOAT = {"float16": jnp.float16, "bfloat16": jnp.bfloat16, "float32": jnp.float32}
HALF_AND_SINGLE = ["float16", "bfloat16", "float32"]
SHAPES = [(), (0,), (1,), (7,), (3, 5), (2, 0, 3), (2, 3, 4), (1001,)]
P_MIN = 1e-4  # statistical tests fail with probability P_MIN per run


def raw_keys(rng, n):
    return [rng.integers(0, 2**32, size=2, dtype=np.uint32) for _ in range(n)]


def as_bits(x):
    """Values of an ember or numpy float array as unsigned integers (bfloat16 kept)."""
    if isinstance(x, em.array):
        return np.array(x.view({2: em.uint16, 4: em.uint32, 8: em.uint64}[x.itemsize]))
    x = np.asarray(x)
    return x.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[x.itemsize])


def ulp_distance(a, b):
    """Distance in units in the last place between float arrays of one dtype."""
    ai, bi = as_bits(a).astype(np.int64), as_bits(b).astype(np.int64)
    sign = 1 << (8 * np.asarray(b).itemsize - 1)
    ai = np.where(ai & sign, -(ai & (sign - 1)), ai)
    bi = np.where(bi & sign, -(bi & (sign - 1)), bi)
    return np.abs(ai - bi)


def to_numpy(x):
    if x.dtype == em.bfloat16:
        return as_bits(x).view(ml_dtypes.bfloat16)
    return np.array(x)


# ---- keys ----

def test_key_matches_jax(rng):
    for s in list(rng.integers(0, 2**31, size=20)) + [0, 1, 2**31 - 1, -1, -(2**31), -12345]:
        got = np.array(em.random.key(int(s)))
        want = np.asarray(jax.random.PRNGKey(int(s)))
        np.testing.assert_array_equal(got, want)
        assert em.random.key(int(s)).dtype == em.uint32


def test_key_of_64_bit_seed(rng):
    for s in rng.integers(0, 2**63, size=10, dtype=np.int64).tolist() + [2**64 - 1]:
        np.testing.assert_array_equal(np.array(em.random.key(s)), [s >> 32, s & 0xFFFFFFFF])


def test_split_matches_jax(rng):
    for k in raw_keys(rng, 10):
        for num in (0, 1, 2, 3, 7, 100):
            got = em.random.split(em.array(k), num)
            assert got.shape == (num, 2) and got.dtype == em.uint32
            np.testing.assert_array_equal(np.array(got), np.asarray(jax.random.split(k, num)))
    np.testing.assert_array_equal(np.array(em.random.split(em.array(k))),
                                  np.asarray(jax.random.split(k)))


def test_fold_in_matches_jax(rng):
    for k in raw_keys(rng, 10):
        for d in [0, 1, 2**32 - 1] + rng.integers(0, 2**32, size=5).tolist():
            want = np.asarray(jax.random.fold_in(k, np.uint32(d)))
            np.testing.assert_array_equal(np.array(em.random.fold_in(em.array(k), d)), want)
            np.testing.assert_array_equal(
                np.array(em.random.fold_in(em.array(k), em.array(d, em.uint32))), want)


def test_split_is_not_a_view_of_the_key(rng):
    k = em.array(raw_keys(rng, 1)[0])
    a, b = em.random.split(k)
    assert not np.array_equal(np.array(a), np.array(b))
    assert not np.array_equal(np.array(a), np.array(k))


# ---- bits ----

@pytest.mark.parametrize("width,dtype", [(1, jnp.uint8), (2, jnp.uint16), (4, jnp.uint32)])
def test_bits_match_jax(rng, width, dtype):
    for k in raw_keys(rng, 3):
        for shape in SHAPES + [(300_000,)]:
            got = em.random.bits(shape, width, key=em.array(k))
            assert got.shape == shape and got.itemsize == width
            np.testing.assert_array_equal(np.array(got), np.asarray(jax.random.bits(k, shape, dtype)))


def test_bits_64_are_the_two_hash_words(rng):
    # JAX's 64-bit bits are y0 << 32 | y1 and its 32-bit bits y0 ^ y1 (x64 is off).
    for k in raw_keys(rng, 3):
        b64 = np.array(em.random.bits((5, 9), 8, key=em.array(k)))
        assert b64.dtype == np.uint64
        folded = (b64 >> np.uint64(32)) ^ (b64 & np.uint64(0xFFFFFFFF))
        np.testing.assert_array_equal(folded, np.asarray(jax.random.bits(k, (5, 9), jnp.uint32)))


X64_CHECK = """
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp, numpy as np
import ember.core as em
k = np.array([{k0}, {k1}], np.uint32)
K = em.array(k)
assert np.array_equal(np.array(em.random.bits((999,), 8, key=K)), jax.random.bits(k, (999,), jnp.uint64))
for lo, hi in [(0, 1), (-2.5, 7.25)]:
    got = em.random.uniform(lo, hi, (999,), em.float64, key=K)
    assert np.array_equal(np.array(got), jax.random.uniform(k, (999,), jnp.float64, lo, hi))
for lo, hi in [(-5, 17), (0, 2**40), (-2**62, 2**62)]:
    got = em.random.randint(lo, hi, (999,), em.int64, key=K)
    assert np.array_equal(np.array(got), jax.random.randint(k, (999,), lo, hi, jnp.int64))
z = np.array(em.random.normal((999,), em.float64, key=K))
# erfinv near +-1 magnifies the last bits of u: tail samples (|z| > 4) agree to ~5e-13
np.testing.assert_allclose(z, jax.random.normal(k, (999,), jnp.float64), rtol=1e-11, atol=1e-15)
"""


def test_64_bit_types_match_jax_with_x64(rng):
    # jax_enable_x64 is process-wide, so JAX's 64-bit samplers run in a child.
    import subprocess
    import sys
    k0, k1 = raw_keys(rng, 1)[0].tolist()
    subprocess.run([sys.executable, "-c", X64_CHECK.format(k0=k0, k1=k1)], check=True)


def test_bits_of_a_batch_of_keys_are_per_key(rng):
    keys = np.stack(raw_keys(rng, 4))
    batched = _random_node(em.array(keys), lib.EM_RANDOM_BITS, em.uint32, (3, 5))
    assert batched.shape == (4, 3, 5)
    for i, k in enumerate(keys):
        np.testing.assert_array_equal(np.array(batched)[i],
                                      np.asarray(jax.random.bits(k, (3, 5), jnp.uint32)))


def _random_node(keys, kind, dtype, shape):
    from ember.core.array import _op
    return _op(lib.EM_P_RANDOM, [keys], (kind, dtype.value, *shape))


# ---- uniform, normal, truncated_normal ----

@pytest.mark.parametrize("dtype", HALF_AND_SINGLE)
def test_uniform_matches_jax(rng, dtype):
    for k in raw_keys(rng, 3):
        for shape in SHAPES:
            got = em.random.uniform(shape=shape, dtype=getattr(em, dtype), key=em.array(k))
            want = jax.random.uniform(k, shape, JAX_FLOAT[dtype])
            assert got.shape == shape and got.dtype == getattr(em, dtype)
            np.testing.assert_array_equal(as_bits(got), as_bits(want))
        low, high = sorted(rng.uniform(-10, 10, size=2).tolist())
        got = em.random.uniform(low, high, (50, 40), getattr(em, dtype), key=em.array(k))
        want = jax.random.uniform(k, (50, 40), JAX_FLOAT[dtype], low, high)
        np.testing.assert_array_equal(as_bits(got), as_bits(want))


def test_uniform_with_array_bounds_matches_jax(rng):
    k = raw_keys(rng, 1)[0]
    low = rng.uniform(-5, 0, size=(6, 1)).astype(np.float32)
    high = rng.uniform(1, 5, size=(9,)).astype(np.float32)
    got = em.random.uniform(em.array(low), em.array(high), (6, 9), key=em.array(k))
    want = jax.random.uniform(k, (6, 9), jnp.float32, low, high)
    np.testing.assert_array_equal(as_bits(got), as_bits(want))


@pytest.mark.parametrize("dtype", HALF_AND_SINGLE)
def test_normal_within_2_ulp_of_jax(rng, dtype):
    for k in raw_keys(rng, 3):
        for shape in SHAPES + [(200_000,)]:
            got = em.random.normal(shape, getattr(em, dtype), key=em.array(k))
            want = jax.random.normal(k, shape, JAX_FLOAT[dtype])
            assert got.shape == shape and got.dtype == getattr(em, dtype)
            if got.size:
                assert ulp_distance(got, want).max() <= 2


def test_normal_loc_scale_as_mlx(rng):
    # mlx scales then shifts, rounding after each step.
    k = raw_keys(rng, 1)[0]
    loc, scale = np.float32(rng.uniform(-3, 3)), np.float32(rng.uniform(0.1, 4))
    z = np.asarray(jax.random.normal(k, (1000,)))
    got = em.random.normal((1000,), loc=float(loc), scale=float(scale), key=em.array(k))
    np.testing.assert_array_equal(np.array(got), z * scale + loc)
    got = em.random.normal((1000,), scale=float(scale), key=em.array(k))
    np.testing.assert_array_equal(np.array(got), z * scale)
    got = em.random.normal((1000,), loc=em.array(loc), key=em.array(k))
    np.testing.assert_array_equal(np.array(got), z + loc)


@pytest.mark.parametrize("dtype", HALF_AND_SINGLE)
def test_truncated_normal_within_2_ulp_of_jax(rng, dtype):
    # The last bounds put upper / sqrt(2) where XLA's erf of a scalar is
    # already 1 and its vectorised erf is not.
    bounds = [(lo, lo + float(rng.uniform(0.05, 5))) for lo in rng.uniform(-3, 1, size=8)]
    bounds += [(float(rng.uniform(-1, 1)), float(rng.uniform(5.3, 5.41))) for _ in range(2)]
    for k, (lo, hi) in zip(raw_keys(rng, len(bounds)), bounds):
        for shape in [(), (0,), (7,), (30, 40)]:
            got = em.random.truncated_normal(lo, hi, shape, getattr(em, dtype), key=em.array(k))
            want = jax.random.truncated_normal(k, lo, hi, shape, JAX_FLOAT[dtype])
            if got.size:
                assert ulp_distance(got, want).max() <= 2
            values = to_numpy(got).astype(np.float64)
            assert np.all((values > lo - 1e-2) & (values < hi + 1e-2))


def test_truncated_normal_array_bounds_and_default_shape(rng):
    k = raw_keys(rng, 1)[0]
    lower = rng.uniform(-2, 0, size=(4, 1)).astype(np.float32)
    upper = rng.uniform(0.5, 3, size=(5,)).astype(np.float32)
    got = em.random.truncated_normal(em.array(lower), em.array(upper), key=em.array(k))
    want = jax.random.truncated_normal(k, lower, upper)
    assert got.shape == (4, 5)
    assert ulp_distance(got, want).max() <= 2


# ---- discrete samplers ----

def test_bernoulli_matches_jax(rng):
    for k in raw_keys(rng, 3):
        p = float(rng.uniform())
        for shape in [(), (0,), (9,), (20, 30)]:
            got = em.random.bernoulli(p, shape, key=em.array(k))
            assert got.dtype == em.bool_ and got.shape == shape
            np.testing.assert_array_equal(np.array(got), np.asarray(jax.random.bernoulli(k, p, shape)))
        parr = rng.uniform(size=(6,)).astype(np.float32)
        got = em.random.bernoulli(em.array(parr), (4, 6), key=em.array(k))
        np.testing.assert_array_equal(np.array(got), np.asarray(jax.random.bernoulli(k, parr, (4, 6))))
        got = em.random.bernoulli(em.array(parr), key=em.array(k))
        np.testing.assert_array_equal(np.array(got), np.asarray(jax.random.bernoulli(k, parr)))


RANDINT_CASES = [("int32", -5, 17), ("int32", 0, 2**31 - 1), ("int32", -(2**31), 2**31 - 1),
                 ("int8", -100, 120), ("int16", 3, 9), ("uint8", 0, 256), ("uint8", 10, 11),
                 ("uint16", 7, 60000), ("uint32", 5, 2**31 - 1), ("int32", -1000000, 1000)]


@pytest.mark.parametrize("dtype,low,high", RANDINT_CASES)
def test_randint_matches_jax(rng, dtype, low, high):
    for k in raw_keys(rng, 3):
        for shape in [(), (0,), (13,), (25, 40)]:
            got = em.random.randint(low, high, shape, getattr(em, dtype), key=em.array(k))
            want = jax.random.randint(k, shape, low, high, getattr(jnp, dtype))
            assert got.dtype == getattr(em, dtype) and got.shape == shape
            np.testing.assert_array_equal(np.array(got), np.asarray(want))


def test_randint_array_bounds_match_jax(rng):
    k = raw_keys(rng, 1)[0]
    low = rng.integers(-50, 0, size=(3, 1)).astype(np.int32)
    high = rng.integers(1, 80, size=(7,)).astype(np.int32)
    got = em.random.randint(em.array(low), em.array(high), (3, 7), key=em.array(k))
    np.testing.assert_array_equal(np.array(got), np.asarray(jax.random.randint(k, (3, 7), low, high)))


def test_categorical_matches_jax(rng):
    for k in raw_keys(rng, 3):
        logits = rng.normal(size=(6, 11)).astype(np.float32) * 2
        for axis in (-1, 0, 1):
            got = em.random.categorical(em.array(logits), axis, key=em.array(k))
            want = jax.random.categorical(k, logits, axis)
            np.testing.assert_array_equal(np.array(got), np.asarray(want))
        got = em.random.categorical(em.array(logits), shape=(4, 6), key=em.array(k))
        np.testing.assert_array_equal(
            np.array(got), np.asarray(jax.random.categorical(k, logits, shape=(4, 6))))
        got = em.random.categorical(em.array(logits), num_samples=5, key=em.array(k))
        assert got.shape == (6, 5)
        want = jax.random.categorical(k, logits, shape=(5, 6))
        np.testing.assert_array_equal(np.array(got), np.asarray(want).T)


@pytest.mark.parametrize("dtype", HALF_AND_SINGLE)
def test_categorical_of_each_float_type_matches_jax(rng, dtype):
    for k in raw_keys(rng, 4):
        logits = rng.normal(size=(5, 23)).astype(np.float32) * 3
        got = em.random.categorical(em.array(logits).astype(getattr(em, dtype)), key=em.array(k))
        want = jax.random.categorical(k, jnp.asarray(logits).astype(JAX_FLOAT[dtype]))
        np.testing.assert_array_equal(np.array(got), np.asarray(want))


def test_gumbel_float16_matches_jax_on_many_samples(rng):
    # float16 keeps tiny (2**-14) beside small uniforms: the case XLA's
    # constant folding changes.
    k = raw_keys(rng, 1)[0]
    got = em.random.gumbel((300_001,), em.float16, key=em.array(k))
    np.testing.assert_array_equal(as_bits(got), as_bits(jax.random.gumbel(k, (300_001,), jnp.float16)))


def test_multivariate_normal_close_to_jax(rng):
    # The same normals and Cholesky factor as JAX; XLA's product and sum of
    # the mean round a few samples differently (it changes strategy with the
    # shapes), so the oracle bound is float32 rounding of the result.
    for k in raw_keys(rng, 4):
        for n in (1, 2, 3, 5):
            a = rng.normal(size=(n, n))
            cov = (a @ a.T + n * np.eye(n)).astype(np.float32)
            mean = rng.normal(size=(3, n)).astype(np.float32)
            for shape in [None, (2, 3), (4, 5, 3)]:
                got = em.random.multivariate_normal(em.array(mean), em.array(cov), shape, key=em.array(k))
                want = jax.random.multivariate_normal(k, mean, cov, shape)
                assert got.shape == want.shape
                np.testing.assert_allclose(np.array(got), np.asarray(want), rtol=1e-5, atol=1e-6)


def test_multivariate_normal_of_one_dimension_equals_jax(rng):
    # With n = 1 XLA reassociates and fuses the product; ember rounds alike.
    for k in raw_keys(rng, 4):
        cov = np.float32([[rng.uniform(0.1, 5)]])
        mean = rng.normal(size=(1,)).astype(np.float32)
        for shape in [(7,), (3, 4)]:
            got = em.random.multivariate_normal(em.array(mean), em.array(cov), shape, key=em.array(k))
            np.testing.assert_array_equal(
                np.array(got), np.asarray(jax.random.multivariate_normal(k, mean, cov, shape)))


def test_multivariate_normal_batched_covariance_close_to_jax(rng):
    k = raw_keys(rng, 1)[0]
    for n in (1, 3):
        a = rng.normal(size=(4, n, n))
        cov = (a @ a.transpose(0, 2, 1) + n * np.eye(n)).astype(np.float32)
        mean = rng.normal(size=(n,)).astype(np.float32)
        got = em.random.multivariate_normal(em.array(mean), em.array(cov), key=em.array(k))
        want = np.asarray(jax.random.multivariate_normal(k, mean, cov))
        np.testing.assert_allclose(np.array(got), want, rtol=1e-5, atol=1e-6)


def test_permutation_matches_jax(rng):
    for k in raw_keys(rng, 3):
        # 2000 and more elements need two sorting rounds, 5 and 100 one.
        for n in (0, 1, 5, 100, 2000, 70001):
            got = em.random.permutation(n, key=em.array(k))
            np.testing.assert_array_equal(np.array(got), np.asarray(jax.random.permutation(k, n)))
        x = rng.normal(size=(7, 9)).astype(np.float32)
        for axis in (0, 1, -1):
            got = em.random.permutation(em.array(x), axis, key=em.array(k))
            np.testing.assert_array_equal(np.array(got), np.asarray(jax.random.permutation(k, x, axis)))


@pytest.mark.parametrize("dtype", HALF_AND_SINGLE)
def test_gumbel_and_laplace_match_jax(rng, dtype):
    for k in raw_keys(rng, 3):
        for shape in [(), (0,), (9,), (40, 50)]:
            lp = em.random.laplace(shape, getattr(em, dtype), key=em.array(k))
            np.testing.assert_array_equal(as_bits(lp), as_bits(jax.random.laplace(k, shape, JAX_FLOAT[dtype])))
            g = em.random.gumbel(shape, getattr(em, dtype), key=em.array(k))
            want = jax.random.gumbel(k, shape, JAX_FLOAT[dtype])
            np.testing.assert_array_equal(as_bits(g), as_bits(want))


# ---- statistics ----

N = 200_000


def fresh_key(rng):
    return em.random.key(int(rng.integers(0, 2**63)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_uniform_and_normal_statistics(rng, dtype):
    dt = getattr(em, dtype)
    u = np.array(em.random.uniform(-2.0, 3.0, (N,), dt, key=fresh_key(rng))).astype(np.float64)
    assert u.min() >= -2 and u.max() < 3
    assert stats.kstest(u, stats.uniform(-2, 5).cdf).pvalue > P_MIN
    z = np.array(em.random.normal((N,), dt, loc=1.5, scale=2.0, key=fresh_key(rng)))
    assert stats.kstest(z.astype(np.float64), stats.norm(1.5, 2.0).cdf).pvalue > P_MIN
    assert abs(z.mean() - 1.5) < 5 * 2 / math.sqrt(N) and abs(z.std() - 2) < 0.02


def test_normal_half_statistics(rng):
    # Half types draw u from few bits (10 for float16, 7 for bfloat16), so the
    # samples take 2**bits equally likely values; their mean is not quite 0.
    from scipy.special import erfinv
    for dt, bits, lo in ((em.float16, 10, -1 + 2.0**-11), (em.bfloat16, 7, -1 + 2.0**-8)):
        u = np.maximum(lo, np.arange(2**bits) / 2**bits * 2 + lo)
        support = math.sqrt(2) * erfinv(u)
        z = to_numpy(em.random.normal((N,), dt, key=fresh_key(rng))).astype(np.float64)
        assert abs(z.mean() - support.mean()) < 5 * support.std() / math.sqrt(N)
        assert abs(z.std() - support.std()) < 0.02


def test_truncated_normal_statistics(rng):
    lo, hi = -0.7, 1.9
    x = np.array(em.random.truncated_normal(lo, hi, (N,), key=fresh_key(rng))).astype(np.float64)
    assert x.min() > lo and x.max() < hi
    assert stats.kstest(x, stats.truncnorm(lo, hi).cdf).pvalue > P_MIN


def test_gumbel_and_laplace_statistics(rng):
    g = np.array(em.random.gumbel((N,), key=fresh_key(rng))).astype(np.float64)
    assert stats.kstest(g, stats.gumbel_r.cdf).pvalue > P_MIN
    x = np.array(em.random.laplace((N,), loc=0.5, scale=3.0, key=fresh_key(rng))).astype(np.float64)
    assert stats.kstest(x, stats.laplace(0.5, 3.0).cdf).pvalue > P_MIN


def test_bernoulli_statistics(rng):
    p = float(rng.uniform(0.1, 0.9))
    x = np.array(em.random.bernoulli(p, (N,), key=fresh_key(rng)))
    assert stats.binomtest(int(x.sum()), N, p).pvalue > P_MIN


def test_randint_statistics(rng):
    x = np.array(em.random.randint(-3, 9, (N,), key=fresh_key(rng)))
    assert x.min() == -3 and x.max() == 8
    counts = np.bincount(x + 3, minlength=12)
    assert stats.chisquare(counts).pvalue > P_MIN
    for dtype in ("int64", "uint64"):
        y = np.array(em.random.randint(0, 10, (N,), getattr(em, dtype), key=fresh_key(rng)))
        assert y.dtype == np.dtype(dtype)
        assert stats.chisquare(np.bincount(y.astype(np.int64), minlength=10)).pvalue > P_MIN


def test_categorical_statistics(rng):
    logits = rng.normal(size=5).astype(np.float32)
    x = np.array(em.random.categorical(em.array(logits), num_samples=N, key=fresh_key(rng)))
    p = np.exp(logits.astype(np.float64) - logits.max())
    p /= p.sum()
    assert stats.chisquare(np.bincount(x, minlength=5), N * p).pvalue > P_MIN


def test_permutation_statistics(rng):
    # Where element 0 lands over many permutations of 6 is uniform.
    key = fresh_key(rng)
    keys = em.random.split(key, 3000)
    positions = [int(np.argmax(np.array(em.random.permutation(6, key=keys[i])) == 0))
                 for i in range(3000)]
    assert stats.chisquare(np.bincount(positions, minlength=6)).pvalue > P_MIN
    perm = np.array(em.random.permutation(1000, key=key))
    np.testing.assert_array_equal(np.sort(perm), np.arange(1000))


# ---- the global key ----

def test_seed_makes_draws_reproducible():
    em.random.seed(42)
    a = np.array(em.random.uniform(shape=(5,)))
    b = np.array(em.random.uniform(shape=(5,)))
    em.random.seed(42)
    np.testing.assert_array_equal(np.array(em.random.uniform(shape=(5,))), a)
    np.testing.assert_array_equal(np.array(em.random.uniform(shape=(5,))), b)
    assert not np.array_equal(a, b)
    # Each draw splits the state: keep the first half, draw with the second.
    state = em.random.key(42)
    first = em.random.split(state)
    np.testing.assert_array_equal(a, np.array(em.random.uniform(shape=(5,), key=first[1])))
    second = em.random.split(first[0])
    np.testing.assert_array_equal(b, np.array(em.random.uniform(shape=(5,), key=second[1])))


def test_stream_keyword():
    k = em.random.key(3)
    a = em.random.normal((4,), key=k, stream=em.cpu)
    np.testing.assert_array_equal(np.array(a), np.array(em.random.normal((4,), key=k)))
    assert em.random.split(k, stream=em.cpu).shape == (2, 2)


# ---- bad arguments ----

def test_bad_keys():
    with pytest.raises(TypeError, match=r"\[random.normal\] key must be a uint32 array"):
        em.random.normal((2,), key=em.array([1, 2]))
    with pytest.raises(ValueError, match=r"\[random.uniform\] key must have shape \(2,\), got \(3,\)"):
        em.random.uniform(key=em.array([1, 2, 3], em.uint32))
    with pytest.raises(TypeError, match=r"\[random.split\] key must be an ember array"):
        em.random.split([1, 2])
    with pytest.raises(TypeError, match=r"\[random.split\] needs a key"):
        em.random.split(None)
    with pytest.raises(TypeError, match=r"\[random.key\] seed must be an integer"):
        em.random.key(1.5)
    with pytest.raises(ValueError, match=r"\[random.key\] seed"):
        em.random.key(2**64)


def test_bad_arguments():
    k = em.random.key(0)
    with pytest.raises(ValueError, match=r"\[random.uniform\] low \(2\) must be less than high \(2\)"):
        em.random.uniform(2, 2, key=k)
    with pytest.raises(ValueError, match=r"\[random.randint\] low \(5\) must be less than high \(1\)"):
        em.random.randint(5, 1, key=k)
    with pytest.raises(ValueError, match=r"\[random.truncated_normal\] lower \(1.0\) must be less"):
        em.random.truncated_normal(1.0, -1.0, key=k)
    with pytest.raises(ValueError, match=r"\[random.normal\] scale must be non-negative"):
        em.random.normal(scale=-1.0, key=k)
    with pytest.raises(ValueError, match=r"\[random.laplace\] scale must be non-negative"):
        em.random.laplace(scale=-0.5, key=k)
    with pytest.raises(ValueError, match=r"\[random.bernoulli\] p must be in \[0, 1\]"):
        em.random.bernoulli(1.5, key=k)
    with pytest.raises(TypeError, match=r"\[random.uniform\] dtype must be a real floating dtype"):
        em.random.uniform(shape=(2,), dtype=em.int32, key=k)
    with pytest.raises(TypeError, match=r"\[random.randint\] dtype must be an integer dtype"):
        em.random.randint(0, 3, dtype=em.float32, key=k)
    with pytest.raises(ValueError, match=r"\[random.bits\] width must be 1, 2, 4 or 8"):
        em.random.bits((2,), 3, key=k)
    with pytest.raises(ValueError, match=r"\[random.normal\] negative dimension"):
        em.random.normal((2, -1), key=k)
    with pytest.raises(ValueError, match=r"\[random.uniform\] parameters of shapes .* do not broadcast"):
        em.random.uniform(em.zeros((3,)), 1.0, (2,), key=k)
    with pytest.raises(ValueError, match=r"\[random.categorical\] at most one of shape and num_samples"):
        em.random.categorical(em.zeros((3,)), shape=(2,), num_samples=2, key=k)
    with pytest.raises(ValueError, match=r"\[random.categorical\] shape \(2,\) must end in"):
        em.random.categorical(em.zeros((3, 4)), shape=(2,), key=k)
    with pytest.raises(TypeError, match=r"\[random.categorical\] logits must be floating"):
        em.random.categorical(em.array([1, 2]), key=k)
    with pytest.raises(ValueError, match=r"\[random.permutation\] axis 2 is out of bounds"):
        em.random.permutation(em.zeros((3, 4)), 2, key=k)
    with pytest.raises(ValueError, match=r"\[random.fold_in\] data .* does not fit in 32 bits"):
        em.random.fold_in(k, 2**32)


def test_engine_rejects_bad_keys_and_kinds():
    from ember.core.array import _op
    with pytest.raises(TypeError, match=r"\[random\] key must be uint32, got float32"):
        _op(lib.EM_P_RANDOM, [em.zeros((2,))], (lib.EM_RANDOM_BITS, em.uint32.value, 3))
    with pytest.raises(ValueError, match=r"\[threefry2x32\] counters must have shape \(\.\.\., 2\)"):
        _op(lib.EM_P_THREEFRY, [em.random.key(0), em.zeros((3,), em.uint32)])
    with pytest.raises(TypeError, match=r"\[random\] cannot draw normals of dtype int32"):
        _op(lib.EM_P_RANDOM, [em.random.key(0)], (lib.EM_RANDOM_NORMAL, em.int32.value, 3))
    with pytest.raises(TypeError, match=r"\[random\] cannot draw permutations of dtype int64"):
        _op(lib.EM_P_RANDOM, [em.random.key(0)], (lib.EM_RANDOM_PERMUTATION, em.int64.value, 3))
    with pytest.raises(ValueError, match=r"\[random\] a permutation has one axis"):
        _op(lib.EM_P_RANDOM, [em.random.key(0)], (lib.EM_RANDOM_PERMUTATION, em.int32.value, 3, 2))


# ---- transform rules (called directly) ----

def node_of(out):
    p = out._p
    from ember.core.array import _wrap_retained
    inputs = [_wrap_retained(lib.em_input(p, i)) for i in range(lib.em_num_inputs(p))]
    ip = tuple(lib.em_iparams(p)[i] for i in range(lib.em_num_iparams(p)))
    fp = tuple(lib.em_fparams(p)[i] for i in range(lib.em_num_fparams(p)))
    return Node(lib.em_prim_of(p), inputs, ip, fp, out)


def test_random_rules(rng):
    keys = np.stack(raw_keys(rng, 3), axis=1)  # (2, 3): the batch on axis 1
    node = node_of(em.random.normal((4, 5), key=em.random.key(0)))
    out, axis = rules_of(lib.EM_P_RANDOM).vmap(node, [em.array(keys)], [1])
    assert axis == 0 and out.shape == (3, 4, 5)
    for i in range(3):
        np.testing.assert_array_equal(np.array(out)[i],
                                      np.array(em.random.normal((4, 5), key=em.array(keys[:, i]))))
    perm_node = node_of(em.random.permutation(9, key=em.random.key(0)))
    perms, axis = rules_of(lib.EM_P_RANDOM).vmap(perm_node, [em.array(keys)], [1])
    assert axis == 0 and perms.shape == (3, 9)
    for i in range(3):
        np.testing.assert_array_equal(np.array(perms)[i],
                                      np.asarray(jax.random.permutation(keys[:, i].copy(), 9)))
    assert rules_of(lib.EM_P_RANDOM).jvp(node, [None]) is None
    assert rules_of(lib.EM_P_RANDOM).vjp(node, em.ones((4, 5))) == [None]


def test_threefry_rules(rng):
    k = em.array(raw_keys(rng, 1)[0])
    node = node_of(em.random.split(k, 4))
    counters = node.inputs[1]
    batch = em.stack([k, em.random.fold_in(k, 9)], axis=0)  # (2, 2): two keys
    out, axis = rules_of(lib.EM_P_THREEFRY).vmap(node, [batch, counters], [0, None])
    assert axis == 0 and out.shape == (2, 4, 2)
    np.testing.assert_array_equal(np.array(out)[1], np.array(em.random.split(batch[1], 4)))
    assert rules_of(lib.EM_P_THREEFRY).vjp(node, em.ones((4, 2), em.uint32)) == [None, None]
