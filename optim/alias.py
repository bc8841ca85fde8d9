"""Popular optimizers, each a chain of transformations (optax's aliases).

An optimizer returns updates to *add* to the params: the final
scale_by_learning_rate multiplies by -learning_rate. learning_rate is a number
or a schedule (a function of the step count) wherever optax accepts one.
"""
import warnings
from typing import Any, Callable, Optional, Union

from . import base
from .combine import chain
from .linesearch import scale_by_zoom_linesearch
from .transforms import (add_decayed_weights, add_noise, clip_by_block_rms, ema, scale,
                         scale_by_adadelta, scale_by_adam, scale_by_adamax, scale_by_adan,
                         scale_by_amsgrad, scale_by_belief, scale_by_factored_rms,
                         scale_by_lbfgs, scale_by_learning_rate, scale_by_lion, scale_by_novograd,
                         scale_by_optimistic_gradient, scale_by_param_block_rms,
                         scale_by_polyak, scale_by_radam, scale_by_rms, scale_by_rprop,
                         scale_by_rss, scale_by_sign, scale_by_sm3, scale_by_stddev,
                         scale_by_trust_ratio, scale_by_yogi, trace)

MaskOrFn = Optional[Union[Any, Callable[[base.Params], Any]]]


def _masked(inner, mask):
    from .wrappers import masked  # wrappers builds on base; keep the import one way
    return masked(inner, mask)


def adabelief(learning_rate, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, *,
              nesterov: bool = False):
    """AdaBelief: Adam with the second moment of g - m (scale_by_belief)."""
    return chain(scale_by_belief(b1=b1, b2=b2, eps=eps, eps_root=eps_root, nesterov=nesterov),
                 scale_by_learning_rate(learning_rate))


def adadelta(learning_rate=None, rho=0.9, eps=1e-6, weight_decay=0.0,
             weight_decay_mask: MaskOrFn = None):
    """AdaDelta (scale_by_adadelta), with optional weight decay."""
    return chain(add_decayed_weights(weight_decay, mask=weight_decay_mask),
                 scale_by_adadelta(rho=rho, eps=eps), scale_by_learning_rate(learning_rate))


def adafactor(learning_rate=None, min_dim_size_to_factor: int = 128, decay_rate=0.8,
              decay_offset=0, multiply_by_parameter_scale: bool = True,
              clipping_threshold=1.0, momentum=None, dtype_momentum="float32",
              weight_decay_rate=None, eps=1e-30, factored: bool = True,
              weight_decay_mask: MaskOrFn = None):
    """Adafactor: factored second moments, update clipping by block RMS, steps
    relative to the params' scale, optional momentum and weight decay."""
    tx = [scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor,
                                eps)]
    if clipping_threshold is not None:
        tx.append(clip_by_block_rms(clipping_threshold))
    if learning_rate is not None:
        tx.append(scale_by_learning_rate(learning_rate, flip_sign=False))
    if multiply_by_parameter_scale:
        tx.append(scale_by_param_block_rms())
    if momentum is not None:
        tx.append(ema(momentum, debias=False, accumulator_dtype=dtype_momentum))
    if weight_decay_rate is not None:
        tx.append(add_decayed_weights(weight_decay_rate, mask=weight_decay_mask))
    tx.append(scale(-1))
    return chain(*tx)


def adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7):
    """AdaGrad: divides by the root of the running sum of squared gradients."""
    return chain(scale_by_rss(initial_accumulator_value=initial_accumulator_value, eps=eps),
                 scale_by_learning_rate(learning_rate))


def adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *,
         nesterov: bool = False):
    """Adam: -lr m_hat / (sqrt(v_hat + eps_root) + eps)."""
    return chain(scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                               nesterov=nesterov),
                 scale_by_learning_rate(learning_rate))


def nadam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *,
          nesterov: bool = True):
    """NAdam: Adam with Nesterov momentum."""
    return adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov)


def adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None,
          weight_decay=1e-4, mask: MaskOrFn = None, *, nesterov: bool = False):
    """AdamW: Adam with decoupled weight decay, -lr (m_hat / (sqrt(v_hat) + eps) + wd p)."""
    return chain(scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                               nesterov=nesterov),
                 add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))


def nadamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None,
           weight_decay=1e-4, mask: MaskOrFn = None, *, nesterov: bool = True):
    """NAdamW: AdamW with Nesterov momentum."""
    return adamw(learning_rate, b1, b2, eps, eps_root, mu_dtype, weight_decay, mask,
                 nesterov=nesterov)


