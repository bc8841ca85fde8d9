"""Shape manipulation against numpy: views, copies, joins, splits, padding,
rolling, diagonals, triangles, as_strided, where, slice and slice_update.

Every op runs on fresh random data of several dtypes and on non-contiguous
inputs (transposed, reversed, strided and broadcast views, and views of
views), so the engine's view kernels and its copy paths both get exercised.
"""
import numpy as np
import pytest

import ember.core as em
from array_layouts import LAYOUTS, check, make, random_data

DTYPES = ["float32", "int32", "bool", "float16", "complex64", "uint8"]


# ---- reshape, flatten, unflatten ----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("new_shape", [(-1,), (4, -1), (2, 3, 2, 2), (-1, 6), (24, 1)])
def test_reshape(rng, dtype, layout, new_shape):
    a, x = make(rng, (4, 3, 2), dtype, layout)
    check(em.reshape(a, new_shape), x.reshape(new_shape))
    check(a.reshape(*new_shape), x.reshape(new_shape))


def test_reshape_of_transposed_copies_in_row_major_order(rng):
    x = random_data(rng, (3, 5), "float32")
    out = em.reshape(em.array(x).T, (15,))
    check(out, x.T.reshape(15))
    # The source stays intact after the copy.
    a = em.array(x)
    check(em.reshape(a.T, (5, 3)), x.T)
    check(a, x)


@pytest.mark.parametrize("shape,new_shape", [((), (1, 1)), ((1,), ()), ((0, 3), (3, 0)),
                                              ((0, 3), (-1, 3)), ((2, 0), (0,))])
def test_reshape_zero_d_and_empty(rng, shape, new_shape):
    a, x = make(rng, shape, "int32")
    check(em.reshape(a, new_shape), x.reshape(new_shape))


@pytest.mark.parametrize("new_shape,match", [((5,), r"\[reshape\].*\(2, 3\).*\(5,\)"),
                                             ((-1, -1), r"\[reshape\] can only infer one"),
                                             ((4, -1), r"\[reshape\].*\(2, 3\)"),
                                             ((-2, 3), r"\[reshape\] invalid dimension -2")])
def test_reshape_errors(new_shape, match):
    with pytest.raises(ValueError, match=match):
        em.reshape(em.zeros((2, 3)), new_shape)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("start,end", [(0, -1), (1, 2), (0, 1), (-2, -1), (2, 2)])
def test_flatten(rng, layout, start, end):
    a, x = make(rng, (2, 3, 4), "float32", layout)
    nd = x.ndim
    s, e = start % nd, end % nd
    expected = x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:])
    check(em.flatten(a, start, end), expected)


def test_flatten_zero_d_and_empty(rng):
    check(em.flatten(em.array(3.5)), np.array([3.5], np.float32))
    check(em.flatten(em.zeros((2, 0, 3)), 0, 1), np.zeros((0, 3), np.float32))
    check(em.flatten(em.zeros((0, 2, 3)), 1, 2), np.zeros((0, 6), np.float32))
    with pytest.raises(ValueError, match=r"\[flatten\]"):
        em.flatten(em.zeros((2, 3)), 1, 0)


@pytest.mark.parametrize("axis,shape", [(0, (2, 3)), (1, (2, -1)), (-1, (1, 4, 1)), (1, (4,))])
def test_unflatten(rng, axis, shape):
    a, x = make(rng, (6, 4), "int32", "transposed")
    ax = axis % 2
    expected = x.reshape(x.shape[:ax] + tuple(shape) + x.shape[ax + 1:])
    check(em.unflatten(a, axis, shape), expected)


# ---- squeeze, expand_dims ----

@pytest.mark.parametrize("axis", [None, 0, -1, 2, (0, 2), (-4, -1)])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "reversed"])
def test_squeeze(rng, axis, layout):
    a, x = make(rng, (1, 3, 1, 1), "float16", layout)
    check(em.squeeze(a, axis), np.squeeze(x, axis))


def test_squeeze_errors():
    with pytest.raises(ValueError, match=r"\[squeeze\].*axis 1 of size 3"):
        em.squeeze(em.zeros((1, 3)), 1)
    with pytest.raises(ValueError, match=r"\[squeeze\].*axis 5 is out of bounds.*dimension 2"):
        em.squeeze(em.zeros((1, 3)), 5)


