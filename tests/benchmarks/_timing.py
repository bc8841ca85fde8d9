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


def interleaved_medians(fns, rounds=15, calls=2, warmup=2):
    """Median wall-clock seconds per call of each of fns, measured in turns:
    `calls` calls of each per round, `rounds` rounds, after `warmup` calls of
    each. On a shared machine a slow spell then falls on every contender
    alike instead of on whichever ran during it."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(rounds):
        for fn, out in zip(fns, times):
            for _ in range(calls):
                start = time.perf_counter()
                fn()
                out.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]
