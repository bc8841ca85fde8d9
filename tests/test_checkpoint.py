"""PyTreeCheckpointer and AsyncCheckpointer: round trips of random trees of
every dtype, targets, partial restore, explicit casts, corruption and
truncation, sharding, the files being plain safetensors (read back with the
safetensors library), and orbax restoring the same tree."""
import json
import os
import threading
import struct
import typing

import ml_dtypes
import numpy as np
import pytest

import ember.core as em
from ember import checkpoint
from ember.checkpoint import format as fmt

from checkpoint_trees import (DTYPES, Pair, assert_same_tree, exact_bytes, random_array,
                              random_numpy, random_tree, without_namedtuples)


@pytest.fixture
def ckptr():
    return checkpoint.PyTreeCheckpointer()


def test_round_trip_without_target(rng, tmp_path, ckptr):
    tree = random_tree(rng)
    ckptr.save(tmp_path / "c", tree)
    assert_same_tree(ckptr.restore(tmp_path / "c"), without_namedtuples(tree))


def test_round_trip_into_target_keeps_its_containers(rng, tmp_path, ckptr):
    tree = random_tree(rng)
    ckptr.save(tmp_path / "c", tree)
    restored = ckptr.restore(tmp_path / "c", item=tree)
    assert_same_tree(restored, tree)
    assert isinstance(restored["layers"][1][1], Pair)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_bit_exact_and_non_contiguous_views(rng, tmp_path, ckptr, dtype):
    base = random_array(rng, dtype, (5, 6))
    tree = {"base": base, "transposed": base.T, "strided": base[::2, 1::3],
            "broadcast": em.broadcast_to(base[:1], (4, 6)), "scalar": base[2, 3]}
    ckptr.save(tmp_path / "c", tree)
    restored = ckptr.restore(tmp_path / "c", item=tree)
    for key, value in tree.items():
        want = np.ascontiguousarray(em.io._element_view(value))
        got = restored[key]
        assert got.dtype == value.dtype and got.shape == value.shape, key
        assert exact_bytes(got) == want.tobytes(), key


def test_every_bfloat16_bit_pattern(tmp_path, ckptr):
    bits = np.arange(2**16, dtype=np.uint16)
    tree = {"all": em.array(bits.view(ml_dtypes.bfloat16))}
    ckptr.save(tmp_path / "c", tree)
    got = ckptr.restore(tmp_path / "c")["all"]
    assert np.array_equal(np.asarray(em.io._element_view(got)), bits)


def test_zero_size_and_empty_trees(tmp_path, ckptr):
    tree = {"empty": em.zeros((0, 3)), "nested": {}, "list": [], "tuple": ()}
    ckptr.save(tmp_path / "c", tree)
    assert_same_tree(ckptr.restore(tmp_path / "c", item=tree), tree)
    ckptr.save(tmp_path / "bare", em.array(2.5))
    assert ckptr.restore(tmp_path / "bare").item() == 2.5


def test_lazy_arrays_are_evaluated_on_save(rng, tmp_path, ckptr):
    x = random_numpy(rng, "float32", (4, 4))
    lazy = em.array(x) * 2 + 1
    ckptr.save(tmp_path / "c", {"y": lazy})
    expected = (x.astype(np.float32) * np.float32(2) + np.float32(1))
    assert exact_bytes(ckptr.restore(tmp_path / "c")["y"]) == expected.tobytes()


def test_save_refuses_an_existing_directory_unless_forced(rng, tmp_path, ckptr):
    ckptr.save(tmp_path / "c", {"a": em.array([1, 2])})
    with pytest.raises(ValueError, match="already exists"):
        ckptr.save(tmp_path / "c", {"a": em.array([3])})
    assert ckptr.restore(tmp_path / "c")["a"].tolist() == [1, 2]
    ckptr.save(tmp_path / "c", {"a": em.array([3])}, force=True)
    assert ckptr.restore(tmp_path / "c")["a"].tolist() == [3]
    assert os.listdir(tmp_path) == ["c"]  # no temporary or old directories left


