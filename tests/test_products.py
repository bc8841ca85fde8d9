"""Matrix products against numpy: matmul (the BLAS primitive) over dtypes,
vector and batched forms, broadcast leading axes, non-contiguous operands and
sizes large enough to be split over threads (and over thread budgets of
several sizes); and addmm, inner and outer."""
import contextlib

import ml_dtypes
import numpy as np
import pytest

import ember.core as em
from array_layouts import make
from ember.core._ffi import lib

LAYOUTS = ["contiguous", "transposed", "reversed", "strided", "broadcast", "view_chain"]
# unit roundoff of each result dtype, and of the type its products accumulate in
# (float16/bfloat16 accumulate in float32)
EPS = {"float32": 6e-8, "float64": 1.2e-16, "float16": 4.9e-4, "bfloat16": 3.9e-3,
       "complex64": 6e-8}
ACC = {"float32": 6e-8, "float64": 1.2e-16, "float16": 6e-8, "bfloat16": 6e-8, "complex64": 6e-8}


def operand(rng, shape, dtype, layout="contiguous"):
    """An ember operand and its numpy twin in float64 / complex128 / int64."""
    base = "float32" if dtype == "bfloat16" else dtype
    a, x = make(rng, shape, base, layout)
    if dtype == "bfloat16":
        a = a.astype(em.bfloat16)
        x = x.astype(ml_dtypes.bfloat16)
    kind = np.dtype(base).kind
    wide = {"f": np.float64, "c": np.complex128, "i": np.int64}[kind]
    return a, np.asarray(x).astype(wide)


def check_product(got, a, b, dtype):
    """got equals a @ b (float64 numpy) to one rounding of the result dtype
    plus the accumulation's rounding, which scales with |a| @ |b| (the
    magnitude each entry is summed from) and sqrt(k)."""
    expected = a @ b
    got = np.array(got)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if dtype.startswith("int"):
        np.testing.assert_array_equal(got, expected)
        return
    k = a.shape[-1] if a.ndim else 1
    scale = np.abs(a) @ np.abs(b)
    err = np.abs(got.astype(expected.dtype) - expected)
    bound = 2 * EPS[dtype] * np.abs(expected) + 8 * ACC[dtype] * np.sqrt(k) * scale
    assert np.all(err <= bound + 1e-30), np.max(err / (bound + 1e-30))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "complex64",
                                   "int32"])
@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((1, 7), (7, 1)), ((4,), (4, 3)),
                                    ((3, 4), (4,)), ((6,), (6,)), ((2, 3, 4), (2, 4, 5)),
                                    ((2, 1, 3, 4), (5, 4, 2)), ((4, 5), (3, 5, 2)),
                                    ((3, 0), (0, 2)), ((0, 3), (3, 4))], ids=repr)
def test_matmul(rng, dtype, shapes):
    sa, sb = shapes
    a, x = operand(rng, sa, dtype, LAYOUTS[rng.integers(len(LAYOUTS))] if len(sa) > 1 else "contiguous")
    b, y = operand(rng, sb, dtype, LAYOUTS[rng.integers(len(LAYOUTS))] if len(sb) > 1 else "contiguous")
    out = a @ b
    assert out.dtype == a.dtype
    check_product(out, x, y, dtype)


@pytest.mark.parametrize("layout_a", LAYOUTS)
@pytest.mark.parametrize("layout_b", ["contiguous", "transposed", "strided"])
def test_matmul_layouts(rng, layout_a, layout_b):
    a, x = operand(rng, (5, 7), "float32", layout_a)
    b, y = operand(rng, (7, 3), "float32", layout_b)
    check_product(em.matmul(a, b), x, y, "float32")


@pytest.mark.parametrize("m,k,n", [(512, 384, 256), (1, 4096, 1024), (1024, 64, 1), (300, 301, 302)])
def test_large_matmul(rng, m, k, n):
    a, x = operand(rng, (m, k), "float32")
    b, y = operand(rng, (k, n), "float32")
    check_product(a @ b, x, y, "float32")


def test_batched_matmul_with_many_small_products(rng):
    a, x = operand(rng, (64, 8, 3, 5), "float32")
    b, y = operand(rng, (8, 5, 4), "float32", "transposed")
    check_product(a @ b, x, y, "float32")


