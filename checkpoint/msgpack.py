"""A MessagePack decoder in plain Python, enough to read flax checkpoints
without depending on the msgpack package.

    unpackb(data)   # nil, bool, int, float, str, bin, array, map, ext

Follows the MessagePack specification: big-endian numbers; str as UTF-8
text; bin as memoryview slices of the input (no copy: array payloads are
large); ext as ExtType(code, data) for the caller to interpret. Malformed
input raises ValueError with the byte offset, never reads past the end,
never allocates by a length the data cannot back, and nests at most
MAX_DEPTH containers deep (no RecursionError).
"""
import struct
from typing import NamedTuple

MAX_DEPTH = 200  # two Python frames a level: well inside the recursion limit


class ExtType(NamedTuple):
    code: int
    data: memoryview


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data):
        self.data = memoryview(data).cast("B")
        self.pos = 0

    def take(self, n: int) -> memoryview:
        start = self.pos
        if n > len(self.data) - start:
            raise ValueError(f"[msgpack] {n} bytes asked for at offset {start} run past the "
                             f"end of the data ({len(self.data)} bytes)")
        self.pos = start + n
        return self.data[start:start + n]

    def unpack(self, fmt: str, size: int):
        return struct.unpack(fmt, self.take(size))[0]


# fixed-size headers: first byte -> (struct format of the length or value, size)
_UINT = {0xcc: (">B", 1), 0xcd: (">H", 2), 0xce: (">I", 4), 0xcf: (">Q", 8)}
_INT = {0xd0: (">b", 1), 0xd1: (">h", 2), 0xd2: (">i", 4), 0xd3: (">q", 8)}
_FLOAT = {0xca: (">f", 4), 0xcb: (">d", 8)}
_STR = {0xd9: (">B", 1), 0xda: (">H", 2), 0xdb: (">I", 4)}
_BIN = {0xc4: (">B", 1), 0xc5: (">H", 2), 0xc6: (">I", 4)}
_ARRAY = {0xdc: (">H", 2), 0xdd: (">I", 4)}
_MAP = {0xde: (">H", 2), 0xdf: (">I", 4)}
_EXT = {0xc7: (">B", 1), 0xc8: (">H", 2), 0xc9: (">I", 4)}
_FIXEXT = {0xd4: 1, 0xd5: 2, 0xd6: 4, 0xd7: 8, 0xd8: 16}


def _str(raw: memoryview, at: int) -> str:
    try:
        return bytes(raw).decode("utf8")
    except UnicodeDecodeError:
        raise ValueError(f"[msgpack] invalid UTF-8 in str at offset {at}") from None


def _decode(r: _Reader, depth: int):
    at = r.pos
    b = r.unpack(">B", 1)
    if b <= 0x7f:
        return b
    if b >= 0xe0:
        return b - 0x100
    if 0xa0 <= b <= 0xbf:
        return _str(r.take(b & 0x1f), at)
    if 0x90 <= b <= 0x9f:
        return _array(r, b & 0x0f, depth, at)
    if 0x80 <= b <= 0x8f:
        return _map(r, b & 0x0f, depth, at)
    if b == 0xc0:
        return None
    if b == 0xc2:
        return False
    if b == 0xc3:
        return True
    if b in _UINT:
        return r.unpack(*_UINT[b])
    if b in _INT:
        return r.unpack(*_INT[b])
    if b in _FLOAT:
        return r.unpack(*_FLOAT[b])
    if b in _STR:
        return _str(r.take(r.unpack(*_STR[b])), at)
    if b in _BIN:
        return r.take(r.unpack(*_BIN[b]))
    if b in _ARRAY:
        return _array(r, r.unpack(*_ARRAY[b]), depth, at)
    if b in _MAP:
        return _map(r, r.unpack(*_MAP[b]), depth, at)
    if b in _EXT:
        n = r.unpack(*_EXT[b])
        code = r.unpack(">b", 1)
        return ExtType(code, r.take(n))
    if b in _FIXEXT:
        code = r.unpack(">b", 1)
        return ExtType(code, r.take(_FIXEXT[b]))
    raise ValueError(f"[msgpack] unknown type byte {b:#04x} at offset {at}")


def _check_count(r: _Reader, n: int, per_item: int, at: int):
    # every element takes at least one byte: a count the rest of the data
    # cannot hold is corrupt, and must not size an allocation
    if n * per_item > len(r.data) - r.pos:
        raise ValueError(f"[msgpack] container at offset {at} claims {n} elements, more than "
                         "the remaining data can hold")


def _array(r: _Reader, n: int, depth: int, at: int) -> list:
    if depth >= MAX_DEPTH:
        raise ValueError(f"[msgpack] nesting deeper than {MAX_DEPTH} at offset {at}")
    _check_count(r, n, 1, at)
    out = []
    for _ in range(n):
        out.append(_decode(r, depth + 1))
    return out


def _map(r: _Reader, n: int, depth: int, at: int) -> dict:
    if depth >= MAX_DEPTH:
        raise ValueError(f"[msgpack] nesting deeper than {MAX_DEPTH} at offset {at}")
    _check_count(r, n, 2, at)
    out = {}
    for _ in range(n):
        key_at = r.pos
        key = _decode(r, depth + 1)
        if isinstance(key, memoryview):
            key = bytes(key)
        try:
            out[key] = _decode(r, depth + 1)
        except TypeError:
            raise ValueError(f"[msgpack] map key at offset {key_at} is not hashable "
                             f"({type(key).__name__})") from None
    return out


def unpackb(data):
    """The single object encoded in `data` (bytes-like); trailing bytes are an error."""
    r = _Reader(data)
    value = _decode(r, 0)
    if r.pos != len(r.data):
        raise ValueError(f"[msgpack] {len(r.data) - r.pos} bytes of trailing data after the "
                         f"object at offset {r.pos}")
    return value
