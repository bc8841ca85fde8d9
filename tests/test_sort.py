"""sort, argsort, partition, argpartition and topk against numpy.

Every dtype, along every axis and the flattened array, on short lines (the
merge sort) and long ones (the radix sort), with many repeated values (argsort
must match numpy's stable argsort exactly), special floats (NaN last, infs,
-0.0), strided views and empty arrays. The partitions are checked by their
contract (the kth element in place, nothing larger before it, nothing smaller
after) and partition must equal the input gathered through argpartition. The
transform rules are checked against JAX's derivatives of jnp.sort.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ember.core as em
from ember.core._ffi import lib
from ember.core.primitives import Node, rules_of

DTYPES = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
          "float16", "bfloat16", "float32", "float64", "complex64"]


def make(rng, shape, dtype, distinct=False):
    """An ember array of `dtype` and the exact values it holds as numpy."""
    if dtype == "bool":
        x = rng.random(shape) < 0.5
    elif dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        lo, hi = (int(info.min), int(info.max)) if distinct else (-20, 20)
        x = rng.integers(max(lo, int(info.min)), min(hi, int(info.max)), shape, endpoint=True,
                         dtype=dtype)
    else:
        x = rng.standard_normal(shape) * (100 if distinct else 1)
        if not distinct:
            x = np.round(x * 4) / 4  # repeated values
        if dtype == "complex64":
            x = x + 1j * np.round(rng.standard_normal(shape) * 2) / 2
    a = em.array(x, dtype=getattr(em, "bool_" if dtype == "bool" else dtype))
    return a, np.array(a)


def np_axis(axis):
    return -1 if axis is None else axis


def flat_if_none(x, axis):
    return x.reshape(-1) if axis is None else x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((7,), 0), ((300,), -1), ((4, 37), 1), ((37, 5), 0),
                                        ((3, 4, 600), -1), ((3, 300, 2), 1), ((5, 6), None)])
def test_sort_and_argsort(rng, dtype, shape, axis):
    a, x = make(rng, shape, dtype)
    out = em.sort(a, axis=axis)
    assert out.dtype == a.dtype
    np.testing.assert_array_equal(np.array(out), np.sort(flat_if_none(x, axis), axis=np_axis(axis)))
    idx = em.argsort(a, axis=axis)
    assert idx.dtype == em.uint32
    np.testing.assert_array_equal(
        np.array(idx), np.argsort(flat_if_none(x, axis), axis=np_axis(axis), kind="stable"))


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint64", "float16", "float32",
                                   "float64"])
def test_sort_extreme_values(rng, dtype):
    a, x = make(rng, (2, 5000), dtype, distinct=True)
    np.testing.assert_array_equal(np.array(em.sort(a)), np.sort(x))
    np.testing.assert_array_equal(np.array(em.argsort(a)), np.argsort(x, kind="stable"))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("n", [9, 1000])
def test_special_floats(rng, dtype, n):
    specials = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0])
    x = np.concatenate([specials, rng.standard_normal(n - len(specials))])
    x = rng.permutation(x)
    a = em.array(x, dtype=getattr(em, dtype))
    xv = np.array(a).astype(np.float64)
    expected = np.sort(xv)
    got = np.array(em.sort(a)).astype(np.float64)
    np.testing.assert_array_equal(got, expected)  # NaNs last; -0.0 == 0.0
    # argsort treats -0.0 and 0.0 as equal, so the stable order matches numpy's.
    np.testing.assert_array_equal(np.array(em.argsort(a)), np.argsort(xv, kind="stable"))


def test_complex_order(rng):
    x = (rng.integers(-2, 3, 500) + 1j * rng.integers(-2, 3, 500)).astype(np.complex64)
    a = em.array(x)
    np.testing.assert_array_equal(np.array(em.sort(a)), np.sort(x))
    np.testing.assert_array_equal(np.array(em.argsort(a)), np.argsort(x, kind="stable"))


def test_strided_and_transposed_inputs(rng):
    a, x = make(rng, (40, 600), "float32", distinct=True)
    view = a[::3, ::-2]
    np.testing.assert_array_equal(np.array(em.sort(view, axis=1)), np.sort(x[::3, ::-2], axis=1))
    np.testing.assert_array_equal(np.array(em.sort(view, axis=0)), np.sort(x[::3, ::-2], axis=0))
    np.testing.assert_array_equal(np.array(em.argsort(a.T, axis=1)),
                                  np.argsort(x.T, axis=1, kind="stable"))


def test_large_sort_threaded(rng):
    # one long line: its radix passes split over the threads
    x = rng.standard_normal(1 << 20).astype(np.float32)
    np.testing.assert_array_equal(np.array(em.sort(em.array(x))), np.sort(x))
    np.testing.assert_array_equal(np.array(em.argsort(em.array(x))), np.argsort(x, kind="stable"))
    for dtype in ["int16", "int64", "uint8"]:
        a, v = make(rng, (300001,), dtype, distinct=dtype == "int64")
        np.testing.assert_array_equal(np.array(em.sort(a)), np.sort(v))
        np.testing.assert_array_equal(np.array(em.argsort(a)), np.argsort(v, kind="stable"))
    f = rng.standard_normal(300000)
    f[rng.random(f.size) < 0.1] = np.nan
    f[:5] = [-0.0, 0.0, np.inf, -np.inf, -0.0]
    np.testing.assert_array_equal(np.array(em.sort(em.array(f, em.float64))), np.sort(f))
    np.testing.assert_array_equal(np.array(em.argsort(em.array(f, em.float64))),
                                  np.argsort(f, kind="stable"))
    # many lines: the lines spread over the threads
    y = rng.integers(0, 1000, (8, 20000)).astype(np.int32)
    np.testing.assert_array_equal(np.array(em.argsort(em.array(y))), np.argsort(y, kind="stable"))


def narrow_and_lopsided_lines(rng, n):
    """Long lines whose keys span few bits or pile into one top digit."""
    yield "int64", 10**15 + rng.integers(0, 1000, n)                 # far from zero, narrow
    yield "float32", 1000 + rng.random(n)                             # one exponent
    lopsided = rng.standard_normal(n)
    lopsided[rng.integers(0, n, 3)] = [1e300, -1e300, np.nan]        # outliers squeeze the rest
    yield "float64", lopsided
    yield "int32", np.full(n, -7)                                     # every key equal
    yield "uint64", rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)


def test_long_lines_by_top_digit(rng):
    # lines of 65536 and more sort by one top-digit pass and then bucket by bucket
    for dtype, v in narrow_and_lopsided_lines(rng, 70001):
        a = em.array(v, getattr(em, dtype))
        x = np.array(a)
        np.testing.assert_array_equal(np.array(em.sort(a)), np.sort(x), err_msg=dtype)
        np.testing.assert_array_equal(np.array(em.argsort(a)), np.argsort(x, kind="stable"),
                                      err_msg=dtype)
    # several long lines along a strided axis, with repeated values
    a, x = make(rng, (70000, 3), "float32")
    np.testing.assert_array_equal(np.array(em.sort(a, axis=0)), np.sort(x, axis=0))
    np.testing.assert_array_equal(np.array(em.argsort(a[::-1], axis=0)),
                                  np.argsort(x[::-1], axis=0, kind="stable"))


@pytest.mark.parametrize("kth", [0, 1, 13333, -2, -1])
def test_partition_long_lines(rng, kth):
    # long lines: several levels of radix select (11-bit digits) before the quickselect;
    # from 2**17 keys the first level splits over the threads
    for dtype, v in narrow_and_lopsided_lines(rng, 140001):
        a = em.array(v, getattr(em, dtype))
        x = np.array(a)
        part = np.array(em.partition(a, kth))
        check_partition(x, part, kth, 0)
        idx = em.argpartition(a, kth)
        np.testing.assert_array_equal(part, np.array(em.take_along_axis(a, idx, 0)))
    a, x = make(rng, (280002,), "float32")
    view, xv = a[::-2], x[::-2]  # one long strided line
    check_partition(xv, np.array(em.partition(view, kth)), kth, 0)
    check_partition(xv, xv[np.array(em.argpartition(view, kth)).astype(np.int64)], kth, 0)
    a, x = make(rng, (3, 20000), "int64", distinct=True)
    check_partition(x, np.array(em.partition(a, kth, axis=1)), kth, 1)
    a, x = make(rng, (20000, 2), "float16")
    check_partition(x, np.array(em.partition(a, kth, axis=0)), kth, 0)


@pytest.mark.parametrize("shape,axis", [((0,), 0), ((3, 0), 1), ((0, 5), 1), ((0, 5), 0)])
def test_empty(shape, axis):
    a = em.zeros(shape)
    assert em.sort(a, axis).shape == shape
    assert em.argsort(a, axis).shape == shape
    np.testing.assert_array_equal(np.array(em.sort(a, axis)), np.zeros(shape, np.float32))


def check_partition(x, part, kth, axis):
    """part is a partition of x around kth along axis."""
    # kind="stable": numpy 2.4's default (AVX-512) float16 sort loses values on long
    # lines with many repeats (sorting 20000 such values returned 12 of them changed)
    srt = np.sort(x, axis=axis, kind="stable")
    xm, pm, sm = (np.moveaxis(v, axis, -1) for v in (x, part, srt))
    k = kth % xm.shape[-1]
    np.testing.assert_array_equal(pm[..., k], sm[..., k])
    # Compare with NaN as the largest value, as numpy orders.
    big = lambda v: np.where(np.isnan(v), np.inf, v) if v.dtype.kind == "f" else v
    p, pk = big(pm), big(pm[..., k:k + 1])
    assert (p[..., :k] <= pk).all() and (p[..., k + 1:] >= pk).all()
    np.testing.assert_array_equal(np.sort(pm, axis=-1, kind="stable"), sm)  # a permutation


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "int64", "float16", "float32",
                                   "float64"])
@pytest.mark.parametrize("shape,axis,kth", [((1,), 0, 0), ((17,), 0, 3), ((5, 1000), 1, 500),
                                            ((5, 1000), -1, -1), ((200, 3), 0, 0),
                                            ((4, 5, 33), 2, 32)])
def test_partition(rng, dtype, shape, axis, kth):
    a, x = make(rng, shape, dtype)
    part = np.array(em.partition(a, kth, axis=axis))
    check_partition(x, part, kth, axis)
    idx = em.argpartition(a, kth, axis=axis)
    assert idx.dtype == em.uint32
    check_partition(x, np.take_along_axis(x, np.array(idx).astype(np.int64), axis), kth, axis)
    # partition is exactly the input gathered through argpartition (the rules rely on it)
    np.testing.assert_array_equal(part, np.array(em.take_along_axis(a, idx, axis)))


def test_partition_with_nans_and_flattened(rng):
    x = rng.standard_normal((6, 50)).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = np.nan
    a = em.array(x)
    check_partition(x.reshape(-1), np.array(em.partition(a, 100, axis=None)), 100, 0)
    check_partition(x, np.array(em.partition(a, 45, axis=1)), 45, 1)


def test_partition_many_equal_keys(rng):
    x = rng.integers(0, 3, 100000).astype(np.int32)
    a = em.array(x)
    check_partition(x, np.array(em.partition(a, 50000)), 50000, 0)


@pytest.mark.parametrize("dtype", ["int32", "float32", "float64", "uint8"])
@pytest.mark.parametrize("shape,axis,k", [((10,), -1, 3), ((4, 300), 1, 300), ((30, 4), 0, 1),
                                          ((3, 5), None, 4), ((4, 9), 1, 0)])
def test_topk(rng, dtype, shape, axis, k):
    a, x = make(rng, shape, dtype)
    out = em.topk(a, k, axis=axis)
    xs = flat_if_none(x, axis)
    ax = np_axis(axis)
    expected = np.take(np.sort(xs, axis=ax), range(xs.shape[ax] - k, xs.shape[ax]), axis=ax)
    assert out.shape == expected.shape and out.dtype == a.dtype
    np.testing.assert_array_equal(np.sort(np.array(out), axis=ax), expected)


def test_errors():
    a = em.zeros((3, 4))
    with pytest.raises(ValueError, match=r"\[sort\] axis 2 is out of bounds for array of dimension 2"):
        em.sort(a, axis=2)
    with pytest.raises(ValueError, match=r"\[argsort\] axis -3 is out of bounds"):
        em.argsort(a, axis=-3)
    with pytest.raises(ValueError, match=r"\[sort\] axis -1 is out of bounds for array of dimension 0"):
        em.sort(em.array(1.0))
    with pytest.raises(ValueError, match=r"\[partition\] kth 4 is out of bounds for axis 1 of size 4"):
        em.partition(a, 4)
    with pytest.raises(ValueError, match=r"\[argpartition\] kth -5 is out of bounds for axis 1 of size 4"):
        em.argpartition(a, -5)
    with pytest.raises(ValueError, match=r"\[partition\] kth 0 is out of bounds for axis 0 of size 0"):
        em.partition(em.zeros((0,)), 0)
    with pytest.raises(ValueError, match=r"\[topk\] k must be between 0 and 4 \(the size of axis 1\), got 5"):
        em.topk(a, 5)
    with pytest.raises(ValueError, match=r"\[topk\] axis 3 is out of bounds"):
        em.topk(a, 1, axis=3)


# ---- transform rules, checked against JAX ----

def node_of(out):
    """The Node view of a pending op's output (what transforms hand the rules)."""
    p = out._p
    prim = lib.em_prim_of(p)
    inputs = []
    for i in range(lib.em_num_inputs(p)):
        q = lib.em_input(p, i)
        lib.em_retain(q)
        inputs.append(em.array.__new__(em.array))
        inputs[-1]._p = q
    ip = tuple(lib.em_iparams(p)[i] for i in range(lib.em_num_iparams(p)))
    fp = tuple(lib.em_fparams(p)[i] for i in range(lib.em_num_fparams(p)))
    return Node(prim, inputs, ip, fp, out)


