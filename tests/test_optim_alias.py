"""ember.optim optimizers against optax: each built with the same arguments, run
20 steps on the same random gradients, updates, states and params compared at
every step (1e-6 relative in float32, 1e-12 in float64)."""
import numpy as np
import optax
import pytest

from ember import optim
from ember.optim import schedules

from optim_oracle import compare

NO_SCALARS = {"w": (5, 7), "b": (7,), "c": (3, 2, 4), "deep": [(3,), (2, 3)]}

# (name, kwargs, options for compare)
CASES = [
    ("adabelief", dict(learning_rate=0.01), {}),
    ("adadelta", dict(learning_rate=0.5, weight_decay=0.01), {}),
    ("adadelta", {}, {}),
    ("adafactor", dict(learning_rate=0.01), {}),
    ("adafactor", dict(learning_rate=0.01, min_dim_size_to_factor=4, momentum=0.9,
                       weight_decay_rate=0.001, clipping_threshold=None), {}),
    ("adafactor", dict(multiply_by_parameter_scale=False), {}),
    ("adagrad", dict(learning_rate=0.1), {}),
    ("adam", dict(learning_rate=0.01), {}),
    ("adam", dict(learning_rate=0.01, b1=0.5, eps_root=1e-6, nesterov=True), {}),
    ("adamax", dict(learning_rate=0.01), {}),
    ("adamaxw", dict(learning_rate=0.01, weight_decay=0.05), {}),
    ("adamw", dict(learning_rate=0.01), {}),
    ("adamw", dict(learning_rate=0.003, weight_decay=0.2, nesterov=True), {}),
    ("adan", dict(learning_rate=0.01, weight_decay=0.01), {}),
    ("amsgrad", dict(learning_rate=0.01), {}),
    ("fromage", dict(learning_rate=0.1), {}),
    ("lamb", dict(learning_rate=0.01, weight_decay=0.01), {}),
    ("lars", dict(learning_rate=0.1, weight_decay=0.01), {}),
    ("lars", dict(learning_rate=0.1, nesterov=True, trust_coefficient=0.01), {}),
    ("lion", dict(learning_rate=0.001), {}),
    ("nadam", dict(learning_rate=0.01), {}),
    ("nadamw", dict(learning_rate=0.01, weight_decay=0.01), {}),
    ("novograd", dict(learning_rate=0.01, weight_decay=0.001), {}),
    ("optimistic_gradient_descent", dict(learning_rate=0.05, alpha=0.8, beta=0.3), {}),
    ("optimistic_adam_v2", dict(learning_rate=0.01, alpha=0.9, beta=0.2), {}),
    ("radam", dict(learning_rate=0.01), {}),
    ("rmsprop", dict(learning_rate=0.01), {}),
    ("rmsprop", dict(learning_rate=0.01, centered=True, momentum=0.9, nesterov=True,
                     initial_scale=1.0), {}),
    ("rmsprop", dict(learning_rate=0.01, momentum=0.5, bias_correction=True,
                     initial_scale=0.1), {}),
    ("rprop", dict(learning_rate=0.01), {}),
    ("sgd", dict(learning_rate=0.1), {}),
    ("sgd", dict(learning_rate=0.1, momentum=0.9), {}),
    ("sgd", dict(learning_rate=0.1, momentum=0.9, nesterov=True), {}),
    ("sign_sgd", dict(learning_rate=0.01), {}),
    ("signum", dict(learning_rate=0.01, beta=0.8), {}),
    ("sm3", dict(learning_rate=0.1), dict(shapes=NO_SCALARS)),
    ("yogi", dict(learning_rate=0.01), {}),
]


def expand(cases):
    """pytest params: each case in float32 and float64."""
    params = []
    for name, kwargs, options in cases:
        for dtype in (np.float32, np.float64):
            case_id = "-".join([name, *(f"{k}={v}" for k, v in kwargs.items()),
                                np.dtype(dtype).name])
            params.append(pytest.param(name, kwargs, options, dtype, id=case_id))
    return params


@pytest.mark.parametrize("name,kwargs,options,dtype", expand(CASES))
def test_matches_optax(rng, name, kwargs, options, dtype):
    ours, theirs = getattr(optim, name)(**kwargs), getattr(optax, name)(**kwargs)
    compare(rng, ours, theirs, dtype=dtype, **options)


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "rmsprop", "lion", "adabelief",
                                  "lamb", "fromage", "novograd", "radam"])
def test_learning_rate_schedules_match_optax(rng, name):
    def build(lib, sched):
        return getattr(lib, name)(sched.warmup_cosine_decay_schedule(0.0, 0.05, 5, 20))
    compare(rng, build(optim, schedules), build(optax, optax.schedules))


def test_polyak_sgd_matches_optax(rng):
    values = rng.uniform(0.0, 5.0, 20)
    kwargs = dict(max_learning_rate=0.5, scaling=0.9, f_min=0.1, eps=1e-4)
    compare(rng, optim.polyak_sgd(**kwargs), optax.polyak_sgd(**kwargs),
            extra_args=lambda step: {"value": float(values[step])})


def test_optimistic_adam_matches_optax(rng):
    with pytest.warns(DeprecationWarning, match="optimistic_adam_v2"):
        ours = optim.optimistic_adam(0.01, optimism=0.2)
    with pytest.warns(DeprecationWarning):
        theirs = optax.optimistic_adam(0.01, optimism=0.2)
    compare(rng, ours, theirs)


def test_optimistic_adam_rejects_schedules():
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="schedules"):
        optim.optimistic_adam(lambda count: 0.1)


def test_adamw_mask_matches_optax(rng):
    def mask(params):
        return {k: k != "b" for k in params}
    compare(rng, optim.adamw(0.01, weight_decay=0.1, mask=mask),
            optax.adamw(0.01, weight_decay=0.1, mask=mask))


def test_noisy_sgd_matches_optax(rng):
    compare(rng, optim.noisy_sgd(0.01, eta=0.05, key=5), optax.noisy_sgd(0.01, eta=0.05, key=5),
            their_state=optax.tree_utils.tree_unwrap_random_key_data)
