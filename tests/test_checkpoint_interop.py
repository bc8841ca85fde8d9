"""Interop: flat .safetensors / .npz weight files (MLX's save_weights layout,
checked with the safetensors library and numpy), flax msgpack files made by
flax itself, and the msgpack decoder against the msgpack package."""
import typing

import msgpack as msgpack_oracle
import numpy as np
import pytest

import ember.core as em
from ember import checkpoint
from ember.checkpoint import msgpack

from checkpoint_trees import DTYPES, assert_same_tree, exact_bytes, random_array, random_numpy


def _weights(rng):
    return {"layers": [{"w": random_array(rng, d, (3, 2)), "b": random_array(rng, d, (2,))}
                       for d in ("float32", "bfloat16", "int8")],
            "head": {"kernel": random_array(rng, "float16", (4, 5)),
                     "scale": random_array(rng, "complex64", ())}}


@pytest.mark.parametrize("extension", [".safetensors", ".npz"])
def test_flat_weight_files_round_trip(rng, tmp_path, extension):
    tree = _weights(rng)
    path = tmp_path / f"model{extension}"
    checkpoint.save_weights(path, tree)
    # safetensors files list tensors in their own order: dicts come back in that order
    assert_same_tree(checkpoint.load_weights(path), tree, ordered=False)
    assert_same_tree(checkpoint.load_weights(path, item=tree), tree)


def test_flat_keys_are_what_other_libraries_read(rng, tmp_path):
    from safetensors.flax import load_file
    tree = _weights(rng)
    checkpoint.save_weights(tmp_path / "m.safetensors", tree)
    checkpoint.save_weights(tmp_path / "m.npz", tree)
    flat = dict(em.utils.tree_flatten(tree))
    tensors = load_file(str(tmp_path / "m.safetensors"))  # jax arrays: bfloat16 too
    with np.load(tmp_path / "m.npz") as npz:
        assert sorted(npz.files) == sorted(flat) == sorted(tensors)
        for key, value in flat.items():  # (no 64-bit dtypes here: jax keeps them off)
            assert npz[key].tobytes() == exact_bytes(value), key
            assert np.asarray(tensors[key]).tobytes() == exact_bytes(value), key
    assert "layers.1.w" in flat


def test_weight_files_written_by_other_libraries(rng, tmp_path):
    from safetensors.numpy import save_file
    weights = {"encoder.0.w": random_numpy(rng, "float32", (3, 3)),
               "encoder.1.w": random_numpy(rng, "int64", (2,)),
               "head": random_numpy(rng, "uint8", (5,))}
    save_file(weights, str(tmp_path / "m.safetensors"))
    np.savez(tmp_path / "m.npz", **weights)
    for name in ("m.safetensors", "m.npz"):
        tree = checkpoint.load_weights(tmp_path / name)
        assert list(tree) == ["encoder", "head"] or sorted(tree) == ["encoder", "head"]
        assert isinstance(tree["encoder"], list) and len(tree["encoder"]) == 2
        assert exact_bytes(tree["encoder"][1]["w"]) == weights["encoder.1.w"].tobytes()
        assert exact_bytes(tree["head"]) == weights["head"].tobytes()


def test_load_weights_checks_the_target(rng, tmp_path):
    tree = _weights(rng)
    checkpoint.save_weights(tmp_path / "m.safetensors", tree)
    smaller = {"head": tree["head"]}
    with pytest.raises(ValueError, match=r"keys differ from the target: missing \[\], "
                                         r"unexpected \['layers.0.b'"):
        checkpoint.load_weights(tmp_path / "m.safetensors", item=smaller)
    partial = checkpoint.load_weights(tmp_path / "m.safetensors", item=smaller, strict=False)
    assert_same_tree(partial, smaller)
    wrong = {"head": {"kernel": em.zeros((5, 4), em.float16), "scale": tree["head"]["scale"]}}
    with pytest.raises(ValueError, match=r"shape differs at 'head.kernel': the file has "
                                         r"\(4, 5\), the target \(5, 4\)"):
        checkpoint.load_weights(tmp_path / "m.safetensors", item=wrong, strict=False)
    with pytest.raises(ValueError, match="unsupported file extension"):
        checkpoint.save_weights(tmp_path / "m.pt", tree)
    with pytest.raises(TypeError, match=r"leaf at 'n' is a int"):
        checkpoint.save_weights(tmp_path / "x.npz", {"n": 3})


