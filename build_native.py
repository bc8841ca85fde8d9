"""cffi builder for ember's C engine (API mode, out of line).

`pip install .` / `pip install -e .` run this through setup.py's
`cffi_modules`; it compiles native/*.c into the extension
`ember.core._native` and links BLAS and LAPACK from the scipy-openblas32
wheel. The engine's public header native/ember.h is the cdef: cffi reads the
same declarations the C code is compiled against.
"""
import os
import re
from pathlib import Path

import cffi
import scipy_openblas32

ROOT = Path(__file__).resolve().parent
NATIVE = ROOT / "native"


def _cdef_text() -> str:
    """ember.h without its comments (cffi's parser wants bare declarations)."""
    text = (NATIVE / "ember.h").read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return text


def _sources() -> list:
    files = sorted(NATIVE.glob("*.c")) + sorted((NATIVE / "kernels").glob("*.c"))
    return [str(p.relative_to(ROOT)) for p in files]


def _compile_args() -> list:
    args = ["-std=c11", "-O3", "-fno-math-errno", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    sanitize = os.environ.get("EMBER_SANITIZE")
    if sanitize:
        args += [f"-fsanitize={sanitize}", "-fno-omit-frame-pointer", "-O1", "-g"]
    return args


def _link_args() -> list:
    lib_dir = scipy_openblas32.get_lib_dir()
    args = [f"-Wl,-rpath,{lib_dir}", "-lpthread", "-lm"]
    sanitize = os.environ.get("EMBER_SANITIZE")
    if sanitize:
        args.append(f"-fsanitize={sanitize}")
    return args


ffibuilder = cffi.FFI()
ffibuilder.cdef(_cdef_text())
ffibuilder.set_source(
    "ember.core._native",
    '#include <stdint.h>\n#include <stddef.h>\n#include "ember.h"\n',
    sources=_sources(),
    include_dirs=[str(NATIVE), scipy_openblas32.get_include_dir()],
    library_dirs=[scipy_openblas32.get_lib_dir()],
    libraries=[scipy_openblas32.get_library()],
    extra_compile_args=_compile_args(),
    extra_link_args=_link_args(),
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
