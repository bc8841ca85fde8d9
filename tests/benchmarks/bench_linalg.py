"""ember.core.linalg beside numpy.linalg (float32), in one run.

    python tests/benchmarks/bench_linalg.py

Two regimes: one large matrix (LAPACK and OpenBLAS threads do the work) and a
batch of many small matrices (ember spreads the batch over its thread pool,
numpy loops in C). Prints the median time of each library and ember's time
divided by numpy's (below 1 means ember is faster). Machines are shared and
noisy: read the ratios, not the absolute times. Both libraries run OpenBLAS
(ember the scipy-openblas32 wheel, numpy its own); on a busy machine its
threads fight other work, and OPENBLAS_NUM_THREADS=1 gives steadier ratios.
"""

import numpy as np

import ember.core as em
from _timing import median_time


def inputs(shape, rng):
    n = shape[-1]
    a = rng.standard_normal(shape).astype(np.float32) / np.sqrt(n)
    spd = a @ np.swapaxes(a, -1, -2) + np.eye(n, dtype=np.float32)
    return a + 2 * np.eye(n, dtype=np.float32), spd


CASES = [
    ("inv", lambda a, s: em.linalg.inv(a), lambda a, s: np.linalg.inv(a), "general"),
    ("solve", lambda a, s: em.linalg.solve(a, s), lambda a, s: np.linalg.solve(a, s), "general"),
    ("cholesky", lambda a, s: em.linalg.cholesky(s), lambda a, s: np.linalg.cholesky(s), "spd"),
    ("qr", lambda a, s: em.linalg.qr(a), lambda a, s: np.linalg.qr(a), "general"),
    ("svd", lambda a, s: em.linalg.svd(a), lambda a, s: np.linalg.svd(a), "general"),
    ("eigh", lambda a, s: em.linalg.eigh(s), lambda a, s: np.linalg.eigh(s), "spd"),
    ("eig", lambda a, s: em.linalg.eig(a), lambda a, s: np.linalg.eig(a), "general"),
    ("det", lambda a, s: em.linalg.det(a), lambda a, s: np.linalg.det(a), "general"),
]


def main():
    rng = np.random.default_rng(0)
    print(f"{'op':<10}{'shape':<16}{'ember ms':>10}{'numpy ms':>10}{'ratio':>8}")
    for shape in [(512, 512), (4096, 8, 8)]:
        a, s = inputs(shape, rng)
        ea, es = em.array(a), em.array(s)
        em.eval(ea, es)
        for name, ember_fn, numpy_fn, _ in CASES:
            def run_ember():
                out = ember_fn(ea, es)
                em.eval(*(out if isinstance(out, tuple) else (out,)))
            t_em = median_time(run_ember)
            t_np = median_time(lambda: numpy_fn(a, s))
            print(f"{name:<10}{str(shape):<16}{t_em * 1e3:>10.2f}{t_np * 1e3:>10.2f}{t_em / t_np:>8.2f}")


if __name__ == "__main__":
    main()