def test_unsupported_leaves_fail_before_anything_is_written(tmp_path, ckptr):
    with pytest.raises(TypeError, match=r"leaf at 'a.b' has type object"):
        ckptr.save(tmp_path / "c", {"a": {"b": object()}})
    with pytest.raises(TypeError, match=r"numpy array at 'x' has dtype complex128"):
        ckptr.save(tmp_path / "c", {"x": np.zeros(2, np.complex128)})
    with pytest.raises(TypeError, match=r"dict key .* must be a str or an int"):
        ckptr.save(tmp_path / "c", {(1, 2): em.array(1)})
    assert os.listdir(tmp_path) == []


# ---- targets ----

def test_partial_restore_reads_only_the_subtree(rng, tmp_path, ckptr):
    tree = random_tree(rng)
    ckptr.save(tmp_path / "c", tree)
    target = {"params": {"dense": tree["params"]["dense"]}, "step": 0}
    got = ckptr.restore(tmp_path / "c", item=target, partial_restore=True)
    assert_same_tree(got, {"params": {"dense": tree["params"]["dense"]}, "step": tree["step"]})
    # The other arrays are never read: corrupting their shard data does not matter.
    index = json.loads((tmp_path / "c" / fmt.INDEX_FILE).read_text())
    record = next(r for r in index["arrays"] if r["path"] == "layers.0")
    _flip_byte(tmp_path / "c" / record["file"], record["offset"])
    ckptr.restore(tmp_path / "c", item=target, partial_restore=True)
    with pytest.raises(ValueError, match="layers.0"):
        ckptr.restore(tmp_path / "c")


def test_target_mismatches_name_the_first_path(rng, tmp_path, ckptr):
    tree = {"a": {"w": random_array(rng, "float32", (3, 4)), "b": [em.array([1, 2]), 5]},
            "c": em.array(1.0)}
    ckptr.save(tmp_path / "c", tree)
    cases = [
        ({"a": {"w": em.zeros((4, 3)), "b": [em.array([1, 2]), 5]}, "c": em.array(1.0)},
         r"shape differs at 'a.w': the checkpoint has \(3, 4\), the target \(4, 3\)"),
        ({"a": {"w": em.zeros((3, 4), em.float16), "b": [em.array([1, 2]), 5]},
          "c": em.array(1.0)},
         r"dtype differs at 'a.w': the checkpoint has float32, the target float16 \(pass "
         r"restore_args"),
        ({"a": {"w": em.zeros((3, 4)), "b": [em.array([1, 2])]}, "c": em.array(1.0)},
         r"structure differs at 'a.b': the checkpoint's list has 2 entries, the target's 1"),
        ({"a": {"w": em.zeros((3, 4)), "b": (em.array([1, 2]), 5)}, "c": em.array(1.0)},
         r"structure differs at 'a.b': the checkpoint has a list, the target a tuple"),
        ({"a": {"w": em.zeros((3, 4)), "b": [em.array([1, 2]), 5]}},
         r"structure differs at 'c': the checkpoint has this key, the target does not"),
        ({"a": {"w": em.zeros((3, 4)), "x": 1, "b": [em.array([1, 2]), 5]},
          "c": em.array(1.0)},
         r"structure differs at 'a.x': the target has this key, the checkpoint does not"),
        ({"a": {"w": em.zeros((3, 4)), "b": [em.array([1, 2]), em.zeros(())]},
          "c": em.array(1.0)},
         r"structure differs at 'a.b.1': the checkpoint has a int leaf, the target an array"),
        ({"a": {"w": {"k": 1}, "b": [em.array([1, 2]), 5]}, "c": em.array(1.0)},
         r"structure differs at 'a.w': the checkpoint has an array, the target a dict"),
    ]
    for target, message in cases:
        with pytest.raises(ValueError, match=message):
            ckptr.restore(tmp_path / "c", item=target)


