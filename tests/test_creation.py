"""Array creation against numpy: em.array from Python scalars, (nested) lists
and numpy arrays with mlx.core's dtype inference, and the constant, range and
matrix constructors (zeros, ones, full, empty, arange, linspace, eye,
identity, tri, the *_like forms and meshgrid).
"""
import numpy as np
import pytest

import ember.core as em

ALL_DTYPES = [em.bool_, em.uint8, em.uint16, em.uint32, em.uint64, em.int8, em.int16,
              em.int32, em.int64, em.float16, em.float32, em.float64, em.bfloat16,
              em.complex64]


def np_dtype(d):
    return np.dtype("float32" if d == em.bfloat16 else d.name)


def check(out, expected, dtype):
    assert isinstance(out, em.array)
    assert out.dtype == dtype, (out.dtype, dtype)
    expected = np.asarray(expected)
    got = np.array(out)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if dtype in (em.float32, em.float64, em.float16, em.bfloat16, em.complex64):
        rtol = {em.float16: 1e-3, em.bfloat16: 8e-3}.get(dtype, 1e-6)
        np.testing.assert_allclose(got, expected.astype(got.dtype), rtol=rtol, atol=rtol)
    else:
        np.testing.assert_array_equal(got, expected)


# ---- em.array ----

@pytest.mark.parametrize("value,dtype", [
    (7, em.int32), (-3, em.int32), (2.5, em.float32), (True, em.bool_), (False, em.bool_),
    (1 + 2j, em.complex64), (2**40, em.int64), (-(2**40), em.int64),
])
def test_array_from_scalar(value, dtype):
    a = em.array(value)
    assert a.shape == () and a.ndim == 0 and a.size == 1
    assert a.dtype == dtype
    assert a.item() == value


@pytest.mark.parametrize("value,dtype", [
    ([1, 2, 3], em.int32), ([1.0, 2, 3], em.float32), ([True, False], em.bool_),
    ([[1, 2], [3, 4]], em.int32), ([[1.5], [2.5]], em.float32), ([True, 2], em.int32),
    ([True, 2.5], em.float32), ([1, 2j], em.complex64), ((1, 2, 3), em.int32),
    ([[[1], [2]], [[3], [4]]], em.int32), ([], em.float32), ([[], []], em.float32),
    ([2**40, 1], em.int64),
])
def test_array_from_lists(value, dtype):
    a = em.array(value)
    assert a.dtype == dtype
    expected = np.array(value, dtype=np_dtype(dtype))
    check(a, expected, dtype)
    assert a.tolist() == expected.tolist()


def test_array_from_list_with_explicit_dtype(rng):
    vals = rng.integers(0, 100, (3, 4)).tolist()
    for d in ALL_DTYPES:
        check(em.array(vals, dtype=d), np.array(vals).astype(np_dtype(d)), d)
        check(em.array(vals, d), np.array(vals).astype(np_dtype(d)), d)


def test_array_from_list_of_large_uint64():
    big = 2**64 - 1
    assert em.array([0, big], dtype=em.uint64).tolist() == [0, big]
    assert em.array([big], dtype=em.uint64).tolist() == [big]


