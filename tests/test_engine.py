"""The engine's contract: laziness, evaluation order and depth, memory
counters and limits, buffer donation, and errors raised when an op is built."""
import gc

import numpy as np
import pytest

import ember.core as em


def test_ops_are_lazy_until_eval():
    a = em.array([1.0, 2.0, 3.0])
    b = a * 2 + 1
    from ember.core._ffi import lib
    assert not lib.em_is_evaluated(b._p)
    em.eval(b)
    assert lib.em_is_evaluated(b._p)
    np.testing.assert_array_equal(np.array(b), [3.0, 5.0, 7.0])


def test_eval_accepts_pytrees_and_non_arrays(rng):
    x = em.array(rng.standard_normal(5).astype(np.float32))
    tree = {"a": [x + 1, (x * 2, None)], "b": 3, "c": "text"}
    em.eval(tree)
    em.eval()
    np.testing.assert_allclose(np.array(tree["a"][1][0]), np.array(x) * 2)


def test_async_eval_then_read(rng):
    data = rng.standard_normal(100).astype(np.float32)
    y = em.exp(em.array(data))
    em.async_eval(y)
    np.testing.assert_allclose(np.array(y), np.exp(data), rtol=1e-6)


def test_million_node_chain_evaluates():
    x = em.array(0.0)
    one = em.array(1.0)
    for _ in range(1_000_000):
        x = x + one
    assert x.item() == 1_000_000.0


def test_million_node_chain_released_unevaluated():
    x = em.array(np.ones(4, np.float32))
    for _ in range(1_000_000):
        x = x * 1.0
    del x  # freeing the whole pending chain must not recurse in C
    gc.collect()


def test_shared_subgraph_evaluates_each_node_once(rng):
    data = rng.standard_normal(8).astype(np.float32)
    a = em.array(data)
    b = em.exp(a)
    c = b + b * b
    d = c - b
    em.eval(c, d)
    e = np.exp(data)
    np.testing.assert_allclose(np.array(c), e + e * e, rtol=1e-6)
    np.testing.assert_allclose(np.array(d), e * e, rtol=1e-5)


def test_bad_ops_raise_when_built():
    a = em.zeros((2, 3))
    b = em.zeros((4,))
    with pytest.raises(ValueError, match=r"\[add\] shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        a + b
    with pytest.raises(ValueError, match=r"\[reshape\] cannot reshape array of size 6"):
        a.reshape(4, 2)
    with pytest.raises(ValueError, match=r"\[transpose\] axis 5 is out of bounds"):
        em.transpose(a, (0, 5))
    with pytest.raises(TypeError, match=r"\[bitwise_and\] requires integer or bool"):
        a & a


def test_intermediates_are_freed_during_eval():
    em.clear_cache()
    n = 1 << 20
    x = em.array(np.ones(n, np.float32))
    em.eval(x)
    base = em.get_active_memory()
    em.reset_peak_memory()
    y = x
    for _ in range(50):
        y = em.exp(y * 0.5) - 1.0
    em.eval(y)
    # x, y, and at most one buffer in flight: donation reuses dead inputs.
    assert em.get_peak_memory() - base <= 2 * n * 4 + 65536
    del y
    gc.collect()
    assert em.get_active_memory() == base


def test_memory_counters_and_cache():
    em.clear_cache()
    assert em.get_cache_memory() == 0
    before = em.get_active_memory()
    x = em.zeros((1024, 1024))
    em.eval(x)
    assert em.get_active_memory() - before >= 4 * 1024 * 1024
    del x
    gc.collect()
    assert em.get_active_memory() == before
    assert em.get_cache_memory() >= 4 * 1024 * 1024
    em.clear_cache()
    assert em.get_cache_memory() == 0


def test_cache_limit_trims_the_cache():
    em.clear_cache()
    previous = em.set_cache_limit(0)
    try:
        x = em.ones((1 << 18,))
        em.eval(x)
        del x
        gc.collect()
        assert em.get_cache_memory() == 0
    finally:
        em.set_cache_limit(previous)


def test_memory_limit_raises_memory_error():
    em.clear_cache()
    previous = em.set_memory_limit(em.get_active_memory() + (1 << 20))
    try:
        x = em.ones((1 << 22,))  # 16 MiB, over the limit
        with pytest.raises(MemoryError, match=r"exceed the memory limit"):
            em.eval(x)
    finally:
        em.set_memory_limit(previous)
    # The failed array can still be evaluated once the limit allows it.
    np.testing.assert_array_equal(np.array(x)[:3], [1.0, 1.0, 1.0])


def test_set_limits_reject_negative_values():
    with pytest.raises(ValueError):
        em.set_memory_limit(-1)
    with pytest.raises(ValueError):
        em.set_cache_limit(-1)


def test_threaded_kernels_match_numpy(rng):
    data = rng.standard_normal((700, 1100)).astype(np.float32)
    x = em.array(data)
    y = em.sin(x.T) * 3 + x.T
    np.testing.assert_allclose(np.array(y), np.sin(data.T) * 3 + data.T, rtol=1e-5, atol=1e-6)


def test_views_share_buffers_without_copies(rng):
    data = rng.standard_normal((64, 64)).astype(np.float32)
    x = em.array(data)
    em.eval(x)
    em.clear_cache()
    before = em.get_active_memory()
    views = [x.T, x[::2, ::-1], em.broadcast_to(x[0], (128, 64)), x[None, 3:5]]
    em.eval(*views)
    assert em.get_active_memory() == before
    np.testing.assert_array_equal(np.array(views[1]), data[::2, ::-1])
    np.testing.assert_array_equal(np.array(views[2]), np.broadcast_to(data[0], (128, 64)))


def test_gpu_is_reported_unavailable():
    with pytest.raises(ValueError, match="no GPU backend"):
        em.set_default_device(em.gpu)
    with pytest.raises(ValueError, match="no GPU backend"):
        em.zeros((2,), stream=em.gpu)
    assert not em.is_available(em.gpu)


def test_streams_and_devices():
    s = em.new_stream(em.cpu)
    assert s.device == em.Device(em.cpu, 0)
    assert repr(em.default_device()) == "Device(cpu, 0)"
    with em.stream(s):
        y = em.ones((3,)) * 2
    z = em.add(y, 1, stream=s)
    w = em.add(z, 1, stream=em.cpu)
    np.testing.assert_array_equal(np.array(w), [4.0, 4.0, 4.0])


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_elementwise_and_fused_kernels_under_any_thread_budget(rng, threads):
    """Elementwise and fused kernels split their work into up to eight slices
    per thread, claimed as threads come (em_parallel_for_balanced): every
    element is computed once, whatever the budget, ragged edges included."""
    from ember.core._ffi import lib
    old = lib.em_num_threads()
    lib.em_set_num_threads(threads)
    try:
        for n in (70_001, 1_000_003):
            x_np = rng.standard_normal(n).astype(np.float32)
            y_np = rng.standard_normal(n).astype(np.float32)
            x, y = em.array(x_np), em.array(y_np)
            np.testing.assert_array_equal(np.array(x * y), x_np * y_np)
            f = em.compile(lambda x, y: (x * y + 1.0, x - y))
            got = f(x, y)
            np.testing.assert_array_equal(np.array(got[0]), x_np * y_np + np.float32(1.0))
            np.testing.assert_array_equal(np.array(got[1]), x_np - y_np)
    finally:
        lib.em_set_num_threads(old)
