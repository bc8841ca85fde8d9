"""Scaling by accumulated squared gradients: RMSProp, its centred variant,
AdaGrad's running sum, AdaDelta, SM3's cover sets and Adafactor's factored
second moments. Each divides the update by a root of some estimate of E[g^2]."""
import functools
from typing import Callable, NamedTuple

import ember.core as em

from .. import base, numerics
from .. import tree as otree
from .._trees import tree_leaves, tree_map


def _zero_count():
    return em.zeros([], em.int32)


def _reject_complex(params):
    if any(em.issubdtype(x.dtype, em.complexfloating) for x in tree_leaves(params)):
        raise ValueError("This transformation does not support complex parameters.")


class ScaleByRssState(NamedTuple):
    """The running sum of squared updates."""
    sum_of_squares: base.Updates


def scale_by_rss(initial_accumulator_value=0.1, eps=1e-7) -> base.GradientTransformation:
    """AdaGrad: s <- s + g^2,  u <- g / sqrt(s + eps) (0 where s is 0)."""

    def init_fn(params):
        return ScaleByRssState(sum_of_squares=otree.full_like(params, initial_accumulator_value))

    def update_fn(updates, state, params=None):
        del params
        sum_of_squares = tree_map(lambda g, t: numerics.abs_sq(g) + t, updates,
                                  state.sum_of_squares, names=("updates", "state.sum_of_squares"))
        inv_sqrt = tree_map(lambda t: em.where(t > 0, em.rsqrt(t + eps), 0.0), sum_of_squares)
        return otree.mul(inv_sqrt, updates), ScaleByRssState(sum_of_squares=sum_of_squares)

    return base.GradientTransformation(init_fn, update_fn)


class ScaleByRmsState(NamedTuple):
    nu: base.Updates


class ScaleByRmsWithCountState(NamedTuple):
    count: em.array
    nu: base.Updates


def _inverse_root(eps, eps_in_sqrt: bool) -> Callable:
    if eps_in_sqrt:
        return lambda n: em.rsqrt(n + eps)
    return lambda n: 1 / (em.sqrt(n) + eps)


def scale_by_rms(decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt: bool = True,
                 bias_correction: bool = False) -> base.GradientTransformation:
    """RMSProp: v <- decay v + (1 - decay) g^2,  u <- g / sqrt(v + eps)
    (g / (sqrt(v) + eps) with eps_in_sqrt=False; v bias-corrected on request)."""
    inverse_root = _inverse_root(eps, eps_in_sqrt)

    def init_fn(params):
        nu = otree.full_like(params, initial_scale)
        if bias_correction:
            return ScaleByRmsWithCountState(count=_zero_count(), nu=nu)
        return ScaleByRmsState(nu=nu)

    def update_fn(updates, state, params=None):
        del params
        nu = otree.update_moment_per_elem_norm(updates, state.nu, decay, 2)
        if bias_correction:
            count_inc = numerics.safe_increment(state.count)
            nu_hat = otree.bias_correction(nu, decay, count_inc)
        else:
            nu_hat = nu
        updates = tree_map(lambda n, g: inverse_root(n) * g, nu_hat, updates)
        if bias_correction:
            return updates, ScaleByRmsWithCountState(count=count_inc, nu=nu)
        return updates, ScaleByRmsState(nu=nu)

    return base.GradientTransformation(init_fn, update_fn)


class ScaleByRStdDevState(NamedTuple):
    mu: base.Updates
    nu: base.Updates


class ScaleByRStdDevWithCountState(NamedTuple):
    count: em.array
    mu: base.Updates
    nu: base.Updates


