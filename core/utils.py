"""Tree utilities, as mlx.utils has them.

A tree is any nesting of lists, tuples and dicts (subclasses included); all
else is a leaf. Paths are dotted strings: {"a": {"b": [x, y]}} flattens to
[("a.b.0", x), ("a.b.1", y)]. Dicts are walked in insertion order, as MLX
does; optree (used by the transforms) would sort their keys instead, so these
functions are written out in plain Python to keep MLX's order and semantics.
"""
from collections import defaultdict
from typing import Any, Callable, Optional


def _rebuild(tree, children):
    """A container of tree's type holding `children` (namedtuples included)."""
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*children)
    return type(tree)(children)


def tree_map(fn: Callable, tree: Any, *rest: Any, is_leaf: Optional[Callable] = None) -> Any:
    """Applies fn to the leaves of tree and returns a tree of the results.

    Each tree in rest has at least tree's structure; its matching subtrees
    are passed to fn as further arguments."""
    if is_leaf is not None and is_leaf(tree):
        return fn(tree, *rest)
    if isinstance(tree, (list, tuple)):
        return _rebuild(tree, [tree_map(fn, child, *(r[i] for r in rest), is_leaf=is_leaf)
                               for i, child in enumerate(tree)])
    if isinstance(tree, dict):
        return {k: tree_map(fn, child, *(r[k] for r in rest), is_leaf=is_leaf)
                for k, child in tree.items()}
    return fn(tree, *rest)


def tree_map_with_path(fn: Callable, tree: Any, *rest: Any,
                       is_leaf: Optional[Callable] = None, path: Optional[Any] = None) -> Any:
    """Like tree_map, calling fn(path, leaf, *rest_leaves) with the leaf's
    dotted path (prefixed by `path`; None for a bare leaf without one)."""
    if is_leaf is not None and is_leaf(tree):
        return fn(path, tree, *rest)
    prefix = f"{path}." if path else ""
    if isinstance(tree, (list, tuple)):
        return _rebuild(tree, [
            tree_map_with_path(fn, child, *(r[i] for r in rest), is_leaf=is_leaf,
                               path=f"{prefix}{i}")
            for i, child in enumerate(tree)])
    if isinstance(tree, dict):
        return {k: tree_map_with_path(fn, child, *(r[k] for r in rest), is_leaf=is_leaf,
                                      path=f"{prefix}{k}")
                for k, child in tree.items()}
    return fn(path, tree, *rest)


def tree_flatten(tree: Any, prefix: str = "", is_leaf: Optional[Callable] = None,
                 destination=None):
    """[(dotted path, leaf), ...] for the leaves of tree, in order.

    As in MLX, the first character of prefix is dropped (".hello" gives
    "hello.0"). With a dict or list as destination, the pairs are added to it
    and it is returned."""
    items = []
    stack = [(prefix, tree)]
    while stack:  # depth first, children pushed in reverse to keep their order
        key, node = stack.pop()
        if is_leaf is not None and is_leaf(node):
            items.append((key[1:], node))
        elif isinstance(node, (list, tuple)):
            stack.extend((f"{key}.{i}", child) for i, child in reversed(list(enumerate(node))))
        elif isinstance(node, dict):
            stack.extend((f"{key}.{k}", child) for k, child in reversed(list(node.items())))
        else:
            items.append((key[1:], node))
    if destination is None:
        return items
    if isinstance(destination, dict):
        destination.update(items)
    else:
        destination.extend(items)
    return destination


def tree_unflatten(tree):
    """Rebuilds nested lists and dicts from [(dotted path, leaf), ...] (or a
    dict of them). A level whose keys are all integers becomes a list, with
    {} standing in for missing indices as in MLX."""
    items = list(tree.items()) if isinstance(tree, dict) else list(tree)
    if not items:
        return {}
    if len(items) == 1 and items[0][0] == "":
        return items[0][1]
    children = defaultdict(list)
    for key, value in items:
        head, _, tail = key.partition(".")
        children[head].append((tail, value))
    if all(k.isdecimal() for k in children):
        out = []
        for index, k in sorted((int(k), k) for k in children):
            out.extend({} for _ in range(index - len(out)))
            out.append(tree_unflatten(children[k]))
        return out
    return {k: tree_unflatten(sub) for k, sub in children.items()}


def tree_reduce(fn: Callable, tree: Any, initializer=None, is_leaf: Optional[Callable] = None):
    """Folds fn(accumulator, leaf) over the leaves of tree, in order, starting
    from initializer or, without one, from the first leaf (None for no leaves)."""
    accumulator = initializer
    for _, leaf in tree_flatten(tree, is_leaf=is_leaf):
        accumulator = leaf if accumulator is None else fn(accumulator, leaf)
    return accumulator
