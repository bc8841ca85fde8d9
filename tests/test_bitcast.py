"""em.view / a.view (the BITCAST primitive) against numpy's ndarray.view.

Same-size views keep the shape, size-changing views rescale the last axis,
bfloat16 bits come through unchanged (the old numpy round trip lost them),
strided and offset inputs are copied first, and bad views raise naming the
shapes and dtypes. The vmap rule is called directly.
"""
import ml_dtypes
import numpy as np
import pytest

import ember.core as em
from ember.core._ffi import lib
from ember.core.primitives import Node, rules_of

NUMPY_TYPES = ["uint8", "int8", "uint16", "int16", "float16", "uint32", "int32", "float32",
               "uint64", "int64", "float64"]


def random_bytes(rng, shape):
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


@pytest.mark.parametrize("src", NUMPY_TYPES)
@pytest.mark.parametrize("dst", NUMPY_TYPES)
def test_view_matches_numpy(rng, src, dst):
    item = np.dtype(src).itemsize
    raw = random_bytes(rng, (3, 8 * 8 // item * item))
    x = raw.view(src)
    if np.dtype(src).kind == "f":
        x = np.where(np.isnan(x), 0, x).astype(src)  # nan payloads need not survive numpy
    got = em.array(x).view(getattr(em, dst))
    want = x.view(dst)
    assert got.shape == want.shape and got.dtype == getattr(em, dst)
    np.testing.assert_array_equal(np.array(got).view(np.uint8), want.view(np.uint8))
    np.testing.assert_array_equal(np.array(em.view(em.array(x), dst)).view(np.uint8),
                                  want.view(np.uint8))


def test_bfloat16_bits_survive(rng):
    bits = rng.integers(0, 2**16, size=(5, 6), dtype=np.uint16)
    bits[bits & 0x7F80 == 0x7F80] = 0  # no nan/inf patterns
    a = em.array(bits).view(em.bfloat16)
    assert a.dtype == em.bfloat16
    np.testing.assert_allclose(np.array(a.astype(em.float32)),
                               bits.view(ml_dtypes.bfloat16).astype(np.float32))
    np.testing.assert_array_equal(np.array(a.view(em.uint16)), bits)
    np.testing.assert_array_equal(np.array(a.view(em.uint8)), bits.view(np.uint8))


def test_strided_and_offset_inputs(rng):
    x = rng.normal(size=(6, 10)).astype(np.float32)
    a = em.array(x)
    for view_a, view_x in [(a.T, x.T), (a[::2, 1::3], x[::2, 1::3]), (a[:, ::-1], x[:, ::-1]),
                           (a[1:], x[1:])]:
        np.testing.assert_array_equal(np.array(view_a.view(em.int32)),
                                      np.ascontiguousarray(view_x).view(np.int32))
        np.testing.assert_array_equal(np.array(view_a.view(em.uint16)),
                                      np.ascontiguousarray(view_x).view(np.uint16))
    b = random_bytes(rng, (9,))
    # Starting one byte in, the uint16 view must not read misaligned memory.
    np.testing.assert_array_equal(np.array(em.array(b)[1:].view(em.uint16)), b[1:].copy().view(np.uint16))


def test_zero_d_and_empty(rng):
    np.testing.assert_array_equal(np.array(em.array(1.0).view(em.uint32)), np.float32(1.0).view(np.uint32))
    assert em.array(1.0).view(em.int32).shape == ()
    e = em.zeros((0, 4), em.uint8).view(em.uint32)
    assert e.shape == (0, 1)
    assert em.zeros((3, 0), em.float32).view(em.uint8).shape == (3, 0)


def test_bad_views():
    with pytest.raises(ValueError, match=r"\[view\] cannot view a 0-d float32 array as uint8"):
        em.array(1.0).view(em.uint8)
    with pytest.raises(ValueError, match=r"\[view\] the last axis of a uint8 array of shape \(2, 3\) \(3 bytes\) "
                                         r"is not a multiple of the size of uint16"):
        em.zeros((2, 3), em.uint8).view(em.uint16)


def test_vmap_rule(rng):
    x = rng.normal(size=(4, 3)).astype(np.float32)
    out = em.array(x[0]).view(em.uint8)
    p = out._p
    node = Node(lib.em_prim_of(p), [em.array(x[0])], (lib.em_iparams(p)[0],), (), out)
    batched, axis = rules_of(lib.EM_P_BITCAST).vmap(node, [em.array(x.T)], [1])
    assert axis == 0 and batched.shape == (4, 12)
    np.testing.assert_array_equal(np.array(batched), x.view(np.uint8))
    assert rules_of(lib.EM_P_BITCAST).jvp(node, [None]) is None
    assert rules_of(lib.EM_P_BITCAST).vjp(node, em.zeros((12,), em.uint8)) == [None]
