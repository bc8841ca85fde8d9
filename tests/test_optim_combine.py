"""chain, named_chain and partition against optax."""
import collections

import numpy as np
import optax
import pytest

import ember.core as em
from ember import optim

from optim_oracle import compare


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_chain_matches_optax(rng, dtype):
    def build(lib):
        return lib.chain(lib.clip_by_global_norm(1.0), lib.scale_by_adam(),
                         lib.add_decayed_weights(0.01), lib.scale_by_learning_rate(0.01))
    compare(rng, build(optim), build(optax), dtype=dtype)


def test_named_chain_matches_optax(rng):
    def build(lib):
        return lib.named_chain(("clip", lib.clip(0.5)), ("adam", lib.scale_by_adam()),
                               ("lr", lib.scale(-0.01)))
    ours, _ = compare(rng, build(optim), build(optax))
    assert isinstance(ours, collections.OrderedDict)
    assert list(ours) == ["clip", "adam", "lr"]


def test_named_chain_rejects_duplicate_names():
    with pytest.raises(ValueError, match="unique names"):
        optim.named_chain(("a", optim.identity()), ("a", optim.identity()))


def test_chain_passes_extra_args_to_the_transformations_that_take_them(rng):
    values = rng.uniform(0.5, 2.0, 20)

    def build(lib):
        return lib.chain(lib.scale_by_adam(), lib.scale_by_polyak(max_learning_rate=0.3))
    compare(rng, build(optim), build(optax),
            extra_args=lambda step: {"value": float(values[step])})


def test_chain_rejects_a_state_of_another_length():
    tx = optim.chain(optim.scale(2.0), optim.scale(3.0))
    params = {"a": em.ones((2,))}
    with pytest.raises(ValueError, match="number of updates and states"):
        tx.update(params, (optim.EmptyState(),), params)


LABEL_SHAPES = {"w": (5, 7), "b": (7,), "conv": (3, 2, 4), "scale": (), "deep": [(3,), (2, 3)]}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_partition_with_a_label_tree_matches_optax(rng, dtype):
    labels = {"w": "adam", "b": "sgd", "conv": "adam", "scale": "frozen", "deep": ["sgd", "adam"]}

    def build(lib):
        return lib.partition({"adam": lib.adam(0.01), "sgd": lib.sgd(0.1, momentum=0.9),
                              "frozen": lib.set_to_zero()}, labels)
    compare(rng, build(optim), build(optax), dtype=dtype)


def test_partition_with_a_prefix_label_tree_matches_optax(rng):
    labels = {"w": "adam", "b": "sgd", "conv": "adam", "scale": "sgd", "deep": "adam"}

    def build(lib):
        return lib.partition({"adam": lib.adam(0.01), "sgd": lib.sgd(0.1)}, labels)
    compare(rng, build(optim), build(optax))


def test_multi_transform_with_a_label_function_matches_optax(rng):
    def label_fn(params):
        return {k: ("decay" if k in ("w", "conv") else "plain") for k in params}

    def build(lib):
        return lib.multi_transform({"decay": lib.adamw(0.01, weight_decay=0.1),
                                    "plain": lib.adam(0.02)}, label_fn)
    compare(rng, build(optim), build(optax))


def test_partition_rejects_labels_without_a_transformation():
    tx = optim.partition({"a": optim.sgd(0.1)}, {"x": "a", "y": "b"})
    with pytest.raises(ValueError, match="Some parameters have no corresponding transformation"):
        tx.init({"x": em.ones((2,)), "y": em.ones((2,))})
