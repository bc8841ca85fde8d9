"""grad, value_and_grad, vjp, jvp, jacfwd, jacrev, hessian, custom_function and
checkpoint, checked against JAX on fresh random inputs.

Conventions follow mlx.core (argnums/argnames, a tuple-returning function,
vjp/jvp over lists) with JAX's has_aux and Jacobians. The last section
generates random small programs from a pool of ember ops and compares their
value, gradient and vmap-of-gradient with the same programs in jax.numpy.
"""
import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optree
import pytest

import ember.core as em


@pytest.fixture
def x64():
    """JAX in float64 for the test (restored afterwards)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def _np(x):
    return np.asarray(x)


def _close(actual, expected, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(_np(actual), _np(expected), rtol=rtol, atol=atol)


def _assert_trees_close(actual, expected, rtol=1e-5, atol=1e-6):
    """Same leaves (ember tree flattened with the "ember" namespace, JAX tree
    with jax.tree_util) in the same order."""
    a_leaves = optree.tree_leaves(actual, namespace="ember")
    e_leaves = jax.tree_util.tree_leaves(expected)
    assert len(a_leaves) == len(e_leaves)
    for a, e in zip(a_leaves, e_leaves):
        assert isinstance(a, em.array)
        assert a.shape == tuple(e.shape)
        _close(a, e, rtol, atol)


def _pair(rng, shape, dtype=np.float32):
    x = rng.standard_normal(shape).astype(dtype)
    return em.array(x), jnp.asarray(x)


def _f3(ns):
    """f(x, y, z) -> scalar, written once for ember and jax.numpy."""
    def f(x, y, z):
        return ns.sum(ns.sin(x) * y + ns.tanh(z) * x * x) + ns.sum(y * z)
    return f


# ---- grad and value_and_grad: argnums and argnames ----

@pytest.mark.parametrize("argnums", [0, 1, 2, -1, -3, (0, 2), (2, 0), (1,), [0, 1, 2], (-1, 0)])
def test_grad_argnums_match_jax(argnums, rng):
    (x, jx), (y, jy), (z, jz) = (_pair(rng, (3, 4)) for _ in range(3))
    got = em.grad(_f3(em), argnums=argnums)(x, y, z)
    want = jax.grad(_f3(jnp), argnums=tuple(argnums) if isinstance(argnums, list)
                    else argnums)(jx, jy, jz)
    if isinstance(argnums, (tuple, list)) and len(argnums) == 1:
        # mlx.core: a single argnum in a sequence gives a single gradient
        assert isinstance(got, em.array)
        want = want[0]
    elif isinstance(argnums, (tuple, list)):
        assert isinstance(got, tuple) and len(got) == len(argnums)
    else:
        assert isinstance(got, em.array)
    _assert_trees_close(got, want)


def test_value_and_grad_matches_jax(rng):
    (x, jx), (y, jy), (z, jz) = (_pair(rng, (5,)) for _ in range(3))
    value, g = em.value_and_grad(_f3(em), argnums=(0, 1))(x, y, z)
    jvalue, jg = jax.value_and_grad(_f3(jnp), argnums=(0, 1))(jx, jy, jz)
    _close(value, jvalue)
    _assert_trees_close(g, jg)


def test_argnames_only_gives_none_and_a_dict(rng):
    (x, jx), (y, jy), (z, jz) = (_pair(rng, (4,)) for _ in range(3))
    f = _f3(em)
    got = em.grad(lambda x, *, y, z: f(x, y, z), argnames="z")(x, y=y, z=z)
    assert isinstance(got, tuple) and got[0] is None and list(got[1]) == ["z"]
    _close(got[1]["z"], jax.grad(_f3(jnp), argnums=2)(jx, jy, jz))

    got = em.grad(lambda x, *, y, z: f(x, y, z), argnames=["y", "z"])(x, y=y, z=z)
    want = jax.grad(_f3(jnp), argnums=(1, 2))(jx, jy, jz)
    assert got[0] is None and sorted(got[1]) == ["y", "z"]
    _close(got[1]["y"], want[0])
    _close(got[1]["z"], want[1])

    value, got = em.value_and_grad(lambda x, *, y, z: f(x, y, z), argnames="y")(x, y=y, z=z)
    _close(value, _f3(jnp)(jx, jy, jz))
    assert got[0] is None
    _close(got[1]["y"], jax.grad(_f3(jnp), argnums=1)(jx, jy, jz))


def test_argnums_with_argnames(rng):
    (x, jx), (y, jy), (z, jz) = (_pair(rng, (2, 3)) for _ in range(3))
    f = _f3(em)
    want = jax.grad(_f3(jnp), argnums=(0, 1, 2))(jx, jy, jz)
    gx, kw = em.grad(lambda x, y, *, z: f(x, y, z), argnums=0, argnames="z")(x, y, z=z)
    _close(gx, want[0])
    _close(kw["z"], want[2])
    (gx, gy), kw = em.grad(lambda x, y, *, z: f(x, y, z), argnums=(0, 1),
                           argnames=("z",))(x, y, z=z)
    _close(gx, want[0])
    _close(gy, want[1])
    _close(kw["z"], want[2])


def test_gradient_of_an_unused_argument_is_zero(rng):
    (x, _), (y, _) = _pair(rng, (3,)), _pair(rng, (2, 2))
    g = em.grad(lambda x, y: em.sum(x * x), argnums=1)(x, y)
    assert g.shape == (2, 2) and g.dtype == em.float32
    np.testing.assert_array_equal(_np(g), np.zeros((2, 2)))


def test_non_array_arguments_pass_through(rng):
    x, jx = _pair(rng, (4,))
    got = em.grad(lambda x, scale, name: em.sum(em.exp(x * scale)))(x, 3.0, "unused")
    _close(got, jax.grad(lambda x: jnp.sum(jnp.exp(x * 3.0)))(jx))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_gradient_keeps_the_input_dtype(dtype, rng):
    x = em.array(rng.standard_normal(6).astype(np.float32)).astype(getattr(em, dtype))
    g = em.grad(lambda x: em.sum(x * x * 0.5))(x)
    assert g.dtype == getattr(em, dtype) and g.shape == (6,)
    tol = 1e-2 if dtype in ("float16", "bfloat16") else 1e-6
    _close(g.astype(em.float32), x.astype(em.float32), rtol=tol, atol=tol)


# ---- has_aux and tuple-returning functions ----

def test_has_aux_matches_jax(rng):
    (x, jx), (y, jy) = _pair(rng, (3, 2)), _pair(rng, (3, 2))

    def f(ns):
        def loss(x, y):
            out = ns.sum(ns.cos(x) * y)
            return out, {"mean": ns.mean(y), "pred": x * 2}
        return loss

    g, aux = em.grad(f(em), argnums=(0, 1), has_aux=True)(x, y)
    jg, jaux = jax.grad(f(jnp), argnums=(0, 1), has_aux=True)(jx, jy)
    _assert_trees_close(g, jg)
    _assert_trees_close(aux, jaux)
    (value, aux), g = em.value_and_grad(f(em), has_aux=True)(x, y)
    (jvalue, jaux), jg = jax.value_and_grad(f(jnp), has_aux=True)(jx, jy)
    _close(value, jvalue)
    _assert_trees_close(aux, jaux)
    _close(g, jg)


def test_has_aux_gradient_ignores_the_aux(rng):
    x, jx = _pair(rng, (4,))
    g, aux = em.grad(lambda x: (em.sum(x * x), em.sum(x ** 3)), has_aux=True)(x)
    _close(g, 2 * jx)
    _close(aux, jnp.sum(jx ** 3))


def test_value_and_grad_of_a_tuple_returns_the_whole_tuple(rng):
    x, jx = _pair(rng, (5,))
    value, g = em.value_and_grad(lambda x: (em.sum(em.sin(x)), x * 2, [em.exp(x)]))(x)
    assert isinstance(value, tuple) and len(value) == 3
    _close(value[0], jnp.sum(jnp.sin(jx)))
    _close(value[1], jx * 2)
    _close(value[2][0], jnp.exp(jx))
    _close(g, jnp.cos(jx))


def test_grad_of_a_tuple_raises(rng):
    x, _ = _pair(rng, (5,))
    with pytest.raises(ValueError, match=r"\[grad\] the function must return a scalar array.*"
                                         r"tuple.*value_and_grad or has_aux=True"):
        em.grad(lambda x: (em.sum(x), x))(x)


def test_has_aux_needs_a_pair(rng):
    x, _ = _pair(rng, (2,))
    with pytest.raises(ValueError, match=r"\[grad\] with has_aux=True the function must "
                                         r"return a pair"):
        em.grad(lambda x: em.sum(x), has_aux=True)(x)
    with pytest.raises(ValueError, match="pair"):
        em.grad(lambda x: (em.sum(x), x, x), has_aux=True)(x)


def test_grad_of_a_complex_input_matches_jax(rng):
    z = (rng.standard_normal(4) + 1j * rng.standard_normal(4)).astype(np.complex64)
    w = (rng.standard_normal(4) + 1j * rng.standard_normal(4)).astype(np.complex64)

    def f(ns):
        return lambda z, w: ns.sum(ns.real(z * z * w) + ns.imag(z) * 2.0 + ns.abs(z))

    got = em.grad(f(em), argnums=(0, 1))(em.array(z), em.array(w))
    want = jax.grad(f(jnp), argnums=(0, 1))(jnp.asarray(z), jnp.asarray(w))
    assert got[0].dtype == em.complex64
    _assert_trees_close(got, want, rtol=1e-5, atol=1e-6)


# ---- pytrees of parameters ----

class Params(NamedTuple):
    w: object
    b: object


@dataclasses.dataclass
class Layer:
    kernel: object
    bias: object
    name: str = "dense"


optree.register_pytree_node(
    Layer,
    lambda l: ((l.kernel, l.bias), l.name, ("kernel", "bias")),
    lambda name, children: Layer(children[0], children[1], name),
    namespace="ember")
jax.tree_util.register_pytree_node(
    Layer, lambda l: ((l.kernel, l.bias), l.name),
    lambda name, children: Layer(children[0], children[1], name))


def _params(rng, to):
    """The same nested tree of parameters, with ember or JAX leaves."""
    draws = {k: rng.standard_normal(s).astype(np.float32) for k, s in
             [("a", (3, 2)), ("b", (2,)), ("c", (2, 2)), ("d", (2,)), ("e", ()), ("f", (3,))]}
    t = {k: to(v) for k, v in draws.items()}
    return {"dense": Params(t["a"], t["b"]),
            "stack": [Layer(t["c"], t["d"]), (t["e"], {"deep": t["f"]})]}


def _model_loss(ns):
    def loss(params, x):
        h = ns.tanh(x @ params["dense"].w + params["dense"].b)
        layer, (scale, deep) = params["stack"]
        h = h @ layer.kernel + layer.bias
        return ns.sum(h * h) * scale + ns.sum(deep["deep"] * ns.sum(x, axis=1))
    return loss


def test_grad_of_a_nested_pytree_matches_jax(rng):
    params = _params(rng, em.array)
    jparams = optree.tree_map(lambda a: jnp.asarray(_np(a)), params, namespace="ember")
    xs = rng.standard_normal((3, 3)).astype(np.float32)
    g = em.grad(_model_loss(em))(params, em.array(xs))
    jg = jax.grad(_model_loss(jnp))(jparams, jnp.asarray(xs))
    # same containers as the input, with gradients as leaves
    assert isinstance(g["dense"], Params)
    assert isinstance(g["stack"], list) and isinstance(g["stack"][0], Layer)
    assert g["stack"][0].name == "dense"
    assert isinstance(g["stack"][1], tuple) and isinstance(g["stack"][1][1], dict)
    _assert_trees_close(g, jg, rtol=1e-4, atol=1e-5)
    value, g2 = em.value_and_grad(_model_loss(em), argnums=(0, 1))(params, em.array(xs))
    jvalue, jg2 = jax.value_and_grad(_model_loss(jnp), argnums=(0, 1))(jparams, jnp.asarray(xs))
    _close(value, jvalue, rtol=1e-5)
    _assert_trees_close(g2, jg2, rtol=1e-4, atol=1e-5)


def test_grad_of_an_unregistered_dataclass_is_an_error(rng):
    @dataclasses.dataclass
    class Plain:
        w: object

    with pytest.raises(TypeError, match=r"\[grad\].*Plain.*arrays only"):
        em.grad(lambda p: em.sum(p.w))(Plain(em.ones(2)))


def test_grad_of_an_empty_tree_entry_and_none(rng):
    x, jx = _pair(rng, (3,))
    g = em.grad(lambda p: em.sum(p["x"] ** 2))({"x": x, "nothing": None, "empty": []})
    assert g["nothing"] is None and g["empty"] == []
    _close(g["x"], 2 * jx)


# ---- errors ----

def test_non_scalar_output_raises(rng):
    x, _ = _pair(rng, (3,))
    with pytest.raises(ValueError, match=r"\[grad\] the function must return a scalar array "
                                         r"to be differentiated, got shape \(3,\)"):
        em.grad(lambda x: x * 2)(x)


def test_size_one_output_is_accepted(rng):
    x, jx = _pair(rng, (1, 1))
    _close(em.grad(lambda x: em.sin(x))(x), jnp.cos(jx))


def test_integer_input_raises(rng):
    with pytest.raises(TypeError, match=r"\[grad\] .* has dtype int32; gradients need "
                                        r"floating point"):
        em.grad(lambda x: em.sum(x * 2.0))(em.array([1, 2, 3]))


def test_integer_output_raises():
    with pytest.raises(TypeError, match=r"\[grad\] the output has dtype int32"):
        em.grad(lambda x: em.sum(x > 0).astype(em.int32))(em.array([1.0, -1.0]))


def test_non_array_return_raises():
    with pytest.raises(TypeError, match=r"\[grad\] the function must return an array, got float"):
        em.grad(lambda x: 1.0)(em.array([1.0]))


def test_non_array_argument_raises():
    with pytest.raises(TypeError, match=r"\[grad\] .* holds a float"):
        em.grad(lambda x: x)(2.0)


@pytest.mark.parametrize("argnums,match", [
    (2, r"argnums 2 is out of range for 2 positional arguments"),
    (-3, r"argnums -3 is out of range for 2 positional arguments"),
    ((0, 5), r"argnums 5 is out of range"),
])
def test_bad_argnums_raise(argnums, match):
    x = em.array([1.0, 2.0])
    with pytest.raises(ValueError, match=r"\[grad\] " + match):
        em.grad(lambda a, b: em.sum(a * b), argnums=argnums)(x, x)


def test_repeated_and_non_int_argnums_raise():
    with pytest.raises(ValueError, match=r"\[grad\] argnums has repeated entries: \(0, 0\)"):
        em.grad(lambda a: em.sum(a), argnums=(0, 0))
    with pytest.raises(TypeError, match=r"\[grad\] argnums must be ints, got str"):
        em.grad(lambda a: em.sum(a), argnums=("a",))


def test_nothing_to_differentiate_raises():
    with pytest.raises(ValueError, match=r"\[grad\] no argument to differentiate: argnums "
                                         r"and argnames are empty"):
        em.grad(lambda a: em.sum(a), argnums=())


def test_missing_argname_raises():
    x = em.array([1.0])
    with pytest.raises(ValueError, match=r"\[grad\] argname 'y' was not passed as a keyword"):
        em.grad(lambda x, y=None: em.sum(x), argnames="y")(x)


# ---- vjp and jvp: lists in, lists out (mlx.core) ----

def _two_outputs(ns):
    def f(a, b):
        return ns.sin(a) * b, ns.exp(a) + b * b
    return f


def test_vjp_lists_match_jax(rng):
    (a, ja), (b, jb) = _pair(rng, (3, 2)), _pair(rng, (3, 2))
    (u, ju), (v, jv) = _pair(rng, (3, 2)), _pair(rng, (3, 2))
    outs, cots = em.vjp(_two_outputs(em), [a, b], [u, v])
    jouts, pullback = jax.vjp(_two_outputs(jnp), ja, jb)
    assert isinstance(outs, list) and isinstance(cots, list) and len(cots) == 2
    _assert_trees_close(outs, list(jouts))
    _assert_trees_close(cots, list(pullback((ju, jv))))


def test_vjp_of_a_single_output_and_an_unused_primal(rng):
    (a, ja), (b, _) = _pair(rng, (4,)), _pair(rng, (2,))
    u, ju = _pair(rng, (4,))
    outs, cots = em.vjp(lambda a, b: a * a, [a, b], [u])
    assert len(outs) == 1 and len(cots) == 2
    _close(outs[0], ja * ja)
    _close(cots[0], 2 * ja * ju)
    np.testing.assert_array_equal(_np(cots[1]), np.zeros(2))


def test_jvp_lists_match_jax(rng):
    (a, ja), (b, jb) = _pair(rng, (2, 3)), _pair(rng, (2, 3))
    (ta, jta), (tb, jtb) = _pair(rng, (2, 3)), _pair(rng, (2, 3))
    outs, tans = em.jvp(_two_outputs(em), [a, b], [ta, tb])
    jouts, jtans = jax.jvp(_two_outputs(jnp), (ja, jb), (jta, jtb))
    assert isinstance(outs, list) and isinstance(tans, list)
    _assert_trees_close(outs, list(jouts))
    _assert_trees_close(tans, list(jtans))


def test_jvp_of_an_output_independent_of_the_inputs(rng):
    a, _ = _pair(rng, (3,))
    outs, tans = em.jvp(lambda a: (a * 2, em.ones((2,))), [a], [em.ones((3,))])
    np.testing.assert_array_equal(_np(tans[0]), np.full(3, 2.0))
    np.testing.assert_array_equal(_np(tans[1]), np.zeros(2))


def test_vjp_jvp_errors(rng):
    a, _ = _pair(rng, (3,))
    with pytest.raises(ValueError, match=r"\[vjp\] got 2 cotangents for 1 outputs"):
        em.vjp(lambda a: a, [a], [a, a])
    with pytest.raises(ValueError, match=r"\[vjp\] output shape \(3,\) does not match "
                                         r"cotangent shape \(2,\)"):
        em.vjp(lambda a: a, [a], [em.ones(2)])
    with pytest.raises(ValueError, match=r"\[jvp\] got 1 tangents for 2 primals"):
        em.jvp(lambda a, b: a, [a, a], [a])
    with pytest.raises(ValueError, match=r"\[jvp\] primal shape \(3,\) does not match "
                                         r"tangent shape \(1,\)"):
        em.jvp(lambda a: a, [a], [em.ones(1)])
    with pytest.raises(TypeError, match=r"\[vjp\] inputs must be arrays"):
        em.vjp(lambda a: a, [1.0], [a])


# ---- higher order and compositions ----

def test_third_derivatives_match_jax(x64, rng):
    x = rng.standard_normal(()) * 0.8
    f = lambda ns: (lambda x: ns.sin(x) * ns.exp(x * 0.5) + x ** 4 / (1.0 + x * x))
    d3 = em.grad(em.grad(em.grad(f(em))))(em.array(x))
    _close(d3, jax.grad(jax.grad(jax.grad(f(jnp))))(jnp.asarray(x)), rtol=1e-10, atol=1e-12)


def test_higher_order_over_arrays_matches_jax(x64, rng):
    x = rng.standard_normal(5)

    def g(ns, grad):
        def f(x):
            return ns.sum(ns.tanh(x) ** 2 * ns.cumsum(x))
        inner = grad(f)
        return grad(lambda x: ns.sum(inner(x) * ns.cos(x)))

    got = em.grad(lambda x: em.sum(g(em, em.grad)(x) ** 2))(em.array(x))
    want = jax.grad(lambda x: jnp.sum(g(jnp, jax.grad)(x) ** 2))(jnp.asarray(x))
    _close(got, want, rtol=1e-9, atol=1e-12)


def test_grad_of_vmap_of_grad_matches_jax(x64, rng):
    x = rng.standard_normal((4, 3))
    w = rng.standard_normal(3)

    def per_example(ns):
        return lambda x, w: ns.sum(ns.sin(x * w)) * ns.sum(x ** 2)

    got = em.grad(lambda w: em.sum(em.vmap(em.grad(per_example(em), argnums=1),
                                           in_axes=(0, None))(em.array(x), w) ** 2))(em.array(w))
    want = jax.grad(lambda w: jnp.sum(jax.vmap(jax.grad(per_example(jnp), argnums=1),
                                               in_axes=(0, None))(jnp.asarray(x), w) ** 2))(
        jnp.asarray(w))
    _close(got, want, rtol=1e-9, atol=1e-12)


def test_vmap_of_jacrev_and_jacfwd_match_jax(x64, rng):
    x = rng.standard_normal((5, 3))

    def f(ns):
        return lambda x: ns.concatenate([ns.sin(x) * ns.sum(x), ns.cumprod(x)[:2]])

    want = jax.vmap(jax.jacrev(f(jnp)))(jnp.asarray(x))
    _close(em.vmap(em.jacrev(f(em)))(em.array(x)), want, rtol=1e-10, atol=1e-12)
    _close(em.vmap(em.jacfwd(f(em)))(em.array(x)), want, rtol=1e-10, atol=1e-12)


def test_nested_grads_do_not_confuse_perturbations(x64, rng):
    """The inner grad's closure over the outer variable stays differentiable
    by the outer grad (Siskind and Pearlmutter's perturbation confusion)."""
    x0, y0 = rng.standard_normal(()), rng.standard_normal(())

    def f(ns, grad):
        def outer(x):
            inner = grad(lambda y: ns.sin(x * y) + x * y * y)
            return x * inner(ns.asarray(y0)) + inner(x)
        return outer

    got = em.grad(f(em, em.grad))(em.array(x0))
    want = jax.grad(f(jnp, jax.grad))(jnp.asarray(x0))
    _close(got, want, rtol=1e-12, atol=1e-12)


def _tangent(ns):
    """tangent(f, x, t): the jvp of a one-input, one-output f; ember's jvp
    takes and returns lists, JAX's tuples."""
    if ns is em:
        return lambda f, x, t: em.jvp(f, [x], [t])[1][0]
    return lambda f, x, t: jax.jvp(f, (x,), (t,))[1]


def test_jvp_and_vmap_compose_both_ways(x64, rng):
    x, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    f = lambda ns: (lambda v: ns.cumsum(ns.sin(v) * v) / ns.sum(v * v))
    push = lambda ns: (lambda v, tv: _tangent(ns)(f(ns), v, tv))
    want = jax.vmap(push(jnp))(jnp.asarray(x), jnp.asarray(t))
    _close(em.vmap(push(em))(em.array(x), em.array(t)), want, rtol=1e-12, atol=1e-12)
    _close(_tangent(em)(em.vmap(f(em)), em.array(x), em.array(t)), want, rtol=1e-12,
           atol=1e-12)


def test_jvp_of_grad_is_a_hessian_vector_product(x64, rng):
    x, v = rng.standard_normal(4), rng.standard_normal(4)
    f = lambda ns: (lambda x: ns.sum(ns.exp(x) * ns.sin(x[::-1])) + ns.prod(x))
    _, (hv,) = em.jvp(em.grad(f(em)), [em.array(x)], [em.array(v)])
    _, jhv = jax.jvp(jax.grad(f(jnp)), (jnp.asarray(x),), (jnp.asarray(v),))
    _close(hv, jhv, rtol=1e-10, atol=1e-12)


def test_vjp_of_jvp_matches_jax(x64, rng):
    x, t = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    u = rng.standard_normal((2, 2))
    f = lambda ns: (lambda x: ns.tanh(x) @ ns.transpose(x) * ns.max(x))
    push = lambda ns: (lambda x: _tangent(ns)(f(ns), x, ns.asarray(t)))
    _, (got,) = em.vjp(push(em), [em.array(x)], [em.array(u)])
    _, pull = jax.vjp(push(jnp), jnp.asarray(x))
    _close(got, pull(jnp.asarray(u))[0], rtol=1e-10, atol=1e-12)


# ---- Jacobians ----

def _jac_fn(ns):
    def f(p, x):
        y = ns.tanh(p["w"] @ x + p["b"])
        return {"y": y, "norm": ns.sum(y * y) * ns.exp(x[0])}
    return f


@pytest.mark.parametrize("which", ["jacfwd", "jacrev"])
@pytest.mark.parametrize("argnums", [0, 1, (0, 1)])
def test_jacobians_of_pytree_functions_match_jax(which, argnums, x64, rng):
    w, b, x = rng.standard_normal((2, 3)), rng.standard_normal(2), rng.standard_normal(3)
    got = getattr(em, which)(_jac_fn(em), argnums=argnums)(
        {"w": em.array(w), "b": em.array(b)}, em.array(x))
    want = getattr(jax, which)(_jac_fn(jnp), argnums=argnums)(
        {"w": jnp.asarray(w), "b": jnp.asarray(b)}, jnp.asarray(x))
    assert set(got) == {"y", "norm"}
    if argnums == 0:
        assert set(got["y"]) == {"w", "b"} and got["y"]["w"].shape == (2, 2, 3)
    _assert_trees_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("which", ["jacfwd", "jacrev"])
def test_jacobian_shapes_for_matrix_input_and_output(which, rng):
    x, jx = _pair(rng, (2, 3))
    f = lambda ns: (lambda x: ns.transpose(ns.sin(x)) * 2.0)
    got = getattr(em, which)(f(em))(x)
    assert got.shape == (3, 2, 2, 3)
    _close(got, getattr(jax, which)(f(jnp))(jx))


@pytest.mark.parametrize("which", ["jacfwd", "jacrev"])
def test_jacobian_of_scalar_function_and_scalar_input(which, rng):
    x, jx = _pair(rng, (4,))
    _close(getattr(em, which)(lambda x: em.sum(em.sin(x)))(x), jnp.cos(jx))
    s, js = _pair(rng, ())
    _close(getattr(em, which)(lambda s: em.exp(s) * em.arange(3.0))(s),
           jnp.exp(js) * jnp.arange(3.0))


@pytest.mark.parametrize("which", ["jacfwd", "jacrev"])
def test_jacobian_has_aux(which, rng):
    x, jx = _pair(rng, (3,))

    def f(ns):
        return lambda x: (ns.sin(x) * x, {"sum": ns.sum(x)})

    jac, aux = getattr(em, which)(f(em), has_aux=True)(x)
    jjac, jaux = getattr(jax, which)(f(jnp), has_aux=True)(jx)
    _close(jac, jjac)
    _close(aux["sum"], jaux["sum"])


def test_hessian_matches_jax(x64, rng):
    w, x = rng.standard_normal((2, 3)), rng.standard_normal(3)

    def f(ns):
        return lambda w, x: ns.sum(ns.tanh(w @ x) ** 2) + ns.sum(w * w * x)

    for argnums in (0, 1, (0, 1)):
        got = em.hessian(f(em), argnums=argnums)(em.array(w), em.array(x))
        want = jax.hessian(f(jnp), argnums=argnums)(jnp.asarray(w), jnp.asarray(x))
        _assert_trees_close(got, want, rtol=1e-10, atol=1e-12)


def test_hessian_of_a_dict(x64, rng):
    p = {"a": rng.standard_normal(2), "b": rng.standard_normal(())}
    f = lambda ns: (lambda p: ns.sum(ns.exp(p["a"] * p["b"])) + p["b"] ** 3)
    got = em.hessian(f(em))({k: em.array(v) for k, v in p.items()})
    want = jax.hessian(f(jnp))({k: jnp.asarray(v) for k, v in p.items()})
    assert got["a"]["b"].shape == (2,) and got["a"]["a"].shape == (2, 2)
    _assert_trees_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("which", ["jacfwd", "jacrev", "hessian"])
@pytest.mark.parametrize("argnums", [2, -3, (0, 2)])
def test_jacobian_argnums_out_of_range_raise(which, argnums):
    x = em.array([0.5, 1.5])
    with pytest.raises(ValueError, match=r"\[grad\] argnums -?\d is out of range for 2 "
                                         r"positional arguments"):
        getattr(em, which)(lambda a, b: em.sum(a * b), argnums=argnums)(x, x)


@pytest.mark.parametrize("which", ["jacfwd", "jacrev"])
def test_jacobian_negative_argnums_match_jax(which, rng):
    (a, ja), (b, jb) = _pair(rng, (3,)), _pair(rng, (2,))
    f = lambda ns: (lambda a, b: ns.sin(a)[:2] * b)
    _assert_trees_close(getattr(em, which)(f(em), argnums=(-1, 0))(a, b),
                        getattr(jax, which)(f(jnp), argnums=(-1, 0))(ja, jb))


def test_jacobian_of_integer_input_raises():
    with pytest.raises(TypeError, match=r"\[grad\] .* has dtype int32"):
        em.jacrev(lambda x: x * 2)(em.array([1, 2]))


# ---- custom_function and checkpoint ----

def _jax_custom_vjp(fwd_fn, bwd_fn):
    f = jax.custom_vjp(fwd_fn)
    f.defvjp(lambda *args: (fwd_fn(*args), args), lambda args, g: bwd_fn(args, g))
    return f


def test_custom_function_without_overrides_is_transparent(x64, rng):
    x, y = rng.standard_normal(4), rng.standard_normal(4)
    f = lambda ns: (lambda x, y: (ns.sin(x) * y, ns.exp(y)))
    cf = em.custom_function(f(em))
    loss = lambda ns, g: (lambda x, y: ns.sum(g(x, y)[0] * g(x, y)[1]))
    got = em.grad(loss(em, cf), argnums=(0, 1))(em.array(x), em.array(y))
    want = jax.grad(loss(jnp, f(jnp)), argnums=(0, 1))(jnp.asarray(x), jnp.asarray(y))
    _assert_trees_close(got, want, rtol=1e-12, atol=1e-12)
    _, tans = em.jvp(cf, [em.array(x), em.array(y)], [em.ones(4, em.float64)] * 2)
    _, jtans = jax.jvp(f(jnp), (jnp.asarray(x), jnp.asarray(y)), (jnp.ones(4),) * 2)
    _assert_trees_close(tans, list(jtans), rtol=1e-12, atol=1e-12)
    xs = rng.standard_normal((3, 4))
    _assert_trees_close(em.vmap(cf, in_axes=(0, None))(em.array(xs), em.array(y)),
                        jax.vmap(f(jnp), in_axes=(0, None))(jnp.asarray(xs), jnp.asarray(y)))
    _close(em.hessian(lambda x: cf(x, em.array(y))[0].sum())(em.array(x)),
           jax.hessian(lambda x: f(jnp)(x, jnp.asarray(y))[0].sum())(jnp.asarray(x)),
           rtol=1e-12, atol=1e-12)


def test_custom_vjp_override_is_used(x64, rng):
    x, y = rng.standard_normal(5), rng.standard_normal(5)

    # a "straight-through" clip: forward clips, backward passes a scaled gradient
    def fwd(ns):
        return lambda x, y: ns.clip(x, -0.5, 0.5) * y

    def bwd(ns, primals, g):
        x, y = primals
        return 3.0 * g * y, g * ns.clip(x, -0.5, 0.5)

    cf = em.custom_function(fwd(em))
    seen = {}

    @cf.vjp
    def cf_vjp(primals, cotangent, output):
        seen["output"] = output
        return bwd(em, primals, cotangent)

    jf = _jax_custom_vjp(fwd(jnp), lambda p, g: bwd(jnp, p, g))
    loss = lambda f, ns: (lambda x, y: ns.sum(ns.sin(f(x, y))))
    got = em.grad(loss(cf, em), argnums=(0, 1))(em.array(x), em.array(y))
    want = jax.grad(loss(jf, jnp), argnums=(0, 1))(jnp.asarray(x), jnp.asarray(y))
    _assert_trees_close(got, want, rtol=1e-12, atol=1e-12)
    _close(seen["output"], fwd(jnp)(jnp.asarray(x), jnp.asarray(y)))
    # the override is really used: the true gradient differs
    assert not np.allclose(_np(got[0]), _np(jax.grad(loss(fwd(jnp), jnp))(jnp.asarray(x),
                                                                          jnp.asarray(y))))


def test_custom_vjp_with_tree_primals_and_outputs(rng):
    p = {"a": em.array(rng.standard_normal(3).astype(np.float32)),
         "b": em.array(rng.standard_normal(3).astype(np.float32))}

    @em.custom_function
    def f(p, s):
        return {"sum": p["a"] + p["b"] * s, "prod": p["a"] * p["b"]}

    @f.vjp
    def f_vjp(primals, cotangents, outputs):
        (p, s) = primals
        assert set(cotangents) == {"sum", "prod"} and set(outputs) == {"sum", "prod"}
        ga = cotangents["sum"] * 10.0
        gb = cotangents["prod"] * 100.0
        return {"a": ga, "b": gb}, em.zeros_like(s)

    s = em.array(2.0)
    g, gs = em.grad(lambda p, s: em.sum(f(p, s)["sum"]) + em.sum(f(p, s)["prod"]),
                    argnums=(0, 1))(p, s)
    np.testing.assert_allclose(_np(g["a"]), np.full(3, 10.0))
    np.testing.assert_allclose(_np(g["b"]), np.full(3, 100.0))
    assert float(gs.item()) == 0.0


def test_custom_vjp_override_returning_wrong_count_raises(rng):
    f = em.custom_function(lambda a, b: a * b)
    f.vjp(lambda primals, cot, out: (cot,))
    x = em.array([1.0, 2.0])
    with pytest.raises(ValueError, match=r"\[custom_function\] the vjp of <lambda> returned 1 "
                                         r"cotangents for 2 primals"):
        em.grad(lambda a: em.sum(f(a, x)))(x)


def test_custom_jvp_override_is_used(x64, rng):
    x = rng.standard_normal(4)
    f = em.custom_function(lambda x: em.sin(x))

    @f.jvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return 2.0 * t * em.cos(x)

    jf = jax.custom_jvp(jnp.sin)
    jf.defjvp(lambda p, t: (jnp.sin(p[0]), 2.0 * t[0] * jnp.cos(p[0])))
    v = rng.standard_normal(4)
    outs, (t,) = em.jvp(lambda x: f(x) * x, [em.array(x)], [em.array(v)])
    jout, jt = jax.jvp(lambda x: jf(x) * x, (jnp.asarray(x),), (jnp.asarray(v),))
    _close(outs[0], jout, rtol=1e-12)
    _close(t, jt, rtol=1e-12)


def test_each_override_serves_its_own_transform(x64, rng):
    """As in mlx.core: a jvp override does not change reverse mode and a vjp
    override does not change forward mode; each falls back to the function's
    own graph."""
    x, v = rng.standard_normal(3), rng.standard_normal(3)
    only_jvp = em.custom_function(lambda x: em.sin(x))
    only_jvp.jvp(lambda primals, tangents: 3.0 * tangents[0] * em.cos(primals[0]))
    only_vjp = em.custom_function(lambda x: em.sin(x))
    only_vjp.vjp(lambda primals, cotangent, output: 3.0 * cotangent * em.cos(primals[0]))
    cos = jnp.cos(jnp.asarray(x))
    _close(em.grad(lambda x: em.sum(only_jvp(x)))(em.array(x)), cos, rtol=1e-12)
    _, (t,) = em.jvp(only_vjp, [em.array(x)], [em.array(v)])
    _close(t, cos * v, rtol=1e-12)
    _, (t,) = em.jvp(only_jvp, [em.array(x)], [em.array(v)])
    _close(t, 3.0 * cos * v, rtol=1e-12)


def test_jacobians_and_hessian_use_the_overrides(x64, rng):
    x = rng.standard_normal(4)

    def f(ns):
        return lambda x: ns.sin(x) * ns.sum(x)

    def df(ns, x, t):  # a deliberately scaled derivative
        return 3.0 * (ns.cos(x) * t * ns.sum(x) + ns.sin(x) * ns.sum(t))

    with_jvp = em.custom_function(f(em))
    with_jvp.jvp(lambda primals, tangents: df(em, primals[0], tangents[0]))
    jax_jvp = jax.custom_jvp(f(jnp))
    jax_jvp.defjvp(lambda p, t: (f(jnp)(p[0]), df(jnp, p[0], t[0])))
    want = jax.jacfwd(jax_jvp)(jnp.asarray(x))
    _close(em.jacfwd(with_jvp)(em.array(x)), want, rtol=1e-12, atol=1e-12)

    with_vjp = em.custom_function(f(em))
    # the transpose of df: J^T g with J = 3 (diag(cos x) sum(x) + sin(x) 1^T)
    with_vjp.vjp(lambda primals, g, out: 3.0 * (em.cos(primals[0]) * g * em.sum(primals[0])
                                                + em.sum(em.sin(primals[0]) * g)))
    _close(em.jacrev(with_vjp)(em.array(x)), want, rtol=1e-12, atol=1e-12)
    h = em.hessian(lambda x: em.sum(with_vjp(x) ** 2))(em.array(x))
    jh = jax.hessian(lambda x: jnp.sum(jax_jvp(x) ** 2))(jnp.asarray(x))
    _close(h, jh, rtol=1e-10, atol=1e-12)


def test_custom_vmap_override_is_used(rng):
    calls = []
    f = em.custom_function(lambda x, y: x * y)

    @f.vmap
    def f_vmap(inputs, axes):
        calls.append(axes)
        x, y = inputs
        # a deliberately different batched result, so the test sees the override
        return em.moveaxis(x, axes[0], 0) * 0 + 7.0, 0

    xs = em.array(rng.standard_normal((3, 2)).astype(np.float32))
    y = em.array(rng.standard_normal(2).astype(np.float32))
    out = em.vmap(f, in_axes=(1, None))(em.transpose(xs), y)
    assert calls == [(1, None)]
    np.testing.assert_array_equal(_np(out), np.full((3, 2), 7.0))


def test_custom_vmap_override_matches_jax(x64, rng):
    f = em.custom_function(lambda x: em.sum(x * x))

    @f.vmap
    def f_vmap(inputs, axes):
        (x,), (ax,) = inputs, axes
        return em.sum(x * x, axis=tuple(d for d in range(x.ndim) if d != ax)), 0

    xs = rng.standard_normal((4, 3))
    _close(em.vmap(f, in_axes=1)(em.array(xs.T)), jnp.sum(jnp.asarray(xs) ** 2, axis=1))


def test_custom_vmap_override_with_several_outputs_and_out_axes(rng):
    f = em.custom_function(lambda x, y: (x * y, x + y))

    @f.vmap
    def f_vmap(inputs, axes):
        (x, y), (ax, ay) = inputs, axes
        assert ay is None
        x = em.moveaxis(x, ax, 0)
        # the second output comes back with its batch axis last
        return (x * y + 100.0, em.transpose(x + y)), (0, 1)

    xs = rng.standard_normal((3, 2)).astype(np.float32)
    y = rng.standard_normal(2).astype(np.float32)
    prod, total = em.vmap(f, in_axes=(1, None), out_axes=(0, 1))(em.array(xs.T), em.array(y))
    _close(prod, xs * y + 100.0)
    _close(total, (xs + y).T)


def test_custom_function_keyword_arguments_are_not_transformed(rng):
    x, jx = _pair(rng, (3,))
    f = em.custom_function(lambda x, scale=1.0: em.sin(x) * scale)
    _close(f(x, scale=3.0), jnp.sin(jx) * 3.0)
    _close(em.grad(lambda x: em.sum(f(x, scale=3.0)))(x), jnp.cos(jx) * 3.0)
    f.vjp(lambda primals, cotangent, output: cotangent * 10.0)
    _close(em.grad(lambda x: em.sum(f(x, scale=3.0)))(x), jnp.full(3, 10.0))


def test_custom_function_returning_its_input(rng):
    x, jx = _pair(rng, (4,))
    f = em.custom_function(lambda x: x)
    _close(em.grad(lambda x: em.sum(f(x) * x))(x), 2 * jx)
    f.vjp(lambda primals, cotangent, output: cotangent * 5.0)
    _close(em.grad(lambda x: em.sum(f(x) * x))(x), 6 * jx)


def test_checkpoint_gives_the_same_gradients(x64, rng):
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((4, 4))

    def block(ns):
        return lambda x, w: ns.tanh(x @ w) * ns.sin(x)

    def loss(ns, blk):
        return lambda x, w: ns.sum(blk(blk(x, w), w) ** 2)

    plain = em.grad(loss(em, block(em)), argnums=(0, 1))(em.array(x), em.array(w))
    ckpt = em.grad(loss(em, em.checkpoint(block(em))), argnums=(0, 1))(em.array(x), em.array(w))
    want = jax.grad(loss(jnp, jax.checkpoint(block(jnp))), argnums=(0, 1))(jnp.asarray(x),
                                                                          jnp.asarray(w))
    _assert_trees_close(plain, want, rtol=1e-12, atol=1e-12)
    _assert_trees_close(ckpt, want, rtol=1e-12, atol=1e-12)
    # second order through a checkpoint
    h = em.hessian(lambda w: loss(em, em.checkpoint(block(em)))(em.array(x), w))(em.array(w))
    jh = jax.hessian(lambda w: loss(jnp, block(jnp))(jnp.asarray(x), w))(jnp.asarray(w))
    _close(h, jh, rtol=1e-9, atol=1e-10)


def test_checkpoint_of_tree_inputs_and_vmap(rng):
    p = {"w": em.array(rng.standard_normal((3, 3)).astype(np.float32)),
         "b": em.array(rng.standard_normal(3).astype(np.float32))}
    xs = rng.standard_normal((5, 3)).astype(np.float32)
    layer = em.checkpoint(lambda p, x: em.tanh(p["w"] @ x + p["b"]))
    jlayer = lambda p, x: jnp.tanh(p["w"] @ x + p["b"])
    got = em.grad(lambda p: em.sum(em.vmap(layer, in_axes=(None, 0))(p, em.array(xs))))(p)
    jp = {k: jnp.asarray(_np(v)) for k, v in p.items()}
    want = jax.grad(lambda p: jnp.sum(jax.vmap(jlayer, in_axes=(None, 0))(p, jnp.asarray(xs))))(jp)
    _assert_trees_close(got, want, rtol=1e-5)


# ---- evaluating part-way inside a transformed function ----

def test_eval_and_item_inside_grad(rng):
    x, jx = _pair(rng, (4,))

    def f(x):
        y = em.exp(x) * 0.5
        em.eval(y)
        scale = y.sum().item()           # a Python float: a constant to grad
        z = em.tanh(y) * scale           # tanh, not sin: exp's last bit would move sin(y) of y ~ 100
        print(z)                         # printing evaluates too
        return em.sum(z * x)

    def jf(x):
        y = jnp.exp(x) * 0.5
        scale = jax.lax.stop_gradient(jnp.sum(y))
        return jnp.sum(jnp.tanh(y) * scale * x)

    _close(em.grad(f)(x), jax.grad(jf)(jx), rtol=1e-5)
    (value, g) = em.value_and_grad(f)(x * 2)
    _close(value, jf(jx * 2), rtol=1e-5)
    _close(g, jax.grad(jf)(jx * 2), rtol=1e-5)


def test_eval_after_an_inner_grad_keeps_the_outer_graph(x64, rng):
    """An inner grad (or vjp) finishing its trace must not stop the outer
    trace from keeping its graph when the function evaluates afterwards."""
    x = rng.standard_normal(3)

    def f(ns, grad, evaluate):
        def fn(x):
            g = grad(lambda y: ns.sum(y * y * x))(x)
            y = ns.exp(x) * g
            evaluate(y)
            return ns.sum(y * x)
        return fn

    got = em.grad(f(em, em.grad, em.eval))(em.array(x))
    want = jax.grad(f(jnp, jax.grad, lambda y: None))(jnp.asarray(x))
    _close(got, want, rtol=1e-12, atol=1e-12)

    def h(x):
        _, (c,) = em.vjp(lambda a: em.sin(a) * a, [x], [em.ones_like(x)])
        em.eval(c)
        return em.sum(c * c)

    want = jax.grad(lambda x: jnp.sum(jax.vjp(lambda a: jnp.sin(a) * a, x)[1](
        jnp.ones(3))[0] ** 2))(jnp.asarray(x))
    _close(em.grad(h)(em.array(x)), want, rtol=1e-12, atol=1e-12)


def test_eval_of_the_gradient_graph_twice(rng):
    x, jx = _pair(rng, (3,))
    g = em.grad(lambda x: em.sum(em.sin(x) ** 2))(x)
    em.eval(g)
    _close(g, 2 * jnp.sin(jx) * jnp.cos(jx))
    _close(g * 2, 4 * jnp.sin(jx) * jnp.cos(jx))


# ---- random programs: ember vs jax.numpy ----

def _op_pool():
    """name -> (arity, needs full (3, 4) operands, fn(ns, *operands)). `ns`
    is em or jnp; every op is written once for both."""

    def full(ns, a):
        return ns.broadcast_to(a, (3, 4))

    return {
        # unary elementwise
        "sin": (1, False, lambda ns, a: ns.sin(a)),
        "cos": (1, False, lambda ns, a: ns.cos(a)),
        "tanh": (1, False, lambda ns, a: ns.tanh(a)),
        "sigmoid": (1, False, lambda ns, a: 1 / (1 + ns.exp(-a)) if ns is jnp else em.sigmoid(a)),
        "square": (1, False, lambda ns, a: a * a),
        "negative": (1, False, lambda ns, a: -a),
        "softplus": (1, False, lambda ns, a: ns.logaddexp(a, 0.0)),
        "sqrt1p": (1, False, lambda ns, a: ns.sqrt(1.0 + a * a)),
        "log1p_sq": (1, False, lambda ns, a: ns.log1p(a * a)),
        "exp_tanh": (1, False, lambda ns, a: ns.exp(ns.tanh(a))),
        "arctan": (1, False, lambda ns, a: ns.arctan(a)),
        "erf": (1, False, lambda ns, a: (jax.scipy.special.erf(a) if ns is jnp else em.erf(a))),
        "abs": (1, False, lambda ns, a: ns.abs(a)),
        "clip": (1, False, lambda ns, a: ns.clip(a, -0.8, 0.9)),
        # reductions (kept axes, so results broadcast back)
        "sum0": (1, False, lambda ns, a: ns.sum(a, axis=0, keepdims=True)),
        "mean1": (1, False, lambda ns, a: ns.mean(a, axis=1, keepdims=True)),
        "max1": (1, False, lambda ns, a: ns.max(a, axis=1, keepdims=True)),
        "min0": (1, False, lambda ns, a: ns.min(a, axis=0, keepdims=True)),
        "lse1": (1, False, lambda ns, a: (jax.nn.logsumexp(a, axis=1, keepdims=True) if ns is jnp
                                          else em.logsumexp(a, axis=1, keepdims=True))),
        "var0": (1, False, lambda ns, a: ns.var(a, axis=0, keepdims=True)),
        "softmax1": (1, True, lambda ns, a: (jax.nn.softmax(full(ns, a), axis=1) if ns is jnp
                                             else em.softmax(full(ns, a), axis=1))),
        # scans
        "cumsum1": (1, True, lambda ns, a: ns.cumsum(full(ns, a), axis=1)),
        "cumprod0": (1, True, lambda ns, a: ns.cumprod(full(ns, a), axis=0)),
        "cummax1": (1, True, lambda ns, a: (jax.lax.cummax(full(ns, a), axis=1) if ns is jnp
                                            else em.cummax(full(ns, a), axis=1))),
        # layout
        "flip": (1, True, lambda ns, a: full(ns, a)[::-1, ::-1]),
        "roll": (1, True, lambda ns, a: ns.roll(full(ns, a), 2, axis=1)),
        "t_reshape": (1, True, lambda ns, a: ns.reshape(ns.transpose(full(ns, a)), (3, 4))),
        "swap_halves": (1, True, lambda ns, a: ns.concatenate([full(ns, a)[:, 2:],
                                                               full(ns, a)[:, :2]], axis=1)),
        "pad_slice": (1, True, lambda ns, a: ns.pad(full(ns, a), ((1, 0), (0, 2)))[:3, 1:5]),
        "stack_sum": (1, True, lambda ns, a: ns.sum(ns.stack([full(ns, a), 2 * full(ns, a)]),
                                                    axis=0)),
        # indexing
        "take": (1, True, lambda ns, a: ns.take(full(ns, a), ns.array([3, 0, 0, 2]), axis=1)),
        "gather_rows": (1, True, lambda ns, a: full(ns, a)[ns.array([2, 2, 0])]),
        "setitem": (1, True, lambda ns, a: full(ns, a).at[1:, 1].set(0.5)),
        # binary
        "add": (2, False, lambda ns, a, b: a + b),
        "subtract": (2, False, lambda ns, a, b: a - b),
        "multiply": (2, False, lambda ns, a, b: a * b),
        "safe_divide": (2, False, lambda ns, a, b: a / (1.0 + b * b)),
        "maximum": (2, False, lambda ns, a, b: ns.maximum(a, b)),
        "minimum": (2, False, lambda ns, a, b: ns.minimum(a, b)),
        "where": (2, False, lambda ns, a, b: ns.where(a > b, a * 2.0, b)),
        "arctan2": (2, False, lambda ns, a, b: ns.arctan2(a, 1.5 + b * b)),
        "logaddexp": (2, False, lambda ns, a, b: ns.logaddexp(a, b)),
        "matmul": (2, True, lambda ns, a, b: full(ns, a) @ (ns.transpose(full(ns, b))
                                                            @ full(ns, b)) * 0.1),
        "scatter_add": (2, True, lambda ns, a, b: full(ns, a).at[ns.array([0, 2, 0])].add(
            full(ns, b))),
        "scatter_rows_max": (2, True, lambda ns, a, b: full(ns, a).at[ns.array([1, 1])].max(
            full(ns, b)[:2]) if ns is jnp else
            full(ns, a).at[ns.array([1, 1])].maximum(full(ns, b)[:2])),
    }


_POOL = _op_pool()


def _random_program(rng, depth, top=True):
    """A random expression tree over inputs 0 and 1 (nested tuples), rooted
    at an op."""
    if depth == 0 or (not top and rng.random() < 0.15):
        return ("input", int(rng.integers(2)))
    name = str(rng.choice(sorted(_POOL)))
    arity = _POOL[name][0]
    return (name,) + tuple(_random_program(rng, depth - 1, False) for _ in range(arity))


def _run(program, ns, inputs):
    if program[0] == "input":
        return inputs[program[1]]
    _, _, fn = _POOL[program[0]]
    return fn(ns, *(_run(p, ns, inputs) for p in program[1:]))


def _program_loss(program, ns):
    def loss(x, y):
        out = _run(program, ns, (x, y))
        weights = ns.cos(ns.arange(out.size, dtype=out.dtype).reshape(out.shape))
        return ns.sum(out * weights)
    return loss


@pytest.mark.parametrize("k", range(20))
def test_random_programs_match_jax(k, x64, rng):
    program = _random_program(rng, depth=4)
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    xs, ys = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    f, jf = _program_loss(program, em), _program_loss(program, jnp)
    note = f"program: {program}"
    value, g = em.value_and_grad(f, argnums=(0, 1))(em.array(x), em.array(y))
    jvalue, jg = jax.value_and_grad(jf, argnums=(0, 1))(jnp.asarray(x), jnp.asarray(y))
    np.testing.assert_allclose(_np(value), _np(jvalue), rtol=1e-9, atol=1e-10, err_msg=note)
    for a, b in zip(g, jg):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-8, atol=1e-9, err_msg=note)
    vg = em.vmap(em.grad(f, argnums=(0, 1)), in_axes=(0, None))(em.array(xs), em.array(y))
    jvg = jax.vmap(jax.grad(jf, argnums=(0, 1)), in_axes=(0, None))(jnp.asarray(xs),
                                                                    jnp.asarray(y))
    for a, b in zip(vg, jvg):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-8, atol=1e-9, err_msg=note)
    vg = em.vmap(em.grad(f, argnums=1), in_axes=(1, 2))(em.array(np.moveaxis(xs, 0, 1)),
                                                          em.array(np.moveaxis(ys, 0, 2)))
    jvg = jax.vmap(jax.grad(jf, argnums=1))(jnp.asarray(xs), jnp.asarray(ys))
    np.testing.assert_allclose(_np(vg), _np(jvg), rtol=1e-8, atol=1e-9, err_msg=note)


