"""Dtypes, dtype categories, promotion and finfo/iinfo, as in mlx.core.

A Dtype is a small immutable object naming one of the engine's 14 element
types; its `value` is the engine's enum. Categories form mlx.core's
hierarchy: generic > number > (integer > (signedinteger, unsignedinteger),
inexact > (floating, complexfloating)), with bool_ directly under generic.
"""
import numpy as np

from ._ffi import ffi, lib


class Dtype:
    """An element type of ember arrays (`ember.core.float32`, ...)."""

    __slots__ = ("value", "name", "size")

    def __init__(self, value: int):
        self.value = value
        self.name = ffi.string(lib.em_dtype_name(value)).decode()
        self.size = lib.em_dtype_size(value)

    def __repr__(self):
        return f"ember.core.{self.name}"

    __str__ = __repr__

    def __eq__(self, other):
        return isinstance(other, Dtype) and other.value == self.value

    def __hash__(self):
        return hash(("ember.Dtype", self.value))

    def __reduce__(self):
        return (_dtype_from_name, (self.name,))


bool_ = Dtype(lib.EM_BOOL)
uint8 = Dtype(lib.EM_UINT8)
uint16 = Dtype(lib.EM_UINT16)
uint32 = Dtype(lib.EM_UINT32)
uint64 = Dtype(lib.EM_UINT64)
int8 = Dtype(lib.EM_INT8)
int16 = Dtype(lib.EM_INT16)
int32 = Dtype(lib.EM_INT32)
int64 = Dtype(lib.EM_INT64)
float16 = Dtype(lib.EM_FLOAT16)
float32 = Dtype(lib.EM_FLOAT32)
float64 = Dtype(lib.EM_FLOAT64)
bfloat16 = Dtype(lib.EM_BFLOAT16)
complex64 = Dtype(lib.EM_COMPLEX64)

ALL = (bool_, uint8, uint16, uint32, uint64, int8, int16, int32, int64,
       float16, float32, float64, bfloat16, complex64)
BY_VALUE = {d.value: d for d in ALL}
_BY_NAME = {d.name: d for d in ALL}


def _dtype_from_name(name):
    return _BY_NAME[name]


class DtypeCategory:
    """A node of the dtype hierarchy, for `issubdtype`."""

    __slots__ = ("name", "parent")

    def __init__(self, name, parent=None):
        self.name = name
        self.parent = parent

    def __repr__(self):
        return f"DtypeCategory.{self.name}"

    def ancestors(self):
        node = self
        while node is not None:
            yield node
            node = node.parent


generic = DtypeCategory("generic")
number = DtypeCategory("number", generic)
integer = DtypeCategory("integer", number)
signedinteger = DtypeCategory("signedinteger", integer)
unsignedinteger = DtypeCategory("unsignedinteger", integer)
inexact = DtypeCategory("inexact", number)
floating = DtypeCategory("floating", inexact)
complexfloating = DtypeCategory("complexfloating", inexact)

_CATEGORY = {
    bool_: generic,
    uint8: unsignedinteger, uint16: unsignedinteger, uint32: unsignedinteger,
    uint64: unsignedinteger,
    int8: signedinteger, int16: signedinteger, int32: signedinteger, int64: signedinteger,
    float16: floating, float32: floating, float64: floating, bfloat16: floating,
    complex64: complexfloating,
}


def issubdtype(a, b) -> bool:
    """Whether dtype or category `a` lies under dtype or category `b`."""
    if isinstance(b, Dtype):
        return isinstance(a, Dtype) and a == b
    if isinstance(a, Dtype):
        if a == bool_:
            return b is generic
        return b in _CATEGORY[a].ancestors()
    return b in a.ancestors()


def promote_types(a: Dtype, b: Dtype) -> Dtype:
    """The dtype two arrays of dtypes a and b combine to (mlx.core's table)."""
    return BY_VALUE[lib.em_promote_types(a.value, b.value)]


def is_floating(d: Dtype) -> bool:
    return d in (float16, float32, float64, bfloat16)


def is_inexact(d: Dtype) -> bool:
    return is_floating(d) or d == complex64


def is_integer(d: Dtype) -> bool:
    return d in (uint8, uint16, uint32, uint64, int8, int16, int32, int64)


# numpy dtypes at the conversion edge. bfloat16 has no numpy type: it converts
# through float32.
_TO_NUMPY = {
    bool_: np.bool_, uint8: np.uint8, uint16: np.uint16, uint32: np.uint32,
    uint64: np.uint64, int8: np.int8, int16: np.int16, int32: np.int32, int64: np.int64,
    float16: np.float16, float32: np.float32, float64: np.float64, complex64: np.complex64,
}
_FROM_NUMPY = {np.dtype(v): k for k, v in _TO_NUMPY.items()}


def to_numpy_dtype(d: Dtype):
    return np.dtype(_TO_NUMPY.get(d, np.float32))


def from_numpy_dtype(d) -> Dtype:
    d = np.dtype(d)
    if d.byteorder == ">" or (d.byteorder == "=" and not d.isnative):
        d = d.newbyteorder("=")  # the values are swapped to native order on the way in
    if d in _FROM_NUMPY:
        return _FROM_NUMPY[d]
    if d == np.complex128:
        return complex64
    if d.name == "bfloat16":
        return bfloat16
    raise TypeError(f"[array] numpy dtype {d} has no ember equivalent")


def as_dtype(d) -> Dtype:
    """Accepts an ember Dtype, a numpy dtype or type, or a name."""
    if isinstance(d, Dtype):
        return d
    if isinstance(d, str) and d in _BY_NAME:
        return _BY_NAME[d]
    if d is bool:
        return bool_
    if d is int:
        return int32
    if d is float:
        return float32
    if d is complex:
        return complex64
    try:
        return from_numpy_dtype(d)
    except TypeError:
        raise TypeError(f"{d!r} is not a dtype") from None


def _fmt_limit(v: float) -> str:
    """A limit as mlx.core prints it (C++ ostream: 6 significant digits)."""
    return f"{v:g}"


class finfo:
    """Machine limits of an inexact dtype: min, max, eps, smallest_normal, dtype.

    As in mlx.core, complex64 reports its component type (float32)."""

    def __init__(self, dtype):
        dtype = as_dtype(dtype)
        if not is_inexact(dtype):
            raise ValueError(f"[finfo] dtype {dtype.name} is not inexact")
        if dtype == complex64:
            dtype = float32
        self.dtype = dtype
        if dtype == bfloat16:
            self.max = 3.3895313892515355e38
            self.min = -self.max
            self.eps = 0.0078125
            self.tiny = 1.1754943508222875e-38
        else:
            info = np.finfo(to_numpy_dtype(dtype))
            self.max = float(info.max)
            self.min = float(info.min)
            self.eps = float(info.eps)
            self.tiny = float(info.tiny)
        self.smallest_normal = self.tiny
        self.bits = 8 * dtype.size

    def __repr__(self):
        return (f"finfo(min={_fmt_limit(self.min)}, max={_fmt_limit(self.max)}, "
                f"dtype={self.dtype.name})")


class iinfo:
    """Limits of an integer dtype: min, max, dtype."""

    def __init__(self, dtype):
        dtype = as_dtype(dtype)
        if not is_integer(dtype):
            raise ValueError(f"[iinfo] dtype {dtype.name} is not an integer dtype")
        self.dtype = dtype
        info = np.iinfo(to_numpy_dtype(dtype))
        self.min = int(info.min)
        self.max = int(info.max)

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype.name})"
