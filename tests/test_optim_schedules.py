"""ember.optim.schedules against optax.schedules: same arguments, same counts, same values."""
import jax
import numpy as np
import optax
import pytest

import ember.core as em
from ember.optim import schedules


def _random_cases(rng):
    """(name, kwargs) pairs with random hyperparameters drawn from `rng`."""
    steps = int(rng.integers(20, 200))
    warmup = int(rng.integers(1, steps // 2))
    init, peak, end = (float(v) for v in rng.uniform(0.01, 2.0, size=3))
    scales = {int(b): float(s) for b, s in zip(rng.choice(steps, 3, replace=False),
                                                 rng.uniform(0.1, 3.0, size=3))}
    return [
        ("constant_schedule", dict(value=init)),
        ("polynomial_schedule", dict(init_value=init, end_value=end, power=float(rng.uniform(0.5, 3)),
                                     transition_steps=steps, transition_begin=warmup)),
        ("polynomial_schedule", dict(init_value=init, end_value=end, power=2,
                                     transition_steps=steps, transition_begin=-3)),
        ("linear_schedule", dict(init_value=init, end_value=end, transition_steps=steps)),
        ("exponential_decay", dict(init_value=init, transition_steps=int(rng.integers(1, 20)),
                                   decay_rate=float(rng.uniform(0.3, 0.99)),
                                   transition_begin=warmup)),
        ("exponential_decay", dict(init_value=init, transition_steps=7, decay_rate=0.8,
                                   staircase=True, end_value=init * 0.3)),
        ("exponential_decay", dict(init_value=init, transition_steps=9, decay_rate=1.05,
                                   end_value=init * 2.0)),
        ("cosine_decay_schedule", dict(init_value=init, decay_steps=steps,
                                       alpha=float(rng.uniform(0, 0.5)),
                                       exponent=float(rng.uniform(0.5, 2.0)))),
        ("piecewise_constant_schedule", dict(init_value=init, boundaries_and_scales=scales)),
        ("piecewise_constant_schedule", dict(init_value=init)),
        ("piecewise_interpolate_schedule", dict(interpolate_type="linear", init_value=init,
                                                boundaries_and_scales=scales)),
        ("piecewise_interpolate_schedule", dict(interpolate_type="cosine", init_value=init,
                                                boundaries_and_scales=scales)),
        ("linear_onecycle_schedule", dict(transition_steps=steps, peak_value=peak)),
        ("cosine_onecycle_schedule", dict(transition_steps=steps, peak_value=peak,
                                          pct_start=float(rng.uniform(0.1, 0.6)))),
        ("warmup_constant_schedule", dict(init_value=init, peak_value=peak, warmup_steps=warmup)),
        ("warmup_cosine_decay_schedule", dict(init_value=init, peak_value=peak,
                                              warmup_steps=warmup, decay_steps=steps,
                                              end_value=end, exponent=1.5)),
        ("warmup_exponential_decay_schedule", dict(init_value=init, peak_value=peak,
                                                   warmup_steps=warmup, transition_steps=11,
                                                   decay_rate=0.7, transition_begin=4,
                                                   staircase=True, end_value=end * 0.1)),
        ("sgdr_schedule", dict(cosine_kwargs=[
            dict(init_value=init, peak_value=peak, warmup_steps=warmup, decay_steps=steps),
            dict(init_value=end, peak_value=peak * 0.5, warmup_steps=3, decay_steps=steps // 2,
                 end_value=end * 0.1)])),
    ]


def _counts(rng, kwargs):
    """Step counts around the interesting places: 0, boundaries, past the end."""
    counts = {0, 1, 2, 5, 10, 400} | set(int(c) for c in rng.integers(0, 300, size=12))
    for value in kwargs.values():
        if isinstance(value, int) and not isinstance(value, bool):
            counts |= {max(value - 1, 0), abs(value), abs(value) + 1}
        if isinstance(value, dict):
            counts |= {b for b in value} | {b + 1 for b in value}
    return sorted(counts)


def test_schedules_match_optax_float32(rng):
    for name, kwargs in _random_cases(rng):
        ours, theirs = getattr(schedules, name)(**kwargs), getattr(optax, name)(**kwargs)
        for count in _counts(rng, kwargs):
            expected = np.asarray(theirs(count), dtype=np.float32)
            for given in (count, em.array(count), em.array(count, dtype=em.int64)):
                got = np.asarray(ours(given))
                np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7,
                                           err_msg=f"{name} {kwargs} at {count}")


def test_schedules_trace_under_vmap(rng):
    """A schedule is ember ops on the count, so em.vmap traces it over a batch of counts."""
    counts = np.sort(rng.integers(0, 400, size=25)).astype(np.int32)
    for name, kwargs in _random_cases(rng):
        ours, theirs = getattr(schedules, name)(**kwargs), getattr(optax, name)(**kwargs)
        if not isinstance(ours(em.array(0)), em.array):
            continue  # constant schedules hand back the Python value, as optax does
        got = np.asarray(em.vmap(ours)(em.array(counts)))
        expected = np.array([np.asarray(theirs(int(c))) for c in counts], dtype=np.float32)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.fixture
def x64():
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def _as_float64_arrays(kwargs):
    """The float hyperparameters of `kwargs` as ember float64 arrays (nested ones too)."""
    def convert(value):
        if isinstance(value, float):
            return em.array(value, dtype=em.float64)
        if isinstance(value, list):
            return [convert(v) for v in value]
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {k: convert(v) for k, v in value.items()}
        return value
    return convert(kwargs)


def test_schedules_match_optax_float64(rng, x64):
    for name, kwargs in _random_cases(rng):
        ours = getattr(schedules, name)(**_as_float64_arrays(kwargs))
        theirs = getattr(optax, name)(**kwargs)
        for count in _counts(rng, kwargs):
            expected = np.asarray(theirs(count))
            got = np.asarray(ours(em.array(count, dtype=em.int64)))
            assert got.dtype == np.float64, (name, got.dtype)
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14,
                                       err_msg=f"{name} {kwargs} at {count}")


def test_degenerate_arguments_give_constant_schedules(rng):
    init = float(rng.uniform(0.1, 1.0))
    for fn in (schedules.polynomial_schedule(init, 0.0, 2, transition_steps=0),
               schedules.exponential_decay(init, transition_steps=-1, decay_rate=0.5),
               schedules.exponential_decay(init, transition_steps=10, decay_rate=0.0)):
        assert fn(0) == init and fn(1000) == init


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match=r"\[cosine_decay_schedule\] decay_steps must be positive, got decay_steps=0"):
        schedules.cosine_decay_schedule(1.0, decay_steps=0)
    with pytest.raises(ValueError, match=r"\[piecewise_constant_schedule\] scale factors must be non-negative"):
        schedules.piecewise_constant_schedule(1.0, {10: -0.5})
    with pytest.raises(ValueError, match=r"\[piecewise_interpolate_schedule\] scale factors must be non-negative"):
        schedules.piecewise_interpolate_schedule("linear", 1.0, {10: -0.5})
    with pytest.raises(ValueError, match=r"interpolate_type must be 'linear' or 'cosine', got 'cubic'"):
        schedules.piecewise_interpolate_schedule("cubic", 1.0, {10: 0.5})
    with pytest.raises(ValueError, match=r"\[linear_onecycle_schedule\] transition_steps must be positive, got 0"):
        schedules.linear_onecycle_schedule(0, 1.0)
    with pytest.raises(ValueError, match=r"\[cosine_onecycle_schedule\] transition_steps must be positive, got -2"):
        schedules.cosine_onecycle_schedule(-2, 1.0)
