"""Matrix products: matmul (a primitive, through BLAS) and the products
composed from it (addmm, inner, outer, tensordot, kron, gather_mm,
segmented_mm, block_masked_mm)."""
from . import dtypes as _dt
from ._ffi import lib
from .array import _op, asarray
from .manipulation import expand_dims, reshape, squeeze, transpose


def matmul(a, b, /, *, stream=None):
    """Matrix product with numpy's rules: batched and broadcast over leading
    axes; a 1-D operand is a row (a) or column (b) vector that is removed
    from the result. float16/bfloat16 accumulate in float32."""
    a, b = asarray(a), asarray(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"[matmul] inputs must have at least one dimension, got shapes "
                         f"{a.shape} and {b.shape}")
    squeeze_axes = []
    if a.ndim == 1:
        a = expand_dims(a, 0, stream=stream)
        squeeze_axes.append(-2)
    if b.ndim == 1:
        b = expand_dims(b, 1, stream=stream)
        squeeze_axes.append(-1)
    out = _op(lib.EM_P_MATMUL, [a, b], stream=stream)
    if squeeze_axes:
        out = squeeze(out, tuple(squeeze_axes), stream=stream)
    return out


def addmm(c, a, b, /, alpha=1.0, beta=1.0, *, stream=None):
    """alpha * (a @ b) + beta * c."""
    out = matmul(a, b, stream=stream)
    if alpha != 1.0:
        out = out * alpha
    c = asarray(c)
    return out + (c * beta if beta != 1.0 else c)


def inner(a, b, /, *, stream=None):
    """Sum product over the last axes of a and b."""
    a, b = asarray(a), asarray(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return tensordot(a, b, ([-1], [-1]), stream=stream)


def outer(a, b, /, *, stream=None):
    """Outer product of the flattened inputs."""
    a, b = asarray(a), asarray(b)
    return reshape(a, (-1, 1), stream=stream) * reshape(b, (1, -1), stream=stream)


def tensordot(a, b, /, axes=2, *, stream=None):
    """Sum products over the given axes of a and b (an int: the last/first `axes`)."""
    a, b = asarray(a), asarray(b)
    if isinstance(axes, int):
        if axes < 0:
            raise ValueError(f"[tensordot] axes must be non-negative, got {axes}")
        axes_a = list(range(a.ndim - axes, a.ndim))
        axes_b = list(range(axes))
    else:
        axes_a, axes_b = axes
        axes_a = [axes_a] if isinstance(axes_a, int) else list(axes_a)
        axes_b = [axes_b] if isinstance(axes_b, int) else list(axes_b)
    if len(axes_a) != len(axes_b):
        raise ValueError(f"[tensordot] axes lists differ in length: {axes_a} and {axes_b}")
    axes_a = [x % a.ndim for x in axes_a] if a.ndim else axes_a
    axes_b = [x % b.ndim for x in axes_b] if b.ndim else axes_b
    for x, y in zip(axes_a, axes_b):
        if a.shape[x] != b.shape[y]:
            raise ValueError(f"[tensordot] axis {x} of a ({a.shape[x]}) does not match axis {y} "
                             f"of b ({b.shape[y]})")
    free_a = [i for i in range(a.ndim) if i not in axes_a]
    free_b = [i for i in range(b.ndim) if i not in axes_b]
    k = 1
    for x in axes_a:
        k *= a.shape[x]
    m = 1
    for x in free_a:
        m *= a.shape[x]
    n = 1
    for x in free_b:
        n *= b.shape[x]
    a2 = reshape(transpose(a, free_a + axes_a, stream=stream), (m, k), stream=stream)
    b2 = reshape(transpose(b, axes_b + free_b, stream=stream), (k, n), stream=stream)
    out = matmul(a2, b2, stream=stream)
    return reshape(out, tuple(a.shape[i] for i in free_a) + tuple(b.shape[i] for i in free_b),
                   stream=stream)


def kron(a, b, /, *, stream=None):
    """Kronecker product: block (i, j, ...) of the result is a[i, j, ...] * b.
    The input with fewer axes gets leading size-1 axes first (numpy's rule).

    Computed as the flat outer product, whose axes (a's then b's) are then
    interleaved by one transpose: a dense multiply and a copy, faster here
    than one multiply broadcasting over interleaved size-1 axes."""
    a, b = asarray(a), asarray(b)
    ndim = max(a.ndim, b.ndim)
    a_shape = (1,) * (ndim - a.ndim) + a.shape
    b_shape = (1,) * (ndim - b.ndim) + b.shape
    product = outer(a, b, stream=stream)
    product = reshape(product, a_shape + b_shape, stream=stream)
    interleaved = [axis for k in range(ndim) for axis in (k, ndim + k)]
    return reshape(transpose(product, interleaved, stream=stream),
                   tuple(x * y for x, y in zip(a_shape, b_shape)), stream=stream)


def _batched_matrices(x, name, which):
    x = asarray(x)
    if x.ndim < 2:
        raise ValueError(f"[{name}] {which} must have at least 2 dimensions, got shape {x.shape}")
    return x


def gather_mm(a, b, /, lhs_indices=None, rhs_indices=None, *, sorted_indices=False,
              stream=None):
    """Batched matmul of matrices picked from a and b (mlx.core.gather_mm):
    out[i] = a_flat[lhs_indices[i]] @ b_flat[rhs_indices[i]], with a_flat
    (b_flat) a's (b's) batch axes flattened into one. An omitted index keeps
    that operand's batch axes as they are; the result's batch shape is the
    broadcast of the two. sorted_indices is accepted for mlx compatibility
    (a take and a matmul need no sorting)."""
    from .indexing import take
    a = _batched_matrices(a, "gather_mm", "a")
    b = _batched_matrices(b, "gather_mm", "b")

    def pick(x, indices):
        if indices is None:
            return x
        indices = asarray(indices)
        if indices.dtype not in (_dt.int32, _dt.int64, _dt.uint32, _dt.uint64, _dt.int16,
                                 _dt.uint16, _dt.int8, _dt.uint8):
            raise TypeError(f"[gather_mm] indices must be integers, got {indices.dtype}")
        flat = reshape(x, (-1,) + x.shape[-2:], stream=stream)
        return take(flat, indices, axis=0, stream=stream)
    return matmul(pick(a, lhs_indices), pick(b, rhs_indices), stream=stream)


def segmented_mm(a, b, /, segments, *, stream=None):
    """Products of a and b over segments of the inner axis
    (mlx.core.segmented_mm): for a (..., M, K), b (..., K, N) and segments
    (..., S, 2) of [start, end) pairs, out[..., s, :, :] is
    a[..., :, start:end] @ b[..., start:end, :]; shape (..., S, M, N).

    Each segment masks the inner axis (a 0/1 row over K) and one batched
    matmul does the S products, so empty or overlapping segments need no
    special case."""
    from .creation import arange
    from .elementwise import greater_equal, less, logical_and
    from .manipulation import where
    a = _batched_matrices(a, "segmented_mm", "a")
    b = _batched_matrices(b, "segmented_mm", "b")
    segments = asarray(segments)
    if segments.ndim < 1 or segments.shape[-1] != 2:
        raise ValueError(f"[segmented_mm] segments must have shape (..., S, 2), got "
                         f"{segments.shape}")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"[segmented_mm] last axis of a ({a.shape[-1]}) must equal axis -2 of b "
                         f"({b.shape[-2]})")
    k = a.shape[-1]
    positions = arange(k)
    starts = expand_dims(segments[..., 0], -1, stream=stream)
    ends = expand_dims(segments[..., 1], -1, stream=stream)
    inside = logical_and(greater_equal(positions, starts, stream=stream),
                         less(positions, ends, stream=stream), stream=stream)  # (..., S, K)
    masked_a = where(expand_dims(inside, -2, stream=stream),
                     expand_dims(a, -3, stream=stream), 0, stream=stream)  # (..., S, M, K)
    return matmul(masked_a, expand_dims(b, -3, stream=stream), stream=stream)


