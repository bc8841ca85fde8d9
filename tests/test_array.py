"""The array object: metadata, Python and numpy conversion, operators (with
Python scalars on either side), astype over every dtype pair, and the
printed form, which follows mlx.core's (mlx/utils.cpp, print_subarray).
"""
import copy
import operator
import pickle
import warnings

import numpy as np
import pytest

import ember.core as em

ALL_DTYPES = [em.bool_, em.uint8, em.uint16, em.uint32, em.uint64, em.int8, em.int16,
              em.int32, em.int64, em.float16, em.float32, em.float64, em.bfloat16,
              em.complex64]
INT_DTYPES = ALL_DTYPES[1:9]


def np_dtype(d):
    return np.dtype("float32" if d == em.bfloat16 else d.name)


def ids(d):
    return d.name


# ---- metadata ----

@pytest.mark.parametrize("shape", [(), (0,), (4,), (2, 3), (2, 0, 5), (3, 1, 4, 2)], ids=str)
def test_metadata(rng, shape):
    for d in ALL_DTYPES:
        a = em.zeros(shape, dtype=d)
        ref = np.zeros(shape, np_dtype(d))
        assert a.shape == ref.shape and isinstance(a.shape, tuple)
        assert a.ndim == ref.ndim
        assert a.size == ref.size
        assert a.dtype == d
        assert a.itemsize == d.size
        assert a.nbytes == ref.size * d.size


