"""ember.core.fft: discrete Fourier transforms (mlx.core.fft, with numpy.fft's `norm`).

One primitive, FFT (native/kernels/fft.c), transforms along one axis: complex
forward or inverse, real to complex, or complex to real, with the input's
axis cropped or zero-padded to the transform length and a scale applied to
the result. Every multi-axis form here is a sequence of them, as numpy
composes its n-dimensional transforms. Data are complex64 (float32 for the
real sides), as in mlx: float64 input is computed in single precision.

`norm` scales the pair of transforms: "backward" (the default) divides the
inverse by n, "forward" the forward one, "ortho" both by sqrt(n).

Transform rules: the transform is linear, so its jvp is itself. The DFT
matrix is symmetric, so the vjp of a complex transform is the same
transform of the cotangent (then cropped or padded back to the input's
length); the real forms follow JAX's convention for complex cotangents.
"""
import math

from . import dtypes as _dt
from ._ffi import lib
from .array import _op, asarray
from .creation import arange, zeros
from .elementwise import conj, real
from .manipulation import _axis_slice, concatenate, reshape, roll, where
from .primitives import register

_FORWARD = lib.EM_FFT_FORWARD
_INVERSE = lib.EM_FFT_INVERSE
_REAL_FORWARD = lib.EM_FFT_REAL_FORWARD
_REAL_INVERSE = lib.EM_FFT_REAL_INVERSE
_NORMS = ("backward", "ortho", "forward")


def _scale(norm, n, inverse, op):
    if norm is None:
        norm = "backward"
    if norm not in _NORMS:
        raise ValueError(f'[{op}] norm must be "backward", "ortho" or "forward", got {norm!r}')
    if norm == "ortho":
        return 1.0 / math.sqrt(n)
    return 1.0 / n if (norm == "backward") == inverse else 1.0


def _axis(axis, ndim, op):
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"[{op}] axis {axis} is out of bounds for array of dimension {ndim}")
    return axis % ndim


def _default_length(a, axis, kind):
    m = a.shape[axis]
    return 2 * (m - 1) if kind == _REAL_INVERSE else m


def _transform(a, n, axis, kind, norm, stream, op):
    """One 1-D transform of `kind` along `axis` with numpy.fft's n and norm."""
    a = asarray(a)
    axis = _axis(axis, a.ndim, op)
    if n is None or n == -1:
        n = _default_length(a, axis, kind)
    n = int(n)
    if n < 1:
        raise ValueError(f"[{op}] invalid number of data points ({n}) along axis {axis} "
                         f"of an array of shape {a.shape}")
    scale = _scale(norm, n, kind in (_INVERSE, _REAL_INVERSE), op)
    return _op(lib.EM_P_FFT, [a], (axis, kind, n), (scale,), stream=stream)


def fft(a, n=None, axis=-1, *, norm=None, stream=None):
    """The 1-D discrete Fourier transform along `axis`, of length `n` (the input
    is cropped or zero-padded to it; its size along the axis by default)."""
    return _transform(a, n, axis, _FORWARD, norm, stream, "fft")


def ifft(a, n=None, axis=-1, *, norm=None, stream=None):
    """The inverse of `fft`."""
    return _transform(a, n, axis, _INVERSE, norm, stream, "ifft")


def rfft(a, n=None, axis=-1, *, norm=None, stream=None):
    """The DFT of real input: the n // 2 + 1 non-negative frequencies (complex
    input is cast to real first, as in mlx)."""
    return _transform(a, n, axis, _REAL_FORWARD, norm, stream, "rfft")


def irfft(a, n=None, axis=-1, *, norm=None, stream=None):
    """The inverse of `rfft`: a real output of length n (2 * (m - 1) by default
    for m input frequencies)."""
    return _transform(a, n, axis, _REAL_INVERSE, norm, stream, "irfft")


