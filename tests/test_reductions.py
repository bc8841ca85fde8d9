"""Reductions, arg-reductions and scans against numpy (values) and mlx (result
dtypes), on fresh random data of every dtype family and on non-contiguous
inputs: sum, prod, max, min, all, any, mean, var, std, logsumexp, argmax,
argmin, cumsum, cumprod, cummax, cummin, logcumsumexp."""
import ml_dtypes
import mlx.core as mx
import numpy as np
import pytest

import ember.core as em
from array_layouts import make

LAYOUTS = ["contiguous", "transposed", "reversed", "strided", "broadcast", "view_chain"]
FLOATS = ["float32", "float64", "float16", "bfloat16"]
DTYPES = FLOATS + ["int32", "int8", "uint8", "int64", "bool", "complex64"]
AXES = [None, 0, -1, 1, (0, 2), (2, 0, 1), ()]


def _numpy_dtype(name):
    return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


def make_input(rng, shape, dtype, layout, positive=False):
    """An ember array and its numpy twin: float64 (complex128) for the float
    families, so the oracle computes with more precision; the integer and bool
    types as they are. positive=True draws values whose products stay small
    (floats in [0.75, 1.25], complex near 1, signed ints in {-1, 1}, unsigned in {0, 1})."""
    base = "float32" if dtype == "bfloat16" else dtype
    a, x = make(rng, shape, base, layout)
    kind = np.dtype(base).kind
    if positive and kind == "f":
        a, x = em.abs(a) * 0.5 + 0.75, np.abs(x) * 0.5 + 0.75
    elif positive and kind == "c":
        a, x = a * 0.1 + 1, x * 0.1 + 1
    elif positive and kind == "i":
        a, x = (a % 2) * 2 - 1, (x % 2) * 2 - 1
    elif positive and kind == "u":
        a, x = a % 2, x % 2
    if dtype == "bfloat16":
        a = a.astype(em.bfloat16)
        x = x.astype(ml_dtypes.bfloat16)
    x = np.asarray(x).astype(_numpy_dtype(dtype))
    if kind in "fc":
        x = x.astype(np.complex128 if kind == "c" else np.float64)
    return a, x


def mlx_dtype(fn_name, dtype, **kw):
    """The dtype mlx.core gives for fn_name on an input of `dtype`."""
    x = mx.ones((2, 3), dtype=getattr(mx, "bool_" if dtype == "bool" else dtype))
    return str(getattr(mx, fn_name)(x, **kw).dtype).split(".")[-1]


def assert_close(got, expected, dtype, scale):
    """got (ember) equals expected (float64 numpy) to the rounding of `dtype`,
    relative to `scale` (the magnitude the result was summed from)."""
    got = np.array(got)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if got.dtype.kind in "iub":
        np.testing.assert_array_equal(got, expected)
        return
    eps = {"float32": 1e-6, "complex64": 1e-6, "float64": 1e-14, "float16": 2e-3,
           "bfloat16": 1.6e-2}[dtype]
    np.testing.assert_allclose(got.astype(expected.dtype), expected, rtol=4 * eps,
                               atol=8 * eps * np.max(scale, initial=1e-30))


def reduced_count(shape, axis):
    if axis is None:
        return int(np.prod(shape))
    axes = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axes]))


REDUCTIONS = {
    "sum": (np.sum, False), "prod": (np.prod, True), "max": (np.max, False),
    "min": (np.min, False), "all": (np.all, False), "any": (np.any, False),
    "mean": (np.mean, False),
}


# max and min are not defined for complex64 (no ordering): test_reduction_errors checks that
REDUCTION_CASES = [(n, d) for n in REDUCTIONS for d in DTYPES
                   if not (d == "complex64" and n in ("max", "min"))]


@pytest.mark.parametrize("name,dtype", REDUCTION_CASES)
@pytest.mark.parametrize("axis", AXES, ids=repr)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduction(rng, name, dtype, axis, keepdims):
    np_fn, positive = REDUCTIONS[name]
    shape = (4, 3, 5)
    layout = LAYOUTS[rng.integers(len(LAYOUTS))]
    a, x = make_input(rng, shape, dtype, layout, positive=positive)
    out = getattr(em, name)(a, axis=axis, keepdims=keepdims)
    assert str(out.dtype).split(".")[-1] == mlx_dtype(name, dtype), (name, dtype, out.dtype)
    result = str(out.dtype).split(".")[-1]
    if np.dtype(x.dtype).kind in "iub" and name in ("sum", "prod"):
        x = x.astype(result)   # numpy then wraps exactly as the result type does
    expected = np_fn(x, axis=axis, keepdims=keepdims)
    scale = np_fn(np.abs(x), axis=axis, keepdims=keepdims) if name in ("sum", "mean", "prod") \
        else np.abs(expected)
    assert_close(out, expected, dtype if dtype in FLOATS + ["complex64"] else "float32", scale)


