"""The gradient transformations of optax, on ember arrays (optim.transforms).

Grouped by idea: _scaling (constant, schedule, param norms, trust ratio,
Polyak), _adam (Adam and its variants), _rms (RMSProp, AdaGrad, AdaDelta, SM3),
_factorized (Adafactor's moments), _momentum (Lion, NovoGrad, optimistic, Rprop),
_accumulation (trace, ema), _adding (weight decay, noise), _clipping,
_constraining. Every one is re-exported from ember.optim.
"""
from ._accumulation import EmaState, TraceState, ema, trace
from ._adam import (ScaleByAdamState, ScaleByAdanState, ScaleByAmsgradState,
                    ScaleByBeliefState, scale_by_adam, scale_by_adamax, scale_by_adan,
                    scale_by_amsgrad, scale_by_belief, scale_by_radam, scale_by_yogi)
from ._adding import (AddDecayedWeightsState, AddNoiseState, WeightDecaySchedule,
                      add_decayed_weights, add_noise)
from ._clipping import (ClipByGlobalNormState, ClipState, adaptive_grad_clip, clip,
                        clip_by_block_rms, clip_by_global_norm, per_example_global_norm_clip,
                        unitwise_clip, unitwise_norm)
from ._constraining import (NonNegativeParamsState, ZeroNansState, keep_params_nonnegative,
                            zero_nans)
from ._factorized import FactoredState, scale_by_factored_rms
from ._momentum import (ScaleByLionState, ScaleByNovogradState,
                        ScaleByOptimisticGradientState, ScaleByRpropState, scale_by_lion,
                        scale_by_novograd, scale_by_optimistic_gradient, scale_by_rprop)
from ._rms import (ScaleByAdaDeltaState, ScaleByRmsState, ScaleByRmsWithCountState,
                   ScaleByRssState, ScaleByRStdDevState, ScaleByRStdDevWithCountState,
                   ScaleBySM3State, scale_by_adadelta, scale_by_rms, scale_by_rss, scale_by_sm3,
                   scale_by_stddev)
from ._scaling import (ScaleByScheduleState, ScaleByTrustRatioState, ScaleState,
                       centralize, normalize_by_update_norm, scale, scale_by_learning_rate,
                       scale_by_param_block_norm, scale_by_param_block_rms, scale_by_polyak,
                       scale_by_schedule, scale_by_sign, scale_by_trust_ratio)
from ._lbfgs import ScaleByLBFGSState, scale_by_lbfgs
