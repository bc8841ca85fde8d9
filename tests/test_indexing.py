"""Indexing against numpy: `a[idx]`, `a[idx] = v`, `a.at[idx].op(v)`, take,
take_along_axis and put_along_axis, on fresh random data of several dtypes
and on non-contiguous inputs."""
import numpy as np
import pytest

import ember.core as em
from array_layouts import check, make, random_data

DTYPES = ["float32", "int32", "bool", "float16", "complex64", "uint8"]
LAYOUTS = ["contiguous", "transposed", "reversed", "broadcast", "view_chain"]


def to_ember_index(index, kind):
    """The same index with its integer arrays given as lists, ember or numpy arrays."""
    def convert(i):
        if isinstance(i, np.ndarray):
            return {"list": i.tolist(), "ember": em.array(i), "numpy": i}[kind]
        return i
    return tuple(convert(i) for i in index) if isinstance(index, tuple) else convert(index)


# ---- basic indices ----

BASIC_INDICES = [
    0, -1, 3, (1, 2), (-2, -1, -6), (slice(None),), (slice(1, 3),), (slice(None, None, 2),),
    (slice(None, None, -1),), (slice(3, 0, -2),), (slice(-1, -5, -1), slice(None, None, -3)),
    (slice(10, None),), (slice(None, -10),), (slice(3, 1),), (slice(1, 3), 2, slice(None, None, -2)),
    (None,), (None, 0, None), (Ellipsis,), (Ellipsis, 0), (0, Ellipsis), (Ellipsis, None),
    (1, Ellipsis, slice(None, None, -1)), (None, Ellipsis, None, 2), (slice(-2, None), None, -1),
    (),
]


@pytest.mark.parametrize("index", BASIC_INDICES, ids=repr)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_basic_index(rng, index, layout):
    a, x = make(rng, (4, 5, 6), "float32", layout)
    check(a[index], x[index])


@pytest.mark.parametrize("dtype", DTYPES)
def test_basic_index_dtypes(rng, dtype):
    a, x = make(rng, (4, 5, 6), dtype, "view_chain")
    for index in [(1, slice(None, None, -2)), (Ellipsis, None, 3), (slice(3, 0, -1), -1, 0)]:
        check(a[index], x[index])


def test_index_of_index(rng):
    a, x = make(rng, (6, 7), "int32", "transposed")
    check(a[::-1][1:5:2][:, ::-3][1], x[::-1][1:5:2][:, ::-3][1])


def test_zero_d_and_empty(rng):
    a, x = make(rng, (), "float32")
    for index in [(), Ellipsis, None, (None, Ellipsis, None)]:
        check(a[index], x[index])
    b, y = make(rng, (0, 3), "int32")
    for index in [(slice(None), 1), (Ellipsis, slice(1, None)), (slice(None, None, -1),), (None,)]:
        check(b[index], y[index])
    c, z = make(rng, (3, 4), "int32")
    check(c[np.array([], np.int32)], z[np.array([], np.int32)])
    check(c[[]], z[np.array([], np.intp)])
    check(c[:, []], z[:, np.array([], np.intp)])


def test_iteration_and_len(rng):
    a, x = make(rng, (3, 2), "uint8", "reversed")
    assert len(a) == 3
    rows = list(a)
    assert len(rows) == 3
    for row, expected in zip(rows, x):
        check(row, expected)


@pytest.mark.parametrize("index,match", [
    (4, r"index 4 is out of bounds for axis 0 with size 4"),
    (-5, r"index -5 is out of bounds for axis 0 with size 4"),
    ((0, 5), r"index 5 is out of bounds for axis 1 with size 5"),
    ((Ellipsis, -7), r"index -7 is out of bounds for axis 2 with size 6"),
    ((0, 0, 0, 0), r"too many indices for array of dimension 3"),
    ((Ellipsis, 0, Ellipsis), r"single ellipsis"),
])
def test_static_out_of_bounds_raises_at_once(index, match):
    a = em.zeros((4, 5, 6))
    with pytest.raises(IndexError, match=match):
        a[index]


def test_zero_d_array_cannot_take_an_int():
    with pytest.raises(IndexError, match=r"too many indices for array of dimension 0"):
        em.array(1.0)[0]


# ---- advanced (integer array) indices ----

