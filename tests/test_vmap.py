"""vmap: in_axes/out_axes (ints, negative, None, pytree prefixes), nesting,
unbatched outputs, errors, and every op family, checked against a Python loop
over the batch in ember and against jax.vmap, on fresh random inputs.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ember.core as em


def _np(x):
    return np.asarray(x)


def _close(actual, expected, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(_np(actual), _np(expected), rtol=rtol, atol=atol)


def _draw(spec, rng):
    """A numpy input: ("f", shape) floats, ("pos", shape) positive floats,
    ("i", shape, high) int32 indices in [-high, high), ("b", shape) booleans."""
    kind, shape = spec[0], spec[1]
    if kind == "i":  # negative indices count from the end
        return rng.integers(-spec[2], spec[2], size=shape).astype(np.int32)
    if kind == "b":
        return rng.random(shape) < 0.5
    x = rng.standard_normal(shape).astype(np.float32)
    return np.abs(x) + 0.5 if kind == "pos" else x


def _loop(fn, args, in_axes, out_axis):
    """fn applied to each batch entry (taken along in_axes) in a Python loop,
    results stacked along out_axis."""
    size = next(a.shape[ax] for a, ax in zip(args, in_axes) if ax is not None)
    outs = []
    for i in range(size):
        sliced = [a if ax is None else em.take(a, em.array(i), axis=ax)
                  for a, ax in zip(args, in_axes)]
        outs.append(fn(*sliced))
    return em.stack(outs, axis=out_axis)


def _check(fn, specs, in_axes, rng, out_axes=0, rtol=1e-5, atol=1e-6):
    """vmap(fn(em)) against a loop and against jax.vmap(fn(jnp))."""
    size = int(rng.integers(1, 5))
    args = []
    for spec, ax in zip(specs, in_axes):
        shape = list(spec[1])
        if ax is not None:
            shape.insert(ax % (len(shape) + 1), size)
        args.append(_draw((spec[0], tuple(shape)) + tuple(spec[2:]), rng))
    ember_args = [em.array(a) for a in args]
    got = em.vmap(lambda *xs: fn(em, *xs), in_axes=tuple(in_axes), out_axes=out_axes)(*ember_args)
    want = jax.vmap(lambda *xs: fn(jnp, *xs), in_axes=tuple(in_axes),
                    out_axes=out_axes)(*map(jnp.asarray, args))
    assert got.shape == tuple(want.shape)
    _close(got, want, rtol, atol)
    loop = _loop(lambda *xs: fn(em, *xs), ember_args, in_axes, out_axes)
    assert got.dtype == loop.dtype
    _close(got, loop, rtol, atol)


def _at(ns, x, index, method, value):
    """x.at[index].method(value) for ember (maximum/minimum) and JAX (max/min)."""
    if ns is jnp:
        method = {"maximum": "max", "minimum": "min"}.get(method, method)
        if method == "multiply":  # JAX differentiates scatter-multiply of unique indices only
            return x.at[index].multiply(value, unique_indices=True)
    return getattr(x.at[index], method)(value)


def _nn(ns, name):
    """Ops that live outside jax.numpy in JAX."""
    if ns is em:
        return getattr(em, name)
    return {"logsumexp": jax.nn.logsumexp, "softmax": jax.nn.softmax, "sigmoid": jax.nn.sigmoid,
            "erf": jax.scipy.special.erf, "cummax": jax.lax.cummax, "cummin": jax.lax.cummin,
            "logcumsumexp": lambda x, axis, reverse=False:
                jax.lax.cumlogsumexp(x, axis=axis, reverse=reverse)}[name]


# ---- in_axes and out_axes ----

@pytest.mark.parametrize("in_axes", [(0, 0), (1, 0), (2, 1), (-1, -2), (0, None), (None, 1),
                                     (-3, None)])
def test_in_axes_ints_negative_and_none(in_axes, rng):
    _check(lambda ns, a, b: ns.sin(a) * b + ns.sum(b), [("f", (2, 3)), ("f", (2, 3))],
           in_axes, rng)


@pytest.mark.parametrize("out_axes", [0, 1, 2, -1, -2])
def test_out_axes(out_axes, rng):
    _check(lambda ns, a: ns.exp(a) @ ns.transpose(a), [("f", (3, 4))], (1,), rng,
           out_axes=out_axes)


def test_in_axes_as_a_single_int_applies_to_every_argument(rng):
    a, b = rng.standard_normal((3, 4, 2)), rng.standard_normal((5, 4, 2))
    got = em.vmap(lambda a, b: a @ b.T, in_axes=2)(em.array(a), em.array(b))
    want = jax.vmap(lambda a, b: a @ b.T, in_axes=2)(jnp.asarray(a), jnp.asarray(b))
    _close(got, want)


def test_in_axes_as_a_list_is_a_tuple(rng):
    a, b = rng.standard_normal((3, 2)), rng.standard_normal(2)
    got = em.vmap(lambda a, b: a * b, in_axes=[0, None])(em.array(a), em.array(b))
    _close(got, a * b)


def test_pytree_in_axes_prefixes_match_jax(rng):
    p = {"w": rng.standard_normal((4, 3)), "b": rng.standard_normal((3, 5))}
    xs = (rng.standard_normal((5, 4)), [rng.standard_normal((2, 5))])

    def f(ns):
        def fn(p, xs):
            x, (y,) = xs[0], xs[1]
            return {"out": ns.tanh(x @ p["w"]) + p["b"], "y": y * ns.sum(x)}
        return fn

    in_axes = ({"w": None, "b": 1}, (0, [1]))
    got = em.vmap(f(em), in_axes=in_axes)(
        {k: em.array(v) for k, v in p.items()}, (em.array(xs[0]), [em.array(xs[1][0])]))
    want = jax.vmap(f(jnp), in_axes=in_axes)(
        {k: jnp.asarray(v) for k, v in p.items()}, (jnp.asarray(xs[0]), [jnp.asarray(xs[1][0])]))
    assert set(got) == {"out", "y"}
    _close(got["out"], want["out"])
    _close(got["y"], want["y"])
    # a prefix: one axis for the whole dict argument
    q = {"w": rng.standard_normal((4, 3)), "b": rng.standard_normal((4,))}
    got = em.vmap(lambda q, x: q["w"] * x + q["b"], in_axes=(0, None))(
        {k: em.array(v) for k, v in q.items()}, em.array(2.0))
    _close(got, q["w"] * 2.0 + q["b"][:, None])


def test_pytree_out_axes_match_jax(rng):
    x = rng.standard_normal((3, 4, 2))

    def f(ns):
        return lambda x: (ns.sin(x), {"t": ns.transpose(x), "s": ns.sum(x)})

    out_axes = (1, {"t": -1, "s": 0})
    got = em.vmap(f(em), out_axes=out_axes)(em.array(x))
    want = jax.vmap(f(jnp), out_axes=out_axes)(jnp.asarray(x))
    _close(got[0], want[0])
    _close(got[1]["t"], want[1]["t"])
    _close(got[1]["s"], want[1]["s"])


def test_tuple_and_list_outputs_keep_their_structure(rng):
    x = em.array(rng.standard_normal((2, 3)).astype(np.float32))
    got = em.vmap(lambda x: [x * 2, (x, em.sum(x))])(x)
    assert isinstance(got, list) and isinstance(got[1], tuple)
    _close(got[1][1], _np(x).sum(axis=1))


def test_none_arguments_and_non_array_arguments_pass_through(rng):
    x = rng.standard_normal((3, 2)).astype(np.float32)
    got = em.vmap(lambda x, scale, nothing: x * scale, in_axes=(0, None, None))(
        em.array(x), 3.0, None)
    _close(got, x * 3.0)


def test_none_arguments_and_outputs_are_empty_subtrees(rng):
    """None is never batched, whatever in_axes/out_axes say (as in JAX)."""
    x = rng.standard_normal((2, 3)).astype(np.float32)

    def f(ns):
        return lambda x, nothing, p: (ns.sin(x) * p["w"], None, {"n": p["n"]})

    args = lambda ns: (ns.asarray(x), None, {"w": ns.asarray(x[0] * 2), "n": None})
    got = em.vmap(f(em), in_axes=(0, 0, None))(*args(em))
    want = jax.vmap(f(jnp), in_axes=(0, 0, None))(*args(jnp))
    assert got[1] is None and got[2] == {"n": None}
    _close(got[0], want[0])
    got = em.vmap(f(em), in_axes=(1, None, None), out_axes=(1, 0, {"n": 1}))(
        em.array(x.T), None, args(em)[2])
    want = jax.vmap(f(jnp), in_axes=(1, None, None), out_axes=(1, 0, {"n": 1}))(
        jnp.asarray(x.T), None, args(jnp)[2])
    assert got[1] is None and got[2] == {"n": None}
    _close(got[0], want[0])


def test_unbatched_outputs_are_broadcast(rng):
    x = em.array(rng.standard_normal((4, 3)).astype(np.float32))
    c = em.array(rng.standard_normal(2).astype(np.float32))
    out = em.vmap(lambda x, c: (x * 2, c * 3, em.ones((2,))), in_axes=(0, None))(x, c)
    assert out[1].shape == (4, 2) and out[2].shape == (4, 2)
    _close(out[1], np.broadcast_to(_np(c) * 3, (4, 2)))
    _close(out[2], np.ones((4, 2)))
    # out_axes moves the broadcast axis too; out_axes=None keeps it unbatched
    out = em.vmap(lambda x, c: c * 3, in_axes=(0, None), out_axes=1)(x, c)
    assert out.shape == (2, 4)
    out = em.vmap(lambda x, c: (x, c * 3), in_axes=(0, None), out_axes=(0, None))(x, c)
    assert out[1].shape == (2,)
    _close(out[1], _np(c) * 3)


def test_nested_vmap_matches_jax(rng):
    a, b = rng.standard_normal((3, 4, 5)), rng.standard_normal((5, 4))

    def f(ns):
        return lambda u, v: ns.sum(ns.sin(u) * v) * u

    inner = lambda vmap, ns: vmap(f(ns), in_axes=(0, 1))
    got = em.vmap(inner(em.vmap, em), in_axes=(0, None))(em.array(a), em.array(b))
    want = jax.vmap(inner(jax.vmap, jnp), in_axes=(0, None))(jnp.asarray(a), jnp.asarray(b))
    assert got.shape == (3, 4, 5)
    _close(got, want)
    # the outer vmap over the last axis, the inner over the first, out_axes moved
    got = em.vmap(em.vmap(lambda u: em.cumsum(u) * u[0], out_axes=1), in_axes=2,
                  out_axes=0)(em.array(a))
    want = jax.vmap(jax.vmap(lambda u: jnp.cumsum(u) * u[0], out_axes=1), in_axes=2,
                    out_axes=0)(jnp.asarray(a))
    _close(got, want)


def test_triple_nested_vmap_matches_jax(rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    f = lambda ns: (lambda v: ns.max(v) - ns.mean(v) * v)
    got = em.vmap(em.vmap(em.vmap(f(em)), in_axes=1), in_axes=3)(em.array(x))
    want = jax.vmap(jax.vmap(jax.vmap(f(jnp)), in_axes=1), in_axes=3)(jnp.asarray(x))
    _close(got, want)


def test_vmap_of_a_size_one_and_a_size_zero_batch(rng):
    x = rng.standard_normal((1, 3)).astype(np.float32)
    _close(em.vmap(lambda v: em.sum(v * v))(em.array(x)), (x * x).sum(axis=1, keepdims=False))
    out = em.vmap(lambda v: em.exp(v) * 2)(em.zeros((0, 3)))
    assert out.shape == (0, 3)


# ---- errors ----

def test_inconsistent_sizes_raise():
    with pytest.raises(ValueError, match=r"\[vmap\] inputs have different sizes along their "
                                         r"vmapped axes: 3 and 4"):
        em.vmap(lambda a, b: a + b)(em.ones((3, 2)), em.ones((4, 2)))
    with pytest.raises(ValueError, match=r"sizes along their vmapped axes: 2 and 3"):
        em.vmap(lambda a, b: a + b, in_axes=(1, 0))(em.ones((3, 2)), em.ones((3, 2)))


@pytest.mark.parametrize("axis", [2, -3, 5])
def test_out_of_range_in_axis_raises(axis):
    with pytest.raises(ValueError, match=rf"\[vmap\] in_axes {axis} is out of range for an "
                                         r"input of shape \(3, 2\)"):
        em.vmap(lambda a: a, in_axes=axis)(em.ones((3, 2)))


def test_scalar_input_cannot_be_vmapped():
    with pytest.raises(ValueError, match=r"in_axes 0 is out of range for an input of shape \(\)"):
        em.vmap(lambda a: a)(em.array(1.0))


def test_out_of_range_out_axis_raises():
    with pytest.raises(ValueError, match=r"\[vmap\] out_axes 3 is out of range for an output "
                                         r"of 2 dimensions"):
        em.vmap(lambda a: a, out_axes=3)(em.ones((3, 2)))


def test_all_none_in_axes_raise():
    with pytest.raises(ValueError, match=r"\[vmap\] at least one input must have a vmapped axis"):
        em.vmap(lambda a: a, in_axes=None)(em.ones((3, 2)))
    with pytest.raises(ValueError, match=r"at least one input must have a vmapped axis"):
        em.vmap(lambda a, b: a, in_axes=(None, None))(em.ones(3), em.ones(3))


def test_in_axes_length_mismatch_raises():
    with pytest.raises(ValueError, match=r"\[vmap\] in_axes has 3 entries for 2 arguments"):
        em.vmap(lambda a, b: a, in_axes=(0, 0, 0))(em.ones(3), em.ones(3))


def test_in_axes_tree_mismatch_raises():
    with pytest.raises(ValueError, match=r"\[vmap\] in_axes does not match the structure"):
        em.vmap(lambda p: p["a"], in_axes=({"b": 0},))({"a": em.ones(3)})


def test_out_axes_none_for_a_batched_output_raises():
    with pytest.raises(ValueError, match=r"\[vmap\] out_axes is None for an output that depends "
                                         r"on a vmapped input"):
        em.vmap(lambda a: a * 2, out_axes=None)(em.ones((3, 2)))


def test_non_array_input_and_output_raise():
    with pytest.raises(TypeError, match=r"\[vmap\] a vmapped input must be an array, got float"):
        em.vmap(lambda a: a)(1.0)
    with pytest.raises(TypeError, match=r"\[vmap\] outputs must be arrays, got str"):
        em.vmap(lambda a: "x")(em.ones(3))


def test_evaluating_a_traced_value_raises():
    with pytest.raises(ValueError, match=r"\[vmap\] cannot evaluate a value that depends on a "
                                         r"vmapped input"):
        em.vmap(lambda a: em.sum(a).item() * a)(em.ones((3, 2)))


def test_values_independent_of_the_batch_can_be_evaluated(rng):
    c = em.array(rng.standard_normal(2).astype(np.float32))
    out = em.vmap(lambda a: a * float(em.sum(c * c).item()))(em.ones((3, 2)))
    _close(out, np.full((3, 2), float((_np(c) ** 2).sum())))


# ---- every op family: vmap against a loop and jax.vmap ----

# name -> (fn(ns, *args), input specs (unbatched shapes), in_axes)
FAMILIES = {
    # elementwise, with broadcasting between batched and unbatched inputs
    "unary": (lambda ns, a: ns.tanh(ns.exp(ns.sin(a)) * ns.abs(a) - ns.sqrt(ns.abs(a))),
              [("f", (3, 4))], (1,)),
    "unary_more": (lambda ns, a: _nn(ns, "erf")(a) + _nn(ns, "sigmoid")(a) + ns.floor(a)
                   + ns.log1p(ns.abs(a)) + ns.arctan(a) + ns.sign(a) + ns.cosh(a * 0.1),
                   [("f", (5,))], (0,)),
    "binary_broadcast": (lambda ns, a, b: a * b - a / (1 + b * b) + ns.maximum(a, b),
                         [("f", (3, 1)), ("f", (4,))], (0, 0)),
    "binary_rank_mismatch": (lambda ns, a, b: ns.power(a, 2.0) + ns.arctan2(a, b),
                             [("f", (2, 3, 4)), ("f", (4,))], (2, 0)),
    "binary_unbatched_side": (lambda ns, a, b: ns.logaddexp(a, b) + ns.minimum(a, b),
                              [("f", (2, 3)), ("f", (3,))], (None, 0)),
    "comparisons": (lambda ns, a, b: ((a > b) & (a < 2.0)) | ns.logical_not(a == b),
                    [("f", (4,)), ("f", (4,))], (0, 1)),
    "integer": (lambda ns, a, b: (a * 3 + b) // (ns.abs(b) + 1) - a % 3 + b % (a * a + 1),
                [("i", (4,), 9), ("i", (4,), 9)], (0, None)),
    "astype": (lambda ns, a: (a * 10).astype(ns.int32).astype(ns.float32) + a,
               [("f", (3, 2))], (1,)),
    "clip": (lambda ns, a: ns.clip(a, -0.5, 0.5), [("f", (6,))], (0,)),
    "where": (lambda ns, c, a, b: ns.where(c, a, b), [("b", (3, 4)), ("f", (4,)), ("f", (3, 1))],
              (1, None, 0)),
    "where_condition_only": (lambda ns, c, a: ns.where(c, a, 0.0), [("b", (3,)), ("f", (3,))],
                             (0, None)),
    # reductions
    "sum_mean": (lambda ns, a: ns.sum(a, axis=1) + ns.mean(a, axis=0)[:, None].sum(),
                 [("f", (3, 4))], (0,)),
    "reduce_all": (lambda ns, a: ns.sum(a) + ns.max(a) - ns.min(a) + ns.prod(a[:2]),
                   [("f", (3, 4))], (2,)),
    "reduce_keepdims": (lambda ns, a: a - ns.max(a, axis=-1, keepdims=True),
                        [("f", (2, 5))], (1,)),
    "var_std": (lambda ns, a: ns.var(a, axis=0) + ns.std(a, axis=1).sum(), [("f", (4, 4))],
                (1,)),
    "logsumexp_softmax": (lambda ns, a: _nn(ns, "softmax")(a, axis=0)
                          * _nn(ns, "logsumexp")(a, axis=1, keepdims=True),
                          [("f", (3, 4))], (0,)),
    "arg_reductions": (lambda ns, a: ns.argmax(a, axis=0) + ns.argmin(a, axis=1)[0],
                       [("f", (3, 4))], (1,)),
    "all_any": (lambda ns, a: ns.all(a > -1, axis=0) | ns.any(a > 1), [("f", (3, 4))], (2,)),
    # scans
    "cumsum": (lambda ns, a: ns.cumsum(a, axis=0) + ns.cumsum(a, axis=1),
               [("f", (3, 4))], (1,)),
    "cumprod": (lambda ns, a: ns.cumprod(a, axis=1), [("f", (2, 5))], (0,)),
    "cummax_cummin": (lambda ns, a: _nn(ns, "cummax")(a, axis=0)
                      + _nn(ns, "cummin")(a, axis=1, reverse=True), [("f", (3, 4))], (2,)),
    "logcumsumexp": (lambda ns, a: _nn(ns, "logcumsumexp")(a, axis=0, reverse=True),
                     [("f", (4, 2))], (1,)),
    # indexing
    "getitem_basic": (lambda ns, a: a[1:, ::-2] + a[0, 1:2] - a[..., None][2, :3, 0],
                      [("f", (3, 6))], (1,)),
    "getitem_int_array": (lambda ns, a: a[ns.array([2, 0, 2])], [("f", (3, 4))], (1,)),
    "getitem_batched_index": (lambda ns, a, i: a[i], [("f", (5, 3)), ("i", (2,), 5)],
                              (None, 0)),
    "getitem_both_batched": (lambda ns, a, i: a[:, i] * 2, [("f", (2, 5)), ("i", (3,), 5)],
                             (1, 0)),
    "getitem_two_arrays": (lambda ns, a, i, j: a[i, j], [("f", (4, 5)), ("i", (3,), 4),
                                                          ("i", (3,), 5)], (0, 0, None)),
    "getitem_array_and_slices": (lambda ns, a, i: a[i, 1:] + a[1:, i][:, :1].sum(),
                                 [("f", (5, 5)), ("i", (2,), 5)], (1, 0)),
    "getitem_two_batched_arrays": (lambda ns, a, i, j: a[..., i, j],
                                   [("f", (2, 4, 5)), ("i", (3,), 4), ("i", (3,), 5)],
                                   (2, 0, 1)),
    "take": (lambda ns, a, i: ns.take(a, i, axis=1), [("f", (3, 6)), ("i", (2, 2), 6)],
             (2, 1)),
    "take_along_axis": (lambda ns, a, i: ns.take_along_axis(a, i, axis=0),
                        [("f", (4, 3)), ("i", (2, 3), 4)], (0, 1)),
    "put_along_axis": (lambda ns, a, i, v: ns.put_along_axis(a, i, v, axis=1, inplace=False)
                       if ns is jnp else ns.put_along_axis(a, i, v, axis=1),
                       [("f", (3, 4)), ("i", (3, 1), 4), ("f", (3, 1))], (0, None, 0)),
    "at_set": (lambda ns, a, v: _at(ns, a, ns.array([1, 3]), "set", v),
               [("f", (4, 2)), ("f", (2,))], (1, 0)),
    "at_add_duplicates": (lambda ns, a, v: _at(ns, a, ns.array([0, 2, 0]), "add", v),
                          [("f", (3, 2)), ("f", (3, 2))], (0, None)),
    "at_batched_index": (lambda ns, a, i, v: _at(ns, a, i, "add", v),
                         [("f", (5,)), ("i", (3,), 5), ("f", (3,))], (None, 0, 0)),
    "at_all_batched": (lambda ns, a, i, v: _at(ns, a, i, "add", v),
                       [("f", (5, 4)), ("i", (2,), 5), ("f", (2, 4))], (1, 0, 2)),
    "at_set_array_and_int": (lambda ns, a, v: _at(ns, a, (ns.array([0, -1]), 2), "set", v),
                             [("f", (5, 4)), ("f", (2,))], (0, 0)),
    "at_multiply_max": (lambda ns, a, v: _at(ns, _at(ns, a, ns.array([1]), "multiply", v),
                                             ns.array([0, 2]), "maximum", v),
                        [("f", (3,)), ("f", ())], (0, 0)),
    "at_slice_set": (lambda ns, a, v: _at(ns, a, (slice(1, 3), 0), "set", v),
                     [("f", (4, 3)), ("f", (2,))], (0, 0)),
    # products
    "matmul_both": (lambda ns, a, b: a @ b, [("f", (2, 3)), ("f", (3, 4))], (0, 2)),
    "matmul_left": (lambda ns, a, b: a @ b, [("f", (2, 3)), ("f", (3, 4))], (1, None)),
    "matmul_right": (lambda ns, a, b: a @ b, [("f", (2, 3)), ("f", (3, 4))], (None, 1)),
    "matmul_vectors": (lambda ns, a, b: (a @ b) * (b @ ns.outer(a, b)) + ns.inner(a, a),
                       [("f", (3,)), ("f", (3,))], (0, None)),
    "matmul_stacks": (lambda ns, a, b: ns.matmul(a, b), [("f", (1, 2, 3)), ("f", (4, 3, 2))],
                      (3, 0)),
    "tensordot": (lambda ns, a, b: ns.tensordot(a, b, axes=([0, 1], [1, 0])),
                  [("f", (2, 3, 4)), ("f", (3, 2))], (1, None)),
    # joining and padding
    "concatenate": (lambda ns, a, b: ns.concatenate([a, b, a], axis=1),
                    [("f", (2, 3)), ("f", (2, 1))], (0, None)),
    "stack": (lambda ns, a, b: ns.stack([a, b], axis=-1), [("f", (3,)), ("f", (3,))], (0, 0)),
    "pad": (lambda ns, a: ns.pad(a, ((1, 0), (2, 1)), constant_values=3.0), [("f", (2, 3))],
            (1,)),
    "tile_repeat": (lambda ns, a: ns.tile(a, (2, 1)) + ns.repeat(a, 2, axis=0),
                    [("f", (2, 3))], (0,)),
    "split": (lambda ns, a: ns.split(a, 3, axis=1)[1] * 2, [("f", (2, 6))], (2,)),
    # shapes
    "reshape": (lambda ns, a: ns.reshape(a, (2, 6)).sum(axis=0), [("f", (3, 4))], (1,)),
    "transpose": (lambda ns, a: ns.transpose(a, (2, 0, 1)) * ns.swapaxes(a, 0, 2).sum(),
                  [("f", (2, 3, 4))], (3,)),
    "moveaxis_squeeze": (lambda ns, a: ns.squeeze(ns.moveaxis(a, 0, -1), axis=-1)
                         + ns.expand_dims(a[0, 0], 0), [("f", (1, 3))], (1,)),
    "flatten_broadcast": (lambda ns, a: ns.broadcast_to(ns.reshape(a, (-1,)), (2, 6)),
                          [("f", (2, 3))], (0,)),
    "diagonal_triu": (lambda ns, a: ns.diagonal(a) + ns.triu(a, 1).sum(axis=0),
                      [("f", (3, 3))], (2,)),
    "roll": (lambda ns, a: ns.roll(a, 2, axis=1) - ns.roll(a, -1), [("f", (2, 5))], (0,)),
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_vmap_of_op_families(name, rng):
    fn, specs, in_axes = FAMILIES[name]
    _check(fn, specs, in_axes, rng)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_vmap_of_op_families_on_other_axes(name, rng):
    """Each case again with the batch on the last axis of every batched input
    and the output's batch axis last."""
    fn, specs, in_axes = FAMILIES[name]
    moved = tuple(None if ax is None else len(spec[1]) for spec, ax in zip(specs, in_axes))
    _check(fn, specs, moved, rng, out_axes=-1)


