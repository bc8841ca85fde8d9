"""The registry harness: every primitive's jvp, vjp and vmap rules checked
against float64 finite differences, each other (<vjp(u), v> == <u, jvp(v)>),
and a Python loop over the batch.

Each case is a function of float64 arrays built from ember ops; the harness
records which primitives the cases' graphs contain and checks that every
primitive with inputs is covered.
"""
import numpy as np
import pytest

import ember.core as em
from ember.core import graph
from ember.core._ffi import lib
from ember.core.primitives import lib_name, registered


def _pos(shape):
    return ("pos", shape)


def _unit(shape):
    return ("unit", shape)


def _gt1(shape):
    return ("gt1", shape)


def _any(shape):
    return ("any", shape)


def _idx(shape, high):
    return ("idx", shape, high)


def _draw(spec, rng):
    kind, shape = spec[0], spec[1]
    if kind == "idx":
        return em.array(rng.integers(-spec[2], spec[2], size=shape).astype(np.int32))
    x = rng.standard_normal(shape)
    if kind == "pos":
        x = np.abs(x) + 0.5
    elif kind == "unit":
        x = np.tanh(x) * 0.9
    elif kind == "gt1":
        x = np.abs(x) + 1.5
    return em.array(x.astype(np.float64))


def _spread(shape, rng):
    """Distinct values (no ties for max/min/sort-like ops)."""
    n = int(np.prod(shape))
    return em.array((rng.permutation(n).reshape(shape) * 0.37 + 0.1).astype(np.float64))


def _keys_of(x):
    """A batch of random keys (uint32 pairs) that depends on x's signs."""
    bits = (x > 0).astype(em.uint32)
    return em.stack([bits, bits * 7 + 1], axis=-1)


def _integer_mix(a):
    """Integer and boolean primitives over values that depend on a."""
    i = (a > 0).astype(em.int32)
    b = em.logical_or(em.logical_and(a > -1, a < 1), a > 2)
    return (em.left_shift(i, 2) | em.right_shift(i * 8, 1) ^ em.bitwise_invert(i)) + b


def _eye(n):
    return em.eye(n, dtype=em.float64)


def _sym(x):
    return x + em.swapaxes(x, -1, -2)


def _spd(x):
    return x @ em.swapaxes(x, -1, -2) + _eye(x.shape[-1])


def _flat(*parts):
    return em.concatenate([em.reshape(p, (-1,)) for p in parts])


# Packed weights for the quantization cases: fixed data (the rules' inputs are x,
# the scales and the biases; the packed codes get no cotangent).
_QRNG = np.random.default_rng(7)
_WQ3 = em.array(_QRNG.integers(0, 2 ** 32, size=(2, 6), dtype=np.uint32))       # 2 x 64 3-bit
_WQ4 = em.array(_QRNG.integers(0, 2 ** 32, size=(3, 8), dtype=np.uint32))       # 3 x 64 4-bit
_WQ2B = em.array(_QRNG.integers(0, 2 ** 32, size=(2, 5, 2), dtype=np.uint32))   # 2 x 5 x 32 2-bit
_QS2 = em.array(_QRNG.standard_normal((1, 1)))


def _f32(x, s, b):
    """float32 operands, scales and biases small so that the outputs (and the
    float32 noise of the large-step finite differences) stay small."""
    return [x.astype(em.float32), (s * 0.1).astype(em.float32), (b * 0.1).astype(em.float32)]


def _qmm_cases(x, s, b):
    x, s, b = _f32(x, s, b)
    return em.quantized_matmul(x, _WQ4, s, b, True, 32, 4).astype(em.float64)


def _qmm_batched(x, s, b):
    x, s, b = _f32(x, s, b)
    return em.quantized_matmul(x, _WQ2B, s, b, False, 32, 2).astype(em.float64)


def _quantize_codes(w):
    """w times its 2-bit codes read back with fixed scales: piecewise constant codes."""
    q = em.quantize(w.astype(em.float32), group_size=32, bits=2)[0]
    return w * em.dequantize(q, _QS2, _QS2 * 0.5 - 1.0, group_size=32, bits=2)


