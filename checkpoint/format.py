"""One checkpoint on disk: its layout, checksums, and the atomic directory.

A checkpoint is a directory:

    checkpoint.json             tree structure, leaf metadata, checksums
    arrays-00000.safetensors    array bytes, about `shard_bytes` per file at most
    arrays-00001.safetensors    ...

The shards are plain safetensors files (any safetensors reader opens them,
bfloat16 included); checkpoint.json is the index:

    {"format": "ember.checkpoint", "version": 1, "checksum": "crc32c-4lane", "tree": NODE,
     "arrays": [{"path": "params.w", "file": "arrays-00000.safetensors",
                 "offset": 136, "nbytes": 48, "dtype": "float32", "shape": [3, 4],
                 "kind": "ember", "checksum": 2911...}, ...]}

    NODE = {"dict": [[key, NODE], ...]}        keys: str or int, in order
         | {"list": [NODE, ...]} | {"tuple": [NODE, ...]}
         | {"namedtuple": "Name", "fields": [...], "items": [NODE, ...]}
         | {"array": i}                          i indexes "arrays"
         | {"scalar": "none" | "bool" | "int" | "float" | "complex" | "str" | "numpy",
            "value": ..., "dtype": "<f8" (numpy only)}

Floats are stored as float.hex() so every bit (nan, inf, -0.0) survives.
Nothing is pickled and loading never imports or runs anything named in a
file: a NamedTuple comes back as its field dict unless a target supplies the
class. Array kinds: "ember" leaves come back as ember arrays, "numpy" ones
(np.ndarray leaves) as numpy arrays.

Saving streams: each array's bytes go from the engine buffer (a zero-copy
view) straight to the file while a helper thread computes their checksum; no
second copy of the tree is built. Loading reads each array straight into a
new engine buffer (em_uninitialized: no staging copy) and accepts it once its
length and checksum match. The checksum is CRC-32C on four interleaved lanes
(native/checksum.c: the CPU's crc32 instruction at full speed, about three
times zlib.crc32).

Crash safety (`atomic_directory`): everything is written into a hidden
temporary directory beside the target, every file is fsynced, then the
directory, then it is renamed into place and the parent is fsynced. A process
killed at any point leaves either the complete checkpoint under its name or
nothing there (plus a hidden `.NAME.tmp-*` directory the manager can clean).
"""
import contextlib
import json
import os
import queue
import shutil
import threading
import uuid

import numpy as np

from ember.core import array
from ember.core import dtypes as dt
from ember.core import eval as eval_arrays
from ember.core import io as _io
from ember.core._ffi import ffi, lib
from ember.core.array import _check

INDEX_FILE = "checkpoint.json"
CHECKSUM = "crc32c-4lane"  # native/checksum.c defines it
FORMAT_NAME = "ember.checkpoint"
FORMAT_VERSION = 1
DEFAULT_SHARD_BYTES = 1 << 30

_BY_NAME = {d.name: d for d in dt.ALL}
_NUMPY_SCALAR_KINDS = "biufc"


class ArrayRef:
    """Stands for one saved array while a tree is being decoded; load_arrays
    turns the refs that are asked for into arrays."""

    __slots__ = ("index", "path", "dtype", "shape", "kind")

    def __init__(self, index, path, dtype, shape, kind):
        self.index, self.path, self.dtype, self.shape, self.kind = (
            index, path, dtype, shape, kind)

    def __repr__(self):
        return f"ArrayRef({self.path!r}, shape={self.shape}, dtype={self.dtype.name})"


# ---- encoding a tree ----

def _join(path, key):
    return f"{path}.{key}" if path else str(key)


def _is_namedtuple(x):
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _numpy_leaf_dtype(x: np.ndarray, path: str) -> dt.Dtype:
    if x.dtype.name == "bfloat16":
        return dt.bfloat16
    try:
        d = dt.from_numpy_dtype(x.dtype)
    except TypeError:
        d = None
    if d is None or (d != dt.bfloat16 and dt.to_numpy_dtype(d) != x.dtype.newbyteorder("=")):
        raise TypeError(f"[save] numpy array at {path!r} has dtype {x.dtype}, which ember "
                        "cannot store")
    return d


