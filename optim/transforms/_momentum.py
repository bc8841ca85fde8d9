"""Momentum-style transformations: sign of an interpolated momentum (Lion),
per-layer normalized momentum (NovoGrad), extrapolation from the previous
gradient (optimistic gradient descent) and sign-agreement step sizes (Rprop)."""
from typing import Literal, NamedTuple

import ember.core as em

from .. import base, numerics
from .. import tree as otree
from .._trees import tree_map


class ScaleByLionState(NamedTuple):
    count: em.array
    mu: base.Updates


def scale_by_lion(b1=0.9, b2=0.99, mu_dtype=None, *,
                  mode: Literal["hard", "smooth", "refined"] = "hard",
                  smooth_beta: float = 1.0) -> base.GradientTransformation:
    """Lion: u <- sign((1 - b1) g + b1 m), then m <- (1 - b2) g + b2 m.

    mode 'smooth' uses tanh(smooth_beta x) and 'refined' keeps x where |x| < 1
    instead of the sign."""
    mu_dtype = otree.canonicalize_dtype(mu_dtype)
    if mode not in ("hard", "smooth", "refined"):
        raise ValueError(f'Unknown lion mode: {mode}. It needs to be one of ["hard", "smooth", '
                         '"refined"].')

    def init_fn(params):
        return ScaleByLionState(count=em.zeros([], em.int32),
                                mu=otree.zeros_like(params, dtype=mu_dtype))

    def _comb(g, m):
        x = (1.0 - b1) * g + b1 * m
        if mode == "hard":
            return em.sign(x)
        if mode == "smooth":
            return em.tanh(smooth_beta * x)
        return em.where(em.abs(x) < 1.0, x, em.sign(x))

    def update_fn(updates, state, params=None):
        del params
        updates_new = tree_map(_comb, updates, state.mu, names=("updates", "state.mu"))
        mu = otree.cast(otree.update_moment(updates, state.mu, b2, 1), mu_dtype)
        return updates_new, ScaleByLionState(count=numerics.safe_increment(state.count), mu=mu)

    return base.GradientTransformation(init_fn, update_fn)


class ScaleByNovogradState(NamedTuple):
    """count; mu: the momentum; nu: per leaf, a scalar moving average of ||g||^2."""
    count: em.array
    mu: base.Updates
    nu: base.Updates


def scale_by_novograd(b1=0.9, b2=0.25, eps=1e-8, eps_root=0.0, weight_decay=0.0,
                      mu_dtype=None) -> base.GradientTransformation:
    """NovoGrad: a layer-wise second moment, v <- b2 v + (1 - b2) ||g||^2 (v = ||g||^2
    at the first step), and m <- b1 m + g / (sqrt(v + eps_root) + eps) + wd p
    (no b1 m term at the first step); u <- m."""
    mu_dtype = otree.canonicalize_dtype(mu_dtype)

    def init_fn(params):
        return ScaleByNovogradState(count=em.zeros([], em.int32),
                                    mu=otree.zeros_like(params, dtype=mu_dtype),
                                    nu=tree_map(lambda p: em.array(0.0, p.dtype), params))

    def squared_norm(g):
        norm = em.sqrt(em.sum(numerics.abs_sq(g)))
        return norm * norm

    def mu_addition(g, p, v):
        return g / (em.sqrt(v + eps_root) + eps) + weight_decay * p

    def update_fn(updates, state, params):
        if params is None:
            raise ValueError(base.NO_PARAMS_MSG)
        count_inc = numerics.safe_increment(state.count)
        first = count_inc == 1
        # both branches of optax's lax.cond are computed and the right one kept
        nu = tree_map(lambda g, n: em.where(first, squared_norm(g).astype(n.dtype),
                                            (1 - b2) * squared_norm(g) + b2 * n),
                      updates, state.nu, names=("updates", "state.nu"))
        mu = tree_map(lambda g, p, m, v: None if m is None else em.where(
                          first, mu_addition(g, p, v), b1 * m + mu_addition(g, p, v)),
                      updates, params, state.mu, nu, names=("updates", "params", "state.mu",
                                                            "nu"))
        mu = otree.cast(mu, mu_dtype)
        return mu, ScaleByNovogradState(count=count_inc, mu=mu, nu=nu)

    return base.GradientTransformation(init_fn, update_fn)


class ScaleByOptimisticGradientState(NamedTuple):
    is_initial_step: em.array
    previous_gradient: base.Updates


def scale_by_optimistic_gradient(alpha=1.0, beta=1.0) -> base.GradientTransformation:
    """Optimistic gradient: u <- (alpha + beta) g(t) - beta g(t-1), with g(t-1) = g(t)
    at the first step (for min-max games)."""

    def init_fn(params):
        return ScaleByOptimisticGradientState(is_initial_step=em.array(True),
                                              previous_gradient=otree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params

        def f(grad, prev_grad):
            prev_grad = em.where(state.is_initial_step, grad, prev_grad)
            return (alpha + beta) * grad - beta * prev_grad
        new_updates = tree_map(f, updates, state.previous_gradient,
                               names=("updates", "state.previous_gradient"))
        return new_updates, ScaleByOptimisticGradientState(is_initial_step=em.array(False),
                                                           previous_gradient=updates)

    return base.GradientTransformation(init_fn, update_fn)


class ScaleByRpropState(NamedTuple):
    step_sizes: base.Updates
    prev_updates: base.Updates


def scale_by_rprop(learning_rate, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6,
                   max_step_size=50.0) -> base.GradientTransformation:
    """Rprop: per element, the step grows by eta_plus while g keeps its sign and
    shrinks by eta_minus when it flips (clipped to [min_step_size, max_step_size]);
    u is the step times sign(g), and 0 right after a sign flip."""

    def init_fn(params):
        return ScaleByRpropState(otree.full_like(params, learning_rate),
                                 otree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        sign = tree_map(lambda g, prev_g: g * prev_g, updates, state.prev_updates,
                        names=("updates", "state.prev_updates"))
        step_sizes = tree_map(
            lambda s, step_size: em.where(
                s == 0, step_size,
                em.clip(step_size * em.where(s > 0, numerics.scalar_as(eta_plus, s.dtype),
                                             numerics.scalar_as(eta_minus, s.dtype)),
                        min_step_size, max_step_size)),
            sign, state.step_sizes)
        prev_updates = tree_map(
            lambda s, g, step_size: em.where(s < 0, em.zeros_like(g), step_size * em.sign(g)),
            sign, updates, step_sizes)
        updates = tree_map(lambda s, g, prev_g: em.where(s < 0, em.zeros_like(prev_g), prev_g),
                           sign, prev_updates, state.prev_updates)
        return updates, ScaleByRpropState(step_sizes, prev_updates)

    return base.GradientTransformation(init_fn, update_fn)
