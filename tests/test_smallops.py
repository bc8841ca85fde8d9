"""The small ops (median, nan-reductions, diff, kron, searchsorted,
array_split, convolve, windows, hadamard_transform, depends) against numpy
and their gradients against jax.grad of the jax.numpy equivalents."""
import contextlib
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import ember.core as em
from ember.core._ffi import lib


def npa(x):
    return np.array(x)


@contextlib.contextmanager
def x64():
    with jax.enable_x64(True):
        yield


def _draw(rng, shape, dtype):
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-20, 20, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _with_nans(rng, shape, dtype=np.float32, frac=0.3):
    x = rng.standard_normal(shape).astype(dtype)
    x[rng.random(shape) < frac] = np.nan
    return x


# ---- median ----

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
@pytest.mark.parametrize("shape,axis", [((7,), None), ((6,), 0), ((4, 5), 1), ((4, 5), 0),
                                        ((3, 4, 5), (0, 2)), ((3, 4, 6), -1), ((2, 3, 4), None),
                                        ((5, 1, 3), (1,))])
def test_median_matches_numpy(rng, dtype, shape, axis):
    x = _draw(rng, shape, dtype)
    want = np.median(x, axis=axis)
    got = em.median(em.array(x), axis=axis)
    expected_dtype = em.float64 if dtype == np.float64 else em.float32
    assert got.dtype == expected_dtype
    np.testing.assert_allclose(npa(got), want, rtol=1e-6)
    kept = em.median(em.array(x), axis=axis, keepdims=True)
    np.testing.assert_allclose(npa(kept), np.median(x, axis=axis, keepdims=True), rtol=1e-6)


def test_median_propagates_nan(rng):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    x[1, 2] = np.nan
    np.testing.assert_array_equal(npa(em.median(em.array(x), axis=1)), np.median(x, axis=1))
    assert np.isnan(npa(em.median(em.array(x))))


def test_median_errors():
    with pytest.raises(ValueError, match=r"\[median\] cannot take the median of an empty slice"):
        em.median(em.zeros((0, 3)), axis=0)
    with pytest.raises(ValueError, match="axis 2 is out of bounds"):
        em.median(em.zeros((2, 3)), axis=2)


# ---- quantile, percentile, nanmedian ----

