"""Reverse and forward mode differentiation on the lazy graph.

vjp: each input array is replaced by an IDENTITY view of it (a "source"), the
function is called, and the graph between the sources and the outputs is
walked backwards: each node's `vjp` rule (core/primitives.py) turns the
cotangent of its output into cotangents of its inputs, summed where a value
feeds several consumers. jvp walks the same graph forwards with the `jvp`
rules. The rules build ordinary lazy nodes, so the gradient is itself a graph:
grad(grad(f)) walks the graph the inner grad built, and nothing is computed
until the results are evaluated (together with the function's value, in one
pass over the graph).

grad and value_and_grad follow mlx.core (argnums, argnames, a function that
returns a tuple differentiates its first element) and JAX (has_aux);
jacfwd, jacrev and hessian follow JAX.
"""
import functools

from . import dtypes as _dt
from .array import array, asarray
from .graph import (dependent_nodes, identity, keep_graph, node_id, node_of, tree_flatten,
                    tree_unflatten)
from .primitives import rules_of


def _as_arrays(leaves, op):
    out = []
    for x in leaves:
        if not isinstance(x, array):
            raise TypeError(f"[{op}] inputs must be arrays or trees of arrays, "
                            f"got {type(x).__name__}")
        out.append(x)
    return out


def _accumulate(table, key, value):
    prev = table.get(key)
    table[key] = value if prev is None else prev + value


def backward(outputs, cotangents, sources) -> list:
    """Cotangents of `sources` given cotangents of `outputs` (lists of arrays);
    None for a source the outputs do not depend on."""
    order = dependent_nodes(outputs, sources)
    on_path = {node_id(a) for a in order}
    source_ids = {node_id(s) for s in sources}
    cot = {}
    for out, c in zip(outputs, cotangents):
        if c is not None and node_id(out) in on_path:
            _accumulate(cot, node_id(out), c)
    for a in reversed(order):
        aid = node_id(a)
        if aid in source_ids:
            continue
        g = cot.pop(aid, None)
        if g is None:
            continue
        node = node_of(a)
        grads = rules_of(node.prim).vjp(node, g)
        for x, gx in zip(node.inputs, grads):
            if gx is None or node_id(x) not in on_path:
                continue
            if gx.shape != x.shape:
                raise RuntimeError(f"[vjp] rule of {node.name} gave a cotangent of shape "
                                   f"{gx.shape} for an input of shape {x.shape}")
            if gx.dtype != x.dtype:
                gx = gx.astype(x.dtype)
            _accumulate(cot, node_id(x), gx)
    return [cot.get(node_id(s)) for s in sources]


def forward(sources, tangents, outputs) -> list:
    """Tangents of `outputs` given tangents of `sources` (None: zero)."""
    order = dependent_nodes(outputs, sources)
    tan = {node_id(s): t for s, t in zip(sources, tangents) if t is not None}
    source_ids = {node_id(s) for s in sources}
    for a in order:
        aid = node_id(a)
        if aid in source_ids:
            continue
        node = node_of(a)
        ts = [tan.get(node_id(x)) for x in node.inputs]
        if all(t is None for t in ts):
            continue
        t = rules_of(node.prim).jvp(node, ts)
        if t is not None:
            if t.shape != a.shape:
                raise RuntimeError(f"[jvp] rule of {node.name} gave a tangent of shape "
                                   f"{t.shape} for an output of shape {a.shape}")
            tan[aid] = t if t.dtype == a.dtype else t.astype(a.dtype)
    return [tan.get(node_id(o)) for o in outputs]


def _zeros_like(a):
    from .creation import zeros
    return zeros(a.shape, a.dtype)


def vjp(fun, primals, cotangents):
    """(outputs, vjps): fun(*primals) and the cotangents of primals given
    `cotangents`, one per output (lists of arrays, as mlx.core.vjp)."""
    primals = _as_arrays(list(primals), "vjp")
    sources = [identity(p) for p in primals]
    with keep_graph():
        outputs = fun(*sources)
        single = isinstance(outputs, array)
        outs = _as_arrays([outputs] if single else list(outputs), "vjp")
        cots = _as_arrays(list(cotangents), "vjp")
        if len(cots) != len(outs):
            raise ValueError(f"[vjp] got {len(cots)} cotangents for {len(outs)} outputs")
        for o, c in zip(outs, cots):
            if o.shape != c.shape:
                raise ValueError(f"[vjp] output shape {o.shape} does not match cotangent "
                                 f"shape {c.shape}")
        grads = backward(outs, cots, sources)
    return outs, [g if g is not None else _zeros_like(p) for g, p in zip(grads, primals)]


