"""The step count as a float array, in the precision of the schedule's values.

Schedules accept a Python int or an ember integer array (the count a compiled step
carries in its optimizer state). Arithmetic on the count happens in float32, or in
float64 when one of the schedule's values is a float64 array, so a float64 schedule
keeps its precision the way Optax does under `jax_enable_x64`.
"""
import ember.core as em


def value_dtype(*values):
    """float64 when any of `values` is a float64 array, float32 otherwise."""
    for value in values:
        if isinstance(value, em.array) and value.dtype == em.float64:
            return em.float64
    return em.float32


def float_count(count, *values):
    """`count` as a float array of `value_dtype(*values)`."""
    return em.asarray(count).astype(value_dtype(*values))
