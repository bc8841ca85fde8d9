"""Elementwise speed: ember (compiled and eager) beside jax.jit, in one run.

    python tests/benchmarks/bench_elementwise.py [--repeat 21] [--threads N]

Each case runs on 4M float32 (fresh normal inputs). Contenders are
interleaved round by round; the table gives wall-clock medians, process CPU
time per call (both threads together) and ember / jax ratios. On a shared
machine read the ratios, and compare CPU time beside wall time.
"""
import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import ember.core as em

N = 1 << 22


def cases():
    return [
        ("exp(x)*2+1", lambda x, y: em.exp(x) * 2 + 1, lambda x, y: jnp.exp(x) * 2 + 1),
        ("tanh(x)", lambda x, y: em.tanh(x), lambda x, y: jnp.tanh(x)),
        ("logaddexp(x,y)", lambda x, y: em.logaddexp(x, y), lambda x, y: jnp.logaddexp(x, y)),
        ("sigmoid(x)", lambda x, y: em.sigmoid(x), lambda x, y: jax.nn.sigmoid(x)),
        ("log1p(exp(-|x|))", lambda x, y: em.log1p(em.exp(-em.abs(x))),
         lambda x, y: jnp.log1p(jnp.exp(-jnp.abs(x)))),
    ]


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    if args.threads:
        em._ffi.lib.em_set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    xn = rng.normal(size=N).astype(np.float32) * 3
    yn = rng.normal(size=N).astype(np.float32) * 3
    x, y = em.array(xn), em.array(yn)
    jx, jy = jnp.asarray(xn), jnp.asarray(yn)
    em.eval(x, y)
    print(f"4M float32, {em._ffi.lib.em_num_threads()} ember threads; medians of {args.repeat}")
    print(f"{'':22s}{'compiled ms':>12s}{'cpu ms':>8s}{'eager ms':>10s}{'jax.jit ms':>11s}"
          f"{'cpu ms':>8s}{'comp/jax':>9s}{'cpu/cpu':>8s}")
    for name, ef, jf in cases():
        if args.only and args.only not in name:
            continue
        cf, jjf = em.compile(ef), jax.jit(jf)
        runs = {
            "c": lambda: em.eval(cf(x, y)),
            "e": lambda: em.eval(ef(x, y)),
            "j": lambda: jjf(jx, jy).block_until_ready(),
        }
        for r in runs.values():
            r(), r()
        got = {k: [] for k in runs}
        for _ in range(args.repeat):
            for k, r in runs.items():
                got[k].append(timed(r))
        med = {k: (statistics.median(t[0] for t in v) * 1e3, statistics.median(t[1] for t in v) * 1e3)
               for k, v in got.items()}
        print(f"{name:22s}{med['c'][0]:12.2f}{med['c'][1]:8.2f}{med['e'][0]:10.2f}{med['j'][0]:11.2f}"
              f"{med['j'][1]:8.2f}{med['c'][0] / med['j'][0]:9.2f}{med['c'][1] / med['j'][1]:8.2f}")


if __name__ == "__main__":
    main()
