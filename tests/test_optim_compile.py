"""ember.optim inside em.compile: a train step with
chain(clip_by_global_norm, adamw(schedule)) traces once, does not retrace as
the step count grows, and gives the same updates as the uncompiled step."""
import numpy as np

import ember.core as em
from ember import optim


def _tree(rng):
    return {"w": em.array(rng.standard_normal((5, 3)).astype(np.float32)),
            "b": em.array(rng.standard_normal(3).astype(np.float32)),
            "layers": [em.array(rng.standard_normal((2, 2)).astype(np.float32))]}


def test_compiled_train_step_traces_once_and_matches_eager(rng):
    schedule = optim.warmup_cosine_decay_schedule(0.0, 1e-2, 5, 50)
    tx = optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(schedule))
    params = _tree(rng)
    x = em.array(rng.standard_normal((8, 5)).astype(np.float32))

    def loss_fn(p, x):
        h = x @ p["w"] + p["b"]
        return em.mean(em.square(h[:, :2] @ p["layers"][0]))

    def step(p, state, x):
        loss, grads = em.value_and_grad(loss_fn)(p, x)
        updates, state = tx.update(grads, state, p)
        return optim.apply_updates(p, updates), state, loss

    compiled = em.compile(step)
    p_eager, s_eager = params, tx.init(params)
    p_comp, s_comp = params, tx.init(params)
    for _ in range(12):
        p_eager, s_eager, l_eager = step(p_eager, s_eager, x)
        p_comp, s_comp, l_comp = compiled(p_comp, s_comp, x)
        em.eval(p_eager, s_eager, p_comp, s_comp)
        np.testing.assert_allclose(np.array(l_comp), np.array(l_eager), rtol=1e-5, atol=1e-7)
    for a, b in zip(em.utils.tree_flatten(p_comp), em.utils.tree_flatten(p_eager)):
        np.testing.assert_allclose(np.array(a[1]), np.array(b[1]), rtol=1e-5, atol=1e-6)
    assert compiled.trace_count == 1
    # the count lives in the state as an array, so it is an input, not a constant
    counts = [leaf for _, leaf in em.utils.tree_flatten(s_comp)
              if isinstance(leaf, em.array) and leaf.dtype == em.int32]
    assert counts and all(int(c.item()) == 12 for c in counts)


def test_compiled_adam_updates_its_state_in_place(rng):
    """A loop that rebinds params and state before eval: after the first step
    the fused update writes over the old parameters and moments (no new
    buffer of their size), and its values stay optax's."""
    import jax.numpy as jnp
    import optax

    n = 300_001
    p_np = rng.standard_normal(n).astype(np.float32)
    g_np = rng.standard_normal(n).astype(np.float32)
    tx, jtx = optim.adam(1e-2), optax.adam(1e-2)
    params, grads = {"w": em.array(p_np)}, {"w": em.array(g_np)}
    state = tx.init(params)
    j_params, j_grads = {"w": jnp.asarray(p_np)}, {"w": jnp.asarray(g_np)}
    j_state = jtx.init(j_params)
    em.eval(params, grads, state)

    @em.compile
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optim.apply_updates(params, updates), state

    for i in range(4):
        em.reset_peak_memory()
        before = em.get_active_memory()
        params, state = step(params, state, grads)
        em.eval(params, state)
        if i > 0:
            assert em.get_peak_memory() - before < n * 4
        j_updates, j_state = jtx.update(j_grads, j_state, j_params)
        j_params = optax.apply_updates(j_params, j_updates)
        np.testing.assert_allclose(np.array(params["w"]), np.asarray(j_params["w"]),
                                   rtol=1e-6, atol=1e-7)