def _quantize_scales(w):
    """One bit: scale = max - min and bias = min, linear in the group's extremes
    (spread apart so that the large finite-difference step keeps them in place)."""
    _, s, b = em.quantize(((w - 12.0) * 3.0).astype(em.float32), group_size=32, bits=1)
    return (s * 2.0 + b).astype(em.float64)


_compiled_chain = em.compile(lambda a, b: em.sigmoid(em.exp(a * 0.5) * b - em.log(b)))

# Cases that go through float32 values: linear in x, so a large step is exact.
FLOAT32_PATH = {"copy_astype", "complex", "fft", "rfft_irfft", "eigvals", "quantized_matmul",
                "quantized_matmul_batched", "quantize_scales"}
# Their step: long, as the cases are linear and a float32 rounding of the
# values (ulp 4e-6 at quantize_scales' 40) is divided by it; quantize_scales
# keeps its extremes 6 apart from the other values for a step of 1.
FLOAT32_STEP = {"quantize_scales": 1.0}
# Nonlinear cases computed in complex64: tolerances of single precision, and a step that
# keeps rounding small beside it, yet stays short of where LAPACK flips a sign (QR's
# Householder signs, eig's largest entry) for the cases that have such a choice.
COMPLEX64_PATH = {"cholesky_complex": 1e-3, "qr_complex": 1e-3, "svd_complex": 1e-2,
                  "eigh_complex": 1e-2, "eig_vectors": 1e-3}


def _complex(a, b):
    return (a + 1j * b).astype(em.complex64)


def _herm_of(z):
    """A Hermitian matrix with eigenvalues well apart (near 0, 3, 6)."""
    return (z + em.conj(em.swapaxes(z, -1, -2))) * 0.25 + _spaced(3, 3)


def _spaced(m, n):
    """A complex (m, n) matrix whose singular values (or eigenvalues) are 0, 3, 6, ...."""
    return em.eye(m, n, dtype=em.complex64) * em.arange(0.0, 3.0 * n, 3.0).astype(em.complex64)


def _tall(a, b):
    """A complex matrix with singular values well apart (near 1, 4, 7)."""
    return _complex(a, b) * 0.25 + _spaced(*a.shape) + em.eye(*a.shape, dtype=em.complex64)


def _parts(*zs):
    """Real and imaginary parts of complex results, flattened, as float64."""
    return _flat(*[p for z in zs for p in (em.real(z), em.imag(z))]).astype(em.float64)


def _tolerances(name):
    """(step, jvp tolerance, adjoint rel, adjoint abs) of a case's checks."""
    if name in FLOAT32_PATH:
        return FLOAT32_STEP.get(name, 1e-1), 1e-4, 1e-5, 1e-6
    if name in COMPLEX64_PATH:
        return COMPLEX64_PATH[name], 3e-3, 1e-4, 1e-4
    return 1e-6, 1e-5, 1e-9, 1e-9

