"""Elementwise math: unary and binary primitives and their compositions.

Each primitive op is one engine node (`_unary`/`_binary` build it; the C
shape rule promotes dtypes and broadcasts). Ops that are compositions of
primitives (square, clip, nan_to_num, ...) are written that way here and get
their transforms from their parts.
"""
import math

from . import dtypes as _dt
from ._ffi import lib
from .array import _binary, _unary, array, asarray


def _unary_op(prim, name, doc):
    def op(a, /, *, stream=None):
        return _unary(prim, a, stream)
    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


def _binary_op(prim, name, doc):
    def op(a, b, /, *, stream=None):
        return _binary(prim, a, b, stream)
    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


abs = _unary_op(lib.EM_P_ABS, "abs", "Elementwise absolute value (complex: magnitude).")
negative = _unary_op(lib.EM_P_NEGATIVE, "negative", "Elementwise -a.")
sign = _unary_op(lib.EM_P_SIGN, "sign", "Elementwise sign: -1, 0 or 1 (complex: a / |a|).")
sqrt = _unary_op(lib.EM_P_SQRT, "sqrt", "Elementwise square root.")
rsqrt = _unary_op(lib.EM_P_RSQRT, "rsqrt", "Elementwise 1 / sqrt(a).")
exp = _unary_op(lib.EM_P_EXP, "exp", "Elementwise e**a.")
expm1 = _unary_op(lib.EM_P_EXPM1, "expm1", "Elementwise e**a - 1, accurate near 0.")
log = _unary_op(lib.EM_P_LOG, "log", "Elementwise natural logarithm.")
log1p = _unary_op(lib.EM_P_LOG1P, "log1p", "Elementwise log(1 + a), accurate near 0.")
log2 = _unary_op(lib.EM_P_LOG2, "log2", "Elementwise base-2 logarithm.")
log10 = _unary_op(lib.EM_P_LOG10, "log10", "Elementwise base-10 logarithm.")
sin = _unary_op(lib.EM_P_SIN, "sin", "Elementwise sine.")
cos = _unary_op(lib.EM_P_COS, "cos", "Elementwise cosine.")
tan = _unary_op(lib.EM_P_TAN, "tan", "Elementwise tangent.")
arcsin = _unary_op(lib.EM_P_ARCSIN, "arcsin", "Elementwise inverse sine.")
arccos = _unary_op(lib.EM_P_ARCCOS, "arccos", "Elementwise inverse cosine.")
arctan = _unary_op(lib.EM_P_ARCTAN, "arctan", "Elementwise inverse tangent.")
sinh = _unary_op(lib.EM_P_SINH, "sinh", "Elementwise hyperbolic sine.")
cosh = _unary_op(lib.EM_P_COSH, "cosh", "Elementwise hyperbolic cosine.")
tanh = _unary_op(lib.EM_P_TANH, "tanh", "Elementwise hyperbolic tangent.")
arcsinh = _unary_op(lib.EM_P_ARCSINH, "arcsinh", "Elementwise inverse hyperbolic sine.")
arccosh = _unary_op(lib.EM_P_ARCCOSH, "arccosh", "Elementwise inverse hyperbolic cosine.")
arctanh = _unary_op(lib.EM_P_ARCTANH, "arctanh", "Elementwise inverse hyperbolic tangent.")
erf = _unary_op(lib.EM_P_ERF, "erf", "Elementwise error function.")
erfinv = _unary_op(lib.EM_P_ERFINV, "erfinv", "Elementwise inverse error function.")
sigmoid = _unary_op(lib.EM_P_SIGMOID, "sigmoid", "Elementwise 1 / (1 + exp(-a)), stable for large |a|.")
floor = _unary_op(lib.EM_P_FLOOR, "floor", "Elementwise floor.")
ceil = _unary_op(lib.EM_P_CEIL, "ceil", "Elementwise ceiling.")
isnan = _unary_op(lib.EM_P_ISNAN, "isnan", "Elementwise test for NaN.")
isinf = _unary_op(lib.EM_P_ISINF, "isinf", "Elementwise test for positive or negative infinity.")
logical_not = _unary_op(lib.EM_P_LOGICAL_NOT, "logical_not", "Elementwise logical not.")
bitwise_invert = _unary_op(lib.EM_P_BITWISE_INVERT, "bitwise_invert", "Elementwise bitwise not (~a).")

