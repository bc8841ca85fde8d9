"""Piecewise schedules: jumps or interpolation between scaled values at step boundaries."""
import math

import ember.core as em

from ._count import float_count


def _nonnegative_scales(boundaries_and_scales, op):
    scales = (boundaries_and_scales or {}).values()
    if not all(scale >= 0.0 for scale in scales):
        raise ValueError(f"[{op}] scale factors must be non-negative, got {list(scales)}")


def piecewise_constant_schedule(init_value, boundaries_and_scales=None):
    """`init_value` times the product of the scales whose boundary the count has reached.

        f(t) = I * prod_{i : t >= b_i} s_i

    for `boundaries_and_scales = {b_i: s_i}`.
    """
    _nonnegative_scales(boundaries_and_scales, "piecewise_constant_schedule")
    steps = sorted((boundaries_and_scales or {}).items())

    def schedule(count):
        value = init_value
        for boundary, scale in steps:
            value = em.where(em.asarray(count) < boundary, value, scale * value)
        return value

    return schedule


def _linear_interpolate(start, end, fraction):
    return (end - start) * fraction + start


def _cosine_interpolate(start, end, fraction):
    return end + (start - end) / 2.0 * (em.cos(math.pi * fraction) + 1)


def piecewise_interpolate_schedule(interpolate_type: str, init_value,
                                   boundaries_and_scales=None):
    """Linear or cosine interpolation between accumulated scaled values.

    With boundaries b_0 = 0 < b_1 < ... < b_n and values v_0 = I, v_i = v_{i-1} s_i,
    inside [b_{i-1}, b_i) the schedule goes from v_{i-1} to v_i along
    `interpolate_type` ('linear': straight line; 'cosine': half a cosine wave), and
    holds v_n from b_n on. Interpolation runs between the accumulated values, not the
    raw scales.
    """
    interpolators = {"linear": _linear_interpolate, "cosine": _cosine_interpolate}
    if interpolate_type not in interpolators:
        raise ValueError("[piecewise_interpolate_schedule] interpolate_type must be "
                         f"'linear' or 'cosine', got {interpolate_type!r}")
    interpolate = interpolators[interpolate_type]
    _nonnegative_scales(boundaries_and_scales, "piecewise_interpolate_schedule")
    steps = sorted((boundaries_and_scales or {}).items())
    bounds = [0] + [boundary for boundary, _ in steps]
    scales = [scale for _, scale in steps]

    def schedule(count):
        t = float_count(count, init_value)
        values = em.cumprod(em.stack([em.asarray(v, dtype=t.dtype) for v in [init_value] + scales]))
        starts = em.array(bounds[:-1], dtype=t.dtype)
        ends = em.array(bounds[1:], dtype=t.dtype)
        lengths = em.array([max(b - a, 1) for a, b in zip(bounds[:-1], bounds[1:])],
                           dtype=t.dtype)
        inside = (starts <= t) & (t < ends)
        segment_values = interpolate(values[:-1], values[1:], (t - starts) / lengths)
        before_end = em.sum(em.where(inside, segment_values, 0))
        return before_end + em.where(t >= bounds[-1], values[-1], 0)

    return schedule


def linear_onecycle_schedule(transition_steps: int, peak_value, pct_start: float = 0.3,
                             pct_final: float = 0.85, div_factor: float = 25.0,
                             final_div_factor: float = 1e4):
    """Three linear phases (Smith & Topin, Super-Convergence, 2017).

    From step 0 to pct_start T: peak/div_factor up to peak; to pct_final T: back down
    to peak/div_factor; to T: down to peak/div_factor/final_div_factor.
    """
    if transition_steps <= 0:
        raise ValueError("[linear_onecycle_schedule] transition_steps must be positive, "
                         f"got {transition_steps}")
    return piecewise_interpolate_schedule(
        "linear", peak_value / div_factor,
        {int(pct_start * transition_steps): div_factor,
         int(pct_final * transition_steps): 1.0 / div_factor,
         transition_steps: 1.0 / final_div_factor})


def cosine_onecycle_schedule(transition_steps: int, peak_value, pct_start: float = 0.3,
                             div_factor: float = 25.0, final_div_factor: float = 1e4):
    """The one-cycle schedule with cosine phases (Smith & Topin, 2017).

    Cosine rise from peak/div_factor to peak over pct_start T steps, then cosine fall
    to peak/(div_factor final_div_factor) at step T.
    """
    if transition_steps <= 0:
        raise ValueError("[cosine_onecycle_schedule] transition_steps must be positive, "
                         f"got {transition_steps}")
    return piecewise_interpolate_schedule(
        "cosine", peak_value / div_factor,
        {int(pct_start * transition_steps): div_factor,
         int(transition_steps): 1.0 / (div_factor * final_div_factor)})
