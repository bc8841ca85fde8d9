"""The array object: a Python handle on one engine node.

An `array` holds a pointer to a refcounted C node and nothing else, so
building an op costs one call into C. Shape and dtype are read from the
node; data is computed only on `eval` (or anything that needs values:
printing, `item`, `tolist`, numpy conversion, `__bool__`).
"""
import numbers

import numpy as np

from . import device as _device
from . import dtypes as _dt
from ._ffi import ffi, lib, last_error

_release = lib.em_release
_em_binary = lib.em_binary
_em_unary = lib.em_unary
_resolve = _device.resolve


class array:
    """An N-dimensional lazy array (mlx.core.array)."""

    __slots__ = ("_p", "__weakref__")
    __array_priority__ = 100

    def __init__(self, val, dtype=None):
        p = _pointer_from_value(val, None if dtype is None else _dt.as_dtype(dtype))
        self._p = p

    def __del__(self, _release=_release):
        p = getattr(self, "_p", None)
        if p is not None:
            _release(p)

    # ---- metadata ----
    @property
    def shape(self) -> tuple:
        p = self._p
        return tuple(ffi.unpack(lib.em_shape(p), lib.em_ndim(p)))

    @property
    def dtype(self) -> _dt.Dtype:
        return _dt.BY_VALUE[lib.em_dtype(self._p)]

    @property
    def ndim(self) -> int:
        return lib.em_ndim(self._p)

    @property
    def size(self) -> int:
        return lib.em_size(self._p)

    @property
    def itemsize(self) -> int:
        return lib.em_dtype_size(lib.em_dtype(self._p))

    @property
    def nbytes(self) -> int:
        return self.size * self.itemsize

    @property
    def T(self):
        return _manip.transpose(self)

    @property
    def at(self):
        """Functional updates: `a.at[idx].add(v)` returns a new array."""
        return _indexing.AtIndexer(self)

    @property
    def real(self):
        return _ew.real(self)

    @property
    def imag(self):
        return _ew.imag(self)

    def __len__(self):
        if lib.em_ndim(self._p) == 0:
            raise TypeError("len() of a 0-d array")
        return lib.em_shape(self._p)[0]

    def __iter__(self):
        if lib.em_ndim(self._p) == 0:
            raise TypeError("iteration over a 0-d array")
        for i in range(lib.em_shape(self._p)[0]):
            yield self[i]

    # ---- values ----
    def _evaluated(self):
        if not lib.em_is_evaluated(self._p):
            status = lib.em_eval(1, [self._p])
            if status:
                raise last_error()
        return self

    def __array__(self, dtype=None, copy=None):
        # np.asarray (copy=None) gets a read-only view of the engine's buffer: the
        # conversion copies at most once, and only when numpy asks for a copy.
        view = _numpy_view(self)
        if not copy:
            return view if dtype is None else view.astype(dtype, copy=False)
        return np.array(view, dtype=dtype, copy=True)

    def item(self):
        if self.size != 1:
            raise ValueError(f"[item] only arrays with one element can be converted to a "
                             f"Python scalar, got shape {self.shape}")
        return _numpy_view(self).reshape(()).item()

    def tolist(self):
        return _numpy_view(self).tolist()

    def __bool__(self):
        if self.size != 1:
            raise ValueError(f"The truth value of an array with shape {self.shape} is "
                             "ambiguous; use .any() or .all()")
        return bool(self.item())

    def __int__(self):
        return int(self.item())

    def __float__(self):
        return float(self.item())

    def __complex__(self):
        return complex(self.item())

    def __index__(self):
        if not _dt.is_integer(self.dtype):
            raise TypeError(f"only integer arrays can be used as an index, got {self.dtype}")
        return int(self.item())

    def __repr__(self):
        return _printing.array_repr(self)

    def __str__(self):
        return _printing.array_str(self)

    def __format__(self, spec):
        if spec and self.size == 1:
            return format(self.item(), spec)
        return str(self)

    def __hash__(self):
        return id(self)

    def __copy__(self):
        return _wrap_retained(self._p)

    def __deepcopy__(self, memo):
        return _wrap_retained(self._p)

    def __reduce__(self):
        return (array, (np.array(self), self.dtype))

    # ---- dlpack ----
    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        """Shares the evaluated buffer with a DLPack consumer (no copy for
        dtypes numpy knows; bfloat16 goes through float32)."""
        view = _numpy_view(self, writeable=True)
        kwargs = {} if max_version is None else {"max_version": max_version}
        if copy is not None:
            kwargs["copy"] = copy
        return view.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return (1, 0)

    # ---- operators ----
    def __add__(self, other): return _binary(lib.EM_P_ADD, self, other)
    def __radd__(self, other): return _binary(lib.EM_P_ADD, other, self)
    def __sub__(self, other): return _binary(lib.EM_P_SUBTRACT, self, other)
    def __rsub__(self, other): return _binary(lib.EM_P_SUBTRACT, other, self)
    def __mul__(self, other): return _binary(lib.EM_P_MULTIPLY, self, other)
    def __rmul__(self, other): return _binary(lib.EM_P_MULTIPLY, other, self)
    def __truediv__(self, other): return _binary(lib.EM_P_DIVIDE, self, other)
    def __rtruediv__(self, other): return _binary(lib.EM_P_DIVIDE, other, self)
    def __floordiv__(self, other): return _binary(lib.EM_P_FLOOR_DIVIDE, self, other)
    def __rfloordiv__(self, other): return _binary(lib.EM_P_FLOOR_DIVIDE, other, self)
    def __mod__(self, other): return _binary(lib.EM_P_REMAINDER, self, other)
    def __rmod__(self, other): return _binary(lib.EM_P_REMAINDER, other, self)
    def __divmod__(self, other): return _ew.divmod(self, other)
    def __rdivmod__(self, other): return _ew.divmod(other, self)
    def __pow__(self, other): return _binary(lib.EM_P_POWER, self, other)
    def __rpow__(self, other): return _binary(lib.EM_P_POWER, other, self)
    def __matmul__(self, other): return _products.matmul(self, other)
    def __rmatmul__(self, other): return _products.matmul(other, self)
    def __eq__(self, other): return _binary(lib.EM_P_EQUAL, self, other)
    def __ne__(self, other): return _binary(lib.EM_P_NOT_EQUAL, self, other)
    def __lt__(self, other): return _binary(lib.EM_P_LESS, self, other)
    def __le__(self, other): return _binary(lib.EM_P_LESS_EQUAL, self, other)
    def __gt__(self, other): return _binary(lib.EM_P_GREATER, self, other)
    def __ge__(self, other): return _binary(lib.EM_P_GREATER_EQUAL, self, other)
    def __and__(self, other): return _binary(lib.EM_P_BITWISE_AND, self, other)
    def __rand__(self, other): return _binary(lib.EM_P_BITWISE_AND, other, self)
    def __or__(self, other): return _binary(lib.EM_P_BITWISE_OR, self, other)
    def __ror__(self, other): return _binary(lib.EM_P_BITWISE_OR, other, self)
    def __xor__(self, other): return _binary(lib.EM_P_BITWISE_XOR, self, other)
    def __rxor__(self, other): return _binary(lib.EM_P_BITWISE_XOR, other, self)
    def __lshift__(self, other): return _binary(lib.EM_P_LEFT_SHIFT, self, other)
    def __rlshift__(self, other): return _binary(lib.EM_P_LEFT_SHIFT, other, self)
    def __rshift__(self, other): return _binary(lib.EM_P_RIGHT_SHIFT, self, other)
    def __rrshift__(self, other): return _binary(lib.EM_P_RIGHT_SHIFT, other, self)
    def __neg__(self): return _unary(lib.EM_P_NEGATIVE, self)
    def __pos__(self): return self
    def __abs__(self): return _unary(lib.EM_P_ABS, self)
    def __invert__(self): return _unary(lib.EM_P_BITWISE_INVERT, self)

    # In-place operators rebind the name to a new array (arrays are values).
    __iadd__ = __add__
    __isub__ = __sub__
    __imul__ = __mul__
    __itruediv__ = __truediv__
    __ifloordiv__ = __floordiv__
    __imod__ = __mod__
    __ipow__ = __pow__
    __imatmul__ = __matmul__
    __iand__ = __and__
    __ior__ = __or__
    __ixor__ = __xor__
    __ilshift__ = __lshift__
    __irshift__ = __rshift__

    # ---- indexing ----
    def __getitem__(self, index):
        return _indexing.getitem(self, index)

    def __setitem__(self, index, value):
        updated = _indexing.setitem(self, index, value)
        old, self._p = self._p, updated._p
        updated._p = None
        _release(old)

    # ---- method forms of ops ----
    def astype(self, dtype, stream=None):
        dtype = _dt.as_dtype(dtype)
        if dtype.value == lib.em_dtype(self._p):
            return self
        return _op(lib.EM_P_ASTYPE, [self], (dtype.value,), stream=stream)


