"""ember.optim transformations against optax: 20 steps of the same random
gradients through both, updates and every state leaf compared at every step
(1e-6 relative in float32, 1e-12 in float64)."""
import numpy as np
import optax
import pytest

import ember.core as em
from ember import optim
from ember.optim import schedules

from optim_oracle import assert_trees_close, compare, jax_x64, to_ember, to_jax

LARGE = {"w": (130, 129), "b": (7,), "c": (3, 130, 140), "s": (), "m": (5, 6)}
NO_SCALARS = {"w": (5, 7), "b": (7,), "c": (3, 2, 4), "deep": [(3,), (2, 3)]}

# (name, kwargs, options for compare)
CASES = [
    ("scale", dict(step_size=-0.37), {}),
    ("scale_by_learning_rate", dict(learning_rate=0.05), {}),
    ("scale_by_learning_rate", dict(learning_rate=0.05, flip_sign=False), {}),
    ("scale_by_sign", {}, {}),
    ("scale_by_param_block_norm", {}, {}),
    ("scale_by_param_block_rms", dict(min_scale=0.3), {}),
    ("scale_by_trust_ratio", dict(min_norm=0.01, trust_coefficient=0.5, eps=1e-3), {}),
    ("centralize", {}, {}),
    ("normalize_by_update_norm", dict(scale_factor=2.0), {}),
    ("scale_by_adam", {}, {}),
    ("scale_by_adam", dict(b1=0.8, b2=0.95, eps_root=1e-8, nesterov=True), {}),
    # compiled XLA keeps some bfloat16 products in float32, so agreement is to bfloat16's
    # precision (2^-8) there
    ("scale_by_adam", dict(mu_dtype="bfloat16"), dict(dtypes=[np.float32], rtol=1e-2)),
    ("scale_by_amsgrad", {}, {}),
    ("scale_by_amsgrad", dict(bias_correction_mu=False, bias_correction_nu=False), {}),
    ("scale_by_adamax", {}, {}),
    ("scale_by_belief", {}, {}),
    ("scale_by_belief", dict(nesterov=True), {}),
    ("scale_by_yogi", {}, {}),
    ("scale_by_radam", {}, {}),
    ("scale_by_radam", dict(nesterov=True, threshold=3.0), {}),
    ("scale_by_adan", {}, {}),
    ("scale_by_rss", {}, {}),
    ("scale_by_rms", {}, {}),
    ("scale_by_rms", dict(bias_correction=True, eps_in_sqrt=False, initial_scale=0.5), {}),
    ("scale_by_stddev", {}, {}),
    # bias correction makes v - m^2 = 0 at the first step unless nu starts above zero
    ("scale_by_stddev", dict(bias_correction=True, initial_scale=1.0, eps_in_sqrt=False), {}),
    ("scale_by_adadelta", dict(rho=0.8), {}),
    ("scale_by_sm3", {}, dict(shapes=NO_SCALARS)),
    ("scale_by_sm3", dict(b1=0.5, b2=0.9), dict(shapes=NO_SCALARS)),
    ("scale_by_factored_rms", {}, dict(shapes=LARGE, steps=5)),
    ("scale_by_factored_rms", dict(min_dim_size_to_factor=3, decay_rate=0.5, step_offset=2), {}),
    ("scale_by_factored_rms", dict(factored=False), {}),
    ("scale_by_lion", {}, {}),
    ("scale_by_lion", dict(mode="smooth", smooth_beta=3.0), {}),
    ("scale_by_lion", dict(mode="refined"), dict(grad_scale=3.0)),
    ("scale_by_novograd", dict(weight_decay=0.1), {}),
    ("scale_by_optimistic_gradient", dict(alpha=0.7, beta=0.4), {}),
    ("scale_by_rprop", dict(learning_rate=0.1), {}),
    ("trace", dict(decay=0.9), {}),
    ("trace", dict(decay=0.7, nesterov=True), {}),
    ("ema", dict(decay=0.9), {}),
    ("ema", dict(decay=0.8, debias=False), {}),
    ("add_decayed_weights", dict(weight_decay=0.1), {}),
    ("add_decayed_weights", dict(weight_decay=0.0), {}),
    ("clip", dict(max_delta=0.3), {}),
    ("clip_by_block_rms", dict(threshold=0.4), {}),
    ("clip_by_global_norm", dict(max_norm=1.5), {}),
    ("clip_by_global_norm", dict(max_norm=100.0), {}),
    ("adaptive_grad_clip", dict(clipping=0.1), {}),
    ("adaptive_grad_clip", dict(clipping=0.5, axis=0), dict(shapes=NO_SCALARS)),
    ("keep_params_nonnegative", {}, dict(params_low=0.0)),
    ("zero_nans", {}, dict(nan_fraction=0.2)),
    ("identity", {}, {}),
    ("set_to_zero", {}, {}),
]


