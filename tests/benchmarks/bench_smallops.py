"""einsum and the small ops: ember vs numpy (and JAX on CPU for einsum),
each row the median of --reps runs on the same float32 inputs.

einsum rows use numpy's einsum with optimize='greedy' (the same planner
idea) and jax.numpy.einsum (jit-compiled, opt_einsum's planner); the other
rows compare with numpy's function of the same name (hadamard_transform:
numpy's x @ scipy.linalg.hadamard(n) / sqrt(n), a dense O(n^2) product).

    PYTHONPATH=/tmp/pkg/NAME python3 tests/benchmarks/bench_smallops.py [--reps 5]
"""
import argparse

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

import ember.core as em
from _timing import median_time


def ember_call(fn, *arrays):
    inputs = [em.array(a) for a in arrays]
    em.eval(inputs)
    return lambda: em.eval(fn(*inputs))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    reps = parser.parse_args().reps
    rng = np.random.default_rng(0)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731

    einsums = [
        ("ij,jk,kl->il", [f32(256, 512), f32(512, 64), f32(64, 512)]),
        ("bij,bjk->bik", [f32(32, 128, 64), f32(32, 64, 128)]),
        ("ea,fb,abcd,gc,hd->efgh", [f32(16, 12), f32(16, 12), f32(12, 12, 12, 12),
                                    f32(16, 12), f32(16, 12)]),
        ("ii->i", [f32(2048, 2048)]),
    ]
    print(f"{'op':<34}{'ember ms':>10}{'numpy ms':>10}{'jax ms':>10}")
    for sub, arrays in einsums:
        ours = median_time(ember_call(lambda *xs, s=sub: em.einsum(s, *xs), *arrays), repeat=reps, warmup=1)
        ref = median_time(lambda: np.einsum(sub, *arrays, optimize="greedy"), repeat=reps, warmup=1)
        jitted = jax.jit(lambda *xs, s=sub: jnp.einsum(s, *xs))
        jargs = [jnp.asarray(a) for a in arrays]
        jx = median_time(lambda: jitted(*jargs).block_until_ready(), repeat=reps, warmup=1)
        print(f"{'einsum ' + sub:<34}{ours * 1e3:>10.2f}{ref * 1e3:>10.2f}{jx * 1e3:>10.2f}")

    others = [
        ("median (1024, 1024) axis=1", lambda x: em.median(x, axis=1),
         lambda x: np.median(x, axis=1), [f32(1024, 1024)]),
        ("nanmean (1024, 1024) axis=0", lambda x: em.nanmean(x, axis=0),
         lambda x: np.nanmean(x, axis=0), [f32(1024, 1024)]),
        ("convolve 100000 * 64 full", lambda a, v: em.convolve(a, v),
         lambda a, v: np.convolve(a, v), [f32(100000), f32(64)]),
        ("searchsorted 1e6 sorted, 1e5 queries",
         lambda a, v: em.searchsorted(a, v), lambda a, v: np.searchsorted(a, v),
         [np.sort(f32(1000000)), f32(100000)]),
        ("diff (1024, 1024) n=2", lambda x: em.diff(x, n=2), lambda x: np.diff(x, n=2),
         [f32(1024, 1024)]),
        ("kron (64, 64) x (32, 32)", em.kron, np.kron, [f32(64, 64), f32(32, 32)]),
        ("hadamard_transform (256, 4096)", em.hadamard_transform,
         lambda x, h=scipy.linalg.hadamard(4096).astype(np.float32) / 64: x @ h,
         [f32(256, 4096)]),
    ]
    for name, ours_fn, ref_fn, arrays in others:
        ours = median_time(ember_call(ours_fn, *arrays), repeat=reps, warmup=1)
        ref = median_time(lambda: ref_fn(*arrays), repeat=reps, warmup=1)
        print(f"{name:<34}{ours * 1e3:>10.2f}{ref * 1e3:>10.2f}{'':>10}")


if __name__ == "__main__":
    main()
