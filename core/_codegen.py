"""Generated kernels for compile()'s fused elementwise chains.

compile() fuses chains of elementwise ops into FUSED nodes (core/compile.py,
native/kernels/fused.c). The C engine can run such a node by interpreting
its program over chunks of 1,024 elements, one op at a time through L1
buffers; that keeps intermediates out of memory, but each op streams only its
own operands, so a chain that reads four arrays and writes three (an
optimizer's update) never has all of its memory streams going at once. Here a
chain of at least `min_size()` elements becomes one C loop instead, each op
an expression on values in registers, the way XLA and MLX's CPU backend
compile their fusions:

    for (i = lo; i < hi; i++) {
      const float v0 = l0[i];                 // loads: an input of the shape
      const float v1 = l1;                    //        or one element
      float v2; { const float x = v0; v2 = (em_expf(x)); }
      float v3; { const float x = v2, y = v1; v3 = (x * y); }
      o0[i] = v3;
    }

The expressions are not written here: each comes from the interpreter's own
loop for that op and class (em_ew_expr_of: unary.c and binary.c record the
text of every loop they define as one expression), and the generated file
includes the helpers those loops call (native/kernels/ew_inline.h). Compiled
without contraction (-std=c11), a generated kernel gives the interpreter's
bits; tests/test_codegen.py checks it op by op.

The source is compiled with the system's C compiler (CC, else Python's, else
cc) at -O3 for the machine it runs on, and the shared library is cached on
disk under a hash of the source, the flags and the compiler
(EMBER_KERNEL_CACHE, else $XDG_CACHE_HOME/ember/kernels, else
~/.cache/ember/kernels), so a program traced again, in this process or a
later one, loads it without compiling. Where there is no compiler, or no
headers (setup.py ships them as ember/core/_include), or a compile
fails, the chain is interpreted: same results, slower. EMBER_CODEGEN=0 turns
generation off; EMBER_CODEGEN_MIN_SIZE sets the smallest chain (in elements
of one output) worth a compile (default 65,536: below that the chain is
overhead-bound and the interpreter is as fast).
"""
import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path

from ._ffi import ffi, lib

# compute classes, as native/kernels/classes.h numbers them
_CTYPE = {0: "uint8_t", 1: "int64_t", 2: "uint64_t", 3: "float", 4: "double", 5: "c64"}
_REAL_CLASSES = (0, 1, 2, 3, 4)
# storage types of the dtypes a load may read (em_load's conversions from the
# real ones are plain C casts, or != 0 into the bool class)
DTYPE_CTYPE = {"bool": "uint8_t", "uint8": "uint8_t", "int8": "int8_t", "uint16": "uint16_t",
               "int16": "int16_t", "uint32": "uint32_t", "int32": "int32_t",
               "uint64": "uint64_t", "int64": "int64_t", "float32": "float", "float64": "double",
               "complex64": "c64"}
# the headers a generated kernel includes: shipped beside this file by an
# installation (setup.py), else in the source tree (an editable install)
_INCLUDE = next((d for d in (Path(__file__).resolve().parent / "_include",
                             Path(__file__).resolve().parent.parent / "native" / "kernels")
                 if (d / "ew_inline.h").is_file()), None)
_FLAGS = ["-std=c11", "-O3", "-march=native", "-fno-math-errno", "-fPIC", "-shared"]


def converts(src_ctype, cls):
    """Whether a cast from src_ctype into class cls is generated: the casts of
    em_load and astype, between real types, except float to integer (out of
    range, that cast is not defined in C, and the instructions that the
    interpreter's and a generated loop's vector widths pick may disagree)."""
    return (cls in _REAL_CLASSES and src_ctype != "c64"
            and not (src_ctype in ("float", "double") and cls in (1, 2)))


def _cast(value, src_ctype, cls):
    if cls == 0:
        return f"(uint8_t)({value} != 0)"
    return f"({_CTYPE[cls]})({value})"


