"""Saving and loading arrays: .npy, .npz and .safetensors, as mlx.core does.

    em.save("w", a)                       # writes w.npy
    em.savez("ws", a, b=b)                # ws.npz holding arr_0.npy and b.npy
    em.save_safetensors("m", {"w": a}, metadata={"step": "10"})
    em.load("m.safetensors", return_metadata=True)   # ({"w": a}, {"step": "10"})

The formats are written and parsed here in plain Python (struct, json,
zipfile); numpy only turns an array's buffer into bytes and back. Design:

- Names: like mlx.core, each save function appends its extension when the
  path lacks it; `load` picks the format from the extension unless `format`
  is given. Binary file objects work too (then nothing is appended).
- bfloat16: numpy has no bfloat16, so .npy/.npz store its raw 16-bit
  patterns with descr '<V2', exactly as MLX does (np.load gives a 'V2' array;
  `.view(ml_dtypes.bfloat16)` reads it). Loading '<V2' gives bfloat16 back.
  Safetensors has BF16 natively. The bits travel untouched both ways: out
  through float32 (bfloat16 -> float32 is exact; its top 16 bits are the
  bfloat16), in straight from the bits, so even NaN payloads survive.
- complex64 is C64 in safetensors (MLX's extension of the spec).
- Saving to a path writes a temporary file beside it and renames it into
  place, so a save that fails midway leaves any earlier file untouched and
  no partial file under the target name.
- Loading checks every header field against the bytes actually present; a
  malformed or truncated file raises ValueError naming the file, never reads
  past the data or allocates what a corrupt header claims.
"""
import ast
import io as _pyio
import json
import os
import re
import struct
import uuid
import zipfile
from typing import Optional

import numpy as np

from . import dtypes as dt
from ._ffi import ffi, lib
from .array import _ViewHolder, _check, array, asarray

# ---- dtype tables ----

_NPY_CODE = {  # ember dtype -> numpy array-protocol kind and size
    dt.bool_: "b1", dt.uint8: "u1", dt.uint16: "u2", dt.uint32: "u4", dt.uint64: "u8",
    dt.int8: "i1", dt.int16: "i2", dt.int32: "i4", dt.int64: "i8",
    dt.float16: "f2", dt.float32: "f4", dt.float64: "f8", dt.complex64: "c8",
    dt.bfloat16: "V2",
}
_FROM_NPY_CODE = {v: k for k, v in _NPY_CODE.items()}

_ST_NAME = {
    dt.bool_: "BOOL", dt.uint8: "U8", dt.uint16: "U16", dt.uint32: "U32", dt.uint64: "U64",
    dt.int8: "I8", dt.int16: "I16", dt.int32: "I32", dt.int64: "I64",
    dt.float16: "F16", dt.float32: "F32", dt.float64: "F64", dt.bfloat16: "BF16",
    dt.complex64: "C64",
}
_FROM_ST_NAME = {v: k for k, v in _ST_NAME.items()}

_NPY_MAGIC = b"\x93NUMPY"
_ST_MAX_HEADER = 100_000_000  # the safetensors library's own limit


class _Malformed(ValueError):
    """A problem with a file's contents; `load` adds the file's name."""


# ---- array buffers at the edge ----

def _element_view(a: array) -> np.ndarray:
    """A read-only numpy view of evaluated `a`'s buffer (no copy, strides kept);
    bfloat16 shows its raw 16-bit patterns as uint16, so no conversion runs."""
    if a.dtype != dt.bfloat16:
        return np.asarray(a)
    a._evaluated()
    holder = _ViewHolder(a, a.itemsize, a.ndim, readonly=True)
    holder.__array_interface__["typestr"] = "<u2"
    return np.asarray(holder)


def _array_bytes(a) -> np.ndarray:
    """The elements of `a` (an ember or numpy array) in C order, little-endian,
    as raw bytes: a view of the buffer when it is row-contiguous, else one copy
    of this array."""
    if isinstance(a, np.ndarray):  # a numpy leaf of a checkpoint
        x = np.ascontiguousarray(a.view(np.uint16) if a.dtype.name == "bfloat16" else a)
    else:
        x = np.ascontiguousarray(_element_view(a))
    if x.dtype.byteorder == ">":
        x = x.astype(x.dtype.newbyteorder("<"))
    return x.reshape(-1).view(np.uint8)


