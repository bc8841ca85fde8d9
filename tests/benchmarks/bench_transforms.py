"""Transforms benchmark: ember against JAX (jax.jit) in one run, one table.

    python tests/benchmarks/bench_transforms.py [--repeat N] [--single-thread]

Rows (issue 4's speed targets): a compiled MLP train step (784-512-512-10,
cross-entropy, Adam written with core ops) at batch 256 and 8, its first
call (trace + compile + one step), the same step against jax.jit with the
state donated (donate_argnums: XLA then updates it in place, as ember does
when the loop drops the old state before eval), exp(x)*2+1 on 4M float32 compiled, and
the vmap example of bench_vmap.py (vmap against a Python loop; its row
compares the vectorized times, the line under the table each library's
loop/vmap speedup).

The machine is shared and noisy, so the two libraries run interleaved (a
few calls of one, then of the other, round after round) and each figure is
a median over every round; beside the wall-clock medians the table gives
the medians of process CPU time per call (all threads of the process: a
pool that spins shows up there). --single-thread runs both on one thread
(ember's thread budget 1; XLA's Eigen pool off), which measures the work rather
than how the cores were shared. Read the ratios, not the absolute times.
"""
import argparse
import os
import statistics
import time

import numpy as np

import ember.core as em
from _timing import interleaved_samples
from ember.core._ffi import lib

SIZES = (784, 512, 512, 10)


def init_params(rng):
    params = {}
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        params[f"w{i}"] = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
        params[f"b{i}"] = np.zeros(n_out, np.float32)
    return params