def adan(learning_rate, b1=0.98, b2=0.92, b3=0.99, eps=1e-8, eps_root=1e-8, weight_decay=0.0,
         mask: MaskOrFn = None):
    """Adan (adaptive Nesterov momentum), with decoupled weight decay."""
    return chain(scale_by_adan(b1=b1, b2=b2, b3=b3, eps=eps, eps_root=eps_root),
                 add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))


def lion(learning_rate, b1=0.9, b2=0.99, mu_dtype=None, weight_decay=1e-3,
         mask: MaskOrFn = None):
    """Lion: the sign of interpolated momentum, with decoupled weight decay."""
    return chain(scale_by_lion(b1=b1, b2=b2, mu_dtype=mu_dtype),
                 add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))


def amsgrad(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None,
            bias_correction_mu: bool = True, bias_correction_nu: bool = True):
    """AMSGrad: Adam with the running maximum of the second moment."""
    return chain(scale_by_amsgrad(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                                  bias_correction_mu=bias_correction_mu,
                                  bias_correction_nu=bias_correction_nu),
                 scale_by_learning_rate(learning_rate))


def fromage(learning_rate, min_norm=1e-6):
    """Fromage (Frobenius matched gradient descent): trust-ratio steps of size lr,
    the params shrunk by 1 / sqrt(1 + lr^2) to keep their norm."""
    if not callable(learning_rate):
        mult = 1 / (1 + learning_rate ** 2) ** 0.5
        return chain(scale_by_trust_ratio(min_norm),
                     scale_by_learning_rate(learning_rate * mult),
                     add_decayed_weights(mult - 1))

    def mult_lr(count):
        return 1 / (1 + learning_rate(count) ** 2) ** 0.5
    return chain(scale_by_trust_ratio(min_norm),
                 scale_by_learning_rate(lambda c: mult_lr(c) * learning_rate(c)),
                 add_decayed_weights(lambda c: mult_lr(c) - 1))


def lars(learning_rate, weight_decay=0.0, weight_decay_mask: MaskOrFn = True,
         trust_coefficient=0.001, eps=0.0, trust_ratio_mask: MaskOrFn = True, momentum=0.9,
         nesterov: bool = False):
    """LARS: weight decay, a layer-wise trust ratio, then momentum."""
    return chain(add_decayed_weights(weight_decay, mask=weight_decay_mask),
                 _masked(scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps),
                         trust_ratio_mask),
                 scale_by_learning_rate(learning_rate),
                 trace(decay=momentum, nesterov=nesterov))


def lamb(learning_rate, b1=0.9, b2=0.999, eps=1e-6, eps_root=0.0, weight_decay=0.0,
         mask: MaskOrFn = None):
    """LAMB: Adam with weight decay, scaled layer by layer by the trust ratio."""
    return chain(scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root),
                 add_decayed_weights(weight_decay=weight_decay, mask=mask),
                 scale_by_trust_ratio(), scale_by_learning_rate(learning_rate))


def noisy_sgd(learning_rate, eta=0.01, gamma=0.55, key=None):
    """SGD with annealed Gaussian gradient noise (add_noise)."""
    return chain(add_noise(eta, gamma, key), scale_by_learning_rate(learning_rate))


def sign_sgd(learning_rate):
    """SGD on the sign of the gradient."""
    return chain(scale_by_sign(), scale_by_learning_rate(learning_rate))


def signum(learning_rate, beta=0.9, accumulator_dtype=None):
    """Signum: the sign of the (undebiased) momentum."""
    return chain(ema(beta, debias=False, accumulator_dtype=accumulator_dtype), scale_by_sign(),
                 scale_by_learning_rate(learning_rate))


def novograd(learning_rate, b1=0.9, b2=0.25, eps=1e-6, eps_root=0.0, weight_decay=0.0):
    """NovoGrad: layer-wise normalized gradients with momentum."""
    return chain(scale_by_novograd(b1=b1, b2=b2, eps=eps, eps_root=eps_root,
                                   weight_decay=weight_decay),
                 scale_by_learning_rate(learning_rate))


def optimistic_gradient_descent(learning_rate, alpha=1.0, beta=1.0):
    """Optimistic gradient descent, for min-max games."""
    return chain(scale_by_optimistic_gradient(alpha=alpha, beta=beta),
                 scale_by_learning_rate(learning_rate))