def _float_text(x: float) -> str:
    return float(x).hex()


def _encode_scalar(x, path):
    if isinstance(x, np.generic) and x.dtype.kind in _NUMPY_SCALAR_KINDS:
        value = x.item()
        if x.dtype.kind == "f":
            value = _float_text(value)
        elif x.dtype.kind == "c":
            value = [_float_text(value.real), _float_text(value.imag)]
        return {"scalar": "numpy", "dtype": x.dtype.str, "value": value}
    if x is None:
        return {"scalar": "none"}
    if isinstance(x, bool):
        return {"scalar": "bool", "value": x}
    if isinstance(x, int):
        return {"scalar": "int", "value": int(x)}
    if isinstance(x, float):
        return {"scalar": "float", "value": _float_text(x)}
    if isinstance(x, complex):
        return {"scalar": "complex", "value": [_float_text(x.real), _float_text(x.imag)]}
    if isinstance(x, str):
        return {"scalar": "str", "value": x}
    raise TypeError(f"[save] leaf at {path!r} has type {type(x).__name__}; a checkpoint "
                    "holds ember or numpy arrays, Python scalars, strings, None and numpy "
                    "scalars")


def encode_tree(tree):
    """(index node, [(path, leaf, kind, dtype)]) for `tree`; raises TypeError on
    a leaf or key that cannot be stored, before anything is written."""
    arrays = []

    def encode(node, path):
        if isinstance(node, array):
            arrays.append((path, node, "ember", node.dtype))
            return {"array": len(arrays) - 1}
        if isinstance(node, np.ndarray):
            arrays.append((path, node, "numpy", _numpy_leaf_dtype(node, path)))
            return {"array": len(arrays) - 1}
        if isinstance(node, dict):
            items = []
            for key, child in node.items():
                if not isinstance(key, (str, int)) or isinstance(key, bool):
                    raise TypeError(f"[save] dict key {key!r} at {path or '<root>'!r} must be "
                                    "a str or an int")
                items.append([key, encode(child, _join(path, key))])
            return {"dict": items}
        if _is_namedtuple(node):
            return {"namedtuple": type(node).__name__, "fields": list(node._fields),
                    "items": [encode(c, _join(path, f)) for f, c in zip(node._fields, node)]}
        if isinstance(node, (list, tuple)):
            kind = "list" if isinstance(node, list) else "tuple"
            return {kind: [encode(c, _join(path, i)) for i, c in enumerate(node)]}
        return _encode_scalar(node, path or "<root>")

    return encode(tree, ""), arrays


# ---- writing ----