def _plan(a, s, axes, kind, op):
    """numpy's rules for s and axes: the transformed axes and their lengths."""
    if axes is None:
        axes = range(-len(s), 0) if s is not None else range(a.ndim)
    axes = [_axis(ax, a.ndim, op) for ax in axes]
    if s is None:
        s = [None] * len(axes)
    s = list(s)
    if len(s) != len(axes):
        raise ValueError(f"[{op}] s and axes must have the same length, got s={tuple(s)} "
                         f"and axes={tuple(axes)}")
    lengths = []
    for i, (n, ax) in enumerate(zip(s, axes)):
        last = i == len(axes) - 1
        if n is None or n == -1:
            n = _default_length(a, ax, kind if last else _FORWARD)
        if int(n) < 1:
            raise ValueError(f"[{op}] invalid number of data points ({n}) along axis {ax} "
                             f"of an array of shape {a.shape}")
        lengths.append(int(n))
    return axes, lengths


def _fftn(a, s, axes, norm, stream, kind, op):
    a = asarray(a)
    axes, lengths = _plan(a, s, axes, kind, op)
    if not axes:
        return a.astype(_dt.complex64 if kind != _REAL_INVERSE else _dt.float32)
    inner = _INVERSE if kind in (_INVERSE, _REAL_INVERSE) else _FORWARD
    if kind == _REAL_FORWARD:
        # The real transform first (it halves the last axis), then the complex ones.
        a = _transform(a, lengths[-1], axes[-1], kind, norm, stream, op)
        axes, lengths = axes[:-1], lengths[:-1]
    last = None
    if kind == _REAL_INVERSE:
        last = (axes[-1], lengths[-1])
        axes, lengths = axes[:-1], lengths[:-1]
    for ax, n in reversed(list(zip(axes, lengths))):
        a = _transform(a, n, ax, inner, norm, stream, op)
    if last is not None:
        a = _transform(a, last[1], last[0], kind, norm, stream, op)
    return a


def fftn(a, s=None, axes=None, *, norm=None, stream=None):
    """The n-dimensional DFT over `axes` (all axes, or the last len(s), by default)."""
    return _fftn(a, s, axes, norm, stream, _FORWARD, "fftn")


def ifftn(a, s=None, axes=None, *, norm=None, stream=None):
    """The inverse of `fftn`."""
    return _fftn(a, s, axes, norm, stream, _INVERSE, "ifftn")


def rfftn(a, s=None, axes=None, *, norm=None, stream=None):
    """The n-dimensional DFT of real input; the last axis keeps s[-1] // 2 + 1 entries."""
    return _fftn(a, s, axes, norm, stream, _REAL_FORWARD, "rfftn")


def irfftn(a, s=None, axes=None, *, norm=None, stream=None):
    """The inverse of `rfftn`; the last axis has length s[-1] (2 * (m - 1) by default)."""
    return _fftn(a, s, axes, norm, stream, _REAL_INVERSE, "irfftn")


def fft2(a, s=None, axes=(-2, -1), *, norm=None, stream=None):
    """The 2-D DFT over `axes`."""
    return _fftn(a, s, axes, norm, stream, _FORWARD, "fft2")


def ifft2(a, s=None, axes=(-2, -1), *, norm=None, stream=None):
    """The inverse of `fft2`."""
    return _fftn(a, s, axes, norm, stream, _INVERSE, "ifft2")


def rfft2(a, s=None, axes=(-2, -1), *, norm=None, stream=None):
    """The 2-D DFT of real input."""
    return _fftn(a, s, axes, norm, stream, _REAL_FORWARD, "rfft2")


def irfft2(a, s=None, axes=(-2, -1), *, norm=None, stream=None):
    """The inverse of `rfft2`."""
    return _fftn(a, s, axes, norm, stream, _REAL_INVERSE, "irfft2")