# ---- flax msgpack ----

class Pair(typing.NamedTuple):
    a: object
    b: object


def _flax_tree(rng):
    import jax.numpy as jnp
    arrays = {d: random_numpy(rng, d, (3, 2)) for d in DTYPES if d != "bfloat16"}
    arrays["bfloat16"] = jnp.asarray(random_numpy(rng, "float32", (4,)), dtype=jnp.bfloat16)
    return {"params": {"Dense_0": {"kernel": random_numpy(rng, "float32", (5, 3)),
                                   "bias": jnp.asarray(random_numpy(rng, "float32", (3,)))},
                       "by_dtype": arrays},
            "list": [random_numpy(rng, "int32", (2,)), (1, 2.5)],
            "pair": Pair(random_numpy(rng, "float16", (2, 2)), "text"),
            "np_scalar": np.float32(rng.standard_normal()), "complex": 1.5 - 2j,
            "step": int(rng.integers(0, 1000)), "none": None}


def _as_ember(x):
    """What restore_flax_msgpack gives for a leaf flax saved."""
    if isinstance(x, np.generic):
        return x
    if hasattr(x, "dtype") and hasattr(x, "shape"):
        x = np.asarray(x)
        return em.array(x)
    return x


def test_flax_files_restore_into_a_target(rng, tmp_path):
    from flax import serialization
    import jax
    tree = _flax_tree(rng)
    path = tmp_path / "model.msgpack"
    path.write_bytes(serialization.to_bytes(tree))
    restored = checkpoint.restore_flax_msgpack(path, item=tree)
    want = jax.tree_util.tree_map(_as_ember, tree, is_leaf=lambda x: x is None)
    assert_same_tree(restored, want, ordered=False)  # jax's tree_map sorts dict keys
    assert isinstance(restored["pair"], Pair) and isinstance(restored["list"][1], tuple)


def test_flax_state_dict_without_target_matches_flax(rng):
    from flax import serialization
    tree = _flax_tree(rng)
    data = serialization.to_bytes(tree)
    ours = checkpoint.restore_flax_msgpack(data)
    theirs = serialization.msgpack_restore(data)

    def compare(got, want, path):
        if isinstance(want, dict):
            assert list(got) == list(want), path
            for k in want:
                compare(got[k], want[k], f"{path}.{k}")
        elif isinstance(want, np.ndarray):
            assert isinstance(got, em.array) and got.shape == want.shape, path
            assert exact_bytes(got) == want.tobytes(), path
        elif isinstance(want, np.generic):
            assert type(got) is type(want) and got.tobytes() == want.tobytes(), path
        else:
            assert type(got) is type(want) and got == want, path

    compare(ours, theirs, "<root>")


def test_flax_chunked_arrays(rng, monkeypatch):
    from flax import serialization
    monkeypatch.setattr(serialization, "MAX_CHUNK_SIZE", 64)
    big = random_numpy(rng, "float32", (9, 13))
    data = serialization.to_bytes({"big": big, "small": np.arange(3)})
    restored = checkpoint.restore_flax_msgpack(data, item={"big": big, "small": np.arange(3)})
    assert exact_bytes(restored["big"]) == big.tobytes()


def test_flax_target_mismatches(rng):
    from flax import serialization
    data = serialization.to_bytes({"w": np.zeros((2, 3), np.float32), "l": [1, 2]})
    with pytest.raises(ValueError, match=r"shape differs at 'w': the file has \(2, 3\)"):
        checkpoint.restore_flax_msgpack(data, item={"w": np.zeros((3, 2), np.float32),
                                                    "l": [1, 2]})
    with pytest.raises(ValueError, match=r"dtype differs at 'w'"):
        checkpoint.restore_flax_msgpack(data, item={"w": np.zeros((2, 3), np.float16),
                                                    "l": [1, 2]})
    with pytest.raises(ValueError, match=r"structure differs at 'l'"):
        checkpoint.restore_flax_msgpack(data, item={"w": np.zeros((2, 3), np.float32),
                                                    "l": [1, 2, 3]})
    with pytest.raises(ValueError, match=r"structure differs at 'v': the file has no such"):
        checkpoint.restore_flax_msgpack(data, item={"v": 1})
    with pytest.raises(ValueError, match=r"dtype 'float128'|ember cannot hold"):
        payload = msgpack_oracle.packb(((2,), "float128", b"\0" * 32), use_bin_type=True)
        checkpoint.restore_flax_msgpack(msgpack_oracle.packb(
            {"x": msgpack_oracle.ExtType(1, payload)}, use_bin_type=True))