@pytest.mark.parametrize("shape", [(), (3,), (2, 4)])
@pytest.mark.parametrize("axis", [0, -1, (0, 1), (0, -1), (-1, -2)])
def test_expand_dims(rng, shape, axis):
    a, x = make(rng, shape, "complex64", "transposed")
    check(em.expand_dims(a, axis), np.expand_dims(x, axis))


def test_expand_dims_errors():
    with pytest.raises(ValueError, match=r"\[expand_dims\].*axis 3.*dimension 3"):
        em.expand_dims(em.zeros((2, 2)), 3)
    with pytest.raises(ValueError, match=r"\[expand_dims\] repeated axis"):
        em.expand_dims(em.zeros((2, 2)), (0, 0))


# ---- transpose, permute_dims, swapaxes, moveaxis ----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("axes", [None, (1, 0, 2), (2, 0, 1), (-1, 0, -2)])
def test_transpose(rng, dtype, layout, axes):
    a, x = make(rng, (3, 4, 5), dtype, layout)
    check(em.transpose(a, axes), np.transpose(x, axes))
    if axes is not None:
        check(em.permute_dims(a, axes), np.transpose(x, axes))


def test_transpose_then_compute_is_not_a_copy_of_the_wrong_elements(rng):
    a, x = make(rng, (3, 4, 5), "float32", "view_chain")
    check(em.transpose(a, (2, 0, 1)) + 1, np.transpose(x, (2, 0, 1)) + 1)


def test_transpose_zero_d_and_empty(rng):
    check(em.transpose(em.array(2)), np.array(2, np.int32))
    check(em.transpose(em.zeros((0, 3, 1))), np.zeros((1, 3, 0), np.float32))
    check(em.array(np.ones((2, 3), np.uint8)).T, np.ones((3, 2), np.uint8))


@pytest.mark.parametrize("axes,match", [((0, 0, 1), r"\[transpose\] repeated axis"),
                                        ((0, 1), r"\[transpose\] got 2 axes.*dimension 3"),
                                        ((0, 1, 3), r"\[transpose\] axis 3 is out of bounds")])
def test_transpose_errors(axes, match):
    with pytest.raises(ValueError, match=match):
        em.transpose(em.zeros((2, 3, 4)), axes)


@pytest.mark.parametrize("axis1,axis2", [(0, 2), (-1, 0), (1, 1), (-2, -3)])
@pytest.mark.parametrize("layout", ["contiguous", "reversed", "broadcast"])
def test_swapaxes(rng, axis1, axis2, layout):
    a, x = make(rng, (2, 3, 4), "uint8", layout)
    check(em.swapaxes(a, axis1, axis2), np.swapaxes(x, axis1, axis2))


@pytest.mark.parametrize("source,dest", [(0, 2), (2, 0), (-1, 1), (1, -1), (0, 0)])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "view_chain"])
def test_moveaxis(rng, source, dest, layout):
    a, x = make(rng, (2, 3, 4), "int32", layout)
    check(em.moveaxis(a, source, dest), np.moveaxis(x, source, dest))


def test_swapaxes_moveaxis_errors():
    with pytest.raises(ValueError, match=r"\[swapaxes\] axis 3 is out of bounds.*dimension 2"):
        em.swapaxes(em.zeros((2, 3)), 0, 3)
    with pytest.raises(ValueError, match=r"\[moveaxis\] axis -3 is out of bounds.*dimension 2"):
        em.moveaxis(em.zeros((2, 3)), -3, 0)


# ---- broadcasting ----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,target", [((), (2, 3)), ((3,), (4, 3)), ((2, 1), (2, 5)),
                                          ((1, 3, 1), (2, 3, 4)), ((1,), (0,)), ((2, 3), (2, 3))])
def test_broadcast_to(rng, dtype, shape, target):
    a, x = make(rng, shape, dtype, "reversed")
    check(em.broadcast_to(a, target), np.broadcast_to(x, target))


def test_broadcast_of_transposed_view(rng):
    a, x = make(rng, (3, 1, 2), "float32", "transposed")
    out = em.broadcast_to(a, (2, 3, 4, 2))
    check(out, np.broadcast_to(x, (2, 3, 4, 2)))
    check(out * 2, np.broadcast_to(x, (2, 3, 4, 2)) * 2)