add = _binary_op(lib.EM_P_ADD, "add", "Elementwise a + b with broadcasting.")
subtract = _binary_op(lib.EM_P_SUBTRACT, "subtract", "Elementwise a - b with broadcasting.")
multiply = _binary_op(lib.EM_P_MULTIPLY, "multiply", "Elementwise a * b with broadcasting.")
divide = _binary_op(lib.EM_P_DIVIDE, "divide", "Elementwise true division (integers give float32).")
floor_divide = _binary_op(lib.EM_P_FLOOR_DIVIDE, "floor_divide", "Elementwise floor(a / b).")
remainder = _binary_op(lib.EM_P_REMAINDER, "remainder", "Elementwise a % b, with the sign of b as in Python.")
power = _binary_op(lib.EM_P_POWER, "power", "Elementwise a ** b.")
maximum = _binary_op(lib.EM_P_MAXIMUM, "maximum", "Elementwise maximum (NaN propagates).")
minimum = _binary_op(lib.EM_P_MINIMUM, "minimum", "Elementwise minimum (NaN propagates).")
arctan2 = _binary_op(lib.EM_P_ARCTAN2, "arctan2", "Elementwise arctan(a / b) in the right quadrant.")
logaddexp = _binary_op(lib.EM_P_LOGADDEXP, "logaddexp", "Elementwise log(exp(a) + exp(b)), stable.")
equal = _binary_op(lib.EM_P_EQUAL, "equal", "Elementwise a == b.")
not_equal = _binary_op(lib.EM_P_NOT_EQUAL, "not_equal", "Elementwise a != b.")
less = _binary_op(lib.EM_P_LESS, "less", "Elementwise a < b.")
less_equal = _binary_op(lib.EM_P_LESS_EQUAL, "less_equal", "Elementwise a <= b.")
greater = _binary_op(lib.EM_P_GREATER, "greater", "Elementwise a > b.")
greater_equal = _binary_op(lib.EM_P_GREATER_EQUAL, "greater_equal", "Elementwise a >= b.")
logical_and = _binary_op(lib.EM_P_LOGICAL_AND, "logical_and", "Elementwise logical and.")
logical_or = _binary_op(lib.EM_P_LOGICAL_OR, "logical_or", "Elementwise logical or.")
bitwise_and = _binary_op(lib.EM_P_BITWISE_AND, "bitwise_and", "Elementwise a & b.")
bitwise_or = _binary_op(lib.EM_P_BITWISE_OR, "bitwise_or", "Elementwise a | b.")
bitwise_xor = _binary_op(lib.EM_P_BITWISE_XOR, "bitwise_xor", "Elementwise a ^ b.")
left_shift = _binary_op(lib.EM_P_LEFT_SHIFT, "left_shift", "Elementwise a << b.")
right_shift = _binary_op(lib.EM_P_RIGHT_SHIFT, "right_shift", "Elementwise a >> b.")


def square(a, /, *, stream=None):
    """Elementwise a * a."""
    a = asarray(a)
    return multiply(a, a, stream=stream)


def reciprocal(a, /, *, stream=None):
    """Elementwise 1 / a."""
    return divide(1.0, asarray(a), stream=stream)


def degrees(a, /, *, stream=None):
    """Radians to degrees."""
    return multiply(asarray(a), 180.0 / math.pi, stream=stream)


def radians(a, /, *, stream=None):
    """Degrees to radians."""
    return multiply(asarray(a), math.pi / 180.0, stream=stream)


def round(a, /, decimals=0, *, stream=None):
    """Round half to even, to `decimals` places (as numpy.round)."""
    a = asarray(a)
    if decimals == 0 or not _dt.is_inexact(a.dtype):
        return _unary(lib.EM_P_ROUND, a, stream)
    scale = 10.0 ** decimals
    return divide(_unary(lib.EM_P_ROUND, multiply(a, scale, stream=stream), stream), scale,
                  stream=stream)


def clip(a, /, a_min, a_max, *, stream=None):
    """Limit values to [a_min, a_max]; either bound may be None."""
    if a_min is None and a_max is None:
        raise ValueError("[clip] at most one of a_min and a_max may be None")
    out = asarray(a)
    if a_min is not None:
        out = maximum(out, a_min, stream=stream)
    if a_max is not None:
        out = minimum(out, a_max, stream=stream)
    return out


