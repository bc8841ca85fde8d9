"""Schedules that move from one value to another along a power of the elapsed fraction."""
import ember.core as em

from ._count import float_count


def constant_schedule(value):
    """A schedule that returns `value` at every step.

        f(t) = value
    """
    return lambda count: value


def polynomial_schedule(init_value, end_value, power, transition_steps: int,
                        transition_begin: int = 0):
    r"""Polynomial transition from `init_value` (I) to `end_value` (E).

    With B = `transition_begin`, T = `transition_steps`, P = `power`:

        f(t) = I                                   for t < B
        f(t) = (I - E) (1 - (t - B) / T)^P + E     for B <= t < B + T
        f(t) = E                                   for t >= B + T

    A non-positive `transition_steps` gives the constant schedule `init_value`; a
    negative `transition_begin` counts as 0 (both as in Optax).
    """
    if transition_steps <= 0:
        return lambda count: init_value
    transition_begin = max(transition_begin, 0)

    def schedule(count):
        elapsed = float_count(count, init_value, end_value) - transition_begin
        elapsed = em.clip(elapsed, 0, transition_steps)
        fraction = 1 - elapsed / transition_steps
        return (init_value - end_value) * fraction**power + end_value

    return schedule


def linear_schedule(init_value, end_value, transition_steps: int, transition_begin: int = 0):
    """Linear transition: `polynomial_schedule` with power 1.

        f(t) = I + clip((t - B) / T, 0, 1) (E - I)
    """
    return polynomial_schedule(init_value=init_value, end_value=end_value, power=1,
                               transition_steps=transition_steps,
                               transition_begin=transition_begin)


def warmup_constant_schedule(init_value, peak_value, warmup_steps: int):
    """Linear warmup from `init_value` to `peak_value` over `warmup_steps`, then constant."""
    return linear_schedule(init_value=init_value, end_value=peak_value,
                           transition_steps=warmup_steps)