def _numpy_view(a: array, writeable: bool = False) -> np.ndarray:
    """A numpy view of an evaluated array (bfloat16 converted to float32);
    read-only unless a DLPack consumer needs it otherwise."""
    if lib.em_dtype(a._p) == lib.EM_BFLOAT16:
        a = a.astype(_dt.float32)
    a._evaluated()
    p = a._p
    item = lib.em_dtype_size(lib.em_dtype(p))
    ndim = lib.em_ndim(p)
    return np.asarray(_ViewHolder(a, item, ndim, readonly=not writeable))


class _ViewHolder:
    """Owns a reference to the array for as long as a numpy view exists."""

    __slots__ = ("array", "__array_interface__")

    def __init__(self, a, item, ndim, readonly):
        p = a._p
        self.array = a
        ptr = lib.em_data(p)
        self.__array_interface__ = {
            "version": 3,
            "shape": tuple(ffi.unpack(lib.em_shape(p), ndim)),
            "typestr": _dt.to_numpy_dtype(_dt.BY_VALUE[lib.em_dtype(p)]).str,
            "data": (int(ffi.cast("uintptr_t", ptr)) if ptr != ffi.NULL else 0, readonly),
            "strides": tuple(s * item for s in ffi.unpack(lib.em_strides(p), ndim)),
        }


