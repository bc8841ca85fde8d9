"""ember.core.random: mlx.core.random's API on JAX's counter-based PRNG.

    k = em.random.key(0)                 # uint32 array of shape (2,)
    k1, k2 = em.random.split(k)
    x = em.random.normal((3, 4), key=k1)
    em.random.seed(1); y = em.random.uniform(shape=(5,))   # global key

A key is two uint32 words, as mlx.core.random's and JAX's raw PRNGKey. Every
sampler draws with Threefry-2x32 the way JAX does under its default
`jax_threefry_partitionable=True`, so the same key gives the same keys and
samples as JAX: bits, uniform, normal, truncated_normal, bernoulli, randint,
gumbel, laplace, categorical and permutation equal JAX's in float16,
bfloat16 and float32, multivariate_normal within float32 rounding (ember's float32
log, log1p, erf and erfinv are XLA's, float32/float64 multiply-adds round
once as XLA fuses them, and the samplers follow XLA's constant folding and
reassociation where it changes a rounding). Rounding follows mlx where JAX
has no counterpart (normal's loc and scale).

Two primitives do the work (native/kernels/random.c): THREEFRY hashes counter
pairs under keys (split, fold_in) and RANDOM draws a whole array per key:
bits, bits already mapped to uniform or normal floats in the same pass, or a
permutation (positions sorted by their bits). The rest is composed from ember
ops, so transforms come from the parts. Without `key=`, a sampler takes the
next key of a global sequence (`seed` resets it).
"""
import math
import operator
import time

from . import dtypes as _dt
from . import elementwise as _ew
from ._ffi import lib
from .array import _op, array, asarray
from .bitcast import view
from .creation import arange, zeros
from .fma import fma
from .rules._util import align_batched
from .indexing import take
from .manipulation import broadcast_shapes, expand_dims, moveaxis, stack, where
from .primitives import register, zero_cotangents, zero_tangent
from .reductions import argmax

_FLOATS = (_dt.float16, _dt.bfloat16, _dt.float32, _dt.float64)
_UINT_OF_SIZE = {1: _dt.uint8, 2: _dt.uint16, 4: _dt.uint32, 8: _dt.uint64}
# Spacing of floats just below 1 (numpy's finfo.epsneg), per dtype.
_EPSNEG = {_dt.float16: 2.0**-11, _dt.bfloat16: 2.0**-8, _dt.float32: 2.0**-24,
           _dt.float64: 2.0**-53}


# ---- keys ----

def key(seed: int):
    """A PRNG key from an integer seed: [seed >> 32, seed & 0xFFFFFFFF] as uint32.

    Negative seeds down to -2**31 are read as int32, as JAX does (the high
    word is 0)."""
    try:
        s = operator.index(seed)
    except TypeError:
        raise TypeError(f"[random.key] seed must be an integer, got {type(seed).__name__}") from None
    if -(2**31) <= s < 0:
        s &= 0xFFFFFFFF
    elif not 0 <= s < 2**64:
        raise ValueError(f"[random.key] seed {s} is outside [-2**31, 2**64)")
    return array([s >> 32, s & 0xFFFFFFFF], dtype=_dt.uint32)


def _check_key(k, name):
    if k is None:
        return _next_key()
    if not isinstance(k, array):
        raise TypeError(f"[random.{name}] key must be an ember array, got {type(k).__name__}")
    if k.dtype != _dt.uint32:
        raise TypeError(f"[random.{name}] key must be a uint32 array of shape (2,), got dtype {k.dtype}")
    if k.shape != (2,):
        raise ValueError(f"[random.{name}] key must have shape (2,), got {k.shape}")
    return k


def _hash(k, counters, stream):
    return _op(lib.EM_P_THREEFRY, [k, counters], stream=stream)