@pytest.mark.parametrize("axis", [0, 1])
def test_sort_rules_match_jax(rng, axis):
    x = rng.standard_normal((5, 7)).astype(np.float32)
    t = rng.standard_normal((5, 7)).astype(np.float32)
    ct = rng.standard_normal((5, 7)).astype(np.float32)
    node = node_of(em.sort(em.array(x), axis=axis))
    rules = rules_of(lib.EM_P_SORT)
    f = lambda v: jnp.sort(v, axis=axis)
    _, jvp_ref = jax.jvp(f, (x,), (t,))
    np.testing.assert_allclose(np.array(rules.jvp(node, [em.array(t)])), np.asarray(jvp_ref))
    _, pull = jax.vjp(f, x)
    np.testing.assert_allclose(np.array(rules.vjp(node, em.array(ct))[0]), np.asarray(pull(ct)[0]))
    # vmap over a new leading axis: the same sort on every batch entry
    xb = rng.standard_normal((3, 5, 7)).astype(np.float32)
    out, out_axis = rules.vmap(node, [em.array(xb)], [0])
    assert out_axis == 0
    np.testing.assert_array_equal(np.array(out), np.sort(xb, axis=axis + 1))


def test_partition_rules(rng):
    x = rng.standard_normal((4, 40)).astype(np.float32)
    t = rng.standard_normal((4, 40)).astype(np.float32)
    a = em.array(x)
    out = em.partition(a, 10)
    node = node_of(out)
    rules = rules_of(lib.EM_P_PARTITION)
    idx = np.array(em.argpartition(a, 10)).astype(np.int64)
    # The tangent follows each value to where partition put it.
    np.testing.assert_array_equal(np.array(rules.jvp(node, [em.array(t)])),
                                  np.take_along_axis(t, idx, 1))
    ct = rng.standard_normal((4, 40)).astype(np.float32)
    back = np.zeros_like(ct)
    np.put_along_axis(back, idx, ct, 1)
    np.testing.assert_array_equal(np.array(rules.vjp(node, em.array(ct))[0]), back)
    xb = rng.standard_normal((4, 3, 40)).astype(np.float32)
    outb, out_axis = rules.vmap(node, [em.array(xb)], [1])
    assert out_axis == 1
    check_partition(xb, np.array(outb), 10, 2)
    arg_rules = rules_of(lib.EM_P_ARGSORT)
    assert arg_rules.jvp(node_of(em.argsort(a)), [em.array(t)]) is None
    assert arg_rules.vjp(node_of(em.argsort(a)), em.array(ct)) == [None]