CASES = {
    # elementwise unary
    "abs": (lambda x: em.abs(x), [_any((3, 4))]),
    "negative": (lambda x: -x, [_any((5,))]),
    "sqrt": (em.sqrt, [_pos((2, 3))]),
    "rsqrt": (em.rsqrt, [_pos((4,))]),
    "exp": (em.exp, [_any((3, 2))]),
    "expm1": (em.expm1, [_any((3,))]),
    "log": (em.log, [_pos((3, 2))]),
    "log1p": (em.log1p, [_pos((3,))]),
    "log2": (em.log2, [_pos((4,))]),
    "log10": (em.log10, [_pos((4,))]),
    "sin": (em.sin, [_any((2, 2))]),
    "cos": (em.cos, [_any((3,))]),
    "tan": (em.tan, [_unit((3,))]),
    "arcsin": (em.arcsin, [_unit((4,))]),
    "arccos": (em.arccos, [_unit((4,))]),
    "arctan": (em.arctan, [_any((4,))]),
    "sinh": (em.sinh, [_any((3,))]),
    "cosh": (em.cosh, [_any((3,))]),
    "tanh": (em.tanh, [_any((3, 3))]),
    "arcsinh": (em.arcsinh, [_any((3,))]),
    "arccosh": (em.arccosh, [_gt1((3,))]),
    "arctanh": (em.arctanh, [_unit((3,))]),
    "erf": (em.erf, [_any((5,))]),
    "erfinv": (em.erfinv, [_unit((5,))]),
    "sigmoid": (em.sigmoid, [_any((2, 5))]),
    "piecewise": (lambda x: em.floor(x) + em.ceil(x) * x + em.round(x) + em.sign(x) * x,
                  [_any((6,))]),
    "predicates": (lambda x: em.where(em.logical_not(em.isnan(x)) & ~em.isinf(x), x, 0.0),
                   [_any((4,))]),
    # binary (with broadcasting)
    "add": (lambda a, b: a + b, [_any((3, 1)), _any((4,))]),
    "subtract": (lambda a, b: a - b, [_any((2, 3)), _any((3,))]),
    "multiply": (lambda a, b: a * b, [_any((2, 3)), _any((2, 1))]),
    "divide": (lambda a, b: a / b, [_any((3,)), _pos((2, 3))]),
    "remainder": (lambda a, b: em.remainder(a, b), [_any((4,)), _pos((4,))]),
    "power": (lambda a, b: em.power(a, b), [_pos((3,)), _any((2, 3))]),
    "maximum": (lambda a, b: em.maximum(a, b), [_any((3, 2)), _any((2,))]),
    "minimum": (lambda a, b: em.minimum(a, b), [_any((3, 2)), _any((3, 1))]),
    "arctan2": (lambda a, b: em.arctan2(a, b), [_any((4,)), _pos((4,))]),
    "logaddexp": (lambda a, b: em.logaddexp(a, b), [_any((2, 3)), _any((3,))]),
    "compare_select": (lambda a, b: em.where((a < b) | (a >= b * 2) & (a != b) | (a == b)
                                             | (a <= b) ^ (a > b), a, b * 3.0),
                       [_any((3, 4)), _any((4,))]),
    "floor_divide": (lambda a, b: em.floor_divide(a, b) * a, [_any((4,)), _pos((4,))]),
    "integer_ops": (lambda a: a * _integer_mix(a).astype(em.float64), [_any((3,))]),
    # layout
    "copy_astype": (lambda x: em.array(x, em.float32).astype(em.float64) * 2.0, [_any((3,))]),
    "complex": (lambda x: em.real(em.conjugate(x.astype(em.complex64) * complex(1, 2)))
                + em.imag(x.astype(em.complex64) * 3j).astype(em.float64), [_any((3,))]),
    "reshape": (lambda x: em.reshape(x, (3, 2)) * em.arange(3.0).reshape(3, 1), [_any((2, 3))]),
    "transpose": (lambda x: em.transpose(x, (2, 0, 1)), [_any((2, 3, 4))]),
    "broadcast": (lambda x: em.broadcast_to(x, (2, 3, 4)), [_any((3, 1))]),
    "full": (lambda x: em.full((2, 3), x), [_any((3,))]),
    "slice": (lambda x: x[1:, ::-2], [_any((3, 5))]),
    "as_strided": (lambda x: em.as_strided(x, (3, 3), (1, 2)), [_any((8,))]),
    "concatenate": (lambda a, b: em.concatenate([a, b, a], axis=1), [_any((2, 3)), _any((2, 1))]),
    "slice_update": (lambda a, u: em.slice_update(a, u, em.array([1]), axes=(0,)),
                     [_any((4, 3)), _any((2, 3))]),
    "setitem": (lambda a, u: a.at[1:3].add(u), [_any((4, 3)), _any((3,))]),
    # the finite differences see the function, not the stop: see test_stop_gradient
    "stop_gradient": (lambda x: x + em.stop_gradient(x) - em.stop_gradient(x), [_any((3,))]),
    # reductions
    "sum": (lambda x: em.sum(x, axis=(0, 2)), [_any((2, 3, 4))]),
    "prod": (lambda x: em.prod(x, axis=1), [_any((3, 4))]),
    "prod_with_zero": (lambda x: em.prod(x * em.array([1.0, 0.0, 1.0]), axis=0), [_any((3,))]),
    "max": (lambda x: em.max(x, axis=0), "spread", (4, 3)),
    "min": (lambda x: em.min(x, axis=(0, 1)), "spread", (2, 3)),
    "all_any_arg": (lambda x: x * (em.all(x > -10) & em.any(x > 0)).astype(em.float64)
                    + em.argmax(x).astype(em.float64) + em.argmin(x).astype(em.float64),
                    [_any((5,))]),
    # scans
    "cumsum": (lambda x: em.cumsum(x, axis=1), [_any((2, 4))]),
    "cumsum_rev_excl": (lambda x: em.cumsum(x, axis=0, reverse=True, inclusive=False),
                        [_any((4, 2))]),
    "cumprod": (lambda x: em.cumprod(x, axis=0), [_pos((4, 2))]),
    "cumprod_excl": (lambda x: em.cumprod(x, axis=1, inclusive=False), [_pos((2, 4))]),
    # zeros (one per column, two in the second): the rules must not divide by them
    "cumprod_with_zeros": (lambda x: em.cumprod(x * em.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0],
                                                              [1.0, 1.0]]), axis=0),
                           [_any((4, 2))]),
    "cumprod_rev_excl_zeros": (lambda x: em.cumprod(x * em.array([1.0, 0.0, 1.0, 0.0, 1.0]),
                                                    axis=1, reverse=True, inclusive=False),
                               [_any((2, 5))]),
    "cummax": (lambda x: em.cummax(x, axis=0), "spread", (5, 2)),
    "cummin_rev": (lambda x: em.cummin(x, axis=1, reverse=True), "spread", (2, 5)),
    "logcumsumexp": (lambda x: em.logcumsumexp(x, axis=1), [_any((2, 5))]),
    "logcumsumexp_rev": (lambda x: em.logcumsumexp(x, axis=0, reverse=True, inclusive=False)[:-1],
                         [_any((4, 2))]),
    # indexing
    "take": (lambda x, i: em.take(x, i, axis=1), [_any((3, 4)), _idx((2, 3), 4)]),
    "take_along_axis": (lambda x, i: em.take_along_axis(x, i, axis=0),
                        [_any((3, 4)), _idx((5, 1), 3)]),
    "scatter_set": (lambda x, u: em.put_along_axis(x, em.array([[0], [2]]), u, axis=0),
                    [_any((3, 4)), _any((2, 4))]),
    "scatter_add": (lambda x, u: x.at[em.array([0, 2, 0])].add(u), [_any((3, 2)), _any((3, 2))]),
    "scatter_multiply": (lambda x, u: x.at[em.array([1, 2])].multiply(u),
                         [_any((3, 2)), _pos((2, 2))]),
    "scatter_divide": (lambda x, u: x.at[em.array([1])].divide(u), [_any((3,)), _pos((1,))]),
    "scatter_maximum": (lambda x, u: x.at[em.array([0, 2])].maximum(u), "spread2", (3,), (2,)),
    "scatter_minimum": (lambda x, u: x.at[em.array([1])].minimum(u), "spread2", (3,), (1,)),
    # sorting
    "sort": (lambda x: em.sort(x, axis=0), "spread", (4, 3)),
    "argsort_partition": (lambda x: em.take_along_axis(x, em.argsort(x, axis=1), axis=1)
                          + em.partition(x, 1, axis=1)
                          * em.take_along_axis(x, em.argpartition(x, 2, axis=1), axis=1),
                          "spread", (2, 5)),
    # fft (complex64 inside: linear, so a large finite-difference step is exact)
    "fft": (lambda x: em.real(em.fft.fft(x.astype(em.complex64) * (1 + 2j), axis=0))
            .astype(em.float64), [_any((5, 2))]),
    "rfft_irfft": (lambda x: em.fft.irfft(em.fft.rfft(x, n=6) * 1j + 2.0, n=6)
                   .astype(em.float64), [_any((2, 6))]),
    # random numbers, bit casts and fma (keys that depend on the input)
    "random": (lambda x: x * em.random.uniform(shape=(3,), key=_keys_of(x)[1])
               .astype(em.float64), [_any((3,))]),
    "threefry": (lambda x: x * em.random.bits((), key=em.random.split(_keys_of(x)[0])[1])
                 .astype(em.float64), [_any((3,))]),
    "view_fma": (lambda a, b, c: em.fma(a, b, c) + em.view((a > 0).astype(em.uint8), em.int8)
                 .astype(em.float64), [_any((2, 3)), _any((3,)), _any((2, 1))]),
    # a compiled function: its elementwise chain runs as one FUSED node
    "fused": (lambda a, b: _compiled_chain(a, b) * 1.0, [_any((3, 4)), _pos((4,))]),
    # custom functions: without overrides, and checkpoint (a vjp override)
    "custom": (lambda x: em.custom_function(lambda x: em.sin(x) * x)(x), [_any((3,))]),
    "checkpoint": (lambda a, b: em.checkpoint(lambda a, b: (a * b + em.sin(a), b * 2.0))(a, b)[0]
                   + 1.0, [_any((2, 3)), _any((3,))]),
    # products
    "matmul": (lambda a, b: a @ b, [_any((2, 3, 4)), _any((4, 5))]),
    "matmul_batched": (lambda a, b: em.matmul(a, b), [_any((3, 1, 2, 3)), _any((4, 3, 2))]),
    # linalg: inputs shifted or squared into well-conditioned (or SPD, symmetric) matrices;
    # decompositions flatten the results whose tangents are unique
    "solve": (lambda a, b: em.linalg.solve(a + 4 * _eye(3), b), [_any((2, 3, 3)), _any((3, 2))]),
    "inv": (lambda x: em.linalg.inv(x + 4 * _eye(3)), [_any((2, 3, 3))]),
    "solve_triangular": (lambda a, b: em.linalg.solve_triangular(a + 4 * _eye(3), b, upper=True)
                         + em.linalg.solve_triangular(a + 4 * _eye(3), b), [_any((3, 3)), _any((3,))]),
    "cholesky": (lambda x: em.linalg.cholesky(_spd(x)) + em.linalg.cholesky(_spd(x), upper=True),
                 [_any((2, 3, 3))]),
    "qr": (lambda a, b: _flat(*em.linalg.qr(a), *em.linalg.qr(b)), [_any((4, 3)), _any((2, 4))]),
    "svd": (lambda a, b: _flat(em.linalg.svd(a)[0][:, :3], *em.linalg.svd(a)[1:],
                               em.linalg.svd(b, compute_uv=False)), [_any((4, 3)), _any((2, 5))]),
    "eigh": (lambda x: _flat(*em.linalg.eigh(_sym(x)), em.linalg.eigvalsh(_sym(x), UPLO="U")),
             [_any((3, 3))]),
    # eigenvalues of a triangular matrix are its diagonal: linear in x (complex64 inside)
    "eigvals": (lambda x: em.real(em.linalg.eigvals(em.triu(x) + 3 * _eye(3))).astype(em.float64),
                [_any((3, 3))]),
    # complex64 decompositions (gauge-free results: |U|, U_r V_r^H, V f(w) V^H) and eig's vectors
    "cholesky_complex": (lambda a, b: _parts(em.linalg.cholesky(
        _complex(a, b) @ em.conj(_complex(a, b).T) + 2 * em.eye(3, dtype=em.complex64))),
        [_any((3, 3)), _any((3, 3))]),
    "qr_complex": (lambda a, b: _parts(*em.linalg.qr(_complex(a, b)), *em.linalg.qr(_complex(a, b).T)),
                   [_any((4, 3)), _any((4, 3))]),
    "svd_complex": (lambda a, b: _flat(em.abs(em.linalg.svd(_tall(a, b))[0][:, :3]).astype(em.float64),
                                       em.linalg.svd(_tall(a, b))[1].astype(em.float64),
                                       _parts(em.linalg.svd(_tall(a, b))[0][:, :3]
                                              @ em.linalg.svd(_tall(a, b))[2])),
                    [_any((4, 3)), _any((4, 3))]),
    "eigh_complex": (lambda a, b: _flat(em.linalg.eigh(_herm_of(_complex(a, b)))[0].astype(em.float64),
                                        em.linalg.eigvalsh(_herm_of(_complex(a, b)), UPLO="U").astype(em.float64),
                                        _parts(em.linalg.eigh(_herm_of(_complex(a, b)))[1][:, :1]
                                               * em.conj(em.linalg.eigh(_herm_of(_complex(a, b)))[1][:, :1].T))),
                     [_any((3, 3)), _any((3, 3))]),
    "eig_vectors": (lambda x: _parts(*em.linalg.eig(0.5 * x + em.array([[0.0], [4.0], [8.0]]) * _eye(3))),
                    [_any((3, 3))]),
    "lu": (lambda a, b: _flat(*em.linalg.lu(a)[1:], *em.linalg.lu(b)[1:]),
           [_any((3, 3)), _any((2, 3))]),
    # convolution: strides, asymmetric padding, dilations, groups, flip; and a transpose
    "conv": (lambda x, w: em.conv_general(x, w, stride=(2, 1), padding=((1, 0), (2, 1)),
                                          kernel_dilation=(1, 2), input_dilation=(2, 1),
                                          groups=2, flip=True),
             [_any((2, 5, 4, 4)), _any((4, 2, 2, 2))]),
    "conv_transpose": (lambda x, w: em.conv_transpose1d(x, w, stride=2, padding=1,
                                                        output_padding=1),
                       [_any((2, 4, 3)), _any((2, 3, 3))]),
    # ember.core.fast (grouped-query attention: 4 query heads over 2 key/value heads)
    "rms_norm": (lambda x, w: em.fast.rms_norm(x, w, 1e-5) + em.fast.rms_norm(x, None, 0.1),
                 [_any((2, 3, 5)), _any((5,))]),
    "layer_norm": (lambda x, w, b: em.fast.layer_norm(x, w, b, 1e-5)
                   + em.fast.layer_norm(x, None, None, 0.1), [_any((3, 4)), _any((4,)), _any((4,))]),
    "rope": (lambda x: em.fast.rope(x, 4, traditional=False, base=10.0, scale=0.7, offset=2)
             + em.fast.rope(x, 6, traditional=True, base=100.0, scale=1.0, offset=0),
             [_any((2, 3, 6))]),
    "rope_freqs": (lambda x, f: em.fast.rope(x, 6, traditional=False, base=None, scale=0.7, offset=2, freqs=f)
                   + em.fast.rope(x, 6, traditional=True, base=None, scale=1.1,
                                  offset=em.array([1, 3]), freqs=f), [_any((2, 3, 6)), _pos((3,))]),
    "sdpa_sinks": (lambda q, k, v, s: em.fast.scaled_dot_product_attention(q, k, v, scale=0.5, sinks=s)
                   + em.fast.scaled_dot_product_attention(q, k, v, scale=0.4, mask="causal", sinks=s),
                   [_any((1, 4, 3, 2)), _any((1, 2, 3, 2)), _any((1, 2, 3, 3)), _any((4,))]),
    "sdpa": (lambda q, k, v, m: em.fast.scaled_dot_product_attention(q, k, v, scale=0.4, mask=m)
             + em.fast.scaled_dot_product_attention(q, k, v, scale=0.5, mask="causal")
             + em.fast.scaled_dot_product_attention(q, k, v, scale=0.3,
                                                    mask=(m > 0.3) | _eye(3).astype(em.bool_)),
             [_any((1, 4, 3, 2)), _any((1, 2, 3, 2)), _any((1, 2, 3, 3)), _unit((3, 3))]),
    "softmax_logsumexp": (lambda x: em.softmax(x, axis=0) * em.logsumexp(x, axis=1, keepdims=True)
                          + em.logsumexp(x) + em.softmax(x, axis=-1), [_any((3, 4))]),
    # quantization (mlx's affine layout): codes, scales and biases of quantize,
    # dequantize (float64), quantized_matmul both ways with batch axes
    "quantize_codes": (_quantize_codes, [_any((1, 32))]),
    "quantize_scales": (_quantize_scales, "extremes_apart", (2, 32)),
    "dequantize": (lambda s, b: em.dequantize(_WQ3, s, b, group_size=32, bits=3),
                   [_any((2, 2)), _any((2, 2))]),
    "quantized_matmul": (_qmm_cases, [_any((2, 64)), _any((3, 2)), _any((3, 2))]),
    "quantized_matmul_batched": (_qmm_batched, [_any((2, 1, 1, 5)), _any((2, 5, 1)),
                                                _any((2, 5, 1))]),
    "det_slogdet": (lambda x: em.linalg.det(0.3 * x + 2 * _eye(3))
                    + em.linalg.slogdet(0.3 * x + 2 * _eye(3))[1],
                    [_any((2, 3, 3))]),
}


