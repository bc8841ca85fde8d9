"""Math on pytrees of ember arrays: `optim.tree`, as `optax.tree` is.

Every function maps over leaves with the same walk as optax (optree, dict keys
sorted, None an empty subtree), so results line up leaf for leaf with optax's.
The moment updates and bias correction here are the building blocks of the
adaptive optimizers in transforms/:

    update_moment:   m <- (1 - decay) g^order + decay m
    bias_correction: m_hat = m / (1 - decay^count)
"""
import builtins
import functools
import operator
from typing import Any, Optional

import ember.core as em

from ._trees import is_none, tree_leaves, tree_map
from .numerics import abs_sq


def canonicalize_dtype(dtype) -> Optional[em.Dtype]:
    """None stays None; anything naming a dtype (ember, numpy, jnp, a string) becomes
    an ember Dtype."""
    return None if dtype is None else em.dtypes.as_dtype(dtype)


def add(tree_x: Any, tree_y: Any, *other_trees: Any) -> Any:
    """tree_x + tree_y (+ ...), leaf by leaf."""
    return tree_map(lambda *leaves: builtins.sum(leaves[1:], leaves[0]), tree_x, tree_y,
                    *other_trees)


def sub(tree_x: Any, tree_y: Any) -> Any:
    """tree_x - tree_y, leaf by leaf."""
    return tree_map(operator.sub, tree_x, tree_y)


def mul(tree_x: Any, tree_y: Any) -> Any:
    """tree_x * tree_y, leaf by leaf."""
    return tree_map(operator.mul, tree_x, tree_y)


def div(tree_x: Any, tree_y: Any) -> Any:
    """tree_x / tree_y, leaf by leaf."""
    return tree_map(operator.truediv, tree_x, tree_y)


def scale(scalar, tree: Any) -> Any:
    """scalar * tree."""
    return tree_map(lambda x: scalar * x, tree)


def add_scale(tree_x: Any, scalar, tree_y: Any) -> Any:
    """tree_x + scalar * tree_y (None leaves of tree_x stay None)."""
    return tree_map(lambda x, y: None if x is None else x + scalar * y, tree_x, tree_y,
                    is_leaf=is_none)


def _vdot(a, b):
    a, b = em.asarray(a), em.asarray(b)
    if em.issubdtype(a.dtype, em.complexfloating):
        a = em.conj(a)
    return em.sum(a * b)


def vdot(tree_x: Any, tree_y: Any):
    """The inner product sum_i <conj(x_i), y_i> of two trees, a scalar."""
    return functools.reduce(operator.add, tree_leaves(tree_map(_vdot, tree_x, tree_y)), 0)


def sum(tree: Any):  # noqa: A001  (optax.tree.sum)
    """The sum of all elements of all leaves, a scalar (0 for an empty tree)."""
    return functools.reduce(operator.add, tree_leaves(tree_map(em.sum, tree)), 0)


def max(tree: Any):  # noqa: A001
    """The largest element in the tree (-inf for an empty tree)."""
    maxima = [em.max(x) for x in tree_leaves(tree) if em.asarray(x).size]
    return functools.reduce(em.maximum, maxima, -float("inf"))


def min(tree: Any):  # noqa: A001
    """The smallest element in the tree (inf for an empty tree)."""
    minima = [em.min(x) for x in tree_leaves(tree) if em.asarray(x).size]
    return functools.reduce(em.minimum, minima, float("inf"))


def size(tree: Any) -> int:
    """The total number of elements in the tree."""
    return builtins.sum(em.asarray(x).size for x in tree_leaves(tree))


def conj(tree: Any) -> Any:
    return tree_map(em.conj, tree)


def real(tree: Any) -> Any:
    return tree_map(em.real, tree)


def _as_array(x):
    return x if isinstance(x, em.array) else em.asarray(x)


def norm(tree: Any, ord=None, squared: bool = False):  # noqa: A002
    """The vector norm of all elements of the tree together: ord None or 2, 1, or inf."""
    if ord is None or ord == 2:
        sqnorm = _as_array(sum(tree_map(abs_sq, tree)))
        return sqnorm if squared else em.sqrt(sqnorm)
    if ord == 1:
        result = _as_array(sum(tree_map(em.abs, tree)))
    elif ord in (float("inf"), "inf", "infinity"):
        result = _as_array(max(tree_map(em.abs, tree)))
    else:
        raise ValueError(f"Unsupported ord: {ord}")
    return abs_sq(result) if squared else result


def global_norm(updates: Any):
    """sqrt(sum of |x|^2 over every element of every leaf): the norm clipping uses."""
    return em.sqrt(_as_array(sum(tree_map(abs_sq, updates))))


def batch_shape(tree: Any, shape: tuple = ()) -> Any:
    """Each leaf broadcast to leading batch dimensions `shape`."""
    return tree_map(lambda x: em.broadcast_to(x, (*shape, *em.asarray(x).shape)), tree)


def zeros_like(tree: Any, dtype=None) -> Any:
    """Zeros with each leaf's shape (and dtype, unless one is given)."""
    dtype = canonicalize_dtype(dtype)
    return tree_map(lambda x: em.zeros(x.shape, dtype or x.dtype), tree)


def ones_like(tree: Any, dtype=None) -> Any:
    dtype = canonicalize_dtype(dtype)
    return tree_map(lambda x: em.ones(x.shape, dtype or x.dtype), tree)