def _adv_indices(rng):
    """(index, note) pairs covering every placement of advanced indices in a (4, 5, 6) array."""
    i4 = rng.integers(-4, 4, 3)
    i5 = rng.integers(-5, 5, 3)
    i6 = rng.integers(-6, 6, 3)
    j5 = rng.integers(0, 5, (2, 1))
    k6 = rng.integers(-6, 6, (2, 3))
    return [
        i4, (slice(None), i5), (Ellipsis, i6), (i4, i5), (slice(None), i5, i6),
        (i4, slice(None), i6),            # non-adjacent: broadcast dims go first
        (i4, slice(1, None, 2), k6),      # non-adjacent with 2-D index
        (i4, 2), (1, slice(None), i6),    # int + array: ints count as advanced
        (slice(None, None, -1), j5, k6),  # adjacent, broadcasting (2, 1) with (2, 3)
        (None, i4, Ellipsis, i6),         # non-adjacent with a new axis
        (i4, None, i5),                   # None between: non-adjacent
        (i4[None, :2], Ellipsis), (slice(None), None, j5, None),
        (i4, i5, i6), (np.array(2), slice(None), np.array([1, -1])),
        (i4[:, None], j5[0], slice(None, None, -2)),
        (-1, j5, slice(2, 5)),            # int + array adjacent at the front
        (slice(1, 3), -2, i6),            # int + array adjacent after a slice
    ]


@pytest.mark.parametrize("case", range(19))
@pytest.mark.parametrize("kind", ["list", "ember", "numpy"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "view_chain"])
def test_advanced_index(rng, case, kind, layout):
    a, x = make(rng, (4, 5, 6), "float32", layout)
    index = _adv_indices(rng)[case]
    check(a[to_ember_index(index, kind)], x[index])


@pytest.mark.parametrize("dtype", DTYPES)
def test_advanced_index_dtypes(rng, dtype):
    a, x = make(rng, (4, 5, 6), dtype, "reversed")
    for index in [(np.array([3, 0, 3]),), (slice(None), np.array([[1], [-2]]), np.array([0, 5])),
                  (np.array([1, 2]), slice(None), np.array([-1]))]:
        check(a[to_ember_index(index, "ember")], x[index])


@pytest.mark.parametrize("index_dtype", ["int8", "uint8", "int16", "int32", "int64", "uint32"])
def test_index_array_dtypes(rng, index_dtype):
    a, x = make(rng, (5, 3), "int32")
    idx = rng.integers(0, 5, 4).astype(index_dtype)
    check(a[em.array(idx)], x[idx])
    check(a[idx, 1], x[idx, 1])


def test_advanced_index_of_broadcast_and_empty(rng):
    a, x = make(rng, (3, 4), "complex64", "broadcast")
    idx = np.array([[2, 0], [1, 1]])
    check(a[idx, ::-1], x[idx, ::-1])
    e, y = make(rng, (0, 4), "float32")
    check(e[:, [1, 3]], y[:, [1, 3]])
    check(a[np.zeros((0, 2), np.int32)], x[np.zeros((0, 2), np.int32)])
    # Empty only along an axis that is not indexed: the indexed axes still have elements.
    f, z = make(rng, (3, 4, 0), "int32")
    index = (np.array([0, 2]), np.array([1, -1]))
    check(f[index], z[index])
    check(f[index[0], ::-1], z[index[0], ::-1])
    check(f.at[index].add(em.array(1)), z)
    check(em.take(f, em.array([2, 0]), axis=1), np.take(z, [2, 0], axis=1))


@pytest.mark.parametrize("index", [
    (np.array([0, 4]),), (slice(None), np.array([-6])), (np.array([1]), np.array([5])),
    (np.array([0, 1]), slice(None), np.array([0, 6])), (2, np.array([[5, 0]])),
])
def test_out_of_bounds_index_array_raises_when_evaluated(index):
    a = em.zeros((4, 5, 6))
    index = to_ember_index(index, "ember")
    out = a[index]
    with pytest.raises(IndexError):
        em.eval(out)


@pytest.mark.parametrize("mask", [np.array([True, False, True, True]),
                                  np.ones((4, 5), bool), [True, False, False, True]])
def test_boolean_mask_points_to_where(mask):
    a = em.zeros((4, 5))
    mask = em.array(mask) if isinstance(mask, np.ndarray) else mask
    with pytest.raises(IndexError, match=r"boolean mask.*where"):
        a[mask]
    with pytest.raises(IndexError, match=r"boolean mask.*where"):
        a[mask] = 1.0


@pytest.mark.parametrize("index,match", [
    (True, r"boolean"), (1.5, r"unsupported index"), ((slice(None), em.array([1.0])), r"integers"),
    ("a", r"unsupported index"),
])
def test_bad_index_types(index, match):
    with pytest.raises(IndexError, match=match):
        em.zeros((4, 5))[index]