def block_masked_mm(a, b, /, block_size=64, mask_out=None, mask_lhs=None, mask_rhs=None, *,
                    stream=None):
    """a @ b with block_size x block_size blocks masked (mlx.core.
    block_masked_mm): mask_lhs (..., ceil(M/bs), ceil(K/bs)) masks blocks of
    a, mask_rhs (..., ceil(K/bs), ceil(N/bs)) blocks of b, mask_out
    (..., ceil(M/bs), ceil(N/bs)) blocks of the result. A bool mask zeroes
    the blocks it marks False; a float mask scales each block by its value.
    Any positive block_size works here (mlx's kernels take 32 or 64)."""
    from .manipulation import repeat, where
    a = _batched_matrices(a, "block_masked_mm", "a")
    b = _batched_matrices(b, "block_masked_mm", "b")
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"[block_masked_mm] block_size must be a positive int, got "
                         f"{block_size!r}")

    def blocks(n):
        return -(-n // block_size)

    def apply(x, mask, rows, cols, name):
        if mask is None:
            return x
        mask = asarray(mask)
        want = (blocks(rows), blocks(cols))
        if mask.ndim < 2 or tuple(mask.shape[-2:]) != want:
            raise ValueError(f"[block_masked_mm] {name} must have shape (..., {want[0]}, "
                             f"{want[1]}) for block_size {block_size}, got {mask.shape}")
        full = repeat(repeat(mask, block_size, axis=-2, stream=stream), block_size, axis=-1,
                      stream=stream)
        full = full[..., :rows, :cols]
        if full.dtype == _dt.bool_:
            return where(full, x, 0, stream=stream)
        return x * full
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    a = apply(a, mask_lhs, m, k, "mask_lhs")
    b = apply(b, mask_rhs, k, n, "mask_rhs")
    return apply(matmul(a, b, stream=stream), mask_out, m, n, "mask_out")