def jvp(fun, primals, tangents):
    """(outputs, jvps): fun(*primals) and the tangents of its outputs given
    `tangents`, one per primal (lists of arrays, as mlx.core.jvp)."""
    primals = _as_arrays(list(primals), "jvp")
    tangents = _as_arrays(list(tangents), "jvp")
    if len(primals) != len(tangents):
        raise ValueError(f"[jvp] got {len(tangents)} tangents for {len(primals)} primals")
    for p, t in zip(primals, tangents):
        if p.shape != t.shape:
            raise ValueError(f"[jvp] primal shape {p.shape} does not match tangent "
                             f"shape {t.shape}")
    sources = [identity(p) for p in primals]
    with keep_graph():
        outputs = fun(*sources)
        outs = _as_arrays([outputs] if isinstance(outputs, array) else list(outputs), "jvp")
        ts = forward(sources, tangents, outs)
    return outs, [t if t is not None else _zeros_like(o) for t, o in zip(ts, outs)]


# ---- grad and value_and_grad ----

def _normalize_argnums(argnums, argnames):
    if isinstance(argnames, str):
        argnames = (argnames,)
    argnames = tuple(argnames or ())
    if argnums is None:
        argnums = () if argnames else 0
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    for n in nums:
        if not isinstance(n, int):
            raise TypeError(f"[grad] argnums must be ints, got {type(n).__name__}")
    if len(set(nums)) != len(nums):
        raise ValueError(f"[grad] argnums has repeated entries: {nums}")
    return nums, single or len(nums) == 1, argnames


def _check_differentiable(leaves, where):
    for x in leaves:
        if not isinstance(x, array):
            raise TypeError(f"[grad] {where} holds a {type(x).__name__}; gradients are taken "
                            "with respect to arrays only")
        if not _dt.issubdtype(x.dtype, _dt.inexact):
            raise TypeError(f"[grad] {where} has dtype {x.dtype.name}; gradients need "
                            "floating point (or complex) inputs")


def _scalar_output(value, has_aux, tuple_is_value):
    """The array to differentiate in fun's return value (mlx/JAX conventions)."""
    if isinstance(value, (tuple, list)) and not (has_aux or tuple_is_value):
        raise ValueError("[grad] the function must return a scalar array, but it "
                         f"returned a {type(value).__name__}; use value_and_grad or "
                         "has_aux=True")
    if has_aux:
        if not (isinstance(value, (tuple, list)) and len(value) == 2):
            raise ValueError("[grad] with has_aux=True the function must return a pair "
                             "(output, aux)")
        loss = value[0]
    elif isinstance(value, (tuple, list)):
        if not value:
            raise ValueError("[grad] the function returned an empty tuple")
        loss = value[0]
    else:
        loss = value
    if not isinstance(loss, array):
        raise TypeError(f"[grad] the function must return an array, got "
                        f"{type(loss).__name__}")
    if loss.size != 1:
        raise ValueError(f"[grad] the function must return a scalar array to be "
                         f"differentiated, got shape {loss.shape}")
    if not _dt.issubdtype(loss.dtype, _dt.inexact):
        raise TypeError(f"[grad] the output has dtype {loss.dtype.name}; it must be floating "
                        "point to be differentiated")
    return loss


def _value_and_grad(fun, argnums, argnames, has_aux, tuple_is_value):
    nums, single, names = _normalize_argnums(argnums, argnames)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        for n in nums:
            if not -len(args) <= n < len(args):
                raise ValueError(f"[grad] argnums {n} is out of range for {len(args)} "
                                 "positional arguments")
        nums_pos = tuple(n % len(args) for n in nums)
        for name in names:
            if name not in kwargs:
                raise ValueError(f"[grad] argname '{name}' was not passed as a keyword "
                                 "argument")
        targets = [args[n] for n in nums_pos] + [kwargs[k] for k in names]
        flat, spec = tree_flatten(targets)
        _check_differentiable(flat, "an argument to differentiate")
        sources = [identity(x) for x in flat]
        traced = tree_unflatten(spec, sources)
        args = list(args)
        for n, t in zip(nums_pos, traced):
            args[n] = t
        kwargs = dict(kwargs)
        for k, t in zip(names, traced[len(nums_pos):]):
            kwargs[k] = t
        with keep_graph():
            value = fun(*args, **kwargs)
            loss = _scalar_output(value, has_aux, tuple_is_value)
            from .creation import ones
            grads = backward([loss], [ones(loss.shape, loss.dtype)], sources)
        grads = [g if g is not None else _zeros_like(x) for g, x in zip(grads, flat)]
        grads = tree_unflatten(spec, grads)
        pos, kw = grads[:len(nums_pos)], dict(zip(names, grads[len(nums_pos):]))
        if not names:
            g = pos[0] if single else tuple(pos)
        elif not nums_pos:
            g = (None, kw)
        else:
            g = (pos[0] if single else tuple(pos), kw)
        return value, g

    return wrapped


