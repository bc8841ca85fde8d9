"""Benchmarks for issue 2's targets, ember beside numpy and PyTorch (CPU) in one run.

    python tests/benchmarks/bench_core.py

Prints one table: the median of repeated runs for each library, and ember's
time divided by the reference's (below 1 means ember is faster). Machines are
shared and noisy: read the ratios, not the absolute times.
"""
import gc
import time

from functools import partial

import numpy as np

import ember.core as em
from _timing import median_time as _median_time

median_time = partial(_median_time, repeat=15, warmup=3)  # this table's repeats

try:
    import torch
    torch.set_num_threads(em._ffi.lib.em_num_threads())
except ImportError:  # the table leaves PyTorch's column empty
    torch = None


def bench_dispatch():
    n = 1000
    x, y = em.ones((16,)), em.ones((16,))
    em.eval(x, y)

    def ember_chain():
        z = x
        for _ in range(n):
            z = z + y
        em.eval(z)

    xn, yn = np.ones(16, np.float32), np.ones(16, np.float32)

    def numpy_chain():
        z = xn
        for _ in range(n):
            z = z + yn

    out = {"ember": median_time(ember_chain) / n, "numpy": median_time(numpy_chain) / n}
    if torch:
        xt, yt = torch.ones(16), torch.ones(16)

        def torch_chain():
            z = xt
            for _ in range(n):
                z = z + yt
        out["torch"] = median_time(torch_chain) / n
    return "dispatch: 1,000 adds of 16 floats (per op)", out, "torch"


def bench_exp():
    data = np.random.default_rng(0).standard_normal(1 << 22).astype(np.float32)
    x = em.array(data)
    em.eval(x)
    out = {"ember": median_time(lambda: em.eval(em.exp(x) * 2 + 1)),
           "numpy": median_time(lambda: np.exp(data) * 2 + 1)}
    if torch:
        t = torch.from_numpy(data)
        out["torch"] = median_time(lambda: torch.exp(t) * 2 + 1)
    return "exp(x) * 2 + 1, 4M float32, eager", out, "torch"


def bench_matmul():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024)).astype(np.float32)
    b = rng.standard_normal((1024, 1024)).astype(np.float32)
    ea, eb = em.array(a), em.array(b)
    em.eval(ea, eb)
    out = {"ember": median_time(lambda: em.eval(ea @ eb)), "numpy": median_time(lambda: a @ b)}
    if torch:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        out["torch"] = median_time(lambda: ta @ tb)
    return "matmul 1024x1024 float32", out, "numpy"


def bench_sum(axis):
    data = np.random.default_rng(0).standard_normal((4096, 4096)).astype(np.float32)
    x = em.array(data)
    em.eval(x)
    out = {"ember": median_time(lambda: em.eval(x.sum(axis=axis))),
           "numpy": median_time(lambda: data.sum(axis=axis))}
    if torch:
        t = torch.from_numpy(data)
        out["torch"] = median_time(lambda: t.sum(dim=axis))
    return f"sum over axis {axis} of 4096x4096 float32", out, "numpy"


def bench_chain_memory():
    n = 1 << 24
    x = em.ones((n,))
    em.eval(x)
    gc.collect()
    em.clear_cache()
    base = em.get_active_memory()
    em.reset_peak_memory()
    y = x
    for i in range(100):
        y = em.sin(y) + 0.5 if i % 2 else y * 1.0001 - 0.25
    t = time.perf_counter()
    em.eval(y)
    elapsed = time.perf_counter() - t
    arrays = (em.get_peak_memory() - base) / (n * 4) + 1  # + the input x itself
    return arrays, elapsed


def main():
    rows = [bench_dispatch(), bench_exp(), bench_matmul(), bench_sum(0), bench_sum(1)]
    print(f"{'benchmark':48s} {'ember':>10s} {'numpy':>10s} {'torch':>10s}  ratio")
    for name, t, reference in rows:
        cells = [f"{t[k] * 1e6:8.1f}us" if k in t else f"{'-':>10s}" for k in ("ember", "numpy", "torch")]
        ref = t.get(reference)
        ratio = f"{t['ember'] / ref:5.2f}x {reference}" if ref else "-"
        print(f"{name:48s} {' '.join(cells)}  {ratio}")
    arrays, elapsed = bench_chain_memory()
    print(f"{'100 elementwise ops over 16M float32: peak memory':48s} "
          f"{arrays:8.2f} arrays' worth (target <= 3), {elapsed * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