_lock = threading.Lock()
_loaded = {}      # source hash -> kernel index (the libraries stay loaded for good)
_libraries = []
_compiler = None  # (argv0, version text), found once
last_failure = None  # why the last kernel could not be built, for inspection


def enabled():
    return os.environ.get("EMBER_CODEGEN", "1") not in ("0", "") and _find_compiler() is not None


def min_size():
    return int(os.environ.get("EMBER_CODEGEN_MIN_SIZE", 65536))


def _find_compiler():
    global _compiler
    if _compiler is None:
        candidates = [os.environ.get("CC"), (sysconfig.get_config_var("CC") or "").split(" ")[0],
                      "cc", "gcc"]
        found = ("", "")
        for cc in candidates if _INCLUDE else []:
            path = cc and shutil.which(cc)
            if not path:
                continue
            try:
                version = subprocess.run([path, "--version"], capture_output=True, text=True,
                                         timeout=30).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            found = (path, version)
            break
        _compiler = found
    return _compiler[0] or None


@functools.lru_cache(maxsize=None)
def _machine():
    """What -march=native compiles for: a library built on one CPU may not run
    on another (a home directory shared across a cluster), so the CPU's model
    and feature flags are part of the cache key."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = [l for l in f if l.startswith(("model name", "flags", "Features"))]
        return "".join(sorted(set(lines)))
    except OSError:
        import platform
        return f"{platform.machine()} {platform.processor()}"


def _cache_dir():
    root = os.environ.get("EMBER_KERNEL_CACHE")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "ember", "kernels")
    try:
        os.makedirs(root, exist_ok=True)
        if os.access(root, os.W_OK):
            return root
    except OSError:
        pass
    return _temporary_cache()


@functools.lru_cache(maxsize=None)
def _temporary_cache():
    """Where the cache cannot be written: one directory for the process."""
    return tempfile.mkdtemp(prefix="ember-kernels-")


def _expr(prim, nargs, cls):
    """(expression, operand C type, result C type, result class) of an op's loop, or None."""
    e, a, b = ffi.new("char**"), ffi.new("char**"), ffi.new("char**")
    out_cls = lib.em_ew_expr_of(prim, nargs, cls, e, a, b)
    if out_cls < 0:
        return None
    return ffi.string(e[0]).decode(), ffi.string(a[0]).decode(), ffi.string(b[0]).decode(), out_cls