@pytest.mark.parametrize("shape,target", [((3,), (4,)), ((2, 3), (3,)), ((2,), (2, 3))])
def test_broadcast_to_errors(shape, target):
    with pytest.raises(ValueError, match=r"\[broadcast_to\].*shape \(.*\) to shape \(.*\)"):
        em.broadcast_to(em.zeros(shape), target)


@pytest.mark.parametrize("shapes", [[(2, 1), (1, 3)], [(), (4,), (3, 1)], [(5, 0), (1,)],
                                    [(2, 3, 4)], [(1, 1), (1,)]])
def test_broadcast_shapes_and_arrays(rng, shapes):
    assert em.broadcast_shapes(*shapes) == np.broadcast_shapes(*shapes)
    pairs = [make(rng, s, "int32", "contiguous") for s in shapes]
    outs = em.broadcast_arrays(*(a for a, _ in pairs))
    expected = np.broadcast_arrays(*(x for _, x in pairs))
    assert len(outs) == len(expected)
    for out, exp in zip(outs, expected):
        check(out, exp)


def test_broadcast_shapes_error():
    with pytest.raises(ValueError, match=r"\[broadcast_shapes\].*\(2, 3\).*\(4,\)"):
        em.broadcast_shapes((2, 3), (4,))


# ---- concatenate, stack, split, unstack ----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, -1, None])
def test_concatenate(rng, dtype, axis):
    a, x = make(rng, (3, 4), dtype, "transposed")
    b, y = make(rng, (3, 4), dtype, "reversed")
    c, z = make(rng, (3, 4), dtype, "broadcast")
    check(em.concatenate([a, b, c], axis=axis), np.concatenate([x, y, z], axis=axis))
    check(em.concat([a, b], axis=axis), np.concatenate([x, y], axis=axis))


@pytest.mark.parametrize("first,second,expected", [
    ("int32", "float32", "float32"), ("uint8", "int32", "int32"), ("bool", "int32", "int32"),
    ("bool", "float16", "float16"), ("float16", "complex64", "complex64"),
    ("int32", "float16", "float16"),  # mlx promotion: integers take the float's type
])
def test_concatenate_promotes_mixed_dtypes(rng, first, second, expected):
    x = random_data(rng, (2, 3), first)
    y = random_data(rng, (1, 3), second)
    out = em.concatenate([em.array(x), em.array(y)])
    check(out, np.concatenate([x.astype(expected), y.astype(expected)]))


def test_concatenate_with_empty_parts(rng):
    x = random_data(rng, (2, 3), "float32")
    out = em.concatenate([em.zeros((0, 3)), em.array(x), em.zeros((0, 3))])
    check(out, x)
    check(em.concatenate([em.zeros((2, 0)), em.zeros((2, 0))], 1), np.zeros((2, 0), np.float32))


@pytest.mark.parametrize("arrays,axis,match", [
    ([(2, 3), (2, 4)], 0, r"\[concatenate\].*axis 0.*\(2, 3\) and \(2, 4\)"),
    ([(2, 3), (2, 3, 1)], 0, r"\[concatenate\].*\(2, 3\) and \(2, 3, 1\)"),
    ([(2, 3)], 2, r"\[concatenate\] axis 2 is out of bounds.*dimension 2"),
    ([(), ()], 0, r"\[concatenate\] zero-dimensional"),
])
def test_concatenate_errors(arrays, axis, match):
    with pytest.raises(ValueError, match=match):
        em.concatenate([em.zeros(s) for s in arrays], axis)


def test_concatenate_nothing_is_an_error():
    with pytest.raises(ValueError, match=r"\[concatenate\] no arrays"):
        em.concatenate([])


@pytest.mark.parametrize("dtype", ["float32", "bool", "complex64"])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
@pytest.mark.parametrize("axis", [0, -1])
def test_stack(rng, dtype, shape, axis):
    pairs = [make(rng, shape, dtype, layout) for layout in ("contiguous", "transposed", "reversed")]
    out = em.stack([a for a, _ in pairs], axis=axis)
    check(out, np.stack([x for _, x in pairs], axis=axis))


def test_stack_errors():
    with pytest.raises(ValueError, match=r"\[stack\].*same shape.*\(2,\).*\(3,\)"):
        em.stack([em.zeros(2), em.zeros(3)])
    with pytest.raises(ValueError, match=r"\[stack\] axis 3 is out of bounds"):
        em.stack([em.zeros(2), em.zeros(2)], axis=3)


