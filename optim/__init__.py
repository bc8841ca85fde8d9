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

# --- trees and numerics (tree.py, numerics.py)
from . import tree
from .numerics import (safe_increment, safe_int32_increment, safe_norm,
                       safe_root_mean_squares)
from .tree import global_norm

# --- transformations (transforms/)
from . import transforms
from .transforms import (AddDecayedWeightsState, AddNoiseState, ClipByGlobalNormState,
                         ClipState, EmaState, FactoredState, NonNegativeParamsState,
                         ScaleByAdaDeltaState, ScaleByAdamState, ScaleByAdanState,
                         ScaleByAmsgradState, ScaleByBeliefState, ScaleByLBFGSState,
                         ScaleByLionState, ScaleByNovogradState,
                         ScaleByOptimisticGradientState, ScaleByRmsState,
                         ScaleByRmsWithCountState, ScaleByRpropState, ScaleByRssState,
                         ScaleByRStdDevState, ScaleByRStdDevWithCountState,
                         ScaleByScheduleState, ScaleBySM3State, ScaleByTrustRatioState,
                         ScaleState, TraceState, WeightDecaySchedule, ZeroNansState,
                         adaptive_grad_clip, add_decayed_weights, add_noise, centralize, clip,
                         clip_by_block_rms, clip_by_global_norm, ema, keep_params_nonnegative,
                         normalize_by_update_norm, per_example_global_norm_clip, scale,
                         scale_by_adadelta, scale_by_adam, scale_by_adamax, scale_by_adan,
                         scale_by_amsgrad, scale_by_belief, scale_by_factored_rms,
                         scale_by_lbfgs, scale_by_learning_rate, scale_by_lion,
                         scale_by_novograd, scale_by_optimistic_gradient,
                         scale_by_param_block_norm, scale_by_param_block_rms, scale_by_polyak,
                         scale_by_radam, scale_by_rms, scale_by_rprop, scale_by_rss,
                         scale_by_schedule, scale_by_sign, scale_by_sm3, scale_by_stddev,
                         scale_by_trust_ratio, scale_by_yogi, trace, zero_nans)

# --- combining (combine.py)
from .combine import (MultiTransformState, PartitionState, chain, multi_transform,
                      named_chain, partition)

# --- line search (linesearch.py)
from .linesearch import (ScaleByZoomLinesearchState, ZoomLinesearchInfo, ZoomLinesearchState,
                         scale_by_zoom_linesearch, value_and_grad_from_state, zoom_linesearch)

# --- optimizers (alias.py)
from .alias import (MaskOrFn, adabelief, adadelta, adafactor, adagrad, adam, adamax, adamaxw,
                    adamw, adan, amsgrad, fromage, lamb, lars, lbfgs, lion, nadam, nadamw,
                    noisy_sgd, novograd, optimistic_adam, optimistic_adam_v2,
                    optimistic_gradient_descent, polyak_sgd, radam, rmsprop, rprop, sgd,
                    sign_sgd, signum, sm3, yogi)

# --- schedules (schedules/), losses (losses/), wrappers (wrappers/)
from . import losses, schedules, wrappers
from .schedules import (InjectHyperparamsState, InjectStatefulHyperparamsState, WrappedSchedule,
                        constant_schedule, cosine_decay_schedule, cosine_onecycle_schedule,
                        exponential_decay, inject_hyperparams, inject_stateful_hyperparams,
                        join_schedules, linear_onecycle_schedule, linear_schedule,
                        piecewise_constant_schedule, piecewise_interpolate_schedule,
                        polynomial_schedule, sgdr_schedule, warmup_constant_schedule,
                        warmup_cosine_decay_schedule, warmup_exponential_decay_schedule)
from .wrappers import (ApplyEvery, ApplyIfFiniteState, ConditionallyMaskState,
                       ConditionallyTransformState, LookaheadParams, LookaheadState, MaskedNode,
                       MaskedState, MultiSteps, MultiStepsState, apply_every, apply_if_finite,
                       conditionally_mask, conditionally_transform, flatten, freeze, lookahead,
                       masked, selective_transform, skip_large_updates, skip_not_finite)