def _write_bytes(f, data: np.ndarray, chunk_bytes: int = 1 << 26) -> None:
    """Writes a uint8 array to f in chunks (no single write of gigabytes)."""
    for start in range(0, len(data), chunk_bytes):
        f.write(data[start:start + chunk_bytes])


def _write_array(f, a) -> None:
    """Streams `a`'s bytes (as _array_bytes gives them) into f."""
    _write_bytes(f, _array_bytes(a))


def _array_from_bytes(buf, dtype: dt.Dtype, shape: tuple, big_endian=False) -> array:
    """A new ember array of `dtype` and `shape` holding the bytes in `buf`."""
    if dtype == dt.bfloat16:
        bits = np.frombuffer(buf, dtype=">u2" if big_endian else "<u2")
        bits = bits.astype(np.uint16).reshape(shape)  # a native, C-ordered copy
        data = ffi.from_buffer("char[]", bits) if bits.size else ffi.NULL
        return _check(lib.em_from_data(data, lib.EM_BFLOAT16, bits.ndim, list(bits.shape),
                                       ffi.NULL))
    native = dt.to_numpy_dtype(dtype)
    x = np.frombuffer(buf, dtype=native.newbyteorder(">" if big_endian else "<"))
    return array(x.astype(native, copy=False).reshape(shape), dtype)


def _check_shape(shape) -> tuple:
    if not isinstance(shape, (list, tuple)) or not all(
            type(n) is int and 0 <= n < 2 ** 63 for n in shape):
        raise _Malformed(f"shape must be a sequence of non-negative integers, got {shape!r}")
    return tuple(shape)


def _num_bytes(dtype: dt.Dtype, shape: tuple) -> int:
    n = dtype.size
    for d in shape:
        n *= d
    return n


# ---- .npy ----