@pytest.mark.parametrize("name", ["quantile", "nanquantile", "percentile", "nanpercentile"])
@pytest.mark.parametrize("q", [0.5, 0.0, 1.0, [0.0, 0.1, 0.25, 0.5, 0.9, 1.0]])
@pytest.mark.parametrize("axis", [None, 1, (0, 2), -1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_quantiles_match_numpy(rng, name, q, axis, dtype):
    if "nan" in name and dtype != np.int32:
        x = _with_nans(rng, (4, 7, 6), dtype)
        x[0, :, 0] = np.nan
        if axis is None:
            x.flat[0] = 1.0  # not all NaN
    else:
        x = _draw(rng, (4, 7, 6), dtype)
    if "percentile" in name:
        q = q * 100 if isinstance(q, float) else [v * 100 for v in q]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy warns on all-NaN slices
        want = getattr(np, name)(x, q, axis=axis, keepdims=True)
    got = getattr(em, name)(em.array(x), q, axis=axis, keepdims=True)
    assert got.dtype == (em.float64 if dtype == np.float64 else em.float32)
    # interpolation in float32 errs relative to the data's magnitude, not the result's
    scale = max(1.0, float(np.nanmax(np.abs(want), initial=0.0)))
    np.testing.assert_allclose(npa(got), want, rtol=1e-5, atol=4e-6 * scale, equal_nan=True)
    flat = getattr(em, name)(em.array(x), q, axis=axis)
    assert flat.shape == np.squeeze(want, axis=tuple(
        range(np.ndim(q), want.ndim)) if axis is None else tuple(
        np.ndim(q) + (a % 3) for a in ((axis,) if isinstance(axis, int) else axis))).shape


def test_quantile_propagates_nan_and_nanmedian_skips_it(rng):
    x = _with_nans(rng, (5, 8), np.float64)
    x[2] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(npa(em.quantile(em.array(x), 0.3, axis=1)),
                                      np.quantile(x, 0.3, axis=1))
        np.testing.assert_allclose(npa(em.nanmedian(em.array(x), axis=1)),
                                   np.nanmedian(x, axis=1), rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(npa(em.nanmedian(em.array(x))), np.nanmedian(x), rtol=1e-12)


def test_quantile_errors():
    with pytest.raises(ValueError, match=r"\[quantile\] quantiles must be in \[0, 1\]"):
        em.quantile(em.zeros(4), 1.5)
    with pytest.raises(ValueError, match=r"\[percentile\] quantiles must be in"):
        em.percentile(em.zeros(4), [50, 101])
    with pytest.raises(ValueError, match=r"\[nanmedian\] cannot reduce an empty slice"):
        em.nanmedian(em.zeros((0, 2)), axis=0)


# ---- nan-aware reductions ----

NAN_OPS = ["nansum", "nanprod", "nanmean", "nanmax", "nanmin", "nanvar", "nanstd"]


@pytest.mark.parametrize("name", NAN_OPS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 2)])
def test_nan_reductions_match_numpy(rng, name, dtype, axis):
    x = _with_nans(rng, (3, 5, 4), dtype)
    x[:, 1, :] = np.nan  # some all-NaN slices
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy warns on all-NaN slices
        want = getattr(np, name)(x, axis=axis, keepdims=True)
    got = getattr(em, name)(em.array(x), axis=axis, keepdims=True)
    assert got.dtype == em.array(x).dtype
    np.testing.assert_allclose(npa(got), want, rtol=2e-5 if dtype == np.float32 else 1e-12,
                               equal_nan=True)
    assert getattr(em, name)(em.array(x), axis=axis).shape == np.squeeze(
        want, axis=tuple(range(3)) if axis is None else axis).shape


@pytest.mark.parametrize("name", NAN_OPS)
def test_nan_reductions_of_integers_are_the_plain_ones(rng, name):
    x = rng.integers(-4, 5, size=(4, 5)).astype(np.int32)
    np.testing.assert_allclose(npa(getattr(em, name)(em.array(x), axis=1)),
                               getattr(np, name)(x, axis=1), rtol=1e-6)


def test_nanvar_ddof(rng):
    x = _with_nans(rng, (6, 7), np.float64)
    np.testing.assert_allclose(npa(em.nanvar(em.array(x), axis=1, ddof=1)),
                               np.nanvar(x, axis=1, ddof=1), rtol=1e-12)


# ---- diff ----

@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.float64])
@pytest.mark.parametrize("n,axis", [(0, -1), (1, -1), (2, 0), (3, 1), (6, -1)])
def test_diff_matches_numpy(rng, dtype, n, axis):
    x = _draw(rng, (5, 4, 6), dtype)
    got = em.diff(em.array(x), n=n, axis=axis)
    np.testing.assert_allclose(npa(got), np.diff(x, n=n, axis=axis), rtol=1e-6)


def test_diff_prepend_append_and_bool(rng):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    edge = rng.standard_normal((3, 2)).astype(np.float32)
    np.testing.assert_allclose(
        npa(em.diff(em.array(x), axis=1, prepend=1.5, append=em.array(edge))),
        np.diff(x, axis=1, prepend=1.5, append=edge), rtol=1e-6)
    b = rng.random((4, 7)) < 0.5
    np.testing.assert_array_equal(npa(em.diff(em.array(b), n=2)), np.diff(b, n=2))


def test_diff_errors():
    with pytest.raises(ValueError, match=r"\[diff\] input must have at least one dimension"):
        em.diff(em.array(1.0))
    with pytest.raises(ValueError, match=r"\[diff\] order must be non-negative, got -1"):
        em.diff(em.zeros(3), n=-1)


# ---- kron ----

@pytest.mark.parametrize("sa,sb", [((2, 3), (4, 5)), ((3,), (2, 4)), ((2, 1, 3), (3, 2)),
                                   ((), (3,)), ((4,), (5,))])
