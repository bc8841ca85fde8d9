"""custom_function (user-supplied vjp/jvp/vmap rules) and checkpoint.

A call of a custom_function runs the function, then wraps each output in a
CUSTOM node whose inputs are all the outputs followed by the flattened
primals. The node evaluates to its output (a view), while its rules, looked
up by the key in its parameters, call the user's overrides with the primals
and outputs rebuilt into their trees. Without an override, a rule defers to
the function's own graph, so transforms see through it.

checkpoint(fun) is a custom_function whose vjp calls fun again: the backward
pass recomputes the forward intermediates instead of keeping them alive.
"""
import functools

import optree

from ._ffi import lib
from .array import _op, array
from .creation import zeros
from .graph import TREE_NAMESPACE, tree_flatten, tree_unflatten
from .primitives import register

# key -> (custom_function, primals tree spec, outputs tree spec); one entry per
# distinct call signature of each custom function.
_SIGNATURES = {}
_KEYS = {}


def _signature_key(fn, primal_spec, out_spec):
    sig = (id(fn), primal_spec, out_spec)
    key = _KEYS.get(sig)
    if key is None:
        key = len(_SIGNATURES)
        _KEYS[sig] = key
        _SIGNATURES[key] = (fn, primal_spec, out_spec)
    return key


class custom_function:
    """Wraps fun so its transforms can be overridden (mlx.core.custom_function):

        @custom_function
        def f(x, y): ...
        @f.vjp
        def f_vjp(primals, cotangents, outputs): ...   # -> cotangents of primals
        @f.jvp
        def f_jvp(primals, tangents): ...               # -> tangents of outputs
        @f.vmap
        def f_vmap(inputs, axes): ...                   # -> (outputs, out_axes)

    primals/inputs are the positional arguments (keyword arguments are passed
    to fun but not transformed); cotangents, tangents and outputs have the
    structure of fun's result."""

    def __init__(self, fun):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.vjp_rule = self.jvp_rule = self.vmap_rule = None

    def vjp(self, rule):
        self.vjp_rule = rule
        return rule

    def jvp(self, rule):
        self.jvp_rule = rule
        return rule

    def vmap(self, rule):
        self.vmap_rule = rule
        return rule

    def __call__(self, *args, **kwargs):
        primals, primal_spec = tree_flatten(args)
        for x in primals:
            if not isinstance(x, array):
                raise TypeError(f"[custom_function] positional arguments must be arrays or "
                                f"trees of arrays, got {type(x).__name__}")
        outputs = self.fun(*args, **kwargs)
        outs, out_spec = tree_flatten(outputs)
        for o in outs:
            if not isinstance(o, array):
                raise TypeError(f"[custom_function] outputs must be arrays or trees of "
                                f"arrays, got {type(o).__name__}")
        key = _signature_key(self, primal_spec, out_spec)
        inputs = outs + primals
        wrapped = [_op(lib.EM_P_CUSTOM, inputs, (key, i, len(outs))) for i in range(len(outs))]
        return tree_unflatten(out_spec, wrapped)


def _parts(node):
    """(custom_function, primals tree, outputs tree, output index, n outputs)."""
    key, index, n_out = node.ip
    fn, primal_spec, out_spec = _SIGNATURES[key]
    outs, primals = node.inputs[:n_out], node.inputs[n_out:]
    return (fn, tree_unflatten(primal_spec, primals), tree_unflatten(out_spec, outs), out_spec,
            index, n_out)


def _custom_vjp(node, g):
    fn, primals, outputs, out_spec, index, n_out = _parts(node)
    if fn.vjp_rule is None:  # differentiate the function's own graph
        return [g if j == index else None for j in range(n_out)] + \
               [None] * (len(node.inputs) - n_out)
    cots = [g if j == index else zeros(o.shape, o.dtype)
            for j, o in enumerate(node.inputs[:n_out])]
    result = fn.vjp_rule(primals, tree_unflatten(out_spec, cots), outputs)
    grads, _ = tree_flatten(result)
    if len(grads) != len(node.inputs) - n_out:
        raise ValueError(f"[custom_function] the vjp of {fn.__name__} returned {len(grads)} "
                         f"cotangents for {len(node.inputs) - n_out} primals")
    return [None] * n_out + grads


def _custom_jvp(node, tangents):
    fn, primals, _, _, index, n_out = _parts(node)
    if fn.jvp_rule is None:
        return tangents[index]
    primal_tangents = [t if t is not None else zeros(x.shape, x.dtype)
                       for t, x in zip(tangents[n_out:], node.inputs[n_out:])]
    primal_spec = _SIGNATURES[node.ip[0]][1]
    result = fn.jvp_rule(primals, tree_unflatten(primal_spec, primal_tangents))
    return tree_flatten(result)[0][index]


def _custom_vmap(node, inputs, axes):
    fn, _, _, _, index, n_out = _parts(node)
    if fn.vmap_rule is None:
        return inputs[index], axes[index]
    primal_spec = _SIGNATURES[node.ip[0]][1]
    outs, out_axes = fn.vmap_rule(tree_unflatten(primal_spec, inputs[n_out:]),
                                  tree_unflatten(primal_spec, axes[n_out:]))
    flat_outs = tree_flatten(outs)[0]
    if out_axes is None or isinstance(out_axes, int):
        flat_axes = [out_axes] * len(flat_outs)
    else:
        flat_axes = optree.tree_leaves(out_axes, none_is_leaf=True, namespace=TREE_NAMESPACE)
    return flat_outs[index], flat_axes[index]


register(lib.EM_P_CUSTOM, jvp=_custom_jvp, vjp=_custom_vjp, vmap=_custom_vmap)


def checkpoint(fun):
    """fun, with its backward pass recomputing fun's intermediates from its
    inputs instead of storing them (mlx.core.checkpoint; JAX's remat)."""
    from .autodiff import vjp

    cf = custom_function(fun)

    @cf.vjp
    def _recompute(primals, cotangents, outputs):
        flat, spec = tree_flatten(primals)
        cots = tree_flatten(cotangents)[0]

        def flat_fun(*leaves):
            return tree_flatten(fun(*tree_unflatten(spec, leaves)))[0]

        _, grads = vjp(flat_fun, flat, cots)
        return grads

    return cf
