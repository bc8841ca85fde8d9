"""Shape manipulation: views (reshape, transpose, broadcast, slice) and the
ops composed from them (stack, split, tile, repeat, pad, roll, diag, ...).

Views share the input's buffer; the engine copies only when a layout cannot
be expressed with strides (e.g. reshaping a transposed array).
"""
import builtins
from collections.abc import Sequence

from . import dtypes as _dt
from ._ffi import lib
from .array import _op, array, asarray


def _axis(axis, ndim, op):
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"[{op}] axis {axis} is out of bounds for array of dimension {ndim}")
    return axis % ndim


def _axes(axis, ndim, op):
    if isinstance(axis, (int,)) or (isinstance(axis, array) and axis.ndim == 0):
        axis = (int(axis),)
    out = tuple(_axis(a, ndim, op) for a in axis)
    if len(set(out)) != len(out):
        raise ValueError(f"[{op}] repeated axis in {tuple(axis)}")
    return out


def reshape(a, /, shape, *, stream=None):
    """The same elements in a new shape (one entry may be -1)."""
    a = asarray(a)
    if isinstance(shape, int):
        shape = (shape,)
    return _op(lib.EM_P_RESHAPE, [a], tuple(int(s) for s in shape), stream=stream)


def flatten(a, /, start_axis=0, end_axis=-1, *, stream=None):
    """Merge axes start_axis..end_axis (inclusive) into one."""
    a = asarray(a)
    if a.ndim == 0:
        return reshape(a, (1,), stream=stream)
    s, e = _axis(start_axis, a.ndim, "flatten"), _axis(end_axis, a.ndim, "flatten")
    if s > e:
        raise ValueError(f"[flatten] start_axis {start_axis} must not come after end_axis {end_axis}")
    shape = a.shape
    merged = 1
    for n in shape[s:e + 1]:
        merged *= n
    return reshape(a, shape[:s] + (merged,) + shape[e + 1:], stream=stream)


def unflatten(a, /, axis, shape, *, stream=None):
    """Split one axis into several of the given shape (one entry may be -1)."""
    a = asarray(a)
    ax = _axis(axis, a.ndim, "unflatten")
    shape = tuple(int(s) for s in shape)
    if not shape:
        raise ValueError("[unflatten] shape cannot be empty")
    return reshape(a, a.shape[:ax] + shape + a.shape[ax + 1:], stream=stream)


def squeeze(a, /, axis=None, *, stream=None):
    """Remove size-1 axes (all of them, or those named)."""
    a = asarray(a)
    shape = a.shape
    if axis is None:
        return reshape(a, tuple(s for s in shape if s != 1), stream=stream)
    axes = _axes(axis, a.ndim, "squeeze")
    for ax in axes:
        if shape[ax] != 1:
            raise ValueError(f"[squeeze] cannot squeeze axis {ax} of size {shape[ax]}")
    return reshape(a, tuple(s for i, s in enumerate(shape) if i not in axes), stream=stream)


def expand_dims(a, /, axis, *, stream=None):
    """Insert size-1 axes at the given positions of the result."""
    a = asarray(a)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out_ndim = a.ndim + len(axes)
    axes = _axes(axes, out_ndim, "expand_dims")
    shape = iter(a.shape)
    return reshape(a, tuple(1 if i in axes else next(shape) for i in range(out_ndim)), stream=stream)


def transpose(a, /, axes=None, *, stream=None):
    """Permute the axes (reverse them when axes is None)."""
    a = asarray(a)
    if axes is None:
        axes = tuple(range(a.ndim))[::-1]
    return _op(lib.EM_P_TRANSPOSE, [a], tuple(int(x) for x in axes), stream=stream)


permute_dims = transpose


def swapaxes(a, /, axis1, axis2, *, stream=None):
    """Exchange two axes."""
    a = asarray(a)
    perm = list(range(a.ndim))
    i, j = _axis(axis1, a.ndim, "swapaxes"), _axis(axis2, a.ndim, "swapaxes")
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(a, perm, stream=stream)