# ---- the AVX-512 quicksort of 32-bit keys (SORT of float32, int32, uint32) ----

VSORT_LENGTHS = [2, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 90, 127, 128, 129, 150, 180, 200, 255,
                 256, 257, 1000, 4099, 65535, 70001]  # each network size, quicksort, buckets


def patterned(rng, pattern, n, dtype):
    """Inputs that stress a quicksort: runs, duplicates, extremes, special floats."""
    if dtype == "float32":
        base = rng.standard_normal(n).astype(np.float32)
    else:
        info = np.iinfo(dtype)
        base = rng.integers(info.min, info.max, n, endpoint=True, dtype=dtype)
    if pattern == "random":
        return base
    if pattern == "few distinct":
        return base[rng.integers(0, min(3, n), n)]
    if pattern == "all equal":
        return np.full(n, base[0])
    if pattern == "sorted":
        return np.sort(base)
    if pattern == "reversed":
        return np.sort(base)[::-1].copy()
    if pattern == "organ pipe":
        s = np.sort(base)
        return np.concatenate([s[: n // 2], s[n // 2:][::-1]])
    # "extremes": the dtype's limits (infinities, NaNs and signed zeros for float32)
    if dtype == "float32":
        special = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0,
                            np.finfo(np.float32).max, -np.finfo(np.float32).max,
                            np.finfo(np.float32).tiny], np.float32)
    else:
        info = np.iinfo(dtype)
        special = np.array([info.min, info.max, info.min + 1, info.max - 1, 0], dtype)
    x = base.copy()
    picks = rng.random(n) < 0.4
    x[picks] = special[rng.integers(0, special.size, int(picks.sum()))]
    return x


def check_value_sort(x, out):
    expect = np.sort(x, kind="stable")
    np.testing.assert_array_equal(out, expect)  # NaN last, -0.0 == 0.0
    if x.dtype == np.float32:  # the kernel puts -0.0 before 0.0
        zeros = np.signbit(out[out == 0])
        assert not np.any(zeros[1:] > zeros[:-1])
        assert zeros.sum() == np.signbit(x[x == 0]).sum()


@pytest.mark.parametrize("dtype", ["float32", "int32", "uint32"])
@pytest.mark.parametrize("pattern", ["random", "few distinct", "all equal", "sorted", "reversed",
                                     "organ pipe", "extremes"])
def test_value_sort_32bit_patterns(rng, dtype, pattern):
    for n in VSORT_LENGTHS:
        x = patterned(rng, pattern, n, dtype)
        out = np.array(em.sort(em.array(x, getattr(em, dtype))))
        assert out.dtype == x.dtype
        check_value_sort(x, out)
    # several lines of network sizes and a strided axis; long lines with a strided output
    # (their keys sort outside it and are stored after)
    for rows, cols in [(257, 6), (70001, 2)]:
        x = patterned(rng, pattern, rows * cols, dtype).reshape(rows, cols)
        np.testing.assert_array_equal(np.array(em.sort(em.array(x), axis=0)),
                                      np.sort(x, axis=0, kind="stable"))


VSORT_SCRIPT = """
import hashlib, sys
import numpy as np
import ember.core as em
rng = np.random.default_rng(5)
h = hashlib.sha256()
f = rng.standard_normal(1 << 20).astype(np.float32)
f[rng.random(f.size) < 0.01] = np.nan
f[rng.random(f.size) < 0.01] = -0.0
f[rng.random(f.size) < 0.01] = 0.0
f[:3] = [np.inf, -np.inf, -np.nan]
for x in [f, rng.integers(-2**31, 2**31, 300001).astype(np.int32),
          rng.integers(0, 50, 200003).astype(np.uint32), f[:4097], f.reshape(1024, 1024)]:
    out = np.array(em.sort(em.array(x)))
    ok = np.array_equal(out, np.sort(x, axis=-1, kind="stable"), equal_nan=True)
    h.update(out.tobytes())
    print(int(ok), end=" ")
print(h.hexdigest())
"""


def test_value_sort_32bit_same_bits_every_path():
    # the quicksort on 1, 2 and 5 threads (a long line in as many buckets) and the radix
    # sort (AVX-512 off) agree bit for bit
    import os
    import subprocess
    import sys
    outputs = []
    for env in [{}, {"EMBER_NUM_THREADS": "1"}, {"EMBER_NUM_THREADS": "2"},
                {"EMBER_NUM_THREADS": "5"}, {"EMBER_NO_AVX512_SORT": "1"}]:
        run = subprocess.run([sys.executable, "-c", VSORT_SCRIPT], capture_output=True,
                             text=True, env={**os.environ, **env}, timeout=120)
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout.split())
    for out in outputs:
        assert out[:-1] == ["1"] * 5
        assert out == outputs[0]


@pytest.mark.parametrize("cap", [0, 1, 3])
@pytest.mark.parametrize("pattern", ["random", "few distinct", "organ pipe", "extremes"])
def test_value_sort_past_the_quicksort_depth_limit(rng, pattern, cap):
    """Where the quicksort reaches its depth limit it hands the part to the
    radix sort; random keys never get there, so the limit is lowered."""
    from ember.core._ffi import lib
    lib.em_set_sort_depth_limit(cap)
    try:
        for dtype in ["float32", "int32", "uint32"]:
            for n in VSORT_LENGTHS:
                x = patterned(rng, pattern, n, dtype)
                check_value_sort(x, np.array(em.sort(em.array(x))))
            x = patterned(rng, pattern, 1 << 20, dtype)  # a long line over the pool
            check_value_sort(x, np.array(em.sort(em.array(x))))
    finally:
        lib.em_set_sort_depth_limit(-1)