def _inputs(case, rng):
    spec = case[1]
    if spec == "spread":
        return [_spread(case[2], rng)]
    if spec == "extremes_apart":
        # distinct values, each row's largest and smallest 6 further out: a
        # step of 1 along a normal tangent never moves another value past them
        x = np.array(_spread(case[2], rng))
        rows = np.arange(x.shape[0])
        x[rows, x.argmax(axis=1)] += 6.0
        x[rows, x.argmin(axis=1)] -= 6.0
        return [em.array(x)]
    if spec == "spread2":
        return [_spread(case[2], rng), _spread(case[3], rng) + 0.05]
    return [_draw(s, rng) for s in spec]


def _is_float(x):
    return x.dtype == em.float64


def _fd_jvp(fn, xs, vs, eps=1e-6):
    """Central differences of fn along vs (None: hold that input fixed)."""
    plus = [x + eps * v if v is not None else x for x, v in zip(xs, vs)]
    minus = [x - eps * v if v is not None else x for x, v in zip(xs, vs)]
    return (np.array(fn(*plus)) - np.array(fn(*minus))) / (2 * eps)


@pytest.mark.parametrize("name", sorted(CASES))
def test_jvp_matches_finite_differences(name, rng):
    case = CASES[name]
    fn = case[0]
    xs = _inputs(case, rng)
    vs = [em.array(rng.standard_normal(x.shape)) if _is_float(x) else None for x in xs]
    out, tangents = em.jvp(fn, xs, [v if v is not None else em.zeros(x.shape, x.dtype)
                                    for x, v in zip(xs, vs)])
    np.testing.assert_allclose(np.array(out[0]), np.array(fn(*xs)), rtol=1e-12, atol=1e-12)
    eps, tol, _, _ = _tolerances(name)
    np.testing.assert_allclose(np.array(tangents[0]), _fd_jvp(fn, xs, vs, eps),
                               rtol=tol, atol=tol if name in COMPLEX64_PATH else tol / 10)