def expand(cases):
    """pytest params: each case in float32 and float64 (or the dtypes it names)."""
    params = []
    for name, kwargs, options in cases:
        options = dict(options)
        for dtype in options.pop("dtypes", [np.float32, np.float64]):
            case_id = "-".join([name, *(f"{k}={v}" for k, v in kwargs.items()),
                                np.dtype(dtype).name])
            params.append(pytest.param(name, kwargs, options, dtype, id=case_id))
    return params


@pytest.mark.parametrize("name,kwargs,options,dtype", expand(CASES))
def test_matches_optax(rng, name, kwargs, options, dtype):
    ours, theirs = getattr(optim, name)(**kwargs), getattr(optax, name)(**kwargs)
    compare(rng, ours, theirs, dtype=dtype, **options)


def _decay(count):
    """A schedule written with operators only, so it runs on ember and jax counts alike."""
    return 0.1 * 0.9 ** count + 0.01


SCHEDULED = [
    ("scale_by_schedule", lambda lib, sched: lib.scale_by_schedule(_decay)),
    ("scale_by_learning_rate", lambda lib, sched: lib.scale_by_learning_rate(_decay)),
    ("add_decayed_weights", lambda lib, sched: lib.add_decayed_weights(_decay)),
    ("scale_by_learning_rate-cosine_decay_schedule",
     lambda lib, sched: lib.scale_by_learning_rate(sched.cosine_decay_schedule(0.3, 15))),
]


# ember has no 64-bit switch: a schedule of the int32 step count computes in float32,
# where JAX with x64 computes in float64; so float64 runs agree to float32's precision
@pytest.mark.parametrize("dtype,rtol", [(np.float32, None), (np.float64, 1e-6)],
                         ids=["float32", "float64"])
