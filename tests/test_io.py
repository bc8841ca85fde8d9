"""save / savez / savez_compressed / save_safetensors / load, checked against
numpy's .npy/.npz reader and writer and the safetensors library, in both
directions, for every dtype; and every way a file can be malformed."""
import io
import json
import os
import pathlib
import struct
import zipfile

import ml_dtypes  # registers numpy's bfloat16, which safetensors.numpy needs for BF16
import numpy as np
import pytest
import safetensors
import safetensors.numpy as stnp

import ember.core as em

DTYPES = [em.bool_, em.uint8, em.uint16, em.uint32, em.uint64, em.int8, em.int16, em.int32,
          em.int64, em.float16, em.float32, em.float64, em.bfloat16, em.complex64]
SHAPES = [(), (0,), (3, 0, 2), (7,), (3, 5), (2, 3, 4)]
BY_NAME = {d.name: d for d in DTYPES}


def random_numpy(rng, dtype, shape):
    """Random values of `dtype` (bfloat16 as float32 values that bfloat16 holds
    exactly), with NaN, inf and -0.0 among the floats to test bit exactness."""
    if dtype == em.bool_:
        return np.asarray(rng.random(shape) < 0.5)
    if dtype in (em.float16, em.float32, em.float64, em.bfloat16, em.complex64):
        x = np.asarray(rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape))
        x[rng.random(shape) < 0.1] = np.nan
        x[rng.random(shape) < 0.1] = -np.inf
        x[rng.random(shape) < 0.1] = -0.0
        if dtype == em.complex64:
            return (x + 1j * rng.standard_normal(shape)).astype(np.complex64)
        if dtype == em.bfloat16:  # keep the top 16 bits of each float32
            return (x.astype(np.float32).view(np.uint32) & 0xFFFF0000).view(np.float32)
        return x.astype(str(dtype.name))
    info = np.iinfo(dtype.name)
    return np.asarray(rng.integers(info.min, info.max, shape, dtype=dtype.name, endpoint=True))


def random_pair(rng, dtype, shape):
    """(numpy expectation, ember array holding the same values)."""
    x = random_numpy(rng, dtype, shape)
    return x, em.array(x, dtype)


def bfloat16_bits(x):
    return (np.array(x, np.float32, order="C").view(np.uint32) >> 16).astype(np.uint16)


def assert_same(actual: em.array, expected: np.ndarray, dtype):
    """Same dtype, shape and bytes (so NaNs and -0.0 count)."""
    assert isinstance(actual, em.array)
    assert actual.dtype == dtype
    assert actual.shape == expected.shape
    got = np.ascontiguousarray(np.asarray(actual))
    assert got.tobytes() == np.ascontiguousarray(expected, got.dtype).tobytes()


def as_library_array(x, dtype):
    """The numpy array numpy or safetensors would hold for ember's `dtype`."""
    return x.astype(ml_dtypes.bfloat16) if dtype == em.bfloat16 else x


def assert_library_array(got: np.ndarray, expected: np.ndarray, dtype):
    if dtype == em.bfloat16:  # numpy reads .npy bfloat16 as raw 'V2'; safetensors as bfloat16
        got = got.view(np.uint16)
        expected = bfloat16_bits(expected)
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype
    assert got.tobytes() == np.ascontiguousarray(expected).tobytes()


def ember_views(rng, dtype):
    """Non-contiguous ember arrays with their numpy expectations."""
    x, a = random_pair(rng, dtype, (4, 6))
    yield x.T, a.T
    yield x[::-1], a[::-1]
    yield x[:, ::-2], a[:, ::-2]
    yield x[1:, ::3].T, a[1:, ::3].T
    y, b = random_pair(rng, dtype, (2, 3, 4))
    yield y.transpose(2, 0, 1)[::-1, :, 1:], b.transpose(2, 0, 1)[::-1, :, 1:]