@pytest.mark.parametrize("shape", [(), (5,), (2, 3), (2, 3, 4)], ids=str)
def test_transpose_property(rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    a = em.array(x)
    assert a.T.shape == x.T.shape
    np.testing.assert_array_equal(np.array(a.T), x.T)
    np.testing.assert_array_equal(np.array(a.T.T), x)


# ---- Python conversion ----

@pytest.mark.parametrize("d", ALL_DTYPES, ids=ids)
def test_item_and_tolist(rng, d):
    x = (rng.integers(0, 50, (2, 3)) + (0.5 if d in (em.float16, em.float32, em.float64,
                                                      em.bfloat16) else 0)).astype(np_dtype(d))
    if d == em.complex64:
        x = x + 1j * rng.integers(-5, 5, (2, 3))
        x = x.astype(np.complex64)
    a = em.array(x, dtype=d)
    expected = x.tolist()
    assert a.tolist() == expected
    kind = {"b": bool, "u": int, "i": int, "f": float, "c": complex}[np_dtype(d).kind]
    assert all(type(v) is kind for row in a.tolist() for v in row)
    one = em.array(x[1, 2], dtype=d)
    assert one.item() == expected[1][2] and type(one.item()) is kind
    assert em.array(x[:1, :1], dtype=d).item() == expected[0][0]
    with pytest.raises(ValueError, match=r"\[item\]"):
        a.item()


def test_scalar_conversions():
    assert bool(em.array(3)) is True and bool(em.array(0.0)) is False
    assert bool(em.array([[True]])) is True
    assert int(em.array(3.7)) == 3 and float(em.array(2)) == 2.0
    assert complex(em.array(1 + 2j)) == 1 + 2j
    assert list(range(em.array(4))) == [0, 1, 2, 3]
    assert [10, 20, 30][em.array(1, dtype=em.uint8)] == 20
    with pytest.raises(TypeError, match="integer"):
        [1, 2][em.array(1.0)]
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        bool(em.array([1, 2]))
    with pytest.raises(ValueError):
        bool(em.array([]))
    assert f"{em.array(2.5):.2f}" == "2.50"
    assert format(em.array([1, 2])) == str(em.array([1, 2]))


def test_len_and_iter(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    a = em.array(x)
    assert len(a) == 4
    rows = list(a)
    assert len(rows) == 4
    for r, xr in zip(rows, x):
        assert r.shape == (3,)
        np.testing.assert_array_equal(np.array(r), xr)
    assert [v.item() for v in em.array([5, 6, 7])] == [5, 6, 7]
    assert len(em.zeros((0, 3))) == 0 and list(em.zeros((0, 3))) == []
    with pytest.raises(TypeError, match="0-d"):
        len(em.array(1))
    with pytest.raises(TypeError, match="0-d"):
        iter(em.array(1)).__next__()


# ---- numpy conversion ----

@pytest.mark.parametrize("d", ALL_DTYPES, ids=ids)
def test_numpy_round_trip(rng, d):
    x = (rng.standard_normal((3, 4)) * 20).astype(np_dtype(d))
    if d == em.bfloat16:
        x = np.round(x)  # representable exactly in bfloat16
    a = em.array(x, dtype=d)
    y = np.array(a)
    assert y.dtype == np_dtype(d)
    np.testing.assert_array_equal(y, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        assert np.array(a, dtype=np.float64).dtype == np.float64
        np.testing.assert_array_equal(np.array(a, dtype=np.float64), x.astype(np.float64))


def test_numpy_copy_and_zero_copy_view(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    a = em.array(x) * 2
    v1, v2 = np.asarray(a), np.asarray(a)
    assert np.shares_memory(v1, v2)  # both views of the array's own buffer
    assert not v1.flags.writeable
    c = np.array(a)
    assert not np.shares_memory(c, v1)
    c[0, 0] = 1234.0
    assert np.array(a)[0, 0] != 1234.0
    np.testing.assert_array_equal(v1, x * 2)
    # a view outlives the array object it came from
    v = np.asarray(em.array(x) + 1)
    np.testing.assert_array_equal(v, x + 1)


def test_numpy_view_of_non_contiguous_arrays(rng):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    a = em.array(x)
    for view, ref in ((a.T, x.T), (a[::-1, ::2], x[::-1, ::2]),
                      (em.broadcast_to(a[:1], (3, 6)), np.broadcast_to(x[:1], (3, 6)))):
        np.testing.assert_array_equal(np.asarray(view), ref)
        assert np.array(view).shape == ref.shape


def test_copy_and_pickle(rng):
    x = rng.standard_normal((2, 3)).astype(np.float16)
    a = em.array(x)
    for b in (copy.copy(a), copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
        assert b.dtype == em.float16
        np.testing.assert_array_equal(np.array(b), x)
    b = pickle.loads(pickle.dumps(em.array([1.5, 2.5], dtype=em.bfloat16)))
    assert b.dtype == em.bfloat16 and b.tolist() == [1.5, 2.5]


# ---- operators ----

BINARY_OPERATORS = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": operator.pow, "==": operator.eq,
    "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge, "&": operator.and_, "|": operator.or_, "^": operator.xor,
    "<<": operator.lshift, ">>": operator.rshift,
}
BITWISE = {"&", "|", "^", "<<", ">>"}


def expected_dtype(sym, array_dtype, scalar):
    """mlx.core's result dtype of `array op scalar` (scalars are weakly typed)."""
    if sym in ("==", "!=", "<", "<=", ">", ">="):
        return em.bool_
    d = array_dtype
    if isinstance(scalar, float) and d not in (em.float16, em.float32, em.float64,
                                                em.bfloat16, em.complex64):
        d = em.float32
    if sym == "/" and d in INT_DTYPES + [em.bool_]:
        d = em.float32
    return d


@pytest.mark.parametrize("sym", list(BINARY_OPERATORS))
@pytest.mark.parametrize("d", [em.int32, em.float32, em.uint8, em.float16, em.int64],
                         ids=ids)
def test_operators_with_scalars(rng, sym, d):
    op = BINARY_OPERATORS[sym]
    x = rng.integers(1, 6, (3, 4)).astype(np_dtype(d))
    a = em.array(x)
    scalars = [2, 3] if (sym in BITWISE or d in (em.uint8,)) else [2, 3, 1.5]
    if sym in BITWISE and d in (em.float32, em.float16):
        with pytest.raises(TypeError, match="requires integer or bool"):
            op(a, 2)
        with pytest.raises(TypeError, match="requires integer or bool"):
            op(2, a)
        return
    for s in scalars:
        for out, ref in ((op(a, s), _np_op(op, x, s, d)), (op(s, a), _np_op(op, s, x, d))):
            ed = expected_dtype(sym, d, s)
            assert out.dtype == ed, (sym, s, out.dtype, ed)
            rtol = 2e-3 if ed == em.float16 else 1e-6
            np.testing.assert_allclose(np.array(out), ref.astype(np_dtype(ed)), rtol=rtol)


def _np_op(op, x, y, d):
    """numpy's result on values cast to the dtype ember computes in."""
    scalar = y if np.ndim(y) == 0 else x
    cd = np.float64 if isinstance(scalar, float) or d in (em.float16, em.float32) else np.int64
    with np.errstate(all="ignore"):
        return np.asarray(op(np.asarray(x, cd), np.asarray(y, cd)))


@pytest.mark.parametrize("sym", list(BINARY_OPERATORS))
def test_operators_between_arrays(rng, sym):
    op = BINARY_OPERATORS[sym]
    x = rng.integers(1, 7, (3, 4)).astype(np.int32)
    y = rng.integers(1, 4, (4,)).astype(np.int16)
    out = op(em.array(x), em.array(y))
    with np.errstate(all="ignore"):
        ref = op(x.astype(np.int64), y.astype(np.int64))
    assert out.shape == (3, 4)
    if sym == "/":
        assert out.dtype == em.float32
        np.testing.assert_allclose(np.array(out), ref, rtol=1e-6)
    else:
        np.testing.assert_array_equal(np.array(out), ref)
        assert out.dtype == (em.bool_ if ref.dtype == bool else em.int32)


def test_unary_operators(rng):
    x = rng.integers(-9, 9, (3, 4)).astype(np.int32)
    a = em.array(x)
    np.testing.assert_array_equal(np.array(-a), -x)
    assert +a is a
    np.testing.assert_array_equal(np.array(abs(a)), np.abs(x))
    np.testing.assert_array_equal(np.array(~a), ~x)
    b = em.array(x > 0)
    assert (~b).dtype == em.bool_
    np.testing.assert_array_equal(np.array(~b), ~(x > 0))
    f = em.array(x.astype(np.float32))
    with pytest.raises(TypeError, match=r"\[bitwise_invert\].*float32"):
        ~f
    with pytest.raises(TypeError, match=r"\[negative\].*bool"):
        -b


def test_divmod_operator(rng):
    x = rng.integers(-20, 20, 10).astype(np.int32)
    q, r = divmod(em.array(x), 3)
    np.testing.assert_array_equal(np.array(q), x // 3)
    np.testing.assert_array_equal(np.array(r), x % 3)
    q, r = divmod(7, em.array([2, -3]))
    assert q.tolist() == [3, -3] and r.tolist() == [1, -2]


def test_inplace_operators_rebind(rng):
    x = rng.standard_normal(5).astype(np.float32)
    a = em.array(x)
    b = a
    a += 1
    a *= 2.0
    a -= em.array(x)
    assert a is not b
    np.testing.assert_array_equal(np.array(b), x)
    np.testing.assert_allclose(np.array(a), (x + 1) * 2 - x, rtol=1e-6)
    i = em.array([1, 2, 3])
    i //= 2
    i <<= 1
    i |= 1
    assert i.tolist() == [1, 3, 3] and i.dtype == em.int32


def test_operator_broadcast_error_names_shapes():
    with pytest.raises(ValueError, match=r"\[add\] shapes \(2, 3\) and \(2,\) cannot be broadcast"):
        em.ones((2, 3)) + em.ones((2,))
    with pytest.raises(ValueError, match=r"\[less\] shapes \(4,\) and \(3,\)"):
        em.ones((4,)) < em.ones((3,))


def test_comparison_with_numpy_on_the_left(rng):
    x = rng.standard_normal(4).astype(np.float32)
    out = x + em.array(x)  # __array_priority__ hands the op to ember
    assert isinstance(out, em.array)
    np.testing.assert_array_equal(np.array(out), x + x)


# ---- astype ----

def astype_values(rng, src, dst):
    """Values that src holds exactly and dst can represent (truncation aside)."""
    signed_ok = all(np_dtype(d).kind not in "ub" for d in (src, dst))
    lo = -100 if signed_ok else 0
    hi = 2 if em.bool_ in (src, dst) else 100
    if em.bool_ in (src, dst):
        lo = 0
    x = rng.integers(lo, hi, (5, 6)).astype(np.float64)
    if np_dtype(src).kind in "fc":
        x = x + rng.choice([0.0, 0.25, 0.5, 0.75], x.shape) * (np_dtype(dst).kind != "b")
    if src == em.complex64:
        x = x + 1j * rng.integers(-3, 3, x.shape)
    return x.astype(np_dtype(src))


@pytest.mark.parametrize("src", ALL_DTYPES, ids=ids)
def test_astype_all_pairs(rng, src):
    for dst in ALL_DTYPES:
        x = astype_values(rng, src, dst)
        a = em.array(x, dtype=src)
        x = np.array(a)  # bfloat16: the values the source really holds
        out = a.astype(dst)
        assert out.dtype == dst
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
            ref = x.astype(np_dtype(dst))
        got = np.array(out)
        if dst in (em.float16, em.bfloat16):
            rtol = 1e-3 if dst == em.float16 else 8e-3
            np.testing.assert_allclose(got, ref, rtol=rtol, err_msg=f"{src} -> {dst}")
        else:
            np.testing.assert_array_equal(got, ref, err_msg=f"{src} -> {dst}")
        # a transposed (non-contiguous) source converts the same way
        np.testing.assert_array_equal(np.array(a.T.astype(dst)), got.T)


def test_astype_same_dtype_and_dtype_likes(rng):
    a = em.array([1.5, -2.5])
    assert a.astype(em.float32) is a
    assert a.astype(np.float16).dtype == em.float16
    assert a.astype("int8").tolist() == [1, -2]
    assert a.astype(int).dtype == em.int32 and a.astype(float).dtype == em.float32
    assert a.astype(bool).tolist() == [True, True]


def test_astype_special_values():
    x = np.array([np.inf, -np.inf, np.nan, -0.0, 0.0, 1e-40, 70000.0, -1e10], np.float32)
    a = em.array(x)
    np.testing.assert_array_equal(np.array(a.astype(em.bool_)), x.astype(bool))
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(np.array(a.astype(em.float16)), x.astype(np.float16))
    np.testing.assert_array_equal(np.array(a.astype(em.float64)), x.astype(np.float64))
    bf = np.array(a.astype(em.bfloat16))
    assert np.isposinf(bf[0]) and np.isneginf(bf[1]) and np.isnan(bf[2])
    assert np.signbit(np.array(a.astype(em.float16))[3])


def test_astype_integer_wraps(rng):
    x = rng.integers(-(2**31), 2**31 - 1, 50).astype(np.int64)
    for dst in (em.int8, em.uint8, em.int16, em.uint16, em.int32, em.uint32):
        np.testing.assert_array_equal(np.array(em.array(x).astype(dst)),
                                      x.astype(np_dtype(dst)))


@pytest.mark.parametrize("src", [em.float32, em.float64, em.float16, em.bfloat16], ids=ids)
def test_astype_float_to_int_truncates(src):
    x = np.array([2.9, -2.9, 0.5, -0.5, 100.99, -100.99, 7.0], np.float32)
    a = em.array(x).astype(src)
    vals = np.array(a)
    for dst in (em.int8, em.int32, em.int64, em.int16):
        np.testing.assert_array_equal(np.array(a.astype(dst)), np.trunc(vals).astype(np_dtype(dst)))


# ---- printing ----

@pytest.mark.parametrize("make,expected", [
    (lambda: em.array([2, 4, 6, 8], dtype=em.float32), "array([2, 4, 6, 8], dtype=float32)"),
    (lambda: em.array([1, 2, 3, 4]) + em.array([1.0, 2, 3, 4]),
     "array([2, 4, 6, 8], dtype=float32)"),
    (lambda: em.array(1), "array(1, dtype=int32)"),
    (lambda: em.array(1.5), "array(1.5, dtype=float32)"),
    (lambda: em.array(True), "array(True, dtype=bool)"),
    (lambda: em.array([True, False]), "array([True, False], dtype=bool)"),
    (lambda: em.array([[1, 2], [3, 4]]), "array([[1, 2],\n       [3, 4]], dtype=int32)"),
    (lambda: em.arange(8).reshape(2, 2, 2),
     "array([[[0, 1],\n        [2, 3]],\n       [[4, 5],\n        [6, 7]]], dtype=int32)"),
    (lambda: em.array([0.1, -2.5, 1e6, 1e-5, 123456789.0]),
     "array([0.1, -2.5, 1e+06, 1e-05, 1.23457e+08], dtype=float32)"),
    (lambda: em.array([float("nan"), float("inf"), -float("inf"), -0.0]),
     "array([nan, inf, -inf, -0], dtype=float32)"),
    (lambda: em.array([0.1], dtype=em.float16), "array([0.0999756], dtype=float16)"),
    (lambda: em.array([0.1, 3.0], dtype=em.bfloat16), "array([0.100098, 3], dtype=bfloat16)"),
    (lambda: em.array([1 + 2j, 3 - 4.5j]), "array([1+2j, 3-4.5j], dtype=complex64)"),
    (lambda: em.array([-7, 200], dtype=em.int16), "array([-7, 200], dtype=int16)"),
    (lambda: em.array([255], dtype=em.uint8), "array([255], dtype=uint8)"),
    (lambda: em.array([-128], dtype=em.int8), "array([-128], dtype=int8)"),
    (lambda: em.array([2**63], dtype=em.uint64), "array([9223372036854775808], dtype=uint64)"),
    (lambda: em.array([1.0, 2.0], dtype=em.float64), "array([1, 2], dtype=float64)"),
    (lambda: em.zeros((0,)), "array([], dtype=float32)"),
    (lambda: em.zeros((2, 0), dtype=em.int32), "array([[],\n       []], dtype=int32)"),
    (lambda: em.arange(7), "array([0, 1, 2, ..., 4, 5, 6], dtype=int32)"),
    (lambda: em.arange(6), "array([0, 1, 2, 3, 4, 5], dtype=int32)"),
    (lambda: em.arange(14).reshape(7, 2),
     "array([[0, 1],\n       [2, 3],\n       [4, 5],\n       ...,\n       [8, 9],\n"
     "       [10, 11],\n       [12, 13]], dtype=int32)"),
])
def test_repr(make, expected):
    a = make()
    assert repr(a) == expected
    assert str(a) == expected


def test_repr_of_views_and_large_arrays(rng):
    x = np.arange(12).reshape(3, 4).astype(np.int32)
    assert repr(em.array(x).T) == ("array([[0, 4, 8],\n       [1, 5, 9],\n       [2, 6, 10],"
                                   "\n       [3, 7, 11]], dtype=int32)")
    big = em.arange(100_000).reshape(1000, 100)
    text = repr(big)
    assert text.startswith("array([[0, 1, 2, ..., 97, 98, 99],\n       [100, 101, 102, ...")
    assert text.endswith("[99900, 99901, 99902, ..., 99997, 99998, 99999]], dtype=int32)")
    assert text.count("\n") == 6