# ---- assignment ----

SET_INDICES = [
    (1,), (-1, slice(None, None, -2)), (slice(1, 3), None, 4), (Ellipsis, slice(4, 0, -2)), (),
    (np.array([3, 0, 2]),), (slice(None), np.array([-1, 1])), (np.array([0, 2]), 1, np.array([5, 0])),
    (np.array([1, 3]), slice(None), np.array([2, -2])), (None, slice(None, None, -1), np.array([[0], [4]])),
    (2, np.array([1, 2]), slice(None, None, 3)),
]


@pytest.mark.parametrize("case", range(len(SET_INDICES)))
@pytest.mark.parametrize("dtype", DTYPES)
def test_setitem(rng, case, dtype):
    index = SET_INDICES[case]
    a, x = make(rng, (4, 5, 6), dtype, "transposed")
    target_shape = x[index].shape
    for value_shape in [target_shape, target_shape[-1:], ()]:
        b = em.array(a)
        y = x.copy()
        v = random_data(rng, value_shape, dtype)
        result = b.__setitem__(to_ember_index(index, "ember"), em.array(v))
        assert result is None
        y[index] = v
        check(b, y)
    check(a, x)  # a separate Python object is not touched


def test_setitem_rebinds_the_object_not_other_arrays(rng):
    a, x = make(rng, (3, 4), "float32")
    row = a[1]
    doubled = a * 2
    alias = a
    a[1, ::-1] = em.array([1.0, 2.0, 3.0, 4.0])
    x_new = x.copy()
    x_new[1, ::-1] = [1, 2, 3, 4]
    check(a, x_new)
    check(alias, x_new)   # same Python object
    check(row, x[1])      # arrays built before keep their values
    check(doubled, x * 2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_setitem_python_scalars_take_the_array_dtype(rng, dtype):
    a, x = make(rng, (3, 4), dtype, "reversed")
    a[1] = 1
    a[:, 2] = True
    a[[0, 2], 3] = 0
    x = x.copy()
    x[1] = 1
    x[:, 2] = True
    x[[0, 2], 3] = 0
    check(a, x)


def test_setitem_casts_float_values_to_int_arrays(rng):
    a, x = make(rng, (5,), "int32")
    a[::2] = em.array([1.5, -2.5, 3.0])
    x[::2] = np.array([1.5, -2.5, 3.0]).astype(np.int32)
    check(a, x)


def test_setitem_zero_d_and_empty(rng):
    a = em.array(1.5)
    a[...] = 4.0
    check(a, np.array(4.0, np.float32))
    a[()] = em.array(2)
    check(a, np.array(2.0, np.float32))
    e = em.zeros((0, 3))
    e[:, 1] = 5.0
    check(e, np.zeros((0, 3), np.float32))


def test_setitem_shape_mismatch_error():
    a = em.zeros((4, 5))
    with pytest.raises(ValueError, match=r"\[setitem\].*value of shape \(3,\).*shape \(4, 5\)"):
        a[:, :] = em.zeros(3)
    with pytest.raises(ValueError, match=r"\[setitem\].*value of shape \(2,\).*shape \(3,\)"):
        a[[0, 1, 2], 0] = em.zeros(2)
    with pytest.raises(ValueError, match=r"\[setitem\].*value of shape \(2, 5\).*shape \(5,\)"):
        a[1] = em.zeros((2, 5))


def test_setitem_value_with_leading_unit_axes(rng):
    a, x = make(rng, (4, 5), "float32", "transposed")
    v = random_data(rng, (1, 1, 5), "float32")
    a[2] = em.array(v)
    a[[0, 3], ::-1] = em.array(v)
    x = x.copy()
    x[2] = v
    x[[0, 3], ::-1] = v
    check(a, x)


def test_setitem_out_of_bounds():
    a = em.zeros((4, 5))
    with pytest.raises(IndexError, match=r"index 4 is out of bounds for axis 0 with size 4"):
        a[4] = 1.0
    a[em.array([0, 7])] = 1.0
    with pytest.raises(IndexError):
        em.eval(a)


# ---- .at updates ----

def _np_at(op, x, index, v):
    y = x.copy()
    ufunc = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply,
             "divide": np.divide, "maximum": np.maximum, "minimum": np.minimum}[op]
    if op == "divide" and y.dtype.kind in "iub":
        raise AssertionError("divide is tested on inexact dtypes")
    ufunc.at(y, index, v)
    return y