# ---- .npy ----

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_npy_round_trip_and_numpy_reads_it(rng, tmp_path, dtype, shape):
    x, a = random_pair(rng, dtype, shape)
    em.save(tmp_path / "a.npy", a)
    assert_same(em.load(tmp_path / "a.npy"), x, dtype)
    assert_library_array(np.load(tmp_path / "a.npy"), x, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_npy_written_by_numpy_loads(rng, tmp_path, dtype):
    x = random_numpy(rng, dtype, (5, 3))
    np.save(tmp_path / "c.npy", as_library_array(x, dtype))
    assert_same(em.load(str(tmp_path / "c.npy")), x, dtype)
    np.save(tmp_path / "f.npy", np.asfortranarray(as_library_array(x, dtype)))
    assert_same(em.load(tmp_path / "f.npy"), x, dtype)


@pytest.mark.parametrize("dtype", [em.uint16, em.int32, em.int64, em.float32, em.float64,
                                   em.complex64], ids=str)
def test_npy_big_endian_from_numpy(rng, tmp_path, dtype):
    x = random_numpy(rng, dtype, (4, 2))
    np.save(tmp_path / "be.npy", x.astype(x.dtype.newbyteorder(">")))
    assert_same(em.load(tmp_path / "be.npy"), x, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_npy_non_contiguous_views(rng, tmp_path, dtype):
    for i, (x, a) in enumerate(ember_views(rng, dtype)):
        em.save(tmp_path / f"v{i}", a)
        assert_same(em.load(tmp_path / f"v{i}.npy"), x, dtype)
        assert_library_array(np.load(tmp_path / f"v{i}.npy"), x, dtype)


def test_every_bfloat16_bit_pattern_survives(rng, tmp_path):
    # All 65536 patterns, NaN payloads and signalling NaNs included, in random
    # order; they enter and leave through the libraries' own files, since a
    # float32 conversion on the way would quiet the NaNs.
    bits = rng.permutation(np.arange(65536, dtype=np.uint16)).reshape(256, 256)
    np.save(tmp_path / "in.npy", bits.view(ml_dtypes.bfloat16))
    stnp.save_file({"w": bits.view(ml_dtypes.bfloat16)}, tmp_path / "in.safetensors")
    from_npy = em.load(tmp_path / "in.npy")
    from_st = em.load(tmp_path / "in.safetensors")["w"]
    for a in (from_npy, from_st):
        assert a.dtype == em.bfloat16
        np.testing.assert_array_equal(bfloat16_bits(np.asarray(a)), bits)
    em.save(tmp_path / "out", from_st.T)
    em.save_safetensors(tmp_path / "out", {"w": from_npy[::-1]})
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy").view(np.uint16), bits.T)
    np.testing.assert_array_equal(
        stnp.load_file(tmp_path / "out.safetensors")["w"].view(np.uint16), bits[::-1])


def test_save_appends_extensions_as_mlx_does(rng, tmp_path):
    x, a = random_pair(rng, em.float32, (3,))
    em.save(str(tmp_path / "w"), a)
    em.save(tmp_path / "already.npy", a)
    em.savez(tmp_path / "z", a)
    em.savez_compressed(str(tmp_path / "zc.npz"), a)
    em.save_safetensors(tmp_path / "s", {"a": a})
    assert sorted(os.listdir(tmp_path)) == ["already.npy", "s.safetensors", "w.npy",
                                            "z.npz", "zc.npz"]
    np.testing.assert_array_equal(np.load(tmp_path / "w.npy"), x)


def test_file_objects(rng, tmp_path):
    x, a = random_pair(rng, em.int16, (2, 5))
    buffer = io.BytesIO()
    em.save(buffer, a)
    np.testing.assert_array_equal(np.load(io.BytesIO(buffer.getvalue())), x)
    assert_same(em.load(io.BytesIO(buffer.getvalue()), format="npy"), x, em.int16)
    with open(tmp_path / "a.safetensors", "wb") as f:
        em.save_safetensors(f, {"a": a})
    with open(tmp_path / "a.safetensors", "rb") as f:  # format from f.name
        assert_same(em.load(f)["a"], x, em.int16)


# ---- .npz ----

@pytest.mark.parametrize("save, np_save", [(em.savez, np.savez),
                                           (em.savez_compressed, np.savez_compressed)])
def test_npz_all_dtypes_both_directions(rng, tmp_path, save, np_save):
    expected = {d.name: random_numpy(rng, d, SHAPES[i % len(SHAPES)])
                for i, d in enumerate(DTYPES)}
    positional = [random_numpy(rng, em.int8, (3,)), random_numpy(rng, em.float32, ())]
    save(tmp_path / "e", *[em.array(x) for x in positional],
         **{k: em.array(x, k) for k, x in expected.items()})
    every = {**expected, "arr_0": positional[0], "arr_1": positional[1]}
    dtypes = {**BY_NAME, "arr_0": em.int8, "arr_1": em.float32}

    with np.load(tmp_path / "e.npz") as archive:
        assert sorted(archive.files) == sorted(every)
        for k, x in every.items():
            assert_library_array(archive[k], x, dtypes[k])
    with zipfile.ZipFile(tmp_path / "e.npz") as archive:
        wanted = zipfile.ZIP_DEFLATED if save is em.savez_compressed else zipfile.ZIP_STORED
        assert {i.compress_type for i in archive.infolist()} == {wanted}
    loaded = em.load(tmp_path / "e.npz")
    assert sorted(loaded) == sorted(every)
    for k, x in every.items():
        assert_same(loaded[k], x, dtypes[k])

    np_save(tmp_path / "n.npz", *positional,
            **{k: as_library_array(x, dtypes[k]) for k, x in expected.items()})
    loaded = em.load(tmp_path / "n.npz")
    assert sorted(loaded) == sorted(every)
    for k, x in every.items():
        assert_same(loaded[k], x, dtypes[k])


def test_npz_non_contiguous_views(rng, tmp_path):
    pairs = list(ember_views(rng, em.complex64)) + list(ember_views(rng, em.bfloat16))
    em.savez(tmp_path / "v", *[a for _, a in pairs])
    loaded = em.load(tmp_path / "v.npz")
    for i, (x, _) in enumerate(pairs):
        assert_same(loaded[f"arr_{i}"], x, em.complex64 if i < 5 else em.bfloat16)


def test_savez_positional_name_clash(rng, tmp_path):
    _, a = random_pair(rng, em.float32, (2,))
    with pytest.raises(ValueError, match="arr_0"):
        em.savez(tmp_path / "x", a, arr_0=a)
    assert os.listdir(tmp_path) == []


# ---- .safetensors ----

def all_dtype_arrays(rng):
    return {d.name: random_numpy(rng, d, SHAPES[(i + 3) % len(SHAPES)])
            for i, d in enumerate(DTYPES)}


def test_safetensors_all_dtypes_read_by_library(rng, tmp_path):
    expected = all_dtype_arrays(rng)
    metadata = {"step": str(rng.integers(1000)), "note": "ünïcode, \"quoted\""}
    em.save_safetensors(tmp_path / "m", {k: em.array(x, k) for k, x in expected.items()},
                        metadata=metadata)
    path = str(tmp_path / "m.safetensors")
    theirs = stnp.load_file(path)
    assert sorted(theirs) == sorted(expected)
    for k, x in expected.items():
        assert_library_array(theirs[k], x, BY_NAME[k])
    with safetensors.safe_open(path, framework="numpy") as f:
        assert f.metadata() == metadata

    arrays, meta = em.load(path, return_metadata=True)
    assert meta == metadata
    for k, x in expected.items():
        assert_same(arrays[k], x, BY_NAME[k])


def test_safetensors_written_by_library(rng, tmp_path):
    expected = all_dtype_arrays(rng)
    metadata = {"format": "np", "k": str(rng.random())}
    stnp.save_file({k: as_library_array(x, BY_NAME[k]) for k, x in expected.items()},
                   tmp_path / "lib.safetensors", metadata=metadata)
    arrays, meta = em.load(tmp_path / "lib.safetensors", return_metadata=True)
    assert meta == metadata
    assert sorted(arrays) == sorted(expected)
    for k, x in expected.items():
        assert_same(arrays[k], x, BY_NAME[k])
    stnp.save_file({"only": expected["int32"]}, tmp_path / "plain.safetensors")
    assert em.load(tmp_path / "plain.safetensors", return_metadata=True)[1] == {}


def test_safetensors_non_contiguous_views(rng, tmp_path):
    pairs = {f"{d.name}_{i}": (x, a, d) for d in (em.bfloat16, em.int64, em.float16)
             for i, (x, a) in enumerate(ember_views(rng, d))}
    em.save_safetensors(tmp_path / "v", {k: a for k, (_, a, _) in pairs.items()})
    theirs = stnp.load_file(tmp_path / "v.safetensors")
    ours = em.load(tmp_path / "v.safetensors")
    for k, (x, _, d) in pairs.items():
        assert_library_array(theirs[k], x, d)
        assert_same(ours[k], x, d)


def test_safetensors_tensors_are_aligned(rng, tmp_path):
    arrays = {"b": em.array(random_numpy(rng, em.int8, (3,))),
              "a": em.array(random_numpy(rng, em.float64, (5,)))}
    em.save_safetensors(tmp_path / "al", arrays)
    data = (tmp_path / "al.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    assert length % 8 == 0
    for name, info in header.items():
        assert (8 + length + info["data_offsets"][0]) % arrays[name].itemsize == 0


def test_safetensors_bad_arguments(rng, tmp_path):
    _, a = random_pair(rng, em.float32, (2,))
    with pytest.raises(ValueError, match="metadata"):
        em.save_safetensors(tmp_path / "x", {"a": a}, metadata={"n": 1})
    with pytest.raises(ValueError, match="__metadata__"):
        em.save_safetensors(tmp_path / "x", {"__metadata__": a})
    with pytest.raises(ValueError, match="names"):
        em.save_safetensors(tmp_path / "x", {1: a})
    assert os.listdir(tmp_path) == []


# ---- load arguments ----

def test_load_format_argument_and_metadata_rules(rng, tmp_path):
    x, a = random_pair(rng, em.uint32, (4,))
    em.save_safetensors(tmp_path / "w.safetensors", {"a": a})
    os.rename(tmp_path / "w.safetensors", tmp_path / "weights.bin")
    assert_same(em.load(tmp_path / "weights.bin", format="safetensors")["a"], x, em.uint32)
    with pytest.raises(ValueError, match="format"):
        em.load(tmp_path / "weights.bin")
    os.rename(tmp_path / "weights.bin", tmp_path / "weights")
    with pytest.raises(ValueError, match="extension"):
        em.load(tmp_path / "weights")
    em.save(tmp_path / "a", a)
    em.savez(tmp_path / "z", a)
    for name in ("a.npy", "z.npz"):
        with pytest.raises(ValueError, match="metadata"):
            em.load(tmp_path / name, return_metadata=True)
    with pytest.raises(FileNotFoundError):
        em.load(tmp_path / "missing.npy")


# ---- malformed files ----

def npy_bytes(rng, dtype=em.float32, shape=(3, 4)):
    buffer = io.BytesIO()
    np.save(buffer, random_numpy(rng, dtype, shape))
    return buffer.getvalue()


def npy_with_header(text: str, body: bytes = b"") -> bytes:
    header = text.encode("latin1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + body


NPY_CORRUPTIONS = {
    "empty": lambda rng: b"",
    "bad magic": lambda rng: b"\x93NUMPX" + npy_bytes(rng)[6:],
    "only the magic": lambda rng: npy_bytes(rng)[:6],
    "cut in the version": lambda rng: npy_bytes(rng)[:7],
    "cut in the header": lambda rng: npy_bytes(rng)[:40],
    "truncated data": lambda rng: npy_bytes(rng)[:-1 - int(rng.integers(10))],
    "trailing data": lambda rng: npy_bytes(rng) + b"\0",
    "version 9": lambda rng: npy_bytes(rng)[:6] + b"\x09" + npy_bytes(rng)[7:],
    "header past the end": lambda rng: b"\x93NUMPY\x01\x00\xff\xff{'descr'",
    "header not a literal": lambda rng: npy_with_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} + __import__('os')\n",
        b"\0" * 4),
    "header not a dict": lambda rng: npy_with_header("[1, 2]\n"),
    "missing shape": lambda rng: npy_with_header("{'descr': '<f4', 'fortran_order': False}\n"),
    "unknown dtype c16": lambda rng: npy_with_header(
        "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }\n", b"\0" * 16),
    "object dtype": lambda rng: npy_with_header(
        "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n", b"\0" * 8),
    "structured dtype": lambda rng: npy_with_header(
        "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }\n", b"\0" * 4),
    "negative shape": lambda rng: npy_with_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }\n"),
    "float shape": lambda rng: npy_with_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,), }\n", b"\0" * 8),
    "fortran_order not bool": lambda rng: npy_with_header(
        "{'descr': '<f4', 'fortran_order': 'no', 'shape': (2,), }\n", b"\0" * 8),
    "empty but huge shape": lambda rng: npy_with_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 2**70), }\n"),
    "huge shape": lambda rng: npy_with_header(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2**40, 2**40), }\n", b"\0" * 8),
}


