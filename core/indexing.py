"""Indexing: `a[idx]`, `a[idx] = v`, `a.at[idx].op(v)`, take, take_along_axis,
put_along_axis.

numpy's rules, built from primitives:
- ints, slices (any step), None and Ellipsis become one SLICE view plus a
  reshape;
- integer arrays (advanced indices) are broadcast together, folded into one
  linear index over the indexed axes, and gathered with TAKE; the result's
  broadcast axes go where numpy puts them (in place when the advanced indices
  are adjacent, first otherwise);
- assignment and `.at` updates are SLICE_UPDATE (basic indices) or
  SCATTER_ALONG_AXIS (advanced ones; `.at[...].add` accumulates duplicates).
Out-of-range integer arrays raise IndexError when evaluated. Boolean masks
select a data-dependent number of elements, which a lazy graph cannot
shape: use `where` instead.
"""
import numbers

from . import dtypes as _dt
from ._ffi import lib
from .array import _op, array, asarray
from .manipulation import broadcast_arrays, broadcast_to, reshape, slice_axes, \
    slice_update_axes, transpose, where

_NEWAXIS = object()


class _Plan:
    """How an index applies: a SLICE over every source axis, then (maybe) a
    gather over the advanced axes, then the final arrangement."""

    def __init__(self, shape, index):
        if not isinstance(index, tuple):
            index = (index,)
        index = tuple(_as_index_item(i) for i in index)
        has_adv = any(isinstance(i, array) for i in index)
        consumed = sum(1 for i in index if i is not None and i is not Ellipsis)
        if consumed > len(shape):
            raise IndexError(f"too many indices for array of dimension {len(shape)}: "
                             f"{consumed} given")
        if sum(1 for i in index if i is Ellipsis) > 1:
            raise IndexError("an index can only have a single ellipsis ('...')")
        expanded = []
        for i in index:
            if i is Ellipsis:
                expanded += [slice(None)] * (len(shape) - consumed)
            else:
                expanded.append(i)
        expanded += [slice(None)] * (len(shape) - sum(1 for i in expanded if i is not None))

        self.starts, self.stops, self.steps = [], [], []
        self.layout = []          # per result entry: _NEWAXIS, ("src", axis) or ("adv", axis)
        self.squeezed = []        # source axes removed by an int (basic indexing only)
        self.adv = []             # (source axis, index array)
        axis = 0
        for item in expanded:
            if item is None:
                self.layout.append(_NEWAXIS)
                continue
            dim = shape[axis]
            if isinstance(item, int):
                i = item + dim if item < 0 else item
                if not 0 <= i < dim:
                    raise IndexError(f"index {item} is out of bounds for axis {axis} with size {dim}")
                if has_adv:
                    self._full(dim)
                    self.adv.append((axis, array(i)))
                    self.layout.append(("adv", axis))
                else:
                    self.starts.append(i)
                    self.stops.append(i + 1)
                    self.steps.append(1)
                    self.squeezed.append(axis)
            elif isinstance(item, slice):
                r = range(dim)[item]
                self.starts.append(r.start)
                self.stops.append(r.stop)
                self.steps.append(r.step)
                self.layout.append(("src", axis))
            else:
                if item.dtype == _dt.bool_:
                    raise IndexError("boolean mask indexing selects a data-dependent number of "
                                     "elements; use ember.core.where instead")
                if not _dt.is_integer(item.dtype):
                    raise IndexError(f"arrays used as indices must be integers, got {item.dtype}")
                self._full(dim)
                self.adv.append((axis, item))
                self.layout.append(("adv", axis))
            axis += 1

    def _full(self, dim):
        self.starts.append(0)
        self.stops.append(dim)
        self.steps.append(1)

    def basic_view(self, a, stream=None):
        """The strided view that the ints and slices select (ints keep a size-1 axis)."""
        shape = a.shape
        if (all(s == 0 for s in self.starts) and list(self.stops) == list(shape)
                and all(s == 1 for s in self.steps)):
            return a
        return slice_axes(a, self.starts, self.stops, self.steps, stream=stream)

    def adv_adjacent(self):
        positions = [k for k, e in enumerate(self.layout) if e is not _NEWAXIS and e[0] == "adv"]
        return positions == list(range(positions[0], positions[0] + len(positions)))


def _as_index_item(i):
    if i is None or i is Ellipsis or isinstance(i, slice):
        return i
    if isinstance(i, bool):
        raise IndexError("boolean scalars are not supported as indices")
    if isinstance(i, numbers.Integral):
        return int(i)
    if isinstance(i, array):
        return i
    if isinstance(i, (list, tuple)) or hasattr(i, "__array__"):
        i = asarray(i)
        # An empty list holds no values to say it is integer; numpy treats it as one.
        return i.astype(_dt.int32) if i.size == 0 and i.dtype == _dt.float32 else i
    if hasattr(i, "__index__"):
        return int(i.__index__())
    raise IndexError(f"unsupported index {i!r}: use ints, slices, None, Ellipsis or integer arrays")


def _prod(sizes):
    out = 1
    for n in sizes:
        out *= n
    return out