def test_restore_args_cast_explicitly(rng, tmp_path, ckptr):
    w = random_array(rng, "float32", (3, 5))
    ckptr.save(tmp_path / "c", {"w": w, "n": 1})
    args = {"w": checkpoint.ArrayRestoreArgs(dtype=em.bfloat16), "n": checkpoint.RestoreArgs()}
    got = ckptr.restore(tmp_path / "c", item={"w": em.zeros((3, 5), em.bfloat16), "n": 0},
                        restore_args=args)
    assert got["w"].dtype == em.bfloat16
    assert exact_bytes(got["w"]) == exact_bytes(w.astype(em.bfloat16))
    without_target = ckptr.restore(tmp_path / "c", restore_args={
        "w": checkpoint.RestoreArgs(dtype=np.float16, restore_type=np.ndarray), "n": None})
    assert isinstance(without_target["w"], np.ndarray)
    np.testing.assert_array_equal(without_target["w"], np.asarray(w).astype(np.float16))
    with pytest.raises(ValueError, match=r"dtype differs at 'w': the checkpoint has float32 "
                                         r"cast to float16, the target bfloat16"):
        ckptr.restore(tmp_path / "c", item={"w": em.zeros((3, 5), em.bfloat16), "n": 0},
                      restore_args={"w": checkpoint.RestoreArgs(dtype=em.float16), "n": None})
    with pytest.raises(ValueError, match=r"restore_args has no entry at 'n'"):
        ckptr.restore(tmp_path / "c", restore_args={"w": checkpoint.RestoreArgs()})


def test_numpy_and_spec_targets(rng, tmp_path, ckptr):
    import jax
    w = random_array(rng, "float32", (2, 3))
    ckptr.save(tmp_path / "c", {"w": w})
    as_numpy = ckptr.restore(tmp_path / "c", item={"w": np.zeros((2, 3), np.float32)})
    assert isinstance(as_numpy["w"], np.ndarray)
    assert as_numpy["w"].tobytes() == exact_bytes(w)
    spec = ckptr.restore(tmp_path / "c", item={"w": jax.ShapeDtypeStruct((2, 3), np.float32)})
    assert isinstance(spec["w"], em.array) and exact_bytes(spec["w"]) == exact_bytes(w)


# ---- corruption and truncation ----

def _flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x40]))


def _records(directory):
    return json.loads((directory / fmt.INDEX_FILE).read_text())["arrays"]


def test_a_flipped_byte_names_the_file_and_the_array(rng, tmp_path, ckptr):
    tree = random_tree(rng)
    ckptr.save(tmp_path / "c", tree)
    records = [r for r in _records(tmp_path / "c") if r["nbytes"] > 0]
    record = records[int(rng.integers(len(records)))]
    _flip_byte(tmp_path / "c" / record["file"],
               record["offset"] + int(rng.integers(record["nbytes"])))
    with pytest.raises(ValueError, match=rf"{record['file']}: array '{record['path']}' fails "
                                         r"its checksum \(0x[0-9a-f]{8}, expected"):
        ckptr.restore(tmp_path / "c")


def test_truncation_names_the_file_and_the_array(rng, tmp_path, ckptr):
    ckptr.save(tmp_path / "c", {"a": random_array(rng, "float32", (100,)),
                                "b": random_array(rng, "int64", (50,))})
    records = _records(tmp_path / "c")
    last = max(records, key=lambda r: r["offset"])
    shard = tmp_path / "c" / last["file"]
    os.truncate(shard, os.path.getsize(shard) - int(rng.integers(1, last["nbytes"])))
    with pytest.raises(ValueError, match=rf"{last['file']}: array '{last['path']}' needs bytes "
                                         r"\[\d+, \d+\) but the file has \d+ \(truncated\)"):
        ckptr.restore(tmp_path / "c")
    os.truncate(shard, 0)
    with pytest.raises(ValueError, match=r"truncated"):
        ckptr.restore(tmp_path / "c")