def source(loads, code, out_slots):
    """The C source of a fused program, or None where an op has no expression.

    loads: (class, kind, C type of the input's dtype) per load, kind 1 for an
    input of the output's shape, 0 for one element, R >= 2 for a row of R
    elements broadcast along the output's leading axes (one R per program);
    code: (prim, out class, a, b, c) per instruction over
    slots (loads first); out_slots: the slot of each output."""
    cls_of = [c for c, _, _ in loads]
    body = []
    for prim, out_cls, a, b, c in code:
        args = [r for r in (a, b, c) if r >= 0]
        if prim == lib.EM_P_ASTYPE:
            src = _CTYPE[cls_of[a]]
            if cls_of[a] not in _REAL_CLASSES or not converts(src, out_cls):
                return None
            slot = len(cls_of)
            body.append(f"    const {_CTYPE[out_cls]} v{slot} = {_cast(f'v{a}', src, out_cls)};")
            cls_of.append(out_cls)
            continue
        if prim == lib.EM_P_WHERE:
            found = _expr(prim, 3, cls_of[b])
        else:
            found = _expr(prim, len(args), cls_of[a])
        if found is None or found[3] != out_cls:
            return None
        expr, in_t, out_t, _ = found
        slot = len(cls_of)
        if prim == lib.EM_P_WHERE:
            bind = f"const uint8_t c = v{a}; const {in_t} x = v{b}, y = v{c};"
        elif len(args) == 2:
            bind = f"const {in_t} x = v{a}, y = v{b};"
        else:
            bind = f"const {in_t} x = v{a};"
        body.append(f"    {_CTYPE[out_cls]} v{slot}; {{ {bind} v{slot} = ({expr}); }}")
        cls_of.append(out_cls)
    head, loop_loads = [], []
    rows = {kind for _, kind, _ in loads if kind >= 2}
    if len(rows) > 1:
        return None
    for k, (cls, kind, src) in enumerate(loads):
        t = _CTYPE[cls]
        value = f"l{k}" if kind == 0 else f"l{k}[{'i' if kind == 1 else 'j'}]"
        if src != t:  # a load that converts, as em_load does
            if not converts(src, cls):
                return None
            value = _cast(value, src, cls)
        if kind == 0:
            head.append(f"  const {src} l{k} = *(const {src}*)in[{k}];")
        else:
            head.append(f"  const {src}* l{k} = (const {src}*)in[{k}];")
        loop_loads.append(f"    const {t} v{k} = {value};")
    stores = []
    for k, s in enumerate(out_slots):
        t = _CTYPE[cls_of[s]]
        head.append(f"  {t}* o{k} = ({t}*)out[{k}];")
        stores.append(f"    o{k}[i] = v{s};")
    # an output may share its buffer with an input (a donated buffer), at
    # the same index only: no dependence between iterations
    inner = ["#pragma GCC ivdep", *loop_loads, *body, *stores]
    if rows:
        # inputs broadcast along the leading axes (a bias): j walks their row
        # of R elements beside i, in runs that end where the row does
        (r,) = rows
        loop = [f"  const int64_t R = {r};",
                "  for (int64_t i = lo; i < hi;) {",
                "    int64_t j = i % R;",
                "    const int64_t end = hi - i < R - j ? hi : i + (R - j);",
                inner[0],
                "  for (; i < end; i++, j++) {",
                *inner[1:],
                "  }",
                "  }"]
    else:
        loop = [inner[0], "  for (int64_t i = lo; i < hi; i++) {", *inner[1:], "  }"]
    return "\n".join([
        "/* generated by ember.core._codegen from a fused program */",
        '#include "ew_inline.h"',
        "void ember_fused_kernel(int64_t lo, int64_t hi, const void* const* in, void* const* out);",
        "void ember_fused_kernel(int64_t lo, int64_t hi, const void* const* in, void* const* out) {",
        *head, *loop,
        "}",
        "",
    ])


def kernel(loads, code, out_slots):
    """The index of the registered kernel for this program (see source), or
    None where it cannot be generated; compiles at most once per source."""
    global last_failure
    if not enabled():
        return None
    src = source(loads, code, out_slots)
    if src is None:
        return None
    key = hashlib.sha256("\0".join([src, " ".join(_FLAGS), _compiler[1], sys.platform,
                                    _machine()]).encode()).hexdigest()[:32]
    with _lock:
        if key in _loaded:
            return _loaded[key]
        directory = _cache_dir()
        so_path = os.path.join(directory, f"fused-{key}.so")
        if not os.path.exists(so_path):
            try:
                _build(src, so_path, directory)
            except (OSError, subprocess.SubprocessError, RuntimeError) as e:
                last_failure = str(e)
                _loaded[key] = None
                return None
        try:
            library = ctypes.CDLL(so_path)
        except OSError as e:  # a damaged file in the cache: interpreted, and reported
            last_failure = f"loading {so_path}: {e}"
            _loaded[key] = None
            return None
        address = ctypes.cast(library.ember_fused_kernel, ctypes.c_void_p).value
        index = lib.em_fused_register(ffi.cast("void*", address))
        if index < 0:
            last_failure = "the table of generated kernels is full"
            return None
        _libraries.append(library)
        _loaded[key] = index
        return index


def _build(src, so_path, directory):
    """Compiles src into so_path; written under a temporary name, then renamed,
    so that a reader never loads a half-written library."""
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        c_path = os.path.join(tmp, "kernel.c")
        out = os.path.join(tmp, "kernel.so")
        with open(c_path, "w") as f:
            f.write(src)
        cmd = [_compiler[0], *_FLAGS, "-I", str(_INCLUDE), c_path, "-o", out, "-lm"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
        os.replace(out, so_path)
