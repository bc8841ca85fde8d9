"""Schedules: functions from a step count to a hyperparameter value (optax.schedules).

A schedule takes a Python int or an ember integer array (the count kept in an optimizer
state, possibly a traced value inside a compiled step) and returns the value, computed
with ember ops so that it traces.
"""
from ._decay import cosine_decay_schedule, exponential_decay
from ._inject import (InjectHyperparamsState, InjectStatefulHyperparamsState, WrappedSchedule,
                      WrappedScheduleState, inject_hyperparams, inject_stateful_hyperparams)
from ._join import (join_schedules, sgdr_schedule, warmup_cosine_decay_schedule,
                    warmup_exponential_decay_schedule)
from ._piecewise import (cosine_onecycle_schedule, linear_onecycle_schedule,
                         piecewise_constant_schedule, piecewise_interpolate_schedule)
from ._polynomial import (constant_schedule, linear_schedule, polynomial_schedule,
                          warmup_constant_schedule)