def scale_by_stddev(decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt: bool = True,
                    bias_correction: bool = False) -> base.GradientTransformation:
    """Centred RMSProp: divides by the moving standard deviation,
    u <- g / sqrt(v - m^2 + eps), m and v the moving averages of g and g^2."""
    inverse_root = _inverse_root(eps, eps_in_sqrt)

    def init_fn(params):
        mu = otree.zeros_like(params)
        nu = otree.full_like(params, initial_scale)
        if bias_correction:
            return ScaleByRStdDevWithCountState(count=_zero_count(), mu=mu, nu=nu)
        return ScaleByRStdDevState(mu=mu, nu=nu)

    def update_fn(updates, state, params=None):
        del params
        mu = otree.update_moment(updates, state.mu, decay, 1)
        nu = otree.update_moment_per_elem_norm(updates, state.nu, decay, 2)
        if bias_correction:
            count_inc = numerics.safe_increment(state.count)
            mu_hat = otree.bias_correction(mu, decay, count_inc)
            nu_hat = otree.bias_correction(nu, decay, count_inc)
        else:
            mu_hat, nu_hat = mu, nu
        scaling = tree_map(lambda m, n: inverse_root(n - numerics.abs_sq(m)), mu_hat, nu_hat)
        updates = tree_map(lambda s, g: s * g, scaling, updates)
        if bias_correction:
            return updates, ScaleByRStdDevWithCountState(count=count_inc, mu=mu, nu=nu)
        return updates, ScaleByRStdDevState(mu=mu, nu=nu)

    return base.GradientTransformation(init_fn, update_fn)


class ScaleByAdaDeltaState(NamedTuple):
    """e_g, e_x: moving averages of the squared gradients and squared updates."""
    e_g: base.Updates
    e_x: base.Updates


def scale_by_adadelta(rho=0.9, eps=1e-6) -> base.GradientTransformation:
    """AdaDelta: u <- sqrt(E[x^2] + eps) / sqrt(E[g^2] + eps) g, the units of the
    update matching the params' (E[x^2] the moving average of past u^2)."""

    def init_fn(params):
        return ScaleByAdaDeltaState(e_g=otree.zeros_like(params), e_x=otree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        e_g = otree.update_moment(updates, state.e_g, rho, 2)
        updates = tree_map(lambda g, cur_e_g, prev_e_x:
                           em.sqrt(prev_e_x + eps) / em.sqrt(cur_e_g + eps) * g,
                           updates, e_g, state.e_x, names=("updates", "e_g", "state.e_x"))
        e_x = otree.update_moment(updates, state.e_x, rho, 2)
        return updates, ScaleByAdaDeltaState(e_g=e_g, e_x=e_x)

    return base.GradientTransformation(init_fn, update_fn)


class ScaleBySM3State(NamedTuple):
    """mu: per leaf, a list with one accumulator vector per axis; nu: the momentum."""
    mu: base.Updates
    nu: base.Updates


def _other_axes(axis: int, ndim: int) -> tuple:
    return tuple(i for i in range(ndim) if i != axis)


def _expanded_shape(shape, axis):
    return [1] * axis + [shape[axis]] + [1] * (len(shape) - axis - 1)


def scale_by_sm3(b1=0.9, b2=1.0, eps=1e-8) -> base.GradientTransformation:
    """SM3: memory-efficient AdaGrad keeping one accumulator per row, column, ...
    (a cover of each array's entries). The second moment of an entry is the min
    over its cover sets plus g^2; u is the momentum (b1) of g / sqrt(that + eps)."""

    def init_fn(params):
        _reject_complex(params)
        mu = tree_map(lambda p: [em.zeros((p.shape[i],), p.dtype) for i in range(p.ndim)],
                      params)
        return ScaleBySM3State(mu, otree.zeros_like(params))

    def _new_accum(g, v):
        coeffs = (1.0 - b2 if b2 != 1.0 else 1.0, b2)
        if g.ndim < 2:
            return coeffs[0] * (g * g) + coeffs[1] * v[0]
        return coeffs[0] * (g * g) + coeffs[1] * functools.reduce(em.minimum, v)

    def _new_mu(g, i):
        return g if g.ndim < 2 else em.max(g, axis=_other_axes(i, g.ndim))

    def update_fn(updates, state, params=None):
        del params
        mu = tree_map(lambda g, v: [em.reshape(v[i], _expanded_shape(g.shape, i))
                                    for i in range(g.ndim)],
                      updates, state.mu, names=("updates", "state.mu"))
        accum = tree_map(_new_accum, updates, mu)
        accum_inv_sqrt = tree_map(lambda t: em.where(t > 0, em.rsqrt(t + eps), 0.0), accum)
        up = tree_map(lambda g, a: g * a, updates, accum_inv_sqrt)
        nu = otree.update_moment(up, state.nu, b1, 1)
        mu = tree_map(lambda g: [_new_mu(g, i) for i in range(g.ndim)], accum)
        return nu, ScaleBySM3State(mu=mu, nu=nu)

    return base.GradientTransformation(init_fn, update_fn)
