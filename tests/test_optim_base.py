"""ember.optim.base, optim.tree and optim.numerics against optax."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ember.core as em
from ember import optim
from ember.optim import numerics

from optim_oracle import (assert_trees_close, compare, jax_x64, random_tree, to_ember,
                          to_jax)

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64],
                                 ids=["float32", "float64"])


# --- base

@DTYPES
def test_apply_updates_matches_optax_and_keeps_param_dtypes(rng, dtype):
    params, updates = random_tree(rng, dtype), random_tree(rng, dtype)
    with jax_x64(dtype == np.float64):
        assert_trees_close(optim.apply_updates(to_ember(params), to_ember(updates)),
                           optax.apply_updates(to_jax(params), to_jax(updates)), dtype)
    half = {"a": em.ones((3,), em.float16)}
    out = optim.apply_updates(half, {"a": em.full((3,), em.array(0.5, em.float32))})
    assert out["a"].dtype == em.float16
    np.testing.assert_array_equal(np.asarray(out["a"]), np.full(3, 1.5, np.float16))


def test_apply_updates_keeps_none_params():
    out = optim.apply_updates({"a": None, "b": em.ones((2,))}, {"a": None, "b": em.ones((2,))})
    assert out["a"] is None
    np.testing.assert_array_equal(np.asarray(out["b"]), [2.0, 2.0])


def test_apply_updates_names_the_differing_path():
    params = {"enc": {"w": em.ones((2,)), "b": em.ones((2,))}}
    with pytest.raises(ValueError, match=r"params and updates have different tree structures "
                                         r"at 'enc': keys \['b', 'w'\] against \['b'\]"):
        optim.apply_updates(params, {"enc": {"b": em.ones((2,))}})
    with pytest.raises(ValueError, match=r"at 'enc.b': a list with keys \[0\] against a leaf"):
        optim.apply_updates({"enc": {"b": [em.ones((2,))], "w": em.ones((2,))}}, params)


@DTYPES
def test_incremental_update_matches_optax(rng, dtype):
    new, old = random_tree(rng, dtype), random_tree(rng, dtype)
    step = float(rng.uniform())
    with jax_x64(dtype == np.float64):
        assert_trees_close(optim.incremental_update(to_ember(new), to_ember(old), step),
                           optax.incremental_update(to_jax(new), to_jax(old), step), dtype)


@pytest.mark.parametrize("steps", [0, 3, 8, 9])
def test_periodic_update_matches_optax(rng, steps):
    new, old = random_tree(rng, np.float32), random_tree(rng, np.float32)
    assert_trees_close(optim.periodic_update(to_ember(new), to_ember(old), em.array(steps), 3),
                       optax.periodic_update(to_jax(new), to_jax(old), jnp.asarray(steps), 3),
                       np.float32)


@pytest.mark.parametrize("name", ["identity", "set_to_zero"])
def test_identity_and_set_to_zero_match_optax(rng, name):
    compare(rng, getattr(optim, name)(), getattr(optax, name)())


def test_stateless_matches_optax(rng):
    def build(lib, tree_map):
        return lib.stateless(lambda g, p: tree_map(lambda g_, p_: g_ * 0.5 + 0.1 * p_, g, p))
    compare(rng, build(optim, em.utils.tree_map), build(optax, jax.tree.map))


@pytest.mark.parametrize("with_params", [True, False])
def test_stateless_with_tree_map_matches_optax(rng, with_params):
    def f(g, p):
        return g * 2.0 if p is None else g - 0.3 * p
    compare(rng, optim.stateless_with_tree_map(f), optax.stateless_with_tree_map(f),
            use_params=with_params)


def test_with_extra_args_support_ignores_extra_args():
    tx = optim.with_extra_args_support(optim.scale(2.0))
    assert isinstance(tx, optim.GradientTransformationExtraArgs)
    assert optim.with_extra_args_support(tx) is tx
    out, state = tx.update({"a": em.ones((2,))}, tx.init(None), None, loss=3.0)
    np.testing.assert_array_equal(np.asarray(out["a"]), [2.0, 2.0])
    assert state == optim.EmptyState()


def test_states_are_pytrees_with_optax_layouts():
    params = {"w": em.ones((2, 3)), "b": em.ones((3,))}
    state = optim.adamw(1e-3).init(params)
    reference = optax.adamw(1e-3).init({"w": jnp.ones((2, 3)), "b": jnp.ones((3,))})
    assert jax.tree.structure(reference).num_leaves == len(optim._trees.tree_leaves(state))
    assert type(state[0]).__name__ == "ScaleByAdamState"
    assert state[0]._fields == reference[0]._fields
    assert state[0].count.dtype == em.int32 and state[0].count.shape == ()


# --- optim.tree

@DTYPES
def test_tree_math_matches_optax(rng, dtype):
    x, y = random_tree(rng, dtype), random_tree(rng, dtype, low=0.5, high=2.0)
    ex, ey = to_ember(x), to_ember(y)
    with jax_x64(dtype == np.float64):
        jx, jy = to_jax(x), to_jax(y)
        pairs = [
            (optim.tree.add(ex, ey, ex), optax.tree.add(jx, jy, jx)),
            (optim.tree.sub(ex, ey), optax.tree.sub(jx, jy)),
            (optim.tree.mul(ex, ey), optax.tree.mul(jx, jy)),
            (optim.tree.div(ex, ey), optax.tree.div(jx, jy)),
            (optim.tree.scale(0.3, ex), optax.tree.scale(0.3, jx)),
            (optim.tree.add_scale(ex, 0.3, ey), optax.tree.add_scale(jx, 0.3, jy)),
            (optim.tree.vdot(ex, ey), optax.tree.vdot(jx, jy)),
            (optim.tree.sum(ex), optax.tree.sum(jx)),
            (optim.tree.max(ex), optax.tree.max(jx)),
            (optim.tree.min(ex), optax.tree.min(jx)),
            (optim.tree.norm(ex), optax.tree.norm(jx)),
            (optim.tree.norm(ex, squared=True), optax.tree.norm(jx, squared=True)),
            (optim.tree.norm(ex, ord=1), optax.tree.norm(jx, ord=1)),
            (optim.tree.norm(ex, ord="inf"), optax.tree.norm(jx, ord="inf")),
            (optim.global_norm(ex), optax.global_norm(jx)),
            (optim.tree.zeros_like(ex), optax.tree.zeros_like(jx)),
            (optim.tree.ones_like(ex), optax.tree.ones_like(jx)),
            (optim.tree.full_like(ex, 0.1), optax.tree.full_like(jx, 0.1)),
            (optim.tree.clip(ex, -0.2, 0.4), optax.tree.clip(jx, -0.2, 0.4)),
            (optim.tree.clip(ex, None, 0.4), optax.tree.clip(jx, None, 0.4)),
            (optim.tree.update_moment(ex, ey, 0.9, 2), optax.tree.update_moment(jx, jy, 0.9, 2)),
            (optim.tree.update_moment(ex, ey, 0.7, 3), optax.tree.update_moment(jx, jy, 0.7, 3)),
            (optim.tree.update_moment_per_elem_norm(ex, ey, 0.9, 2),
             optax.tree.update_moment_per_elem_norm(jx, jy, 0.9, 2)),
            (optim.tree.update_infinity_moment(ex, ey, 0.9, 1e-3),
             optax.tree.update_infinity_moment(jx, jy, 0.9, 1e-3)),
            (optim.tree.bias_correction(ex, 0.9, em.array(3)),
             optax.tree.bias_correction(jx, 0.9, jnp.asarray(3))),
            (optim.tree.where(em.array(False), ex, ey), optax.tree.where(False, jx, jy)),
            (optim.tree.batch_shape(ex, (2,)), optax.tree.batch_shape(jx, (2,))),
        ]
        # vdot, sum and the norms reduce a whole tree: in float32 the summation
        # order (XLA's against ember's) moves the last digits
        reductions = {6, 7, 10, 11, 12, 14}
        for i, (ours, theirs) in enumerate(pairs):
            rtol = 1e-5 if (i in reductions and dtype == np.float32) else None
            assert_trees_close(ours, theirs, dtype, f"pair {i}", rtol=rtol)
    assert optim.tree.size(ex) == optax.tree.size(to_jax(x))


def test_tree_dtype_and_casts():
    tree = {"a": em.ones((2,), em.float16), "b": em.ones((2,), em.float32)}
    with pytest.raises(ValueError, match="different dtypes"):
        optim.tree.dtype(tree)
    assert optim.tree.dtype(tree, "promote") == em.float32
    assert optim.tree.dtype(tree, "highest") == em.float32
    assert optim.tree.dtype(tree, "lowest") == em.float16
    with pytest.raises(ValueError, match="Invalid value for mixed_dtype_handler"):
        optim.tree.dtype(tree, "widest")
    with pytest.raises(ValueError, match="Neither"):
        optim.tree.dtype({"a": em.ones((1,), em.float16), "b": em.ones((1,), em.bfloat16)},
                         "highest")
    cast = optim.tree.cast(tree, jnp.bfloat16)
    assert {v.dtype for v in cast.values()} == {em.bfloat16}
    assert optim.tree.cast(tree, None) is tree
    like = optim.tree.cast_like(cast, tree)
    assert like["a"].dtype == em.float16 and like["b"].dtype == em.float32
    assert optim.tree.allclose(tree, like).item()


def test_tree_norm_rejects_unknown_ord():
    with pytest.raises(ValueError, match="Unsupported ord: 3"):
        optim.tree.norm({"a": em.ones((2,))}, ord=3)


def test_empty_trees_reduce_like_optax():
    assert optim.tree.sum({}) == 0 and optim.tree.vdot({}, {}) == 0
    assert optim.tree.max({}) == -float("inf") and optim.tree.min({}) == float("inf")


# --- numerics

@DTYPES
@pytest.mark.parametrize("ord_,axis", [(None, None), (2, 1), (1, 0), (float("inf"), None),
                                       (3, 2), (float("-inf"), 0)])
def test_safe_norm_matches_optax(rng, dtype, ord_, axis):
    x = rng.normal(size=(4, 3, 5)).astype(dtype)
    x[1] = 0.0
    with jax_x64(dtype == np.float64):
        for keepdims in (False, True):
            for min_norm in (0.0, 2.0):
                kwargs = dict(ord=ord_, axis=axis, keepdims=keepdims)
                if axis is None:
                    x_in, kwargs = x.reshape(-1), dict(ord=ord_, keepdims=keepdims)
                else:
                    x_in = x
                ours = numerics.safe_norm(em.array(x_in), min_norm, **kwargs)
                theirs = optax.safe_norm(jnp.asarray(x_in), min_norm, **kwargs)
                assert_trees_close(ours, theirs, dtype)


@DTYPES
def test_safe_root_mean_squares_matches_optax(rng, dtype):
    x = rng.normal(size=(6, 2)).astype(dtype)
    with jax_x64(dtype == np.float64):
        for min_rms in (0.0, 0.5, 10.0):
            assert_trees_close(numerics.safe_root_mean_squares(em.array(x), min_rms),
                               optax.safe_root_mean_squares(jnp.asarray(x), min_rms), dtype)


def test_safe_increment_saturates():
    top = em.array(np.iinfo(np.int32).max, em.int32)
    assert numerics.safe_increment(top).item() == np.iinfo(np.int32).max
    assert numerics.safe_increment(em.array(4, em.int32)).item() == 5
    assert numerics.safe_increment(em.array(1.5, em.float32)).item() == 2.5
    with pytest.raises(ValueError, match="Cannot safely increment count with dtype"):
        numerics.safe_increment(em.array(True))


def test_safe_norm_rejects_unknown_ord():
    with pytest.raises(ValueError, match=r"\[safe_norm\] unsupported ord 'fro'"):
        numerics.safe_norm(em.ones((2, 2)), 0.0, ord="fro")