def full_like(tree: Any, fill_value, dtype=None) -> Any:
    """fill_value in each leaf's shape (and dtype, unless one is given)."""
    dtype = canonicalize_dtype(dtype)

    def fill(x):
        target = dtype or x.dtype
        value = fill_value.astype(target) if isinstance(fill_value, em.array) else \
            em.array(fill_value, target)  # not em.full(..., 0.1, float64): it rounds via float32
        return em.full(x.shape, value)
    return tree_map(fill, tree)


def clip(tree: Any, min_value=None, max_value=None) -> Any:
    """Each leaf clipped to [min_value, max_value] (None: no bound on that side)."""
    return tree_map(lambda g: em.clip(g, min_value, max_value), tree)


def _power(g, order):
    if order == 1:
        return g
    if order == 2:
        return g * g
    return g ** order


def update_moment(updates: Any, moments: Any, decay, order) -> Any:
    """The exponential moving average of the order-th power: (1 - decay) g^order + decay m."""
    return tree_map(
        lambda g, t: None if g is None else (1 - decay) * _power(g, order) + decay * t,
        updates, moments, names=("updates", "moments"), is_leaf=is_none)


def update_infinity_moment(updates: Any, moments: Any, decay, eps) -> Any:
    """The moving infinity norm: max(|g| + eps, decay m)."""
    return tree_map(
        lambda g, t: g if g is None else em.maximum(em.abs(g) + eps, decay * t),
        updates, moments, names=("updates", "moments"), is_leaf=is_none)


def update_moment_per_elem_norm(updates: Any, moments: Any, decay, order) -> Any:
    """The moving average of |g|^order: (1 - decay) |g|^order + decay m (complex g allowed)."""
    def orderth_norm(g):
        if not em.issubdtype(g.dtype, em.complexfloating):
            return _power(g, order)
        half_order = order / 2
        if float(half_order).is_integer():
            half_order = int(half_order)
        return _power(abs_sq(g), half_order)
    return tree_map(
        lambda g, t: None if g is None else (1 - decay) * orderth_norm(g) + decay * t,
        updates, moments, names=("updates", "moments"), is_leaf=is_none)


def _correction_dtype(dtype):
    """float64 leaves are corrected in float64; every other dtype in float32, then cast
    (as JAX computes decay**count in its default float type)."""
    return em.float64 if dtype == em.float64 else em.float32


def bias_correction(moment: Any, decay, count) -> Any:
    """moment / (1 - decay^count): undoes the pull toward the zero initial moment.

    The factor goes to 1 as count grows."""
    count = em.asarray(count)
    factors = {}

    def correct(t):
        dtype = _correction_dtype(t.dtype)
        if dtype not in factors:
            factors[dtype] = 1 - decay ** count.astype(dtype)
        return t / factors[dtype].astype(t.dtype)
    return tree_map(correct, moment)


def where(condition, tree_x: Any, tree_y: Any) -> Any:
    """tree_x's leaves where condition holds, else tree_y's."""
    return tree_map(lambda x, y: em.where(condition, x, y), tree_x, tree_y)


def allclose(a: Any, b: Any, rtol=1e-05, atol=1e-08, equal_nan: bool = False):
    """Whether every pair of leaves is close (em.allclose), as a boolean array."""
    leaves = tree_leaves(tree_map(
        lambda x, y: em.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan), a, b))
    return functools.reduce(em.logical_and, leaves, em.array(True))


def cast(tree: Any, dtype) -> Any:
    """Each leaf cast to dtype; the tree as it is when dtype is None."""
    dtype = canonicalize_dtype(dtype)
    if dtype is None:
        return tree
    return tree_map(lambda t: t.astype(dtype), tree)


def cast_like(tree: Any, other_tree: Any) -> Any:
    """Each leaf cast to the dtype of the matching leaf of other_tree."""
    return tree_map(lambda t, o: t.astype(o.dtype) if hasattr(o, "dtype") else t,
                    tree, other_tree)


def _higher(d1, d2):
    promoted = em.promote_types(d1, d2)
    if promoted not in (d1, d2):
        raise ValueError(f"Cannot compare dtype of dtype1={d1} and dtype2={d2}. Neither {d1} "
                         f"nor {d2} can be promoted to the other.")
    return promoted


def _lower(d1, d2):
    return d2 if _higher(d1, d2) == d1 else d1


def dtype(tree: Any, mixed_dtype_handler: Optional[str] = None):
    """The dtype of the tree's leaves: the common one (an error if they differ),
    or with mixed_dtype_handler 'promote', 'highest' or 'lowest' a combined one."""
    dtypes = [em.asarray(x).dtype for x in tree_leaves(tree)]
    if not dtypes:
        return em.float32
    if mixed_dtype_handler is None:
        if any(d != dtypes[0] for d in dtypes):
            raise ValueError(f"[optim.tree.dtype] leaves have different dtypes "
                             f"{sorted(set(map(str, dtypes)))}; pass mixed_dtype_handler")
        return dtypes[0]
    handlers = {"promote": em.promote_types, "highest": _higher, "lowest": _lower}
    if mixed_dtype_handler not in handlers:
        raise ValueError(f"Invalid value for mixed_dtype_handler={mixed_dtype_handler!r}, "
                         'possible values are: None, "promote", "highest", "lowest".')
    return functools.reduce(handlers[mixed_dtype_handler], dtypes)