def _npy_header(a: array) -> bytes:
    code = _NPY_CODE[a.dtype]
    descr = ("|" if code[1] == "1" else "<") + code
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple(a.shape)!r}, }}"
    # numpy pads the header with spaces and a newline so the data starts on a
    # 64-byte boundary; version 2.0 only when the length needs 4 bytes.
    for version, length_format in ((1, "<H"), (2, "<I")):
        prefix = len(_NPY_MAGIC) + 2 + struct.calcsize(length_format)
        total = -(-(prefix + len(text) + 1) // 64) * 64
        header = (text + " " * (total - prefix - len(text) - 1) + "\n").encode("latin1")
        if len(header) < 2 ** (8 * struct.calcsize(length_format)):
            return _NPY_MAGIC + bytes([version, 0]) + struct.pack(length_format,
                                                                  len(header)) + header
    raise ValueError(f"[save] array of shape {a.shape} has too many dimensions for .npy")


def _write_npy(f, a: array) -> None:
    f.write(_npy_header(a))
    f.write(_array_bytes(a))


def _parse_npy(data: bytes) -> array:
    if data[:6] != _NPY_MAGIC:
        raise _Malformed("not a .npy file (bad magic string)")
    if len(data) < 10:
        raise _Malformed("truncated .npy header")
    version = data[6]
    if version == 1:
        (length,), start = struct.unpack_from("<H", data, 8), 10
    elif version in (2, 3):
        if len(data) < 12:
            raise _Malformed("truncated .npy header")
        (length,), start = struct.unpack_from("<I", data, 8), 12
    else:
        raise _Malformed(f"unsupported .npy format version {version}.{data[7]}")
    if start + length > len(data):
        raise _Malformed(f".npy header of {length} bytes runs past the end of the file")
    text = data[start:start + length].decode("utf8" if version == 3 else "latin1")
    try:
        header = ast.literal_eval(text)  # numpy's own way: literals only, no code runs
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        raise _Malformed(f"unreadable .npy header {text[:80]!r}") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise _Malformed(f"the .npy header must hold descr, fortran_order and shape, "
                         f"got {text[:80]!r}")
    descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
    match = re.fullmatch(r"([<>|=]?)([a-zA-Z]\d+)", descr) if isinstance(descr, str) else None
    if match is None or match[2] not in _FROM_NPY_CODE:
        raise _Malformed(f"unsupported .npy dtype {descr!r}")
    if not isinstance(fortran, bool):
        raise _Malformed(f"fortran_order must be True or False, got {fortran!r}")
    dtype, shape = _FROM_NPY_CODE[match[2]], _check_shape(shape)
    body = memoryview(data)[start + length:]
    if len(body) != _num_bytes(dtype, shape):
        raise _Malformed(f"expected {_num_bytes(dtype, shape)} bytes of data for shape "
                         f"{shape} of {dtype.name}, found {len(body)} (truncated?)")
    if fortran:  # column-major data: read it reversed, then transpose
        return _array_from_bytes(body, dtype, shape[::-1], match[1] == ">").T
    return _array_from_bytes(body, dtype, shape, match[1] == ">")


# ---- .npz ----

def _write_npz(f, arrays: dict, compressed: bool) -> None:
    mode = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(f, "w", compression=mode, allowZip64=True) as archive:
        for name, a in arrays.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                _write_npy(member, a)


def _parse_npz(data: bytes) -> dict:
    try:
        with zipfile.ZipFile(_pyio.BytesIO(data)) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
    except Exception as e:  # noqa: BLE001  zipfile meets corrupt bytes with many kinds
        # of exception (BadZipFile, zlib.error, EOFError, struct.error, ...); the
        # data is already in memory, so none of them is a real I/O failure.
        raise _Malformed(f"not a readable .npz archive ({e})") from None
    out = {}
    for name, member in members.items():
        key = name[:-4] if name.endswith(".npy") else name
        try:
            out[key] = _parse_npy(member)
        except _Malformed as e:
            raise _Malformed(f"member {name!r}: {e}") from None
    return out


# ---- .safetensors ----

def _safetensors_order(arrays: dict) -> list:
    """Names in file order: largest items first, so that after a header padded
    to 8 bytes every tensor starts aligned to its element size (the safetensors
    library's layout). `arrays` maps names to anything with dtype and shape."""
    return sorted(arrays, key=lambda k: (-arrays[k].dtype.size, k))


def _safetensors_header(entries, metadata: Optional[dict]) -> bytes:
    """The length prefix and JSON header for [(name, dtype, shape), ...] stored
    back to back in that order."""
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape in entries:
        nbytes = _num_bytes(dtype, tuple(shape))
        header[name] = {"dtype": _ST_NAME[dtype], "shape": list(shape),
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


def _write_safetensors(f, arrays: dict, metadata: Optional[dict]) -> None:
    names = _safetensors_order(arrays)
    f.write(_safetensors_header([(n, arrays[n].dtype, arrays[n].shape) for n in names],
                                metadata))
    for name in names:
        _write_array(f, arrays[name])


def _parse_safetensors(data: bytes):
    if len(data) < 8:
        raise _Malformed("too short for a safetensors header")
    (length,) = struct.unpack_from("<Q", data, 0)
    if length > _ST_MAX_HEADER or 8 + length > len(data):
        raise _Malformed(f"header length {length} runs past the end of the file "
                         f"({len(data)} bytes)")
    try:
        header = json.loads(data[8:8 + length].decode("utf8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _Malformed(f"header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise _Malformed("header must be a JSON object")
    metadata = header.pop("__metadata__", {})
    if metadata is None:  # MLX writes null when there is none
        metadata = {}
    if not isinstance(metadata, dict) or not all(
            isinstance(v, str) for v in metadata.values()):
        raise _Malformed("__metadata__ must map strings to strings")
    body = memoryview(data)[8 + length:]
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise _Malformed(f"tensor {name!r}: expected dtype, shape and data_offsets")
        if info["dtype"] not in _FROM_ST_NAME:
            raise _Malformed(f"tensor {name!r}: unsupported dtype {info['dtype']!r}")
        dtype, shape = _FROM_ST_NAME[info["dtype"]], _check_shape(info["shape"])
        offsets = info["data_offsets"]
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(type(o) is int for o in offsets) and 0 <= offsets[0] <= offsets[1]):
            raise _Malformed(f"tensor {name!r}: bad data_offsets {offsets!r}")
        if offsets[1] - offsets[0] != _num_bytes(dtype, shape):
            raise _Malformed(f"tensor {name!r}: data_offsets {offsets} do not hold shape "
                             f"{list(shape)} of {info['dtype']}")
        entries.append((offsets, name, dtype, shape))
    # As the safetensors library insists: tensors tile the data exactly, no
    # gaps, no overlaps, nothing past the end.
    end = 0
    for (begin, stop), name, _, _ in sorted(entries):
        if begin != end:
            raise _Malformed(f"tensor {name!r} starts at byte {begin}, expected {end}")
        end = stop
    if end != len(body):
        raise _Malformed(f"tensors cover {end} bytes of data but the file holds "
                         f"{len(body)} (truncated or padded)")
    arrays = {name: _array_from_bytes(body[b:e], dtype, shape)
              for (b, e), name, dtype, shape in entries}
    return arrays, metadata


# ---- files ----

def _is_path(file) -> bool:
    return isinstance(file, (str, os.PathLike))


def _with_extension(file, extension: str):
    if not _is_path(file):
        return file
    path = os.fspath(file)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    return path if path.endswith(extension) else path + extension


def _write(file, write) -> None:
    """Runs write(f) into the file object, or atomically into the path."""
    if not _is_path(file):
        write(file)
        return
    directory, base = os.path.split(os.path.abspath(file))
    temp = os.path.join(directory, f".{base}.{uuid.uuid4().hex[:12]}.tmp")
    # os.open with 0o666 keeps the user's umask, as a plain open() would.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(temp, file)
    except BaseException:
        os.unlink(temp)
        raise


def _as_arrays(where: str, arrays: dict) -> dict:
    out = {}
    for name, value in arrays.items():
        if not isinstance(name, str):
            raise ValueError(f"[{where}] array names must be strings, got {name!r}")
        out[name] = asarray(value)
    return out


def save(file, arr) -> None:
    """Saves one array to a .npy file (".npy" is appended when missing)."""
    a = asarray(arr)
    _write(_with_extension(file, ".npy"), lambda f: _write_npy(f, a))


def _savez(where, file, args, kwargs, compressed) -> None:
    arrays = _as_arrays(where, kwargs)
    for i, value in enumerate(args):
        if f"arr_{i}" in arrays:
            raise ValueError(f"[{where}] cannot use un-named variables and keyword arr_{i}")
        arrays[f"arr_{i}"] = asarray(value)
    _write(_with_extension(file, ".npz"), lambda f: _write_npz(f, arrays, compressed))


def savez(file, *args, **kwargs) -> None:
    """Saves arrays to an uncompressed .npz archive: positional ones as
    arr_0, arr_1, ..., keyword ones under their names (".npz" appended)."""
    _savez("savez", file, args, kwargs, compressed=False)


def savez_compressed(file, *args, **kwargs) -> None:
    """Like savez, with each member deflate-compressed."""
    _savez("savez_compressed", file, args, kwargs, compressed=True)


def save_safetensors(file, arrays: dict, metadata: Optional[dict] = None) -> None:
    """Saves a dict of named arrays to a .safetensors file (".safetensors"
    appended when missing), with optional string-to-string metadata."""
    arrays = _as_arrays("save_safetensors", arrays)
    if "__metadata__" in arrays:
        raise ValueError("[save_safetensors] '__metadata__' is reserved, not an array name")
    if metadata is not None and not (isinstance(metadata, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise ValueError("[save_safetensors] metadata must be a dictionary with string keys "
                         "and values")
    _write(_with_extension(file, ".safetensors"),
           lambda f: _write_safetensors(f, arrays, metadata))


_PARSERS = {"npy": _parse_npy, "npz": _parse_npz, "safetensors": _parse_safetensors}


def load(file, format: Optional[str] = None, return_metadata: bool = False):
    """Loads a .npy file (an array), a .npz or .safetensors file (a dict of
    arrays). With return_metadata (safetensors only) returns (arrays, metadata).
    The format comes from the file's extension unless `format` names it."""
    name = os.fspath(file) if _is_path(file) else getattr(file, "name", "<file object>")
    if format is None:
        base = os.path.basename(os.fsdecode(name)) if isinstance(name, (str, bytes)) else ""
        if "." not in base:
            raise ValueError(f"[load] could not infer the file format of {name!r} from its "
                             "extension; pass format=")
        format = base.rsplit(".", 1)[1]
    if format not in _PARSERS:
        raise ValueError(f"[load] unknown file format {format!r}")
    if return_metadata and format != "safetensors":
        raise ValueError(f"[load] metadata not supported for format {format}")
    if _is_path(file):
        with open(file, "rb") as f:
            data = f.read()
    else:
        data = file.read()
    try:
        result = _PARSERS[format](data)
    except _Malformed as e:
        raise ValueError(f"[load] {name}: {e}") from None
    if format == "safetensors":
        return result if return_metadata else result[0]
    return result