def isfinite(a, /, *, stream=None):
    """Elementwise test for finite values (not NaN, not infinite)."""
    a = asarray(a)
    return logical_not(logical_or(isnan(a, stream=stream), isinf(a, stream=stream),
                                  stream=stream), stream=stream)


def isposinf(a, /, *, stream=None):
    """Elementwise test for +inf."""
    a = asarray(a)
    return logical_and(isinf(a, stream=stream), greater(a, 0, stream=stream), stream=stream)


def isneginf(a, /, *, stream=None):
    """Elementwise test for -inf."""
    a = asarray(a)
    return logical_and(isinf(a, stream=stream), less(a, 0, stream=stream), stream=stream)


def nan_to_num(a, nan=0.0, posinf=None, neginf=None, *, stream=None):
    """Replace NaN by `nan` and infinities by `posinf`/`neginf` (default: the dtype's extremes)."""
    a = asarray(a)
    if not _dt.is_floating(a.dtype):
        return a
    info = _dt.finfo(a.dtype)
    posinf = info.max if posinf is None else posinf
    neginf = info.min if neginf is None else neginf
    from .manipulation import where
    out = where(isnan(a, stream=stream), nan, a, stream=stream)
    out = where(isposinf(a, stream=stream), posinf, out, stream=stream)
    return where(isneginf(a, stream=stream), neginf, out, stream=stream)


def divmod(a, b, /, *, stream=None):
    """(floor_divide(a, b), remainder(a, b))."""
    return floor_divide(a, b, stream=stream), remainder(a, b, stream=stream)


def real(a, /, *, stream=None):
    """Real part (a itself for real arrays)."""
    a = asarray(a)
    return _unary(lib.EM_P_REAL, a, stream) if a.dtype == _dt.complex64 else a


def imag(a, /, *, stream=None):
    """Imaginary part (zeros for real arrays)."""
    a = asarray(a)
    if a.dtype == _dt.complex64:
        return _unary(lib.EM_P_IMAG, a, stream)
    return multiply(a, 0, stream=stream)


def conjugate(a, /, *, stream=None):
    """Complex conjugate (a itself for real arrays)."""
    a = asarray(a)
    return _unary(lib.EM_P_CONJUGATE, a, stream) if a.dtype == _dt.complex64 else a


conj = conjugate


def stop_gradient(a, /, *, stream=None):
    """The same values, with no gradient flowing through."""
    return _unary(lib.EM_P_STOP_GRADIENT, a, stream)


def isclose(a, b, /, rtol=1e-05, atol=1e-08, *, equal_nan=False, stream=None):
    """Elementwise |a - b| <= atol + rtol * |b| (as numpy.isclose)."""
    a, b = asarray(a), asarray(b)
    close = less_equal(abs(subtract(a, b, stream=stream), stream=stream),
                       add(atol, multiply(rtol, abs(b, stream=stream), stream=stream),
                           stream=stream), stream=stream)
    # An infinite b makes the tolerance infinite: only an equal a is close to it
    # (numpy's rule); equal infinities are caught by the equality below.
    close = logical_and(close, isfinite(b, stream=stream), stream=stream)
    close = logical_or(close, equal(a, b, stream=stream), stream=stream)
    if equal_nan:
        close = logical_or(close, logical_and(isnan(a, stream=stream), isnan(b, stream=stream),
                                              stream=stream), stream=stream)
    return close


def allclose(a, b, /, rtol=1e-05, atol=1e-08, *, equal_nan=False, stream=None):
    """Whether every element of a is close to b."""
    from .reductions import all as _all
    return _all(isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan, stream=stream),
                stream=stream)


def array_equal(a, b, equal_nan=False, *, stream=None):
    """Whether a and b have the same shape and equal values (dtypes may differ)."""
    from .reductions import all as _all
    a, b = asarray(a), asarray(b)
    if a.shape != b.shape:
        return array(False)
    eq = equal(a, b, stream=stream)
    if equal_nan and _dt.is_inexact(a.dtype) and _dt.is_inexact(b.dtype):
        eq = logical_or(eq, logical_and(isnan(a), isnan(b), stream=stream), stream=stream)
    return _all(eq, stream=stream)
