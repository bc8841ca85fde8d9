"""ember.core.linalg: linear algebra through LAPACK, with mlx.core.linalg's API.

Nine primitives run LAPACK (native/kernels/linalg.c, one call per matrix of a
batch, batched over leading axes): solve, inv, solve_triangular, cholesky,
qr, svd, eigh, eig and lu. Everything else is composed from them here: norm
(reductions, svd), pinv (svd), det and slogdet (lu), tri_inv and cholesky_inv
(solve_triangular), cross (slicing), and gets its transforms for free.

A decomposition with several results is ONE node whose output packs them,
matrix after matrix (Q then R; U, S, Vt; w, V; LU, pivots, row indices: the
layouts are listed at the top of native/prims.c); the functions here cut
that buffer into the arrays they return. So LAPACK runs once however many
results are used, and each rule sees all results together: the vjp gets the
cotangent of the whole packed output (zero where a result went unused), the
jvp returns the packed tangent. One primitive per result would recompute the
factorization once per result and give each rule a partial view.

Dtypes: float64 and complex64 are kept (numpy keeps float64); every other
dtype computes and returns float32, as mlx.core does. eig and eigvals return
complex64 (ember has no complex128); singular values and eigh's eigenvalues
are real.

Errors: shapes are checked when an op is created. Where numpy.linalg raises
LinAlgError (a singular matrix in solve or inv, a matrix that is not positive
definite in cholesky, no convergence in svd, eigh or eig), the kernel raises
ValueError naming the op and the failure when the result is evaluated.
"""
import math

from . import dtypes as _dt
from . import elementwise as _ew
from . import manipulation as _mp
from . import reductions as _rd
from ._ffi import lib
from .array import _op, asarray
from .creation import arange, eye, zeros
from .primitives import register
from .products import matmul

# ---- helpers ----


def _mT(x, stream=None):
    """The matrix transpose (last two axes)."""
    return _mp.swapaxes(x, -1, -2, stream=stream)


def _mH(x, stream=None):
    """The conjugate transpose."""
    t = _mT(x, stream)
    return _ew.conj(t, stream=stream) if x.dtype == _dt.complex64 else t


def _slice(x, axis, lo, hi, stream=None):
    """x[..., lo:hi, ...] along one axis."""
    axis %= x.ndim
    ip = []
    for d, size in enumerate(x.shape):
        ip += [lo, hi, 1] if d == axis else [0, size, 1]
    return _op(lib.EM_P_SLICE, [x], ip, stream=stream)


def _layout(prim, shape, ip):
    """The shapes of the results a primitive packs, for input matrices of `shape`."""
    m, n = shape[-2], shape[-1]
    k = min(m, n)
    if prim == lib.EM_P_QR:
        return [(m, k), (k, n)]
    if prim == lib.EM_P_SVD:
        return [(m, m), (k,), (n, n)] if ip[0] else [(k,)]
    if prim == lib.EM_P_EIGH:
        return [(n,), (n, n)] if ip[1] else [(n,)]
    if prim == lib.EM_P_EIG:
        return [(n,), (n, n)] if ip[0] else [(n,)]
    if prim == lib.EM_P_LU:
        return [(m, n), (k,), (m,)]
    raise ValueError(f"[linalg] primitive {prim} packs no results")


def _unpack(packed, batch, shapes, stream=None):
    """Cuts a packed (..., P) array into arrays of batch + shape for each shape."""
    pieces, start = [], 0
    for shape in shapes:
        size = math.prod(shape)
        piece = _slice(packed, -1, start, start + size, stream)
        pieces.append(_mp.reshape(piece, batch + shape, stream=stream))
        start += size
    return pieces


def _pack(pieces, batch, stream=None):
    """The inverse of _unpack: flattens each piece after the batch axes and joins them."""
    flat = [_mp.reshape(p, batch + (math.prod(p.shape[len(batch):]),), stream=stream)
            for p in pieces]
    return flat[0] if len(flat) == 1 else _mp.concatenate(flat, axis=-1, stream=stream)


def _decompose(prim, a, ip=(), stream=None):
    """Runs decomposition `prim` on a and returns its results as arrays."""
    packed = _op(prim, [a], ip, stream=stream)
    return _unpack(packed, a.shape[:-2], _layout(prim, a.shape, ip), stream)


def _results(node, stream=None):
    """The results packed in a decomposition node's output."""
    a = node.inputs[0]
    return _unpack(node.out, a.shape[:-2], _layout(node.prim, a.shape, node.ip), stream)


def _check_matrices(a, name, square=True):
    if a.ndim < 2:
        raise ValueError(f"[{name}] expected an array with at least 2 dimensions, got shape {a.shape}")
    if square and a.shape[-1] != a.shape[-2]:
        raise ValueError(f"[{name}] expected square matrices in the last two axes, got shape {a.shape}")


def _float_dtype(a):
    """The dtype a linalg op on `a` computes in."""
    return a.dtype if a.dtype in (_dt.float64, _dt.complex64) else _dt.float32


def _real(x, stream=None):
    """The real part of a complex64 result that LAPACK returns real (S, w)."""
    return _ew.real(x, stream=stream) if x.dtype == _dt.complex64 else x


def _diag_matrix(v, stream=None):
    """A batch of diagonal matrices from a batch of vectors (..., n)."""
    n = v.shape[-1]
    return _mp.expand_dims(v, -2, stream=stream) * eye(n, dtype=v.dtype, stream=stream)


