"""eval and async_eval over arrays and pytrees of arrays."""
import optree

from ._ffi import ffi, lib, last_error
from .array import array


def _arrays_in(args):
    leaves = optree.tree_leaves(args, none_is_leaf=False)
    return [x for x in leaves if isinstance(x, array)]


def eval(*args) -> None:
    """Computes every array in args (arrays or pytrees of them)."""
    arrays = _arrays_in(args)
    pending = [x._p for x in arrays if not lib.em_is_evaluated(x._p)]
    if not pending:
        return
    status = lib.em_eval(len(pending), ffi.new("em_array*[]", pending))
    if status:
        raise last_error()


def async_eval(*args) -> None:
    """Starts computing the arrays in args. On the CPU backend evaluation runs
    at once; a later eval or read of the values finds them ready."""
    eval(*args)