def moveaxis(a, /, source, destination, *, stream=None):
    """Move one axis to a new position, keeping the others in order."""
    a = asarray(a)
    s, d = _axis(source, a.ndim, "moveaxis"), _axis(destination, a.ndim, "moveaxis")
    perm = [i for i in range(a.ndim) if i != s]
    perm.insert(d, s)
    return transpose(a, perm, stream=stream)


def broadcast_to(a, /, shape, *, stream=None):
    """A view of a with the given shape (numpy broadcasting rules)."""
    a = asarray(a)
    shape = (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)
    if shape == a.shape:
        return a
    return _op(lib.EM_P_BROADCAST, [a], shape, stream=stream)


def broadcast_shapes(*shapes):
    """The shape the given shapes broadcast to."""
    ndim = builtins.max((len(s) for s in shapes), default=0)
    out = []
    for d in range(ndim):
        size = 1
        for s in shapes:
            k = d - (ndim - len(s))
            if k < 0 or s[k] == 1 or s[k] == size:
                continue
            if size != 1:
                raise ValueError(f"[broadcast_shapes] shapes {' and '.join(map(str, shapes))} "
                                 "cannot be broadcast")
            size = s[k]
        out.append(size)
    return tuple(out)


def broadcast_arrays(*arrays, stream=None):
    """Every array broadcast to their common shape."""
    arrays = [asarray(a) for a in arrays]
    shape = broadcast_shapes(*(a.shape for a in arrays))
    return tuple(broadcast_to(a, shape, stream=stream) for a in arrays)


def concatenate(arrays, axis=0, *, stream=None):
    """Join arrays along an existing axis (axis=None flattens them first)."""
    arrays = [asarray(a) for a in arrays]
    if not arrays:
        raise ValueError("[concatenate] no arrays to concatenate")
    if axis is None:
        arrays = [reshape(a, (-1,), stream=stream) for a in arrays]
        axis = 0
    return _op(lib.EM_P_CONCATENATE, arrays, (int(axis),), stream=stream)


concat = concatenate


def stack(arrays, axis=0, *, stream=None):
    """Join arrays of one shape along a new axis."""
    arrays = [asarray(a) for a in arrays]
    if not arrays:
        raise ValueError("[stack] no arrays to stack")
    shape = arrays[0].shape
    for a in arrays:
        if a.shape != shape:
            raise ValueError(f"[stack] all arrays must have the same shape, got {shape} and {a.shape}")
    axis = _axis(axis, len(shape) + 1, "stack")
    return concatenate([expand_dims(a, axis, stream=stream) for a in arrays], axis, stream=stream)


def slice_axes(a, starts, stops, steps, stream=None):
    """The strided view a[start:stop:step] for every axis (clamped indices)."""
    params = []
    for start, stop, step in zip(starts, stops, steps):
        params += [start, stop, step]
    return _op(lib.EM_P_SLICE, [a], params, stream=stream)


def _axis_slice(a, axis, start, stop, step=1, stream=None):
    shape = a.shape
    starts, stops, steps = [0] * a.ndim, list(shape), [1] * a.ndim
    starts[axis], stops[axis], steps[axis] = range(shape[axis])[start:stop:step].start, \
        range(shape[axis])[start:stop:step].stop, step
    return slice_axes(a, starts, stops, steps, stream=stream)


