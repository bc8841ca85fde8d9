"""Runs an ember.optim transformation and its optax twin side by side (shared by
the tests/test_optim_*.py files).

Both get the same random params and, for each of `steps` steps, the same random
gradient tree; after every step the updates and every leaf of the states must
agree. Trees have several leaves of different ranks (a scalar, vectors, a
matrix, a 3-d array, odd sizes) nested in dicts, lists and tuples.
"""
import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optree

import ember.core as em
from ember import optim

TOLERANCE = {np.float32: 1e-6, np.float64: 1e-12}
SHAPES = {"w": (5, 7), "b": (7,), "conv": (3, 2, 4), "scale": (), "deep": [(3,), (2, 3)]}


@contextlib.contextmanager
def jax_x64(enabled: bool):
    """JAX with 64-bit floats for the duration (restored afterwards)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", enabled)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


def random_tree(rng, dtype, shapes=SHAPES, low=-1.0, high=1.0):
    """A numpy tree with the layout of `shapes` and uniform values in [low, high)."""
    return optree.tree_map(lambda s: rng.uniform(low, high, s).astype(dtype), shapes,
                           is_leaf=lambda x: isinstance(x, tuple))


def to_ember(tree):
    return optree.tree_map(lambda x: em.array(x), tree)


def to_jax(tree):
    return optree.tree_map(jnp.asarray, tree)


def leaves_np(tree):
    """The leaves of an ember or jax tree as numpy arrays, in jax's order."""
    return [np.asarray(x) for x in optree.tree_leaves(tree, none_is_leaf=False)]


def _dtype_name(x) -> str:
    """'float32', 'bfloat16', ... for an ember or a jax array."""
    return str(x.dtype).rsplit(".", 1)[-1]


def assert_trees_close(ours, theirs, dtype, what="", rtol=None):
    our_leaves = optree.tree_leaves(ours, none_is_leaf=False)
    their_leaves = optree.tree_leaves(theirs, none_is_leaf=False)
    assert len(our_leaves) == len(their_leaves), \
        f"{what}: {len(our_leaves)} leaves against optax's {len(their_leaves)}"
    rtol = rtol or TOLERANCE[dtype]
    for i, (x, y) in enumerate(zip(our_leaves, their_leaves)):
        names = {_dtype_name(x), _dtype_name(y)}
        # JAX with x64 makes jnp.asarray(0) an int64 where ember (no 64-bit switch)
        # keeps int32; such counters are compared by value in float64 runs
        assert len(names) == 1 or (dtype is np.float64 and names == {"int32", "int64"}), \
            f"{what} leaf {i}: dtype {_dtype_name(x)} against {_dtype_name(y)}"
        a, b = np.asarray(x), np.asarray(y)
        if _dtype_name(y) == "bfloat16":  # ember hands bfloat16 to numpy as float32
            b = b.astype(np.float32)
        assert a.shape == b.shape, f"{what} leaf {i}: shape {a.shape} against {b.shape}"
        if a.dtype == np.bool_ or np.issubdtype(a.dtype, np.integer):
            np.testing.assert_array_equal(a, b, err_msg=f"{what} leaf {i}")
        else:
            scale = max(float(np.max(np.abs(b), initial=0.0)), 1.0)
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale,
                                       err_msg=f"{what} leaf {i}")


def compare(rng, ours, theirs, dtype=np.float32, steps=20, use_params=True,
            shapes=SHAPES, extra_args=None, grad_scale=1.0, params_low=-1.0,
            apply=True, nan_fraction=0.0, rtol=None, their_state=lambda state: state):
    """Runs ours (ember) and theirs (optax) for `steps` steps on the same inputs and
    asserts updates and states agree at every step. extra_args(step) gives the
    keyword arguments of each update call (a loss value, ...); nan_fraction of
    the gradient entries are NaN; rtol overrides the dtype's tolerance;
    their_state maps optax's state to the form compared (typed PRNG keys to their
    uint32 words, say)."""
    with jax_x64(dtype == np.float64):
        params = random_tree(rng, dtype, shapes, low=params_low)
        p_em, p_jx = to_ember(params), to_jax(params)
        s_em, s_jx = ours.init(p_em), theirs.init(p_jx)
        # optax runs compiled, as it is used: eager JAX evaluates some scalar
        # expressions differently (an integer power by repeated squaring)
        their_update = jax.jit(theirs.update)
        assert_trees_close(s_em, their_state(s_jx), dtype, "init state", rtol)
        for step in range(steps):
            grads = optree.tree_map(
                lambda g: np.where(rng.random(g.shape) < nan_fraction, np.nan, g * grad_scale
                                   ).astype(dtype), random_tree(rng, dtype, shapes))
            kwargs = extra_args(step) if extra_args else {}
            u_em, s_em = ours.update(to_ember(grads), s_em, p_em if use_params else None,
                                     **kwargs)
            u_jx, s_jx = their_update(to_jax(grads), s_jx, p_jx if use_params else None,
                                       **kwargs)
            assert_trees_close(u_em, u_jx, dtype, f"step {step} updates", rtol)
            assert_trees_close(s_em, their_state(s_jx), dtype, f"step {step} state", rtol)
            if apply:
                p_em = optim.apply_updates(p_em, u_em)
                p_jx = optax.apply_updates(p_jx, u_jx)
                assert_trees_close(p_em, p_jx, dtype, f"step {step} params", rtol)
                # rounding makes the params drift apart slowly; restart each step
                # from optax's so that every step compares one computation
                treedef = optree.tree_structure(p_em, none_is_leaf=False)
                p_em = optree.tree_unflatten(treedef, [em.array(x) for x in leaves_np(p_jx)])
    return s_em, s_jx
