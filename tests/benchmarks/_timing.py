"""The timer every benchmark here shares: the median of repeated calls.

The machines these run on are shared and noisy, so each figure is a median
after a few warm-up calls (first calls pay for compilation, caches and page
faults), and tables compare contenders measured in the same run.
"""
import statistics
import time


def median_time(fn, repeat=7, warmup=2):
    """Median wall-clock seconds of `repeat` calls of fn(), after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
