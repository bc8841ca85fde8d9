"""L-BFGS and the zoom line search against optax: the same objective minimized
by both for several steps, params, updates and states compared at each step."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ember.core as em
from ember import optim

from optim_oracle import assert_trees_close, compare, jax_x64, to_ember, to_jax

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64],
                                 ids=["float32", "float64"])


# Random gradients are no gradient field: their curvature pairs can have <dw, du> < 0,
# and the two-loop recursion then amplifies the rounding of the inner products (summed
# in another order than XLA's) to about 1e-5 in float32. The convex problem below checks
# L-BFGS on real gradients at the usual tolerances.
@pytest.mark.parametrize("dtype,rtol", [(np.float32, 1e-4), (np.float64, None)],
                         ids=["float32", "float64"])
@pytest.mark.parametrize("kwargs", [{}, dict(memory_size=3),
                                    dict(memory_size=4, scale_init_precond=False)])
def test_scale_by_lbfgs_matches_optax(rng, dtype, rtol, kwargs):
    compare(rng, optim.scale_by_lbfgs(**kwargs), optax.scale_by_lbfgs(**kwargs), dtype=dtype,
            steps=12, rtol=rtol)


def test_scale_by_lbfgs_rejects_empty_memory():
    with pytest.raises(ValueError, match="memory_size must be >= 1"):
        optim.scale_by_lbfgs(memory_size=0)


def _problem(rng, dtype):
    """A convex quadratic plus a quartic in a two-leaf tree, with its data."""
    a = rng.normal(size=(6, 6)).astype(dtype)
    hessian = (a @ a.T / 6 + np.eye(6)).astype(dtype)
    target = rng.normal(size=(6,)).astype(dtype)
    start = {"x": rng.normal(size=(6,)).astype(dtype), "y": rng.normal(size=(2, 2)).astype(dtype)}

    def objective(lib_sum, h, t):
        def f(params):
            d = params["x"] - t
            return 0.5 * lib_sum(d * (h @ d)) + 0.25 * lib_sum(params["y"] ** 4) \
                + lib_sum(params["y"] * params["x"][:2])
        return f
    return hessian, target, start, objective


def _run_both(rng, dtype, build, steps, rtol=None):
    hessian, target, start, objective = _problem(rng, dtype)
    with jax_x64(dtype == np.float64):
        f_em = objective(em.sum, em.array(hessian), em.array(target))
        f_jx = objective(jnp.sum, jnp.asarray(hessian), jnp.asarray(target))
        ours, theirs = build(optim), build(optax)
        p_em, p_jx = to_ember(start), to_jax(start)
        s_em, s_jx = ours.init(p_em), theirs.init(p_jx)
        vg_em = optim.value_and_grad_from_state(f_em)
        vg_jx = jax.jit(optax.value_and_grad_from_state(f_jx))
        their_update = jax.jit(functools.partial(theirs.update, value_fn=f_jx))
        for step in range(steps):
            v_em, g_em = vg_em(p_em, state=s_em)
            v_jx, g_jx = vg_jx(p_jx, state=s_jx)
            assert_trees_close((v_em, g_em), (v_jx, g_jx), dtype, f"step {step} value/grad", rtol)
            u_em, s_em = ours.update(g_em, s_em, p_em, value=v_em, grad=g_em, value_fn=f_em)
            u_jx, s_jx = their_update(g_jx, s_jx, p_jx, value=v_jx, grad=g_jx)
            assert_trees_close(u_em, u_jx, dtype, f"step {step} updates", rtol)
            assert_trees_close(s_em, s_jx, dtype, f"step {step} state", rtol)
            p_em, p_jx = optim.apply_updates(p_em, u_em), optax.apply_updates(p_jx, u_jx)
            # restart each step from optax's params so that each compares one computation
            p_em = to_ember(jax.tree.map(np.asarray, p_jx))
        return f_jx(p_jx), f_jx(to_jax(start))


# L-BFGS keeps differences of params and gradients (p(t) - p(t-1)), whose relative
# rounding is that of their operands, and the line search's trial points compound it:
# and the cubic interpolation of the zoom amplifies them: float32 runs agree to 1e-4
# relative (float64 to 1e-12)
LBFGS_TOLERANCE = pytest.mark.parametrize("dtype,rtol", [(np.float32, 1e-4), (np.float64, None)],
                                          ids=["float32", "float64"])


@LBFGS_TOLERANCE
def test_lbfgs_matches_optax(rng, dtype, rtol):
    final, initial = _run_both(rng, dtype, lambda lib: lib.lbfgs(), steps=6, rtol=rtol)
    assert final < initial


@LBFGS_TOLERANCE
def test_lbfgs_with_a_capped_keep_linesearch_matches_optax(rng, dtype, rtol):
    def build(lib):
        return lib.lbfgs(memory_size=4, linesearch=lib.scale_by_zoom_linesearch(
            max_linesearch_steps=6, max_learning_rate=0.5, initial_guess_strategy="keep"))
    _run_both(rng, dtype, build, steps=5, rtol=rtol)


def test_lbfgs_without_linesearch_matches_optax(rng):
    # random gradients again: see test_scale_by_lbfgs_matches_optax for the tolerance
    compare(rng, optim.lbfgs(learning_rate=0.1, linesearch=None),
            optax.lbfgs(learning_rate=0.1, linesearch=None), steps=10, rtol=1e-4)


def test_zoom_linesearch_rejects_kwargs_value_fn_does_not_take():
    tx = optim.scale_by_zoom_linesearch(5)
    params = {"x": em.ones((2,))}

    def f(p):
        return em.sum(p["x"] ** 2)
    with pytest.raises(TypeError, match=r"not consumed by `value_fn`: \['batch'\]"):
        tx.update(params, tx.init(params), params, value=f(params), grad=params, value_fn=f,
                  batch=3)


def test_zoom_linesearch_rejects_unknown_guess_strategy():
    tx = optim.scale_by_zoom_linesearch(5, initial_guess_strategy="half")
    params = {"x": em.ones((2,))}

    def f(p):
        return em.sum(p["x"] ** 2)
    with pytest.raises(ValueError, match="Unknown initial guess strategy: half"):
        tx.update(params, tx.init(params), params, value=f(params), grad=params, value_fn=f)


def test_value_and_grad_from_state_needs_a_state_with_value_and_grad():
    vg = optim.value_and_grad_from_state(lambda p: em.sum(p))
    with pytest.raises(ValueError, match="Value or gradient not found in the state"):
        vg(em.ones((2,)), state=optim.adam(0.1).init(em.ones((2,))))
