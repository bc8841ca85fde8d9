"""AdamW update over a 10M-parameter pytree of 100 leaves: eager ember beside
jax.jit(optax.adamw(...).update), in one run.

    python tests/benchmarks/bench_optim.py

Times one `update` + `apply_updates` step including evaluation (ember:
em.eval of the new params and state; JAX: block_until_ready). Prints medians
and ember's time divided by JAX's. ember runs eagerly here (a graph of ~20
nodes per leaf built in Python each step); compiled ember comes with
em.compile. Machines are shared and noisy: read the ratios.
"""
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import ember.core as em
from ember import optim

LEAVES = 100
TOTAL = 10_000_000


def leaf_shapes():
    """100 matrices of 100,000 entries each, in ten different shapes (10M in all)."""
    per_leaf = TOTAL // LEAVES
    rows = [100, 125, 160, 200, 250, 400, 500, 625, 800, 1000]  # divisors of 100,000
    return [(rows[i % len(rows)], per_leaf // rows[i % len(rows)]) for i in range(LEAVES)]


def median_time(fn, repeat=7, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    rng = np.random.default_rng(0)
    shapes = leaf_shapes()
    params_np = {f"layer{i:03d}": rng.normal(size=s).astype(np.float32)
                 for i, s in enumerate(shapes)}
    grads_np = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in params_np.items()}
    count = sum(v.size for v in params_np.values())

    tx = optim.adamw(1e-3, weight_decay=1e-2)
    e_params = {k: em.array(v) for k, v in params_np.items()}
    e_grads = {k: em.array(v) for k, v in grads_np.items()}
    e_state = tx.init(e_params)
    em.eval(e_params, e_grads, e_state)

    def ember_step():
        updates, state = tx.update(e_grads, e_state, e_params)
        new_params = optim.apply_updates(e_params, updates)
        em.eval(new_params, state)

    @em.compile
    def compiled_step(grads, state, params):
        updates, state = tx.update(grads, state, params)
        return optim.apply_updates(params, updates), state

    def ember_compiled():
        em.eval(compiled_step(e_grads, e_state, e_params))

    def ember_graph_only():
        updates, state = tx.update(e_grads, e_state, e_params)
        optim.apply_updates(e_params, updates)

    jtx = optax.adamw(1e-3, weight_decay=1e-2)
    j_params = {k: jnp.asarray(v) for k, v in params_np.items()}
    j_grads = {k: jnp.asarray(v) for k, v in grads_np.items()}
    j_state = jtx.init(j_params)

    @jax.jit
    def jax_step(grads, state, params):
        updates, state = jtx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    def jax_run():
        jax.block_until_ready(jax_step(j_grads, j_state, j_params))

    t_ember = median_time(ember_step)
    t_compiled = median_time(ember_compiled)
    t_graph = median_time(ember_graph_only)
    t_jax = median_time(jax_run)
    print(f"adamw update + apply_updates, {count:,} float32 params in {LEAVES} leaves "
          f"({em._ffi.lib.em_num_threads()} threads)")
    print(f"{'':34s}{'median ms':>12s}{'vs jax.jit':>12s}")
    print(f"{'ember eager (build + eval)':34s}{t_ember * 1e3:12.1f}{t_ember / t_jax:12.2f}")
    print(f"{'ember compiled':34s}{t_compiled * 1e3:12.1f}{t_compiled / t_jax:12.2f}")
    print(f"{'  of which building the graph':34s}{t_graph * 1e3:12.1f}{t_graph / t_jax:12.2f}")
    print(f"{'jax.jit(optax.adamw update)':34s}{t_jax * 1e3:12.1f}{1.0:12.2f}")


if __name__ == "__main__":
    main()