@pytest.mark.parametrize("name", sorted(CASES))
def test_vjp_is_the_transpose_of_jvp(name, rng):
    case = CASES[name]
    fn = case[0]
    xs = _inputs(case, rng)
    vs = [em.array(rng.standard_normal(x.shape)) if _is_float(x) else em.zeros(x.shape, x.dtype)
          for x in xs]
    out, (jv,) = em.jvp(fn, xs, vs)
    u = em.array(rng.standard_normal(out[0].shape))
    _, grads = em.vjp(fn, xs, [u])
    lhs = sum(float(np.vdot(np.array(g), np.array(v))) for g, v, x in zip(grads, vs, xs)
              if _is_float(x))
    rhs = float(np.vdot(np.array(u), np.array(jv)))
    f32 = name in FLOAT32_PATH or name in COMPLEX64_PATH
    eps, _, rel, abs_ = _tolerances(name)
    if f32:
        # single-precision rounding is relative to the terms of the sum, which
        # can be larger than the sum itself (quantize_scales: terms of ~10)
        terms = float(np.vdot(np.abs(np.array(u)), np.abs(np.array(jv))))
        abs_ = max(abs_, rel * terms)
    assert lhs == pytest.approx(rhs, rel=rel, abs=abs_)
    # and the vjp against finite differences of <u, f>
    for i, x in enumerate(xs):
        if not _is_float(x):
            continue
        e = np.zeros(x.shape)
        flat_g = np.array(grads[i]).reshape(-1)
        for k in rng.choice(x.size, size=min(x.size, 4), replace=False):
            e.reshape(-1)[:] = 0
            e.reshape(-1)[k] = 1
            vs_k = [em.array(e) if j == i else None for j in range(len(xs))]
            fd = float(np.vdot(np.array(u), _fd_jvp(fn, xs, vs_k, eps)))
            # complex64 rounding over the step (~6e-8 / 1e-3 per output) sums over the outputs
            rel_fd, abs_fd = ((2e-3, 2e-3) if name in COMPLEX64_PATH
                              else (1e-4, 1e-5) if f32 else (1e-5, 1e-6))
            assert flat_g[k] == pytest.approx(fd, rel=rel_fd, abs=abs_fd)


