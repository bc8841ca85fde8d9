"""quantized_matmul against float32 matmul of the same shape, and mlx.

A batch-1 vector times a 4096 x 4096 weight (transpose=True, the LLM decode
step): ember's quantized_matmul at 2, 3, 4 and 8 bits beside ember's and
numpy's float32 matmul and mlx's quantized_matmul. Contenders are
interleaved in each round; the table prints medians, minima and the
medians' ratios to numpy's and ember's float32 matmul.

    .venv/bin/python tests/benchmarks/bench_quantize.py [--n 4096] [--rounds 30] [--batch 1]
"""
import argparse
import os
import statistics
import time

import numpy as np

import ember.core as em

try:
    import mlx.core as mx
except ImportError:  # mlx is optional
    mx = None


def _timer(fn):
    def run():
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t
    return run


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--group-size", type=int, default=64)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    n, g = args.n, args.group_size
    w = (rng.standard_normal((n, n)) * 0.02).astype(np.float32)
    x = rng.standard_normal((args.batch, n)).astype(np.float32)
    ew, ex = em.array(w), em.array(x)
    ewt = em.array(np.ascontiguousarray(w.T))     # the float32 weight stored as (K, N)
    contenders = {
        "numpy float32 x @ w.T": _timer(lambda: x @ w.T),
        "ember float32 x @ w.T": _timer(lambda: em.eval(em.matmul(ex, em.swapaxes(ew, 0, 1)))),
        "ember float32 x @ wt (K, N)": _timer(lambda: em.eval(em.matmul(ex, ewt))),
    }
    for bits in (4, 8, 3, 2):
        q, s, b = em.quantize(ew, group_size=g, bits=bits)
        em.eval(q, s, b)
        contenders[f"ember quantized_matmul {bits}-bit"] = _timer(
            lambda q=q, s=s, b=b, bits=bits: em.eval(
                em.quantized_matmul(ex, q, s, b, group_size=g, bits=bits)))
        if mx is not None:
            mq, ms, mb = mx.quantize(mx.array(w), group_size=g, bits=bits)
            mxx = mx.array(x)
            mx.eval(mq, ms, mb, mxx)
            contenders[f"mlx quantized_matmul {bits}-bit"] = _timer(
                lambda mq=mq, ms=ms, mb=mb, bits=bits: mx.eval(
                    mx.quantized_matmul(mxx, mq, ms, mb, group_size=g, bits=bits)))
    times = {k: [] for k in contenders}
    for fn in contenders.values():
        fn()  # warm up
    for _ in range(args.rounds):
        for k, fn in contenders.items():
            times[k].append(fn())
    ember_ref = statistics.median(times["ember float32 x @ w.T"])
    numpy_ref = statistics.median(times["numpy float32 x @ w.T"])
    print(f"batch {args.batch} x {n} @ ({n}, {n}).T, group_size {g}, {args.rounds} rounds, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"{'contender':30s} {'median ms':>10s} {'min ms':>8s} {'vs numpy f32':>13s} "
          f"{'vs ember f32':>13s}")
    for k, ts in times.items():
        med = statistics.median(ts)
        print(f"{k:30s} {med * 1e3:10.3f} {min(ts) * 1e3:8.3f} {med / numpy_ref:12.3f}x "
              f"{med / ember_ref:12.3f}x")

if __name__ == "__main__":
    main()
