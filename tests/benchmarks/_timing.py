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


def wall_time(fn):
    """Wall-clock seconds of one call of fn()."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved_samples(fns, rounds=15, calls=3, warmup=2, pause=0.05, sample=wall_time):
    """`sample(fn)` of every timed call of each of fns, measured in turns:
    each round runs a block of each contender, `calls` timed calls after one
    untimed one, and every block starts after `pause` seconds of idling. The
    turns make a slow spell of the shared machine fall on every contender
    alike. The untimed call and the pause absorb what the contender before
    left behind: caches full of its data (torch's conv, run before ember's,
    made ember's next call 1.5-2x slower, and the calls after it not) and
    worker threads that spin for a while after each call."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    samples = [[] for _ in fns]
    for _ in range(rounds):
        for fn, out in zip(fns, samples):
            time.sleep(pause)
            fn()
            for _ in range(calls):
                out.append(sample(fn))
    return samples


def interleaved_medians(fns, rounds=15, calls=3, warmup=2, pause=0.05):
    """Median wall-clock seconds per call of each of fns (interleaved_samples)."""
    return [statistics.median(t) for t in interleaved_samples(fns, rounds, calls, warmup, pause)]