def _fsync_directory(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path, write):
    """Creates `path`, runs write(f), and fsyncs it before returning."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def checksum(data) -> int:
    """The checksum stored for an array's bytes (a buffer): CRC-32C on four
    interleaved lanes, computed by the engine without holding the GIL."""
    return lib.em_checksum32(ffi.from_buffer(data), len(data), 0)


class _Checksums:
    """Checksums computed on one helper thread, in the order submitted.

    A plain thread, not a ThreadPoolExecutor: that refuses new work once the
    interpreter begins to exit, which is when an AsyncCheckpointer's last save
    may still be writing."""

    class Pending:
        __slots__ = ("value", "error", "done")

        def __init__(self):
            self.value, self.error, self.done = None, None, threading.Event()

        def result(self) -> int:
            self.done.wait()
            if self.error is not None:
                raise self.error
            return self.value

    def __init__(self):
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ember-checksum", daemon=True)
        self._thread.start()

    def _run(self):
        while (item := self._queue.get()) is not None:
            data, pending = item
            try:
                pending.value = checksum(data)
            except BaseException as e:  # noqa: BLE001  handed to the waiting thread
                pending.error = e
            pending.done.set()

    def submit(self, data) -> "Pending":
        pending = self.Pending()
        self._queue.put((data, pending))
        return pending

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._queue.put(None)  # work already queued is finished first
        self._thread.join()


def _plan_shards(arrays, shard_bytes):
    """Array indices grouped into shards of about shard_bytes, in tree order."""
    shards, current, size = [], [], 0
    for i, (_, leaf, _, dtype) in enumerate(arrays):
        nbytes = leaf.size * dtype.size
        if current and size + nbytes > shard_bytes:
            shards.append(current)
            current, size = [], 0
        current.append(i)
        size += nbytes
    if current:
        shards.append(current)
    return shards


def _unique_names(arrays):
    names, seen = [], set()
    for i, (path, _, _, _) in enumerate(arrays):
        name = path or "<root>"
        if name in seen:
            name = f"{name}#{i}"
        seen.add(name)
        names.append(name)
    return names


def write_checkpoint(directory, node, arrays, shard_bytes=DEFAULT_SHARD_BYTES, extra=None):
    """Writes the shards and the index of an encoded tree into `directory`
    (an existing, empty, private directory: the temporary one). `extra` maps
    further file names to JSON-able values written beside the index."""
    eval_arrays([leaf for _, leaf, kind, _ in arrays if kind == "ember"])
    names = _unique_names(arrays)
    records = [None] * len(arrays)
    with _Checksums() as checksums:
        for number, members in enumerate(_plan_shards(arrays, shard_bytes)):
            _write_shard(directory, f"arrays-{number:05d}.safetensors", members, arrays,
                         names, records, checksums)
    for name, value in (extra or {}).items():
        text = json.dumps(value).encode()  # NaN allowed: a diverged loss is a metric too
        _write_file(os.path.join(directory, name), lambda f, t=text: f.write(t))
    index = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "checksum": CHECKSUM,
             "tree": node, "arrays": records}
    text = json.dumps(index, separators=(",", ":")).encode()
    _write_file(os.path.join(directory, INDEX_FILE), lambda f: f.write(text))


def _write_shard(directory, file_name, members, arrays, names, records, checksums):
    """One safetensors file holding arrays[i] for i in members; fills records[i]."""
    # Largest items first: every tensor stays aligned to its element size.
    members = sorted(members, key=lambda i: (-arrays[i][3].size, names[i]))
    header = _io._safetensors_header(
        [(names[i], arrays[i][3], tuple(arrays[i][1].shape)) for i in members],
        {"format": FORMAT_NAME})

    pending = []

    def write(f):
        f.write(header)
        offset = len(header)
        for i in members:
            path, leaf, kind, dtype = arrays[i]
            data = _io._array_bytes(leaf)  # a view of the buffer when contiguous
            # The engine's checksum releases the GIL: it runs beside the writes
            # and the fsync. A copy (of a strided view) is not kept waiting.
            crc = checksums.submit(data)
            source = leaf if kind == "numpy" else _io._element_view(leaf)
            if not np.may_share_memory(data, source):
                crc.result()
            _io._write_bytes(f, data)
            records[i] = {"path": path, "file": file_name, "offset": offset,
                          "nbytes": len(data), "dtype": dtype.name,
                          "shape": list(leaf.shape), "kind": kind}
            pending.append((i, crc))
            offset += len(data)

    _write_file(os.path.join(directory, file_name), write)
    for i, crc in pending:
        records[i]["checksum"] = crc.result()


@contextlib.contextmanager
def atomic_directory(path, overwrite=False):
    """Yields a hidden temporary directory beside `path`; when the block ends
    without an exception, the directory (its files already fsynced) is fsynced
    and renamed to `path`. On an exception it is removed and `path` untouched.

    With overwrite, an existing `path` is first renamed aside and removed after
    the new one is in place (a crash between the two renames leaves neither
    under the name, the old one intact as a hidden `.NAME.old-*` directory)."""
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(path)
    if os.path.exists(path) and not overwrite:
        raise ValueError(f"[save] destination {path} already exists")
    os.makedirs(parent, exist_ok=True)
    temp = os.path.join(parent, f".{name}.tmp-{uuid.uuid4().hex[:12]}")
    os.mkdir(temp)
    try:
        yield temp
        _fsync_directory(temp)
        old = None
        if os.path.exists(path):
            old = os.path.join(parent, f".{name}.old-{uuid.uuid4().hex[:12]}")
            os.rename(path, old)
        os.rename(temp, path)
        _fsync_directory(parent)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def remove_directory(path):
    """Deletes a checkpoint so that a crash midway never leaves a partial one
    under its name: it is renamed to a hidden name first, then removed."""
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(path)
    doomed = os.path.join(parent, f".{name}.deleting-{uuid.uuid4().hex[:12]}")
    os.rename(path, doomed)
    _fsync_directory(parent)
    shutil.rmtree(doomed)


def is_temporary(name: str) -> bool:
    """True for the hidden directories atomic_directory and remove_directory use."""
    return name.startswith(".") and any(
        tag in name for tag in (".tmp-", ".old-", ".deleting-"))


# ---- reading ----

def _bad(file, message):
    return ValueError(f"[restore] {file}: {message}")


def read_index(directory):
    """The parsed checkpoint.json of `directory`, checked for its shape."""
    directory = os.fspath(directory)
    file = os.path.join(directory, INDEX_FILE)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"[restore] no checkpoint at {directory}")
    if not os.path.exists(file):
        raise FileNotFoundError(f"[restore] {directory} is not a checkpoint (no {INDEX_FILE})")
    with open(file, "rb") as f:
        data = f.read()
    try:
        index = json.loads(data.decode("utf8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _bad(file, f"not valid JSON ({e}); the index is corrupt or truncated") from None
    if not (isinstance(index, dict) and index.get("format") == FORMAT_NAME
            and isinstance(index.get("arrays"), list) and "tree" in index):
        raise _bad(file, "not an ember checkpoint index")
    if index.get("version") != FORMAT_VERSION:
        raise _bad(file, f"unsupported checkpoint version {index.get('version')!r}")
    if index.get("checksum") != CHECKSUM:
        raise _bad(file, f"unknown checksum {index.get('checksum')!r}")
    for record in index["arrays"]:
        if not (isinstance(record, dict) and record.get("dtype") in _BY_NAME
                and isinstance(record.get("file"), str) and "/" not in record["file"]
                and record["file"] not in ("", ".", "..")
                and record.get("kind") in ("ember", "numpy")
                and type(record.get("offset")) is int and record["offset"] >= 0
                and type(record.get("checksum")) is int
                and isinstance(record.get("shape"), list)
                and all(type(n) is int and n >= 0 for n in record["shape"])):
            raise _bad(file, f"malformed array record {str(record)[:120]}")
        expected = _BY_NAME[record["dtype"]].size * int(np.prod(record["shape"], dtype=object))
        if record.get("nbytes") != expected:
            raise _bad(file, f"array {record.get('path')!r}: nbytes does not match its "
                             "shape and dtype")
    return index


def _decode_float(text, file):
    try:
        return float.fromhex(text)
    except (TypeError, ValueError):
        raise _bad(file, f"bad float {text!r}") from None


def decode_tree(index, directory):
    """The saved tree with an ArrayRef in place of each array (nothing read yet)."""
    file = os.path.join(os.fspath(directory), INDEX_FILE)
    records = index["arrays"]

    def decode(node, path):
        if not isinstance(node, dict) or len(node) == 0:
            raise _bad(file, f"malformed tree node at {path or '<root>'!r}")
        if "array" in node:
            i = node["array"]
            if type(i) is not int or not 0 <= i < len(records):
                raise _bad(file, f"bad array reference at {path!r}")
            r = records[i]
            return ArrayRef(i, r.get("path", path), _BY_NAME[r["dtype"]], tuple(r["shape"]),
                            r["kind"])
        if "dict" in node:
            return {k: decode(c, _join(path, k)) for k, c in node["dict"]}
        if "list" in node:
            return [decode(c, _join(path, i)) for i, c in enumerate(node["list"])]
        if "tuple" in node:
            return tuple(decode(c, _join(path, i)) for i, c in enumerate(node["tuple"]))
        if "namedtuple" in node:
            return {f: decode(c, _join(path, f)) for f, c in zip(node["fields"], node["items"])}
        if "scalar" in node:
            return _decode_scalar(node, file)
        raise _bad(file, f"unknown tree node {str(node)[:80]} at {path or '<root>'!r}")

    try:
        return decode(index["tree"], "")
    except (TypeError, KeyError, ValueError, RecursionError) as e:
        if isinstance(e, ValueError) and str(e).startswith("[restore]"):
            raise
        raise _bad(file, f"malformed tree ({type(e).__name__}: {e})") from None


def _decode_scalar(node, file):
    kind, value = node["scalar"], node.get("value")
    if kind == "none":
        return None
    if kind in ("bool", "int", "str"):
        expected = {"bool": bool, "int": int, "str": str}[kind]
        if type(value) is not expected:
            raise _bad(file, f"scalar {value!r} is not a {kind}")
        return value
    if kind == "float":
        return _decode_float(value, file)
    if kind == "complex":
        return complex(_decode_float(value[0], file), _decode_float(value[1], file))
    if kind == "numpy":
        try:
            dtype = np.dtype(node["dtype"])
        except TypeError:
            dtype = None
        if dtype is None or dtype.kind not in _NUMPY_SCALAR_KINDS:
            raise _bad(file, f"unsupported numpy scalar dtype {node.get('dtype')!r}")
        if dtype.kind == "f":
            value = _decode_float(value, file)
        elif dtype.kind == "c":
            value = complex(_decode_float(value[0], file), _decode_float(value[1], file))
        return dtype.type(value)
    raise _bad(file, f"unknown scalar kind {kind!r}")


def load_arrays(directory, index, refs):
    """{ref.index: array} for the ArrayRefs given, read shard by shard; each
    array's byte range and checksum are checked before it is accepted."""
    directory = os.fspath(directory)
    records = index["arrays"]
    by_file = {}
    for ref in refs:
        by_file.setdefault(records[ref.index]["file"], []).append(ref)
    out = {}
    for name, wanted in by_file.items():
        file = os.path.join(directory, name)
        try:
            f = open(file, "rb", buffering=0)
        except FileNotFoundError:
            raise _bad(file, f"missing; it holds array {wanted[0].path!r}") from None
        with f:
            size = os.fstat(f.fileno()).st_size
            for ref in wanted:
                r = records[ref.index]
                if r["offset"] + r["nbytes"] > size:
                    raise _bad(file, f"array {ref.path!r} needs bytes [{r['offset']}, "
                                     f"{r['offset'] + r['nbytes']}) but the file has {size} "
                                     "(truncated)")
            _read_arrays(f, sorted(wanted, key=lambda x: records[x.index]["offset"]), records,
                         file, out)
    return out