@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_kron_matches_numpy(rng, sa, sb, dtype):
    a, b = _draw(rng, sa, dtype), _draw(rng, sb, dtype)
    np.testing.assert_allclose(npa(em.kron(em.array(a), em.array(b))), np.kron(a, b), rtol=1e-6)


# ---- searchsorted ----

@pytest.mark.parametrize("n", [0, 1, 2, 7, 16, 33])
@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_searchsorted_matches_numpy(rng, n, side, dtype):
    # Small integer values: plenty of ties, the case where left and right differ.
    a = np.sort(rng.integers(0, 8, size=n)).astype(dtype)
    v = rng.integers(-2, 10, size=(3, 5)).astype(dtype)
    got = em.searchsorted(em.array(a), em.array(v), side=side)
    assert got.dtype == em.int32
    np.testing.assert_array_equal(npa(got), np.searchsorted(a, v, side=side))


def test_searchsorted_with_nan_and_sorter(rng):
    a = np.sort(np.concatenate([rng.standard_normal(9), [np.nan, np.nan]])).astype(np.float32)
    v = np.concatenate([rng.standard_normal(6), [np.nan, -np.inf, np.inf]]).astype(np.float32)
    for side in ("left", "right"):
        np.testing.assert_array_equal(npa(em.searchsorted(em.array(a), em.array(v), side=side)),
                                      np.searchsorted(a, v, side=side))
    u = rng.standard_normal(12).astype(np.float32)
    order = np.argsort(u)
    np.testing.assert_array_equal(
        npa(em.searchsorted(em.array(u), em.array(v[:6]), sorter=em.array(order))),
        np.searchsorted(u, v[:6], sorter=order))


def test_searchsorted_errors():
    with pytest.raises(ValueError, match=r"\[searchsorted\] a must be 1-D, got shape \(2, 2\)"):
        em.searchsorted(em.zeros((2, 2)), em.zeros(3))
    with pytest.raises(ValueError, match=r"\[searchsorted\] side must be 'left' or 'right'"):
        em.searchsorted(em.zeros(2), em.zeros(3), side="middle")


# ---- array_split ----

@pytest.mark.parametrize("n,sections", [(10, 3), (7, 7), (5, 8), (0, 2), (9, [2, 4, 20])])
def test_array_split_matches_numpy(rng, n, sections):
    x = rng.standard_normal((2, n)).astype(np.float32)
    got = em.array_split(em.array(x), sections, axis=1)
    want = np.array_split(x, sections, axis=1)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(npa(g), w)


def test_array_split_errors():
    with pytest.raises(ValueError, match=r"\[array_split\] number of sections must be positive"):
        em.array_split(em.zeros(4), 0)


# ---- convolve ----

# Filters up to 32 long take the shifted path; longer float32 ones the FFT,
# longer float64 and integer ones the sliding-window matmul.
@pytest.mark.parametrize("n,m", [(7, 3), (3, 7), (8, 8), (1, 5), (10, 1), (6, 4), (100, 33),
                                 (50, 77), (257, 64)])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_convolve_matches_numpy(rng, n, m, mode, dtype):
    a = rng.standard_normal(n).astype(dtype)
    v = rng.standard_normal(m).astype(dtype)
    got = em.convolve(em.array(a), em.array(v), mode)
    assert got.dtype == em.array(a).dtype
    want = np.convolve(a.astype(np.float64), v.astype(np.float64), mode)
    # The FFT's rounding is relative to the largest output, not to each one.
    atol = 1e-5 * np.abs(want).max() if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(npa(got), want, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=atol)


@pytest.mark.parametrize("m", [4, 40])
def test_convolve_integers_and_promotion(rng, m):
    a = rng.integers(-5, 5, 90).astype(np.int32)
    v = rng.integers(-5, 5, m).astype(np.int32)
    got = em.convolve(em.array(a), em.array(v))
    assert got.dtype == em.int32
    np.testing.assert_array_equal(npa(got), np.convolve(a, v))
    w = rng.standard_normal(4)
    got = em.convolve(em.array(a), em.array(w), "same")
    assert got.dtype == em.float64
    np.testing.assert_allclose(npa(got), np.convolve(a, w, "same"), rtol=1e-12)


