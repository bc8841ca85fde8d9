"""Exponential and cosine decay schedules."""
import math

import ember.core as em

from ._count import float_count


def exponential_decay(init_value, transition_steps: int, decay_rate: float,
                      transition_begin: int = 0, staircase: bool = False, end_value=None):
    """Exponential decay of `init_value` (I) by `decay_rate` (r) every `transition_steps` (T).

        p = (t - B) / T            (floor((t - B) / T) when `staircase`)
        f(t) = I                   for t <= B
        f(t) = I r^p               for t > B

    B = `transition_begin`. `end_value` bounds the result: from below when r < 1, from
    above otherwise. A non-positive `transition_steps` or a zero `decay_rate` gives the
    constant schedule `init_value`; a negative `transition_begin` counts as 0 (as Optax).
    """
    if transition_steps <= 0 or decay_rate == 0:
        return lambda count: init_value
    transition_begin = max(transition_begin, 0)
    bound = em.maximum if decay_rate < 1.0 else em.minimum

    def schedule(count):
        elapsed = float_count(count, init_value, end_value) - transition_begin
        p = elapsed / transition_steps
        if staircase:
            p = em.floor(p)
        decayed = em.where(elapsed <= 0, init_value, init_value * em.power(decay_rate, p))
        if end_value is not None:
            decayed = bound(decayed, end_value)
        return decayed

    return schedule


def cosine_decay_schedule(init_value, decay_steps: int, alpha=0.0, exponent=1.0):
    r"""Cosine decay of `init_value` (I) over `decay_steps` (T) down to `alpha` I.

        c(t) = (1 + cos(pi min(t, T) / T)) / 2
        f(t) = I ((1 - alpha) c(t)^exponent + alpha)

    Loshchilov & Hutter, SGDR: Stochastic Gradient Descent with Warm Restarts, 2017.
    """
    if not decay_steps > 0:
        raise ValueError("[cosine_decay_schedule] decay_steps must be positive, "
                         f"got decay_steps={decay_steps}")

    def schedule(count):
        t = em.minimum(float_count(count, init_value, alpha), decay_steps)
        cosine = 0.5 * (1 + em.cos(math.pi * t / decay_steps))
        return init_value * ((1 - alpha) * cosine**exponent + alpha)

    return schedule
