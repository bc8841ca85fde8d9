"""ember.core: a lazy array engine in C with mlx.core's Python API.

    import ember.core as em
    a = em.array([1, 2, 3, 4])
    b = em.array([1.0, 2.0, 3.0, 4.0])
    c = a + b          # builds a graph node; nothing is computed yet
    em.eval(c)         # runs it
    print(c)           # array([2, 4, 6, 8], dtype=float32)

Modules: array (the array object), dtypes, device (devices, streams),
creation, elementwise, reductions, manipulation, indexing, products, conv,
evaluation, memory, io, sorting, statistics (median, nan-reductions),
signal (convolve, windows, hadamard_transform), einsum, fft (also ember.core.fft), bitcast (view),
fma, quantize (quantize, dequantize, quantized_matmul: mlx's affine
quantization), random (ember.core.random, JAX's Threefry PRNG), linalg (LAPACK-backed
linear algebra, also ember.core.linalg), fast (fused norms, rope and
attention, also ember.core.fast), utils (tree utilities, also
ember.core.utils); transforms: autodiff (grad, vjp, jvp, ...), vmap,
custom (custom_function, checkpoint) and compile, with the per-primitive
rules in primitives (the registry) and rules/.
"""
import math as _math

from . import fast, fft, linalg, utils
from .array import array, asarray
from .bitcast import view
from .conv import (conv1d, conv2d, conv3d, conv_general, conv_transpose1d, conv_transpose2d,
                   conv_transpose3d)
from .creation import (arange, empty, empty_like, eye, full, full_like, identity, linspace,
                       meshgrid, ones, ones_like, tri, zeros, zeros_like)
from .device import (Device, DeviceType, Stream, cpu, default_device, default_stream, gpu,
                     is_available, new_stream, set_default_device, set_default_stream, stream,
                     synchronize)
from .dtypes import (Dtype, DtypeCategory, bfloat16, bool_, complex64, complexfloating, finfo,
                     float16, float32, float64, floating, generic, iinfo, inexact, int8, int16,
                     int32, int64, integer, issubdtype, number, promote_types, signedinteger,
                     uint8, uint16, uint32, uint64, unsignedinteger)
from .elementwise import (abs, add, allclose, arccos, arccosh, arcsin, arcsinh, arctan, arctan2,
                          arctanh, array_equal, bitwise_and, bitwise_invert, bitwise_or,
                          bitwise_xor, ceil, clip, conj, conjugate, cos, cosh, degrees, divide,
                          divmod, equal, erf, erfinv, exp, expm1, floor, floor_divide, greater,
                          greater_equal, imag, isclose, isfinite, isinf, isnan, isneginf,
                          isposinf, left_shift, less, less_equal, log, log1p, log2, log10,
                          logaddexp, logical_and, logical_not, logical_or, maximum, minimum,
                          multiply, nan_to_num, negative, not_equal, power, radians, real,
                          reciprocal, remainder, right_shift, round, rsqrt, sigmoid, sign, sin,
                          sinh, sqrt, square, stop_gradient, subtract, tan, tanh)
from .einsum import einsum, einsum_path
from .evaluation import async_eval, depends, eval
from .fma import fma
from .indexing import put_along_axis, take, take_along_axis
from .io import load, save, save_safetensors, savez, savez_compressed
from .manipulation import (array_split, as_strided, atleast_1d, atleast_2d, atleast_3d,
                           broadcast_arrays, broadcast_shapes, broadcast_to, concat, concatenate,
                           contiguous, diag, diagonal, diff,
                           expand_dims, flatten, moveaxis, pad, permute_dims, repeat, reshape,
                           roll, slice, slice_update, split, squeeze, stack, swapaxes, tile,
                           trace, transpose, tril, triu, unflatten, unstack, where)
from .memory import (clear_cache, get_active_memory, get_cache_memory, get_peak_memory,
                      reset_peak_memory, set_cache_limit, set_memory_limit)
from .quantize import dequantize, quantize, quantized_matmul
from .products import (addmm, block_masked_mm, gather_mm, inner, kron, matmul, outer,
                       segmented_mm, tensordot)
from .reductions import (all, any, argmax, argmin, cummax, cummin, cumprod, cumsum,
                         logcumsumexp, logsumexp, max, mean, min, prod, softmax, std, sum, var)
from .signal import bartlett, blackman, convolve, hadamard_transform, hamming, hanning
from .sorting import argpartition, argsort, partition, searchsorted, sort, topk
from .statistics import (median, nanmax, nanmean, nanmedian, nanmin, nanpercentile, nanprod,
                         nanquantile, nanstd, nansum, nanvar, percentile, quantile)
from .dlpack import from_dlpack
from . import rules as _rules  # noqa: F401  (registers the primitives' transform rules)
from .autodiff import grad, hessian, jacfwd, jacrev, jvp, value_and_grad, vjp
from .compile import compile, disable_compile, enable_compile
from .custom import checkpoint, custom_function
from .vmap import vmap
from . import methods as _methods  # noqa: F401  (attaches a.sum(), a.reshape(), ...)
from . import random

bitwise_not = bitwise_invert
pi = _math.pi
e = _math.e
inf = float("inf")
nan = float("nan")
newaxis = None
euler_gamma = 0.5772156649015329