def optimistic_adam(learning_rate, optimism=None, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
                    mu_dtype=None, *, nesterov: bool = True):
    """Optimistic Adam, optax's deprecated form (alpha = learning_rate,
    beta = optimism, no schedules): use optimistic_adam_v2."""
    warnings.warn("`optimistic_adam` is deprecated, please use `optimistic_adam_v2` instead.",
                  category=DeprecationWarning)
    if callable(learning_rate):
        raise ValueError("This version of `optimistic_adam` does not support learning rate "
                         "schedules but `optimistic_adam_v2` does.")
    if optimism is None:
        optimism = learning_rate
    return chain(scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                               nesterov=nesterov),
                 scale_by_optimistic_gradient(alpha=learning_rate, beta=optimism),
                 scale_by_learning_rate(1.0))


def optimistic_adam_v2(learning_rate, *, alpha=1.0, beta=1.0, b1=0.9, b2=0.999, eps=1e-8,
                       eps_root=0.0, mu_dtype=None, nesterov: bool = True):
    """Optimistic Adam: Adam's direction, extrapolated as in optimistic gradient descent."""
    return chain(scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                               nesterov=nesterov),
                 scale_by_optimistic_gradient(alpha=alpha, beta=beta),
                 scale_by_learning_rate(learning_rate))


def radam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, threshold=5.0, *,
          nesterov: bool = False):
    """Rectified Adam (scale_by_radam)."""
    return chain(scale_by_radam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, threshold=threshold,
                                nesterov=nesterov),
                 scale_by_learning_rate(learning_rate))


def rmsprop(learning_rate, decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt: bool = True,
            centered: bool = False, momentum=None, nesterov: bool = False,
            bias_correction: bool = False):
    """RMSProp (centered: divided by the standard deviation), with optional momentum."""
    second_moment = scale_by_stddev if centered else scale_by_rms
    return chain(second_moment(decay=decay, eps=eps, initial_scale=initial_scale,
                               eps_in_sqrt=eps_in_sqrt, bias_correction=bias_correction),
                 scale_by_learning_rate(learning_rate),
                 trace(decay=momentum, nesterov=nesterov) if momentum is not None
                 else base.identity())


def sgd(learning_rate, momentum=None, nesterov: bool = False, accumulator_dtype=None):
    """Stochastic gradient descent, with optional (Nesterov) momentum."""
    opt = (trace(decay=momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype)
           if momentum is not None else base.identity())
    return chain(opt, scale_by_learning_rate(learning_rate))


def sm3(learning_rate, momentum=0.9):
    """SM3: memory-efficient adaptive steps from per-axis accumulators."""
    return chain(scale_by_sm3(momentum), scale(-learning_rate))


def yogi(learning_rate, b1=0.9, b2=0.999, eps=1e-3):
    """Yogi: Adam with an additive, sign-controlled second moment."""
    return chain(scale_by_yogi(b1=b1, b2=b2, eps=eps), scale_by_learning_rate(learning_rate))


def adamax(learning_rate, b1=0.9, b2=0.999, eps=1e-8):
    """AdaMax: Adam with the infinity norm."""
    return chain(scale_by_adamax(b1=b1, b2=b2, eps=eps), scale_by_learning_rate(learning_rate))


def adamaxw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4,
            mask: MaskOrFn = None):
    """AdaMax with decoupled weight decay."""
    return chain(scale_by_adamax(b1=b1, b2=b2, eps=eps), add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))


def rprop(learning_rate, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6, max_step_size=50.0):
    """Rprop: per-element step sizes adapted to sign agreement."""
    return chain(scale_by_rprop(learning_rate=learning_rate, eta_minus=eta_minus,
                                eta_plus=eta_plus, min_step_size=min_step_size,
                                max_step_size=max_step_size),
                 scale(-1.0))


def polyak_sgd(max_learning_rate=1.0, scaling=1.0, f_min=0.0, eps=0.0, variant: str = "sps"):
    """SGD with the Polyak step size; update takes the loss as `value=`."""
    return chain(sgd(learning_rate=scaling),
                 scale_by_polyak(max_learning_rate=max_learning_rate, f_min=f_min, eps=eps,
                                 variant=variant))


def lbfgs(learning_rate=None, memory_size: int = 10, scale_init_precond: bool = True,
          linesearch=scale_by_zoom_linesearch(max_linesearch_steps=20,
                                              initial_guess_strategy="one")):
    """L-BFGS: the L-BFGS direction (scale_by_lbfgs), then a step along it chosen by
    linesearch (the zoom line search; None for a fixed step of learning_rate, or 1).

    update needs the keywords value, grad and value_fn (see
    value_and_grad_from_state for reusing the line search's evaluations)."""
    base_scaling = scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate)
    if linesearch is None:
        linesearch = base.identity()
    return chain(scale_by_lbfgs(memory_size=memory_size, scale_init_precond=scale_init_precond),
                 base_scaling, linesearch)
