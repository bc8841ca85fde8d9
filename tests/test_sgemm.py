"""ember's float32 product (native/kernels/sgemm.c) against numpy in float64.

The kernel packs blocks of KC = 384 steps along k, MC = 192 rows of a (panels
of MR = 12 rows) and NC = 3072 columns of b (panels of NR = 32), and reads b
in place for products of at most 12 rows. The shapes below sit on and beside
every one of those edges, under all four transpose combinations, with leading
dimensions wider than the matrix; each runs through ember's kernel and through
OpenBLAS's sgemm (the fallback), so both stay tested on a machine that has
AVX-512."""
import contextlib

import numpy as np
import pytest

import ember.core as em
from ember.core._ffi import lib
from test_products import thread_budget

OWN = bool(lib.em_sgemm_own_available())


@contextlib.contextmanager
def sgemm_kernel(own):
    lib.em_set_sgemm_own(int(own))
    try:
        yield
    finally:
        lib.em_set_sgemm_own(-1)


def operand(rng, rows, cols, transposed, pad):
    """An ember (rows, cols) float32 matrix, read as the transpose of a
    row-major one when `transposed`, with `pad` unused columns in every stored
    row (a leading dimension wider than the matrix); and its float64 twin."""
    stored = (cols, rows) if transposed else (rows, cols)
    full = rng.standard_normal((stored[0], stored[1] + pad)).astype(np.float32)
    x = em.array(full)[:, :stored[1]]
    if transposed:
        return x.T, full[:, :stored[1]].T.astype(np.float64)
    return x, full[:, :stored[1]].astype(np.float64)


def check(got, x, y):
    """got == x @ y to float32's accumulated rounding: sqrt(k) unit roundoffs
    of |x| @ |y| per entry."""
    expected = x @ y
    got = np.array(got).astype(np.float64)
    assert got.shape == expected.shape
    bound = 2 ** -23 * (np.abs(expected) + 4 * np.sqrt(x.shape[1]) * (np.abs(x) @ np.abs(y)))
    err = np.abs(got - expected)
    assert np.all(err <= bound), float(np.max(err / bound))


KERNELS = [pytest.param(True, id="ember",
                        marks=pytest.mark.skipif(not OWN, reason="CPU without AVX-512")),
           pytest.param(False, id="openblas")]

EDGE_SHAPES = [  # (m, n, k)
    (1, 1, 1), (2, 3, 4),
    (12, 32, 5), (13, 33, 7), (11, 31, 9),        # one tile, and one past it
    (5, 17, 383), (7, 15, 384), (9, 16, 385),     # a product of <= 12 rows (b in place)
    (25, 65, 769),                                # three k blocks, ragged panels
    (192, 64, 40), (193, 96, 41), (400, 50, 30),  # one row block, one past it, several
    (3, 3100, 20), (20, 3100, 20),                # past one NC block of columns
    (64, 10, 512), (256, 10, 33),                 # narrower than one vector
]


@pytest.mark.parametrize("own", KERNELS)
@pytest.mark.parametrize("ta,tb", [(0, 0), (0, 1), (1, 0), (1, 1)])
@pytest.mark.parametrize("m,n,k", EDGE_SHAPES, ids=repr)
def test_product_edges(rng, own, ta, tb, m, n, k):
    a, x = operand(rng, m, k, ta, pad=int(rng.integers(0, 5)))
    b, y = operand(rng, k, n, tb, pad=int(rng.integers(0, 5)))
    with sgemm_kernel(own):
        got = em.matmul(a, b)
        em.eval(got)
    check(got, x, y)


@pytest.mark.skipif(not OWN, reason="CPU without AVX-512")
@pytest.mark.parametrize("m,n,k", [(301, 257, 700), (8, 512, 784), (784, 512, 8), (1000, 90, 130)],
                         ids=repr)
def test_result_does_not_depend_on_threads(rng, m, n, k):
    """Each entry is a sum over k in one order whatever the cut of the product
    over the pool (rows or columns), so every budget gives the same bits."""
    a, x = operand(rng, m, k, False, 0)
    b, y = operand(rng, k, n, True, 0)
    results = []
    for threads in (1, 2, 3, 8):
        with thread_budget(threads):
            results.append(np.array(em.matmul(a, b)))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    check(results[0], x, y)


@pytest.mark.skipif(not OWN, reason="CPU without AVX-512")
def test_specials_propagate_and_padding_stays_out(rng):
    """inf and NaN reach exactly the entries numpy gives them; the zero
    padding of the panels (rows past m, columns past n) never does."""
    x = rng.standard_normal((13, 40)).astype(np.float32)
    y = rng.standard_normal((40, 33)).astype(np.float32)
    x[2, 5] = np.inf
    x[12, 7] = np.nan
    y[9, 32] = -np.inf
    with np.errstate(invalid="ignore"):
        expected = x.astype(np.float64) @ y.astype(np.float64)
    for own in (True, False):
        with sgemm_kernel(own):
            got = np.array(em.matmul(em.array(x), em.array(y)))
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))
        finite = np.isfinite(expected)
        np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-4, atol=1e-4)


def test_switch_reports_the_kernel():
    assert lib.em_set_sgemm_own(0) == 0
    assert lib.em_set_sgemm_own(1) == int(OWN)
    assert lib.em_set_sgemm_own(-1) == int(OWN)