def _shift(a, axes, sign, stream, op):
    a = asarray(a)
    if axes is None:
        axes = range(a.ndim)
    elif isinstance(axes, int):
        axes = (axes,)
    axes = [_axis(ax, a.ndim, op) for ax in axes]
    if not axes:
        return a
    return roll(a, [sign * (a.shape[ax] // 2) for ax in axes], axes, stream=stream)


def fftshift(a, axes=None, *, stream=None):
    """Moves the zero frequency to the centre of `axes` (all axes by default)."""
    return _shift(a, axes, 1, stream, "fftshift")


def ifftshift(a, axes=None, *, stream=None):
    """The inverse of `fftshift`."""
    return _shift(a, axes, -1, stream, "ifftshift")


def _check_length(n, op):
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"[{op}] n must be a positive integer, got {n!r}")


def fftfreq(n, d=1.0, *, stream=None):
    """The frequencies (cycles per unit of the spacing d) of `fft`'s n outputs:
    0, 1, ..., (n - 1) // 2, -(n // 2), ..., -1, divided by n * d (float32)."""
    _check_length(n, "fftfreq")
    k = arange(n, dtype=_dt.int32, stream=stream)
    k = where(k < (n + 1) // 2, k, k - n, stream=stream)
    return k.astype(_dt.float32, stream=stream) / (n * d)


def rfftfreq(n, d=1.0, *, stream=None):
    """The frequencies of `rfft`'s n // 2 + 1 outputs: 0, 1, ..., n // 2 over n * d."""
    _check_length(n, "rfftfreq")
    return arange(n // 2 + 1, dtype=_dt.float32, stream=stream) / (n * d)


# ---- transform rules (node.ip = axis, kind, n; node.fp = scale) ----

def _resize(x, axis, m):
    """x cropped or zero-padded at the end of `axis` to length m."""
    k = x.shape[axis]
    if k > m:
        return _axis_slice(x, axis, 0, m)
    if k < m:
        shape = list(x.shape)
        shape[axis] = m - k
        return concatenate([x, zeros(tuple(shape), x.dtype)], axis)
    return x


def _fft_jvp(node, tangents):
    (t,) = tangents
    if t is None:
        return None
    return _op(lib.EM_P_FFT, [t], node.ip, node.fp)


def _hermitian_weights(n, axis, ndim):
    """1 for the bins of rfft's output without a mirror image (zero and, for
    even n, Nyquist), 2 for the others, shaped to broadcast along `axis`."""
    h = n // 2 + 1
    k = arange(h, dtype=_dt.int32)
    w = where((k >= 1) & (k <= n - h), 2.0, 1.0).astype(_dt.float32)
    shape = [1] * ndim
    shape[axis] = h
    return reshape(w, tuple(shape))


def _fft_vjp(node, cotangent):
    axis, kind, n = node.ip
    (scale,) = node.fp
    m = node.inputs[0].shape[axis]
    ct = cotangent
    if kind in (_FORWARD, _INVERSE):
        grad = _op(lib.EM_P_FFT, [ct], (axis, kind, n), (scale,))
    elif kind == _REAL_FORWARD:
        # The transpose of (crop to n//2+1) . F . (real -> complex).
        grad = real(_op(lib.EM_P_FFT, [ct], (axis, _FORWARD, n), (scale,)))
    else:
        spectrum = _op(lib.EM_P_FFT, [ct], (axis, _REAL_FORWARD, n), (scale,))
        grad = conj(spectrum * _hermitian_weights(n, axis, ct.ndim))
    return [_resize(grad, axis, m)]


def _fft_vmap(node, inputs, axes):
    (x,), (b,) = inputs, axes
    axis, kind, n = node.ip
    axis += 1 if b <= axis else 0
    return _op(lib.EM_P_FFT, [x], (axis, kind, n), node.fp), b


register(lib.EM_P_FFT, jvp=_fft_jvp, vjp=_fft_vjp, vmap=_fft_vmap)