def _matrix_diagonal(x, stream=None):
    return _mp.diagonal(x, 0, -2, -1, stream=stream)


# ---- solves and inverses ----


def _check_vector_rhs(a, b, name):
    _check_matrices(a, name)
    if a.shape[-1] != b.shape[0]:
        raise ValueError(f"[{name}] a of shape {a.shape} and b of shape {b.shape} do not match: "
                         f"b needs {a.shape[-1]} rows")


def solve(a, b, *, stream=None):
    """The solution x of a @ x = b (LAPACK gesv). A 1-D b is a vector; otherwise
    b is (..., n, k), and the batch axes of a and b broadcast."""
    a, b = asarray(a), asarray(b)
    if b.ndim == 1:
        _check_vector_rhs(a, b, "solve")
        x = _op(lib.EM_P_SOLVE, [a, _mp.expand_dims(b, -1, stream=stream)], stream=stream)
        return _mp.squeeze(x, -1, stream=stream)
    return _op(lib.EM_P_SOLVE, [a, b], stream=stream)


def inv(a, *, stream=None):
    """The inverse of each square matrix (LAPACK gesv against the identity, as numpy)."""
    return _op(lib.EM_P_INV, [asarray(a)], stream=stream)


def solve_triangular(a, b, *, upper=False, stream=None):
    """The solution x of a @ x = b reading only a's lower (or upper) triangle
    (LAPACK trtrs). Raises on an exact zero on the diagonal."""
    a, b = asarray(a), asarray(b)
    if b.ndim == 1:
        _check_vector_rhs(a, b, "solve_triangular")
        x = _op(lib.EM_P_SOLVE_TRIANGULAR, [a, _mp.expand_dims(b, -1, stream=stream)],
                (int(bool(upper)),), stream=stream)
        return _mp.squeeze(x, -1, stream=stream)
    return _op(lib.EM_P_SOLVE_TRIANGULAR, [a, b], (int(bool(upper)),), stream=stream)


def tri_inv(a, upper=False, *, stream=None):
    """The inverse of a triangular matrix (its lower, or upper, triangle)."""
    a = asarray(a)
    _check_matrices(a, "tri_inv")
    identity = eye(a.shape[-1], dtype=_float_dtype(a), stream=stream)
    return solve_triangular(a, identity, upper=upper, stream=stream)


def cholesky(a, upper=False, *, stream=None):
    """The Cholesky factor L (a = L @ L.T) or, with upper=True, U (a = U.T @ U)
    of symmetric positive definite matrices; reads one triangle of a."""
    return _op(lib.EM_P_CHOLESKY, [asarray(a)], (int(bool(upper)),), stream=stream)


def cholesky_inv(L, upper=False, *, stream=None):
    """The inverse of a = L @ L.T (or U.T @ U) from its Cholesky factor."""
    inverse = tri_inv(L, upper, stream=stream)
    if upper:
        return matmul(inverse, _mH(inverse, stream), stream=stream)
    return matmul(_mH(inverse, stream), inverse, stream=stream)


def pinv(a, *, stream=None):
    """The Moore-Penrose pseudo-inverse from the SVD; singular values at or
    below 1e-15 times the largest count as zero (numpy's default)."""
    a = asarray(a)
    _check_matrices(a, "pinv", square=False)
    m, n = a.shape[-2:]
    k = min(m, n)
    if k == 0:
        return zeros(a.shape[:-2] + (n, m), _float_dtype(a), stream=stream)
    u, s, vt = svd(a, stream=stream)
    u = _slice(u, -1, 0, k, stream)
    vt = _slice(vt, -2, 0, k, stream)
    cutoff = 1e-15 * _rd.max(s, axis=-1, keepdims=True, stream=stream)
    large = s > cutoff
    s_inv = _mp.where(large, 1.0 / _mp.where(large, s, 1.0, stream=stream), 0.0, stream=stream)
    scaled = _mH(vt, stream) * _mp.expand_dims(s_inv, -2, stream=stream).astype(vt.dtype, stream=stream)
    return matmul(scaled, _mH(u, stream), stream=stream)


# ---- decompositions ----


def qr(a, *, stream=None):
    """The reduced QR factorization: Q (..., m, k) with orthonormal columns and
    upper-triangular R (..., k, n), k = min(m, n) (LAPACK geqrf + orgqr)."""
    q, r = _decompose(lib.EM_P_QR, asarray(a), stream=stream)
    return q, r


def svd(a, compute_uv=True, *, stream=None):
    """The SVD a = U @ diag(S) @ Vt with full U (m, m) and Vt (n, n) (LAPACK
    gesdd); only S (..., min(m, n)), descending, when compute_uv is False."""
    pieces = _decompose(lib.EM_P_SVD, asarray(a), (int(bool(compute_uv)),), stream)
    if not compute_uv:
        return _real(pieces[0], stream)
    u, s, vt = pieces
    return u, _real(s, stream), vt


def _uplo(UPLO, name):
    if UPLO not in ("L", "U"):
        raise ValueError(f"[{name}] UPLO must be 'L' or 'U', got {UPLO!r}")
    return int(UPLO == "U")


def eigh(a, UPLO="L", *, stream=None):
    """Eigenvalues (ascending) and eigenvectors (columns) of symmetric (or
    Hermitian) matrices, reading the lower (UPLO='L') or upper triangle
    (LAPACK syevd, heevd)."""
    w, v = _decompose(lib.EM_P_EIGH, asarray(a), (_uplo(UPLO, "eigh"), 1), stream)
    return _real(w, stream), v