@pytest.mark.parametrize("name", sorted(CASES))
def test_vmap_matches_a_loop(name, rng):
    case = CASES[name]
    fn = case[0]
    batch = 3
    samples = [_inputs(case, rng) for _ in range(batch)]
    n_in = len(samples[0])
    in_axes = []
    stacked = []
    for j in range(n_in):
        x0 = samples[0][j]
        if j > 0 and rng.random() < 0.3:
            in_axes.append(None)
            for s in samples:
                s[j] = x0
            stacked.append(x0)
            continue
        ax = int(rng.integers(0, x0.ndim + 1))
        in_axes.append(ax)
        stacked.append(em.stack([s[j] for s in samples], axis=ax))
    out = em.vmap(fn, in_axes=tuple(in_axes))(*stacked)
    expected = np.stack([np.array(fn(*s)) for s in samples])
    np.testing.assert_allclose(np.array(out), expected, rtol=1e-12, atol=1e-12)


def test_stop_gradient_blocks_the_gradient(rng):
    x = em.array(rng.standard_normal(4))
    g = em.grad(lambda x: em.sum(x * em.stop_gradient(x)))(x)
    np.testing.assert_allclose(np.array(g), np.array(x))
    _, (t,) = em.jvp(lambda x: em.stop_gradient(x) * 3.0, [x], [em.ones(4, em.float64)])
    np.testing.assert_array_equal(np.array(t), np.zeros(4))


def test_every_primitive_with_inputs_is_covered(rng):
    """The cases above reach every registered primitive that has inputs."""
    seen = set()
    for case in CASES.values():
        xs = _inputs(case, rng)
        sources = [graph.identity(x) for x in xs]
        with graph.keep_graph():
            out = case[0](*sources)
            for a in graph.dependent_nodes([out], sources):
                seen.add(graph.node_of(a).prim)
    no_inputs = {lib.EM_P_ARANGE, lib.EM_P_PLACEHOLDER}
    missing = sorted(lib_name(p) for p in registered() if p not in seen and p not in no_inputs)
    assert not missing, f"primitives without a harness case: {missing}"


def test_every_primitive_has_rules():
    names = [lib_name(p) for p in range(lib.EM_NUM_PRIMS) if p not in registered()]
    assert not names, f"primitives without transform rules: {names}"