@pytest.mark.parametrize("sections", [1, 2, 3, 6, [1, 4], [0, 2, 2, 5], [-2], [4, 2], [10]])
@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("layout", ["contiguous", "view_chain"])
def test_split(rng, sections, axis, layout):
    a, x = make(rng, (6, 6), "int32", layout)
    outs = em.split(a, sections, axis=axis)
    expected = np.split(x, sections, axis=axis)
    assert isinstance(outs, list) and len(outs) == len(expected)
    for out, exp in zip(outs, expected):
        check(out, exp)


def test_split_uneven_is_an_error():
    with pytest.raises(ValueError, match=r"\[split\].*axis 1 of size 5 into 2"):
        em.split(em.zeros((2, 5)), 2, axis=1)
    with pytest.raises(ValueError, match=r"\[split\] axis 2 is out of bounds"):
        em.split(em.zeros((2, 5)), 2, axis=2)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_unstack(rng, axis):
    a, x = make(rng, (2, 3, 4), "float16", "transposed")
    outs = em.unstack(a, axis)
    expected = [np.take(x, i, axis=axis) for i in range(x.shape[axis])]
    assert len(outs) == len(expected)
    for out, exp in zip(outs, expected):
        check(out, exp)


# ---- tile, repeat ----

@pytest.mark.parametrize("dtype", ["float32", "bool", "uint8"])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
@pytest.mark.parametrize("reps", [2, (2, 1), (1, 3), (2, 2, 2), (0, 2)])
def test_tile(rng, dtype, shape, reps):
    a, x = make(rng, shape, dtype, "transposed")
    check(em.tile(a, reps), np.tile(x, reps))


@pytest.mark.parametrize("shape", [(), (4,), (2, 3)])
@pytest.mark.parametrize("repeats,axis", [(2, None), (3, 0), (2, -1), (0, 0), (1, None)])
@pytest.mark.parametrize("layout", ["contiguous", "reversed", "broadcast"])
def test_repeat(rng, shape, repeats, axis, layout):
    if axis is not None and not shape:
        axis = None
    a, x = make(rng, shape, "int32", layout)
    check(em.repeat(a, repeats, axis), np.repeat(x, repeats, axis))


def test_repeat_errors():
    with pytest.raises(ValueError, match=r"\[repeat\].*non-negative"):
        em.repeat(em.zeros(3), -1)
    with pytest.raises(ValueError, match=r"\[repeat\] axis 1 is out of bounds"):
        em.repeat(em.zeros(3), 2, axis=1)


# ---- pad ----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pad_width", [1, (2,), (1, 2), ((1, 0), (0, 2)), [(0, 0), (3, 1)],
                                       ((2,), (1,)), 0])
def test_pad_constant(rng, dtype, pad_width):
    a, x = make(rng, (3, 4), dtype, "view_chain")
    check(em.pad(a, pad_width), np.pad(x, pad_width))
    value = random_data(rng, (), dtype).item()
    check(em.pad(a, pad_width, constant_values=value),
          np.pad(x, pad_width, constant_values=value))


def test_pad_constant_value_from_array(rng):
    a, x = make(rng, (2, 2), "float32", "transposed")
    check(em.pad(a, 1, constant_values=em.array(-3.5)), np.pad(x, 1, constant_values=-3.5))


@pytest.mark.parametrize("dtype", ["float32", "int32", "complex64"])
@pytest.mark.parametrize("pad_width", [1, (0, 2), ((2, 1), (0, 3)), ((0, 0), (1, 1))])
@pytest.mark.parametrize("layout", ["contiguous", "reversed", "broadcast"])
def test_pad_edge(rng, dtype, pad_width, layout):
    a, x = make(rng, (3, 4), dtype, layout)
    check(em.pad(a, pad_width, mode="edge"), np.pad(x, pad_width, mode="edge"))


def test_pad_zero_d_and_empty(rng):
    check(em.pad(em.array(5), ()), np.array(5, np.int32))
    check(em.pad(em.zeros((0, 2)), 1), np.pad(np.zeros((0, 2), np.float32), 1))


