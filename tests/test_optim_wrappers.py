"""ember.optim wrappers against optax's: 20 steps on the same random gradients, with
updates and every leaf of the states compared after each step (tests/optim_oracle.py),
in float32 (rtol 1e-6) and float64 (rtol 1e-12)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optree
import pytest

import ember.core as em
from ember import optim

from optim_oracle import (SHAPES, TOLERANCE, compare, jax_x64, random_tree, to_ember,
                          to_jax)

DTYPES = [np.float32, np.float64]
MASK = {"w": True, "b": False, "conv": True, "scale": False, "deep": [True, False]}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("use_grad_mean", [True, False])
def test_multi_steps(rng, dtype, use_grad_mean):
    k = int(rng.integers(2, 5))
    ours = optim.MultiSteps(optim.adam(1e-2), k, use_grad_mean=use_grad_mean)
    theirs = optax.MultiSteps(optax.adam(1e-2), k, use_grad_mean=use_grad_mean)
    ours_state, theirs_state = compare(rng, ours, theirs, dtype)
    assert bool(ours.has_updated(ours_state)) == bool(theirs.has_updated(theirs_state))


@pytest.mark.parametrize("dtype", DTYPES)
def test_multi_steps_with_a_schedule_of_k(rng, dtype):
    ours = optim.MultiSteps(optim.sgd(0.1, momentum=0.9), lambda step: em.where(step < 2, 2, 3))
    theirs = optax.MultiSteps(optax.sgd(0.1, momentum=0.9), lambda step: jnp.where(step < 2, 2, 3))
    compare(rng, ours, theirs, dtype)


def test_multi_steps_skips_with_skip_not_finite(rng):
    ours = optim.MultiSteps(optim.adam(1e-2), 2, should_skip_update_fn=optim.skip_not_finite)
    theirs = optax.MultiSteps(optax.adam(1e-2), 2, should_skip_update_fn=optax.skip_not_finite)
    state = run_with_nans(rng, ours, theirs, np.float32, nan_steps={1, 2, 5, 9, 10, 11, 17})
    assert int(state.gradient_step) == 6  # 13 clean steps, two per inner step


@pytest.mark.parametrize("dtype", DTYPES)
def test_multi_steps_skips_large_updates(rng, dtype):
    ours = optim.MultiSteps(optim.adam(1e-2), 2, should_skip_update_fn=functools.partial(
        optim.skip_large_updates, max_squared_norm=25.0))
    theirs = optax.MultiSteps(optax.adam(1e-2), 2, should_skip_update_fn=functools.partial(
        optax.skip_large_updates, max_squared_norm=25.0))
    compare(rng, ours, theirs, dtype)


def test_multi_steps_gradient_transformation_and_bad_skip_fn(rng):
    multi = optim.MultiSteps(optim.sgd(0.1), 2)
    tx = multi.gradient_transformation()
    assert isinstance(tx, optim.GradientTransformation)
    compare(rng, tx, optax.MultiSteps(optax.sgd(0.1), 2).gradient_transformation(), steps=5)
    params = {"w": em.zeros((3,))}
    bad = optim.MultiSteps(optim.sgd(0.1), 2,
                           should_skip_update_fn=lambda u, s, p: (em.array(1), ()))
    with pytest.raises(ValueError, match=r"\[MultiSteps\] should_skip_update_fn must return a "
                                         r"boolean scalar array, got dtype .*int32 and shape \(\)"):
        bad.update(params, bad.init(params), params)


@pytest.mark.parametrize("dtype", DTYPES)
def test_apply_every(rng, dtype):
    k = int(rng.integers(2, 5))
    compare(rng, optim.apply_every(k), optax.apply_every(k), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked(rng, dtype):
    compare(rng, optim.masked(optim.adam(1e-2), MASK), optax.masked(optax.adam(1e-2), MASK), dtype)
    prefix = {"w": True, "b": True, "conv": False, "scale": True, "deep": False}
    compare(rng, optim.masked(optim.sgd(0.1, momentum=0.5), prefix),
            optax.masked(optax.sgd(0.1, momentum=0.5), prefix), dtype)
    by_rank = lambda params: optree.tree_map(lambda p: p.ndim > 1, params)
    compare(rng, optim.masked(optim.adam(1e-2), by_rank),
            optax.masked(optax.adam(1e-2), by_rank), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_freeze_and_selective_transform(rng, dtype):
    chained = (optim.chain(optim.adam(1e-2), optim.freeze(MASK)),
               optax.chain(optax.adam(1e-2), optax.freeze(MASK)))
    compare(rng, *chained, dtype)
    compare(rng, optim.selective_transform(optim.sgd(0.1, momentum=0.9), freeze_mask=MASK),
            optax.selective_transform(optax.sgd(0.1, momentum=0.9), freeze_mask=MASK), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_flatten(rng, dtype):
    compare(rng, optim.flatten(optim.adam(1e-2)), optax.flatten(optax.adam(1e-2)), dtype)
    compare(rng, optim.flatten(optim.sgd(0.1, momentum=0.9)),
            optax.flatten(optax.sgd(0.1, momentum=0.9)), dtype, use_params=False)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conditional_wrappers(rng, dtype):
    period = int(rng.integers(2, 4))
    ours_fn = lambda step: step % period != 0
    theirs_fn = lambda step: step % period != 0
    compare(rng, optim.conditionally_mask(optim.adam(1e-2), ours_fn),
            optax.conditionally_mask(optax.adam(1e-2), theirs_fn), dtype)
    compare(rng, optim.conditionally_transform(optim.adam(1e-2), ours_fn),
            optax.conditionally_transform(optax.adam(1e-2), theirs_fn), dtype)


def test_conditional_wrappers_forward_extra_args(rng):
    ours = optim.conditionally_mask(optim.sgd(0.1), lambda step, loss: loss < 0.5,
                                    forward_extra_args=True)
    theirs = optax.conditionally_mask(optax.sgd(0.1), lambda step, loss: loss < 0.5,
                                      forward_extra_args=True)
    losses = rng.uniform(size=20)
    compare(rng, ours, theirs, extra_args=lambda step: {"loss": float(losses[step])})


@pytest.mark.parametrize("dtype", DTYPES)
def test_apply_if_finite(rng, dtype):
    ours = optim.apply_if_finite(optim.adam(1e-2), 2)
    theirs = optax.apply_if_finite(optax.adam(1e-2), 2)
    compare(rng, ours, theirs, dtype)
    # runs of 1, 2 and 4 non-finite steps: the fourth in a row goes through
    state = run_with_nans(rng, ours, theirs, dtype, nan_steps={2, 5, 6, 10, 11, 12, 13})
    assert int(state.total_notfinite) == 7


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reset_state", [False, True])
def test_lookahead(rng, dtype, reset_state):
    sync_period, slow_step_size = int(rng.integers(1, 4)), float(rng.uniform(0.2, 0.8))
    ours = optim.lookahead(optim.adam(1e-2), sync_period, slow_step_size, reset_state)
    theirs = optax.lookahead(optax.adam(1e-2), sync_period, slow_step_size, reset_state)
    with jax_x64(dtype == np.float64):
        params = random_tree(rng, dtype)
        p_em = optim.LookaheadParams.init_synced(to_ember(params))
        p_jx = optax.LookaheadParams.init_synced(to_jax(params))
        s_em, s_jx = ours.init(p_em), theirs.init(p_jx)
        update = jax.jit(theirs.update)
        for step in range(20):
            grads = random_tree(rng, dtype)
            u_em, s_em = ours.update(to_ember(grads), s_em, p_em)
            u_jx, s_jx = update(to_jax(grads), s_jx, p_jx)
            assert_close((u_em, s_em), (u_jx, s_jx), dtype, f"step {step}")
            p_em, p_jx = optim.apply_updates(p_em, u_em), optax.apply_updates(p_jx, u_jx)
            p_em = optree.tree_unflatten(optree.tree_structure(p_em),
                                         [em.array(np.asarray(x)) for x in optree.tree_leaves(p_jx)])
    with pytest.raises(ValueError, match=r"\[lookahead\] sync_period must be >= 1, got 0"):
        optim.lookahead(optim.sgd(0.1), 0, 0.5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_inject_hyperparams(rng, dtype):
    compare(rng, optim.inject_hyperparams(optim.adam)(learning_rate=1e-2, b1=0.85),
            optax.inject_hyperparams(optax.adam)(learning_rate=1e-2, b1=0.85), dtype)
    # A schedule of the int32 step count computes in float32 even under x64 (in optax
    # as here), so scheduled values agree to float32 precision only.
    ours = optim.inject_hyperparams(optim.adam)(
        learning_rate=optim.linear_schedule(1e-2, 1e-3, 10), b1=0.85)
    theirs = optax.inject_hyperparams(optax.adam)(
        learning_rate=optax.linear_schedule(1e-2, 1e-3, 10), b1=0.85)
    compare(rng, ours, theirs, dtype, rtol=TOLERANCE[np.float32])
    ours = optim.inject_hyperparams(optim.sgd, static_args="nesterov")(
        learning_rate=0.1, momentum=optim.exponential_decay(0.9, 3, 0.5), nesterov=True)
    theirs = optax.inject_hyperparams(optax.sgd, static_args="nesterov")(
        learning_rate=0.1, momentum=optax.exponential_decay(0.9, 3, 0.5), nesterov=True)
    compare(rng, ours, theirs, dtype, rtol=TOLERANCE[np.float32])


def test_inject_hyperparams_state_can_be_changed(rng):
    params = random_tree(rng, np.float32)
    ours = optim.inject_hyperparams(optim.adam)(learning_rate=1e-2)
    theirs = optax.inject_hyperparams(optax.adam)(learning_rate=1e-2)
    s_em, s_jx = ours.init(to_ember(params)), theirs.init(to_jax(params))
    s_em.hyperparams["learning_rate"] = 0.5
    s_jx.hyperparams["learning_rate"] = 0.5
    grads = random_tree(rng, np.float32)
    u_em, s_em = ours.update(to_ember(grads), s_em, to_ember(params))
    u_jx, s_jx = theirs.update(to_jax(grads), s_jx, to_jax(params))
    assert_close((u_em, s_em), (u_jx, s_jx), np.float32, "after changing learning_rate")
    with pytest.raises(ValueError, match=r"\[inject_hyperparams\] static_args must name "
                                         r"parameters of inner_factory"):
        optim.inject_hyperparams(optim.adam, static_args=("lr",))
    with pytest.warns(DeprecationWarning, match="inject_stateful_hyperparams is deprecated"):
        optim.inject_stateful_hyperparams(optim.adam)


VMAP_CASES = {
    "MultiSteps": lambda: optim.MultiSteps(optim.adam(1e-2), 2,
                                           should_skip_update_fn=optim.skip_not_finite),
    "apply_if_finite": lambda: optim.apply_if_finite(optim.adam(1e-2), 1),
    "conditionally_transform": lambda: optim.conditionally_transform(
        optim.adam(1e-2), lambda step: step % 2 == 0),
    "apply_every": lambda: optim.apply_every(2),
    "lookahead": lambda: optim.lookahead(optim.sgd(0.1), 2, 0.5, reset_state=True),
}


@pytest.mark.parametrize("name", VMAP_CASES)
def test_wrappers_trace_under_vmap(rng, name):
    """The conditions are arrays chosen with em.where, so em.vmap traces an update: three
    independent runs batched along a leading axis match three eager runs."""
    tx = VMAP_CASES[name]()
    params = {"w": em.array(rng.standard_normal((4, 3)).astype(np.float32))}
    if name == "lookahead":
        params = optim.LookaheadParams.init_synced(params)
    states = [tx.init(params) for _ in range(3)]
    batched = optree.tree_map(lambda *leaves: em.stack(leaves), *states)
    batched_update = em.vmap(lambda g, s: tx.update(g, s, params))
    for step in range(6):
        grads = rng.standard_normal((3, 4, 3)).astype(np.float32)
        grads[1, 0, 0] = np.nan if step % 3 == 1 else grads[1, 0, 0]
        updates, batched = batched_update({"w": em.array(grads)}, batched)
        eager = [tx.update({"w": em.array(grads[i])}, states[i], params) for i in range(3)]
        states = [state for _, state in eager]
        stacked = optree.tree_map(lambda *leaves: np.stack([np.asarray(x) for x in leaves]),
                                  *[(u, state) for u, state in eager])
        assert_close((updates, batched), stacked, np.float32, f"step {step}")


def assert_close(ours, theirs, dtype, what):
    """Leaf by leaf, with nan where optax has nan and a scale that ignores non-finite values."""
    our_leaves = optree.tree_leaves(ours, none_is_leaf=False)
    their_leaves = optree.tree_leaves(theirs, none_is_leaf=False)
    assert len(our_leaves) == len(their_leaves), what
    rtol = TOLERANCE[dtype]
    for i, (x, y) in enumerate(zip(our_leaves, their_leaves)):
        a, b = np.asarray(x), np.asarray(y)
        assert a.dtype == b.dtype and a.shape == b.shape, (what, i, a.dtype, b.dtype, a.shape, b.shape)
        finite = b[np.isfinite(b)] if b.dtype.kind == "f" else b
        scale = max(float(np.max(np.abs(finite), initial=0.0)), 1.0)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, equal_nan=True,
                                   err_msg=f"{what} leaf {i}")


def run_with_nans(rng, ours, theirs, dtype, nan_steps, steps=20):
    """`steps` steps; on the steps in `nan_steps` a few random gradient entries are nan."""
    with jax_x64(dtype == np.float64):
        params = random_tree(rng, dtype)
        p_em, p_jx = to_ember(params), to_jax(params)
        s_em, s_jx = ours.init(p_em), theirs.init(p_jx)
        update = jax.jit(theirs.update)
        for step in range(steps):
            fraction = 0.05 if step in nan_steps else 0.0
            grads = optree.tree_map(
                lambda g: np.where(rng.random(g.shape) < fraction, np.nan, g).astype(dtype),
                random_tree(rng, dtype))
            grads["w"][rng.integers(5), rng.integers(7)] = np.nan if step in nan_steps else 0.5
            u_em, s_em = ours.update(to_ember(grads), s_em, p_em)
            u_jx, s_jx = update(to_jax(grads), s_jx, p_jx)
            assert_close((u_em, s_em), (u_jx, s_jx), dtype, f"step {step}")
        return s_em
