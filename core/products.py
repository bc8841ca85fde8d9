"""Matrix products: matmul (a primitive, through BLAS) and the products
composed from it (addmm, inner, outer, tensordot)."""
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
