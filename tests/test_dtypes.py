"""Dtypes: the Dtype objects, the category hierarchy and issubdtype, finfo and
iinfo, and promote_types over every pair, all as in mlx.core.

The promotion table and the category table below are written out from
mlx/dtype.cpp (JAX's promotion lattice, with float64 above every real type),
independently of native/dtype.c, so a typo in either shows up here.
"""
import pickle

import numpy as np
import pytest

import ember.core as em

NAMES = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
         "float16", "float32", "float64", "bfloat16", "complex64"]
SIZES = [1, 1, 2, 4, 8, 1, 2, 4, 8, 2, 4, 8, 2, 8]
DTYPES = [em.bool_, em.uint8, em.uint16, em.uint32, em.uint64, em.int8, em.int16, em.int32,
          em.int64, em.float16, em.float32, em.float64, em.bfloat16, em.complex64]

# mlx/dtype.cpp's type_rules, in the order above.
_b, _u8, _u16, _u32, _u64 = "bool", "uint8", "uint16", "uint32", "uint64"
_i8, _i16, _i32, _i64 = "int8", "int16", "int32", "int64"
_f16, _f32, _f64, _bf, _c = "float16", "float32", "float64", "bfloat16", "complex64"
MLX_PROMOTION = [
    [_b,   _u8,  _u16, _u32, _u64, _i8,  _i16, _i32, _i64, _f16, _f32, _f64, _bf,  _c],
    [_u8,  _u8,  _u16, _u32, _u64, _i16, _i16, _i32, _i64, _f16, _f32, _f64, _bf,  _c],
    [_u16, _u16, _u16, _u32, _u64, _i32, _i32, _i32, _i64, _f16, _f32, _f64, _bf,  _c],
    [_u32, _u32, _u32, _u32, _u64, _i64, _i64, _i64, _i64, _f16, _f32, _f64, _bf,  _c],
    [_u64, _u64, _u64, _u64, _u64, _f32, _f32, _f32, _f32, _f16, _f32, _f64, _bf,  _c],
    [_i8,  _i16, _i32, _i64, _f32, _i8,  _i16, _i32, _i64, _f16, _f32, _f64, _bf,  _c],
    [_i16, _i16, _i32, _i64, _f32, _i16, _i16, _i32, _i64, _f16, _f32, _f64, _bf,  _c],
    [_i32, _i32, _i32, _i64, _f32, _i32, _i32, _i32, _i64, _f16, _f32, _f64, _bf,  _c],
    [_i64, _i64, _i64, _i64, _f32, _i64, _i64, _i64, _i64, _f16, _f32, _f64, _bf,  _c],
    [_f16, _f16, _f16, _f16, _f16, _f16, _f16, _f16, _f16, _f16, _f32, _f64, _f32, _c],
    [_f32, _f32, _f32, _f32, _f32, _f32, _f32, _f32, _f32, _f32, _f32, _f64, _f32, _c],
    [_f64, _f64, _f64, _f64, _f64, _f64, _f64, _f64, _f64, _f64, _f64, _f64, _f64, _c],
    [_bf,  _bf,  _bf,  _bf,  _bf,  _bf,  _bf,  _bf,  _bf,  _f32, _f32, _f64, _bf,  _c],
    [_c,   _c,   _c,   _c,   _c,   _c,   _c,   _c,   _c,   _c,   _c,   _c,   _c,   _c],
]

CATEGORIES = ["complexfloating", "floating", "inexact", "signedinteger", "unsignedinteger",
              "integer", "number", "generic"]
# mlx/dtype.cpp's subcategory_to_category[a][b]: is category a under category b.
MLX_SUBCATEGORY = [
    [1, 0, 1, 0, 0, 0, 1, 1],
    [0, 1, 1, 0, 0, 0, 1, 1],
    [0, 0, 1, 0, 0, 0, 1, 1],
    [0, 0, 0, 1, 0, 1, 1, 1],
    [0, 0, 0, 0, 1, 1, 1, 1],
    [0, 0, 0, 0, 0, 1, 1, 1],
    [0, 0, 0, 0, 0, 0, 1, 1],
    [0, 0, 0, 0, 0, 0, 0, 1],
]
# mlx/dtype.cpp's type_to_category.
MLX_TYPE_CATEGORY = {
    "bool": "generic", "uint8": "unsignedinteger", "uint16": "unsignedinteger",
    "uint32": "unsignedinteger", "uint64": "unsignedinteger", "int8": "signedinteger",
    "int16": "signedinteger", "int32": "signedinteger", "int64": "signedinteger",
    "float16": "floating", "float32": "floating", "float64": "floating",
    "bfloat16": "floating", "complex64": "complexfloating",
}


def test_dtype_objects():
    for d, name, size in zip(DTYPES, NAMES, SIZES):
        assert isinstance(d, em.Dtype)
        assert d.name == name
        assert d.size == size
        assert repr(d) == str(d) == f"ember.core.{name}"
        assert d == getattr(em, "bool_" if name == "bool" else name)
        assert pickle.loads(pickle.dumps(d)) == d
    assert len(set(DTYPES)) == len(DTYPES)
    assert len({hash(d) for d in DTYPES}) == len(DTYPES)
    assert em.float32 != em.float64 and em.int32 != em.uint32
    assert em.float32 != "float32" and em.float32 != np.float32


