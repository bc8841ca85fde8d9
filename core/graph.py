"""Reading the lazy graph from Python: what the transforms walk.

Transforms trace a function by calling it on stand-in inputs (an IDENTITY view
of each real input for grad/jvp, value-less PLACEHOLDERs for vmap/compile),
then walk the graph between those inputs and the function's outputs with the
per-primitive rules of core/primitives.py. Nodes are identified by their C
pointer. While tracing, `keep_graph()` stops eval from dropping the inputs of
nodes it computes, so a function that prints or evaluates a value part-way
keeps a complete graph behind it.
"""
from contextlib import contextmanager

import optree

from ._ffi import ffi, lib
from .array import _op, _wrap_retained, array
from .primitives import Node

# Pytrees everywhere in the transforms: dicts, lists, tuples, NamedTuples, None
# (an empty subtree), and classes registered with optree under this namespace.
TREE_NAMESPACE = "ember"


def tree_flatten(tree):
    return optree.tree_flatten(tree, none_is_leaf=False, namespace=TREE_NAMESPACE)


def tree_unflatten(spec, leaves):
    return optree.tree_unflatten(spec, leaves)


def node_id(a: array) -> int:
    return int(ffi.cast("uintptr_t", a._p))


def node_of(a: array) -> Node:
    """The rules' view of the node that computes `a`."""
    p = a._p
    inputs = [_wrap_retained(lib.em_input(p, i)) for i in range(lib.em_num_inputs(p))]
    nip, nfp = lib.em_num_iparams(p), lib.em_num_fparams(p)
    ip = tuple(ffi.unpack(lib.em_iparams(p), nip)) if nip else ()
    fp = tuple(ffi.unpack(lib.em_fparams(p), nfp)) if nfp else ()
    return Node(lib.em_prim_of(p), inputs, ip, fp, a)


def is_leaf(a: array) -> bool:
    return lib.em_prim_of(a._p) < 0


def identity(a: array) -> array:
    """A zero-copy stand-in for `a` that the transforms can tell apart from it."""
    return _op(lib.EM_P_IDENTITY, [a])


def placeholder(shape, dtype, transform: str) -> array:
    """A value-less input of the given shape and dtype; evaluating it raises an
    error that names the transform ('vmap' or 'compile')."""
    kind = 0 if transform == "vmap" else 1
    return _op(lib.EM_P_PLACEHOLDER, [], (kind, dtype.value, *shape))


@contextmanager
def keep_graph():
    lib.em_keep_graph(1)
    try:
        yield
    finally:
        lib.em_keep_graph(0)


def dependent_nodes(outputs, sources) -> list:
    """The nodes between `sources` and `outputs`: every node reachable from an
    output that depends on a source, inputs before consumers (sources
    included, as arrays). The walk does not go below a source."""
    source_ids = {node_id(s) for s in sources}
    depends = {}          # node id -> bool, once all its inputs are known
    order = []
    for root in outputs:
        rid = node_id(root)
        if rid in depends:
            continue
        stack = [(root, rid, None)]
        while stack:
            a, aid, pending_inputs = stack[-1]
            if pending_inputs is None:
                if aid in source_ids:
                    depends[aid] = True
                    order.append(a)
                    stack.pop()
                    continue
                if is_leaf(a):
                    depends[aid] = False
                    stack.pop()
                    continue
                p = a._p
                pending_inputs = [_wrap_retained(lib.em_input(p, i))
                                  for i in range(lib.em_num_inputs(p))]
                stack[-1] = (a, aid, pending_inputs)
            # descend into the next input not yet classified
            while pending_inputs and node_id(pending_inputs[-1]) in depends:
                pending_inputs.pop()
            if pending_inputs:
                child = pending_inputs.pop()
                stack.append((child, node_id(child), None))
                continue
            stack.pop()
            p = a._p
            dep = any(depends.get(int(ffi.cast("uintptr_t", lib.em_input(p, i))), False)
                      for i in range(lib.em_num_inputs(p)))
            depends[aid] = dep
            if dep:
                order.append(a)
    return order
