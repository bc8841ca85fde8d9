"""The zoom line search (scale_by_zoom_linesearch), L-BFGS's default, and
value_and_grad_from_state, as in optax.

Given the update direction u at params x with value f(x) and gradient g, the
search looks for a step size s meeting the strong Wolfe conditions

    f(x + s u) <= f(x) + slope_rtol s <g, u>          (sufficient decrease)
    |<grad f(x + s u), u>| <= curv_rtol |<g, u>|      (curvature)

first growing s until an interval holding such a step is found, then zooming
into it by cubic, quadratic or bisection interpolation. optax runs the search in
a `lax.while_loop`; here it is a Python loop that evaluates each step's scalars
to decide the next, so it runs eagerly (not under em.compile).
"""
import functools
import inspect
import operator
from typing import Any, Callable, NamedTuple, Optional

import ember.core as em

from . import base, numerics
from . import tree as otree
from ._trees import tree_leaves, tree_map


class ZoomLinesearchState(NamedTuple):
    """The search's progress: the trial step and its value, gradient and slope; the
    interval [low, high] once found; the best step with sufficient decrease so far."""
    count: em.array
    params: base.Params
    updates: base.Updates
    stepsize_guess: em.array
    stepsize: em.array
    value: em.array
    grad: base.Updates
    slope: em.array
    value_init: em.array
    slope_init: em.array
    decrease_error: em.array
    curvature_error: em.array
    error: em.array
    interval_found: em.array
    done: em.array
    failed: em.array
    low: em.array
    value_low: em.array
    slope_low: em.array
    high: em.array
    value_high: em.array
    slope_high: em.array
    cubic_ref: em.array
    value_cubic_ref: em.array
    safe_stepsize: em.array
    safe_value: em.array
    safe_grad: base.Updates


def _where(condition, candidate, default):
    """candidate's leaves where condition holds, else default's."""
    return tree_map(lambda c, d: em.where(condition, c, d), candidate, default)


def _cubicmin(a, fa, fpa, b, fb, c, fc):
    """The minimizer of the cubic through (a, fa) with slope fpa at a, (b, fb), (c, fc)."""
    C = fpa
    db = b - a
    dc = c - a
    denom = (db * dc) ** 2 * (db - dc)
    u = fb - fa - C * db
    v = fc - fa - C * dc
    A = (dc ** 2 * u + (-db ** 2) * v) / denom
    B = ((-dc ** 3) * u + db ** 3 * v) / denom
    radical = B * B - 3.0 * A * C
    return a + (-B + em.sqrt(radical)) / (3.0 * A)


def _quadmin(a, fa, fpa, b, fb):
    """The minimizer of the parabola through (a, fa) with slope fpa at a, and (b, fb)."""
    D = fa
    C = fpa
    db = b - a
    B = (fb - D - C * db) / db ** 2
    return a - C / (2.0 * B)


def _real_dtype(params):
    dtype = tree_leaves(params)[0].dtype
    return em.float32 if dtype == em.complex64 else dtype