def test_mixed_dtypes_promote(rng):
    a, x = operand(rng, (3, 4), "float16")
    b, y = operand(rng, (4, 2), "float32")
    out = a @ b
    assert out.dtype == em.float32
    check_product(out, x, y, "float16")


def test_addmm_inner_outer(rng):
    a, x = operand(rng, (3, 4), "float32")
    b, y = operand(rng, (4, 5), "float32")
    c, z = operand(rng, (3, 5), "float32")
    np.testing.assert_allclose(np.array(em.addmm(c, a, b, alpha=0.5, beta=2.0)),
                               0.5 * (x @ y) + 2.0 * z, rtol=1e-5, atol=1e-5)
    u, p = operand(rng, (2, 4), "float32")
    np.testing.assert_allclose(np.array(em.inner(a, u)), np.inner(x, p), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.array(em.outer(a, b)), np.outer(x, y), rtol=1e-6, atol=1e-6)
    assert em.inner(em.array(2.0), em.array(3.0)).item() == 6.0


def test_matmul_errors():
    with pytest.raises(ValueError, match=r"\[matmul\] last axis of a \(3\) must equal axis -2 "
                                         r"of b \(4\); shapes \(2, 3\) and \(4, 2\)"):
        em.matmul(em.ones((2, 3)), em.ones((4, 2)))
    with pytest.raises(ValueError, match=r"\[matmul\] inputs must have at least one dimension"):
        em.matmul(em.array(1.0), em.ones((2, 2)))
    with pytest.raises(ValueError, match=r"\[matmul\].*\(2, 3, 4\).*\(5, 4, 2\)"):
        em.matmul(em.ones((2, 3, 4)), em.ones((5, 4, 2)))


# ---- products split over the thread budget ----
# OpenBLAS runs single-threaded (native/threads.c) and the matmul kernel cuts
# a product into blocks of rows or columns, or spreads a batch, over ember's
# thread budget; the budget, not the cores, decides the cuts, so these run
# under budgets of 1, 3 and 8 threads.

@contextlib.contextmanager
def thread_budget(n):
    old = lib.em_num_threads()
    lib.em_set_num_threads(n)
    try:
        yield
    finally:
        lib.em_set_num_threads(old)


SPLIT_SHAPES = [
    ((300, 200), (200, 700)),       # wider than tall: split along columns
    ((1000, 130), (130, 90)),       # taller than wide: split along rows
    ((8, 784), (784, 512)),         # a small batch of an MLP layer
    ((784, 8), (8, 512)),           # its weight gradient
    ((2, 257, 129), (129, 301)),    # a batch smaller than the budget, ragged edges
    ((5, 3, 64, 80), (80, 72)),     # a stacked batch sharing b
    ((9, 70, 50), (9, 50, 60)),     # a batch of its own b's
    ((1, 1500), (1500, 1100)),      # a row vector
]


@pytest.mark.parametrize("threads", [1, 3, 8])
@pytest.mark.parametrize("shapes", SPLIT_SHAPES, ids=repr)
def test_matmul_split_over_the_thread_budget(rng, threads, shapes):
    a, x = operand(rng, shapes[0], "float32")
    b, y = operand(rng, shapes[1], "float32")
    with thread_budget(threads):
        check_product(a @ b, x, y, "float32")


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "float16"])
@pytest.mark.parametrize("layout_a,layout_b", [("contiguous", "transposed"),
                                               ("transposed", "contiguous"),
                                               ("transposed", "transposed")])
def test_transposed_operands_split_over_the_thread_budget(rng, dtype, layout_a, layout_b):
    a, x = operand(rng, (333, 150), dtype, layout_a)
    b, y = operand(rng, (150, 517), dtype, layout_b)
    with thread_budget(3):
        check_product(a @ b, x, y, dtype)


def test_products_from_several_python_threads(rng):
    # concurrent evals share one pool: a busy pool runs the caller's blocks inline
    from concurrent.futures import ThreadPoolExecutor
    pairs = [(operand(rng, (400, 300), "float32"), operand(rng, (300, 350), "float32"))
             for _ in range(6)]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda p: np.array(p[0][0] @ p[1][0]), pairs))
    for ((_, x), (_, y)), got in zip(pairs, results):
        check_product(got, x, y, "float32")
