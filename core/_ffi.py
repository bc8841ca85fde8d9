"""Loads the compiled engine and turns its errors into Python exceptions.

The extension links libscipy_openblas by name; loading the wheel's copy with
RTLD_GLOBAL first lets the dynamic loader find it wherever pip put the wheel.
"""
import ctypes
import os

import scipy_openblas32 as _openblas

ctypes.CDLL(os.path.join(_openblas.get_lib_dir(), _openblas.get_library(True)),
            mode=ctypes.RTLD_GLOBAL)

from ._native import ffi, lib  # noqa: E402

NULL = ffi.NULL

_EXCEPTIONS = {
    lib.EM_VALUE_ERROR: ValueError,
    lib.EM_TYPE_ERROR: TypeError,
    lib.EM_INDEX_ERROR: IndexError,
    lib.EM_MEMORY_ERROR: MemoryError,
    lib.EM_RUNTIME_ERROR: RuntimeError,
}


def last_error() -> Exception:
    """The exception for the error the engine last reported on this thread."""
    kind = lib.em_error_kind()
    message = ffi.string(lib.em_error_message()).decode()
    lib.em_clear_error()
    return _EXCEPTIONS.get(kind, RuntimeError)(message or "ember engine error")