def test_convolve_errors():
    with pytest.raises(ValueError, match=r"\[convolve\] inputs must be 1-D, got shapes \(2, 2\)"):
        em.convolve(em.zeros((2, 2)), em.zeros(3))
    with pytest.raises(ValueError, match=r"\[convolve\] mode must be one of"):
        em.convolve(em.zeros(4), em.zeros(3), "circular")
    with pytest.raises(ValueError, match=r"\[convolve\] inputs must not be empty"):
        em.convolve(em.zeros(0), em.zeros(3))


# ---- windows ----

@pytest.mark.parametrize("name", ["hanning", "hamming", "blackman", "bartlett"])
@pytest.mark.parametrize("M", [-1, 0, 1, 2, 5, 12, 101])
def test_windows_match_numpy(name, M):
    got = getattr(em, name)(M)
    assert got.dtype == em.float32
    np.testing.assert_allclose(npa(got), getattr(np, name)(M), atol=2e-6)
    got64 = getattr(em, name)(M, dtype=em.float64)
    np.testing.assert_allclose(npa(got64), getattr(np, name)(M), atol=1e-14)


# ---- hadamard_transform ----

@pytest.mark.parametrize("n", [1, 2, 8, 64, 128, 2048])
@pytest.mark.parametrize("scale", [None, 0.5])
def test_hadamard_transform_matches_scipy_matrix(rng, n, scale):
    x = rng.standard_normal((3, 2, n))
    h = scipy.linalg.hadamard(n) * (1 / np.sqrt(n) if scale is None else scale)
    np.testing.assert_allclose(npa(em.hadamard_transform(em.array(x), scale=scale)), x @ h.T,
                               rtol=1e-12, atol=1e-12)


def test_hadamard_transform_errors():
    with pytest.raises(ValueError, match=r"\[hadamard_transform\] the last axis must have a "
                                         r"power-of-two size, got shape \(2, 6\)"):
        em.hadamard_transform(em.zeros((2, 6)))
    with pytest.raises(ValueError, match=r"\[hadamard_transform\] input must have"):
        em.hadamard_transform(em.array(1.0))


# ---- depends ----

