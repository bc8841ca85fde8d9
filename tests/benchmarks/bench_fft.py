"""FFT benchmarks, ember beside numpy.fft in one run.

    python tests/benchmarks/bench_fft.py

Prints the median of repeated runs for each library and ember's time divided
by numpy's (below 1 means ember is faster). numpy.fft (pocketfft) computes
complex64 input in single precision, as ember does. Machines are shared and
noisy: read the ratios, not the absolute times.
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

    def cplx(*shape):
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)

    cases = [
        case("fft, 2^20 complex64", cplx(1 << 20), em.fft.fft, np.fft.fft),
        case("ifft, 2^20 complex64", cplx(1 << 20), em.fft.ifft, np.fft.ifft),
        case("fft, 3 * 5 * 2^16 complex64", cplx(15 << 16), em.fft.fft, np.fft.fft),
        case("fft, 100003 (prime, Bluestein)", cplx(100003), em.fft.fft, np.fft.fft),
        case("fft rows, 256 x 4096 complex64", cplx(256, 4096), em.fft.fft, np.fft.fft),
        case("rfft, 2^20 float32", rng.standard_normal(1 << 20).astype(np.float32), em.fft.rfft,
             np.fft.rfft),
        case("irfft, 2^19 + 1 bins -> 2^20 float32", cplx((1 << 19) + 1), em.fft.irfft,
             np.fft.irfft),
        case("fft2, 1024 x 1024 complex64", cplx(1024, 1024), em.fft.fft2, np.fft.fft2),
    ]
    print(f"{'case':36s} {'ember':>10s} {'numpy':>10s} {'ember/numpy':>12s}")
    for title, te, tn in cases:
        print(f"{title:36s} {te * 1e3:8.2f}ms {tn * 1e3:8.2f}ms {te / tn:12.2f}")


if __name__ == "__main__":
    main()
