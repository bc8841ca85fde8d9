"""ember.optim: Optax's gradient transformations, optimizers, schedules and losses on ember arrays.

    from ember import optim
    tx = optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(1e-3))
    state = tx.init(params)
    updates, state = tx.update(grads, state, params)
    params = optim.apply_updates(params, updates)

Same names, signatures, state layouts and numerics as optax.
"""
# --- base (base.py)
from .base import (EmptyState, GradientTransformation, GradientTransformationExtraArgs,
                   OptState, Params, ScalarOrSchedule, Schedule, StatefulSchedule,
                   TransformInitFn, TransformUpdateExtraArgsFn, TransformUpdateFn, Updates,
                   apply_updates, identity, incremental_update, init_empty_state,
                   periodic_update, set_to_zero, stateless, stateless_with_tree_map,
                   with_extra_args_support)