def split(key, num: int = 2, *, stream=None):
    """`num` new keys (shape (num, 2)); key i hashes the counter i, as JAX's split."""
    k = _check_key(_required(key, "split"), "split")
    num = operator.index(num)
    if num < 0:
        raise ValueError(f"[random.split] num must be non-negative, got {num}")
    counters = stack([zeros((num,), _dt.uint32), arange(num, dtype=_dt.uint32)], axis=-1)
    return _hash(k, counters, stream)


def fold_in(key, data, *, stream=None):
    """A new key from key and a 32-bit integer (JAX's fold_in)."""
    k = _check_key(_required(key, "fold_in"), "fold_in")
    if isinstance(data, array):
        if data.ndim != 0 or not _dt.is_integer(data.dtype):
            raise TypeError(f"[random.fold_in] data must be a scalar integer, got a {data.dtype} "
                            f"array of shape {data.shape}")
        d = data.astype(_dt.uint32)
    else:
        d = operator.index(data)
        if not -(2**31) <= d < 2**32:
            raise ValueError(f"[random.fold_in] data {d} does not fit in 32 bits")
        d = array(d & 0xFFFFFFFF, _dt.uint32)
    return _hash(k, stack([zeros((), _dt.uint32), d]), stream)


def _required(k, name):
    if k is None:
        raise TypeError(f"[random.{name}] needs a key")
    return k


# The global key, as mlx.core.random.state: a list holding one key, so that a
# compiled function can take it as implicit state,
#     em.compile(f, inputs=em.random.state, outputs=em.random.state)
# and draw fresh samples on every call instead of baking one draw into the trace.
state = [None]


def seed(seed: int) -> None:
    """Reset the global key to key(seed)."""
    state[0] = key(seed)


def _next_key():
    """Each sampler called without key= splits the global key in two, keeps
    one half as the new state and draws with the other (as mlx)."""
    if state[0] is None:
        state[0] = key(time.time_ns() & 0xFFFFFFFFFFFFFFFF)
    pair = split(state[0])
    state[0] = pair[0]
    return pair[1]


# ---- argument checks ----

def _shape(shape, name):
    if isinstance(shape, int):
        shape = (shape,)
    try:
        shape = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(f"[random.{name}] shape must be a sequence of ints, got {shape!r}") from None
    if any(d < 0 for d in shape):
        raise ValueError(f"[random.{name}] negative dimension in shape {shape}")
    return shape


def _float_dtype(dtype, name):
    dtype = _dt.float32 if dtype is None else _dt.as_dtype(dtype)
    if dtype not in _FLOATS:
        raise TypeError(f"[random.{name}] dtype must be a real floating dtype, got {dtype}")
    return dtype