def test_depends_keeps_values_and_evaluates_the_dependencies(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    side = em.exp(em.array(rng.standard_normal(5).astype(np.float32)))
    out = em.depends(em.array(x) * 2, side)
    em.eval(out)
    assert lib.em_is_evaluated(side._p)
    np.testing.assert_array_equal(npa(out), x * 2)
    outs = em.depends([em.array(x), em.array(x) + 1], [side, em.array([np.nan])])
    np.testing.assert_array_equal(npa(outs[1]), x + 1)
    g = em.grad(lambda t: em.sum(em.depends(t * t, side)))(em.array(x))
    np.testing.assert_allclose(npa(g), 2 * x, rtol=1e-6)


def test_depends_errors():
    with pytest.raises(TypeError, match=r"\[depends\] inputs and dependencies must be arrays"):
        em.depends(em.zeros(2), [3.0])


# ---- gradients against JAX (float64) ----

GRAD_CASES = {
    "median_all": (lambda m, x: m.median(x), (5, 6)),
    "median_axis_even": (lambda m, x: m.median(x, axis=1), (3, 6)),
    "median_axes_odd": (lambda m, x: m.median(x, axis=(0, 2)), (3, 2, 5)),
    "nansum": (lambda m, x: m.nansum(x, axis=0), "nan"),
    "nanmean": (lambda m, x: m.nanmean(x, axis=1), "nan"),
    "nanmax": (lambda m, x: m.nanmax(x, axis=1), "nan"),
    "nanmin": (lambda m, x: m.nanmin(x, axis=0), "nan"),
    "nanvar": (lambda m, x: m.nanvar(x, axis=1), "nan"),
    "nanstd": (lambda m, x: m.nanstd(x), "nan"),
    "nanprod": (lambda m, x: m.nanprod(x, axis=1), "nan"),
    "quantile": (lambda m, x: m.quantile(x, np.array([0.1, 0.5, 0.8]), axis=1), (3, 7)),
    "percentile_all": (lambda m, x: m.percentile(x, 37.0), (4, 5)),
    "nanquantile": (lambda m, x: m.nanquantile(x, np.array([0.3, 1.0]), axis=0), "nan"),
    "nanmedian": (lambda m, x: m.nanmedian(x, axis=1), "nan"),
    "diff": (lambda m, x: m.diff(x, n=2, axis=0), (6, 3)),
    "diff_prepend": (lambda m, x: m.diff(x, axis=1, prepend=0.5, append=x[:, :1]), (3, 4)),
    "kron": (lambda m, x: m.kron(x, x[:2, :3] * x[:2, :3]), (3, 4)),
    "convolve_full": (lambda m, x: m.convolve(x[0], x[1, :3]), (2, 7)),
    "convolve_same": (lambda m, x: m.convolve(x[1, :4], x[0], mode="same"), (2, 7)),
    "convolve_valid": (lambda m, x: m.convolve(x[0], x[1, :3], mode="valid"), (2, 7)),
    "convolve_windows": (lambda m, x: m.convolve(x[0], x[1, :40], mode="same"), (2, 90)),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_grad_matches_jax(rng, name):
    fn, spec = GRAD_CASES[name]
    x = _with_nans(rng, (4, 5), np.float64, 0.25) if spec == "nan" else \
        rng.standard_normal(spec)
    weights = rng.standard_normal(np.shape(fn(np, x)))
    ours = em.grad(lambda t: em.sum(fn(em, t) * em.array(weights)))(em.array(x))
    with x64():
        want = jax.grad(lambda t: jnp.sum(fn(jnp, t) * weights))(jnp.asarray(x))
    np.testing.assert_allclose(npa(ours), np.asarray(want), rtol=1e-10, atol=1e-12)


def test_convolve_grad_through_the_fft_matches_jax(rng):
    a = rng.standard_normal(120).astype(np.float32)
    v = rng.standard_normal(50).astype(np.float32)
    w = rng.standard_normal(120).astype(np.float32)
    ours = em.grad(lambda x, y: em.sum(em.convolve(x, y, "same") * em.array(w)),
                   argnums=(0, 1))(em.array(a), em.array(v))
    want = jax.grad(lambda x, y: jnp.sum(jnp.convolve(x, y, "same") * w),
                    argnums=(0, 1))(jnp.asarray(a), jnp.asarray(v))
    for o, t in zip(ours, want):
        t = np.asarray(t)
        np.testing.assert_allclose(npa(o), t, rtol=1e-4, atol=1e-5 * np.abs(t).max())


def test_hadamard_transform_grad_is_the_transpose(rng):
    x, w = rng.standard_normal((2, 16)), rng.standard_normal((2, 16))
    h = scipy.linalg.hadamard(16) / 4.0
    ours = em.grad(lambda t: em.sum(em.hadamard_transform(t) * em.array(w)))(em.array(x))
    with x64():
        want = jax.grad(lambda t: jnp.sum((t @ h.T) * w))(jnp.asarray(x))
    np.testing.assert_allclose(npa(ours), np.asarray(want), rtol=1e-12)


def test_vmap_and_compile_of_small_ops(rng):
    xs = rng.standard_normal((4, 9))
    np.testing.assert_allclose(npa(em.vmap(em.median)(em.array(xs))), np.median(xs, axis=1))
    v = rng.standard_normal(3)
    np.testing.assert_allclose(npa(em.vmap(lambda r: em.convolve(r, em.array(v)))(em.array(xs))),
                               np.stack([np.convolve(r, v) for r in xs]), rtol=1e-12)
    a = np.sort(rng.standard_normal(10))
    got = em.vmap(lambda q: em.searchsorted(em.array(a), q))(em.array(xs))
    np.testing.assert_array_equal(npa(got), np.searchsorted(a, xs))
    compiled = em.compile(lambda t: em.nanmean(em.diff(t, axis=1), axis=1))
    np.testing.assert_allclose(npa(compiled(em.array(xs))), np.diff(xs, axis=1).mean(axis=1),
                               rtol=1e-12)


# ---- contiguous ----

def test_contiguous_copies_only_what_is_not_row_major(rng):
    from ember.core._ffi import ffi
    x = em.array(rng.standard_normal((3, 4)).astype(np.float32))
    em.eval(x)
    assert em.contiguous(x) is x
    t = em.transpose(x)
    em.eval(t)
    assert em.contiguous(t, allow_col_major=True) is t
    c = em.contiguous(t)
    assert c is not t
    em.eval(c)
    assert tuple(ffi.unpack(lib.em_strides(c._p), 2)) == (3, 1)
    np.testing.assert_array_equal(npa(c), npa(x).T)
    g = em.grad(lambda a: em.sum(em.contiguous(em.transpose(a)) * em.array(npa(x).T)))(x)
    np.testing.assert_array_equal(npa(g), npa(x))


# ---- gather_mm, segmented_mm, block_masked_mm ----

def _expand_blocks(mask, size, rows, cols):
    return np.repeat(np.repeat(mask, size, -2), size, -1)[..., :rows, :cols]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gather_mm_matches_a_loop(rng, dtype):
    a = rng.standard_normal((3, 2, 4, 5)).astype(dtype)
    b = rng.standard_normal((6, 5, 7)).astype(dtype)
    li = rng.integers(0, 6, (2, 4)).astype(np.uint32)
    ri = rng.integers(0, 6, (2, 4)).astype(np.int32)
    got = em.gather_mm(em.array(a), em.array(b), em.array(li), em.array(ri))
    flat = a.reshape(-1, 4, 5)
    want = np.stack([flat[i] @ b[j] for i, j in zip(li.ravel(), ri.ravel())]).reshape(2, 4, 4, 7)
    np.testing.assert_allclose(npa(got), want, rtol=1e-5, atol=1e-5)
    # One index: the other operand keeps its batch axes, broadcast against it.
    ri = rng.integers(0, 6, (3, 1))
    got = em.gather_mm(em.array(a), em.array(b), rhs_indices=em.array(ri), sorted_indices=True)
    np.testing.assert_allclose(npa(got), a @ b[ri], rtol=1e-5, atol=1e-5)


def test_segmented_mm_matches_a_loop(rng):
    a, b = rng.standard_normal((4, 10)), rng.standard_normal((10, 3))
    segments = np.array([[0, 3], [3, 3], [2, 10], [5, 4], [0, 10]], dtype=np.uint32)
    got = em.segmented_mm(em.array(a), em.array(b), em.array(segments))
    want = np.stack([a[:, s:e] @ b[s:e] for s, e in segments.astype(int)])
    np.testing.assert_allclose(npa(got), want, rtol=1e-12, atol=1e-12)
    batched = rng.standard_normal((2, 4, 10))
    got = em.segmented_mm(em.array(batched), em.array(b), em.array(segments[:2]))
    want = np.stack([np.stack([x[:, s:e] @ b[s:e] for s, e in segments[:2].astype(int)])
                     for x in batched])
    np.testing.assert_allclose(npa(got), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("block", [1, 32, 64])
def test_block_masked_mm_matches_masked_product(rng, block):
    m, k, n = 70, 100, 40
    a, b = rng.standard_normal((2, m, k)), rng.standard_normal((2, k, n))
    nb = lambda x: -(-x // block)  # noqa: E731
    ml = rng.random((2, nb(m), nb(k))) < 0.5
    mr = rng.random((nb(k), nb(n))) < 0.5
    mo = rng.random((2, nb(m), nb(n)))
    got = em.block_masked_mm(em.array(a), em.array(b), block, em.array(mo), em.array(ml),
                             em.array(mr))
    want = ((a * _expand_blocks(ml, block, m, k)) @ (b * _expand_blocks(mr, block, k, n))) * \
        _expand_blocks(mo, block, m, n)
    np.testing.assert_allclose(npa(got), want, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(npa(em.block_masked_mm(em.array(a), em.array(b), block)), a @ b,
                               rtol=1e-10)


def test_product_errors():
    with pytest.raises(ValueError, match=r"\[gather_mm\] a must have at least 2 dimensions"):
        em.gather_mm(em.zeros(3), em.zeros((3, 2)))
    with pytest.raises(TypeError, match=r"\[gather_mm\] indices must be integers"):
        em.gather_mm(em.zeros((2, 3, 3)), em.zeros((3, 2)), em.zeros(2))
    with pytest.raises(ValueError, match=r"\[segmented_mm\] segments must have shape"):
        em.segmented_mm(em.zeros((2, 3)), em.zeros((3, 2)), em.zeros((4, 3), dtype=em.int32))
    with pytest.raises(ValueError, match=r"\[segmented_mm\] last axis of a \(3\) must equal"):
        em.segmented_mm(em.zeros((2, 3)), em.zeros((4, 2)), em.zeros((1, 2), dtype=em.int32))
    with pytest.raises(ValueError, match=r"\[block_masked_mm\] mask_lhs must have shape "
                                         r"\(\.\.\., 2, 1\) for block_size 32"):
        em.block_masked_mm(em.zeros((40, 20)), em.zeros((20, 5)), 32,
                           mask_lhs=em.ones((1, 1), dtype=em.bool_))
    with pytest.raises(ValueError, match=r"\[block_masked_mm\] block_size must be a positive"):
        em.block_masked_mm(em.zeros((4, 4)), em.zeros((4, 4)), 0)


def test_masked_and_gathered_product_grads_match_jax(rng):
    a, b = rng.standard_normal((3, 4, 5)), rng.standard_normal((2, 5, 6))
    li, ri = rng.integers(0, 3, 7), rng.integers(0, 2, 7)
    w = rng.standard_normal((7, 4, 6))
    ours = em.grad(lambda x, y: em.sum(em.gather_mm(x, y, em.array(li), em.array(ri)) *
                                       em.array(w)), argnums=(0, 1))(em.array(a), em.array(b))
    segments = np.array([[0, 2], [1, 5], [3, 3]])
    a2, b2 = rng.standard_normal((4, 5)), rng.standard_normal((5, 6))
    w2 = rng.standard_normal((3, 4, 6))
    ours_seg = em.grad(lambda x, y: em.sum(em.segmented_mm(x, y, em.array(segments)) *
                                           em.array(w2)), argnums=(0, 1))(em.array(a2),
                                                                          em.array(b2))
    ml, mo = np.array([[True, False], [False, True]]), rng.random((2, 2))
    ours_blk = em.grad(lambda x: em.sum(em.block_masked_mm(x, em.array(b2), 3, em.array(mo),
                                                           em.array(ml))))(em.array(a2))
    with x64():
        want = jax.grad(lambda x, y: jnp.sum(jnp.matmul(x[li], y[ri]) * w),
                        argnums=(0, 1))(jnp.asarray(a), jnp.asarray(b))
        want_seg = jax.grad(lambda x, y: jnp.sum(jnp.stack(
            [x[:, s:e] @ y[s:e] for s, e in segments]) * w2), argnums=(0, 1))(
                jnp.asarray(a2), jnp.asarray(b2))
        want_blk = jax.grad(lambda x: jnp.sum(((x * _expand_blocks(ml, 3, 4, 5)) @ b2) *
                                              _expand_blocks(mo, 3, 4, 6)))(jnp.asarray(a2))
    for o, t in list(zip(ours, want)) + list(zip(ours_seg, want_seg)) + [(ours_blk, want_blk)]:
        np.testing.assert_allclose(npa(o), np.asarray(t), rtol=1e-10, atol=1e-12)