def _linear_index(view_shape, plan, stream=None):
    """One index into the advanced axes merged row-major, plus the broadcast shape.
    An out-of-range component makes the whole index out of range, so TAKE raises."""
    axes = [ax for ax, _ in plan.adv]
    idx = broadcast_arrays(*(i for _, i in plan.adv), stream=stream)
    lin = None
    valid = None
    total = 1
    for ax in axes:
        total *= view_shape[ax]
    stride = total
    for ax, i in zip(axes, idx):
        dim = view_shape[ax]
        stride //= dim if dim else 1
        i = i.astype(_dt.int64, stream=stream)
        ok = (i >= -dim) & (i < dim)
        i = where(i < 0, i + dim, i, stream=stream)
        term = i * stride
        lin = term if lin is None else lin + term
        valid = ok if valid is None else valid & ok
    lin = where(valid, lin, total, stream=stream)
    return lin, idx[0].shape, axes


def getitem(a: array, index):
    plan = _Plan(a.shape, index)
    view = plan.basic_view(a)
    if not plan.adv:
        shape = []
        for e in plan.layout:
            shape.append(1 if e is _NEWAXIS else view.shape[e[1]])
        shape = tuple(shape)
        return view if shape == view.shape else reshape(view, shape)
    if len(plan.adv) == 1 and _NEWAXIS not in plan.layout:
        ax, idx = plan.adv[0]
        return _op(lib.EM_P_TAKE, [view, idx], (ax,))
    gathered, bshape, axes = _gather(view, plan)
    return _arrange(gathered, view.shape, plan, bshape, axes)


def _gather(view, plan, stream=None):
    lin, bshape, axes = _linear_index(view.shape, plan, stream)
    rest = [d for d in range(view.ndim) if d not in axes]
    moved = transpose(view, axes + rest) if axes + rest != list(range(view.ndim)) else view
    merged = reshape(moved, (_prod(view.shape[d] for d in axes),) +
                     tuple(view.shape[d] for d in rest))
    return _op(lib.EM_P_TAKE, [merged, lin], (0,)), bshape, axes


def _result_order(view_shape, plan, bshape):
    """The final dims as entries: ("b", k) for broadcast dims, ("src", axis), or _NEWAXIS."""
    order = []
    if not plan.adv_adjacent():
        order += [("b", k) for k in range(len(bshape))]
    placed = not plan.adv_adjacent()
    for e in plan.layout:
        if e is _NEWAXIS or e[0] == "src":
            order.append(e)
        elif not placed:
            order += [("b", k) for k in range(len(bshape))]
            placed = True
    return order


def _arrange(gathered, view_shape, plan, bshape, axes):
    """Moves the gathered (broadcast..., rest...) result into numpy's order."""
    order = _result_order(view_shape, plan, bshape)
    rest = [d for d in range(len(view_shape)) if d not in axes]
    position = {("b", k): k for k in range(len(bshape))}
    position.update({("src", d): len(bshape) + j for j, d in enumerate(rest)})
    perm = [position[e] for e in order if e is not _NEWAXIS]
    out = transpose(gathered, perm) if perm != list(range(len(perm))) else gathered
    shape = [1 if e is _NEWAXIS else out.shape[perm.index(position[e])] for e in order]
    return reshape(out, tuple(shape)) if tuple(shape) != out.shape else out


def _update(a: array, index, value, mode):
    """a with a[index] combined with value by `mode` (an em_scatter_mode)."""
    plan = _Plan(a.shape, index)
    value = asarray(value)
    if value.dtype != a.dtype:
        value = value.astype(a.dtype)
    if not plan.adv:
        target = getitem(a, index)
        if mode != lib.EM_SCATTER_SET:
            value = _combine(target, value, mode)
        region = tuple(range(st, sp, s).__len__() for st, sp, s in
                       zip(plan.starts, plan.stops, plan.steps))
        value = reshape(_fit(value, target.shape), region)
        return slice_update_axes(a, value, plan.starts, plan.stops, plan.steps)
    # Scatter into the block the slices select, then write the block back.
    view = plan.basic_view(a)
    updated = _scatter(view, plan, value, mode)
    if view is a:
        return updated
    return slice_update_axes(a, updated, plan.starts, plan.stops, plan.steps)