def test_damaged_index_and_missing_shard(rng, tmp_path, ckptr):
    ckptr.save(tmp_path / "c", {"a": random_array(rng, "float32", (10,))})
    index = tmp_path / "c" / fmt.INDEX_FILE
    text = index.read_bytes()
    record = _records(tmp_path / "c")[0]
    index.write_bytes(text[: len(text) // 2])
    with pytest.raises(ValueError, match=r"checkpoint.json: not valid JSON"):
        ckptr.restore(tmp_path / "c")
    index.write_bytes(text)
    os.remove(tmp_path / "c" / record["file"])
    with pytest.raises(ValueError, match=rf"{record['file']}: missing; it holds array 'a'"):
        ckptr.restore(tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        ckptr.restore(tmp_path / "nowhere")


def test_index_cannot_point_outside_the_directory(rng, tmp_path, ckptr):
    ckptr.save(tmp_path / "c", {"a": random_array(rng, "float32", (10,))})
    index_file = tmp_path / "c" / fmt.INDEX_FILE
    index = json.loads(index_file.read_text())
    index["arrays"][0]["file"] = "../elsewhere.safetensors"
    index_file.write_text(json.dumps(index))
    with pytest.raises(ValueError, match="malformed array record"):
        ckptr.restore(tmp_path / "c")


# ---- the checksum ----

def crc32c(data: bytes) -> int:
    """CRC-32C, bit by bit from its definition (the reflected polynomial)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def reference_checksum(data: bytes) -> int:
    """format.CHECKSUM as documented: word j of each 32-byte group in lane j,
    the tail in lane 0, then CRC-32C of the lane values and the length."""
    groups = len(data) // 32
    lanes = [bytearray() for _ in range(4)]
    for g in range(groups):
        for j in range(4):
            lanes[j] += data[32 * g + 8 * j:32 * g + 8 * j + 8]
    lanes[0] += data[32 * groups:]
    return crc32c(struct.pack("<4IQ", *(crc32c(lane) for lane in lanes), len(data)))


def test_checksum_matches_its_definition(rng):
    from ember.core._ffi import ffi, lib
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    for n in [0, 1, 7, 8, 31, 32, 33, 63, 64, 65, 100, 1000, int(rng.integers(1, 5000))]:
        data = rng.bytes(n)
        want = reference_checksum(data)
        assert fmt.checksum(data) == want, n
        assert lib.em_checksum32(ffi.from_buffer(data), n, 1) == want, n  # the table path
        view = memoryview(b"xyz" + data)[3:]  # unaligned
        assert fmt.checksum(view) == want, n


def test_checksum_sees_every_bit_flip(rng):
    data = bytearray(rng.bytes(4096))
    original = fmt.checksum(data)
    for position in rng.integers(0, len(data), size=50):
        bit = 1 << int(rng.integers(8))
        data[position] ^= bit
        assert fmt.checksum(data) != original, position
        data[position] ^= bit
    assert fmt.checksum(data) == original
    assert fmt.checksum(bytes(64)) != fmt.checksum(bytes(65))  # zeros: the length counts


def test_uninitialized_engine_arrays_check_their_arguments():
    from ember.core._ffi import ffi, lib
    from ember.core.array import _check
    a = _check(lib.em_uninitialized(lib.EM_BFLOAT16, 2, [3, 4]))
    assert a.shape == (3, 4) and a.dtype == em.bfloat16 and lib.em_is_row_contiguous(a._p)
    ffi.buffer(lib.em_data(a._p), 24)[:] = bytes(range(24))
    assert exact_bytes(a) == bytes(range(24))
    with pytest.raises(ValueError, match=r"\[array\] negative dimension -1"):
        _check(lib.em_uninitialized(lib.EM_FLOAT32, 2, [3, -1]))
    with pytest.raises(TypeError, match=r"\[array\] unknown dtype 99"):
        _check(lib.em_uninitialized(99, 1, [3]))


# ---- layout ----

def test_shards_are_plain_safetensors_files(rng, tmp_path):
    from safetensors import safe_open
    tree = {f"w{i}": random_array(rng, DTYPES[i % len(DTYPES)], (50, 7)) for i in range(20)}
    ckptr = checkpoint.PyTreeCheckpointer(shard_bytes=2000)
    ckptr.save(tmp_path / "c", tree)
    shards = sorted(p for p in os.listdir(tmp_path / "c") if p.endswith(".safetensors"))
    assert len(shards) > 5
    assert_same_tree(ckptr.restore(tmp_path / "c"), tree)
    seen = {}
    for shard in shards:
        # numpy has every dtype but bfloat16; jax (64-bit types off) has bfloat16
        for framework in ("numpy", "flax"):
            with safe_open(str(tmp_path / "c" / shard), framework=framework) as f:
                for key in f.keys():
                    if (tree[key].dtype == em.bfloat16) == (framework == "flax"):
                        seen[key] = np.asarray(f.get_tensor(key))
    assert sorted(seen) == sorted(tree)
    for key, value in tree.items():
        assert seen[key].shape == value.shape, key
        assert seen[key].tobytes() == exact_bytes(value), key
    for record in _records(tmp_path / "c"):
        with open(tmp_path / "c" / record["file"], "rb") as f:
            f.seek(record["offset"])
            assert reference_checksum(f.read(record["nbytes"])) == record["checksum"]


def test_saving_streams_array_by_array(rng, tmp_path, ckptr):
    """Peak engine memory during a save stays at the tree itself: no second
    copy of the tree is built (a strided view is the one array copied)."""
    tree = {f"w{i}": random_array(rng, "float32", (256, 256)) for i in range(16)}
    tree["view"] = tree["w0"].T
    em.eval(tree)
    em.reset_peak_memory()
    before = em.get_active_memory()
    ckptr.save(tmp_path / "c", tree)
    assert em.get_peak_memory() <= before + 256 * 256 * 4


def test_orbax_restores_the_same_values(rng, tmp_path, ckptr):
    """Round trip beside orbax's PyTreeCheckpointer on the same (numpy) tree."""
    import orbax.checkpoint as ocp
    tree = {"a": {"w": random_numpy(rng, "float32", (4, 3)),
                  "b": random_numpy(rng, "int32", (5,))},
            "c": [random_numpy(rng, "float64", (2,)), random_numpy(rng, "uint8", (3, 1))]}
    ocp.PyTreeCheckpointer().save(tmp_path / "orbax", tree)
    from_orbax = ocp.PyTreeCheckpointer().restore(tmp_path / "orbax")
    ckptr.save(tmp_path / "ember", tree)
    ours = ckptr.restore(tmp_path / "ember")
    pairs = [(ours["a"]["w"], from_orbax["a"]["w"]), (ours["a"]["b"], from_orbax["a"]["b"]),
             (ours["c"][0], from_orbax["c"][0]), (ours["c"][1], from_orbax["c"][1])]
    for got, want in pairs:
        assert isinstance(got, np.ndarray)
        assert got.dtype == np.asarray(want).dtype
        np.testing.assert_array_equal(got, np.asarray(want))


# ---- async ----

def test_async_save_snapshots_at_call_time(rng, tmp_path):
    ckptr = checkpoint.AsyncCheckpointer(checkpoint.PyTreeCheckpointer())
    params = {"w": random_array(rng, "float32", (64, 64)), "np": random_numpy(rng, "int32", (8,))}
    snapshot = {"w": exact_bytes(params["w"]), "np": params["np"].tobytes()}
    ckptr.save(tmp_path / "c", params)
    for _ in range(5):  # training goes on: rebind the arrays, mutate the numpy leaf
        params["w"] = params["w"] * 2 + 1
        params["np"] += 1
    ckptr.wait_until_finished()
    got = ckptr.restore(tmp_path / "c")
    assert exact_bytes(got["w"]) == snapshot["w"]
    assert got["np"].tobytes() == snapshot["np"]


def test_async_save_of_a_lazy_graph_and_background_errors(rng, tmp_path):
    ckptr = checkpoint.AsyncCheckpointer()
    x = random_numpy(rng, "float32", (32,))
    ckptr.save(tmp_path / "c", {"y": em.array(x) + 1})
    ckptr.save(tmp_path / "d", {"y": em.array(x) - 1})  # waits for the first
    ckptr.wait_until_finished()
    assert exact_bytes(ckptr.restore(tmp_path / "c")["y"]) == (x + np.float32(1)).tobytes()
    assert exact_bytes(ckptr.restore(tmp_path / "d")["y"]) == (x - np.float32(1)).tobytes()
    ckptr.save(tmp_path / "c", {"y": em.array(x)})  # exists: fails in the background
    with pytest.raises(ValueError, match="already exists"):
        ckptr.wait_until_finished()
    ckptr.wait_until_finished()  # the error is raised once
    with pytest.raises(TypeError, match="leaf at 'bad'"):  # leaf types checked at call time
        ckptr.save(tmp_path / "e", {"bad": threading.Lock()})


def test_namedtuple_is_restored_only_through_a_target(tmp_path, ckptr):
    class State(typing.NamedTuple):
        count: object
        mu: object

    state = State(em.array(3), {"w": em.array([1.0, 2.0])})
    ckptr.save(tmp_path / "c", state)
    raw = ckptr.restore(tmp_path / "c")
    assert list(raw) == ["count", "mu"] and raw["count"].item() == 3
    typed = ckptr.restore(tmp_path / "c", item=state)
    assert isinstance(typed, State) and typed.mu["w"].tolist() == [1.0, 2.0]
