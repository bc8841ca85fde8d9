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