def test_the_program_pool_covers_every_op(rng):
    """Every pooled op runs (value and gradient) on its own against JAX."""
    x, y = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4))
    for name, (arity, _, _) in sorted(_POOL.items()):
        program = (name,) + tuple(("input", i) for i in range(arity))
        f, jf = _program_loss(program, em), _program_loss(program, jnp)
        g = em.grad(f, argnums=(0, 1))(em.array(x), em.array(y.astype(np.float32)))
        jg = jax.grad(jf, argnums=(0, 1))(jnp.asarray(x), jnp.asarray(y.astype(np.float32)))
        for a, b in zip(g, jg):
            np.testing.assert_allclose(_np(a), _np(b), rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("mode", ["max", "min"])
def test_scatter_extremum_ties_share_the_gradient(mode, x64, rng):
    """Tied winners (the array and repeated updates) split the derivative
    evenly, as JAX does, so the shares of one output add up to one."""
    a = rng.standard_normal(4)
    v = rng.standard_normal()
    a[1] = v
    u = np.array([v, v, rng.standard_normal()])
    idx = [1, 1, 3]

    def f(ns, method):
        def loss(a, u):
            out = getattr(a.at[ns.array(idx)], method)(u)
            return ns.sum(out * ns.arange(1.0, 5.0))
        return loss

    method = "maximum" if mode == "max" else "minimum"
    got = em.grad(f(em, method), argnums=(0, 1))(em.array(a), em.array(u))
    want = jax.grad(f(jnp, mode), argnums=(0, 1))(jnp.asarray(a), jnp.asarray(u))
    _assert_trees_close(got, want, rtol=1e-12, atol=1e-12)
    t = rng.standard_normal(4), rng.standard_normal(3)
    _, (tan,) = em.jvp(lambda a, u: getattr(a.at[em.array(idx)], method)(u),
                       [em.array(a), em.array(u)], [em.array(t[0]), em.array(t[1])])
    _, jtan = jax.jvp(lambda a, u: getattr(a.at[jnp.array(idx)], mode)(u),
                      (jnp.asarray(a), jnp.asarray(u)), (jnp.asarray(t[0]), jnp.asarray(t[1])))
    _close(tan, jtan, rtol=1e-12, atol=1e-12)


def test_grad_of_a_deep_chain(x64, rng):
    """The graph walks are iterative: a chain far deeper than Python's
    recursion limit differentiates."""
    x = rng.standard_normal(3)

    def f(ns):
        def fn(x):
            for _ in range(5000):
                x = x * 1.0001 + 0.0001
            return ns.sum(ns.sin(x))
        return fn

    _close(em.grad(f(em))(em.array(x)), jax.grad(f(jnp))(jnp.asarray(x)), rtol=1e-10)