def _batched_args(specs, in_axes, size, rng):
    args = []
    for spec, ax in zip(specs, in_axes):
        shape = list(spec[1])
        if ax is not None:
            shape.insert(ax, size)
        args.append(_draw((spec[0], tuple(shape)) + tuple(spec[2:]), rng))
    return args


DIFFERENTIABLE = sorted(name for name in FAMILIES
                        if name not in ("comparisons", "integer", "arg_reductions", "all_any",
                                        "where_condition_only"))


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_grad_of_vmap_of_op_families(name, rng):
    """grad through vmap, and vmap of grad, of each family against JAX."""
    fn, specs, in_axes = FAMILIES[name]
    args = _batched_args(specs, in_axes, 3, rng)
    wrt = tuple(i for i, spec in enumerate(specs) if spec[0] in ("f", "pos"))

    def loss(ns, vmap):
        def f(*xs):
            out = vmap(lambda *ys: fn(ns, *ys), in_axes=tuple(in_axes))(*xs)
            return ns.sum(ns.sin(out.astype(ns.float32)))
        return f

    got = em.grad(loss(em, em.vmap), argnums=wrt)(*map(em.array, args))
    want = jax.grad(loss(jnp, jax.vmap), argnums=wrt)(*map(jnp.asarray, args))
    for g, w in zip(got if len(wrt) > 1 else [got], want):
        _close(g, w, rtol=1e-4, atol=1e-4)  # float32 sin/cos of sums: absolute slack

    def per_example(ns):
        return lambda *ys: ns.sum(ns.cos(fn(ns, *ys).astype(ns.float32)))

    got = em.vmap(em.grad(per_example(em), argnums=wrt), in_axes=tuple(in_axes))(
        *map(em.array, args))
    want = jax.vmap(jax.grad(per_example(jnp), argnums=wrt), in_axes=tuple(in_axes))(
        *map(jnp.asarray, args))
    for g, w in zip(got if len(wrt) > 1 else [got], want):
        _close(g, w, rtol=1e-4, atol=1e-4)  # float32 sin/cos of sums: absolute slack