# ---- construction ----

def _wrap(p) -> array:
    a = object.__new__(array)
    a._p = p
    return a


def _wrap_retained(p) -> array:
    lib.em_retain(p)
    return _wrap(p)


def _check(p) -> array:
    if not p:
        raise last_error()
    a = object.__new__(array)
    a._p = p
    return a


def _op(prim, inputs, iparams=(), fparams=(), stream=None) -> array:
    """Builds a node of `prim` over arrays `inputs` with the given parameters."""
    ptrs = [x._p for x in inputs]
    p = lib.em_op(prim, len(ptrs), ptrs, len(iparams), list(iparams) if iparams else ffi.NULL,
                  len(fparams), list(fparams) if fparams else ffi.NULL, _resolve(stream))
    if not p:
        raise last_error()
    return _wrap(p)


def _unary(prim, a, stream=None) -> array:
    if type(a) is not array:
        a = asarray(a)
    p = _em_unary(prim, a._p, _resolve(stream))
    if not p:
        raise last_error()
    return _wrap(p)


def _binary(prim, a, b, stream=None) -> array:
    if type(a) is not array:
        a = _scalar_against(a, b) if type(b) is array else asarray(a)
    if type(b) is not array:
        b = _scalar_against(b, a)
    p = _em_binary(prim, a._p, b._p, _resolve(stream))
    if not p:
        raise last_error()
    return _wrap(p)


def _scalar_against(value, other: array) -> array:
    """A Python scalar next to an array takes the array's dtype where it fits
    (scalars are weakly typed, as in mlx.core)."""
    kind = type(value)
    if kind is float or (kind is not int and kind is not bool and isinstance(value, numbers.Real)
                         and not isinstance(value, numbers.Integral) and not isinstance(value, np.generic)):
        d = lib.em_dtype(other._p)
        if not _dt.is_inexact(_dt.BY_VALUE[d]):
            d = lib.EM_FLOAT32
        return _check(lib.em_scalar_f64(value, d))
    if kind is int or (kind is not bool and isinstance(value, numbers.Integral)
                       and not isinstance(value, np.generic)):
        d = lib.em_dtype(other._p)
        if d == lib.EM_BOOL:
            d = lib.EM_INT32
        return _check(_int_scalar(int(value), d))
    return asarray(value)


def _int_scalar(value: int, dtype: int):
    if _dt.is_integer(_dt.BY_VALUE[dtype]):
        info = _dt.iinfo(_dt.BY_VALUE[dtype])
        if not info.min <= value <= info.max:
            raise ValueError(f"integer {value} does not fit in {_dt.BY_VALUE[dtype].name}")
        if value < 0:
            return lib.em_scalar_i64(value, dtype)
        return lib.em_scalar_u64(value, dtype)
    return lib.em_scalar_f64(float(value), dtype)