@pytest.mark.parametrize("kwargs,match", [
    (dict(pad_width=-1), r"\[pad\].*non-negative"),
    (dict(pad_width=((1, 1), (1, 1), (1, 1))), r"\[pad\].*3 entries.*dimension 2"),
    (dict(pad_width=1, mode="reflect"), r"\[pad\] mode must be"),
])
def test_pad_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        em.pad(em.zeros((2, 2)), **kwargs)


# ---- roll ----

@pytest.mark.parametrize("dtype", ["float32", "int32", "bool", "complex64"])
@pytest.mark.parametrize("shift,axis", [(1, None), (-7, None), (2, 0), (-1, 1), (5, -1),
                                        ((1, 2), (0, 1)), ((-1, 3), (1, 0)), (2, (0, 1)),
                                        ((1, 2), None), (0, 0)])
@pytest.mark.parametrize("layout", ["contiguous", "view_chain"])
def test_roll(rng, dtype, shift, axis, layout):
    a, x = make(rng, (3, 4), dtype, layout)
    check(em.roll(a, shift, axis), np.roll(x, shift, axis))


def test_roll_zero_d_and_empty(rng):
    check(em.roll(em.array(3.0), 2), np.array(3.0, np.float32))
    check(em.roll(em.zeros((0, 3)), 1, 0), np.zeros((0, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[roll\] axis 2 is out of bounds"):
        em.roll(em.zeros((2, 2)), 1, 2)


# ---- diag, diagonal, trace ----

@pytest.mark.parametrize("dtype", ["float32", "int32", "bool", "complex64"])
@pytest.mark.parametrize("offset", [0, 1, -1, 3, -5])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "reversed", "broadcast"])
def test_diagonal_2d(rng, dtype, offset, layout):
    a, x = make(rng, (4, 5), dtype, layout)
    check(em.diagonal(a, offset), np.diagonal(x, offset))
    check(em.diag(a, offset), np.diag(x, offset))


@pytest.mark.parametrize("offset,axis1,axis2", [(0, 0, 1), (1, 1, 2), (-1, 2, 0), (0, -1, -3),
                                                (2, 0, 2)])
@pytest.mark.parametrize("layout", ["contiguous", "view_chain"])
def test_diagonal_nd(rng, offset, axis1, axis2, layout):
    a, x = make(rng, (3, 4, 5), "float32", layout)
    check(em.diagonal(a, offset, axis1, axis2), np.diagonal(x, offset, axis1, axis2))


@pytest.mark.parametrize("k", [0, 2, -1])
@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
def test_diag_of_vector_builds_a_matrix(rng, k, dtype):
    a, x = make(rng, (4,), dtype, "reversed")
    check(em.diag(a, k), np.diag(x, k))


def test_diagonal_errors():
    with pytest.raises(ValueError, match=r"\[diagonal\].*at least 2 dimensions.*\(3,\)"):
        em.diagonal(em.zeros(3))
    with pytest.raises(ValueError, match=r"\[diagonal\] axis1 and axis2 must differ"):
        em.diagonal(em.zeros((3, 3)), 0, 1, -1)
    with pytest.raises(ValueError, match=r"\[diag\].*1-D or 2-D.*\(2, 2, 2\)"):
        em.diag(em.zeros((2, 2, 2)))


@pytest.mark.parametrize("offset,axis1,axis2", [(0, 0, 1), (1, 0, 1), (-2, 1, 2), (0, 2, 0)])
def test_trace(rng, offset, axis1, axis2):
    a, x = make(rng, (3, 4, 5), "float32", "transposed")
    out = em.trace(a, offset, axis1, axis2)
    np.testing.assert_allclose(np.array(out), np.trace(x, offset, axis1, axis2), rtol=1e-5, atol=1e-5)
    assert out.dtype == em.float32


def test_trace_dtype(rng):
    x = random_data(rng, (4, 4), "int32")
    out = em.trace(em.array(x), dtype=em.float32)
    assert out.dtype == em.float32
    assert out.item() == np.trace(x)


# ---- tril, triu ----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [0, 1, -2, 7])
@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 3), (5, 2)])
def test_tril_triu(rng, dtype, k, shape):
    a, x = make(rng, shape, dtype, "transposed")
    check(em.tril(a, k), np.tril(x, k))
    check(em.triu(a, k), np.triu(x, k))


def test_tril_triu_errors():
    with pytest.raises(ValueError, match=r"\[tril\].*at least 2 dimensions.*\(3,\)"):
        em.tril(em.zeros(3))
    with pytest.raises(ValueError, match=r"\[triu\].*at least 2 dimensions.*\(\)"):
        em.triu(em.array(1.0))