def test_vmap_of_a_long_chain_matches_jax(rng):
    x = rng.standard_normal((3, 4, 4)).astype(np.float32)

    def f(ns):
        def fn(m):
            for _ in range(6):
                m = ns.tanh(m @ ns.transpose(m) * 0.3) + ns.cumsum(m, axis=0) * 0.1
            return m[::2].sum(axis=0)
        return fn

    _close(em.vmap(f(em))(em.array(x)), jax.vmap(f(jnp))(jnp.asarray(x)), rtol=1e-4, atol=1e-5)


def test_vmap_of_a_deep_chain(rng):
    """The rebuild walks the graph iteratively: far deeper than Python's
    recursion limit."""
    x = rng.standard_normal((2, 3))

    def f(v):
        for _ in range(5000):
            v = v * 1.0001 + 0.0001
        return em.sum(v)

    expected = x
    for _ in range(5000):
        expected = expected * 1.0001 + 0.0001
    _close(em.vmap(f)(em.array(x)), expected.sum(axis=1), rtol=1e-10)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64", "int32", "uint8", "bool_"])
def test_vmap_keeps_dtypes(dtype, rng):
    x = em.array((rng.standard_normal((3, 4)) * 4).astype(np.float32)).astype(getattr(em, dtype))

    def f(v):
        return em.cumsum(v, axis=0)[::-1] + em.max(v) * v[0]

    got = em.vmap(f, in_axes=1)(x)
    want = em.stack([f(x[:, i]) for i in range(4)])
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(_np(got.astype(em.float64)), _np(want.astype(em.float64)))