def eigvalsh(a, UPLO="L", *, stream=None):
    """Eigenvalues (ascending) of symmetric (or Hermitian) matrices."""
    w = _decompose(lib.EM_P_EIGH, asarray(a), (_uplo(UPLO, "eigvalsh"), 0), stream)[0]
    return _real(w, stream)


def eig(a, *, stream=None):
    """Eigenvalues and right eigenvectors (unit-norm columns) of general
    matrices, as complex64 (LAPACK geev)."""
    w, v = _decompose(lib.EM_P_EIG, asarray(a), (1,), stream)
    return w, v


def eigvals(a, *, stream=None):
    """Eigenvalues of general matrices, as complex64."""
    return _decompose(lib.EM_P_EIG, asarray(a), (0,), stream)[0]


def lu_factor(a, *, stream=None):
    """The compact LU factorization (LAPACK getrf): LU holds L's strict lower
    triangle (unit diagonal implied) and U, and pivots (uint32, 0-based) the
    row swapped with row i at step i."""
    lu_mat, pivots, _ = _decompose(lib.EM_P_LU, asarray(a), stream=stream)
    return lu_mat, pivots.astype(_dt.uint32, stream=stream)


def lu(a, *, stream=None):
    """The LU factorization as (p, L, U) with a = L[p] @ U: p the row indices
    (uint32), L (m, k) unit lower triangular, U (k, n) upper triangular."""
    a = asarray(a)
    _check_matrices(a, "lu", square=False)
    lu_mat, _, p = _decompose(lib.EM_P_LU, a, stream=stream)
    m, n = a.shape[-2:]
    k = min(m, n)
    lower = _mp.tril(_slice(lu_mat, -1, 0, k, stream), -1, stream=stream)
    lower = lower + eye(m, k, dtype=lower.dtype, stream=stream)
    upper = _mp.triu(_slice(lu_mat, -2, 0, k, stream), stream=stream)
    return p.astype(_dt.uint32, stream=stream), lower, upper


def _lu_parts(a, name, stream):
    """The diagonal of U and the sign of the row permutation of a's LU factorization."""
    _check_matrices(a, name)
    lu_mat, pivots, _ = _decompose(lib.EM_P_LU, a, stream=stream)
    d = _matrix_diagonal(lu_mat, stream)
    steps = arange(a.shape[-1], dtype=pivots.dtype, stream=stream)
    swaps = _rd.sum(pivots != steps, axis=-1, stream=stream)
    parity = (1 - 2 * (swaps % 2)).astype(d.dtype, stream=stream)
    return d, parity


def _singular(d, stream):
    """Whether U has an exact zero pivot: numpy then answers det 0 (even
    beside NaNs), as LAPACK reports the matrix singular."""
    return _rd.any(d == 0, axis=-1, stream=stream)


def det(a, *, stream=None):
    """The determinant, from the LU factorization (as numpy)."""
    d, parity = _lu_parts(asarray(a), "det", stream)
    value = _rd.prod(d, axis=-1, stream=stream) * parity
    return _mp.where(_singular(d, stream), 0.0, value, stream=stream)


def slogdet(a, *, stream=None):
    """(sign, log|det|) from the LU factorization; a singular matrix gives (0, -inf)."""
    d, parity = _lu_parts(asarray(a), "slogdet", stream)
    size = _ew.abs(d, stream=stream)
    if d.dtype == _dt.complex64:
        unit = d / _mp.where(size == 0, 1.0, size, stream=stream).astype(d.dtype, stream=stream)
    else:
        unit = _ew.sign(d, stream=stream)
    singular = _singular(d, stream)
    sign = _mp.where(singular, 0.0, _rd.prod(unit, axis=-1, stream=stream) * parity, stream=stream)
    logdet = _rd.sum(_ew.log(size, stream=stream), axis=-1, stream=stream)
    return sign, _mp.where(singular, float("-inf"), logdet, stream=stream)


# ---- norm and cross ----


def _vector_norm(x, ord, axis, keepdims, stream):
    size = _ew.abs(x, stream=stream)
    if ord is None or ord == 2:
        return _ew.sqrt(_rd.sum(size * size, axis=axis, keepdims=keepdims, stream=stream), stream=stream)
    if ord == float("inf"):
        return _rd.max(size, axis=axis, keepdims=keepdims, stream=stream)
    if ord == float("-inf"):
        return _rd.min(size, axis=axis, keepdims=keepdims, stream=stream)
    if ord == 0:
        nonzero = (size != 0).astype(size.dtype, stream=stream)
        return _rd.sum(nonzero, axis=axis, keepdims=keepdims, stream=stream)
    if ord == 1:
        return _rd.sum(size, axis=axis, keepdims=keepdims, stream=stream)
    total = _rd.sum(size ** float(ord), axis=axis, keepdims=keepdims, stream=stream)
    return total ** (1.0 / float(ord))