def test_array_dtype_and_itemsize(rng):
    for d, size in zip(DTYPES, SIZES):
        a = em.ones((3, 2), dtype=d)
        assert a.dtype == d
        assert a.itemsize == size
        assert a.nbytes == 6 * size


def test_promote_types_all_pairs():
    for i, a in enumerate(DTYPES):
        for j, b in enumerate(DTYPES):
            got = em.promote_types(a, b)
            assert got.name == MLX_PROMOTION[i][j], (a, b, got)
            assert em.promote_types(b, a) == got  # the table is symmetric


def test_promotion_reaches_arrays(rng):
    """Binary ops on arrays produce the promoted dtype, for every pair."""
    for a in DTYPES:
        for b in DTYPES:
            out = em.add(em.ones((2,), dtype=a), em.ones((2,), dtype=b))
            assert out.dtype == em.promote_types(a, b)


def test_categories_form_mlx_hierarchy():
    for i, a in enumerate(CATEGORIES):
        for j, b in enumerate(CATEGORIES):
            assert em.issubdtype(getattr(em, a), getattr(em, b)) == bool(MLX_SUBCATEGORY[i][j]), \
                (a, b)


def test_issubdtype_dtype_against_category():
    for d, name in zip(DTYPES, NAMES):
        own = CATEGORIES.index(MLX_TYPE_CATEGORY[name])
        for j, cat in enumerate(CATEGORIES):
            assert em.issubdtype(d, getattr(em, cat)) == bool(MLX_SUBCATEGORY[own][j]), (d, cat)


def test_issubdtype_dtype_against_dtype_and_category_against_dtype():
    for a in DTYPES:
        for b in DTYPES:
            assert em.issubdtype(a, b) == (a == b)
        for cat in CATEGORIES:
            assert em.issubdtype(getattr(em, cat), a) is False
    # mlx's documented examples
    assert em.issubdtype(em.int32, em.integer)
    assert not em.issubdtype(em.int32, em.floating)
    assert not em.issubdtype(em.float64, em.float32)
    assert em.issubdtype(em.bfloat16, em.floating)
    assert not em.issubdtype(em.signedinteger, em.floating)
    assert em.issubdtype(em.bool_, em.generic)
    assert not em.issubdtype(em.bool_, em.number)


@pytest.mark.parametrize("d", ["float16", "float32", "float64"])
def test_finfo_matches_numpy(d):
    info, ref = em.finfo(getattr(em, d)), np.finfo(d)
    assert info.dtype == getattr(em, d)
    assert info.min == float(ref.min)
    assert info.max == float(ref.max)
    assert info.eps == float(ref.eps)
    assert info.smallest_normal == float(ref.smallest_normal)


def test_finfo_bfloat16_and_complex64():
    info = em.finfo(em.bfloat16)
    assert info.max == float.fromhex("0x1.fep127")
    assert info.min == -info.max
    assert info.eps == 2.0 ** -7
    assert info.smallest_normal == 2.0 ** -126
    # the largest bfloat16 is representable: round-trips through an array
    assert em.array(info.max, dtype=em.bfloat16).item() == info.max
    c = em.finfo(em.complex64)
    # mlx reports the limits of the component type, and that type as the dtype
    assert c.dtype == em.float32
    assert c.max == float(np.finfo(np.float32).max)
    assert c.eps == float(np.finfo(np.float32).eps)


def test_finfo_accepts_dtype_likes_and_prints():
    assert em.finfo(np.float16).max == 65504.0
    assert em.finfo("float32").eps == float(np.finfo(np.float32).eps)
    assert repr(em.finfo(em.float32)) == "finfo(min=-3.40282e+38, max=3.40282e+38, dtype=float32)"
    assert repr(em.finfo(em.float16)) == "finfo(min=-65504, max=65504, dtype=float16)"


@pytest.mark.parametrize("d", ["int32", "uint8", "bool_"])
def test_finfo_rejects_non_inexact(d):
    with pytest.raises(ValueError, match=rf"\[finfo\] dtype {d.rstrip('_')} is not inexact"):
        em.finfo(getattr(em, d))


@pytest.mark.parametrize("d", ["uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32",
                               "int64"])
def test_iinfo_matches_numpy(d):
    info, ref = em.iinfo(getattr(em, d)), np.iinfo(d)
    assert info.min == int(ref.min) and info.max == int(ref.max)
    assert info.dtype == getattr(em, d)
    assert repr(info) == f"iinfo(min={ref.min}, max={ref.max}, dtype={d})"
    # the limits are representable: they survive a round trip through an array
    a = em.array(np.array([info.min, info.max], dtype=d))
    assert a.dtype == getattr(em, d)
    assert a.tolist() == [info.min, info.max]


@pytest.mark.parametrize("d", ["float32", "bfloat16", "complex64", "bool_"])
def test_iinfo_rejects_non_integers(d):
    with pytest.raises(ValueError, match=r"\[iinfo\]"):
        em.iinfo(getattr(em, d))