def timed(fn):
    """(wall seconds, process CPU seconds) of one call of fn()."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def interleaved(contenders, rounds, calls):
    """Median (wall, cpu) seconds per call of each contender, run in turns
    (_timing.interleaved_samples: blocks of `calls` calls, each after a pause
    and an untimed call)."""
    samples = interleaved_samples(contenders, rounds, calls, warmup=calls, sample=timed)
    return [(statistics.median(w for w, _ in out), statistics.median(c for _, c in out))
            for out in samples]


# ---- ember ----

def em_loss(params, x, y):
    h = x
    for i in range(len(SIZES) - 1):
        h = h @ params[f"w{i}"] + params[f"b{i}"]
        if i < len(SIZES) - 2:
            h = em.maximum(h, 0.0)
    logp = h - em.logsumexp(h, axis=-1, keepdims=True)
    return -em.mean(em.sum(logp * y, axis=-1))


def em_adam(params, grads, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    t = t + 1
    c1 = 1 - b1 ** t
    c2 = 1 - b2 ** t
    new_p, new_m, new_v = {}, {}, {}
    for k in params:
        new_m[k] = b1 * m[k] + (1 - b1) * grads[k]
        new_v[k] = b2 * v[k] + (1 - b2) * em.square(grads[k])
        new_p[k] = params[k] - lr * (new_m[k] / c1) / (em.sqrt(new_v[k] / c2) + eps)
    return new_p, new_m, new_v, t


def em_step(params, m, v, t, x, y):
    loss, grads = em.value_and_grad(em_loss)(params, x, y)
    params, m, v, t = em_adam(params, grads, m, v, t)
    return loss, params, m, v, t


# ---- jax ----

def jax_fns():
    import jax
    import jax.numpy as jnp

    def loss(params, x, y):
        h = x
        for i in range(len(SIZES) - 1):
            h = h @ params[f"w{i}"] + params[f"b{i}"]
            if i < len(SIZES) - 2:
                h = jnp.maximum(h, 0.0)
        logp = h - jax.nn.logsumexp(h, axis=-1, keepdims=True)
        return -jnp.mean(jnp.sum(logp * y, axis=-1))

    def adam(params, grads, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
        t = t + 1
        c1 = 1 - b1 ** t
        c2 = 1 - b2 ** t
        new_m = {k: b1 * m[k] + (1 - b1) * grads[k] for k in params}
        new_v = {k: b2 * v[k] + (1 - b2) * jnp.square(grads[k]) for k in params}
        new_p = {k: params[k] - lr * (new_m[k] / c1) / (jnp.sqrt(new_v[k] / c2) + eps)
                 for k in params}
        return new_p, new_m, new_v, t

    def step(params, m, v, t, x, y):
        l, grads = jax.value_and_grad(loss)(params, x, y)
        params, m, v, t = adam(params, grads, m, v, t)
        return l, params, m, v, t

    return jax, jnp, step


def step_data(batch):
    """The same parameters, inputs and one-hot labels for every contender."""
    rng = np.random.default_rng(0)
    params = init_params(rng)
    x = rng.standard_normal((batch, SIZES[0])).astype(np.float32)
    y = np.eye(SIZES[-1], dtype=np.float32)[rng.integers(0, SIZES[-1], batch)]
    return params, x, y


def ember_step(batch):
    """A compiled ember train step over fresh data and its first-call time."""
    p_np, x_np, y_np = step_data(batch)
    params = {k: em.array(a) for k, a in p_np.items()}
    state = [params, {k: em.zeros_like(a) for k, a in params.items()},
             {k: em.zeros_like(a) for k, a in params.items()}, em.array(0.0)]
    x, y = em.array(x_np), em.array(y_np)
    em.eval(state, x, y)
    step = em.compile(em_step)

    def run():
        # a training loop's usual form: the old state is dropped before eval,
        # so the optimizer's fused update writes over it (buffer donation)
        loss, *state[:] = step(*state, x, y)
        em.eval(loss, state)

    return run, timed(run)


def jax_step(batch, donate=False):
    jax, jnp, jstep = jax_fns()
    p_np, x_np, y_np = step_data(batch)
    params = {k: jnp.asarray(a) for k, a in p_np.items()}
    state = [params, {k: jnp.zeros_like(a) for k, a in params.items()},
             {k: jnp.zeros_like(a) for k, a in params.items()}, jnp.asarray(0.0)]
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)
    jit_step = jax.jit(jstep, donate_argnums=(0, 1, 2, 3) if donate else ())

    def run():
        loss, *state[:] = jit_step(*state, x, y)
        jax.block_until_ready((loss, state))

    return run, timed(run)


def exp_chains():
    import jax
    import jax.numpy as jnp
    x_np = np.random.default_rng(1).standard_normal(4 * 1024 * 1024).astype(np.float32)
    x, jx = em.array(x_np), jnp.asarray(x_np)
    f = em.compile(lambda x: em.exp(x) * 2 + 1)
    jf = jax.jit(lambda x: jnp.exp(x) * 2 + 1)
    np.testing.assert_allclose(np.array(f(x)), np.asarray(jf(jx)), rtol=1e-5)
    return lambda: em.eval(f(x)), lambda: jf(jx).block_until_ready()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20, help="rounds of interleaved calls")
    parser.add_argument("--single-thread", action="store_true")
    args = parser.parse_args()
    if args.single_thread:  # before jax is imported
        lib.em_set_num_threads(1)
        os.environ["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")
    import bench_vmap

    rows = []  # (name, ember (wall, cpu), jax (wall, cpu), target ember/jax)
    for batch, calls in ((256, 2), (8, 10)):
        (em_run, em_first), (jax_run, jax_first) = ember_step(batch), jax_step(batch)
        donated_run, _ = jax_step(batch, donate=True)
        em_t, jax_t, donated_t = interleaved([em_run, jax_run, donated_run], args.repeat, calls)
        rows.append((f"MLP train step, batch {batch}", em_t, jax_t,
                     "<= 1.0" if batch == 256 else "<= 0.5"))
        if batch == 256:
            rows.append(("  first call (trace+compile+run)", em_first, jax_first, "<= 1.0"))
        # ember updates the state in place; jax.jit does so when asked to donate it
        rows.append(("  vs jax.jit(donate_argnums=state)", em_t, donated_t, ""))
    em_t, jax_t = interleaved(exp_chains(), args.repeat, 2)
    rows.append(("exp(x)*2+1, 4M f32, compiled", em_t, jax_t, "<= 1.0"))
    rng = np.random.default_rng(0)
    xs = rng.uniform(size=(bench_vmap.ROWS, bench_vmap.COLS)).astype(np.float32)
    ys = rng.uniform(size=(bench_vmap.COLS, bench_vmap.ROWS)).astype(np.float32)
    em_loop, em_vmap = bench_vmap.ember_times(xs, ys)
    jax_loop, jax_vmap = bench_vmap.jax_times(xs, ys)
    rows.append(("vmap add 4096x100 (vs jit(vmap))", (em_vmap, None), (jax_vmap, None), ""))

    threads = "one thread each" if args.single_thread else "default threads"
    print(f"issue 4 speed targets, {threads}, medians of interleaved runs "
          f"(ratio = ember/jax wall)")
    print(f"{'benchmark':<34}{'ember ms':>10}{'jax ms':>10}{'ratio':>7}{'target':>8}"
          f"{'ember cpu':>11}{'jax cpu':>9}")
    for name, (ew, ec), (jw, jc), target in rows:
        cpu = f"{ec * 1e3:>11.3f}{jc * 1e3:>9.3f}" if ec is not None else ""
        print(f"{name:<34}{ew * 1e3:>10.3f}{jw * 1e3:>10.3f}{ew / jw:>7.2f}{target:>8}{cpu}")
    print(f"vmap over the Python loop: ember {em_loop / em_vmap:.0f}x "
          f"(loop {em_loop * 1e3:.1f} ms), jax {jax_loop / jax_vmap:.0f}x "
          f"(loop {jax_loop * 1e3:.1f} ms); the issue quotes 235x for mlx on an M1 Max")


if __name__ == "__main__":
    main()
