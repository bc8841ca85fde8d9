"""The Adam family: first and second moment estimates with bias correction.

With g the update, m and v moving averages of g and g^2 and t the step count,
Adam scales by  m_hat / (sqrt(v_hat + eps_root) + eps),  m_hat = m / (1 - b1^t),
v_hat = v / (1 - b2^t). The variants here change how v is tracked (AMSGrad's
running max, Yogi's additive update, AdaBelief's variance of g - m, AdaMax's
infinity norm), rectify the early steps (RAdam) or add a gradient-difference
moment (Adan).
"""
from typing import NamedTuple, Optional

import ember.core as em

from .. import base, numerics
from .. import tree as otree
from .._trees import is_none, tree_leaves, tree_map


class ScaleByAdamState(NamedTuple):
    """count: the step; mu, nu: the first and second moments (trees like params)."""
    count: em.array
    mu: base.Updates
    nu: base.Updates


def _zero_count():
    return em.zeros([], em.int32)


def _corrected_mean(mu, updates, b1, count_inc, nesterov):
    """m_hat, or with nesterov the look-ahead mean b1 m_hat(t + 1) + (1 - b1) g_hat(t)."""
    if not nesterov:
        return otree.bias_correction(mu, b1, count_inc)
    return tree_map(lambda m, g: b1 * m + (1 - b1) * g,
                    otree.bias_correction(mu, b1, numerics.safe_increment(count_inc)),
                    otree.bias_correction(updates, b1, count_inc))


def _adam_moments(updates, state, b1, b2, nesterov):
    """Adam's new moments and step, and their bias-corrected forms:
    (mu, nu, count_inc, mu_hat, nu_hat)."""
    mu = otree.update_moment(updates, state.mu, b1, 1)
    nu = otree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
    count_inc = numerics.safe_increment(state.count)
    mu_hat = _corrected_mean(mu, updates, b1, count_inc, nesterov)
    nu_hat = otree.bias_correction(nu, b2, count_inc)
    return mu, nu, count_inc, mu_hat, nu_hat


def _adam_step(mu_hat, nu_hat, eps, eps_root):
    """m / (sqrt(v + eps_root) + eps); a literal eps_root of 0 is not added (v + 0.0 is
    v, and skipping it saves a pass over every moment)."""
    if isinstance(eps_root, (int, float)) and eps_root == 0:
        return tree_map(lambda m, v: None if m is None else m / (em.sqrt(v) + eps),
                        mu_hat, nu_hat, is_leaf=is_none)
    return tree_map(lambda m, v: None if m is None else m / (em.sqrt(v + eps_root) + eps),
                    mu_hat, nu_hat, is_leaf=is_none)