@pytest.mark.parametrize("build", [b for _, b in SCHEDULED], ids=[n for n, _ in SCHEDULED])
def test_schedules_match_optax(rng, build, dtype, rtol):
    compare(rng, build(optim, schedules), build(optax, optax.schedules), dtype=dtype, rtol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("variant", ["sps", "sps+"])
def test_scale_by_polyak_matches_optax(rng, variant, dtype):
    values = rng.uniform(-0.5, 3.0, 20)
    kwargs = dict(f_min=0.2, max_learning_rate=0.7, eps=1e-3, variant=variant)
    compare(rng, optim.scale_by_polyak(**kwargs), optax.scale_by_polyak(**kwargs), dtype=dtype,
            extra_args=lambda step: {"value": float(values[step])})


def test_scale_by_polyak_rejects_unknown_variant():
    with pytest.raises(ValueError, match="variant='spz'"):
        optim.scale_by_polyak(variant="spz")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_per_example_global_norm_clip_matches_optax(rng, dtype):
    grads = {"w": rng.normal(size=(6, 3, 4)).astype(dtype),
             "b": rng.normal(size=(6, 4)).astype(dtype), "v": rng.normal(size=(6,)).astype(dtype)}
    grads["w"][2] = 0.0  # an example with a zero gradient
    grads["b"][2] = 0.0
    grads["v"][2] = 0.0
    with jax_x64(dtype == np.float64):
        ours = optim.per_example_global_norm_clip(to_ember(grads), 1.3)
        theirs = optax.per_example_global_norm_clip(to_jax(grads), 1.3)
        assert_trees_close(ours[0], theirs[0], dtype)
    # the count is int32 in ember (as in mlx) where JAX with x64 counts in int64
    assert ours[1].item() == int(theirs[1]) > 0


def test_per_example_global_norm_clip_needs_a_batch_axis():
    grads = {"a": em.zeros((4, 2)), "b": em.zeros((3,))}
    with pytest.raises(ValueError, match="batch dimension"):
        optim.per_example_global_norm_clip(grads, 1.0)


@pytest.mark.parametrize("name", ["scale_by_param_block_norm", "scale_by_param_block_rms",
                                  "scale_by_trust_ratio", "add_decayed_weights",
                                  "adaptive_grad_clip", "keep_params_nonnegative",
                                  "scale_by_novograd", "scale_by_factored_rms"])
def test_transforms_that_need_params_say_so(name):
    kwargs = {"adaptive_grad_clip": dict(clipping=0.1),
              "add_decayed_weights": dict(weight_decay=0.1)}.get(name, {})
    tx = getattr(optim, name)(**kwargs)
    params = {"w": em.ones((3, 2))}
    state = tx.init(params)
    with pytest.raises(ValueError, match="requires the current value of parameters"):
        tx.update(params, state, None)


def test_mismatched_updates_and_state_name_the_path():
    tx = optim.scale_by_adam()
    state = tx.init({"layer": {"w": em.zeros((2, 3)), "b": em.zeros((3,))}})
    with pytest.raises(ValueError, match=r"updates and moments have different tree structures at "
                                         r"'layer': keys \['b', 'k'\] against \['b', 'w'\]"):
        tx.update({"layer": {"b": em.zeros((3,)), "k": em.zeros((2, 3))}}, state)
    with pytest.raises(ValueError, match=r"updates and moments at leaf 'layer.w': \[add\] "
                                         r"shapes \(4, 3\) and \(2, 3\)"):
        tx.update({"layer": {"b": em.zeros((3,)), "w": em.zeros((4, 3))}}, state)


def test_mismatched_updates_and_params_name_both():
    tx = optim.add_decayed_weights(0.1)
    params = {"a": [em.zeros((2,)), em.zeros((2,))]}
    with pytest.raises(ValueError, match=r"updates and params have different tree structures at "
                                         r"'a'"):
        tx.update({"a": [em.zeros((2,))]}, tx.init(params), params)


def test_scale_by_lion_rejects_unknown_mode():
    with pytest.raises(ValueError, match="Unknown lion mode: soft"):
        optim.scale_by_lion(mode="soft")


def test_scale_by_sm3_rejects_complex_params():
    with pytest.raises(ValueError, match="does not support complex parameters"):
        optim.scale_by_sm3().init({"a": em.zeros((2,), em.complex64)})


def test_adaptive_grad_clip_rejects_rank_6_without_axis():
    tx = optim.adaptive_grad_clip(0.1)
    x = {"a": em.ones((2, 2, 2, 2, 2, 2))}
    with pytest.raises(ValueError, match="Use axis parameter"):
        tx.update(x, tx.init(x), x)


# ember.core.random draws as JAX does (Threefry-2x32), so the noise is JAX's too
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("key", [0, 1234])
def test_add_noise_matches_optax(rng, key, dtype):
    compare(rng, optim.add_noise(0.3, 0.55, key), optax.add_noise(0.3, 0.55, key), dtype=dtype,
            their_state=optax.tree_utils.tree_unwrap_random_key_data)


def test_add_noise_takes_an_ember_key(rng):
    ours = optim.add_noise(0.1, 0.5, em.random.key(7))
    compare(rng, ours, optax.add_noise(0.1, 0.5, 7),
            their_state=optax.tree_utils.tree_unwrap_random_key_data)