@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int32", "complex64"])
@pytest.mark.parametrize("axis", [None, 1, (0, 2)], ids=repr)
@pytest.mark.parametrize("ddof", [0, 1])
def test_var_std(rng, name, dtype, axis, ddof):
    a, x = make_input(rng, (4, 3, 5), dtype, "transposed")
    out = getattr(em, name)(a, axis=axis, ddof=ddof)
    assert str(out.dtype).split(".")[-1] == mlx_dtype(name, dtype)
    expected = getattr(np, name)(x, axis=axis, ddof=ddof)
    assert_close(out, expected, dtype if dtype != "int32" else "float32",
                 getattr(np, name)(np.abs(x), axis=axis) + np.abs(expected))


def test_var_with_ddof_at_the_count_is_nan():
    assert np.isnan(em.var(em.array([1.0, 2.0, 3.0]), ddof=3).item())


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int32"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)], ids=repr)
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp(rng, dtype, axis, keepdims):
    a, x = make_input(rng, (4, 3, 5), dtype, "reversed")
    x = x * 4.0
    a = a * 4 if dtype != "int32" else a * 4
    out = em.logsumexp(a, axis=axis, keepdims=keepdims)
    expected = np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))
    assert_close(out, expected, dtype if dtype != "int32" else "float32", np.abs(expected) + 1)


def test_logsumexp_of_infinities():
    x = em.array([[-np.inf, -np.inf], [np.inf, 1.0], [-np.inf, 2.0]])
    np.testing.assert_array_equal(np.array(em.logsumexp(x, axis=1)), [-np.inf, np.inf, 2.0])


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int32", "uint8",
                                   "bool"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_argreduction(rng, name, dtype, axis, keepdims):
    layout = LAYOUTS[rng.integers(len(LAYOUTS))]
    a, x = make_input(rng, (6, 5, 4), dtype, layout)
    out = getattr(em, name)(a, axis=axis, keepdims=keepdims)
    assert out.dtype == em.uint32
    np.testing.assert_array_equal(np.array(out),
                                  getattr(np, name)(x, axis=axis, keepdims=keepdims))


def test_argmax_ties_take_the_first():
    x = np.array([[1, 3, 3, 0], [2, 2, 2, 2]], np.int32)
    np.testing.assert_array_equal(np.array(em.argmax(em.array(x), axis=1)), [1, 0])
    np.testing.assert_array_equal(np.array(em.argmin(em.array(x), axis=1)), [3, 0])


def test_nan_propagates_through_max_min_and_sum():
    x = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]], np.float32)
    for name in ("max", "min", "sum", "prod"):
        got = np.array(getattr(em, name)(em.array(x), axis=1))
        assert np.isnan(got[0]) and not np.isnan(got[1]), name


@pytest.mark.parametrize("shape,axis", [((1 << 20,), None), ((4096, 256), 0), ((256, 4096), 1),
                                        ((64, 64, 64), (0, 2)), ((3, 100_003), 1)])
def test_large_sums_split_over_threads(rng, shape, axis):
    x = rng.standard_normal(shape).astype(np.float32)
    got = em.sum(em.array(x), axis=axis)
    expected = np.sum(x.astype(np.float64), axis=axis)
    scale = np.sum(np.abs(x.astype(np.float64)), axis=axis)
    np.testing.assert_allclose(np.array(got), expected, rtol=1e-5, atol=1e-6 * np.max(scale))


def test_sum_is_deterministic(rng):
    x = em.array(rng.standard_normal(1 << 20).astype(np.float32))
    assert em.sum(x).item() == em.sum(x).item()


def test_empty_reductions():
    z = em.zeros((0, 3))
    np.testing.assert_array_equal(np.array(em.sum(z, axis=0)), np.zeros(3))
    np.testing.assert_array_equal(np.array(em.prod(z, axis=0)), np.ones(3))
    assert em.all(em.zeros((0,), dtype=em.bool_)).item() is True
    assert em.any(em.zeros((0,), dtype=em.bool_)).item() is False
    assert em.sum(z, axis=1).shape == (0,)
    for name in ("max", "min", "argmax", "argmin"):
        with pytest.raises(ValueError, match=rf"\[{name}\].*size zero"):
            em.eval(getattr(em, name)(z, axis=0))