def scale_by_adam(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *,
                  nesterov: bool = False) -> base.GradientTransformation:
    """Adam: u <- m_hat / (sqrt(v_hat + eps_root) + eps).

    m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g^2, both bias-corrected by
    the step count; nesterov=True uses the look-ahead mean of NAdam. mu_dtype
    sets the storage dtype of m."""
    mu_dtype = otree.canonicalize_dtype(mu_dtype)

    def init_fn(params):
        return ScaleByAdamState(count=_zero_count(), mu=otree.zeros_like(params, dtype=mu_dtype),
                                nu=otree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        mu, nu, count_inc, mu_hat, nu_hat = _adam_moments(updates, state, b1, b2, nesterov)
        updates = _adam_step(mu_hat, nu_hat, eps, eps_root)
        mu = otree.cast(mu, mu_dtype)
        nu = otree.cast_like(nu, state.nu)
        return updates, ScaleByAdamState(count=count_inc, mu=mu, nu=nu)

    return base.GradientTransformation(init_fn, update_fn)


class ScaleByAmsgradState(NamedTuple):
    """Adam's state plus nu_max, the running maximum of the (corrected) second moment."""
    count: em.array
    mu: base.Updates
    nu: base.Updates
    nu_max: base.Updates


def scale_by_amsgrad(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None,
                     bias_correction_mu: bool = True,
                     bias_correction_nu: bool = True) -> base.GradientTransformation:
    """AMSGrad: Adam with v replaced by its running maximum, so the effective
    step size never grows: u <- m_hat / (sqrt(max_t v_hat + eps_root) + eps)."""
    mu_dtype = otree.canonicalize_dtype(mu_dtype)

    def init_fn(params):
        return ScaleByAmsgradState(count=_zero_count(),
                                   mu=otree.zeros_like(params, dtype=mu_dtype),
                                   nu=otree.zeros_like(params), nu_max=otree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        mu = otree.update_moment(updates, state.mu, b1, 1)
        nu = otree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count_inc = numerics.safe_increment(state.count)
        mu_hat = otree.bias_correction(mu, b1, count_inc) if bias_correction_mu else mu
        nu_eff = otree.bias_correction(nu, b2, count_inc) if bias_correction_nu else nu
        nu_max = tree_map(em.maximum, state.nu_max, nu_eff, names=("state.nu_max", "updates"))
        updates = _adam_step(mu_hat, nu_max, eps, eps_root)
        mu = otree.cast(mu, mu_dtype)
        return updates, ScaleByAmsgradState(count=count_inc, mu=mu, nu=nu, nu_max=nu_max)

    return base.GradientTransformation(init_fn, update_fn)


def scale_by_adamax(b1=0.9, b2=0.999, eps=1e-8) -> base.GradientTransformation:
    """AdaMax: Adam with the infinity norm, u <- m_hat / v,  v <- max(|g| + eps, b2 v)."""

    def init_fn(params):
        return ScaleByAdamState(count=_zero_count(), mu=otree.zeros_like(params),
                                nu=otree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        count_inc = numerics.safe_increment(state.count)
        mu = otree.update_moment(updates, state.mu, b1, 1)
        nu = otree.update_infinity_moment(updates, state.nu, b2, eps)
        mu_hat = otree.bias_correction(mu, b1, count_inc)
        updates = tree_map(lambda m, v: m / v, mu_hat, nu)
        return updates, ScaleByAdamState(count=count_inc, mu=mu, nu=nu)

    return base.GradientTransformation(init_fn, update_fn)


class ScaleByBeliefState(NamedTuple):
    """count, mu (the mean of g) and nu (the moving variance of g - mu)."""
    count: em.array
    mu: base.Updates
    nu: base.Updates


def scale_by_belief(b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, *,
                    nesterov: bool = False) -> base.GradientTransformation:
    """AdaBelief: Adam with v the moving average of (g - m)^2 (+ eps_root), the
    "belief" in the current gradient: u <- m_hat / (sqrt(v_hat) + eps)."""

    def init_fn(params):
        return ScaleByBeliefState(count=_zero_count(), mu=otree.zeros_like(params),
                                  nu=otree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        mu = otree.update_moment(updates, state.mu, b1, 1)
        prediction_error = otree.sub(updates, mu)
        nu = otree.update_moment_per_elem_norm(prediction_error, state.nu, b2, 2)
        nu = tree_map(lambda v: v + eps_root, nu)
        count_inc = numerics.safe_increment(state.count)
        mu_hat = _corrected_mean(mu, updates, b1, count_inc, nesterov)
        nu_hat = otree.bias_correction(nu, b2, count_inc)
        updates = tree_map(lambda m, v: None if m is None else m / (em.sqrt(v) + eps),
                           mu_hat, nu_hat, is_leaf=is_none)
        return updates, ScaleByBeliefState(count=count_inc, mu=mu, nu=nu)

    return base.GradientTransformation(init_fn, update_fn)


def scale_by_yogi(b1=0.9, b2=0.999, eps=1e-3, eps_root=0.0,
                  initial_accumulator_value=1e-6) -> base.GradientTransformation:
    """Yogi: Adam with an additive second moment that moves by at most (1 - b2) g^2:
    v <- v - (1 - b2) sign(v - g^2) g^2."""

    def init_fn(params):
        return ScaleByAdamState(count=_zero_count(),
                                mu=otree.full_like(params, initial_accumulator_value),
                                nu=otree.full_like(params, initial_accumulator_value))

    def update_fn(updates, state, params=None):
        del params
        mu = otree.update_moment(updates, state.mu, b1, 1)

        def second_moment(g, v):
            g2 = numerics.abs_sq(g)
            return v - (1 - b2) * em.sign(v - g2) * g2
        nu = tree_map(second_moment, updates, state.nu, names=("updates", "state.nu"))
        count_inc = numerics.safe_increment(state.count)
        mu_hat = otree.bias_correction(mu, b1, count_inc)
        nu_hat = otree.bias_correction(nu, b2, count_inc)
        updates = _adam_step(mu_hat, nu_hat, eps, eps_root)
        return updates, ScaleByAdamState(count=count_inc, mu=mu, nu=nu)

    return base.GradientTransformation(init_fn, update_fn)


def scale_by_radam(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, threshold=5.0, *,
                   nesterov: bool = False) -> base.GradientTransformation:
    """Rectified Adam: while the length of the approximated SMA, rho_t, is below
    threshold the variance of v is untrustworthy and u <- m_hat (momentum only);
    after that u <- r_t m_hat / (sqrt(v_hat + eps_root) + eps) with
    r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t)),
    rho_inf = 2 / (1 - b2) - 1,  rho_t = rho_inf - 2 t b2^t / (1 - b2^t)."""
    ro_inf = 2.0 / (1.0 - b2) - 1.0

    def init_fn(params):
        return ScaleByAdamState(count=_zero_count(), mu=otree.zeros_like(params),
                                nu=otree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        mu, nu, count_inc, mu_hat, nu_hat = _adam_moments(updates, state, b1, b2, nesterov)
        t = count_inc.astype(numerics.scalar_dtype(tree_leaves(updates)))
        b2t = b2 ** t
        ro = ro_inf - 2 * t * b2t / (1 - b2t)
        r = em.sqrt((ro - 4.0) * (ro - 2.0) * ro_inf / ((ro_inf - 4.0) * (ro_inf - 2.0) * ro))
        rectified = tree_map(lambda m, v: r.astype(m.dtype) * m / (em.sqrt(v + eps_root) + eps),
                             mu_hat, nu_hat)
        updates = tree_map(lambda a, b: em.where(ro >= threshold, a, b), rectified, mu_hat)
        return updates, ScaleByAdamState(count=count_inc, mu=mu, nu=nu)

    return base.GradientTransformation(init_fn, update_fn)


class ScaleByAdanState(NamedTuple):
    """m, v, n: moments of g, of g(t) - g(t-1) and of their combination; g: the last
    update; t: the step."""
    m: base.Updates
    v: base.Updates
    n: base.Updates
    g: base.Updates
    t: em.array


def scale_by_adan(b1=0.98, b2=0.92, b3=0.99, eps=1e-8,
                  eps_root=0.0) -> base.GradientTransformation:
    """Adan (adaptive Nesterov momentum), with d = g(t) - g(t-1) (0 at the first step):
    m <- EMA_b1(g), v <- EMA_b2(d), n <- EMA_b3((g + (1 - b2) d)^2),
    u <- (m_hat + (1 - b2) v_hat) / (sqrt(n_hat + eps_root) + eps)."""

    def init_fn(params):
        return ScaleByAdanState(m=otree.zeros_like(params), v=otree.zeros_like(params),
                                n=otree.zeros_like(params), g=otree.zeros_like(params),
                                t=_zero_count())

    def update_fn(updates, state, params=None):
        del params
        g = updates
        diff = otree.where(state.t == 0, otree.zeros_like(g), otree.sub(g, state.g))
        m = otree.update_moment(g, state.m, b1, 1)
        v = otree.update_moment(diff, state.v, b2, 1)
        sq = otree.add_scale(g, 1 - b2, diff)
        n = otree.update_moment_per_elem_norm(sq, state.n, b3, 2)
        t = numerics.safe_increment(state.t)
        m_hat = otree.bias_correction(m, b1, t)
        v_hat = otree.bias_correction(v, b2, t)
        n_hat = otree.bias_correction(n, b3, t)
        u = otree.add_scale(m_hat, 1 - b2, v_hat)
        denom = tree_map(lambda nh: em.sqrt(nh + eps_root) + eps, n_hat)
        return otree.div(u, denom), ScaleByAdanState(m=m, v=v, n=n, g=g, t=t)

    return base.GradientTransformation(init_fn, update_fn)