def zoom_linesearch(max_linesearch_steps, max_stepsize=None, tol=0.0, increase_factor=2.0,
                    slope_rtol=1e-4, curv_rtol=0.9, approx_dec_rtol: Optional[float] = 1e-6,
                    interval_threshold=1e-5):
    """(init, step, cond) of the zoom line search: init builds the state, step runs
    one trial (searching for an interval, or zooming into it), cond says whether
    to go on."""

    def value_and_slope_on_line(value_and_grad_fn, params, stepsize, updates, fn_kwargs):
        step = otree.add_scale(params, stepsize, updates)
        value_step, grad_step = value_and_grad_fn(step, **fn_kwargs)
        slope_step = em.real(otree.vdot(otree.conj(grad_step), updates))
        return step, value_step, grad_step, slope_step

    def compute_decrease_error(stepsize, value_step, slope_step, value_init, slope_init):
        decrease_error = value_step - value_init - slope_rtol * stepsize * slope_init
        if approx_dec_rtol is not None:
            approx_decrease_error = slope_step - (2 * slope_rtol - 1.0) * slope_init
            delta_values = value_step - value_init - approx_dec_rtol * em.abs(value_init)
            approx_decrease_error = em.maximum(approx_decrease_error, delta_values)
            decrease_error = em.minimum(approx_decrease_error, decrease_error)
        decrease_error = em.maximum(decrease_error, 0.0)
        return em.where(em.isnan(decrease_error), float("inf"), decrease_error)

    def compute_curvature_error(slope_step, slope_init):
        curvature_error = em.maximum(em.abs(slope_step) - curv_rtol * em.abs(slope_init), 0.0)
        return em.where(em.isnan(curvature_error), float("inf"), curvature_error)

    def try_safe_step(state):
        """After a failed search: the safe step (sufficient decrease, not curvature) if
        there is one, or stay put when even the first trial left the domain."""
        outside_domain = em.isinf(state.decrease_error)
        stepsize, value, grad = _where(
            (state.safe_stepsize > 0.0) | outside_domain,
            [state.safe_stepsize, state.safe_value, state.safe_grad],
            [state.stepsize, state.value, state.grad])
        return otree.cast_like(state._replace(stepsize=stepsize, grad=grad, value=value), state)

    def search_interval(state, value_and_grad_fn, fn_kwargs):
        iter_num = state.count
        new_stepsize = em.where(iter_num == 0, state.stepsize_guess,
                                increase_factor * state.stepsize)
        if max_stepsize is not None:
            max_stepsize_reached = new_stepsize >= max_stepsize
            new_stepsize = em.minimum(new_stepsize, max_stepsize)
        else:
            max_stepsize_reached = em.array(False)
        _, new_value, new_grad, new_slope = value_and_slope_on_line(
            value_and_grad_fn, state.params, new_stepsize, state.updates, fn_kwargs)
        decrease_error = compute_decrease_error(new_stepsize, new_value, new_slope,
                                                state.value_init, state.slope_init)
        curvature_error = compute_curvature_error(new_slope, state.slope_init)
        new_error = em.maximum(decrease_error, curvature_error)
        safe_stepsize, safe_value, safe_grad = _where(
            decrease_error <= tol, [new_stepsize, new_value, new_grad],
            [state.safe_stepsize, state.safe_value, state.safe_grad])
        set_high_to_new = (decrease_error > 0.0) | ((new_value >= state.value) & (iter_num > 0))
        set_low_to_new = (new_slope >= 0.0) & ~set_high_to_new
        low, value_low, slope_low, high, value_high, slope_high = _where(
            set_low_to_new,
            [new_stepsize, new_value, new_slope, state.stepsize, state.value, state.slope],
            [state.stepsize, state.value, state.slope, new_stepsize, new_value, new_slope])
        interval_found = set_high_to_new | set_low_to_new | (new_error <= tol)
        done = (new_error <= tol) | (max_stepsize_reached & ~interval_found)
        failed = ((iter_num + 1) >= max_linesearch_steps) & ~done
        new_state = ZoomLinesearchState(
            count=numerics.safe_increment(iter_num), params=state.params, updates=state.updates,
            stepsize_guess=state.stepsize_guess, stepsize=new_stepsize, value=new_value,
            grad=new_grad, slope=new_slope, value_init=state.value_init,
            slope_init=state.slope_init, decrease_error=decrease_error,
            curvature_error=curvature_error, error=new_error, interval_found=interval_found,
            done=done, failed=failed, low=low, value_low=value_low, slope_low=slope_low,
            high=high, value_high=value_high, slope_high=slope_high, cubic_ref=low,
            value_cubic_ref=value_low, safe_stepsize=safe_stepsize, safe_value=safe_value,
            safe_grad=safe_grad)
        return otree.cast_like(new_state, state)

    def zoom_into_interval(state, value_and_grad_fn, fn_kwargs):
        low, value_low, slope_low = state.low, state.value_low, state.slope_low
        high, value_high, slope_high = state.high, state.value_high, state.slope_high
        delta = em.abs(high - low)
        left, right = em.minimum(high, low), em.maximum(high, low)
        cubic_chk, quad_chk = 0.2 * delta, 0.1 * delta
        too_small_int = delta <= interval_threshold
        middle_cubic = _cubicmin(low, value_low, slope_low, high, value_high, state.cubic_ref,
                                 state.value_cubic_ref)
        use_cubic = (middle_cubic > left + cubic_chk) & (middle_cubic < right - cubic_chk)
        middle_quad = _quadmin(low, value_low, slope_low, high, value_high)
        use_quad = ~use_cubic & (middle_quad > left + quad_chk) & (middle_quad < right - quad_chk)
        use_bisection = ~use_cubic & ~use_quad
        middle = em.where(use_cubic, middle_cubic, state.cubic_ref)
        middle = em.where(use_quad, middle_quad, middle)
        middle = em.where(use_bisection, (low + high) / 2.0, middle)
        _, value_middle, grad_middle, slope_middle = value_and_slope_on_line(
            value_and_grad_fn, state.params, middle, state.updates, fn_kwargs)
        decrease_error = compute_decrease_error(middle, value_middle, slope_middle,
                                                state.value_init, state.slope_init)
        curvature_error = compute_curvature_error(slope_middle, state.slope_init)
        new_error = em.maximum(decrease_error, curvature_error)
        update_safe = (decrease_error <= tol) & (value_middle < state.safe_value)
        safe_stepsize, safe_value, safe_grad = _where(
            update_safe, [middle, value_middle, grad_middle],
            [state.safe_stepsize, state.safe_value, state.safe_grad])
        done = new_error <= tol
        set_high_to_middle = (decrease_error > 0.0) | (value_middle >= value_low)
        set_high_to_low = (slope_middle * (high - low) >= 0.0) & ~set_high_to_middle
        set_low_to_middle = ~set_high_to_middle
        middle_point = [middle, value_middle, slope_middle]
        new_high = _where(set_high_to_middle, middle_point, [high, value_high, slope_high])
        new_high = _where(set_high_to_low, [low, value_low, slope_low], new_high)
        new_low = _where(set_low_to_middle, middle_point, [low, value_low, slope_low])
        new_cubic_ref, new_value_cubic_ref = _where(set_high_to_middle | set_high_to_low,
                                                    [high, value_high], [low, value_low])
        max_iter_reached = (state.count + 1) >= max_linesearch_steps
        failed = (max_iter_reached | (too_small_int & (safe_stepsize > 0.0))) & ~done
        new_state = ZoomLinesearchState(
            count=numerics.safe_increment(state.count), params=state.params,
            updates=state.updates, stepsize_guess=state.stepsize_guess, stepsize=middle,
            value=value_middle, grad=grad_middle, slope=slope_middle,
            value_init=state.value_init, slope_init=state.slope_init,
            decrease_error=decrease_error, curvature_error=curvature_error, error=new_error,
            interval_found=state.interval_found, done=done, failed=failed, low=new_low[0],
            value_low=new_low[1], slope_low=new_low[2], high=new_high[0],
            value_high=new_high[1], slope_high=new_high[2], cubic_ref=new_cubic_ref,
            value_cubic_ref=new_value_cubic_ref, safe_stepsize=safe_stepsize,
            safe_value=safe_value, safe_grad=safe_grad)
        return otree.cast_like(new_state, state)

    def init_fn(updates, params, *, value, grad, prev_stepsize=1.0,
                initial_guess_strategy: str = "one"):
        val_dtype = _real_dtype(params)
        if initial_guess_strategy == "one":
            stepsize_guess = em.array(1.0, val_dtype)
        elif initial_guess_strategy == "keep":
            stepsize_guess = prev_stepsize
        else:
            raise ValueError(f"Unknown initial guess strategy: {initial_guess_strategy}")
        value = em.asarray(value)
        slope = em.real(otree.vdot(updates, grad))
        inf, zero = em.array(float("inf"), val_dtype), em.array(0.0, val_dtype)
        return ZoomLinesearchState(
            count=em.array(0, em.int32), params=params, updates=updates,
            stepsize_guess=stepsize_guess, stepsize=zero, value=value.astype(val_dtype),
            grad=grad, slope=slope, value_init=value, slope_init=slope, decrease_error=inf,
            curvature_error=inf, error=inf, interval_found=em.array(False),
            done=em.array(False), failed=em.array(False), low=zero, value_low=value,
            slope_low=slope, high=zero, value_high=value, slope_high=slope, cubic_ref=zero,
            value_cubic_ref=value, safe_stepsize=zero, safe_value=value, safe_grad=grad)

    def step_fn(state, *, value_and_grad_fn, fn_kwargs):
        step = zoom_into_interval if state.interval_found.item() else search_interval
        new_state = step(state, value_and_grad_fn, fn_kwargs)
        if new_state.failed.item():
            new_state = try_safe_step(new_state)
        return otree.cast_like(new_state, state)

    def cond_fn(state) -> bool:
        return not (state.done | state.failed).item()

    return init_fn, step_fn, cond_fn