AT_INDICES = [
    (np.array([0, 2, 0, 0, 3]),),                          # repeated rows
    (slice(None), np.array([1, 1, -4, 4])),                 # repeated with a negative alias
    (np.array([1, 1, 2]), np.array([0, 0, 3])),             # repeated pairs
    (np.array([[0, 0], [3, 0]]), slice(None, None, -1)),
    (np.array([2, 2]), 1),
    (slice(1, 3), slice(None, None, -2)),                   # basic only
    (Ellipsis, 0),
]


@pytest.mark.parametrize("case", range(len(AT_INDICES)))
@pytest.mark.parametrize("op", ["add", "subtract", "multiply", "maximum", "minimum"])
@pytest.mark.parametrize("dtype", ["float32", "int32", "float16"])
def test_at_accumulates(rng, case, op, dtype):
    index = AT_INDICES[case]
    a, x = make(rng, (4, 5), dtype, "transposed")
    shape = x[index].shape
    v = random_data(rng, shape, dtype)
    if dtype == "int32":
        v = np.clip(v, -3, 3).astype(np.int32)
        a, x = em.clip(a, -10, 10), np.clip(x, -10, 10)
    out = getattr(a.at[to_ember_index(index, "ember")], op)(em.array(v))
    expected = _np_at(op, x, index, v)
    if dtype == "float16":
        np.testing.assert_allclose(np.array(out), expected, rtol=1e-2, atol=1e-2)
        assert out.dtype == em.float16
    else:
        check(out, expected)
    check(a, x)  # functional: the input is untouched


@pytest.mark.parametrize("case", range(len(AT_INDICES)))
def test_at_divide(rng, case):
    index = AT_INDICES[case]
    a, x = make(rng, (4, 5), "float32", "reversed")
    v = rng.uniform(0.5, 2.0, x[index].shape).astype(np.float32)
    out = a.at[to_ember_index(index, "list")].divide(em.array(v))
    np.testing.assert_allclose(np.array(out), _np_at("divide", x, index, v), rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "complex64", "bool", "uint8"])
def test_at_set_and_add_other_dtypes(rng, dtype):
    a, x = make(rng, (6,), dtype, "reversed")
    idx = np.array([4, 1, 0])
    v = random_data(rng, (3,), dtype)
    y = x.copy()
    y[idx] = v
    check(a.at[idx].set(em.array(v)), y)
    if dtype != "bool":
        check(a.at[np.array([2, 2, 5])].add(em.array(v)), _np_at("add", x, np.array([2, 2, 5]), v))


def test_at_scalar_value_and_broadcast(rng):
    a, x = make(rng, (3, 4), "float32")
    check(a.at[[0, 0, 2]].add(1.0), _np_at("add", x, [0, 0, 2], np.float32(1.0)))
    v = random_data(rng, (4,), "float32")
    check(a.at[[1, 1]].multiply(em.array(v)), _np_at("multiply", x, [1, 1], v))


def test_at_complex_maximum_is_an_error():
    a = em.zeros(3, em.complex64)
    with pytest.raises(TypeError, match=r"maximum.*complex64"):
        a.at[[0]].maximum(em.array([1j], em.complex64))


# ---- take ----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "broadcast"])
def test_take(rng, dtype, axis, layout):
    a, x = make(rng, (3, 4, 5), dtype, layout)
    n = x.size if axis is None else x.shape[axis]
    for idx in [rng.integers(-n, n, (2, 3)), rng.integers(-n, n, 4), np.array(-1), np.array([], np.int32)]:
        check(em.take(a, em.array(idx), axis=axis), np.take(x, idx, axis=axis))
    check(em.take(a, 2, axis=axis), np.take(x, 2, axis=axis))


def test_take_errors():
    with pytest.raises(ValueError, match=r"\[take\] axis 3 is out of bounds.*dimension 2"):
        em.take(em.zeros((2, 3)), em.array([0]), axis=3)
    with pytest.raises(TypeError, match=r"\[take\] indices must be integers, got float32"):
        em.take(em.zeros((2, 3)), em.array([0.0]), axis=0)
    out = em.take(em.zeros((2, 3)), em.array([3]), axis=1)
    with pytest.raises(IndexError):
        em.eval(out)


# ---- take_along_axis, put_along_axis ----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, -1, None])
@pytest.mark.parametrize("layout", ["contiguous", "reversed", "view_chain"])
def test_take_along_axis(rng, dtype, axis, layout):
    a, x = make(rng, (3, 4, 5), dtype, layout)
    if axis is None:
        idx = rng.integers(-x.size, x.size, 7)
    else:
        shape = list(x.shape)
        shape[axis] = 6
        shape[0] = 1 if axis != 0 else shape[0]   # broadcasts against a on axis 0
        idx = rng.integers(-x.shape[axis], x.shape[axis], shape)
    check(em.take_along_axis(a, em.array(idx), axis=axis),
          np.take_along_axis(x, idx, axis=axis))


