"""ember.core.utils against mlx.utils: its documented examples, and random
nested dicts/lists/tuples of ember arrays whose expected flat form is written
down while the tree is generated."""
from collections import OrderedDict, namedtuple

import numpy as np
import pytest

import ember.core as em
from ember.core.utils import (tree_flatten, tree_map, tree_map_with_path, tree_reduce,
                              tree_unflatten)

Pair = namedtuple("Pair", ["left", "right"])


def random_tree(rng, depth=3, path=""):
    """(tree, [(dotted path, leaf), ...] in MLX's depth-first, insertion order).

    Dict keys are random and unsorted, so a walk that sorts keys shows up."""
    kind = rng.choice(["dict", "list", "tuple", "leaf"]) if depth else "leaf"
    if kind == "leaf":
        shape = tuple(rng.integers(1, 4, rng.integers(0, 3)))
        leaf = em.array(rng.standard_normal(shape).astype(np.float32))
        return leaf, [(path, leaf)]
    n = int(rng.integers(1, 4))
    keys = list(range(n)) if kind != "dict" else list(dict.fromkeys(
        "".join(rng.choice(list("zyxwvu"), 3)) for _ in range(n)))
    children, flat = [], []
    for k in keys:
        child, child_flat = random_tree(rng, depth - 1, f"{path}.{k}" if path else str(k))
        children.append(child)
        flat += child_flat
    if kind == "dict":
        return dict(zip(keys, children)), flat
    return (children if kind == "list" else tuple(children)), flat


def as_lists(tree):
    """What tree_unflatten gives back: tuples become lists."""
    if isinstance(tree, (list, tuple)):
        return [as_lists(x) for x in tree]
    if isinstance(tree, dict):
        return {k: as_lists(v) for k, v in tree.items()}
    return tree


def assert_same_tree(actual, expected):
    """Same containers (types, key order) and the very same leaf objects."""
    assert type(actual) is type(expected)
    if isinstance(expected, dict):
        assert list(actual) == list(expected)
        for k in expected:
            assert_same_tree(actual[k], expected[k])
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_same_tree(a, e)
    else:
        assert actual is expected


# ---- mlx.utils' documented examples ----

def test_mlx_documented_examples():
    assert tree_flatten([[[0]]]) == [("0.0.0", 0)]
    assert tree_flatten([[[0]]], prefix=".hello") == [("hello.0.0.0", 0)]
    assert tree_flatten({"a": {"b": 1}}, destination={}) == {"a.b": 1}
    assert tree_unflatten([("hello.world", 42)]) == {"hello": {"world": 42}}
    paths = []
    tree_map_with_path(lambda path, _: paths.append(path),
                       {"model": [{"w": 0, "b": 1}, {"w": 0, "b": 1}]})
    assert paths == ["model.0.w", "model.0.b", "model.1.w", "model.1.b"]
    assert tree_reduce(lambda acc, x: acc + x, {"a": [1, 2, 3], "b": [4, 5]}, 0) == 15


# ---- tree_flatten ----

@pytest.mark.parametrize("trial", range(5))
def test_flatten_paths_and_order(rng, trial):
    tree, expected = random_tree(rng)
    got = tree_flatten(tree)
    assert [k for k, _ in got] == [k for k, _ in expected]
    assert all(a is b for (_, a), (_, b) in zip(got, expected))


def test_flatten_prefix_drops_its_first_character(rng):
    tree, expected = random_tree(rng, depth=2)
    for prefix in (".run", "_run", "x", ""):
        # The prefix is joined to each path with a dot, then the first character dropped.
        want = [(prefix + (f".{k}" if k else ""))[1:] for k, _ in expected]
        assert [k for k, _ in tree_flatten(tree, prefix=prefix)] == want
    assert tree_flatten({"a": [7]}, prefix="x") == [(".a.0", 7)]  # what MLX gives


def test_flatten_into_destination(rng):
    tree, expected = random_tree(rng)
    first = em.array(rng.standard_normal(2).astype(np.float32))
    into_list = [("first", first)]
    assert tree_flatten(tree, destination=into_list) is into_list
    assert [k for k, _ in into_list] == ["first"] + [k for k, _ in expected]
    into_dict = {"first": first}
    assert tree_flatten(tree, destination=into_dict) is into_dict
    assert list(into_dict) == ["first"] + [k for k, _ in expected]
    assert all(into_dict[k] is v for k, v in expected)


def test_flatten_is_leaf_and_none_and_subclasses(rng):
    a, b = (em.array(rng.standard_normal(3).astype(np.float32)) for _ in range(2))
    tree = OrderedDict(z=Pair(a, None), y={"p": (a, b)})
    assert tree_flatten(tree) == [("z.0", a), ("z.1", None), ("y.p.0", a), ("y.p.1", b)]
    assert tree_flatten(tree, is_leaf=lambda x: isinstance(x, tuple)) == [
        ("z", tree["z"]), ("y.p", (a, b))]
    assert tree_flatten(a) == [("", a)]
    assert tree_flatten(a, prefix=".w") == [("w", a)]