# ---- atleast_nd ----

@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 3, 4), (1, 2, 3, 4)])
@pytest.mark.parametrize("fn", ["atleast_1d", "atleast_2d", "atleast_3d"])
def test_atleast(rng, shape, fn):
    a, x = make(rng, shape, "uint8", "reversed")
    check(getattr(em, fn)(a), getattr(np, fn)(x))
    b, y = make(rng, (2,), "float32")
    outs = getattr(em, fn)(a, b)
    expected = getattr(np, fn)(x, y)
    assert len(outs) == 2
    for out, exp in zip(outs, expected):
        check(out, exp)


# ---- as_strided ----

@pytest.mark.parametrize("shape,strides,offset", [((3, 3), (3, 1), 0), ((4, 3), (2, 1), 1),
                                                  ((5,), (2,), 2), ((2, 2, 2), (0, 4, 1), 3),
                                                  ((3,), (-2,), 10), ((0, 4), (100, 1), 0)])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "reversed", "broadcast",
                                    "row_offset"])
def test_as_strided(rng, shape, strides, offset, layout):
    a, x = make(rng, (3, 4), "int32", layout)
    flat = np.ascontiguousarray(x).reshape(-1)
    item = flat.itemsize
    expected = np.lib.stride_tricks.as_strided(flat[offset:] if offset >= 0 else flat, shape,
                                               [s * item for s in strides])
    check(em.as_strided(a, shape, strides, offset), expected)


def test_as_strided_defaults_to_row_major(rng):
    a, x = make(rng, (3, 4), "float32", "transposed")
    check(em.as_strided(a, (2, 6)), x.reshape(2, 6))


@pytest.mark.parametrize("shape,strides,offset", [((4, 4), (4, 1), 0), ((3,), (1,), 10),
                                                  ((2,), (-1,), 0), ((1,), (1,), -1)])
def test_as_strided_bounds_check(shape, strides, offset):
    with pytest.raises(ValueError, match=r"\[as_strided\].*outside an array of size 12"):
        em.as_strided(em.zeros((3, 4)), shape, strides, offset)


def test_as_strided_length_mismatch():
    with pytest.raises(ValueError, match=r"\[as_strided\] shape \(2, 2\) and strides \(1,\)"):
        em.as_strided(em.zeros(4), (2, 2), (1,))


# ---- where ----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "broadcast", "view_chain"])
def test_where(rng, dtype, layout):
    c, cond = make(rng, (3, 4), "bool", layout)
    a, x = make(rng, (3, 4), dtype, "reversed")
    b, y = make(rng, (4,), dtype)
    check(em.where(c, a, b), np.where(cond, x, y))


def test_where_scalars_take_the_array_dtype(rng):
    c, cond = make(rng, (5,), "bool")
    a, x = make(rng, (5,), "float16")
    check(em.where(c, a, 0.0), np.where(cond, x, np.float16(0)))
    b, y = make(rng, (5,), "uint8")
    check(em.where(c, 7, b), np.where(cond, np.uint8(7), y))


def test_where_error():
    with pytest.raises(ValueError, match=r"\[where\].*\(2,\).*\(3,\)"):
        em.where(em.array([True, False]), em.zeros(3), em.zeros(3))


# ---- slice, slice_update (mlx.core.slice semantics) ----

@pytest.mark.parametrize("start,axes,size", [
    ([1], (0,), (1, 2)),           # mlx docs: slice_size covers every axis
    ([1], (1,), (2, 1)),
    ([1, 2], (0, 1), (2, 2)),
    ([2, 0], (1, 0), (3, 1)),
    ([0], (-1,), (3, 4)),
])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "view_chain"])
def test_slice(rng, start, axes, size, layout):
    a, x = make(rng, (3, 4), "int32", layout)
    starts = [0, 0]
    for s, ax in zip(start, axes):
        starts[ax % 2] = s
    expected = x[starts[0]:starts[0] + size[0], starts[1]:starts[1] + size[1]]
    check(em.slice(a, em.array(start), axes, size), expected)
    check(em.slice(a, start, axes, size), expected)