class ZoomLinesearchInfo(NamedTuple):
    num_linesearch_steps: em.array
    decrease_error: em.array
    curvature_error: em.array


class ScaleByZoomLinesearchState(NamedTuple):
    """The step size taken, and the value and gradient at the new params (which
    value_and_grad_from_state hands back instead of recomputing them)."""
    learning_rate: em.array
    value: em.array
    grad: base.Updates
    info: ZoomLinesearchInfo


def _extract_fns_kwargs(fns, kwargs):
    """For each fn, the kwargs its signature names; and the kwargs none of them take."""
    fns_arg_names = [list(inspect.signature(fn).parameters.keys()) for fn in fns]
    fns_kwargs = [{k: v for k, v in kwargs.items() if k in names} for names in fns_arg_names]
    all_names = functools.reduce(operator.add, fns_arg_names)
    return fns_kwargs, {k: v for k, v in kwargs.items() if k not in all_names}


def scale_by_zoom_linesearch(max_linesearch_steps, max_learning_rate=None, tol=0.0,
                             increase_factor=2.0, slope_rtol=1e-4, curv_rtol=0.9,
                             approx_dec_rtol: Optional[float] = 1e-6, stepsize_precision=1e-5,
                             initial_guess_strategy: str = "keep"
                             ) -> base.GradientTransformationExtraArgs:
    """u <- s u, s found by the zoom line search on value_fn along u.

    update takes the keywords value (f at params), grad (its gradient) and value_fn
    (the objective, differentiated with em.value_and_grad); further keywords go to
    value_fn when its signature names them."""
    init_ls, step_ls, cond_ls = zoom_linesearch(
        max_linesearch_steps=max_linesearch_steps, max_stepsize=max_learning_rate, tol=tol,
        increase_factor=increase_factor, slope_rtol=slope_rtol, curv_rtol=curv_rtol,
        approx_dec_rtol=approx_dec_rtol, interval_threshold=stepsize_precision)

    def init_fn(params):
        val_dtype = _real_dtype(params)
        inf = em.array(float("inf"), val_dtype)
        return ScaleByZoomLinesearchState(
            learning_rate=em.array(1.0, val_dtype), value=inf, grad=otree.zeros_like(params),
            info=ZoomLinesearchInfo(num_linesearch_steps=em.array(0, em.int32),
                                    decrease_error=inf, curvature_error=inf))

    def update_fn(updates, state, params, *, value, grad, value_fn, **extra_args):
        (fn_kwargs,), remaining = _extract_fns_kwargs((value_fn,), extra_args)
        if remaining:
            raise TypeError("Unexpected keyword arguments passed to "
                            "`scale_by_zoom_linesearch.update`. These arguments were not "
                            f"consumed by `value_fn`: {sorted(remaining)}. Ensure that all "
                            "extra keyword arguments are accepted by `value_fn`.")
        value_and_grad_fn = em.value_and_grad(value_fn)
        ls_state = init_ls(updates, params, value=value, grad=grad,
                           prev_stepsize=state.learning_rate,
                           initial_guess_strategy=initial_guess_strategy)
        while cond_ls(ls_state):
            ls_state = step_ls(ls_state, value_and_grad_fn=value_and_grad_fn,
                               fn_kwargs=fn_kwargs)
        learning_rate = ls_state.stepsize
        info = ZoomLinesearchInfo(num_linesearch_steps=ls_state.count,
                                  decrease_error=ls_state.decrease_error,
                                  curvature_error=ls_state.curvature_error)
        new_state = ScaleByZoomLinesearchState(learning_rate=learning_rate, value=ls_state.value,
                                               grad=ls_state.grad, info=info)
        return otree.scale(learning_rate, updates), otree.cast_like(new_state, state)

    return base.GradientTransformationExtraArgs(init_fn, update_fn)


def _find_field(tree, name):
    """The values of every NamedTuple field called name inside tree."""
    found = []
    if isinstance(tree, tuple) and hasattr(tree, "_fields") and name in tree._fields:
        found.append(getattr(tree, name))
    if isinstance(tree, (list, tuple)):
        for child in tree:
            found.extend(_find_field(child, name))
    elif isinstance(tree, dict):
        for child in tree.values():
            found.extend(_find_field(child, name))
    return found


def value_and_grad_from_state(value_fn: Callable) -> Callable:
    """A function (params, *args, state=opt_state, **kwargs) -> (value, grad) that
    reuses the value and gradient a line search left in the state (computed at the
    new params already) and only evaluates value_fn when they are not finite
    (the first step)."""

    def _value_and_grad(params, *fn_args, state, **fn_kwargs):
        values, grads = _find_field(state, "value"), _find_field(state, "grad")
        if not values or not grads:
            raise ValueError("Value or gradient not found in the state. Make sure that these "
                             "values are stored in the state by the optimizer.")
        value, grad = values[0], grads[0]
        if (~em.isinf(value) & ~em.isnan(value)).item():
            return value, grad
        return em.value_and_grad(value_fn)(params, *fn_args, **fn_kwargs)

    return _value_and_grad