def _matrix_norm(x, ord, axes, keepdims, stream):
    row, col = axes
    if ord in ("fro", None):
        size = _ew.abs(x, stream=stream)
        out = _ew.sqrt(_rd.sum(size * size, axis=axes, keepdims=True, stream=stream), stream=stream)
    elif ord in (1, -1, float("inf"), float("-inf")):
        # 1: largest column sum; inf: largest row sum.
        summed, picked = (row, col) if ord in (1, -1) else (col, row)
        sums = _rd.sum(_ew.abs(x, stream=stream), axis=summed, keepdims=True, stream=stream)
        pick = _rd.max if ord in (1, float("inf")) else _rd.min
        out = pick(sums, axis=picked, keepdims=True, stream=stream)
    elif ord in (2, -2, "nuc"):
        moved = _mp.transpose(x, [d for d in range(x.ndim) if d not in axes] + [row, col],
                              stream=stream)
        s = svd(moved, compute_uv=False, stream=stream)
        if ord == "nuc":
            out = _rd.sum(s, axis=-1, stream=stream)
        else:
            out = (_rd.max if ord == 2 else _rd.min)(s, axis=-1, stream=stream)
        out = _mp.expand_dims(out, sorted(axes), stream=stream)
    else:
        raise ValueError(f"[norm] invalid norm order {ord!r} for matrices")
    if keepdims:
        return out
    return _mp.reshape(out, tuple(s for d, s in enumerate(x.shape) if d not in axes), stream=stream)


