"""vmap: vectorizing a function over a batch axis of its inputs.

The function is traced once over PLACEHOLDERs of the *unbatched* shapes; the
graph between them and the outputs is then rebuilt node by node with each
primitive's `vmap` rule, fed with the real batched inputs. Nodes that do not
depend on a vmapped input are shared as they are. Nested vmap works because
the inner vmap's rebuilt graph is an ordinary graph over the outer vmap's
placeholders.
"""
import functools

import optree

from .array import array
from .graph import TREE_NAMESPACE, dependent_nodes, node_id, node_of, placeholder
from .manipulation import broadcast_to, expand_dims, moveaxis
from .primitives import rules_of


def _flatten(tree):
    # None leaves count here (an argument may be None); they are never batched.
    return optree.tree_flatten(tree, none_is_leaf=True, namespace=TREE_NAMESPACE)


def _leaf_axes(prefix, tree, what):
    """One axis (int or None) per leaf of tree from an in_axes/out_axes prefix:
    an int, None, or a tree matching a prefix of tree's structure (JAX)."""
    n = len(_flatten(tree)[0])
    if prefix is None or isinstance(prefix, int):
        return [prefix] * n
    try:
        full = optree.tree_broadcast_prefix(prefix, tree, none_is_leaf=True,
                                            namespace=TREE_NAMESPACE)
    except ValueError as e:
        raise ValueError(f"[vmap] {what} does not match the structure of the "
                         f"arguments: {e}") from None
    return optree.tree_leaves(full, none_is_leaf=True, namespace=TREE_NAMESPACE)


def vmap(fun, in_axes=0, out_axes=0):
    """fun vectorized over axis `in_axes` of its inputs, with the batch axis
    of its outputs at `out_axes` (ints, None, or trees of them as in JAX)."""

    @functools.wraps(fun)
    def wrapped(*args):
        axes_prefix = tuple(in_axes) if isinstance(in_axes, list) else in_axes
        if isinstance(axes_prefix, tuple) and len(axes_prefix) != len(args):
            raise ValueError(f"[vmap] in_axes has {len(axes_prefix)} entries for "
                             f"{len(args)} arguments")
        leaves, spec = _flatten(args)
        axes = _leaf_axes(axes_prefix, args, "in_axes")
        size = None
        sources, batched, traced = [], [], []
        for x, ax in zip(leaves, axes):
            if ax is None:
                traced.append(x)
                continue
            if not isinstance(x, array):
                raise TypeError(f"[vmap] a vmapped input must be an array, got "
                                f"{type(x).__name__}")
            if not -x.ndim <= ax < x.ndim:
                raise ValueError(f"[vmap] in_axes {ax} is out of range for an input of "
                                 f"shape {x.shape}")
            ax %= x.ndim
            if size is None:
                size = x.shape[ax]
            elif x.shape[ax] != size:
                raise ValueError(f"[vmap] inputs have different sizes along their vmapped "
                                 f"axes: {size} and {x.shape[ax]}")
            ph = placeholder(x.shape[:ax] + x.shape[ax + 1:], x.dtype, "vmap")
            sources.append(ph)
            batched.append((x, ax))
            traced.append(ph)
        if size is None:
            raise ValueError("[vmap] at least one input must have a vmapped axis "
                             "(in_axes is None everywhere)")
        outputs = fun(*optree.tree_unflatten(spec, traced))
        out_leaves, out_spec = _flatten(outputs)
        for o in out_leaves:
            if not isinstance(o, array):
                raise TypeError(f"[vmap] outputs must be arrays, got {type(o).__name__}")
        results = rebuild(sources, batched, out_leaves)
        oaxes = _leaf_axes(out_axes, outputs, "out_axes")
        final = []
        for (val, ax), oax in zip(results, oaxes):
            final.append(_place_batch(val, ax, oax, size))
        return optree.tree_unflatten(out_spec, final)

    return wrapped


def rebuild(sources, batched, outputs):
    """Rebuilds the graph from `sources` (placeholders) to `outputs` with the
    vmap rules, the sources standing for `batched` ((array, axis) pairs).
    Returns (value, batch axis or None) per output."""
    values = {node_id(s): b for s, b in zip(sources, batched)}
    for a in dependent_nodes(outputs, sources):
        aid = node_id(a)
        if aid in values:
            continue
        node = node_of(a)
        ins, axes = [], []
        for x in node.inputs:
            v = values.get(node_id(x))
            ins.append(x if v is None else v[0])
            axes.append(None if v is None else v[1])
        out, ax = rules_of(node.prim).vmap(node, ins, axes)
        values[aid] = (out, ax)
    return [values.get(node_id(o), (o, None)) for o in outputs]


def _place_batch(value, axis, out_axis, size):
    if out_axis is None:
        if axis is not None:
            raise ValueError("[vmap] out_axes is None for an output that depends on a "
                             "vmapped input")
        return value
    if axis is None:
        value = broadcast_to(expand_dims(value, 0), (size,) + value.shape)
        axis = 0
    if not -value.ndim <= out_axis < value.ndim:
        raise ValueError(f"[vmap] out_axes {out_axis} is out of range for an output of "
                         f"{value.ndim} dimensions")
    out_axis %= value.ndim
    return value if axis == out_axis else moveaxis(value, axis, out_axis)