def value_and_grad(fun, argnums=None, argnames=(), *, has_aux=False):
    """A function returning (fun(*args), gradient of fun's scalar output).

    If fun returns a tuple, its first element is differentiated and the
    value is the whole tuple (mlx.core); has_aux=True asks for JAX's
    convention that fun returns exactly (output, aux)."""
    return _value_and_grad(fun, argnums, argnames, has_aux, True)


def grad(fun, argnums=None, argnames=(), *, has_aux=False):
    """A function returning the gradient of fun's scalar output with respect
    to the arguments in argnums (default 0) and argnames; with has_aux=True,
    (gradient, aux) as in JAX."""
    inner = _value_and_grad(fun, argnums, argnames, has_aux, False)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        value, g = inner(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapped


# ---- Jacobians (JAX's jacfwd, jacrev, hessian) ----

def _jacobian(fun, argnums, has_aux, mode):
    nums, single, _ = _normalize_argnums(argnums, ())

    @functools.wraps(fun)
    def wrapped(*args):
        from .creation import eye
        from .manipulation import moveaxis, reshape
        from .vmap import vmap

        nums_pos = tuple(n % len(args) for n in nums)
        flat, spec = tree_flatten([args[n] for n in nums_pos])
        _check_differentiable(flat, "an argument to differentiate")
        sources = [identity(x) for x in flat]
        traced = tree_unflatten(spec, sources)
        args = list(args)
        for n, t in zip(nums_pos, traced):
            args[n] = t
        with keep_graph():
            value = fun(*args)
            out, aux = value if has_aux else (value, None)
            outs, out_spec = tree_flatten(out)
            _as_arrays(outs, mode)
            rows = [[None] * len(sources) for _ in outs]
            if mode == "jacrev":
                for k, o in enumerate(outs):
                    basis = reshape(eye(o.size, dtype=o.dtype), (o.size,) + o.shape)
                    grads = vmap(lambda u, o=o: [g if g is not None else _zeros_like(s)
                                                 for g, s in zip(backward([o], [u], sources),
                                                                 sources)])(basis)
                    for i, (g, s) in enumerate(zip(grads, sources)):
                        rows[k][i] = reshape(g, o.shape + s.shape)
            else:
                for i, s in enumerate(sources):
                    basis = reshape(eye(s.size, dtype=s.dtype), (s.size,) + s.shape)

                    def push(t, i=i):
                        ts = forward(sources, [t if j == i else None
                                               for j in range(len(sources))], outs)
                        return [t if t is not None else _zeros_like(o) for t, o in zip(ts, outs)]

                    for k, (t, o) in enumerate(zip(vmap(push)(basis), outs)):
                        rows[k][i] = reshape(moveaxis(t, 0, -1) if t.ndim else t,
                                             o.shape + s.shape)
        per_out = []
        for row in rows:
            tree = tree_unflatten(spec, row)
            per_out.append(tree[0] if single else tuple(tree))
        jac = tree_unflatten(out_spec, per_out)
        return (jac, aux) if has_aux else jac

    return wrapped


def jacrev(fun, argnums=0, has_aux=False):
    """The Jacobian of fun by reverse mode: one vjp per output element, batched
    with vmap. Shape: output shape + input shape (JAX's jax.jacrev)."""
    return _jacobian(fun, argnums, has_aux, "jacrev")


def jacfwd(fun, argnums=0, has_aux=False):
    """The Jacobian of fun by forward mode: one jvp per input element, batched
    with vmap (JAX's jax.jacfwd)."""
    return _jacobian(fun, argnums, has_aux, "jacfwd")


def hessian(fun, argnums=0, has_aux=False):
    """The Hessian of a scalar function: jacfwd of jacrev (JAX's jax.hessian)."""
    return jacfwd(jacrev(fun, argnums, has_aux), argnums, has_aux)