# numpy reads these (ignoring trailing bytes; dtypes that ember lacks); ember refuses them.
NUMPY_ACCEPTS = {"trailing data", "unknown dtype c16", "structured dtype"}


@pytest.mark.parametrize("case", NPY_CORRUPTIONS)
def test_malformed_npy_raises_value_error(rng, tmp_path, case):
    path = tmp_path / "bad.npy"
    path.write_bytes(NPY_CORRUPTIONS[case](rng))
    if case not in NUMPY_ACCEPTS:
        with pytest.raises(Exception):
            np.load(path, allow_pickle=False)
    with pytest.raises(ValueError, match="bad.npy"):
        em.load(path)


def npz_bytes(rng, compressed=False):
    buffer = io.BytesIO()
    arrays = {"a": random_numpy(rng, em.float32, (16, 16)), "b": random_numpy(rng, em.int8, (9,))}
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def flip_byte_inside_member(data: bytes) -> bytes:
    """Corrupts the stored data of the first member; its CRC no longer matches."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.infolist()[0]
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    at = start + info.compress_size - 3  # inside the array data, not the npy header
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


def npz_holding(member: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.npy", member)
    return buffer.getvalue()


NPZ_CORRUPTIONS = {
    "not a zip": lambda rng: bytes(rng.integers(0, 256, 200, dtype=np.uint8)),
    "cut in half": lambda rng: (lambda d: d[:len(d) // 2])(npz_bytes(rng)),
    "cut compressed": lambda rng: (lambda d: d[:len(d) - 30])(npz_bytes(rng, True)),
    "crc mismatch": lambda rng: flip_byte_inside_member(npz_bytes(rng)),
    "crc mismatch compressed": lambda rng: flip_byte_inside_member(npz_bytes(rng, True)),
    "member truncated npy": lambda rng: npz_holding(npy_bytes(rng)[:-4]),
    "member not npy": lambda rng: npz_holding(b"hello world"),
}


@pytest.mark.parametrize("case", NPZ_CORRUPTIONS)
def test_malformed_npz_raises_value_error(rng, tmp_path, case):
    path = tmp_path / "bad.npz"
    path.write_bytes(NPZ_CORRUPTIONS[case](rng))
    if case != "member not npy":  # numpy returns such a member as raw bytes
        with open(path, "rb") as f, pytest.raises(Exception):
            with np.load(f, allow_pickle=False) as archive:
                [archive[k] for k in archive.files]
    with pytest.raises(ValueError, match="bad.npz"):
        em.load(path)


def safetensors_from_header(header, body: bytes) -> bytes:
    text = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return struct.pack("<Q", len(text)) + text + body


def valid_safetensors(rng):
    """A header dict and a data body for two float32 tensors, for tampering."""
    a, b = random_numpy(rng, em.float32, (2, 3)), random_numpy(rng, em.float32, (4,))
    header = {"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
              "b": {"dtype": "F32", "shape": [4], "data_offsets": [24, 40]}}
    return header, a.tobytes() + b.tobytes()


def tampered(change):
    def build(rng):
        header, body = valid_safetensors(rng)
        return change(header, body)
    return build


ST_CORRUPTIONS = {
    "empty": lambda rng: b"",
    "cut in the length": lambda rng: b"\x10\0\0",
    "length past the end": tampered(lambda h, b: struct.pack("<Q", 10**6) + json.dumps(h).encode()),
    "huge length": tampered(lambda h, b: struct.pack("<Q", 2**63) + b"{}"),
    "bad json": tampered(lambda h, b: safetensors_from_header(b'{"a": {"dtype": "F32",', b)),
    "not utf8": tampered(lambda h, b: safetensors_from_header(b'{"\xff": 1}', b)),
    "json array": tampered(lambda h, b: safetensors_from_header([1, 2], b)),
    "unknown dtype": tampered(lambda h, b: safetensors_from_header(
        {**h, "a": {**h["a"], "dtype": "F128"}}, b)),
    "missing field": tampered(lambda h, b: safetensors_from_header(
        {**h, "a": {"dtype": "F32", "shape": [2, 3]}}, b)),
    "offsets past the end": tampered(lambda h, b: safetensors_from_header(
        {**h, "b": {**h["b"], "data_offsets": [24, 4000]}}, b)),
    "offsets do not match shape": tampered(lambda h, b: safetensors_from_header(
        {**h, "a": {**h["a"], "shape": [2, 4]}}, b)),
    "reversed offsets": tampered(lambda h, b: safetensors_from_header(
        {**h, "b": {**h["b"], "data_offsets": [40, 24]}}, b)),
    "overlapping tensors": tampered(lambda h, b: safetensors_from_header(
        {**h, "b": {**h["b"], "data_offsets": [8, 24]}}, b)),
    "gap between tensors": tampered(lambda h, b: safetensors_from_header(
        {**h, "b": {**h["b"], "data_offsets": [28, 44]}}, b + b"\0" * 4)),
    "truncated data": tampered(lambda h, b: safetensors_from_header(h, b[:-5])),
    "negative shape": tampered(lambda h, b: safetensors_from_header(
        {**h, "b": {**h["b"], "shape": [-4]}}, b)),
    "float offsets": tampered(lambda h, b: safetensors_from_header(
        {**h, "b": {**h["b"], "data_offsets": [24.0, 40.0]}}, b)),
    "metadata not strings": tampered(lambda h, b: safetensors_from_header(
        {**h, "__metadata__": {"step": 3}}, b)),
    "metadata a list": tampered(lambda h, b: safetensors_from_header(
        {**h, "__metadata__": ["x"]}, b)),
}


@pytest.mark.parametrize("case", ST_CORRUPTIONS)
def test_malformed_safetensors_raises_value_error(rng, tmp_path, case):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(ST_CORRUPTIONS[case](rng))
    with pytest.raises(Exception):  # the library rejects each of these as well
        stnp.load_file(path)
    with pytest.raises(ValueError, match="bad.safetensors"):
        em.load(path)


def test_tampering_helper_builds_a_valid_file(rng, tmp_path):
    header, body = valid_safetensors(rng)
    path = tmp_path / "ok.safetensors"
    path.write_bytes(safetensors_from_header(header, body))
    theirs, ours = stnp.load_file(path), em.load(path)
    for k in ("a", "b"):
        assert_same(ours[k], theirs[k], em.float32)


# ---- failed saves ----

def contents(directory: pathlib.Path) -> dict:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


@pytest.mark.parametrize("kind", ["save", "savez", "savez_compressed", "save_safetensors"])
def test_failed_save_leaves_no_partial_file(rng, tmp_path, kind):
    x, small = random_pair(rng, em.float32, (8,))
    target = {"save": "t.npy", "savez": "t.npz", "savez_compressed": "t.npz",
              "save_safetensors": "t.safetensors"}[kind]

    def run(*arrays):
        if kind == "save":
            em.save(tmp_path / target, arrays[-1])
        elif kind == "save_safetensors":
            em.save_safetensors(tmp_path / target, {f"a{i}": a for i, a in enumerate(arrays)})
        else:
            getattr(em, kind)(tmp_path / target, *arrays)

    def failing_lazy_array():
        # Computing it needs 4 MB past the memory limit: evaluation fails while
        # the file is being written, after the small array went in.
        return em.zeros((1_000_000,)) + 1

    def fail_midway():
        big = failing_lazy_array()
        limit = em.set_memory_limit(em.get_active_memory() + 65536)
        try:
            with pytest.raises(MemoryError):
                run(small, big)
        finally:
            em.set_memory_limit(limit)

    fail_midway()
    assert contents(tmp_path) == {}
    run(small)
    before = contents(tmp_path)
    fail_midway()
    assert contents(tmp_path) == before
    loaded = em.load(tmp_path / target)
    assert_same(loaded if kind == "save" else next(iter(loaded.values())), x, em.float32)


def test_save_into_missing_directory(rng, tmp_path):
    _, a = random_pair(rng, em.float32, (2,))
    with pytest.raises(FileNotFoundError):
        em.save(tmp_path / "no" / "such" / "a", a)
    assert contents(tmp_path) == {}


def test_saved_file_permissions_follow_umask(rng, tmp_path):
    _, a = random_pair(rng, em.float32, (2,))
    em.save(tmp_path / "a", a)
    with open(tmp_path / "b.npy", "wb"):
        pass
    assert os.stat(tmp_path / "a.npy").st_mode == os.stat(tmp_path / "b.npy").st_mode


@pytest.mark.parametrize("extension", ["npy", "npz", "safetensors"])
def test_random_damage_loads_or_raises_value_error(rng, tmp_path, extension):
    """Truncations and flipped bytes anywhere (headers included): load either
    succeeds (damage inside array data) or raises ValueError, nothing else."""
    arrays = {d.name: em.array(random_numpy(rng, d, (3, 2)), d) for d in DTYPES[::3]}
    {"npy": lambda p: em.save(p, arrays["bool"]),
     "npz": lambda p: em.savez_compressed(p, **arrays),
     "safetensors": lambda p: em.save_safetensors(p, arrays, {"m": "v"})}[extension](
        tmp_path / f"good.{extension}")
    good = (tmp_path / f"good.{extension}").read_bytes()
    path = tmp_path / f"damaged.{extension}"
    for _ in range(150):
        data = bytearray(good[:int(rng.integers(len(good) + 1))] if rng.random() < 0.3 else good)
        for at in rng.integers(0, max(len(data), 1), int(rng.integers(1, 4))):
            if data:
                data[at] = int(rng.integers(256))
        path.write_bytes(bytes(data))
        try:
            em.load(path)
        except ValueError as e:
            assert "damaged" in str(e)