def test_slice_docs_example():
    a = em.array([[1, 2, 3], [4, 5, 6]])
    check(em.slice(a, start_indices=em.array(1), axes=(0,), slice_size=(1, 2)),
          np.array([[4, 5]], np.int32))
    check(em.slice(a, start_indices=em.array(1), axes=(1,), slice_size=(2, 1)),
          np.array([[2], [5]], np.int32))


def test_slice_errors():
    with pytest.raises(IndexError, match=r"\[slice\].*axis 0 with size 3"):
        em.slice(em.zeros((3, 4)), [2], (0,), (2, 4))
    with pytest.raises(ValueError, match=r"\[slice\] axis 2 is out of bounds"):
        em.slice(em.zeros((3, 4)), [0], (2,), (1, 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("start,axes,ushape", [([1, 1], (0, 1), (1, 2)), ([0], (1,), (3, 2)),
                                               ([2], (0,), (4,)), ([1, 2], (1, 0), (2, 1)),
                                               ([0, 0], (0, 1), ())])
def test_slice_update(rng, dtype, start, axes, ushape):
    a, x = make(rng, (4, 4), dtype, "transposed")
    u, y = make(rng, ushape, dtype, "reversed")
    starts = [0, 0]
    for s, ax in zip(start, axes):
        starts[ax] = s
    full = (1,) * (2 - len(ushape)) + ushape
    expected = x.copy()
    expected[starts[0]:starts[0] + full[0], starts[1]:starts[1] + full[1]] = y
    check(em.slice_update(a, u, em.array(start), axes), expected)
    check(a, x)  # the input is unchanged


def test_slice_update_whole_array_with_a_computed_update(rng):
    # The update is a dead intermediate as large as the result: its buffer
    # must not be reused for the output before it is read.
    a, x = make(rng, (3, 4), "float32")
    b, y = make(rng, (3, 4), "float32")
    out = em.slice_update(a, b * 2, em.array([0, 0]), (0, 1))
    check(out, y * 2)


def test_slice_update_errors():
    with pytest.raises(IndexError, match=r"\[slice_update\] slice \[2:5:1\].*axis 0 with size 4"):
        em.slice_update(em.zeros((4, 3)), em.zeros((3, 3)), [2], (0,))
    with pytest.raises(ValueError, match=r"\[slice_update\].*\(1, 4, 3\).*\(4, 3\)"):
        em.slice_update(em.zeros((4, 3)), em.zeros((1, 4, 3)), [0], (0,))
    with pytest.raises(IndexError, match=r"\[slice_update\].*axis 1 with size 3"):
        em.slice_update(em.zeros((4, 3)), em.zeros((1, 2)), [0, 2], (0, 1))


# ---- astype inside layout kernels ----

@pytest.mark.parametrize("src,dst", [("int32", "float32"), ("float32", "int32"),
                                     ("uint8", "bool"), ("bool", "uint8")])
def test_astype_of_a_dead_intermediate(rng, src, dst):
    # A same-size conversion may reuse its input's buffer; it must still convert.
    x = random_data(rng, (7,), src)
    out = (em.array(x) + em.array(np.zeros(7, src))).astype(dst) if src != "bool" else \
        em.logical_not(em.array(x)).astype(dst)
    expected = (x + np.zeros(7, src)) if src != "bool" else np.logical_not(x)
    check(out, expected.astype(dst))
    check(em.array(x[0]).astype(dst), np.asarray(x[0]).astype(dst))


def test_concatenate_and_stack_of_thousands_of_arrays(rng):
    xs = [rng.standard_normal(2).astype(np.float32) for _ in range(3000)]
    parts = [em.array(x) if k % 3 else em.array(x.astype(np.float16)) for k, x in enumerate(xs)]
    out = em.concatenate(parts)
    assert out.dtype == em.float32
    expected = np.concatenate([x if k % 3 else x.astype(np.float16).astype(np.float32)
                               for k, x in enumerate(xs)])
    np.testing.assert_array_equal(np.array(out), expected)
    check(em.stack([em.array(x) for x in xs[:2000]], axis=1), np.stack(xs[:2000], axis=1))
    grads = em.grad(lambda *ys: (em.stack(ys) ** 2).sum(), argnums=tuple(range(1500)))(
        *[em.array(x) for x in xs[:1500]])
    np.testing.assert_allclose(np.array(em.stack(grads)), 2 * np.stack(xs[:1500]), rtol=1e-6)