def _pointer_from_value(val, dtype):
    """A new engine reference holding `val` (array, scalar, nested list, numpy array)."""
    if isinstance(val, array):
        if dtype is None or dtype == val.dtype:
            lib.em_retain(val._p)
            return val._p
        out = val.astype(dtype)
        lib.em_retain(out._p)
        return out._p
    kind = type(val)
    if kind is bool:
        d = dtype or _dt.bool_
        return _checked_pointer(lib.em_scalar_i64(int(val), d.value) if d != _dt.bool_
                                else lib.em_scalar_u64(int(val), d.value))
    if kind is int:
        d = dtype or _dt.int32
        if dtype is None and not -(2**31) <= val < 2**31:
            d = _dt.int64
        return _checked_pointer(_int_scalar(val, d.value))
    if kind is float:
        return _checked_pointer(lib.em_scalar_f64(val, (dtype or _dt.float32).value))
    if kind is complex:
        p = _checked_pointer(lib.em_scalar_c64(val.real, val.imag))
        if dtype is not None and dtype != _dt.complex64:
            tmp = _wrap(p).astype(dtype)
            lib.em_retain(tmp._p)
            return tmp._p
        return p
    return _pointer_from_numpy(_to_numpy(val, dtype), dtype)


def _to_numpy(val, dtype=None) -> np.ndarray:
    if isinstance(val, np.ndarray):
        return val
    if isinstance(val, np.generic):
        return np.asarray(val)
    if hasattr(val, "__dlpack__") and not isinstance(val, (list, tuple)):
        return np.from_dlpack(val)
    if isinstance(val, (list, tuple)):
        return _nested_to_numpy(val, dtype)
    if hasattr(val, "__array__") or hasattr(val, "__array_interface__"):
        return np.asarray(val)
    raise TypeError(f"[array] cannot convert {type(val).__name__} to an array")


def _nested_to_numpy(val, dtype=None) -> np.ndarray:
    """Python lists follow mlx.core's inference: bools, then int32, float32, complex64.
    With an integer `dtype` asked for, integers go straight to it (no float detour, so
    uint64 values above 2**63 survive)."""
    if any(isinstance(x, array) for x in _flat_items(val)):
        val = _replace_arrays(val)
    try:
        out = np.array(val)
    except ValueError as e:  # numpy: "inhomogeneous shape"
        raise ValueError(f"[array] nested lists must be rectangular: {e}") from None
    if out.dtype == object:
        raise ValueError("[array] nested lists must be rectangular and hold numbers")
    if dtype is not None and _dt.issubdtype(dtype, _dt.integer) and all(
            type(x) in (int, bool) for x in _flat_items(val)):
        try:
            return np.array(val, dtype=_dt.to_numpy_dtype(dtype))
        except OverflowError as e:
            raise ValueError(f"[array] {e} (dtype {dtype.name})") from None
    if out.dtype == np.float64:
        return out.astype(np.float32)
    if out.dtype == np.complex128:
        return out.astype(np.complex64)
    if out.dtype.kind in "iu":
        if out.size and (out.max() >= 2**31 or out.min() < -(2**31)):
            return out.astype(np.int64)
        return out.astype(np.int32)
    if out.dtype.kind in "US":
        raise ValueError("[array] strings cannot be converted to arrays")
    return out


def _flat_items(val):
    stack = [val]
    while stack:
        x = stack.pop()
        if isinstance(x, (list, tuple)):
            stack.extend(x)
        else:
            yield x


def _replace_arrays(val):
    if isinstance(val, (list, tuple)):
        return [_replace_arrays(x) for x in val]
    if isinstance(val, array):
        return np.array(val)
    return val


def _pointer_from_numpy(x: np.ndarray, dtype):
    """Copies a numpy array into a new engine array (the one copy on the way in)."""
    src_dtype = _dt.from_numpy_dtype(x.dtype)
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    if x.dtype == np.complex128:
        x = x.astype(np.complex64)
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    data = ffi.from_buffer("char[]", x, require_writable=False) if x.size else ffi.NULL
    p = _checked_pointer(lib.em_from_data(data, src_dtype.value, x.ndim, list(x.shape), ffi.NULL))
    if dtype is not None and dtype != src_dtype:
        out = _wrap(p).astype(dtype)
        lib.em_retain(out._p)
        return out._p
    return p


def _checked_pointer(p):
    if not p:
        raise last_error()
    return p


def asarray(val, dtype=None) -> array:
    """`val` as an array; an array of the right dtype is returned as it is."""
    if type(val) is array and (dtype is None or _dt.as_dtype(dtype) == val.dtype):
        return val
    return array(val, dtype)


from . import elementwise as _ew  # noqa: E402
from . import indexing as _indexing  # noqa: E402
from . import manipulation as _manip  # noqa: E402
from . import printing as _printing  # noqa: E402
from . import products as _products  # noqa: E402
