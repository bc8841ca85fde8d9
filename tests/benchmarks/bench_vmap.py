"""vmap against a Python loop: the example of mlx's vmap docs, with JAX beside.

    python tests/benchmarks/bench_vmap.py

xs (4096 x 100) is added to ys (100 x 4096) column by column, so row i of xs
meets column i of ys. The naive version loops over the 4096 columns in Python
and stacks the results; the vectorized one is
`vmap(lambda x, y: x + y, in_axes=(0, 1))`. Both are evaluated in full each
time. JAX runs the same two versions, its vmap under jit (the way JAX users
write it) and its loop eagerly. Prints the median of repeated runs and the
loop/vmap speedup of each library. Machines are shared and noisy: read the
ratios, not the absolute times.
"""

import jax
import jax.numpy as jnp
import numpy as np

import ember.core as em
from _timing import median_time

ROWS, COLS = 4096, 100


def ember_times(xs_np, ys_np):
    xs, ys = em.array(xs_np), em.array(ys_np)
    em.eval(xs, ys)

    def naive():
        rows = [xs[i] + ys[:, i] for i in range(xs.shape[0])]
        # the engine's concatenate takes at most 1024 inputs: stack in blocks
        blocks = [em.stack(rows[i:i + 1024]) for i in range(0, len(rows), 1024)]
        out = em.concatenate(blocks)
        em.eval(out)
        return out

    vmap_add = em.vmap(lambda x, y: x + y, in_axes=(0, 1))

    def vectorized():
        out = vmap_add(xs, ys)
        em.eval(out)
        return out

    np.testing.assert_allclose(np.array(naive()), np.array(vectorized()))
    return median_time(naive, repeat=5), median_time(vectorized)


def jax_times(xs_np, ys_np):
    xs, ys = jnp.asarray(xs_np), jnp.asarray(ys_np)

    def naive():
        return jnp.stack([xs[i] + ys[:, i] for i in range(xs.shape[0])]).block_until_ready()

    vmap_add = jax.jit(jax.vmap(lambda x, y: x + y, in_axes=(0, 1)))

    def vectorized():
        return vmap_add(xs, ys).block_until_ready()

    np.testing.assert_allclose(np.asarray(naive()), np.asarray(vectorized()))
    return median_time(naive, repeat=3, warmup=1), median_time(vectorized)


def main():
    rng = np.random.default_rng(0)
    xs = rng.uniform(size=(ROWS, COLS)).astype(np.float32)
    ys = rng.uniform(size=(COLS, ROWS)).astype(np.float32)
    rows = [("ember", *ember_times(xs, ys), "vmap"),
            ("jax", *jax_times(xs, ys), "jit(vmap)")]
    print(f"xs {ROWS}x{COLS} + ys {COLS}x{ROWS} column by column (medians)")
    print(f"{'library':<8} {'python loop (ms)':>17} {'vectorized (ms)':>16} {'speedup':>8}  "
          "vectorized with")
    for name, loop, vec, how in rows:
        print(f"{name:<8} {loop * 1e3:17.2f} {vec * 1e3:16.3f} {loop / vec:7.0f}x  {how}")
    ember_vec, jax_vec = rows[0][2], rows[1][2]
    print(f"ember vmap / jax jit(vmap): {ember_vec / jax_vec:.2f}")


if __name__ == "__main__":
    main()
