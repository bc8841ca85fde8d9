"""Schedules made of other schedules, one after another."""
import ember.core as em

from ._decay import cosine_decay_schedule, exponential_decay
from ._polynomial import linear_schedule


def join_schedules(schedules, boundaries):
    """Run `schedules[0]` until `boundaries[0]`, then `schedules[1]`, and so on.

    Each later schedule sees the steps since its own boundary:
        f(t) = schedules[i](t - boundaries[i-1])   for boundaries[i-1] <= t < boundaries[i]
    All schedules are evaluated and the right one selected, so the count may be an array
    under tracing.
    """
    def schedule(step):
        output = schedules[0](step)
        for boundary, later in zip(boundaries, schedules[1:]):
            output = em.where(em.asarray(step) < boundary, output, later(step - boundary))
        return output

    return schedule


def warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps: int, decay_steps: int,
                                 end_value=0.0, exponent=1.0):
    """Linear warmup to `peak_value` over `warmup_steps`, then cosine decay to `end_value`.

    `decay_steps` counts the whole schedule, warmup included: the cosine part lasts
    `decay_steps - warmup_steps` steps.
    """
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    return join_schedules(
        [linear_schedule(init_value=init_value, end_value=peak_value,
                         transition_steps=warmup_steps),
         cosine_decay_schedule(init_value=peak_value, decay_steps=decay_steps - warmup_steps,
                               alpha=alpha, exponent=exponent)],
        [warmup_steps])


def warmup_exponential_decay_schedule(init_value, peak_value, warmup_steps: int,
                                      transition_steps: int, decay_rate,
                                      transition_begin: int = 0, staircase: bool = False,
                                      end_value=None):
    """Linear warmup to `peak_value` over `warmup_steps`, then `exponential_decay` from it."""
    return join_schedules(
        [linear_schedule(init_value=init_value, end_value=peak_value,
                         transition_steps=warmup_steps),
         exponential_decay(init_value=peak_value, transition_steps=transition_steps,
                           decay_rate=decay_rate, transition_begin=transition_begin,
                           staircase=staircase, end_value=end_value)],
        [warmup_steps])


def sgdr_schedule(cosine_kwargs):
    """SGD with warm restarts: `warmup_cosine_decay_schedule` cycles back to back.

    Each dict in `cosine_kwargs` holds one cycle's arguments; its `decay_steps` is the
    cycle's length (Loshchilov & Hutter, 2017).
    """
    schedules, boundaries, step = [], [], 0
    for kwargs in cosine_kwargs:
        schedules.append(warmup_cosine_decay_schedule(**kwargs))
        step += kwargs["decay_steps"]
        boundaries.append(step)
    return join_schedules(schedules, boundaries[:-1])
