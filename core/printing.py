"""The printed form of arrays, following mlx.core:

    array([2, 4, 6, 8], dtype=float32)
    array([[1, 2],
           [3, 4]], dtype=int32)

Floats print with up to 6 significant digits and no trailing '.' for
integral values. As in mlx (mlx/utils.cpp, print_subarray), every axis longer
than 6 is summarised with '...' between its first and last 3 entries, and
rows of any depth are separated by a single newline. Values come through
numpy at this edge.
"""
import numpy as np

from . import dtypes as _dt

EDGE_ITEMS = 3


def _format_scalar(v, dtype) -> str:
    if dtype == _dt.bool_:
        return "True" if v else "False"
    if _dt.is_integer(dtype):
        return str(int(v))
    if dtype == _dt.complex64:
        re, im = float(v.real), float(v.imag)
        return f"{_format_float(re)}{'+' if im >= 0 or np.isnan(im) else '-'}{_format_float(abs(im))}j"
    return _format_float(float(v))


def _format_float(v: float) -> str:
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:g}"


def _format_nested(x: np.ndarray, dtype, indent: int) -> str:
    if x.ndim == 0:
        return _format_scalar(x[()], dtype)
    n = x.shape[0]
    if n > 2 * EDGE_ITEMS:
        head = [_format_nested(x[i], dtype, indent + 1) for i in range(EDGE_ITEMS)]
        tail = [_format_nested(x[i], dtype, indent + 1) for i in range(n - EDGE_ITEMS, n)]
        items = head + ["..."] + tail
    else:
        items = [_format_nested(x[i], dtype, indent + 1) for i in range(n)]
    if x.ndim == 1:
        return "[" + ", ".join(items) + "]"
    separator = ",\n" + " " * (indent + 1)
    return "[" + separator.join(items) + "]"


def array_repr(a) -> str:
    x = np.asarray(a)
    prefix = "array("
    body = _format_nested(x, a.dtype, len(prefix))
    return f"{prefix}{body}, dtype={a.dtype.name})"


array_str = array_repr
