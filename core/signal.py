"""1-D signal helpers composed from ember ops: convolve (mlx.core's), the
numpy window functions (hanning, hamming, blackman, bartlett) and
hadamard_transform (mlx.core's, for power-of-two sizes).

convolve gathers the sliding windows of the zero-padded longer input into a
matrix and multiplies it by the flipped shorter one, so it runs as one
matmul and its gradients are those of take and matmul.
"""
import math

from . import dtypes as _dt
from .array import asarray
from .creation import arange, ones
from .elementwise import abs, cos
from .indexing import take
from .manipulation import _axis_slice, concatenate, pad, reshape
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
    padded = pad(a, (m - 1, m - 1), stream=stream)
    full_len = n + m - 1
    windows = take(padded, reshape(arange(full_len), (-1, 1)) + reshape(arange(m), (1, -1)),
                   stream=stream)
    flipped = take(v, arange(m - 1, -1, -1), stream=stream)
    full = matmul(windows, flipped, stream=stream)
    if mode == "full":
        return full
    start, length = ((m - 1) // 2, n) if mode == "same" else (m - 1, n - m + 1)
    return _axis_slice(full, 0, start, start + length, stream=stream)


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


def hadamard_transform(a, /, scale=None, *, stream=None):
    """The Walsh-Hadamard transform along the last axis (Sylvester order:
    H_2n = [[H_n, H_n], [H_n, -H_n]]), times scale (1/sqrt(n) when None).
    The size of the last axis must be a power of two. Integers give float32."""
    a = asarray(a)
    if not _dt.is_inexact(a.dtype):
        a = a.astype(_dt.float32, stream=stream)
    if a.ndim == 0:
        raise ValueError("[hadamard_transform] input must have at least one dimension")
    n = a.shape[-1]
    if n < 1 or n & (n - 1):
        raise ValueError(f"[hadamard_transform] the last axis must have a power-of-two size, "
                         f"got shape {a.shape}")
    lead = a.shape[:-1]
    x = a
    half = 1
    # One butterfly per bit of the index: pairs (i, i + half) become (x + y, x - y).
    while half < n:
        blocks = reshape(x, lead + (n // (2 * half), 2, half), stream=stream)
        top = _axis_slice(blocks, len(lead) + 1, 0, 1, stream=stream)
        bottom = _axis_slice(blocks, len(lead) + 1, 1, 2, stream=stream)
        x = reshape(concatenate([top + bottom, top - bottom], axis=len(lead) + 1, stream=stream),
                    lead + (n,), stream=stream)
        half *= 2
    scale = 1.0 / math.sqrt(n) if scale is None else scale
    return x * scale if scale != 1.0 else x
