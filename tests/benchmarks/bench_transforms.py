"""Transforms benchmark: ember against JAX (jax.jit) in one run.

    python tests/benchmarks/bench_transforms.py [--repeat N]

Rows: a compiled MLP train step (784-512-512-10, cross-entropy, Adam written
with core ops) at batch 256 and 8, its first call (trace + compile), exp(x)*2+1
on 4M float32 compiled, and vmap against a Python loop. Medians of N runs.
"""
import argparse
import time

import numpy as np

import ember.core as em

SIZES = (784, 512, 512, 10)


def median_ms(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3


def init_params(rng):
    params = {}
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        params[f"w{i}"] = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
        params[f"b{i}"] = np.zeros(n_out, np.float32)
    return params


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


def bench_train_step(batch, repeat, rows):
    rng = np.random.default_rng(0)
    p_np = init_params(rng)
    x_np = rng.standard_normal((batch, SIZES[0])).astype(np.float32)
    y_np = np.eye(SIZES[-1], dtype=np.float32)[rng.integers(0, SIZES[-1], batch)]

    params = {k: em.array(a) for k, a in p_np.items()}
    m = {k: em.zeros_like(a) for k, a in params.items()}
    v = {k: em.zeros_like(a) for k, a in params.items()}
    t = em.array(0.0)
    x, y = em.array(x_np), em.array(y_np)
    step = em.compile(em_step)
    state = [params, m, v, t]

    def run_em():
        loss, *new = step(*state, x, y)
        em.eval(loss, new)
        state[:] = new

    first_em = median_ms(run_em, 1)
    for _ in range(3):
        run_em()
    em_ms = median_ms(run_em, repeat)

    jax, jnp, jstep = jax_fns()
    jparams = {k: jnp.asarray(a) for k, a in p_np.items()}
    jstate = [jparams, {k: jnp.zeros_like(a) for k, a in jparams.items()},
              {k: jnp.zeros_like(a) for k, a in jparams.items()}, jnp.asarray(0.0)]
    jx, jy = jnp.asarray(x_np), jnp.asarray(y_np)
    jit_step = jax.jit(jstep)

    def run_jax():
        loss, *new = jit_step(*jstate, jx, jy)
        jax.block_until_ready((loss, new))
        jstate[:] = new

    first_jax = median_ms(run_jax, 1)
    for _ in range(3):
        run_jax()
    jax_ms = median_ms(run_jax, repeat)
    rows.append((f"MLP train step, batch {batch}", em_ms, jax_ms))
    if batch == 256:
        rows.append(("  first call (trace + compile)", first_em, first_jax))


def bench_exp(repeat, rows):
    import jax
    import jax.numpy as jnp
    x_np = np.random.default_rng(1).standard_normal(4 * 1024 * 1024).astype(np.float32)
    x = em.array(x_np)
    f = em.compile(lambda x: em.exp(x) * 2 + 1)
    em.eval(f(x))
    jx = jnp.asarray(x_np)
    jf = jax.jit(lambda x: jnp.exp(x) * 2 + 1)
    jax.block_until_ready(jf(jx))
    rows.append(("exp(x)*2+1, 4M f32, compiled", median_ms(lambda: em.eval(f(x)), repeat),
                 median_ms(lambda: jax.block_until_ready(jf(jx)), repeat)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    rows = []
    bench_train_step(256, args.repeat, rows)
    bench_train_step(8, args.repeat * 5, rows)
    bench_exp(args.repeat, rows)
    print(f"{'benchmark':<36}{'ember ms':>12}{'jax.jit ms':>12}{'ember/jax':>11}")
    for name, e, j in rows:
        print(f"{name:<36}{e:>12.3f}{j:>12.3f}{e / j:>11.2f}")


if __name__ == "__main__":
    main()
