"""16M float32 standard normals: ember beside numpy and JAX (jit) in one run.

    python tests/benchmarks/bench_random.py [--n 16777216] [--repeat 7]

ember: em.random.normal(key=...) evaluated (one fused Threefry -> uniform ->
erfinv pass, threaded). numpy: default_rng().standard_normal(dtype=float32)
(ziggurat, one thread). JAX: jax.random.normal under jax.jit, same key, same
values as ember. Also the uniform and raw bits paths. Prints medians and
ember's time divided by each reference's (below 1: ember is faster).
Machines are shared and noisy: read the ratios, not the absolute times.
"""
import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import ember.core as em


def median_time(fn, repeat, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1 << 24)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    n, repeat = args.n, args.repeat
    key = em.random.key(0)
    jkey = jax.random.PRNGKey(0)
    gen = np.random.default_rng(0)
    rows = []

    def ember_run(fn):
        def run():
            out = fn()
            em.eval(out)
            return out
        return run

    def jax_run(fn):
        jitted = jax.jit(fn)
        return lambda: jitted(jkey).block_until_ready()

    rows.append(("normal float32",
                 median_time(ember_run(lambda: em.random.normal((n,), key=key)), repeat),
                 median_time(lambda: gen.standard_normal(n, dtype=np.float32), repeat),
                 median_time(jax_run(lambda k: jax.random.normal(k, (n,))), repeat)))
    rows.append(("uniform float32",
                 median_time(ember_run(lambda: em.random.uniform(shape=(n,), key=key)), repeat),
                 median_time(lambda: gen.random(n, dtype=np.float32), repeat),
                 median_time(jax_run(lambda k: jax.random.uniform(k, (n,))), repeat)))
    rows.append(("bits uint32",
                 median_time(ember_run(lambda: em.random.bits((n,), key=key)), repeat),
                 median_time(lambda: gen.integers(0, 2**32, n, dtype=np.uint32), repeat),
                 median_time(jax_run(lambda k: jax.random.bits(k, (n,), jnp.uint32)), repeat)))

    print(f"{n} samples, median of {repeat} runs, {em._ffi.lib.em_num_threads()} ember threads")
    print(f"{'':16} {'ember ms':>9} {'numpy ms':>9} {'jax ms':>9} {'ember/numpy':>12} {'ember/jax':>10}")
    for name, e, np_t, jx in rows:
        print(f"{name:16} {e * 1e3:9.1f} {np_t * 1e3:9.1f} {jx * 1e3:9.1f} {e / np_t:12.2f} {e / jx:10.2f}")


if __name__ == "__main__":
    main()
