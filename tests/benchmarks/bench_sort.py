"""Sorting benchmarks, ember beside numpy in one run.

    python tests/benchmarks/bench_sort.py

Prints the median of repeated runs for each library and ember's time divided
by numpy's (below 1 means ember is faster). Machines are shared and noisy:
read the ratios, not the absolute times.
"""

from functools import partial

import numpy as np

import ember.core as em
from _timing import median_time as _median_time

median_time = partial(_median_time, repeat=9)  # this table's repeats


def case(title, data, ember_fn, numpy_fn):
    x = em.array(data)
    em.eval(x)
    return title, median_time(lambda: em.eval(ember_fn(x))), median_time(lambda: numpy_fn(data))


def main():
    rng = np.random.default_rng(0)
    f32 = rng.standard_normal(1 << 20).astype(np.float32)
    rows = rng.standard_normal((1024, 1024)).astype(np.float32)
    i64 = rng.integers(-10**12, 10**12, 1 << 20)
    cases = [
        case("sort, 1M float32", f32, em.sort, np.sort),
        case("sort, 1M float32 uniform", rng.random(1 << 20).astype(np.float32), em.sort,
             np.sort),
        case("sort, 1M float32 already sorted", np.sort(f32), em.sort, np.sort),
        case("argsort (stable), 1M float32", f32, em.argsort,
             lambda x: np.argsort(x, kind="stable")),
        case("sort, 1M int64", i64, em.sort, np.sort),
        case("sort rows, 1024 x 1024 float32", rows, em.sort, np.sort),
        case("partition kth=n/2, 1M float32", f32, lambda x: em.partition(x, 1 << 19),
             lambda x: np.partition(x, 1 << 19)),
        case("topk k=10 per row, 1024 x 1024 float32", rows, lambda x: em.topk(x, 10),
             lambda x: np.partition(x, 1014)[:, 1014:]),
    ]
    print(f"{'case':42s} {'ember':>10s} {'numpy':>10s} {'ember/numpy':>12s}")
    for title, te, tn in cases:
        print(f"{title:42s} {te * 1e3:8.2f}ms {tn * 1e3:8.2f}ms {te / tn:12.2f}")


if __name__ == "__main__":
    main()
