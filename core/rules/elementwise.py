"""Rules of the unary and binary elementwise primitives and `where`.

A smooth unary primitive y = f(x) needs only its derivative f'(x) (written
with x and y); jvp is t * f'(x) and vjp is g * f'(x) (JAX's convention for
complex values: the vjp is the transpose of the jvp, without conjugation).
Piecewise-constant primitives (floor, comparisons, bitwise ops, ...) have a
zero derivative. Binary primitives broadcast their inputs, so each input's
cotangent is summed back to the input's shape.
"""
import math

from .. import dtypes as _dt
from .. import elementwise as ew
from .._ffi import lib
from ..array import _op, array
from ..manipulation import broadcast_to as _broadcast_to, where
from ..primitives import register, zero_cotangents, zero_tangent
from ._util import align_batched, same_op, unbroadcast

P = lib


def _register_smooth_unary(prim, derivative):
    def jvp(node, tangents):
        return tangents[0] * derivative(node.inputs[0], node.out)

    def vjp(node, g):
        return [g * derivative(node.inputs[0], node.out)]

    register(prim, jvp=jvp, vjp=vjp, vmap=_vmap_unary)


def _vmap_unary(node, inputs, axes):
    return same_op(node, inputs), axes[0]


def _register_constant_unary(prim):
    register(prim, jvp=zero_tangent, vjp=zero_cotangents, vmap=_vmap_unary)


def _register_linear_unary(prim, transpose):
    """Linear primitives: the jvp applies the primitive, the vjp its transpose."""
    register(prim, jvp=lambda node, t: same_op(node, t), vjp=lambda node, g: [transpose(node, g)],
             vmap=_vmap_unary)