def test_array_from_list_of_arrays(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    a = em.array([em.array(x[0]), em.array(x[1])])
    check(a, x, em.float32)


@pytest.mark.parametrize("np_type", ["bool", "uint8", "uint16", "uint32", "uint64", "int8",
                                     "int16", "int32", "int64", "float16", "float32",
                                     "complex64"])
def test_array_from_numpy_keeps_dtype(rng, np_type):
    x = (rng.standard_normal((3, 4)) * 50).astype(np_type)
    if np_type != "bool":
        x.flat[0] = 1
    a = em.array(x)
    assert a.dtype.name == np_type
    np.testing.assert_array_equal(np.array(a), x)


def test_array_from_numpy_non_contiguous(rng):
    x = rng.standard_normal((5, 6)).astype(np.float32)
    for view in (x.T, x[::-1, ::2], x[1:4, 2:], np.broadcast_to(x[:1], (5, 6))):
        np.testing.assert_array_equal(np.array(em.array(view)), view)


def test_array_copies_numpy_input(rng):
    x = rng.standard_normal(4).astype(np.float32)
    a = em.array(x)
    x[0] = 100.0
    assert np.array(a)[0] != 100.0


def test_array_from_array_and_astype(rng):
    x = rng.standard_normal(5).astype(np.float32)
    a = em.array(x)
    assert em.array(a).dtype == em.float32
    check(em.array(a, dtype=em.float16), x.astype(np.float16), em.float16)
    assert em.asarray(a) is a


def test_array_rejects_ragged_and_strings():
    with pytest.raises(ValueError, match=r"\[array\]"):
        em.array([[1, 2], [3]])
    with pytest.raises(ValueError, match=r"\[array\]"):
        em.array(["a", "b"])
    with pytest.raises(TypeError):
        em.array(object())


# ---- constants ----

SHAPES = [(), (0,), (5,), (2, 3), (2, 0, 4), (3, 1, 2)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_zeros_ones_empty(shape):
    for d in ALL_DTYPES:
        check(em.zeros(shape, dtype=d), np.zeros(shape, np_dtype(d)), d)
        check(em.ones(shape, dtype=d), np.ones(shape, np_dtype(d)), d)
        e = em.empty(shape, dtype=d)
        assert e.shape == shape and e.dtype == d
    assert em.zeros(shape).dtype == em.float32
    assert em.ones(shape).dtype == em.float32
    assert em.zeros(4).shape == (4,)
    assert em.ones([2, 2]).shape == (2, 2)


@pytest.mark.parametrize("vals,dtype,expected_dtype", [
    (2.5, None, em.float32), (3, None, em.int32), (True, None, em.bool_),
    (3, em.float16, em.float16), (2.5, em.int32, em.int32), (1 + 1j, None, em.complex64),
    (-2, em.bfloat16, em.bfloat16), (7, em.uint8, em.uint8),
])
def test_full_scalars(vals, dtype, expected_dtype):
    out = em.full((2, 3), vals, dtype=dtype)
    check(out, np.full((2, 3), vals).astype(np_dtype(expected_dtype)), expected_dtype)


def test_full_broadcasts_arrays(rng):
    row = rng.standard_normal(4).astype(np.float32)
    check(em.full((3, 4), em.array(row)), np.broadcast_to(row, (3, 4)), em.float32)
    check(em.full((3, 4), em.array(row[:3, None]),
                  dtype=em.float16), np.broadcast_to(row[:3, None], (3, 4)), em.float16)
    with pytest.raises(ValueError):
        em.full((3, 5), em.array(row))


def test_negative_shapes_rejected():
    for fn in (em.zeros, em.ones, em.empty):
        with pytest.raises(ValueError, match=r"negative dimensions"):
            fn((2, -1))
    with pytest.raises(ValueError, match=r"\[full\].*negative"):
        em.full((-3,), 1.0)


def test_like_constructors(rng):
    for d in ALL_DTYPES:
        a = em.ones((2, 3), dtype=d)
        check(em.zeros_like(a), np.zeros((2, 3), np_dtype(d)), d)
        check(em.ones_like(a), np.ones((2, 3), np_dtype(d)), d)
        assert em.empty_like(a).shape == (2, 3) and em.empty_like(a).dtype == d
        check(em.full_like(a, 3), np.full((2, 3), 3).astype(np_dtype(d)), d)
    x = rng.standard_normal((4, 2)).astype(np.float32)
    check(em.full_like(em.array(x), 2.5, dtype=em.float16), np.full((4, 2), 2.5), em.float16)
    check(em.zeros_like(em.array(x).T), np.zeros((2, 4)), em.float32)


# ---- ranges ----

@pytest.mark.parametrize("args", [
    (5,), (0,), (-3,), (2, 9), (9, 2), (2, 9, 3), (10, 0, -3), (10, -10, -7), (0, 10, 20),
    (-5, 5, 2), (3, 3), (3, 4, -1),
])
def test_arange_int(args):
    check(em.arange(*args), np.arange(*args), em.int32)


@pytest.mark.parametrize("args", [
    (5.0,), (0.5, 3.0), (0, 1, 0.1), (1.0, -1.0, -0.25), (-1.5, 1.5, 0.3), (0, 5, 1.5),
    (2.5,), (1, 1.0), (3, 0, 0.5), (0.0, 2.0, 0.7),
])
def test_arange_float(args):
    out = em.arange(*args)
    assert out.dtype == em.float32
    expected = np.arange(*args)
    assert out.shape == expected.shape
    np.testing.assert_allclose(np.array(out), expected, rtol=1e-6, atol=1e-6)


def test_arange_keywords_and_dtype():
    check(em.arange(start=2, stop=8, step=2), np.arange(2, 8, 2), em.int32)
    check(em.arange(2, 8, dtype=em.float16), np.arange(2, 8), em.float16)
    check(em.arange(0, 1, 0.25, dtype=em.float64), np.arange(0, 1, 0.25), em.float64)
    check(em.arange(5, dtype=em.int64), np.arange(5), em.int64)
    check(em.arange(0.0, 6.0, 2.0, dtype=em.int32), np.arange(0, 6, 2), em.int32)
    check(em.arange(10, 0, -2, dtype=em.uint8), np.arange(10, 0, -2), em.uint8)
    check(em.arange(3, dtype=em.bfloat16), np.arange(3), em.bfloat16)


def test_arange_errors():
    with pytest.raises(ValueError, match=r"\[arange\]"):
        em.arange(0, 10, 0)
    with pytest.raises(ValueError, match=r"\[arange\]"):
        em.arange(0, float("inf"))
    with pytest.raises(TypeError, match=r"\[arange\]"):
        em.arange()


def test_arange_large():
    n = 300_001
    check(em.arange(n), np.arange(n), em.int32)
    check(em.arange(-n, n, 7), np.arange(-n, n, 7), em.int32)


@pytest.mark.parametrize("start,stop,num", [(0, 1, 5), (-3, 7, 11), (2, -2, 9), (0, 1, 1),
                                            (5, 5, 4), (0, 1, 0), (0.5, 100.25, 1000)])
def test_linspace(start, stop, num):
    out = em.linspace(start, stop, num)
    expected = np.linspace(start, stop, num)
    check(out, expected, em.float32)
    if num > 1:
        assert np.array(out)[-1] == np.float32(stop)
        assert np.array(out)[0] == np.float32(start)


def test_linspace_dtypes():
    check(em.linspace(0, 10, 7, dtype=em.int32), np.linspace(0, 10, 7).astype(np.int32),
          em.int32)
    check(em.linspace(-1, 1, 9, dtype=em.float16), np.linspace(-1, 1, 9), em.float16)
    check(em.linspace(-1, 1, 9, dtype=em.float64), np.linspace(-1, 1, 9), em.float64)
    assert em.linspace(0, 1).shape == (50,)
    with pytest.raises(ValueError, match=r"\[linspace\]"):
        em.linspace(0, 1, -1)


# ---- matrices ----

@pytest.mark.parametrize("n,m,k", [(3, None, 0), (4, 6, 0), (5, 3, 0), (4, 4, 1), (4, 4, -2),
                                   (3, 5, 2), (3, 5, -4), (4, 4, 10), (0, 3, 0), (1, None, 0)])
def test_eye_and_tri(n, m, k):
    check(em.eye(n, m, k), np.eye(n, m, k), em.float32)
    check(em.eye(n, m, k, dtype=em.int32), np.eye(n, m, k, dtype=np.int32), em.int32)
    check(em.eye(n, m=m, k=k, dtype=em.bool_), np.eye(n, m, k, dtype=bool), em.bool_)
    check(em.tri(n, m, k), np.tri(n, m, k), em.float32)
    check(em.tri(n, m, k, dtype=em.int16), np.tri(n, m, k, dtype=np.int16), em.int16)


def test_identity():
    for n in (0, 1, 4):
        check(em.identity(n), np.identity(n), em.float32)
        check(em.identity(n, dtype=em.uint8), np.identity(n, np.uint8), em.uint8)
        check(em.identity(n, em.float16), np.identity(n), em.float16)


def test_large_eye():
    check(em.eye(400, 300, 5, dtype=em.int8), np.eye(400, 300, 5, dtype=np.int8), em.int8)


@pytest.mark.parametrize("indexing", ["xy", "ij"])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("sizes", [(3,), (3, 4), (2, 3, 4), (1, 5), (0, 2), (2, 3, 1, 2)],
                         ids=str)
def test_meshgrid(rng, indexing, sparse, sizes):
    xs = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    got = em.meshgrid(*[em.array(x) for x in xs], indexing=indexing, sparse=sparse)
    expected = np.meshgrid(*xs, indexing=indexing, sparse=sparse)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        check(g, e, em.float32)


def test_meshgrid_mixed_dtypes_and_errors():
    a, b = em.arange(3), em.array([0.5, 1.5])
    ga, gb = em.meshgrid(a, b)
    check(ga, np.meshgrid(np.arange(3), [0.5, 1.5])[0], em.int32)
    check(gb, np.meshgrid(np.arange(3), [0.5, 1.5])[1], em.float32)
    with pytest.raises(ValueError, match=r"\[meshgrid\]"):
        em.meshgrid(a, b, indexing="xz")


@pytest.mark.parametrize("np_type", [">i4", ">u2", ">f4", ">f8", ">c8", ">c16", "<i8"])
def test_array_from_non_native_byte_order(np_type, rng):
    x = (rng.standard_normal(7) * 100).astype(np_type)
    if x.dtype.kind == "c":
        x = x + 1j * rng.standard_normal(7).astype(np_type)
    a = em.array(x)
    np.testing.assert_allclose(np.array(a), x.astype(x.dtype.newbyteorder("=")), rtol=1e-6)


def test_full_keeps_a_float64_fill_value_exact():
    assert em.full((3,), 0.1, em.float64).tolist() == [0.1] * 3
    assert em.full((2,), 2**40 + 1, em.int64).tolist() == [2**40 + 1] * 2