def _read_arrays(f, wanted, records, file, out):
    """Reads each wanted array straight into a new buffer (an engine buffer for
    ember arrays: no staging copy) while a helper thread checksums the ones
    already read (it and the read both release the GIL); an array is accepted
    only once its checksum matches."""
    with _Checksums() as checksums:
        read = []
        for ref in wanted:
            record = records[ref.index]
            value, buffer = _new_leaf(ref)
            f.seek(record["offset"])
            view = memoryview(buffer).cast("B")
            done = 0
            while done < len(view):
                n = f.readinto(view[done:])
                if not n:
                    raise _bad(file, f"array {ref.path!r} ends early (truncated)")
                done += n
            read.append((ref, value, checksums.submit(view)))
        for ref, value, crc in read:
            expected = records[ref.index]["checksum"]
            if crc.result() != expected:
                raise _bad(file, f"array {ref.path!r} fails its checksum ({crc.result():#010x}, "
                                 f"expected {expected:#010x}): the file is corrupt")
            out[ref.index] = value


def _new_leaf(ref):
    """(leaf, writable buffer of its bytes) for a saved array, unfilled."""
    nbytes = ref.dtype.size * int(np.prod(ref.shape, dtype=np.int64))
    if ref.kind == "numpy":
        raw = np.empty(nbytes, np.uint8)
        if ref.dtype == dt.bfloat16:
            import ml_dtypes  # only a file saved from ml_dtypes arrays gets here
            leaf = raw.view("<u2").view(ml_dtypes.bfloat16)
        else:
            leaf = raw.view(dt.to_numpy_dtype(ref.dtype).newbyteorder("<"))
        return leaf.reshape(ref.shape), raw
    leaf = _check(lib.em_uninitialized(ref.dtype.value, len(ref.shape), list(ref.shape)))
    if nbytes == 0:
        return leaf, bytearray()
    return leaf, ffi.buffer(lib.em_data(leaf._p), nbytes)


