"""view: an array's bytes read as another dtype (mlx.core.view), the
BITCAST primitive.

With dtypes of one size the shape is kept; otherwise the last axis grows or
shrinks so the bytes match (viewing a (3, 4) uint8 array as uint32 gives
(3, 1)). A row-contiguous input is shared without a copy. random uses it to
turn bits into floats the way JAX does (lax.bitcast_convert_type).
"""
from . import dtypes as _dt
from ._ffi import lib
from .array import _op, asarray
from .manipulation import moveaxis
from .primitives import register, zero_cotangents, zero_tangent


def view(a, /, dtype, *, stream=None):
    """The same bytes read as `dtype` (shape changes along the last axis when
    item sizes differ)."""
    return _op(lib.EM_P_BITCAST, [asarray(a)], (_dt.as_dtype(dtype).value,), stream=stream)


def _vmap_view(node, inputs, axes):
    # The view only reshapes the last axis, so the batch axis goes first.
    return view(moveaxis(inputs[0], axes[0], 0), _dt.BY_VALUE[node.ip[0]]), 0


# Bits are not differentiable through a reinterpretation of their type.
register(lib.EM_P_BITCAST, jvp=zero_tangent, vjp=zero_cotangents, vmap=_vmap_view)
