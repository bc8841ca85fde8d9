"""Walking pytrees for ember.optim, with errors that name the path that differs.

Optax walks trees with `jax.tree.map`; ember.optim walks them with optree in the
same way (dict keys sorted, NamedTuples are nodes, `None` is an empty subtree),
so a state built here flattens to the same leaves in the same order as optax's.
What this adds is the error: when the trees handed to one call do not match
(updates against params, updates against a moment in the state), the message
names both arguments and the dotted path where they part, e.g.
`ValueError("[optim] updates and params differ at 'layer.w': ...")`.
"""
from typing import Any, Callable, Optional, Sequence

import optree


def path_str(path: Sequence[Any]) -> str:
    """A dotted path ('layer.0.w') from a tuple of keys; '<root>' when empty."""
    return ".".join(str(k) for k in path) if path else "<root>"


def _entries(node, flat):
    """The keys of node's children: field names for NamedTuples, else optree's entries."""
    fields = getattr(type(node), "_fields", None)
    if fields is not None and isinstance(node, tuple):
        return tuple(fields)
    return tuple(flat.entries)


def _describe(node, is_leaf) -> str:
    if optree.tree_is_leaf(node, is_leaf=is_leaf, none_is_leaf=False):
        return f"a leaf ({type(node).__name__})"
    flat = optree.tree_flatten_one_level(node, is_leaf=is_leaf, none_is_leaf=False)
    return f"a {type(node).__name__} with keys {list(_entries(node, flat))}"


def find_mismatch(reference: Any, other: Any, is_leaf=None, path=()) -> Optional[str]:
    """Where `other` stops having `reference`'s structure, or None if it has it.

    `other` may hold whole subtrees where `reference` has leaves (a prefix match,
    as `jax.tree.map` allows for its later arguments)."""
    if optree.tree_is_leaf(reference, is_leaf=is_leaf, none_is_leaf=False):
        return None
    ref_flat = optree.tree_flatten_one_level(reference, is_leaf=is_leaf, none_is_leaf=False)
    if (optree.tree_is_leaf(other, is_leaf=is_leaf, none_is_leaf=False)
            or type(other) is not type(reference)):
        return (f"at '{path_str(path)}': {_describe(reference, is_leaf)} against "
                f"{_describe(other, is_leaf)}")
    other_flat = optree.tree_flatten_one_level(other, is_leaf=is_leaf, none_is_leaf=False)
    ref_keys, other_keys = _entries(reference, ref_flat), _entries(other, other_flat)
    if ref_keys != other_keys:
        return (f"at '{path_str(path)}': keys {list(ref_keys)} against {list(other_keys)}")
    for key, ref_child, other_child in zip(ref_keys, ref_flat.children, other_flat.children):
        found = find_mismatch(ref_child, other_child, is_leaf, path + (key,))
        if found:
            return found
    return None


def _default_names(count: int) -> tuple:
    return tuple(f"tree {i}" for i in range(count))


def flatten_matching(trees: Sequence[Any], names: Optional[Sequence[str]] = None,
                     is_leaf: Optional[Callable] = None):
    """(list of leaf lists, treedef of trees[0]); raises ValueError naming the path
    where a later tree's structure differs from the first's."""
    names = tuple(names) if names is not None else _default_names(len(trees))
    leaves, treedef = optree.tree_flatten(trees[0], is_leaf=is_leaf, none_is_leaf=False)
    columns = [leaves]
    for name, other in zip(names[1:], trees[1:]):
        try:
            columns.append(treedef.flatten_up_to(other))
        except ValueError:
            where = find_mismatch(trees[0], other, is_leaf) or f"({treedef} against {other!r})"
            raise ValueError(f"[optim] {names[0]} and {name} have different tree structures "
                             f"{where}") from None
    return columns, treedef


def tree_map(fn: Callable, tree: Any, *rest: Any, names: Optional[Sequence[str]] = None,
             is_leaf: Optional[Callable] = None) -> Any:
    """fn applied leaf by leaf over tree and the matching leaves of rest.

    A ValueError or TypeError raised by fn (an ember op refusing two shapes)
    comes back with the leaf's path added, so the message says which leaf."""
    trees = (tree, *rest)
    columns, treedef = flatten_matching(trees, names, is_leaf)
    results = []
    for index, args in enumerate(zip(*columns)):
        try:
            results.append(fn(*args))
        except (ValueError, TypeError) as error:
            path = path_str(optree.tree_paths(tree, is_leaf=is_leaf, none_is_leaf=False)[index])
            which = f" {' and '.join(names)}" if names else ""
            raise type(error)(f"[optim]{which} at leaf '{path}': {error}") from error
    return treedef.unflatten(results)


def tree_leaves(tree: Any, is_leaf: Optional[Callable] = None) -> list:
    """The leaves of tree in optree's (and jax's) order; None is an empty subtree."""
    return optree.tree_leaves(tree, is_leaf=is_leaf, none_is_leaf=False)


def tree_flatten(tree: Any, is_leaf: Optional[Callable] = None):
    """(leaves, treedef) in optree's (and jax's) order."""
    return optree.tree_flatten(tree, is_leaf=is_leaf, none_is_leaf=False)


def tree_structure(tree: Any, is_leaf: Optional[Callable] = None):
    return optree.tree_structure(tree, is_leaf=is_leaf, none_is_leaf=False)


def tree_flatten_with_path(tree: Any, is_leaf: Optional[Callable] = None):
    """(paths, leaves, treedef), paths as tuples of keys."""
    return optree.tree_flatten_with_path(tree, is_leaf=is_leaf, none_is_leaf=False)


def is_none(x) -> bool:
    return x is None
