"""eval and async_eval over arrays and pytrees of arrays."""
import threading

import optree

from ._ffi import ffi, lib, last_error
from .array import array


def _pending(args):
    leaves = optree.tree_leaves(args, none_is_leaf=False)
    return [x for x in leaves if isinstance(x, array) and not lib.em_is_evaluated(x._p)]


def eval(*args) -> None:
    """Computes every array in args (arrays or pytrees of them)."""
    # One call into C: the engine skips arrays that already have values.
    arrays = [x._p for x in optree.tree_leaves(args, none_is_leaf=False)
              if isinstance(x, array)]
    if arrays and lib.em_eval(len(arrays), ffi.new("em_array*[]", arrays)):
        raise last_error()


def async_eval(*args) -> None:
    """Starts computing the arrays in args on a background thread and returns.

    The engine runs one evaluation at a time, so a later `eval`, `item()` or
    numpy conversion waits for this one. An error met in the background
    leaves the arrays unevaluated; the next `eval` of them raises it."""
    pending = _pending(args)
    if not pending:
        return
    pointers = ffi.new("em_array*[]", [x._p for x in pending])

    def run(arrays=pending):  # holds the arrays alive until the work is done
        lib.em_eval(len(arrays), pointers)
        lib.em_clear_error()

    threading.Thread(target=run, name="ember-async-eval", daemon=True).start()


def depends(inputs, dependencies):
    """Arrays equal to inputs that also depend on dependencies in the graph
    (mlx.core.depends): evaluating one first evaluates every dependency.

    Each output is where(c, x, x) with c a scalar read from the
    dependencies, so its value and gradient are x's and c only orders the
    work; building c reads each dependency once (an `any` over it)."""
    from .elementwise import logical_or, not_equal, stop_gradient
    from .manipulation import where
    from .reductions import any as _any
    single = isinstance(inputs, array)
    inputs = [inputs] if single else list(inputs)
    deps = [dependencies] if isinstance(dependencies, array) else list(dependencies)
    for x in inputs + deps:
        if not isinstance(x, array):
            raise TypeError(f"[depends] inputs and dependencies must be arrays, got "
                            f"{type(x).__name__}")
    if not deps:
        return inputs[0] if single else inputs
    flag = None
    for d in deps:
        d = stop_gradient(d)
        # d != d holds only for NaN; the flag's value never matters.
        seen = _any(not_equal(d, d))
        flag = seen if flag is None else logical_or(flag, seen)
    out = [where(flag, x, x) for x in inputs]
    return out[0] if single else out