def test_reduction_errors():
    a = em.ones((2, 3))
    with pytest.raises(ValueError, match=r"\[sum\] axis 2 is out of bounds.*dimension 2"):
        em.sum(a, axis=2)
    with pytest.raises(ValueError, match=r"\[mean\] axis -3 is out of bounds"):
        em.mean(a, axis=-3)
    with pytest.raises(ValueError, match=r"\[sum\] duplicate axis 0"):
        em.sum(a, axis=(0, 0))
    with pytest.raises(ValueError, match=r"\[argmax\] expected one axis"):
        em.argmax(a, axis=(0, 1))
    with pytest.raises(TypeError, match=r"\[max\].*complex64"):
        em.max(em.ones((2,), dtype=em.complex64))


# ---- scans ----

def _identity(name, dtype):
    """The value an exclusive scan starts from, in the result's dtype."""
    if name == "cumsum":
        return 0
    if name in ("cumprod",):
        return 1
    if name == "logcumsumexp":
        return -np.inf
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return name == "cummin"
    info = np.finfo(dtype) if dtype.kind == "f" else np.iinfo(dtype)
    return (-np.inf if dtype.kind == "f" else info.min) if name == "cummax" else \
        (np.inf if dtype.kind == "f" else info.max)


def numpy_scan(name, x, axis, reverse, inclusive):
    ufunc = {"cumsum": np.add, "cumprod": np.multiply, "cummax": np.maximum,
             "cummin": np.minimum, "logcumsumexp": np.logaddexp}[name]
    if reverse:
        x = np.flip(x, axis)
    out = ufunc.accumulate(x, axis=axis, dtype=x.dtype)   # small ints wrap in their type
    if not inclusive:
        out = np.moveaxis(out, axis, 0)
        first = np.full_like(out[:1], _identity(name, x.dtype))
        out = np.moveaxis(np.concatenate([first, out[:-1]]), 0, axis)
    return np.flip(out, axis) if reverse else out


# cummax, cummin and logcumsumexp are not defined for complex64: test_scan_errors checks that
SCAN_CASES = [(n, d) for n in ["cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"]
              for d in ["float32", "float64", "float16", "bfloat16", "int32", "uint8", "int8",
                        "bool", "complex64"]
              if not (d == "complex64" and n not in ("cumsum", "cumprod"))]


@pytest.mark.parametrize("name,dtype", SCAN_CASES)
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("inclusive", [True, False])
def test_scan(rng, name, dtype, axis, reverse, inclusive):
    layout = LAYOUTS[rng.integers(len(LAYOUTS))]
    a, x = make_input(rng, (5, 4, 3), dtype, layout, positive=name == "cumprod")
    out = getattr(em, name)(a, axis=axis, reverse=reverse, inclusive=inclusive)
    result = str(out.dtype).split(".")[-1]
    assert result == mlx_dtype(name, dtype, axis=0), (name, dtype)
    if np.dtype(x.dtype).kind in "iub":
        # integer scans: exact, and wrapping in the result type as numpy does in it
        x = x.astype(np.float64 if name == "logcumsumexp" else result)
    expected = numpy_scan(name, x, axis % 3, reverse, inclusive)
    if name in ("cumsum", "cumprod"):
        scale = np.abs(numpy_scan(name, np.abs(x), axis % 3, reverse, inclusive))
    else:
        finite = np.abs(expected[np.isfinite(expected)]) if expected.dtype.kind in "fc" else 0
        scale = np.max(finite, initial=1.0)
    oracle_dtype = result if result in FLOATS + ["complex64"] else "float32"
    assert_close(out, expected, oracle_dtype, scale)


def test_scan_default_axis_flattens(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(np.array(em.cumsum(em.array(x))), np.cumsum(x), rtol=1e-5, atol=1e-5)


def test_long_scan(rng):
    x = rng.standard_normal((2, 200_001)).astype(np.float32)
    got = np.array(em.cumsum(em.array(x), axis=1))
    expected = np.cumsum(x.astype(np.float64), axis=1)
    scale = np.cumsum(np.abs(x.astype(np.float64)), axis=1)
    assert np.all(np.abs(got - expected) <= 1e-6 * scale + 1e-5)


def test_scan_errors():
    a = em.ones((2, 3))
    with pytest.raises(ValueError, match=r"\[cumsum\] axis 2 is out of bounds"):
        em.cumsum(a, axis=2)
    for name in ("cummax", "cummin", "logcumsumexp"):
        with pytest.raises(TypeError, match=rf"\[{name}\] not defined for complex64"):
            getattr(em, name)(em.ones((3,), dtype=em.complex64))
