"""Tree utilities (mlx.utils), built on optree.

Paths in flattened trees are dotted strings: {"a": {"b": [x, y]}} flattens
to [("a.b.0", x), ("a.b.1", y)], as MLX's tree_flatten writes them.
"""
from typing import Any, Callable, Optional

import optree


def _is_container(x) -> bool:
    return isinstance(x, (list, tuple, dict))


def tree_map(fn: Callable, tree: Any, *rest: Any, is_leaf: Optional[Callable] = None) -> Any:
    """Applies fn to the leaves of tree (and the matching leaves of rest)."""
    return optree.tree_map(fn, tree, *rest, is_leaf=is_leaf, none_is_leaf=True)


def tree_map_with_path(fn: Callable, tree: Any, *rest: Any,
                       is_leaf: Optional[Callable] = None, path: Optional[str] = None) -> Any:
    """Like tree_map, with fn(path, leaf, ...) where path is the dotted key."""
    def key(p):
        parts = [str(k) for k in p]
        if path:
            parts.insert(0, path)
        return ".".join(parts)
    return optree.tree_map_with_path(lambda p, *xs: fn(key(p), *xs), tree, *rest,
                                     is_leaf=is_leaf, none_is_leaf=True)


def tree_flatten(tree: Any, prefix: str = "", is_leaf: Optional[Callable] = None,
                 destination=None):
    """[(dotted path, leaf), ...] for the leaves of tree (a dict when destination is a dict)."""
    paths, leaves, _ = optree.tree_flatten_with_path(tree, is_leaf=is_leaf, none_is_leaf=True)
    items = []
    for p, leaf in zip(paths, leaves):
        key = ".".join(str(k) for k in p)
        if prefix:
            key = prefix.lstrip(".") + ("." + key if key else "")
        items.append((key, leaf))
    if destination is None:
        return items
    if isinstance(destination, dict):
        destination.update(items)
    else:
        destination.extend(items)
    return destination


def tree_unflatten(tree):
    """Rebuilds nested lists and dicts from [(dotted path, leaf), ...] (or a dict of them).

    A level whose keys are all integers becomes a list."""
    items = list(tree.items()) if isinstance(tree, dict) else list(tree)
    if len(items) == 1 and items[0][0] == "":
        return items[0][1]
    children = {}
    for key, value in items:
        head, _, tail = key.partition(".")
        children.setdefault(head, []).append((tail, value))
    if all(k.isdigit() for k in children):
        out = [None] * (max(int(k) for k in children) + 1)
        for k, sub in children.items():
            out[int(k)] = tree_unflatten(sub)
        return out
    return {k: tree_unflatten(sub) for k, sub in children.items()}


def tree_reduce(fn: Callable, tree: Any, initializer=None, is_leaf: Optional[Callable] = None):
    """Folds fn over the leaves of tree."""
    leaves = optree.tree_leaves(tree, is_leaf=is_leaf, none_is_leaf=True)
    if initializer is None:
        if not leaves:
            raise ValueError("[tree_reduce] empty tree and no initializer")
        acc, leaves = leaves[0], leaves[1:]
    else:
        acc = initializer
    for leaf in leaves:
        acc = fn(acc, leaf)
    return acc
