"""1-D signal helpers composed from ember ops: convolve (mlx.core's), the
numpy window functions (hanning, hamming, blackman, bartlett) and
hadamard_transform (mlx.core's, for power-of-two sizes).

convolve picks its method by filter length and dtype (see below); each is
made of ember ops (slices, fft, as_strided, matmul), so its gradients are
theirs.
"""
import math

from . import dtypes as _dt
from .array import asarray
from .creation import arange, ones
from .elementwise import abs, cos
from .indexing import take
from .manipulation import _axis_slice, as_strided, pad, reshape
from .products import matmul

_MODES = ("full", "same", "valid")


def convolve(a, v, /, mode="full", *, stream=None):
    """Discrete linear convolution of two 1-D arrays (numpy.convolve's
    modes: 'full' has length n + m - 1, 'same' max(n, m), 'valid'
    max(n, m) - min(n, m) + 1). The longer input is the signal."""
    a, v = asarray(a), asarray(v)
    if a.ndim != 1 or v.ndim != 1:
        raise ValueError(f"[convolve] inputs must be 1-D, got shapes {a.shape} and {v.shape}")
    if mode not in _MODES:
        raise ValueError(f"[convolve] mode must be one of {_MODES}, got {mode!r}")
    if a.size == 0 or v.size == 0:
        raise ValueError(f"[convolve] inputs must not be empty, got shapes {a.shape} and "
                         f"{v.shape}")
    if v.size > a.size:
        a, v = v, a
    dtype = _dt.promote_types(a.dtype, v.dtype)
    a, v = a.astype(dtype, stream=stream), v.astype(dtype, stream=stream)
    n, m = a.size, v.size
    if m <= _DIRECT_MAX:
        full = _convolve_shifted(a, v, stream)
    elif dtype in (_dt.float32, _dt.float16, _dt.bfloat16):
        full = _convolve_fft(a, v, stream).astype(dtype, stream=stream)
    else:
        full = _convolve_windows(a, v, stream)
    if mode == "full":
        return full
    start, length = ((m - 1) // 2, n) if mode == "same" else (m - 1, n - m + 1)
    return _axis_slice(full, 0, start, start + length, stream=stream)


# Three ways to the full convolution, picked by the filter's length m and
# the dtype: a short filter is m shifted multiply-adds (exact, cheapest);
# a long float32 one goes through the FFT (O(n log n); rounding of order
# 1e-7 of the largest output, as scipy's fftconvolve); anything else (ints,
# float64, whose FFT would round through complex64) is one matmul of the
# sliding windows by the flipped filter.
_DIRECT_MAX = 32


def _convolve_shifted(a, v, stream):
    n, m = a.size, v.size
    padded = pad(a, (m - 1, m - 1), stream=stream)
    out = None
    for j in range(m):
        tap = _axis_slice(v, 0, m - 1 - j, m - j, stream=stream)
        term = _axis_slice(padded, 0, j, j + n + m - 1, stream=stream) * tap
        out = term if out is None else out + term
    return out


def _convolve_fft(a, v, stream):
    from . import fft
    length = a.size + v.size - 1
    size = 1 << (length - 1).bit_length()
    a32, v32 = a.astype(_dt.float32, stream=stream), v.astype(_dt.float32, stream=stream)
    product = fft.rfft(a32, n=size, stream=stream) * fft.rfft(v32, n=size, stream=stream)
    return _axis_slice(fft.irfft(product, n=size, stream=stream), 0, 0, length, stream=stream)


def _convolve_windows(a, v, stream):
    n, m = a.size, v.size
    padded = pad(a, (m - 1, m - 1), stream=stream)
    windows = as_strided(padded, (n + m - 1, m), (1, 1), stream=stream)
    flipped = take(v, arange(m - 1, -1, -1), stream=stream)
    return matmul(windows, flipped, stream=stream)


def _window(name, terms, dtype):
    """sum_k c_k cos(2 pi k i / (M - 1)) for i in [0, M): the generalized
    cosine windows (numpy's hanning, hamming, blackman)."""
    def op(M, *, dtype=dtype, stream=None):
        M = int(M)
        if M < 1:
            return ones((0,), dtype=dtype)
        if M == 1:
            return ones((1,), dtype=dtype)
        compute = _dt.float64 if dtype == _dt.float64 else _dt.float32
        phase = arange(M, dtype=compute) * (2.0 * math.pi / (M - 1))
        out = 0.0
        for k, c in enumerate(terms):
            out = out + (c if k == 0 else c * cos(phase * k, stream=stream))
        return out.astype(dtype, stream=stream)
    op.__name__ = op.__qualname__ = name
    op.__doc__ = (f"numpy's {name} window of length M (float32 by default; "
                  f"coefficients {terms} of cos(2 pi k n / (M - 1))).")
    return op


hanning = _window("hanning", (0.5, -0.5), _dt.float32)
hamming = _window("hamming", (0.54, -0.46), _dt.float32)
blackman = _window("blackman", (0.42, -0.5, 0.08), _dt.float32)


def bartlett(M, *, dtype=_dt.float32, stream=None):
    """numpy's Bartlett (triangular) window of length M: 1 - |2n/(M-1) - 1|."""
    M = int(M)
    if M <= 1:
        return ones((max(M, 0),), dtype=dtype)
    n = arange(M, dtype=_dt.float64 if dtype == _dt.float64 else _dt.float32)
    return (1.0 - abs(n * (2.0 / (M - 1)) - 1.0, stream=stream)).astype(dtype, stream=stream)


def _sylvester(bits, dtype):
    """The 2^bits square Hadamard matrix in Sylvester order:
    H[i, j] = (-1)^popcount(i & j)."""
    from .elementwise import bitwise_and, bitwise_xor, right_shift
    size = 1 << bits
    both = bitwise_and(reshape(arange(size), (-1, 1)), reshape(arange(size), (1, -1)))
    parity = bitwise_and(both, 1)
    for b in range(1, bits):
        parity = bitwise_xor(parity, bitwise_and(right_shift(both, b), 1))
    return (1 - 2 * parity).astype(dtype)


# Largest factor matrix: 2^6 = 64, so each factor is a small matmul.
_FACTOR_BITS = 6


def hadamard_transform(a, /, scale=None, *, stream=None):
    """The Walsh-Hadamard transform along the last axis, y = x @ H_n * scale
    with H_n Sylvester's (H_2n = [[H_n, H_n], [H_n, -H_n]], scipy.linalg.
    hadamard's) and scale 1/sqrt(n) when None. n must be a power of two.
    Integers give float32.

    H_n is the Kronecker product of Sylvester matrices of at most 64 rows
    (one per group of index bits), so the last axis is split into those
    factors and each gets one matmul: O(n * 64) work instead of O(n^2)."""
    from .manipulation import moveaxis
    a = asarray(a)
    if not _dt.is_inexact(a.dtype):
        a = a.astype(_dt.float32, stream=stream)
    if a.ndim == 0:
        raise ValueError("[hadamard_transform] input must have at least one dimension")
    n = a.shape[-1]
    if n < 1 or n & (n - 1):
        raise ValueError(f"[hadamard_transform] the last axis must have a power-of-two size, "
                         f"got shape {a.shape}")
    bits = n.bit_length() - 1
    groups = [_FACTOR_BITS] * (bits // _FACTOR_BITS) + \
        ([bits % _FACTOR_BITS] if bits % _FACTOR_BITS else [])
    lead = a.shape[:-1]
    x = reshape(a, lead + tuple(1 << g for g in groups), stream=stream)
    for k, g in enumerate(groups):
        axis = len(lead) + k
        h = _sylvester(g, a.dtype)
        x = moveaxis(matmul(moveaxis(x, axis, -1, stream=stream), h, stream=stream), -1, axis,
                     stream=stream)
    x = reshape(x, lead + (n,), stream=stream)
    scale = 1.0 / math.sqrt(n) if scale is None else scale
    return x * scale if scale != 1.0 else x