def test_take_along_axis_errors():
    with pytest.raises(ValueError, match=r"\[take_along_axis\].*\(2,\).*as many dimensions.*\(2, 3\)"):
        em.take_along_axis(em.zeros((2, 3)), em.array([0, 1]), axis=0)
    with pytest.raises(ValueError, match=r"\[take_along_axis\].*\(2, 3\).*\(3, 1\).*axis 0"):
        em.take_along_axis(em.zeros((2, 3)), em.zeros((3, 1), em.int32), axis=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, -1, None])
def test_put_along_axis(rng, dtype, axis):
    a, x = make(rng, (3, 4, 5), dtype, "transposed")
    if axis is None:
        idx = rng.permutation(x.size)[:6]
        values = random_data(rng, (6,), dtype)
    else:
        n = x.shape[axis]
        # distinct positions per lane, so the result does not depend on write order
        idx = np.argsort(rng.random(x.shape), axis=axis).take(np.arange(2), axis=axis) - n
        values = random_data(rng, idx.shape, dtype)
    y = x.copy()
    np.put_along_axis(y, idx, values, axis=axis)
    check(em.put_along_axis(a, em.array(idx), em.array(values), axis=axis), y)
    check(a, x)


def test_put_along_axis_broadcast_scalar_value(rng):
    a, x = make(rng, (3, 4), "int32")
    idx = np.array([[0], [3], [1]])
    y = x.copy()
    np.put_along_axis(y, idx, 7, axis=1)
    check(em.put_along_axis(a, em.array(idx), em.array(7), axis=1), y)


def test_setitem_from_an_overlapping_view_of_itself(rng):
    a, x = make(rng, (6, 3), "float32")
    a[1:] = a[:-1]
    a[:, ::-1] = a
    a[[0, 5]] = a[[5, 0]]
    x = x.copy()
    x[1:] = x[:-1].copy()
    x[:, ::-1] = x.copy()
    x[[0, 5]] = x[[5, 0]].copy()
    check(a, x)


def test_setitem_in_a_loop(rng):
    a, x = make(rng, (5, 4), "int32")
    x = x.copy()
    for i in range(5):
        v = random_data(rng, (4,), "int32")
        a[i, ::-1] = em.array(v) + a[i]
        x[i, ::-1] = v + x[i]
        if i % 2:
            em.eval(a)
    check(a, x)


def test_updates_that_read_their_own_target(rng):
    """An array updated with itself (or a view of its own buffer): its buffer may
    not become the output while it is still to be read."""
    x = rng.standard_normal(6).astype(np.float32)
    idx = np.array([0, 2, 2, 5])
    a = em.array(x) + 0   # a dead intermediate, a candidate for donation
    out = a.at[em.array(idx)].add(a[em.array(idx)])
    expected = x.copy()
    np.add.at(expected, idx, x[idx])
    np.testing.assert_allclose(np.array(out), expected, rtol=1e-6)
    b = em.array(x) * 1
    b[1:4] = b[0:3]
    y = x.copy()
    y[1:4] = x[0:3]
    check(b, y)
    c = em.array(x) * 1
    c2 = em.put_along_axis(c, em.array([1, 3]), c[em.array([4, 5])], axis=0)
    z = x.copy()
    z[[1, 3]] = x[[4, 5]]
    check(c2, z)
    perm = rng.permutation(6)
    d = em.array(x) + 0
    out = d.at[em.array(perm)].add(d * 1).at[em.array(perm)].add(d)
    w = x.copy()
    w[perm] += x
    w[perm] += x
    np.testing.assert_allclose(np.array(out), w, rtol=1e-6)
    # the same dead node as target and values: only the graph holds it when it runs
    e2 = (lambda t: em.put_along_axis(t, em.array(perm), t, axis=0))(em.array(x) + 0)
    v = x.copy()
    v[perm] = x
    check(e2, v)
    e3 = (lambda t: t.at[em.array(perm)].add(t))(em.array(x) + 0)
    v = x.copy()
    v[perm] += x
    np.testing.assert_allclose(np.array(e3), v, rtol=1e-6)

    def assign_self(t):
        t[::-1] = t
        return t
    check(assign_self(em.array(x) + 0), x[::-1].copy())