def _is_scalar(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_order(low, high, name, low_name="low", high_name="high"):
    if _is_scalar(low) and _is_scalar(high) and not low < high:
        raise ValueError(f"[random.{name}] {low_name} ({low}) must be less than {high_name} ({high})")


def _check_fits(shape, name, *params):
    """shape must be what shape and the parameters' shapes broadcast to."""
    try:
        out = broadcast_shapes(shape, *(p.shape for p in params))
    except ValueError:
        out = None
    if out != shape:
        shapes = ", ".join(str(p.shape) for p in params)
        raise ValueError(f"[random.{name}] parameters of shapes {shapes} do not broadcast to "
                         f"the requested shape {shape}")


def _as(v, dtype):
    """v (scalar or array) as an array of dtype."""
    return v.astype(dtype) if isinstance(v, array) else array(v, dtype)


def _draw(k, kind, dtype, shape, stream):
    return _op(lib.EM_P_RANDOM, [k], (kind, dtype.value, *shape), stream=stream)


# ---- samplers ----

def bits(shape=(), width: int = 4, key=None, *, stream=None):
    """Random bits as unsigned integers of `width` bytes (1, 2, 4 or 8)."""
    k = _check_key(key, "bits")
    if width not in _UINT_OF_SIZE:
        raise ValueError(f"[random.bits] width must be 1, 2, 4 or 8 bytes, got {width}")
    return _draw(k, lib.EM_RANDOM_BITS, _UINT_OF_SIZE[width], _shape(shape, "bits"), stream)


def uniform(low=0, high=1, shape=(), dtype=_dt.float32, key=None, *, stream=None):
    """Uniform samples in [low, high): random mantissa bits under exponent 0
    give f in [1, 2); the sample is max(low, (f - 1) * (high - low) + low)."""
    k = _check_key(key, "uniform")
    dtype = _float_dtype(dtype, "uniform")
    shape = _shape(shape, "uniform")
    _check_order(low, high, "uniform")
    f = _draw(k, lib.EM_RANDOM_UNIFORM, dtype, shape, stream)
    if _is_scalar(low) and _is_scalar(high) and low == 0 and high == 1:
        return f  # f * 1 + 0 is f exactly
    lo, hi = _as(low, dtype), _as(high, dtype)
    _check_fits(shape, "uniform", lo, hi)
    span = _ew.subtract(hi, lo, stream=stream)
    # XLA fuses the float32/float64 multiply-add into one rounding; half
    # types round after each op.
    if dtype.size == 2:
        x = _ew.add(_ew.multiply(f, span, stream=stream), lo, stream=stream)
    else:
        x = fma(f, span, lo, stream=stream)
    return _ew.maximum(lo, x, stream=stream)


def normal(shape=(), dtype=_dt.float32, loc=None, scale=None, key=None, *, stream=None):
    """Normal samples: sqrt(2) * erfinv(u), u uniform on [nextafter(-1, 0), 1),
    then scale * x + loc."""
    k = _check_key(key, "normal")
    dtype = _float_dtype(dtype, "normal")
    shape = _shape(shape, "normal")
    if _is_scalar(scale) and scale < 0:
        raise ValueError(f"[random.normal] scale must be non-negative, got {scale}")
    if dtype == _dt.float64:
        u = uniform(math.nextafter(-1.0, 0.0), 1.0, shape, dtype, key=k, stream=stream)
        z = _ew.multiply(_ew.erfinv(u, stream=stream), math.sqrt(2), stream=stream)
    else:
        z = _draw(k, lib.EM_RANDOM_NORMAL, dtype, shape, stream)
    return _affine(z, loc, scale, dtype, stream)


def _affine(z, loc, scale, dtype, stream):
    """z * scale + loc, each part only when given, each rounded (as mlx)."""
    if scale is not None:
        z = _ew.multiply(z, _as(scale, dtype), stream=stream)
    if loc is not None:
        z = _ew.add(z, _as(loc, dtype), stream=stream)
    return z


def _nextafter(x, up: bool, stream=None):
    """The next float after x toward +inf (up) or -inf, through its bits."""
    u = _UINT_OF_SIZE[x.dtype.size]
    b = view(x, u, stream=stream)
    one = array(1, u)
    away = _ew.greater(x, 0, stream=stream) if up else _ew.less(x, 0, stream=stream)
    step = where(away, _ew.add(b, one), _ew.subtract(b, one), stream=stream)
    smallest = 1 if up else (1 << (8 * x.dtype.size - 1)) | 1
    step = where(_ew.equal(x, 0), array(smallest, u), step, stream=stream)
    out = view(step, x.dtype, stream=stream)
    keep = _ew.logical_or(_ew.isnan(x), _ew.equal(x, math.inf if up else -math.inf))
    return where(keep, x, out, stream=stream)


def truncated_normal(lower, upper, shape=None, dtype=_dt.float32, key=None, *, stream=None):
    """Normal samples conditioned on lower < x < upper: sqrt(2) * erfinv(u) with
    u uniform between erf(lower / sqrt(2)) and erf(upper / sqrt(2))."""
    k = _check_key(key, "truncated_normal")
    dtype = _float_dtype(dtype, "truncated_normal")
    _check_order(lower, upper, "truncated_normal", "lower", "upper")
    lo, hi = _as(lower, dtype), _as(upper, dtype)
    if shape is None:
        shape = broadcast_shapes(lo.shape, hi.shape)
    else:
        shape = _shape(shape, "truncated_normal")
        _check_fits(shape, "truncated_normal", lo, hi)
    sqrt2 = array(math.sqrt(2), dtype)
    a = _erf_of_bound(_over_sqrt2(lo, sqrt2, stream), stream)
    b = _erf_of_bound(_over_sqrt2(hi, sqrt2, stream), stream)
    u = uniform(a, b, shape, dtype, key=k, stream=stream)
    out = _ew.multiply(sqrt2, _ew.erfinv(u, stream=stream), stream=stream)
    out = _ew.maximum(out, _nextafter(lo, True, stream), stream=stream)
    return _ew.minimum(out, _nextafter(hi, False, stream), stream=stream)


def _over_sqrt2(x, sqrt2, stream):
    """x / sqrt2 rounded as XLA does: it turns the division into x * (1 /
    sqrt2). XLA's CPU backend computes bfloat16 in float32, so there the
    reciprocal is a float32 constant and only the product is rounded to
    bfloat16; other types keep the reciprocal in their own precision."""
    compute = _dt.float32 if x.dtype == _dt.bfloat16 else x.dtype
    inv = _ew.divide(array(1.0, compute), sqrt2.astype(compute))
    return _ew.multiply(x.astype(compute), inv, stream=stream).astype(x.dtype, stream=stream)


# XLA's CPU backend evaluates erf of a one-element array with another kernel
# than the vectorised one (ember's erf): the same rational function, but it
# returns +-1 from |x| >= 3.7439213 on instead of from 3.8325069, where the
# rational function is still a few ulp below 1. Near 1, erfinv turns those
# ulp into hundreds, so truncated_normal's scalar bounds follow that kernel.
_ERF_ONE_OF_SCALAR = 3.7439212799072266


def _erf_of_bound(x, stream):
    y = _ew.erf(x, stream=stream)
    if x.size != 1:
        return y
    saturated = _ew.greater_equal(_ew.abs(x), _ERF_ONE_OF_SCALAR, stream=stream)
    return where(saturated, _ew.sign(x, stream=stream), y, stream=stream)


def bernoulli(p=0.5, shape=None, key=None, *, stream=None):
    """Booleans that are True with probability p: uniform(shape, p.dtype) < p."""
    k = _check_key(key, "bernoulli")
    if _is_scalar(p):
        if not 0 <= p <= 1:
            raise ValueError(f"[random.bernoulli] p must be in [0, 1], got {p}")
        p = array(p, _dt.float32)
    p = asarray(p)
    if p.dtype not in _FLOATS:
        raise TypeError(f"[random.bernoulli] p must have a floating dtype, got {p.dtype}")
    shape = p.shape if shape is None else _shape(shape, "bernoulli")
    _check_fits(shape, "bernoulli", p)
    return _ew.less(uniform(shape=shape, dtype=p.dtype, key=k, stream=stream), p, stream=stream)


def _int_bound(v, dtype, name, what):
    """v converted to dtype with values clipped to its range (JAX's
    _convert_and_clip_integer), and whether v exceeds the dtype's maximum."""
    info = _dt.iinfo(dtype)
    if _is_scalar(v):
        v = int(v)
        return array(min(max(v, info.min), info.max), dtype), v > info.max
    v = asarray(v)
    if not _dt.is_integer(v.dtype):
        if v.dtype == _dt.bool_ or not _dt.is_floating(v.dtype):
            raise TypeError(f"[random.{name}] {what} must be integer or real, got {v.dtype}")
        v = v.astype(_dt.int32)
    vinfo = _dt.iinfo(v.dtype)
    lo, hi = max(info.min, vinfo.min), min(info.max, vinfo.max)
    over = _ew.greater(v, hi) if hi < vinfo.max else False
    return _ew.clip(v, array(lo, v.dtype), array(hi, v.dtype)).astype(dtype), over


def randint(low, high, shape=(), dtype=_dt.int32, key=None, *, stream=None):
    """Integers in [low, high): two words of bits per value reduced modulo the
    span (JAX's algorithm: nearly unbiased for spans much below 2**bits).
    Types narrower than 32 bits are drawn as int32 and converted, as JAX does."""
    k = _check_key(key, "randint")
    dtype = _dt.int32 if dtype is None else _dt.as_dtype(dtype)
    if not _dt.is_integer(dtype):
        raise TypeError(f"[random.randint] dtype must be an integer dtype, got {dtype}")
    shape = _shape(shape, "randint")
    _check_order(low, high, "randint")
    if dtype.size >= 4:
        return _randint(k, low, high, shape, dtype, stream)
    info = _dt.iinfo(dtype)
    low = _clipped_int32(low, info.min, info.max)
    high = _clipped_int32(high, info.min, info.max + 1)
    return _randint(k, low, high, shape, _dt.int32, stream).astype(dtype, stream=stream)


def _clipped_int32(v, lo, hi):
    if _is_scalar(v):
        return min(max(int(v), lo), hi)
    return _ew.clip(asarray(v).astype(_dt.int32), array(lo, _dt.int32), array(hi, _dt.int32))


def _randint(k, low, high, shape, dtype, stream):
    lo, _ = _int_bound(low, dtype, "randint", "low")
    hi, over = _int_bound(high, dtype, "randint", "high")
    _check_fits(shape, "randint", lo, hi)
    nbits = 8 * dtype.size
    udt = _UINT_OF_SIZE[dtype.size]
    k1, k2 = split(k, stream=stream)
    higher = _draw(k1, lib.EM_RANDOM_BITS, udt, shape, stream)
    lower = _draw(k2, lib.EM_RANDOM_BITS, udt, shape, stream)
    one = array(1, udt)
    empty = _ew.less_equal(hi, lo)
    span = where(empty, one, _ew.subtract(hi, lo).astype(udt))
    # A high past the dtype's maximum makes the span one larger (it may wrap
    # to 0, leaving every remainder below unchanged, which is right).
    if over is not False:
        span = where(_ew.logical_and(over, _ew.logical_not(empty)), _ew.add(span, one), span)
    mult = _rem(array(2 ** (nbits // 2), udt), span)
    mult = _rem(_ew.multiply(mult, mult), span)
    offset = _ew.add(_ew.multiply(_rem(higher, span), mult), _rem(lower, span))
    offset = _rem(offset, span)
    return _ew.add(lo, offset.astype(dtype), stream=stream)


def _rem(x, span):
    """x % span for unsigned x, with x % 0 = x as XLA defines it."""
    zero = _ew.equal(span, 0)
    return where(zero, x, _ew.remainder(x, where(zero, array(1, span.dtype), span)))


def gumbel(shape=(), dtype=_dt.float32, key=None, *, stream=None):
    """Standard Gumbel samples: -log(-log(u)), u = max(tiny, f) for f uniform
    on [0, 1).

    JAX asks for uniform(tiny, 1), (f * (1 - tiny) + tiny), but XLA folds
    its constants: 1 - tiny rounds to 1 and f - 1 + tiny reassociates to
    f + (-1 + tiny), where -1 + tiny rounds to -1. What is left is max(tiny,
    f). That differs from uniform(tiny, 1) only in float16, whose tiny
    (2**-14) is not lost beside f."""
    k = _check_key(key, "gumbel")
    dtype = _float_dtype(dtype, "gumbel")
    f = _draw(k, lib.EM_RANDOM_UNIFORM, dtype, _shape(shape, "gumbel"), stream)
    u = _ew.maximum(array(_dt.finfo(dtype).tiny, dtype), f, stream=stream)
    return _ew.negative(_ew.log(_ew.negative(_ew.log(u, stream=stream)), stream=stream))


def laplace(shape=(), dtype=_dt.float32, loc=0.0, scale=1.0, key=None, *, stream=None):
    """Laplace samples: sign(u) * log1p(-|u|) for u uniform on (-1, 1), then
    scale * x + loc."""
    k = _check_key(key, "laplace")
    dtype = _float_dtype(dtype, "laplace")
    if _is_scalar(scale) and scale < 0:
        raise ValueError(f"[random.laplace] scale must be non-negative, got {scale}")
    u = uniform(-1.0 + _EPSNEG[dtype], 1.0, _shape(shape, "laplace"), dtype, key=k, stream=stream)
    z = _ew.multiply(_ew.sign(u), _ew.log1p(_ew.negative(_ew.abs(u))), stream=stream)
    if _is_scalar(loc) and _is_scalar(scale) and loc == 0 and scale == 1:
        return z
    return _affine(z, loc, scale, dtype, stream)


def categorical(logits, axis: int = -1, shape=None, num_samples=None, key=None, *, stream=None):
    """Category indices drawn from softmax(logits) along `axis`, by the
    Gumbel-max trick: argmax(logits + gumbel noise). With num_samples the
    samples form a new last axis; with shape the output has that shape
    (which must end in the logits' batch shape)."""
    k = _check_key(key, "categorical")
    logits = asarray(logits)
    if logits.dtype not in _FLOATS:
        raise TypeError(f"[random.categorical] logits must be floating, got {logits.dtype}")
    if logits.ndim == 0:
        raise ValueError("[random.categorical] logits must have at least one dimension")
    if shape is not None and num_samples is not None:
        raise ValueError("[random.categorical] at most one of shape and num_samples can be given")
    if not -logits.ndim <= axis < logits.ndim:
        raise ValueError(f"[random.categorical] axis {axis} is out of bounds for logits of "
                         f"dimension {logits.ndim}")
    axis = axis % logits.ndim
    batch = logits.shape[:axis] + logits.shape[axis + 1:]
    if num_samples is not None:
        out = _categorical(k, logits, axis, (operator.index(num_samples),) + batch, batch, stream)
        return moveaxis(out, 0, -1, stream=stream)
    shape = batch if shape is None else _shape(shape, "categorical")
    if len(shape) < len(batch) or shape[len(shape) - len(batch):] != batch:
        raise ValueError(f"[random.categorical] shape {shape} must end in the batch shape {batch} "
                         f"of logits of shape {logits.shape} (axis {axis})")
    return _categorical(k, logits, axis, shape, batch, stream)


def _categorical(k, logits, axis, shape, batch, stream):
    prefix = shape[:len(shape) - len(batch)]
    noise_shape = list(shape[len(prefix):])
    noise_shape.insert(axis, logits.shape[axis])
    noise = gumbel(prefix + tuple(noise_shape), logits.dtype, key=k, stream=stream)
    shifted = _ew.add(noise, expand_dims(logits, tuple(range(len(prefix)))) if prefix else logits)
    return argmax(shifted, axis=axis - logits.ndim, stream=stream)


def permutation(x, axis: int = 0, key=None, *, stream=None):
    """A random permutation of range(x) (x an int) or of x along `axis`.

    As JAX: positions get 32 random bits each and are sorted by them, stably
    (in C, by radix sort); log n / log 2**32 rounds, each with a fresh split
    of the key, make ties negligible."""
    k = _check_key(key, "permutation")
    if _is_scalar(x):
        n = operator.index(x)
        if n < 0:
            raise ValueError(f"[random.permutation] x must be non-negative, got {n}")
        return _draw(k, lib.EM_RANDOM_PERMUTATION, _dt.int32, (n,), stream)
    a = asarray(x)
    if a.ndim == 0:
        raise ValueError("[random.permutation] x must be an integer or an array of at least one dimension")
    if not -a.ndim <= axis < a.ndim:
        raise ValueError(f"[random.permutation] axis {axis} is out of bounds for an array of "
                         f"dimension {a.ndim}")
    axis = axis % a.ndim
    order = _draw(k, lib.EM_RANDOM_PERMUTATION, _dt.int32, (a.shape[axis],), stream)
    return take(a, order, axis=axis, stream=stream)


def multivariate_normal(mean, cov, shape=None, dtype=_dt.float32, key=None, *, stream=None):
    """Samples of N(mean, cov): mean + L z with L the Cholesky factor of cov and
    z standard normal of shape `shape` + mean.shape[-1:] (JAX's default method,
    so the samples equal jax.random.multivariate_normal's). `shape` defaults
    to the broadcast of mean's and cov's batch shapes."""
    from .linalg import cholesky
    from .products import matmul
    k = _check_key(key, "multivariate_normal")
    dtype = _float_dtype(dtype, "multivariate_normal")
    mean, cov = asarray(mean).astype(dtype), asarray(cov).astype(dtype)
    if mean.ndim < 1 or cov.ndim < 2 or cov.shape[-2:] != (mean.shape[-1],) * 2:
        raise ValueError(f"[random.multivariate_normal] mean of shape {mean.shape} needs a cov "
                         f"of shape (..., {mean.shape[-1] if mean.ndim else 'n'}, "
                         f"{mean.shape[-1] if mean.ndim else 'n'}), got {cov.shape}")
    batch = broadcast_shapes(mean.shape[:-1], cov.shape[:-2])
    shape = batch if shape is None else _shape(shape, "multivariate_normal")
    try:
        broadcast_shapes(shape, batch)
    except ValueError:
        raise ValueError(f"[random.multivariate_normal] shape {shape} does not broadcast with "
                         f"the batch shape {batch} of mean and cov") from None
    factor = cholesky(cov, stream=stream)
    if mean.shape[-1] == 1 and cov.ndim == 2 and dtype == _dt.float32:
        # With one dimension XLA's dot is a product, and it reassociates
        # (sqrt(2) * erfinv(u)) * L into erfinv(u) * (sqrt(2) * L), fusing the
        # add of the mean: one rounding after the erfinv, as here. (A batch
        # of 1x1 covariances rounds otherwise again; not reproduced yet.)
        u = uniform(-1.0 + _EPSNEG[dtype], 1.0, shape + (1,), dtype, key=k, stream=stream)
        scale = _ew.multiply(factor.reshape(factor.shape[:-1]), math.sqrt(2), stream=stream)
        return fma(_ew.erfinv(u, stream=stream), scale, mean, stream=stream)
    z = normal(shape + mean.shape[-1:], dtype, key=k, stream=stream)
    offset = matmul(factor, expand_dims(z, -1, stream=stream), stream=stream)
    return _ew.add(mean, offset.reshape(offset.shape[:-1]), stream=stream)


# ---- transform rules of THREEFRY and RANDOM ----

def _vmap_threefry(node, inputs, axes):
    return _op(lib.EM_P_THREEFRY, align_batched(inputs, axes)), 0


def _vmap_random(node, inputs, axes):
    # A batch of keys draws one array per key: the batch axis leads.
    return _op(lib.EM_P_RANDOM, [moveaxis(inputs[0], axes[0], 0)], node.ip), 0


# Samples are constant in the key: no tangent flows through them.
register(lib.EM_P_THREEFRY, jvp=zero_tangent, vjp=zero_cotangents, vmap=_vmap_threefry)
register(lib.EM_P_RANDOM, jvp=zero_tangent, vjp=zero_cotangents, vmap=_vmap_random)