# ---- tree_unflatten ----

@pytest.mark.parametrize("trial", range(5))
def test_unflatten_inverts_flatten(rng, trial):
    tree, flat = random_tree(rng)
    assert_same_tree(tree_unflatten(tree_flatten(tree)), as_lists(tree))
    assert_same_tree(tree_unflatten(dict(flat)), as_lists(tree))


def test_unflatten_integer_levels_become_lists(rng):
    leaves = [em.array(float(v)) for v in rng.standard_normal(12)]
    flat = [(f"layers.{i}.w", x) for i, x in enumerate(leaves)]
    rng.shuffle(flat)  # the order of the pairs does not matter for list levels
    got = tree_unflatten(flat)
    assert_same_tree(got, {"layers": [{"w": x} for x in leaves]})  # 10 and 11 after 9
    # Missing indices are filled with {} as in MLX.
    assert_same_tree(tree_unflatten([("1", leaves[0]), ("3.a", leaves[1])]),
                     [{}, leaves[0], {}, {"a": leaves[1]}])
    assert tree_unflatten([("", leaves[2])]) is leaves[2]
    assert tree_unflatten([]) == {}


# ---- tree_map and tree_map_with_path ----

def test_tree_map_computes_each_leaf(rng):
    tree, flat = random_tree(rng)
    out = tree_map(lambda x: x * 2 + 1, tree)
    assert [k for k, _ in tree_flatten(out)] == [k for k, _ in flat]
    for (_, got), (_, x) in zip(tree_flatten(out), flat):
        np.testing.assert_allclose(np.asarray(got), np.asarray(x) * 2 + 1, rtol=1e-6)
    assert_same_tree(tree_map(lambda x: x, tree), tree)


def test_tree_map_with_rest_and_structure_kept(rng):
    a, b, c = (em.array(rng.standard_normal((2, 3)).astype(np.float32)) for _ in range(3))
    tree = {"q": Pair(a, [b]), "k": (c,)}
    other = {"k": (b, "extra"), "q": Pair(c, [a]), "unused": 0}  # a superset, as in MLX
    out = tree_map(lambda x, y: x - y, tree, other)
    assert list(out) == ["q", "k"] and type(out["q"]) is Pair and type(out["k"]) is tuple
    np.testing.assert_allclose(np.asarray(out["q"].left), np.asarray(a) - np.asarray(c))
    np.testing.assert_allclose(np.asarray(out["q"].right[0]), np.asarray(b) - np.asarray(a))
    np.testing.assert_allclose(np.asarray(out["k"][0]), np.asarray(c) - np.asarray(b))
    stopped = tree_map(len, tree, is_leaf=lambda x: isinstance(x, Pair))
    assert stopped == {"q": 2, "k": (2,)}


def test_tree_map_with_path_gives_flatten_paths(rng):
    tree, flat = random_tree(rng)
    seen = []
    out = tree_map_with_path(lambda p, x: seen.append((p, x)) or p, tree)
    assert [p for p, _ in seen] == [k or None for k, _ in flat]
    assert all(x is y for (_, x), (_, y) in zip(seen, flat))
    assert tree_flatten(out)[0][1] == (flat[0][0] or None)
    prefixed = []
    tree_map_with_path(lambda p, x: prefixed.append(p), tree, path="model")
    assert prefixed == [f"model.{k}" if k else "model" for k, _ in flat]


def test_tree_map_with_path_rest_and_is_leaf(rng):
    a, b = (em.array(rng.standard_normal(4).astype(np.float32)) for _ in range(2))
    out = tree_map_with_path(lambda p, x, y: (p, x + y), {"l": [a, b]}, {"l": [b, a]})
    assert [p for p, _ in out["l"]] == ["l.0", "l.1"]
    np.testing.assert_allclose(np.asarray(out["l"][1][1]), np.asarray(a) + np.asarray(b))
    paths = tree_map_with_path(lambda p, x: p, {"l": [a, b]},
                               is_leaf=lambda x: isinstance(x, list))
    assert paths == {"l": "l"}


# ---- tree_reduce ----

def test_tree_reduce(rng):
    tree, flat = random_tree(rng)
    assert tree_reduce(lambda acc, x: acc + x.size, tree, 0) == sum(x.size for _, x in flat)
    leaves = [em.array(rng.standard_normal((2, 2)).astype(np.float32)) for _ in range(4)]
    total = tree_reduce(em.add, {"a": leaves[:2], "b": (leaves[2], {"c": leaves[3]})})
    np.testing.assert_allclose(np.asarray(total),
                               np.sum([np.asarray(x) for x in leaves], axis=0), rtol=1e-6)
    order = tree_reduce(lambda acc, x: acc + [x], tree, [])
    assert all(x is y for x, (_, y) in zip(order, flat)) and len(order) == len(flat)
    counted = tree_reduce(lambda acc, x: acc + 1, {"a": [1, 2], "b": [3]}, 0,
                          is_leaf=lambda x: isinstance(x, list))
    assert counted == 2
    assert tree_reduce(lambda acc, x: acc + x, {}) is None