def _scatter(view, plan, value, mode):
    """view with its advanced-indexed elements combined with value by `mode`."""
    view_shape = view.shape
    lin, bshape, axes = _linear_index(view_shape, plan)
    rest = [d for d in range(view.ndim) if d not in axes]
    moved = transpose(view, axes + rest)
    merged_shape = (_prod(view_shape[d] for d in axes),) + tuple(view_shape[d] for d in rest)
    merged = reshape(moved, merged_shape)
    # Bring the value into (broadcast..., rest...) order, the gather's layout.
    order = _result_order(view_shape, plan, bshape)
    result_shape = []
    for e in order:
        if e is _NEWAXIS:
            result_shape.append(1)
        elif e[0] == "b":
            result_shape.append(bshape[e[1]])
        else:
            result_shape.append(view_shape[e[1]])
    value = _fit(value, tuple(result_shape))
    kept = [k for k, e in enumerate(order) if e is not _NEWAXIS]
    value = reshape(value, tuple(result_shape[k] for k in kept))
    entries = [order[k] for k in kept]
    position = {("b", k): k for k in range(len(bshape))}
    position.update({("src", d): len(bshape) + j for j, d in enumerate(rest)})
    inverse = sorted(range(len(entries)), key=lambda k: position[entries[k]])
    value = transpose(value, inverse)
    nb = _prod(bshape)
    value = reshape(value, (nb,) + tuple(view_shape[d] for d in rest))
    idx = reshape(lin, (nb,) + (1,) * len(rest))
    scattered = _op(lib.EM_P_SCATTER_ALONG_AXIS, [merged, idx, value], (0, mode))
    unmerged = reshape(scattered, tuple(view_shape[d] for d in axes + rest))
    back = sorted(range(view.ndim), key=lambda k: (axes + rest)[k])
    return transpose(unmerged, back)


def _fit(value, shape):
    """value broadcast to shape; leading size-1 axes beyond shape's are dropped, as numpy does."""
    shape = tuple(shape)
    extra = value.ndim - len(shape)
    if extra > 0 and all(n == 1 for n in value.shape[:extra]):
        value = reshape(value, value.shape[extra:])
    if value.ndim > len(shape) or any(v not in (1, s) for v, s in
                                      zip(value.shape[::-1], shape[::-1])):
        raise ValueError(f"[setitem] cannot broadcast a value of shape {value.shape} to the "
                         f"indexed shape {shape}")
    return broadcast_to(value, shape)


def _combine(current, value, mode):
    from . import elementwise as ew
    if mode == lib.EM_SCATTER_ADD:
        return ew.add(current, value)
    if mode == lib.EM_SCATTER_MULTIPLY:
        return ew.multiply(current, value)
    if mode == lib.EM_SCATTER_DIVIDE:
        return ew.divide(current, value).astype(current.dtype)
    if mode == lib.EM_SCATTER_MAXIMUM:
        return ew.maximum(current, value)
    return ew.minimum(current, value)


def setitem(a: array, index, value) -> array:
    return _update(a, index, value, lib.EM_SCATTER_SET)


class AtIndexer:
    """`a.at[idx]`: functional updates that return a new array."""

    __slots__ = ("_array",)

    def __init__(self, a):
        self._array = a

    def __getitem__(self, index):
        return _AtUpdate(self._array, index)


class _AtUpdate:
    __slots__ = ("_array", "_index")

    def __init__(self, a, index):
        self._array = a
        self._index = index

    def set(self, value):
        return _update(self._array, self._index, value, lib.EM_SCATTER_SET)

    def add(self, value):
        """a with value added at the index; repeated indices accumulate."""
        return _update(self._array, self._index, value, lib.EM_SCATTER_ADD)

    def subtract(self, value):
        return _update(self._array, self._index, -asarray(value), lib.EM_SCATTER_ADD)

    def multiply(self, value):
        return _update(self._array, self._index, value, lib.EM_SCATTER_MULTIPLY)

    def divide(self, value):
        return _update(self._array, self._index, value, lib.EM_SCATTER_DIVIDE)

    def maximum(self, value):
        return _update(self._array, self._index, value, lib.EM_SCATTER_MAXIMUM)

    def minimum(self, value):
        return _update(self._array, self._index, value, lib.EM_SCATTER_MINIMUM)


def take(a, /, indices, axis=None, *, stream=None):
    """Elements of a at integer `indices` along an axis (the flattened array when None)."""
    a = asarray(a)
    if isinstance(indices, int):
        indices = array(indices)
    indices = asarray(indices)
    if axis is None:
        a = reshape(a, (-1,), stream=stream)
        axis = 0
    return _op(lib.EM_P_TAKE, [a, indices], (int(axis),), stream=stream)


def take_along_axis(a, /, indices, axis=None, *, stream=None):
    """Elements of a at `indices` matched position by position along an axis."""
    a, indices = asarray(a), asarray(indices)
    if axis is None:
        a = reshape(a, (-1,), stream=stream)
        indices = reshape(indices, (-1,), stream=stream)
        axis = 0
    return _op(lib.EM_P_TAKE_ALONG_AXIS, [a, indices], (int(axis),), stream=stream)


def put_along_axis(a, /, indices, values, axis=None, *, stream=None):
    """a with `values` written at `indices` along an axis (the last write wins)."""
    a, indices, values = asarray(a), asarray(indices), asarray(values)
    if axis is None:
        flat = reshape(a, (-1,), stream=stream)
        out = put_along_axis(flat, reshape(indices, (-1,)), reshape(values, (-1,)) if values.ndim
                             else values, 0, stream=stream)
        return reshape(out, a.shape, stream=stream)
    while values.ndim < a.ndim:
        values = reshape(values, (1,) + values.shape, stream=stream)
    return _op(lib.EM_P_SCATTER_ALONG_AXIS, [a, indices, values], (int(axis), lib.EM_SCATTER_SET),
               stream=stream)