_LN2, _LN10 = math.log(2.0), math.log(10.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_PI_OVER_2 = math.sqrt(math.pi) / 2.0


def _abs_derivative(x, y):
    if x.dtype == _dt.complex64:
        return ew.conjugate(x) / where(y == 0, 1.0, y)
    return ew.sign(x)


for _prim, _d in [
    (P.EM_P_ABS, _abs_derivative),
    (P.EM_P_SQRT, lambda x, y: 0.5 / y),
    (P.EM_P_RSQRT, lambda x, y: -0.5 * y / x),
    (P.EM_P_EXP, lambda x, y: y),
    (P.EM_P_EXPM1, lambda x, y: y + 1.0),
    (P.EM_P_LOG, lambda x, y: ew.reciprocal(x)),
    (P.EM_P_LOG1P, lambda x, y: ew.reciprocal(x + 1.0)),
    (P.EM_P_LOG2, lambda x, y: ew.reciprocal(x * _LN2)),
    (P.EM_P_LOG10, lambda x, y: ew.reciprocal(x * _LN10)),
    (P.EM_P_SIN, lambda x, y: ew.cos(x)),
    (P.EM_P_COS, lambda x, y: -ew.sin(x)),
    (P.EM_P_TAN, lambda x, y: 1.0 + y * y),
    (P.EM_P_ARCSIN, lambda x, y: ew.rsqrt(1.0 - x * x)),
    (P.EM_P_ARCCOS, lambda x, y: -ew.rsqrt(1.0 - x * x)),
    (P.EM_P_ARCTAN, lambda x, y: ew.reciprocal(1.0 + x * x)),
    (P.EM_P_SINH, lambda x, y: ew.cosh(x)),
    (P.EM_P_COSH, lambda x, y: ew.sinh(x)),
    (P.EM_P_TANH, lambda x, y: 1.0 - y * y),
    (P.EM_P_ARCSINH, lambda x, y: ew.rsqrt(x * x + 1.0)),
    (P.EM_P_ARCCOSH, lambda x, y: ew.rsqrt(x * x - 1.0)),
    (P.EM_P_ARCTANH, lambda x, y: ew.reciprocal(1.0 - x * x)),
    (P.EM_P_ERF, lambda x, y: _TWO_OVER_SQRT_PI * ew.exp(-(x * x))),
    (P.EM_P_ERFINV, lambda x, y: _SQRT_PI_OVER_2 * ew.exp(y * y)),
    (P.EM_P_SIGMOID, lambda x, y: y * (1.0 - y)),
]:
    _register_smooth_unary(_prim, _d)

for _prim in (P.EM_P_SIGN, P.EM_P_FLOOR, P.EM_P_CEIL, P.EM_P_ROUND, P.EM_P_ISNAN,
              P.EM_P_ISINF, P.EM_P_LOGICAL_NOT, P.EM_P_BITWISE_INVERT):
    _register_constant_unary(_prim)

_register_linear_unary(P.EM_P_NEGATIVE, lambda node, g: -g)
_register_linear_unary(P.EM_P_CONJUGATE, lambda node, g: ew.conjugate(g))
# real and imag map complex64 to float32; their transposes map back.
_register_linear_unary(P.EM_P_REAL, lambda node, g: g.astype(node.inputs[0].dtype))
_register_linear_unary(P.EM_P_IMAG,
                       lambda node, g: g.astype(node.inputs[0].dtype) * complex(0.0, -1.0))


# ---- binary ----

def _scaled(t, d):
    """t * d, skipping the multiply for the constant partials 1 and -1."""
    if isinstance(d, float) and d in (1.0, -1.0):
        return t if d == 1.0 else -t
    return t * d


def _register_binary(prim, partials):
    """partials(a, b, y) -> (dy/da, dy/db): arrays or Python floats."""
    def jvp(node, tangents):
        a, b = node.inputs
        da, db = partials(a, b, node.out)
        ta, tb = tangents
        out = None if ta is None else _scaled(ta, da)
        if tb is not None:
            out = _scaled(tb, db) if out is None else out + _scaled(tb, db)
        return None if out is None else _broadcast_to(out, node.out.shape)

    def vjp(node, g):
        a, b = node.inputs
        da, db = partials(a, b, node.out)
        return [unbroadcast(_scaled(g, da), a.shape), unbroadcast(_scaled(g, db), b.shape)]

    register(prim, jvp=jvp, vjp=vjp, vmap=_vmap_broadcasting)


def _vmap_broadcasting(node, inputs, axes):
    return same_op(node, align_batched(inputs, axes)), 0


def _register_constant_binary(prim):
    register(prim, jvp=zero_tangent, vjp=zero_cotangents, vmap=_vmap_broadcasting)


def _max_partials(a, b, y):
    # Ties split the gradient evenly, as JAX does.
    wa = (a > b).astype(y.dtype) + 0.5 * (a == b).astype(y.dtype)
    return wa, 1.0 - wa


def _min_partials(a, b, y):
    wa = (a < b).astype(y.dtype) + 0.5 * (a == b).astype(y.dtype)
    return wa, 1.0 - wa


def _power_partials(a, b, y):
    # d/da = b a^(b-1) (0 where b == 0); d/db = y log a (0 where a == 0)
    da = where(b == 0, 0.0, b * ew.power(a, b - 1.0))
    db = where(a == 0, 0.0, y * ew.log(where(a == 0, 1.0, a)))
    return da, db


def _arctan2_partials(a, b, y):
    r = ew.reciprocal(a * a + b * b)
    return b * r, -a * r


_register_binary(P.EM_P_ADD, lambda a, b, y: (1.0, 1.0))
_register_binary(P.EM_P_SUBTRACT, lambda a, b, y: (1.0, -1.0))
_register_binary(P.EM_P_MULTIPLY, lambda a, b, y: (b, a))
_register_binary(P.EM_P_DIVIDE, lambda a, b, y: (ew.reciprocal(b), -y / b))
_register_binary(P.EM_P_REMAINDER, lambda a, b, y: (1.0, -ew.floor_divide(a, b)))
_register_binary(P.EM_P_POWER, _power_partials)
_register_binary(P.EM_P_MAXIMUM, _max_partials)
_register_binary(P.EM_P_MINIMUM, _min_partials)
_register_binary(P.EM_P_ARCTAN2, _arctan2_partials)
_register_binary(P.EM_P_LOGADDEXP, lambda a, b, y: (ew.exp(a - y), ew.exp(b - y)))

for _prim in (P.EM_P_FLOOR_DIVIDE, P.EM_P_EQUAL, P.EM_P_NOT_EQUAL, P.EM_P_LESS,
              P.EM_P_LESS_EQUAL, P.EM_P_GREATER, P.EM_P_GREATER_EQUAL, P.EM_P_LOGICAL_AND,
              P.EM_P_LOGICAL_OR, P.EM_P_BITWISE_AND, P.EM_P_BITWISE_OR, P.EM_P_BITWISE_XOR,
              P.EM_P_LEFT_SHIFT, P.EM_P_RIGHT_SHIFT):
    _register_constant_binary(_prim)


# ---- where(condition, x, y) ----

def _where_jvp(node, tangents):
    c, x, y = node.inputs
    _, tx, ty = tangents
    zero = array(0, node.out.dtype)
    return _op(P.EM_P_WHERE, [c, zero if tx is None else tx, zero if ty is None else ty])


def _where_vjp(node, g):
    c, x, y = node.inputs
    zero = array(0, g.dtype)
    return [None,
            unbroadcast(_op(P.EM_P_WHERE, [c, g, zero]), x.shape),
            unbroadcast(_op(P.EM_P_WHERE, [c, zero, g]), y.shape)]


register(P.EM_P_WHERE, jvp=_where_jvp, vjp=_where_vjp, vmap=_vmap_broadcasting)