def split(a, /, indices_or_sections, axis=0, *, stream=None):
    """Split into equal sections (an int) or at the given indices."""
    a = asarray(a)
    ax = _axis(axis, a.ndim, "split")
    n = a.shape[ax]
    if isinstance(indices_or_sections, int):
        sections = indices_or_sections
        if sections <= 0 or n % sections:
            raise ValueError(f"[split] cannot split axis {ax} of size {n} into {sections} equal sections")
        bounds = [i * (n // sections) for i in range(sections + 1)]
    else:
        bounds = [0] + [builtins.min(builtins.max(int(i) if i >= 0 else int(i) + n, 0), n)
                        for i in indices_or_sections] + [n]
    return [_axis_slice(a, ax, lo, builtins.max(lo, hi), stream=stream)
            for lo, hi in zip(bounds[:-1], bounds[1:])]


def unstack(a, /, axis=0, *, stream=None):
    """The slices of a along an axis, with that axis removed."""
    a = asarray(a)
    ax = _axis(axis, a.ndim, "unstack")
    return [squeeze(part, ax, stream=stream) for part in split(a, a.shape[ax], ax, stream=stream)] \
        if a.shape[ax] else []


def tile(a, /, reps, *, stream=None):
    """Repeat the whole array `reps` times along each axis."""
    a = asarray(a)
    reps = (int(reps),) if isinstance(reps, int) else tuple(int(r) for r in reps)
    ndim = builtins.max(a.ndim, len(reps))
    reps = (1,) * (ndim - len(reps)) + reps
    shape = (1,) * (ndim - a.ndim) + a.shape
    interleaved = []
    for s in shape:
        interleaved += [1, s]
    expanded = reshape(a, interleaved, stream=stream)
    target = []
    for r, s in zip(reps, shape):
        target += [r, s]
    tiled = broadcast_to(expanded, target, stream=stream)
    return reshape(tiled, tuple(r * s for r, s in zip(reps, shape)), stream=stream)


def repeat(a, /, repeats, axis=None, *, stream=None):
    """Repeat each element `repeats` times along an axis (flattened when None)."""
    a = asarray(a)
    if axis is None:
        a = reshape(a, (-1,), stream=stream)
        axis = 0
    ax = _axis(axis, a.ndim, "repeat")
    repeats = int(repeats)
    if repeats < 0:
        raise ValueError(f"[repeat] repeats must be non-negative, got {repeats}")
    shape = a.shape
    expanded = expand_dims(a, ax + 1, stream=stream)
    target = shape[:ax + 1] + (repeats,) + shape[ax + 1:]
    out_shape = shape[:ax] + (shape[ax] * repeats,) + shape[ax + 1:]
    return reshape(broadcast_to(expanded, target, stream=stream), out_shape, stream=stream)


def _pad_widths(pad_width, ndim):
    if isinstance(pad_width, int):
        return [(pad_width, pad_width)] * ndim
    pw = list(pad_width)
    if pw and isinstance(pw[0], int):
        if len(pw) == 1:
            return [(pw[0], pw[0])] * ndim
        if len(pw) == 2:
            return [tuple(pw)] * ndim
    pw = [_pad_pair(p) for p in pw]
    if len(pw) == 1:
        return pw * ndim
    if len(pw) != ndim:
        raise ValueError(f"[pad] pad_width has {len(pw)} entries for an array of dimension {ndim}")
    return pw


def _pad_pair(p):
    """(before, after) from an int, a 1-tuple or a pair."""
    if isinstance(p, int):
        return (p, p)
    p = tuple(int(v) for v in p)
    if len(p) == 1:
        return (p[0], p[0])
    if len(p) != 2:
        raise ValueError(f"[pad] each pad width must be an int or a (before, after) pair, got {p}")
    return p


def pad(a, pad_width, mode="constant", constant_values=0, *, stream=None):
    """Pad with a constant or by repeating the edge values."""
    a = asarray(a)
    widths = _pad_widths(pad_width, a.ndim)
    for lo, hi in widths:
        if lo < 0 or hi < 0:
            raise ValueError(f"[pad] pad widths must be non-negative, got {widths}")
    if mode == "constant":
        from .creation import full
        shape = tuple(s + lo + hi for s, (lo, hi) in zip(a.shape, widths))
        out = full(shape, asarray(constant_values).astype(a.dtype), stream=stream)
        starts = [lo for lo, _ in widths]
        return slice_update_axes(out, a, starts, [s + lo for s, (lo, _) in zip(a.shape, widths)],
                                 [1] * a.ndim, stream=stream)
    if mode == "edge":
        out = a
        for ax, (lo, hi) in enumerate(widths):
            n = out.shape[ax]
            if n == 0 and (lo or hi):
                raise ValueError("[pad] cannot edge-pad an empty axis")
            parts = []
            if lo:
                parts.append(repeat(_axis_slice(out, ax, 0, 1, stream=stream), lo, ax, stream=stream))
            parts.append(out)
            if hi:
                parts.append(repeat(_axis_slice(out, ax, n - 1, n, stream=stream), hi, ax, stream=stream))
            out = concatenate(parts, ax, stream=stream) if len(parts) > 1 else out
        return out
    raise ValueError(f"[pad] mode must be 'constant' or 'edge', got {mode!r}")


def roll(a, /, shift, axis=None, *, stream=None):
    """Shift elements cyclically along axes (the flattened array when axis is None)."""
    a = asarray(a)
    if axis is None:
        total = shift if isinstance(shift, int) else builtins.sum(int(s) for s in shift)
        return reshape(roll(reshape(a, (-1,), stream=stream), total, 0, stream=stream), a.shape,
                       stream=stream)
    shifts = (shift,) if isinstance(shift, int) else tuple(shift)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if len(shifts) == 1 and len(axes) > 1:
        shifts = shifts * len(axes)
    if len(shifts) != len(axes):
        raise ValueError("[roll] shift and axis must have the same length")
    out = a
    for s, ax in zip(shifts, axes):
        ax = _axis(ax, a.ndim, "roll")
        n = out.shape[ax]
        if n == 0:
            continue
        s %= n
        if s:
            out = concatenate([_axis_slice(out, ax, n - s, n, stream=stream),
                               _axis_slice(out, ax, 0, n - s, stream=stream)], ax, stream=stream)
    return out


def as_strided(a, /, shape=None, strides=None, offset=0, *, stream=None):
    """A view with explicit shape, strides and offset, in elements of a's row-major data."""
    a = asarray(a)
    shape = a.shape if shape is None else tuple(int(s) for s in shape)
    if strides is None:
        strides, acc = [], 1
        for s in reversed(shape):
            strides.insert(0, acc)
            acc *= s
    strides = tuple(int(s) for s in strides)
    if len(strides) != len(shape):
        raise ValueError(f"[as_strided] shape {shape} and strides {strides} differ in length")
    return _op(lib.EM_P_AS_STRIDED, [a], (len(shape),) + shape + strides + (int(offset),),
               stream=stream)


def diagonal(a, /, offset=0, axis1=0, axis2=1, *, stream=None):
    """The diagonal of the (axis1, axis2) planes, moved to the last axis."""
    a = asarray(a)
    if a.ndim < 2:
        raise ValueError(f"[diagonal] needs at least 2 dimensions, got shape {a.shape}")
    i, j = _axis(axis1, a.ndim, "diagonal"), _axis(axis2, a.ndim, "diagonal")
    if i == j:
        raise ValueError("[diagonal] axis1 and axis2 must differ")
    rest = [d for d in range(a.ndim) if d not in (i, j)]
    moved = transpose(a, rest + [i, j], stream=stream)
    shape = moved.shape
    n, m = shape[-2], shape[-1]
    length = builtins.max(0, builtins.min(n, m - offset) if offset >= 0 else builtins.min(n + offset, m))
    row_strides, acc = [], 1
    for s in reversed(shape):
        row_strides.insert(0, acc)
        acc *= s
    start = offset if offset >= 0 else -offset * m
    return as_strided(moved, shape[:-2] + (length,), row_strides[:-2] + [m + 1],
                      start if length else 0, stream=stream)


def diag(a, /, k=0, *, stream=None):
    """The k-th diagonal of a matrix, or a matrix with a vector on its k-th diagonal."""
    a = asarray(a)
    if a.ndim == 2:
        return diagonal(a, k, stream=stream)
    if a.ndim != 1:
        raise ValueError(f"[diag] expects a 1-D or 2-D array, got shape {a.shape}")
    from .creation import zeros
    n = a.shape[0] + abs(k)
    out = zeros((n * n,), a.dtype, stream=stream)
    start = k if k >= 0 else -k * n
    return reshape(slice_update_axes(out, a, [start], [start + a.shape[0] * (n + 1)], [n + 1],
                                     stream=stream), (n, n), stream=stream)


def trace(a, /, offset=0, axis1=0, axis2=1, dtype=None, *, stream=None):
    """Sum along a diagonal."""
    from .reductions import sum as _sum
    d = diagonal(a, offset, axis1, axis2, stream=stream)
    if dtype is not None:
        d = d.astype(dtype, stream=stream)
    return _sum(d, axis=-1, stream=stream)


def tril(x, /, k=0, *, stream=None):
    """Zero the elements above the k-th diagonal of the last two axes."""
    from .creation import tri
    x = asarray(x)
    if x.ndim < 2:
        raise ValueError(f"[tril] needs at least 2 dimensions, got shape {x.shape}")
    mask = tri(x.shape[-2], x.shape[-1], k, dtype=_dt.bool_, stream=stream)
    return where(mask, x, array(0, x.dtype), stream=stream)


def triu(x, /, k=0, *, stream=None):
    """Zero the elements below the k-th diagonal of the last two axes."""
    from .creation import tri
    x = asarray(x)
    if x.ndim < 2:
        raise ValueError(f"[triu] needs at least 2 dimensions, got shape {x.shape}")
    mask = tri(x.shape[-2], x.shape[-1], k - 1, dtype=_dt.bool_, stream=stream)
    return where(mask, array(0, x.dtype), x, stream=stream)


def atleast_1d(*arrays, stream=None):
    out = [asarray(a) if asarray(a).ndim >= 1 else reshape(a, (1,), stream=stream) for a in arrays]
    return out[0] if len(out) == 1 else out


def atleast_2d(*arrays, stream=None):
    out = []
    for a in arrays:
        a = asarray(a)
        out.append(a if a.ndim >= 2 else reshape(a, (1,) * (2 - a.ndim) + a.shape, stream=stream))
    return out[0] if len(out) == 1 else out


def atleast_3d(*arrays, stream=None):
    out = []
    for a in arrays:
        a = asarray(a)
        if a.ndim == 0:
            a = reshape(a, (1, 1, 1), stream=stream)
        elif a.ndim == 1:
            a = reshape(a, (1,) + a.shape + (1,), stream=stream)
        elif a.ndim == 2:
            a = reshape(a, a.shape + (1,), stream=stream)
        out.append(a)
    return out[0] if len(out) == 1 else out


def where(condition, x, y, /, *, stream=None):
    """Elementwise x where condition holds, else y (broadcasting all three)."""
    from .array import _scalar_against
    condition = asarray(condition)
    if not isinstance(x, array) and isinstance(y, array):
        x = _scalar_against(x, y)
    elif not isinstance(y, array) and isinstance(x, array):
        y = _scalar_against(y, x)
    x, y = asarray(x), asarray(y)
    return _op(lib.EM_P_WHERE, [condition, x, y], stream=stream)


def slice_update_axes(a, update, starts, stops, steps, stream=None):
    """a with a[start:stop:step, ...] replaced by update (broadcast)."""
    params = []
    for start, stop, step in zip(starts, stops, steps):
        params += [start, stop, step]
    return _op(lib.EM_P_SLICE_UPDATE, [a, asarray(update)], params, stream=stream)


def _static_ints(values, op):
    if isinstance(values, array):
        values = values.tolist()
    if isinstance(values, int):
        values = [values]
    if not isinstance(values, Sequence):
        raise TypeError(f"[{op}] expected a sequence of ints")
    return [int(v) for v in values]


def slice(a, /, start_indices, axes, slice_size, *, stream=None):
    """a[start : start + size] along the given axes (mlx.core.slice).

    start_indices may be an array; its values are read when the op is built."""
    a = asarray(a)
    starts = _static_ints(start_indices, "slice")
    axes = [_axis(x, a.ndim, "slice") for x in _static_ints(axes, "slice")]
    sizes = _static_ints(slice_size, "slice")
    if len(starts) != len(axes):
        raise ValueError(f"[slice] got {len(starts)} start indices for {len(axes)} axes")
    if len(sizes) != a.ndim:
        raise ValueError(f"[slice] slice_size {tuple(sizes)} must give a size for each of the "
                         f"{a.ndim} axes of an array of shape {a.shape}")
    lo = [0] * a.ndim
    for start, ax in zip(starts, axes):
        lo[ax] = start
    return slice_axes(a, lo, [s + n for s, n in zip(lo, sizes)], [1] * a.ndim, stream=stream)


def slice_update(a, /, update, start_indices, axes, *, stream=None):
    """a with the block at start_indices (along axes) replaced by update."""
    a, update = asarray(a), asarray(update)
    starts = _static_ints(start_indices, "slice_update")
    axes = [_axis(x, a.ndim, "slice_update") for x in _static_ints(axes, "slice_update")]
    if len(starts) != len(axes):
        raise ValueError(f"[slice_update] got {len(starts)} start indices for {len(axes)} axes")
    if update.ndim > a.ndim:
        raise ValueError(f"[slice_update] update of shape {update.shape} has more dimensions "
                         f"than the array of shape {a.shape}")
    ushape = (1,) * (a.ndim - update.ndim) + update.shape
    lo = [0] * a.ndim
    for start, ax in zip(starts, axes):
        lo[ax] = start
    return slice_update_axes(a, update, lo, [s + n for s, n in zip(lo, ushape)], [1] * a.ndim,
                             stream=stream)


def array_split(a, /, indices_or_sections, axis=0, *, stream=None):
    """Like split, but an int need not divide the axis (numpy.array_split):
    the first size % sections parts are one element longer."""
    a = asarray(a)
    if not isinstance(indices_or_sections, int):
        return split(a, indices_or_sections, axis, stream=stream)
    ax = _axis(axis, a.ndim, "array_split")
    sections = indices_or_sections
    if sections <= 0:
        raise ValueError(f"[array_split] number of sections must be positive, got {sections}")
    size, extra = divmod(a.shape[ax], sections)
    bounds = [0]
    for i in range(sections):
        bounds.append(bounds[-1] + size + (1 if i < extra else 0))
    return split(a, bounds[1:-1], ax, stream=stream)


def diff(a, /, n=1, axis=-1, prepend=None, append=None, *, stream=None):
    """n-th discrete difference along axis: a[1:] - a[:-1], n times
    (numpy.diff, with prepend/append joined on first; bool uses !=)."""
    from .elementwise import not_equal
    a = asarray(a)
    if a.ndim == 0:
        raise ValueError("[diff] input must have at least one dimension")
    if n < 0:
        raise ValueError(f"[diff] order must be non-negative, got {n}")
    ax = _axis(axis, a.ndim, "diff")
    def edge(extra):
        extra = asarray(extra)
        if extra.ndim == 0:
            return broadcast_to(extra, a.shape[:ax] + (1,) + a.shape[ax + 1:], stream=stream)
        return extra
    parts = ([] if prepend is None else [edge(prepend)]) + [a] + \
        ([] if append is None else [edge(append)])
    if len(parts) > 1:
        a = concatenate(parts, axis=ax, stream=stream)
    for _ in range(n):
        length = a.shape[ax]
        hi = _axis_slice(a, ax, 1, builtins.max(length, 1), stream=stream)
        lo = _axis_slice(a, ax, 0, builtins.max(length - 1, 0), stream=stream)
        a = not_equal(hi, lo, stream=stream) if a.dtype == _dt.bool_ else hi - lo
    return a


def _is_dense(shape, strides):
    """Whether strides (in elements) lay shape out row-major without gaps."""
    expected = 1
    for size, stride in zip(reversed(shape), reversed(strides)):
        if size != 1 and stride != expected:
            return False
        expected *= size
    return True


def contiguous(a, /, allow_col_major=False, *, stream=None):
    """a laid out row-major (mlx.core.contiguous): a itself where it already
    is (or is column-major and allow_col_major), else a copy. The layout is
    known only once a is evaluated, so an unevaluated a is copied."""
    from ._ffi import ffi
    a = asarray(a)
    if lib.em_is_evaluated(a._p):
        strides = ffi.unpack(lib.em_strides(a._p), a.ndim) if a.ndim else []
        if _is_dense(a.shape, strides) or (
                allow_col_major and _is_dense(a.shape[::-1], strides[::-1])):
            return a
    return _op(lib.EM_P_COPY, [a], stream=stream)
