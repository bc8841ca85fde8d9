"""DLPack exchange with numpy, PyTorch and JAX, both ways, on fresh random data."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import ember.core as em


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "uint8", "bool", "float16"])
def test_from_dlpack_of_each_producer(rng, dtype):
    x = (rng.standard_normal((3, 5)) * 10).astype(dtype)
    # JAX without x64 holds float64 data as float32: compare with what each producer holds
    for producer, held in ((x, x), (torch.from_numpy(x.copy()), x),
                           (jnp.asarray(x), np.asarray(jnp.asarray(x)))):
        a = em.from_dlpack(producer)
        assert a.shape == (3, 5) and np.dtype(str(a.dtype).split(".")[-1]) == held.dtype
        np.testing.assert_array_equal(np.array(a), held)


def test_from_dlpack_copies_once(rng):
    t = torch.from_numpy(rng.standard_normal(4).astype(np.float32))
    a = em.from_dlpack(t)
    before = np.array(a)
    t.add_(1.0)   # the producer changes afterwards; ember's array keeps its values
    np.testing.assert_array_equal(np.array(a), before)


@pytest.mark.parametrize("dtype", ["float32", "int64", "float16"])
def test_consumers_read_ember_arrays(rng, dtype):
    x = (rng.standard_normal((4, 6)) * 10).astype(dtype)
    a = em.array(x) * 1   # a pending node: the consumer's read evaluates it
    np.testing.assert_array_equal(np.from_dlpack(a), x)
    np.testing.assert_array_equal(torch.from_dlpack(a).numpy(), x)
    np.testing.assert_array_equal(np.asarray(jax.dlpack.from_dlpack(a)), x)


def test_views_export_their_strides(rng):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    a = em.array(x).T[::2]
    np.testing.assert_array_equal(torch.from_dlpack(a).numpy(), x.T[::2])
    assert a.__dlpack_device__() == (1, 0)   # kDLCPU