def norm(a, /, ord=None, axis=None, keepdims=False, *, stream=None):
    """Vector or matrix norm (numpy.linalg.norm's orders).

    axis None: with ord None, the 2-norm of the flattened array; otherwise a
    1-D array takes a vector norm and a 2-D array a matrix norm. An int axis
    takes vector norms, a pair of axes matrix norms.
    vectors: None/2, inf, -inf, 0 (count of non-zeros), 1, any other p
    (sum(|x|**p)**(1/p)). matrices: None/'fro', 'nuc', inf, -inf, 1, -1, 2, -2.
    """
    a = asarray(a)
    if not _dt.is_inexact(a.dtype):
        a = a.astype(_dt.float32, stream=stream)
    if axis is None:
        if ord is None:
            flat = _mp.reshape(a, (-1,), stream=stream)
            out = _vector_norm(flat, None, 0, False, stream)
            return _mp.reshape(out, (1,) * a.ndim, stream=stream) if keepdims else out
        if a.ndim not in (1, 2):
            raise ValueError(f"[norm] ord {ord!r} with axis None needs a 1-D or 2-D array, "
                             f"got shape {a.shape}")
        axis = tuple(range(a.ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for ax in axes:
        if not -a.ndim <= ax < a.ndim:
            raise ValueError(f"[norm] axis {ax} is out of bounds for array of dimension {a.ndim}")
    axes = tuple(ax % a.ndim for ax in axes)
    if len(axes) == 1:
        if isinstance(ord, str):
            raise ValueError(f"[norm] invalid norm order {ord!r} for vectors")
        return _vector_norm(a, ord, axes[0], keepdims, stream)
    if len(axes) == 2:
        if axes[0] == axes[1]:
            raise ValueError(f"[norm] duplicate axes {axis}")
        return _matrix_norm(a, ord, axes, keepdims, stream)
    raise ValueError(f"[norm] axis must name 1 or 2 axes, got {axis}")


def cross(a, b, axis=-1, *, stream=None):
    """The cross product of vectors along `axis` (inputs broadcast); a vector
    of 2 elements has a third one of zero (as in mlx.core)."""
    a, b = asarray(a), asarray(b)
    padded = []
    for name, x in (("a", a), ("b", b)):
        if x.ndim == 0 or not -x.ndim <= axis < x.ndim or x.shape[axis] not in (2, 3):
            raise ValueError(f"[cross] {name} of shape {x.shape} needs 2 or 3 elements on axis {axis}")
        if x.shape[axis] == 2:
            zero_shape = tuple(1 if d == axis % x.ndim else s for d, s in enumerate(x.shape))
            x = _mp.concatenate([x, zeros(zero_shape, x.dtype, stream=stream)], axis=axis, stream=stream)
        padded.append(x)
    a, b = _mp.broadcast_arrays(*padded, stream=stream)
    ax = axis % a.ndim

    def part(x, i):
        return _mp.squeeze(_slice(x, ax, i, i + 1, stream), ax, stream=stream)

    a0, a1, a2 = (part(a, i) for i in range(3))
    b0, b1, b2 = (part(b, i) for i in range(3))
    return _mp.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=ax,
                     stream=stream)


# ---- transform rules ----
#
# The standard matrix-calculus formulas, written with ember ops. Complex
# values follow JAX's convention: a vjp is the transpose of the jvp under the
# real pairing Re(sum(a * b)), with no conjugation, so grad of a real loss of
# a complex z is dL/dRe(z) - i dL/dIm(z). solve, inv, solve_triangular, lu
# and eig are holomorphic, so their rules are the real formulas with plain
# transposes. cholesky, qr, svd and eigh are not: their jvps use conjugate
# transposes (and the phase conditions that fix their results, below), and
# their vjps are written for the conjugated cotangent G = conj(ct), the
# adjoint under Re(tr(G^H dY)), whose result is conjugated back. For real
# inputs the conjugations do nothing and the formulas are the real ones.
# eigh and cholesky rules treat the input as the Hermitian matrix its one
# triangle defines: tangents and cotangents are symmetrized (as JAX does).
# Every vmap moves the batch axis to the front: the kernels batch over leading
# axes and the solves broadcast them.


def _solve_op(a, b, upper=None):
    if upper is None:
        return _op(lib.EM_P_SOLVE, [a, b])
    return _op(lib.EM_P_SOLVE_TRIANGULAR, [a, b], (int(upper),))


def _tri(x, upper):
    return _mp.triu(x) if upper else _mp.tril(x)


def _herm(x):
    """The Hermitian part (x + x^H) / 2 (the symmetric part of a real x)."""
    return (x + _mH(x)) * 0.5


def _conj(x):
    return _ew.conj(x)


def _imag_diagonal(x):
    """i Im(diag(x)) as a diagonal matrix; None for a real x."""
    if x.dtype != _dt.complex64:
        return None
    return (x - _ew.real(x).astype(x.dtype)) * eye(x.shape[-1], dtype=x.dtype)


def _real_diagonal(x):
    """Re(diag(x)) as a diagonal matrix of x's dtype."""
    return _ew.real(x).astype(x.dtype) * eye(x.shape[-1], dtype=x.dtype)


def _times_inv_upper(x, r):
    """x @ inv(r) for upper-triangular r."""
    return _mT(_solve_op(_mT(r), _mT(x), upper=False))


def _times_inv_upper_T(x, r):
    """x @ inv(r).T for upper-triangular r."""
    return _mT(_solve_op(r, _mT(x), upper=True))


def _times_inv_upper_H(x, r):
    """x @ inv(r)^H for upper-triangular r."""
    return _mH(_solve_op(r, _mH(x), upper=True))


def _vmap_leading(node, inputs, axes):
    batch_rank = max(x.ndim for x in node.inputs) - 2
    moved = []
    for x, ax, original in zip(inputs, axes, node.inputs):
        if ax is not None:
            x = _mp.moveaxis(x, ax, 0)
            missing = batch_rank - (original.ndim - 2)
            if missing:
                x = _mp.reshape(x, x.shape[:1] + (1,) * missing + x.shape[1:])
        moved.append(x)
    return _op(node.prim, moved, node.ip, node.fp), 0


# solve: x = a^-1 b.  dx = a^-1 (db - da x);  b_bar = a^-T x_bar, a_bar = -b_bar x^T.

def _solve_jvp(node, tangents):
    da, db = tangents
    if da is None and db is None:
        return None
    rhs = db
    if da is not None:
        rhs = -matmul(da, node.out) if rhs is None else rhs - matmul(da, node.out)
    return _solve_op(node.inputs[0], rhs)


def _solve_vjp(node, cotangent):
    cb = _solve_op(_mT(node.inputs[0]), cotangent)
    return [-matmul(cb, _mT(node.out)), cb]


# inv: x = a^-1.  dx = -x da x;  a_bar = -x^T x_bar x^T.

def _inv_jvp(node, tangents):
    (da,) = tangents
    if da is None:
        return None
    return -matmul(matmul(node.out, da), node.out)


def _inv_vjp(node, cotangent):
    xt = _mT(node.out)
    return [-matmul(matmul(xt, cotangent), xt)]


# solve_triangular: x = t^-1 b with t = tri(a).  dx = t^-1 (db - tri(da) x);
# b_bar = t^-T x_bar, a_bar = tri(-b_bar x^T).

def _solve_triangular_jvp(node, tangents):
    da, db = tangents
    if da is None and db is None:
        return None
    upper = node.ip[0]
    rhs = db
    if da is not None:
        term = matmul(_tri(da, upper), node.out)
        rhs = -term if rhs is None else rhs - term
    return _solve_op(node.inputs[0], rhs, upper)


def _solve_triangular_vjp(node, cotangent):
    upper = node.ip[0]
    cb = _solve_op(_mT(node.inputs[0]), cotangent, not upper)
    return [_tri(-matmul(cb, _mT(node.out)), upper), cb]


# cholesky: a = L L^H (L's diagonal real and positive).  With S = herm(da),
# dL = L phi(L^-1 S L^-H), phi = lower triangle with half the diagonal (the
# diagonal of L^-1 S L^-H is real, so dL's is);  G_a = herm(L^-H phi(L^H G_L) L^-1).
# upper: a = U^H U with U = L^H, so dU = dL^H and G_L = G_U^H.

def _phi(x):
    return _mp.tril(x, -1) + 0.5 * x * eye(x.shape[-1], dtype=x.dtype)


def _cholesky_jvp(node, tangents):
    (da,) = tangents
    if da is None:
        return None
    upper = node.ip[0]
    lower = _mH(node.out) if upper else node.out
    left = _solve_op(lower, _herm(da), upper=False)
    z = _solve_op(lower, _mH(left), upper=False)
    dl = matmul(lower, _phi(z))
    return _mH(dl) if upper else dl


def _cholesky_vjp(node, cotangent):
    upper = node.ip[0]
    lower = _mH(node.out) if upper else node.out
    g = _conj(cotangent)
    gl = _mH(g) if upper else g
    p = _phi(matmul(_mH(lower), gl))
    s = _solve_op(_mH(lower), p, upper=True)
    s = _mH(_solve_op(_mH(lower), _mH(s), upper=True))
    return [_conj(_herm(s))]


# qr (m >= n): R's diagonal is real (LAPACK's Householder reflectors make it
# so), which fixes Q and R up to signs. With X = da R^-1 and C = Q^H X,
# Omega = Q^H dQ is skew-Hermitian with Omega = tril(C, -1) - tril(C, -1)^H
# + i Im(diag(C)) (dR R^-1 is upper triangular with a real diagonal), and
# dQ = X + Q (Omega - C), dR = (C - Omega) R.  Its adjoint: with
# M = R_bar R^H - Q^H Q_bar (for G = conj(ct)) and K = triu(M, 1) +
# tril(M^H, -1) + Re(diag(M)), G_a = (Q_bar + Q K) R^-H.
# Wide (m < n): a = [x | y] with x = Q R1 square and R2 = Q^H y.

def _qr_tall_jvp(q, r, da):
    da_rinv = _times_inv_upper(da, r)
    c = matmul(_mH(q), da_rinv)
    low = _mp.tril(c, -1)
    omega = low - _mH(low)
    imaginary = _imag_diagonal(c)
    if imaginary is not None:
        omega = omega + imaginary
    return matmul(q, omega - c) + da_rinv, matmul(c - omega, r)


def _qr_tall_vjp(q, r, gq, gr):
    m = matmul(gr, _mH(r)) - matmul(_mH(q), gq)
    copied = _mp.triu(m, 1) + _mp.tril(_mH(m), -1) + _real_diagonal(m)
    return _times_inv_upper_H(gq + matmul(q, copied), r)


def _qr_jvp(node, tangents):
    (da,) = tangents
    if da is None:
        return None
    a = node.inputs[0]
    m, n = a.shape[-2:]
    q, r = _results(node)
    if m >= n:
        dq, dr = _qr_tall_jvp(q, r, da)
    else:
        dq, dr1 = _qr_tall_jvp(q, _slice(r, -1, 0, m), _slice(da, -1, 0, m))
        dr2 = matmul(_mH(dq), _slice(a, -1, m, n)) + matmul(_mH(q), _slice(da, -1, m, n))
        dr = _mp.concatenate([dr1, dr2], axis=-1)
    return _pack([dq, dr], a.shape[:-2])


def _qr_vjp(node, cotangent):
    a = node.inputs[0]
    m, n = a.shape[-2:]
    q, r = _results(node)
    gq, gr = _unpack(_conj(cotangent), a.shape[:-2], _layout(node.prim, a.shape, node.ip))
    if m >= n:
        return [_conj(_qr_tall_vjp(q, r, gq, gr))]
    gr1, gr2 = _slice(gr, -1, 0, m), _slice(gr, -1, m, n)
    y = _slice(a, -1, m, n)
    gx = _qr_tall_vjp(q, _slice(r, -1, 0, m), gq + matmul(y, _mH(gr2)), gr1)
    return [_conj(_mp.concatenate([gx, matmul(q, gr2)], axis=-1))]


# eigh: a = V diag(w) V^H, w real.  With F_ij = 1 / (w_j - w_i) off the
# diagonal and P = V^H herm(da) V: dw = diag(P) (real: P is Hermitian),
# dV = V (F * P). Each column's phase is free; this dV fixes it by
# Im(diag(V^H dV)) = 0 (as JAX).  G_a = herm(V (diag(G_w) + F * V^H G_V) V^H).

def _gaps(w, squared=False):
    """F_ij = 1 / (w_j - w_i) (or 1 / (w_j^2 - w_i^2)) off the diagonal, 0 on it."""
    row, col = _mp.expand_dims(w, -2), _mp.expand_dims(w, -1)
    identity = eye(w.shape[-1], dtype=w.dtype)
    diff = row * row - col * col if squared else row - col
    return 1.0 / (diff + identity) - identity


def _eigh_parts(node):
    upper, vectors = node.ip
    if vectors:
        w, v = _results(node)
    else:
        w, v = _decompose(lib.EM_P_EIGH, node.inputs[0], (upper, 1))
    return _real(w), v


def _eigh_jvp(node, tangents):
    (da,) = tangents
    if da is None:
        return None
    w, v = _eigh_parts(node)
    vdv = matmul(matmul(_mH(v), _herm(da)), v)
    dw = _ew.real(_matrix_diagonal(vdv)).astype(v.dtype)
    if not node.ip[1]:
        return dw
    return _pack([dw, matmul(v, _gaps(w) * vdv)], w.shape[:-1])


def _eigh_vjp(node, cotangent):
    w, v = _eigh_parts(node)
    pieces = _unpack(_conj(cotangent), w.shape[:-1], _layout(node.prim, node.inputs[0].shape, node.ip))
    inner = _diag_matrix(_ew.real(pieces[0])).astype(v.dtype)
    if node.ip[1]:
        inner = inner + _gaps(w) * matmul(_mH(v), pieces[1])
    return [_conj(_herm(matmul(matmul(v, inner), _mH(v))))]


# svd: a = U diag(s) V^H, with the k = min(m, n) leading columns Ur, Vr and
# F_ij = 1 / (s_j^2 - s_i^2) off the diagonal.  With P = Ur^H da Vr:
# ds = Re(diag(P)), dUr = Ur (F * (P S + S P^H) + i Im(diag(P)) S^-1)
# + (I - Ur Ur^H) da Vr S^-1, dVr = Vr (F * (S P + P^H S)) + (I - Vr Vr^H)
# da^H Ur S^-1, and the extra columns Up of the full U move as
# dUp = -Ur dUr^H Up (likewise for V), the tangent keeping U unitary with
# Up^H dUp = 0. A phase e^(i t) on column j of both Ur and Vr leaves a
# unchanged; the rule fixes it as JAX does: Vr^H dVr has a zero diagonal and
# Ur^H dUr carries i Im(P_jj) / s_j (the part a's change asks of the pair).
# The vjp is its adjoint (for G = conj(ct), conjugated back).

def _svd_parts(node):
    if node.ip[0]:
        u, s, vt = _results(node)
    else:
        u, s, vt = _decompose(lib.EM_P_SVD, node.inputs[0], (1,))
    return u, _real(s), vt


def _safe_inverse(s):
    zero = s == 0
    return _mp.where(zero, 0.0, 1.0 / _mp.where(zero, 1.0, s))


def _svd_jvp(node, tangents):
    (da,) = tangents
    if da is None:
        return None
    m, n = node.inputs[0].shape[-2:]
    k = min(m, n)
    u, s, vt = _svd_parts(node)
    v = _mH(vt)
    ur, vr = _slice(u, -1, 0, k), _slice(v, -1, 0, k)
    ds_mat = matmul(matmul(_mH(ur), da), vr)
    ds = _ew.real(_matrix_diagonal(ds_mat)).astype(u.dtype)
    if not node.ip[0]:
        return ds
    f = _gaps(s, squared=True)
    s_row, s_col = _mp.expand_dims(s, -2), _mp.expand_dims(s, -1)
    inv_row = _mp.expand_dims(_safe_inverse(s), -2)
    omega_u = f * (ds_mat * s_row + s_col * _mH(ds_mat))
    imaginary = _imag_diagonal(ds_mat)
    if imaginary is not None:
        omega_u = omega_u + imaginary * inv_row
    du = matmul(ur, omega_u)
    dv = matmul(vr, f * (s_col * ds_mat + _mH(ds_mat) * s_row))
    if m > k:
        du = du + (matmul(da, vr) - matmul(ur, ds_mat)) * inv_row
        up = _slice(u, -1, k, m)
        du = _mp.concatenate([du, -matmul(matmul(ur, _mH(du)), up)], axis=-1)
    if n > k:
        dv = dv + (matmul(_mH(da), ur) - matmul(vr, _mH(ds_mat))) * inv_row
        vp = _slice(v, -1, k, n)
        dv = _mp.concatenate([dv, -matmul(matmul(vr, _mH(dv)), vp)], axis=-1)
    return _pack([du, ds, _mH(dv)], s.shape[:-1])


def _svd_vjp(node, cotangent):
    m, n = node.inputs[0].shape[-2:]
    k = min(m, n)
    u, s, vt = _svd_parts(node)
    v = _mH(vt)
    ur, vr = _slice(u, -1, 0, k), _slice(v, -1, 0, k)
    g = _conj(cotangent)
    if not node.ip[0]:
        gs = _ew.real(g).astype(u.dtype)
        return [_conj(matmul(ur * _mp.expand_dims(gs, -2), _mH(vr)))]
    gu, gs, gvt = _unpack(g, s.shape[:-1], _layout(node.prim, node.inputs[0].shape, node.ip))
    gv = _mH(gvt)
    gur, gvr = _slice(gu, -1, 0, k), _slice(gv, -1, 0, k)
    if m > k:
        up = _slice(u, -1, k, m)
        gur = gur - matmul(matmul(up, _mH(_slice(gu, -1, k, m))), ur)
    if n > k:
        vp = _slice(v, -1, k, n)
        gvr = gvr - matmul(matmul(vp, _mH(_slice(gv, -1, k, n))), vr)
    f = _gaps(s, squared=True)
    j0 = matmul(_mH(ur), gur)
    j = f * j0
    kk = f * matmul(_mH(vr), gvr)
    s_row, s_col = _mp.expand_dims(s, -2), _mp.expand_dims(s, -1)
    inner = ((j + _mH(j)) * s_row + _diag_matrix(_ew.real(gs)).astype(u.dtype)
             + s_col * (kk + _mH(kk)))
    s_inv = _safe_inverse(s)
    imaginary = _imag_diagonal(j0)
    if imaginary is not None:
        inner = inner + imaginary * _mp.expand_dims(s_inv, -2)
    ga = matmul(matmul(ur, inner), _mH(vr))
    if m > k:
        rest = (gur - matmul(ur, matmul(_mH(ur), gur))) * _mp.expand_dims(s_inv, -2)
        ga = ga + matmul(rest, _mH(vr))
    if n > k:
        rest = _mH(gvr) - matmul(matmul(_mH(gvr), vr), _mH(vr))
        ga = ga + matmul(ur, _mp.expand_dims(s_inv, -1) * rest)
    return [_conj(ga)]


# eig: a V = V diag(w), holomorphic in a.  With X = V^-1 da V and
# E_ij = 1 / (w_j - w_i) off the diagonal: dw = diag(X), and dV = V (E * X)
# + V diag(c), where c is the freedom each eigenvector's scale leaves. The
# rule fixes it by LAPACK's normalisation, which ember's eig returns: each
# column v_j has unit norm (Re(v_j^H dv_j) = 0) and its largest entry, at
# row k_j, real (Im(dV_kj) = 0). With U = V (E * X):
#     c_j = -Re(v_j^H u_j) - i Im(U_kj) / V_kj,
# which makes the jvp the derivative of ember's eig itself. Its adjoint
# (for G = conj(ct) as above, h = diag(V^H G_V)):
#     G_U = G_V - V diag(Re h) - i e_kj Im(h_j) / V_kj (at row k_j of column j),
#     G_X = conj(E) * (V^H G_U) + diag(G_w),  G_a = V^-H G_X V^H,
# conjugated back, and its real part for a real a.

def _eig_parts(node):
    a = node.inputs[0]
    if node.ip[0]:
        w, v = _results(node)
    else:
        w, v = _decompose(lib.EM_P_EIG, a, (1,))
    return a, w, v, inv(v)


def _largest_entries(v):
    """A 0/1 mask of each column's largest entry (LAPACK's real one) and that entry."""
    rows = arange(v.shape[-2], dtype=_dt.int32)
    top = _rd.argmax(_ew.abs(v), axis=-2, keepdims=True).astype(_dt.int32)
    mask = (_mp.expand_dims(rows, -1) == top).astype(v.dtype)
    return mask, _ew.real(_rd.sum(v * mask, axis=-2, keepdims=True))


def _eig_jvp(node, tangents):
    (da,) = tangents
    if da is None:
        return None
    a, w, v, v_inv = _eig_parts(node)
    x = matmul(matmul(v_inv, da.astype(_dt.complex64)), v)
    dw = _matrix_diagonal(x)
    if not node.ip[0]:
        return dw
    du = matmul(v, _gaps(w) * x)
    mask, top = _largest_entries(v)
    along = _ew.real(_rd.sum(_ew.conj(v) * du, axis=-2, keepdims=True))
    turn = _ew.imag(_rd.sum(du * mask, axis=-2, keepdims=True)) / top
    c = along.astype(_dt.complex64) + turn.astype(_dt.complex64) * 1j
    return _pack([dw, du - v * c], a.shape[:-2])


def _eig_vjp(node, cotangent):
    a, w, v, v_inv = _eig_parts(node)
    g = _conj(cotangent)
    if node.ip[0]:
        gw, gv = _unpack(g, a.shape[:-2], _layout(node.prim, a.shape, node.ip))
        h = _rd.sum(_ew.conj(v) * gv, axis=-2, keepdims=True)
        mask, top = _largest_entries(v)
        gu = (gv - v * _ew.real(h).astype(_dt.complex64)
              - mask * (_ew.imag(h) / top).astype(_dt.complex64) * 1j)
        gx = _conj(_gaps(w)) * matmul(_mH(v), gu) + _diag_matrix(gw)
    else:
        gx = _diag_matrix(g)
    ga = _conj(matmul(matmul(_mH(v_inv), gx), _mH(v)))
    return [ga if a.dtype == _dt.complex64 else _ew.real(ga).astype(a.dtype)]


# lu: P a = L U, with L padded to m x m and U to n x n by identity blocks.
# With x = P da and z = L^-1 x U^-1: d(LU) = L tril(z, -1) + triu(z) U;
# z_bar = tril(L^T c, -1) + triu(c U^T), a_bar = P^T L^-T z_bar U^-T.
# Pivots and row indices are piecewise constant.

def _lu_padded(node):
    a = node.inputs[0]
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = a.shape[:-2]
    lu_mat, _, p = _results(node)
    dtype = lu_mat.dtype
    lower = _mp.tril(_slice(lu_mat, -1, 0, k), -1) + eye(m, k, dtype=dtype)
    upper = _mp.triu(_slice(lu_mat, -2, 0, k))
    if m > k:
        fill = _mp.broadcast_to(_slice(eye(m, dtype=dtype), -1, k, m), batch + (m, m - k))
        lower = _mp.concatenate([lower, fill], axis=-1)
    if n > k:
        fill = _mp.broadcast_to(_slice(eye(n, dtype=dtype), -2, k, n), batch + (n - k, n))
        upper = _mp.concatenate([upper, fill], axis=-2)
    rows = _mp.expand_dims(arange(m, dtype=p.dtype), -1)
    permutation = (_mp.expand_dims(p, -2) == rows).astype(dtype)
    return lower, upper, permutation


def _lu_jvp(node, tangents):
    (da,) = tangents
    if da is None:
        return None
    a = node.inputs[0]
    m, n = a.shape[-2:]
    lower, upper, permutation = _lu_padded(node)
    z = _solve_op(lower, matmul(permutation, da), upper=False)
    z = _times_inv_upper(z, upper)
    dlu = matmul(lower, _mp.tril(z, -1)) + matmul(_mp.triu(z), upper)
    batch = a.shape[:-2]
    rest = zeros(batch + (min(m, n) + m,), dlu.dtype)
    return _mp.concatenate([_mp.reshape(dlu, batch + (m * n,)), rest], axis=-1)


def _lu_vjp(node, cotangent):
    a = node.inputs[0]
    lower, upper, permutation = _lu_padded(node)
    c = _unpack(cotangent, a.shape[:-2], _layout(node.prim, a.shape, node.ip))[0]
    z = _mp.tril(matmul(_mT(lower), c), -1) + _mp.triu(matmul(c, _mT(upper)))
    x = _times_inv_upper_T(_solve_op(_mT(lower), z, upper=True), upper)
    return [matmul(_mT(permutation), x)]


register(lib.EM_P_SOLVE, jvp=_solve_jvp, vjp=_solve_vjp, vmap=_vmap_leading)
register(lib.EM_P_INV, jvp=_inv_jvp, vjp=_inv_vjp, vmap=_vmap_leading)
register(lib.EM_P_SOLVE_TRIANGULAR, jvp=_solve_triangular_jvp, vjp=_solve_triangular_vjp,
         vmap=_vmap_leading)
register(lib.EM_P_CHOLESKY, jvp=_cholesky_jvp, vjp=_cholesky_vjp, vmap=_vmap_leading)
register(lib.EM_P_QR, jvp=_qr_jvp, vjp=_qr_vjp, vmap=_vmap_leading)
register(lib.EM_P_SVD, jvp=_svd_jvp, vjp=_svd_vjp, vmap=_vmap_leading)
register(lib.EM_P_EIGH, jvp=_eigh_jvp, vjp=_eigh_vjp, vmap=_vmap_leading)
register(lib.EM_P_EIG, jvp=_eig_jvp, vjp=_eig_vjp, vmap=_vmap_leading)
register(lib.EM_P_LU, jvp=_lu_jvp, vjp=_lu_vjp, vmap=_vmap_leading)