# ---- the msgpack decoder ----

def _random_object(rng, depth=0):
    kind = int(rng.integers(0, 11 if depth < 4 else 7))
    if kind == 0:
        return None
    if kind == 1:
        return bool(rng.random() < 0.5)
    if kind == 2:  # every integer width, both signs
        bits = int(rng.choice([4, 7, 8, 15, 16, 31, 32, 63]))
        return int(rng.integers(-(2 ** bits), 2 ** bits))
    if kind == 3:
        return int(rng.integers(2 ** 63, 2 ** 64 - 1, dtype=np.uint64))
    if kind == 4:
        return float(rng.standard_normal() * 10 ** int(rng.integers(-30, 30)))
    if kind == 5:
        n = int(rng.choice([0, 5, 31, 32, 255, 256, 70000]))
        return "".join(chr(int(c)) for c in rng.integers(32, 0x3000, size=n))
    if kind == 6:
        return rng.bytes(int(rng.choice([0, 1, 255, 256, 70000])))
    if kind in (7, 8):
        return [_random_object(rng, depth + 1) for _ in range(int(rng.choice([0, 3, 16, 17])))]
    if kind == 9:
        return {str(i) + "k": _random_object(rng, depth + 1)
                for i in range(int(rng.choice([0, 3, 16, 17])))}
    return msgpack_oracle.ExtType(int(rng.integers(0, 128)),
                                  rng.bytes(int(rng.choice([1, 2, 4, 8, 16, 3, 300]))))


def _normalise(x):
    if isinstance(x, memoryview):
        return bytes(x)
    if isinstance(x, msgpack.ExtType):
        return ("ext", x.code, bytes(x.data))
    if isinstance(x, msgpack_oracle.ExtType):
        return ("ext", x.code, x.data)
    if isinstance(x, list):
        return [_normalise(v) for v in x]
    if isinstance(x, dict):
        return {k: _normalise(v) for k, v in x.items()}
    return x


def test_decoder_matches_the_msgpack_package(rng):
    for _ in range(200):
        obj = _random_object(rng)
        for single_float in (False, True):
            data = msgpack_oracle.packb(obj, use_bin_type=True, use_single_float=single_float)
            want = msgpack_oracle.unpackb(data, raw=False, strict_map_key=False)
            assert _normalise(msgpack.unpackb(data)) == _normalise(want)


def test_decoder_rejects_malformed_input(rng):
    data = msgpack_oracle.packb({"a": [1, 2, "three", b"four" * 10]}, use_bin_type=True)
    for cut in range(1, len(data)):
        with pytest.raises(ValueError, match=r"\[msgpack\]"):
            msgpack.unpackb(data[:cut])
    with pytest.raises(ValueError, match="trailing data"):
        msgpack.unpackb(data + b"\x00")
    with pytest.raises(ValueError, match="claims 4294967295 elements"):
        msgpack.unpackb(b"\xdd\xff\xff\xff\xff")
    with pytest.raises(ValueError, match="nesting deeper than 200"):
        msgpack.unpackb(b"\x91" * 100000 + b"\xc0")
    with pytest.raises(ValueError, match="unknown type byte 0xc1"):
        msgpack.unpackb(b"\xc1")
    with pytest.raises(ValueError, match="not hashable"):
        msgpack.unpackb(b"\x81\x90\x01")
    with pytest.raises(ValueError, match="invalid UTF-8"):
        msgpack.unpackb(b"\xa2\xff\xfe")
