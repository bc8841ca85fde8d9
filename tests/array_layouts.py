"""Random arrays in many memory layouts, and an exact check against numpy.

Shared by the indexing and manipulation tests: every op there runs on
non-contiguous inputs (transposed, reversed, strided and broadcast views, views
of views, row offsets) so that the engine's view kernels and copy paths both
get exercised.
"""
import numpy as np

import ember.core as em

LAYOUTS = ["contiguous", "transposed", "reversed", "strided", "broadcast", "view_chain",
           "row_offset"]


def random_data(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype == np.uint8:
        return rng.integers(0, 256, shape).astype(np.uint8)
    if dtype.kind == "i":
        return rng.integers(-100, 100, shape).astype(dtype)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def make(rng, shape, dtype="float32", layout="contiguous"):
    """An ember array of `shape` built with `layout`, and the numpy array it must equal."""
    shape = tuple(shape)
    nd = len(shape)
    if layout == "contiguous" or nd == 0:
        x = random_data(rng, shape, dtype)
        return em.array(x), x
    if layout == "transposed":
        x = random_data(rng, shape[::-1], dtype)
        return em.transpose(em.array(x)), x.T
    if layout == "reversed":
        x = random_data(rng, shape, dtype)
        idx = (slice(None, None, -1),) * nd
        return em.array(x)[idx], x[idx]
    if layout == "strided":
        x = random_data(rng, shape[:-1] + (2 * shape[-1] + 1,), dtype)
        return em.array(x)[..., 1::2], x[..., 1::2]
    if layout == "broadcast":
        base = (1,) + shape[1:]
        x = random_data(rng, base, dtype)
        return em.broadcast_to(em.array(x), shape), np.broadcast_to(x, shape)
    if layout == "row_offset":
        # row-contiguous, but starting part-way into its buffer
        x = random_data(rng, (shape[0] + 1,) + shape[1:], dtype)
        return em.array(x)[1:], x[1:]
    if layout == "view_chain":
        # transpose -> reversed-step slice -> transpose: three views stacked.
        x = random_data(rng, shape[::-1][:-1] + (shape[0] + 2,), dtype)
        y = em.transpose(em.array(x))[::-1][1:-1]
        return y, x.T[::-1][1:-1]
    raise AssertionError(layout)


def check(out, expected):
    """out (an ember array) equals numpy's `expected` in shape, dtype and values."""
    assert isinstance(out, em.array), type(out)
    expected = np.asarray(expected)
    got = np.array(out)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    np.testing.assert_array_equal(got, expected)
