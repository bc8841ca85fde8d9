"""ember.core.linalg against numpy.linalg (and scipy.linalg where numpy has no
counterpart), with fresh random well-conditioned inputs.

Decompositions that are not unique (QR and SVD signs, eigenvector phases,
eig's order) are checked by reconstruction and by their invariants. The
transform rules are checked directly on primitive nodes: each jvp against
central finite differences in float64, each vjp against its jvp (the two
must be adjoint), each vmap against a loop over the batch.
"""
import numpy as np
import pytest
import scipy.linalg

import ember.core as em
from ember.core import linalg as la
from ember.core._ffi import lib
from ember.core.array import _op
from ember.core.primitives import Node, rules_of

BATCHES = [(), (3,), (2, 3)]
SIZES = [1, 2, 5, 17]
DTYPES = [np.float32, np.float64]


def tol(dtype, n=1):
    return dict(rtol=2e-4 * max(n, 1), atol=2e-4 * max(n, 1)) if dtype == np.float32 \
        else dict(rtol=1e-9, atol=1e-9)


def general(rng, shape, dtype):
    """Well-conditioned general matrices: eigenvalues within 1 of 2."""
    n = shape[-1]
    a = rng.standard_normal(shape) / np.sqrt(max(n, 1)) * 0.5
    if shape[-1] == shape[-2]:
        a = a + 2 * np.eye(n)
    return a.astype(dtype)


def spd(rng, shape, dtype):
    b = rng.standard_normal(shape) / np.sqrt(shape[-1])
    return (b @ np.swapaxes(b, -1, -2) + np.eye(shape[-1])).astype(dtype)


def symmetric(rng, shape, dtype):
    b = rng.standard_normal(shape)
    return ((b + np.swapaxes(b, -1, -2)) / 2).astype(dtype)


def npa(x):
    return np.array(x)


def check_dtype(x, dtype):
    assert npa(x).dtype == dtype


# ---- solves and inverses ----


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_inv(rng, batch, n, dtype):
    a = general(rng, batch + (n, n), dtype)
    out = la.inv(em.array(a))
    check_dtype(out, dtype)
    np.testing.assert_allclose(npa(out), np.linalg.inv(a), **tol(dtype, n))


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_solve(rng, batch, n, dtype):
    a = general(rng, batch + (n, n), dtype)
    b = rng.standard_normal(batch + (n, 3)).astype(dtype)
    out = la.solve(em.array(a), em.array(b))
    check_dtype(out, dtype)
    np.testing.assert_allclose(npa(out), np.linalg.solve(a, b), **tol(dtype, n))
    v = rng.standard_normal(n).astype(dtype)
    np.testing.assert_allclose(npa(la.solve(em.array(a), em.array(v))), np.linalg.solve(a, v),
                               **tol(dtype, n))


def test_solve_broadcasts_batches(rng):
    a = general(rng, (2, 1, 4, 4), np.float64)
    b = rng.standard_normal((3, 4, 2))
    out = la.solve(em.array(a), em.array(b))
    assert out.shape == (2, 3, 4, 2)
    np.testing.assert_allclose(npa(out), np.linalg.solve(a, b), rtol=1e-10, atol=1e-10)


def test_solve_promotes_like_numpy(rng):
    a = general(rng, (3, 3), np.float32)
    b = rng.standard_normal((3, 2))
    out = la.solve(em.array(a), em.array(b))  # float32 with float64 -> float64
    check_dtype(out, np.float64)
    np.testing.assert_allclose(npa(out), np.linalg.solve(a.astype(np.float64), b), rtol=1e-10)
    ints = la.inv(em.array([[2, 1], [1, 3]]))  # integers compute in float32 (mlx.core)
    check_dtype(ints, np.float32)
    np.testing.assert_allclose(npa(ints), np.linalg.inv([[2, 1], [1, 3]]), rtol=1e-6)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("upper", [False, True])
def test_solve_triangular(rng, batch, n, dtype, upper):
    a = general(rng, batch + (n, n), dtype)  # the other triangle must be ignored
    b = rng.standard_normal(batch + (n, 2)).astype(dtype)
    tri = np.triu(a) if upper else np.tril(a)
    out = la.solve_triangular(em.array(a), em.array(b), upper=upper)
    check_dtype(out, dtype)
    np.testing.assert_allclose(npa(out), np.linalg.solve(tri, b), **tol(dtype, n))
    if not batch:
        ref = scipy.linalg.solve_triangular(a, b[:, 0], lower=not upper)
        np.testing.assert_allclose(npa(la.solve_triangular(em.array(a), em.array(b[:, 0]), upper=upper)),
                                   ref, **tol(dtype, n))


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_tri_inv(rng, upper, dtype):
    a = general(rng, (2, 6, 6), dtype)
    tri = np.triu(a) if upper else np.tril(a)
    np.testing.assert_allclose(npa(la.tri_inv(em.array(a), upper=upper)), np.linalg.inv(tri),
                               **tol(dtype, 6))


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("upper", [False, True])
def test_cholesky(rng, batch, n, dtype, upper):
    a = spd(rng, batch + (n, n), dtype)
    out = la.cholesky(em.array(a), upper=upper)
    check_dtype(out, dtype)
    np.testing.assert_allclose(npa(out), np.linalg.cholesky(a, upper=upper), **tol(dtype, n))


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cholesky_inv(rng, upper, dtype):
    a = spd(rng, (3, 5, 5), dtype)
    factor = np.linalg.cholesky(a, upper=upper)
    out = la.cholesky_inv(em.array(factor), upper=upper)
    np.testing.assert_allclose(npa(out), np.linalg.inv(a), **tol(dtype, 5))


@pytest.mark.parametrize("shape", [(4, 4), (6, 3), (3, 6), (2, 5, 5), (2, 3, 7, 4)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_pinv(rng, shape, dtype):
    a = general(rng, shape, dtype)
    out = la.pinv(em.array(a))
    check_dtype(out, dtype)
    np.testing.assert_allclose(npa(out), np.linalg.pinv(a), **tol(dtype, 10))


def test_pinv_of_rank_deficient(rng):
    x = rng.standard_normal((5, 2))
    a = x @ rng.standard_normal((2, 4))  # rank 2
    np.testing.assert_allclose(npa(la.pinv(em.array(a))), np.linalg.pinv(a), rtol=1e-8, atol=1e-8)


# ---- decompositions ----


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("mn", [(1, 1), (2, 2), (5, 5), (17, 17), (7, 3), (3, 7)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_qr(rng, batch, mn, dtype):
    a = rng.standard_normal(batch + mn).astype(dtype)
    q, r = la.qr(em.array(a))
    q, r = npa(q), npa(r)
    k = min(mn)
    assert q.shape == batch + (mn[0], k) and r.shape == batch + (k, mn[1])
    assert q.dtype == dtype and r.dtype == dtype
    t = tol(dtype, max(mn))
    np.testing.assert_allclose(q @ r, a, **t)
    np.testing.assert_allclose(np.swapaxes(q, -1, -2) @ q, np.broadcast_to(np.eye(k), batch + (k, k)), **t)
    np.testing.assert_array_equal(r, np.triu(r))
    # Unique up to the sign of each row of R.
    np.testing.assert_allclose(np.abs(r), np.abs(np.linalg.qr(a)[1]), **t)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("mn", [(1, 1), (2, 2), (5, 5), (17, 17), (6, 4), (4, 6)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_svd(rng, batch, mn, dtype):
    a = rng.standard_normal(batch + mn).astype(dtype)
    u, s, vt = (npa(x) for x in la.svd(em.array(a)))
    m, n = mn
    k = min(mn)
    assert u.shape == batch + (m, m) and s.shape == batch + (k,) and vt.shape == batch + (n, n)
    t = tol(dtype, max(mn))
    np.testing.assert_allclose(s, np.linalg.svd(a, compute_uv=False), **t)
    np.testing.assert_allclose((u[..., :, :k] * s[..., None, :]) @ vt[..., :k, :], a, **t)
    np.testing.assert_allclose(np.swapaxes(u, -1, -2) @ u, np.broadcast_to(np.eye(m), batch + (m, m)), **t)
    np.testing.assert_allclose(vt @ np.swapaxes(vt, -1, -2), np.broadcast_to(np.eye(n), batch + (n, n)), **t)
    only = la.svd(em.array(a), compute_uv=False)
    check_dtype(only, dtype)
    np.testing.assert_allclose(npa(only), np.linalg.svd(a, compute_uv=False), **t)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("uplo", ["L", "U"])
def test_eigh(rng, batch, n, dtype, uplo):
    a = symmetric(rng, batch + (n, n), dtype)
    # Only the named triangle is read: spoil the other one.
    noise = rng.standard_normal(batch + (n, n)).astype(dtype)
    given = a + (np.triu(noise, 1) if uplo == "L" else np.tril(noise, -1))
    w, v = la.eigh(em.array(given), UPLO=uplo)
    w, v = npa(w), npa(v)
    assert w.dtype == dtype and v.dtype == dtype
    t = tol(dtype, n)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(a), **t)
    np.testing.assert_allclose(a @ v, v * w[..., None, :], **t)
    np.testing.assert_allclose(np.swapaxes(v, -1, -2) @ v, np.broadcast_to(np.eye(n), batch + (n, n)), **t)
    np.testing.assert_allclose(npa(la.eigvalsh(em.array(given), UPLO=uplo)), np.linalg.eigvalsh(a), **t)


def assert_same_eigenvalues(ours, ref, tol):
    """Eigenvalues agree as sets (the order of eig is not defined)."""
    ours, ref = ours.reshape(-1, ours.shape[-1]), ref.reshape(-1, ref.shape[-1])
    for w, r in zip(ours, ref):
        distance = np.abs(w[:, None] - r[None, :])
        assert distance.min(axis=1).max() <= tol * (1 + np.abs(r).max())
        assert distance.min(axis=0).max() <= tol * (1 + np.abs(r).max())


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_eig(rng, batch, n, dtype):
    a = rng.standard_normal(batch + (n, n)).astype(dtype)
    w, v = la.eig(em.array(a))
    w, v = npa(w), npa(v)
    assert w.dtype == np.complex64 and v.dtype == np.complex64
    t = dict(rtol=1e-3 * n, atol=1e-3 * n)
    ref = np.linalg.eigvals(a)
    assert_same_eigenvalues(w, ref, 1e-4 * n)
    np.testing.assert_allclose(a @ v, v * w[..., None, :], **t)
    np.testing.assert_allclose(np.linalg.norm(v, axis=-2), np.ones(batch + (n,)), **t)
    assert_same_eigenvalues(npa(la.eigvals(em.array(a))), ref, 1e-4 * n)


def test_eig_complex_pairs():
    rotation = np.array([[0.0, -1.0], [1.0, 0.0]])
    w, v = la.eig(em.array(rotation))
    np.testing.assert_allclose(np.sort_complex(npa(w)), [-1j, 1j], atol=1e-6)
    np.testing.assert_allclose(rotation @ npa(v), npa(v) * npa(w)[None, :], atol=1e-6)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("mn", [(1, 1), (2, 2), (5, 5), (17, 17), (6, 4), (4, 6)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_lu(rng, batch, mn, dtype):
    a = rng.standard_normal(batch + mn).astype(dtype)
    p, lower, upper = la.lu(em.array(a))
    p, lower, upper = npa(p), npa(lower), npa(upper)
    m, n = mn
    k = min(mn)
    assert p.dtype == np.uint32 and p.shape == batch + (m,)
    assert lower.shape == batch + (m, k) and upper.shape == batch + (k, n)
    t = tol(dtype, max(mn))
    np.testing.assert_allclose(np.take_along_axis(lower, p[..., None].astype(np.int64), -2) @ upper, a, **t)
    for index in np.ndindex(batch):
        ref_p, ref_l, ref_u = scipy.linalg.lu(a[index], p_indices=True)
        np.testing.assert_array_equal(p[index], ref_p)
        np.testing.assert_allclose(lower[index], ref_l, **t)
        np.testing.assert_allclose(upper[index], ref_u, **t)
        if m == n:
            ref_lu, ref_piv = scipy.linalg.lu_factor(a[index])
            lu_mat, piv = la.lu_factor(em.array(a[index]))
            np.testing.assert_allclose(npa(lu_mat), ref_lu, **t)
            np.testing.assert_array_equal(npa(piv), ref_piv)
            assert npa(piv).dtype == np.uint32


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_det_slogdet(rng, batch, n, dtype):
    a = rng.standard_normal(batch + (n, n)).astype(dtype)
    d = la.det(em.array(a))
    check_dtype(d, dtype)
    np.testing.assert_allclose(npa(d), np.linalg.det(a), rtol=1e-4 * n if dtype == np.float32 else 1e-9)
    sign, logdet = la.slogdet(em.array(a))
    ref = np.linalg.slogdet(a)
    np.testing.assert_array_equal(npa(sign), ref.sign)
    np.testing.assert_allclose(npa(logdet), ref.logabsdet, **tol(dtype, n))


def test_det_of_singular_and_nan_matrices():
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    zero_column = np.array([[0.0, 1.0], [0.0, 2.0]])
    for a in (singular, zero_column):
        np.testing.assert_array_equal(npa(la.det(em.array(a))), np.linalg.det(a))
        sign, logdet = la.slogdet(em.array(a))
        ref = np.linalg.slogdet(a)
        assert npa(sign) == ref.sign and npa(logdet) == ref.logabsdet
    with np.errstate(invalid="ignore"):
        for a in ([[np.nan, 1.0], [2.0, 1.0]], [[np.nan, 1.0], [1.0, 1.0]], [[np.inf, 1.0], [1.0, 1.0]]):
            a = np.array(a)
            np.testing.assert_array_equal(npa(la.det(em.array(a))), np.linalg.det(a))
    np.testing.assert_array_equal(npa(la.det(em.zeros((3, 0, 0)))), np.ones(3))


def test_nan_propagates_where_numpy_does():
    with np.errstate(invalid="ignore"):
        a = np.array([[np.nan]])
        np.testing.assert_array_equal(npa(la.inv(em.array(a))), np.linalg.inv(a))
        b = np.array([[np.nan, 0.0], [0.0, 1.0]])
        np.testing.assert_array_equal(npa(la.solve(em.array(b), em.array(np.ones(2)))),
                                      np.linalg.solve(b, np.ones(2)))
    with pytest.raises(np.linalg.LinAlgError, match="SVD did not converge"):
        np.linalg.svd(b)
    with pytest.raises(ValueError, match=r"\[svd\] SVD did not converge"):
        npa(la.svd(em.array(b))[1])


# ---- complex64 ----


def complex_general(rng, shape):
    n = shape[-1]
    a = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(n) * 0.5
    return (a + 2 * np.eye(n)).astype(np.complex64)


def test_complex_solve_inv_det(rng):
    a = complex_general(rng, (2, 4, 4))
    b = (rng.standard_normal((2, 4, 3)) + 1j * rng.standard_normal((2, 4, 3))).astype(np.complex64)
    t = dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(npa(la.inv(em.array(a))), np.linalg.inv(a), **t)
    np.testing.assert_allclose(npa(la.solve(em.array(a), em.array(b))), np.linalg.solve(a, b), **t)
    np.testing.assert_allclose(npa(la.det(em.array(a))), np.linalg.det(a), **t)
    sign, logdet = la.slogdet(em.array(a))
    np.testing.assert_allclose(npa(sign), np.linalg.slogdet(a).sign, **t)
    np.testing.assert_allclose(npa(logdet), np.linalg.slogdet(a).logabsdet, **t)
    q, r = la.qr(em.array(a))
    np.testing.assert_allclose(npa(q) @ npa(r), a, **t)
    np.testing.assert_allclose(npa(la.solve_triangular(em.array(a), em.array(b))),
                               np.linalg.solve(np.tril(a), b), **t)


def test_complex_cholesky(rng):
    x = complex_general(rng, (3, 3))
    a = (x @ x.conj().T + np.eye(3)).astype(np.complex64)
    np.testing.assert_allclose(npa(la.cholesky(em.array(a))), np.linalg.cholesky(a), rtol=1e-4, atol=1e-5)


def test_complex_svd_eigh_eig(rng):
    t = dict(rtol=1e-4, atol=1e-4)
    a = (rng.standard_normal((2, 5, 3)) + 1j * rng.standard_normal((2, 5, 3))).astype(np.complex64)
    u, s, vt = (npa(x) for x in la.svd(em.array(a)))
    assert s.dtype == np.float32 and u.dtype == np.complex64
    np.testing.assert_allclose(s, np.linalg.svd(a, compute_uv=False), **t)
    np.testing.assert_allclose((u[..., :, :3] * s[..., None, :]) @ vt[..., :3, :], a, **t)
    np.testing.assert_allclose(npa(la.svd(em.array(a), compute_uv=False)), s, **t)
    np.testing.assert_allclose(npa(la.pinv(em.array(a))), np.linalg.pinv(a), **t)
    x = a[:, :3]
    h = x @ np.conj(np.swapaxes(x, -1, -2))
    for uplo in ("L", "U"):
        w, v = (npa(y) for y in la.eigh(em.array(h), UPLO=uplo))
        assert w.dtype == np.float32
        np.testing.assert_allclose(w, np.linalg.eigvalsh(h), **t)
        np.testing.assert_allclose(h @ v, v * w[..., None, :], **t)
        np.testing.assert_allclose(npa(la.eigvalsh(em.array(h), UPLO=uplo)), np.linalg.eigvalsh(h), **t)
    w, v = (npa(y) for y in la.eig(em.array(x)))
    assert_same_eigenvalues(w, np.linalg.eigvals(x), 1e-4)
    np.testing.assert_allclose(x @ v, v * w[..., None, :], **t)
    np.testing.assert_allclose(npa(la.norm(em.array(x), 2, axis=(1, 2))), np.linalg.norm(x, 2, axis=(1, 2)), **t)


# ---- norm and cross ----

VECTOR_ORDS = [None, 2, 1, 0, np.inf, -np.inf, 3, 0.5, -1, -2]
MATRIX_ORDS = [None, "fro", "nuc", np.inf, -np.inf, 1, -1, 2, -2]


@pytest.mark.parametrize("ord", VECTOR_ORDS)
@pytest.mark.parametrize("keepdims", [False, True])
def test_vector_norms(rng, ord, keepdims):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    x[0, 0, 0] = 0
    with np.errstate(divide="ignore"):  # numpy's negative orders meet the zero
        for axis in (0, 1, -1):
            out = la.norm(em.array(x), ord, axis, keepdims)
            np.testing.assert_allclose(npa(out), np.linalg.norm(x, ord, axis, keepdims), rtol=1e-5)
        v = x[1, 2]
        np.testing.assert_allclose(npa(la.norm(em.array(v), ord, keepdims=keepdims)),
                                   np.linalg.norm(v, ord, keepdims=keepdims), rtol=1e-5)


@pytest.mark.parametrize("ord", MATRIX_ORDS)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_matrix_norms(rng, ord, keepdims, dtype):
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    t = tol(dtype, 5)
    for axis in ((1, 2), (2, 1), (0, 2), (-1, 0)):
        out = la.norm(em.array(x), ord, axis, keepdims)
        check_dtype(out, dtype)
        np.testing.assert_allclose(npa(out), np.linalg.norm(x, ord, axis, keepdims), **t)
    np.testing.assert_allclose(npa(la.norm(em.array(x[0]), ord, keepdims=keepdims)),
                               np.linalg.norm(x[0], ord, keepdims=keepdims), **t)


def test_norm_default_flattens_any_rank(rng):
    x = rng.standard_normal((2, 3, 4))
    np.testing.assert_allclose(npa(la.norm(em.array(x))), np.linalg.norm(x), rtol=1e-12)
    np.testing.assert_allclose(npa(la.norm(em.array(x), keepdims=True)),
                               np.linalg.norm(x, keepdims=True), rtol=1e-12)
    check_dtype(la.norm(em.array([3, 4])), np.float32)
    assert npa(la.norm(em.array([3, 4]))) == 5
    z = (rng.standard_normal(4) + 1j * rng.standard_normal(4)).astype(np.complex64)
    np.testing.assert_allclose(npa(la.norm(em.array(z))), np.linalg.norm(z), rtol=1e-6)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_cross(rng, axis):
    shape = [4, 4]
    shape.insert(axis % 3 if axis >= 0 else 2, 3)
    a = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(npa(la.cross(em.array(a), em.array(b), axis=axis)),
                               np.cross(a, b, axis=axis), rtol=1e-5, atol=1e-6)
    v = rng.standard_normal(3).astype(np.float32)  # broadcast against a batch
    last = np.moveaxis(a, axis, -1)
    np.testing.assert_allclose(npa(la.cross(em.array(last), em.array(v))), np.cross(last, v),
                               rtol=1e-5, atol=1e-6)


def test_cross_pads_two_element_vectors(rng):
    a = rng.standard_normal((4, 2)).astype(np.float32)
    b = rng.standard_normal((4, 3)).astype(np.float32)
    padded = np.concatenate([a, np.zeros((4, 1), np.float32)], axis=-1)
    np.testing.assert_allclose(npa(la.cross(em.array(a), em.array(b))), np.cross(padded, b),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(npa(la.cross(em.array(a), em.array(a[::-1]))),
                               np.cross(padded, padded[::-1]), rtol=1e-5, atol=1e-6)


def test_linalg_is_reachable_as_em_linalg():
    assert em.linalg is la
    for name in ("norm", "inv", "pinv", "solve", "solve_triangular", "cholesky", "cholesky_inv",
                 "tri_inv", "qr", "svd", "eigh", "eigvalsh", "eig", "eigvals", "lu", "lu_factor",
                 "det", "slogdet", "cross"):
        assert callable(getattr(em.linalg, name))


# ---- errors ----


def test_singular_matrices_raise_at_evaluation():
    singular = em.array([[1.0, 2.0], [2.0, 4.0]])
    out = la.inv(singular)  # lazy: building the node succeeds
    with pytest.raises(ValueError, match=r"\[inv\] singular matrix"):
        npa(out)
    with pytest.raises(ValueError, match=r"\[solve\] singular matrix"):
        npa(la.solve(singular, em.array([1.0, 1.0])))
    batch = em.array(np.stack([np.eye(2), [[1.0, 2.0], [2.0, 4.0]]]))
    with pytest.raises(ValueError, match=r"\[inv\] singular matrix \(matrix 1 of the batch\)"):
        npa(la.inv(batch))
    with pytest.raises(ValueError, match=r"\[solve_triangular\] singular matrix"):
        npa(la.solve_triangular(em.array([[1.0, 0.0], [1.0, 0.0]]), em.array([1.0, 1.0])))
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.inv(np.array(singular))


def test_cholesky_rejects_matrices_not_positive_definite():
    a = np.array([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(a)
    with pytest.raises(ValueError, match=r"\[cholesky\] matrix is not positive definite"):
        npa(la.cholesky(em.array(a)))


@pytest.mark.parametrize("fn", [la.inv, la.cholesky, la.eigh, la.eigvalsh, la.eig, la.eigvals,
                                la.det, la.slogdet, la.tri_inv])
def test_non_square_raises_at_creation(fn):
    with pytest.raises(ValueError, match=r"expected square matrices in the last two axes, got shape \(2, 3\)"):
        fn(em.zeros((2, 3)))


@pytest.mark.parametrize("fn", [la.inv, la.qr, la.svd, la.lu, la.pinv, la.det])
def test_vectors_are_rejected(fn):
    with pytest.raises(ValueError, match=r"at least 2 dimensions, got shape \(3,\)"):
        fn(em.zeros((3,)))


def test_mismatched_right_hand_sides():
    with pytest.raises(ValueError, match=r"\[solve\] a of shape \(3, 3\) and b of shape \(4, 2\) do not match"):
        la.solve(em.zeros((3, 3)), em.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"\[solve_triangular\] a of shape \(3, 3\) and b of shape \(4,\)"):
        la.solve_triangular(em.zeros((3, 3)), em.zeros((4,)))
    with pytest.raises(ValueError, match=r"\[solve\] batch shapes of a \(2, 3, 3\) and b \(4, 3, 1\) cannot be broadcast"):
        la.solve(em.zeros((2, 3, 3)), em.zeros((4, 3, 1)))
    with pytest.raises(ValueError, match=r"\[solve\] expected square matrices"):
        la.solve(em.zeros((3, 2)), em.zeros((3, 1)))


def test_argument_errors():
    with pytest.raises(ValueError, match=r"\[eigh\] UPLO must be 'L' or 'U'"):
        la.eigh(em.eye(2), UPLO="X")
    with pytest.raises(ValueError, match=r"\[norm\] invalid norm order 'fro' for vectors"):
        la.norm(em.zeros(3), "fro")
    with pytest.raises(ValueError, match=r"\[norm\] invalid norm order 3 for matrices"):
        la.norm(em.zeros((3, 3)), 3)
    with pytest.raises(ValueError, match=r"\[norm\] ord 2 with axis None needs a 1-D or 2-D array"):
        la.norm(em.zeros((2, 3, 3)), 2)
    with pytest.raises(ValueError, match=r"\[norm\] axis 3 is out of bounds"):
        la.norm(em.zeros((3, 3)), axis=3)
    with pytest.raises(ValueError, match=r"\[cross\] a of shape \(4,\) needs 2 or 3 elements on axis -1"):
        la.cross(em.zeros(4), em.zeros(3))


# ---- transform rules, checked on primitive nodes ----


def node_of(prim, inputs, ip=()):
    out = _op(prim, inputs, ip)
    return Node(prim, list(inputs), tuple(ip), (), out)


def outputs(prim, arrays, ip):
    return npa(_op(prim, [em.array(x) for x in arrays], ip))


def symmetrized(x):
    return (x + np.swapaxes(x, -1, -2)) / 2


# Added to a matrix: eigenvalues far apart, a well-conditioned eigenvector basis (eig).
SEPARATED = np.diag([0.0, 4.0, 8.0, 12.0])

# prim, ip, input factories
RULE_CASES = {
    "solve": (lib.EM_P_SOLVE, (), lambda r: [general(r, (2, 4, 4), np.float64), r.standard_normal((2, 4, 3))]),
    "inv": (lib.EM_P_INV, (), lambda r: [general(r, (2, 4, 4), np.float64)]),
    "solve_triangular_lower": (lib.EM_P_SOLVE_TRIANGULAR, (0,),
                               lambda r: [general(r, (2, 4, 4), np.float64), r.standard_normal((2, 4, 2))]),
    "solve_triangular_upper": (lib.EM_P_SOLVE_TRIANGULAR, (1,),
                               lambda r: [general(r, (4, 4), np.float64), r.standard_normal((4, 2))]),
    "cholesky_lower": (lib.EM_P_CHOLESKY, (0,), lambda r: [spd(r, (2, 4, 4), np.float64)]),
    "cholesky_upper": (lib.EM_P_CHOLESKY, (1,), lambda r: [spd(r, (4, 4), np.float64)]),
    "qr_tall": (lib.EM_P_QR, (), lambda r: [r.standard_normal((2, 5, 3))]),
    "qr_square": (lib.EM_P_QR, (), lambda r: [r.standard_normal((4, 4))]),
    "qr_wide": (lib.EM_P_QR, (), lambda r: [r.standard_normal((2, 3, 5))]),
    "svd_values": (lib.EM_P_SVD, (0,), lambda r: [r.standard_normal((2, 5, 3))]),
    "svd_square": (lib.EM_P_SVD, (1,), lambda r: [r.standard_normal((2, 4, 4))]),
    "svd_tall": (lib.EM_P_SVD, (1,), lambda r: [r.standard_normal((5, 3))]),
    "svd_wide": (lib.EM_P_SVD, (1,), lambda r: [r.standard_normal((2, 3, 5))]),
    "eigh": (lib.EM_P_EIGH, (0, 1), lambda r: [symmetric(r, (2, 4, 4), np.float64)]),
    "eigh_upper_values": (lib.EM_P_EIGH, (1, 0), lambda r: [symmetric(r, (4, 4), np.float64)]),
    "eigvals": (lib.EM_P_EIG, (0,), lambda r: [r.standard_normal((2, 4, 4)) + SEPARATED]),
    "lu_square": (lib.EM_P_LU, (), lambda r: [r.standard_normal((2, 4, 4))]),
    "lu_tall": (lib.EM_P_LU, (), lambda r: [r.standard_normal((5, 3))]),
    "lu_wide": (lib.EM_P_LU, (), lambda r: [r.standard_normal((2, 3, 5))]),
}

def complex_matrix(r, shape, well_conditioned=True):
    a = (r.standard_normal(shape) + 1j * r.standard_normal(shape)) / np.sqrt(shape[-1]) * 0.5
    return (a + 2 * np.eye(*shape[-2:]) if well_conditioned else a).astype(np.complex64)


# complex64 inputs of the holomorphic primitives (their rules hold as written)
COMPLEX_RULE_CASES = {
    "solve": (lib.EM_P_SOLVE, (), lambda r: [complex_matrix(r, (2, 3, 3)), complex_matrix(r, (2, 3, 2), False)]),
    "inv": (lib.EM_P_INV, (), lambda r: [complex_matrix(r, (3, 3))]),
    "solve_triangular": (lib.EM_P_SOLVE_TRIANGULAR, (1,),
                         lambda r: [complex_matrix(r, (3, 3)), complex_matrix(r, (3, 2), False)]),
    # diagonally dominant, so that the perturbations keep LU's pivots
    "lu": (lib.EM_P_LU, (), lambda r: [complex_matrix(r, (2, 4, 3))]),
    "eigvals": (lib.EM_P_EIG, (0,), lambda r: [complex_matrix(r, (4, 4), False) + SEPARATED]),
}

SYMMETRIC_INPUT = {lib.EM_P_CHOLESKY, lib.EM_P_EIGH}


def finite_difference(prim, ip, inputs, tangents, eps):
    """Central differences of a primitive's packed output. eig's order is not
    continuous: its perturbed eigenvalues are matched to the nearest unperturbed one."""
    plus = outputs(prim, [x + eps * t for x, t in zip(inputs, tangents)], ip)
    minus = outputs(prim, [x - eps * t for x, t in zip(inputs, tangents)], ip)
    if prim == lib.EM_P_EIG:
        base = outputs(prim, inputs, ip)
        for moved in (plus, minus):
            for index in np.ndindex(base.shape[:-1]):
                nearest = np.abs(base[index][:, None] - moved[index][None, :]).argmin(axis=1)
                assert len(set(nearest)) == len(nearest)
                moved[index] = moved[index][nearest]
    return (plus - minus) / (2 * eps)


def compared(prim, ip, shape, packed):
    """The part of a packed output whose tangent is unique: the extra columns
    of a full U or V and the integer parts of LU are left out."""
    m, n = shape[-2:]
    k = min(m, n)
    if prim == lib.EM_P_SVD and ip[0]:
        u = packed[..., :m * m].reshape(packed.shape[:-1] + (m, m))[..., :, :k]
        s = packed[..., m * m:m * m + k]
        vt = packed[..., m * m + k:].reshape(packed.shape[:-1] + (n, n))[..., :k, :]
        return np.concatenate([u.reshape(u.shape[:-2] + (-1,)), s, vt.reshape(vt.shape[:-2] + (-1,))], -1)
    if prim == lib.EM_P_LU:
        return packed[..., :m * n]
    return packed


@pytest.mark.parametrize("case", sorted(RULE_CASES))
def test_jvp_matches_finite_differences(rng, case):
    prim, ip, make = RULE_CASES[case]
    inputs = make(rng)
    tangents = [rng.standard_normal(x.shape) for x in inputs]
    if prim in SYMMETRIC_INPUT:
        tangents = [symmetrized(t) for t in tangents]
    node = node_of(prim, [em.array(x) for x in inputs], ip)
    jvp = npa(rules_of(prim).jvp(node, [em.array(t) for t in tangents]))
    # eig's outputs are complex64 whatever the input: a coarser step and tolerance.
    single = node.out.dtype == em.complex64
    fd = finite_difference(prim, ip, inputs, tangents, 1e-3 if single else 1e-6)
    shape = inputs[0].shape
    np.testing.assert_allclose(compared(prim, ip, shape, jvp), compared(prim, ip, shape, fd),
                               rtol=2e-3 if single else 1e-5, atol=2e-3 if single else 1e-5)
    # Only one input perturbed: None tangents are zero.
    if len(inputs) == 2:
        only_b = npa(rules_of(prim).jvp(node, [None, em.array(tangents[1])]))
        x = _op(prim, [em.array(inputs[0]), em.array(tangents[1])], ip)
        np.testing.assert_allclose(only_b, npa(x), rtol=1e-10, atol=1e-10)
    assert rules_of(prim).jvp(node, [None] * len(inputs)) is None


@pytest.mark.parametrize("case", sorted(RULE_CASES))
def test_vjp_is_adjoint_of_jvp(rng, case):
    prim, ip, make = RULE_CASES[case]
    inputs = make(rng)
    node = node_of(prim, [em.array(x) for x in inputs], ip)
    out_shape = node.out.shape
    tangents = [rng.standard_normal(x.shape) for x in inputs]
    cotangent = rng.standard_normal(out_shape)
    if node.out.dtype == em.complex64:
        cotangent = (cotangent + 1j * rng.standard_normal(out_shape)).astype(np.complex64)
    jvp = npa(rules_of(prim).jvp(node, [em.array(t) for t in tangents]))
    vjp = rules_of(prim).vjp(node, em.array(cotangent))
    assert len(vjp) == len(inputs)
    for c, x in zip(vjp, inputs):
        assert c.shape == x.shape
    lhs = np.real(np.sum(cotangent * jvp))
    rhs = sum(np.sum(npa(c) * t) for c, t in zip(vjp, tangents))
    tol = 1e-5 if node.out.dtype == em.complex64 else 1e-6  # eig computes in complex64
    np.testing.assert_allclose(lhs, rhs, rtol=tol, atol=tol)


def test_vjp_matches_jax_for_cholesky_and_eigh(rng):
    import jax
    import jax.numpy as jnp
    with jax.enable_x64(True):  # scoped: other test files use JAX in float32
        check_against_jax(rng, jax, jnp)


def check_against_jax(rng, jax, jnp):
    a = spd(rng, (4, 4), np.float64)
    ct = rng.standard_normal((4, 4))
    node = node_of(lib.EM_P_CHOLESKY, [em.array(a)], (0,))
    ours = npa(rules_of(lib.EM_P_CHOLESKY).vjp(node, em.array(ct))[0])
    _, pullback = jax.vjp(jnp.linalg.cholesky, jnp.asarray(a))
    np.testing.assert_allclose(ours, np.asarray(pullback(jnp.asarray(ct))[0]), rtol=1e-8, atol=1e-8)
    s = symmetric(rng, (4, 4), np.float64)
    node = node_of(lib.EM_P_EIGH, [em.array(s)], (0, 0))
    cw = rng.standard_normal(4)
    ours = npa(rules_of(lib.EM_P_EIGH).vjp(node, em.array(cw))[0])
    _, pullback = jax.vjp(jnp.linalg.eigvalsh, jnp.asarray(s))
    np.testing.assert_allclose(ours, np.asarray(pullback(jnp.asarray(cw))[0]), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("case", sorted(COMPLEX_RULE_CASES))
def test_complex_holomorphic_rules(rng, case):
    prim, ip, make = COMPLEX_RULE_CASES[case]
    inputs = make(rng)
    node = node_of(prim, [em.array(x) for x in inputs], ip)
    tangents = [complex_matrix(rng, x.shape, False) for x in inputs]
    shape = node.out.shape
    cotangent = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    jvp = npa(rules_of(prim).jvp(node, [em.array(t) for t in tangents]))
    fd = finite_difference(prim, ip, inputs, tangents, 1e-2)
    a_shape = inputs[0].shape
    np.testing.assert_allclose(compared(prim, ip, a_shape, jvp), compared(prim, ip, a_shape, fd),
                               rtol=2e-3, atol=2e-3)
    vjp = rules_of(prim).vjp(node, em.array(cotangent))
    lhs = np.real(np.sum(cotangent.astype(np.complex128) * jvp))
    rhs = np.real(sum(np.sum(npa(c).astype(np.complex128) * t) for c, t in zip(vjp, tangents)))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", sorted(RULE_CASES))
def test_vmap_matches_a_loop(rng, case):
    prim, ip, make = RULE_CASES[case]
    inputs = make(rng)
    node = node_of(prim, [em.array(x) for x in inputs], ip)
    batched_index = 0
    axis = 1 if inputs[batched_index].ndim > 2 else 0
    stack = [inputs[batched_index] + 0.01 * rng.standard_normal(inputs[batched_index].shape)
             for _ in range(3)]
    if prim in SYMMETRIC_INPUT:
        stack = [symmetrized(x) if prim == lib.EM_P_EIGH else x for x in stack]
    batched = np.stack(stack, axis=axis)
    vmapped = [em.array(batched)] + [em.array(x) for x in inputs[1:]]
    axes = [axis] + [None] * (len(inputs) - 1)
    out, out_axis = rules_of(prim).vmap(node, vmapped, axes)
    out = np.moveaxis(npa(out), out_axis, 0)
    for i, x in enumerate(stack):
        ref = outputs(prim, [x] + inputs[1:], ip)
        np.testing.assert_allclose(out[i], ref, rtol=1e-10, atol=1e-10)


def test_every_linalg_primitive_has_rules():
    for prim in (lib.EM_P_SOLVE, lib.EM_P_INV, lib.EM_P_SOLVE_TRIANGULAR, lib.EM_P_CHOLESKY,
                 lib.EM_P_QR, lib.EM_P_SVD, lib.EM_P_EIGH, lib.EM_P_EIG, lib.EM_P_LU):
        rules = rules_of(prim)
        assert callable(rules.jvp) and callable(rules.vjp) and callable(rules.vmap)


def test_vmap_of_solves_over_the_right_hand_side(rng):
    a = general(rng, (3, 4, 4), np.float64)
    bs = rng.standard_normal((5, 3, 4, 2))
    for prim, ip in ((lib.EM_P_SOLVE, ()), (lib.EM_P_SOLVE_TRIANGULAR, (1,))):
        node = node_of(prim, [em.array(a), em.array(bs[0])], ip)
        out, out_axis = rules_of(prim).vmap(node, [em.array(a), em.array(np.moveaxis(bs, 0, 2))], [None, 2])
        out = np.moveaxis(npa(out), out_axis, 0)
        for i in range(5):
            np.testing.assert_allclose(out[i], outputs(prim, [a, bs[i]], ip), rtol=1e-12, atol=1e-12)


def test_ops_take_a_stream(rng):
    a = spd(rng, (3, 3), np.float32)
    s = em.new_stream(em.cpu)
    results = [la.inv(a, stream=s), la.det(a, stream=s), la.cholesky(a, stream=s),
               la.norm(a, "nuc", stream=s), la.pinv(a, stream=s), la.eigvalsh(a, stream=s),
               *la.qr(a, stream=s), *la.svd(a, stream=s), *la.lu(a, stream=s),
               la.cross(a, a, stream=s), la.cholesky_inv(np.linalg.cholesky(a), stream=s)]
    em.eval(*results)
    np.testing.assert_allclose(npa(results[0]), np.linalg.inv(a), rtol=1e-4, atol=1e-5)


# ---- complex64 derivatives of the non-holomorphic decompositions ----
#
# Oracles: JAX in complex128 (jax.grad of a real loss of a complex input:
# dL/dRe(z) - i dL/dIm(z), ember's convention) and complex128 central
# differences of numpy.linalg. The losses are invariant to the phases that
# SVD and eigh leave free (|U|, U_r V_r^H, V f(w) V^H); ember computes in
# complex64, so tolerances are relative to the gradient's size at ~1e-4.


def random_unitary(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)))
    return q * (np.diagonal(r) / np.abs(np.diagonal(r)))


def complex_with_values(rng, shape, values):
    """A complex (m, n) matrix with the given (well separated) singular values."""
    m, n = shape
    k = min(m, n)
    u, v = random_unitary(rng, m)[:, :k], random_unitary(rng, n)[:, :k]
    return (u * values[:k]) @ v.conj().T


def complex_losses(xp, la, x, name, consts):
    """Real losses of a complex matrix x, for xp in (ember, jax.numpy, numpy)."""
    c1, c2, w3 = consts
    is_em = xp is em
    herm = (lambda y: em.conj(em.swapaxes(y, -1, -2))) if is_em else (lambda y: y.conj().T)
    if name == "cholesky":
        h = x @ herm(x) + 0.5 * (em.eye(3) if is_em else np.eye(3))
        lower = la.cholesky(h)
        return xp.sum(xp.real(c2 * lower)) + xp.sum(xp.abs(lower) ** 3)
    if name == "cholesky_upper":
        h = x @ herm(x) + 0.5 * (em.eye(3) if is_em else np.eye(3))
        upper = la.cholesky(h, upper=True) if is_em else herm(la.cholesky(h))
        return xp.sum(xp.real(c2 * upper)) + xp.sum(xp.abs(upper) ** 3)
    if name in ("qr_tall", "qr_wide"):
        y = x if name == "qr_tall" else x.T
        q, r = la.qr(y)
        return xp.sum(xp.real(c1[:q.shape[0], :q.shape[1]] * q)) + xp.sum(xp.real(c1.T[:r.shape[0], :r.shape[1]] * r) ** 2)
    if name in ("svd_tall", "svd_wide"):
        y = x if name == "svd_tall" else x.T
        if is_em:
            u, s, vt = la.svd(y)
            u, vt = u[:, :3], vt[:3]
        else:
            u, s, vt = la.svd(y, full_matrices=False)
        c = c1 if name == "svd_tall" else c1.T
        return (xp.sum(xp.abs(u) ** 3) + xp.sum(xp.abs(vt) ** 3) + xp.sum(xp.real(c * (u @ vt)))
                + xp.sum(s ** 3 * w3))
    if name == "svd_values":
        return xp.sum(la.svd(x, compute_uv=False) ** 3 * w3)
    if name in ("eigh", "eigh_upper"):
        uplo = "U" if name == "eigh_upper" else "L"
        w, v = la.eigh((x + herm(x)) * 0.5, UPLO=uplo)   # numpy reads one triangle, JAX both
        return xp.sum(xp.abs(v) ** 3) + xp.sum(xp.real(c2 * ((v * w ** 2) @ herm(v)))) + xp.sum(w * w3)
    if name == "eigvalsh":
        return xp.sum(la.eigvalsh((x + herm(x)) * 0.5) ** 3 * w3)
    raise ValueError(name)


COMPLEX_LOSSES = ["cholesky", "cholesky_upper", "qr_tall", "qr_wide", "svd_tall", "svd_wide",
                  "svd_values", "eigh", "eigh_upper", "eigvalsh"]


def complex_loss_input(rng, name):
    if name.startswith("cholesky"):
        return complex_matrix(rng, (3, 3), False) * 2
    if name.startswith("eig"):
        u = random_unitary(rng, 3)
        return (u * np.array([-2.0, 0.5, 3.0])) @ u.conj().T   # Hermitian, eigenvalues apart
    return complex_with_values(rng, (5, 3), np.array([3.0, 2.0, 1.0]))


def complex128_gradient(fn, x, eps=1e-6):
    """dL/dRe(x) - i dL/dIm(x) by central differences."""
    grad = np.zeros(x.shape, np.complex128)
    for index in np.ndindex(x.shape):
        for unit in (1.0, 1j):
            step = np.zeros(x.shape, np.complex128)
            step[index] = unit * eps
            slope = (fn(x + step) - fn(x - step)) / (2 * eps)
            grad[index] += slope if unit == 1.0 else -1j * slope
    return grad


@pytest.mark.parametrize("name", COMPLEX_LOSSES)
def test_complex_grad_matches_jax_and_finite_differences(rng, name):
    import jax
    import jax.numpy as jnp
    x = complex_loss_input(rng, name).astype(np.complex64).astype(np.complex128)
    consts = ((rng.standard_normal((5, 3)) + 1j * rng.standard_normal((5, 3))),
              (rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3))), rng.standard_normal(3))
    em_consts = (em.array(consts[0].astype(np.complex64)), em.array(consts[1].astype(np.complex64)),
                 em.array(consts[2].astype(np.float32)))
    ours = npa(em.grad(lambda z: complex_losses(em, la, z, name, em_consts))(em.array(x.astype(np.complex64))))
    assert ours.dtype == np.complex64
    with jax.enable_x64(True):
        ref = np.asarray(jax.grad(lambda z: complex_losses(jnp, jnp.linalg, z, name, consts))(jnp.asarray(x)))
    fd = complex128_gradient(lambda z: complex_losses(np, np.linalg, z, name, consts), x)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(fd, ref, atol=1e-6 * scale)   # the two oracles agree
    np.testing.assert_allclose(ours, ref, atol=2e-5 * scale)
    # jvp along a complex tangent: the directional derivative Re(sum(grad * t))
    t = complex_matrix(rng, x.shape, False).astype(np.complex128)
    _, (slope,) = em.jvp(lambda z: complex_losses(em, la, z, name, em_consts),
                         [em.array(x.astype(np.complex64))], [em.array(t.astype(np.complex64))])
    expected = np.real(np.sum(ref * t))
    assert float(npa(slope)) == pytest.approx(expected, abs=2e-5 * scale * np.abs(t).sum())


# prim, ip, a complex input: every packed result (phases included) checked for adjointness
COMPLEX_NODE_CASES = {
    "cholesky": (lib.EM_P_CHOLESKY, (0,), lambda r: spd_complex(r, (2, 3, 3))),
    "cholesky_upper": (lib.EM_P_CHOLESKY, (1,), lambda r: spd_complex(r, (3, 3))),
    "qr_tall": (lib.EM_P_QR, (), lambda r: complex_matrix(r, (2, 5, 3), False)),
    "qr_wide": (lib.EM_P_QR, (), lambda r: complex_matrix(r, (3, 5), False)),
    "svd_tall": (lib.EM_P_SVD, (1,), lambda r: complex_matrix(r, (2, 5, 3), False)),
    "svd_wide": (lib.EM_P_SVD, (1,), lambda r: complex_matrix(r, (3, 4), False)),
    "svd_values": (lib.EM_P_SVD, (0,), lambda r: complex_matrix(r, (4, 3), False)),
    "eigh": (lib.EM_P_EIGH, (0, 1), lambda r: hermitian_complex(r, (2, 4, 4))),
    "eigvalsh": (lib.EM_P_EIGH, (1, 0), lambda r: hermitian_complex(r, (4, 4))),
    "eig": (lib.EM_P_EIG, (1,), lambda r: (complex_matrix(r, (2, 4, 4), False) + SEPARATED).astype(np.complex64)),
    "eig_of_real": (lib.EM_P_EIG, (1,), lambda r: r.standard_normal((4, 4)) + SEPARATED),
}


def spd_complex(r, shape):
    x = complex_matrix(r, shape, False)
    return (x @ np.conj(np.swapaxes(x, -1, -2)) + np.eye(shape[-1])).astype(np.complex64)


def hermitian_complex(r, shape):
    x = complex_matrix(r, shape, False)
    return (x + np.conj(np.swapaxes(x, -1, -2))).astype(np.complex64)


@pytest.mark.parametrize("case", sorted(COMPLEX_NODE_CASES))
def test_complex_vjp_is_adjoint_of_jvp(rng, case):
    prim, ip, make = COMPLEX_NODE_CASES[case]
    a = make(rng)
    node = node_of(prim, [em.array(a)], ip)
    t = complex_matrix(rng, a.shape, False) if a.dtype == np.complex64 else rng.standard_normal(a.shape)
    shape = node.out.shape
    cotangent = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    jvp = npa(rules_of(prim).jvp(node, [em.array(t)]))
    (vjp,) = rules_of(prim).vjp(node, em.array(cotangent))
    assert jvp.dtype == np.complex64 and npa(vjp).dtype == a.dtype and vjp.shape == a.shape
    lhs = np.real(np.sum(cotangent.astype(np.complex128) * jvp))
    rhs = np.real(np.sum(npa(vjp).astype(np.complex128) * t))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-4, atol=1e-4 * np.abs(jvp).sum())


@pytest.mark.parametrize("case", sorted(COMPLEX_NODE_CASES))
def test_complex_vmap_matches_a_loop(rng, case):
    prim, ip, make = COMPLEX_NODE_CASES[case]
    stack = [make(rng) for _ in range(3)]
    node = node_of(prim, [em.array(stack[0])], ip)
    axis = 1 if stack[0].ndim > 2 else 0
    out, out_axis = rules_of(prim).vmap(node, [em.array(np.stack(stack, axis=axis))], [axis])
    out = np.moveaxis(npa(out), out_axis, 0)
    for i, x in enumerate(stack):
        np.testing.assert_allclose(out[i], outputs(prim, [x], ip), rtol=1e-6, atol=1e-6)


def test_complex_qr_and_svd_tangents_keep_the_phase_conventions(rng):
    """dR's diagonal stays real (LAPACK's R), dV's columns stay orthogonal to V's (JAX's gauge)."""
    a = complex_matrix(rng, (5, 3), False)
    t = em.array(complex_matrix(rng, (5, 3), False))
    _, (dq, dr) = em.jvp(la.qr, [em.array(a)], [t])
    np.testing.assert_allclose(np.imag(np.diagonal(npa(dr))), 0, atol=1e-6)
    (u, s, vt), (du, ds, dvt) = em.jvp(la.svd, [em.array(a)], [t])
    assert npa(ds).dtype == np.float32
    np.testing.assert_allclose(np.diagonal(npa(dvt) @ np.conj(npa(vt).T)), 0, atol=1e-5)
    uhdu = np.conj(npa(u).T) @ npa(du)
    np.testing.assert_allclose(uhdu + np.conj(uhdu.T), 0, atol=1e-5)   # U stays unitary


# ---- eig's eigenvectors ----
#
# The rule fixes each eigenvector's free scale as LAPACK (and so ember's eig)
# does: unit norm, largest entry real. So its jvp matches complex128 finite
# differences of numpy.linalg.eig (the same LAPACK convention), and its
# gradients of gauge-invariant losses match torch.linalg.eig's backward.


def matched_eig(x, base):
    """numpy's eig in complex128 with its eigenpairs in base's order."""
    w, v = np.linalg.eig(x)
    order = np.abs(base[:, None] - w[None, :]).argmin(axis=1)
    assert len(set(order)) == len(order)
    return w[order], v[:, order]


def eig_input(rng, kind):
    n = 4
    if kind == "real_pairs":   # real, with complex-conjugate eigenvalue pairs
        blocks = np.kron(np.diag([1.0, 4.0]), np.array([[0.0, 1.0], [-1.0, 0.0]])) + np.diag([0, 0, 3, 3])
        q = np.linalg.qr(rng.standard_normal((n, n)))[0]
        return q @ blocks @ q.T + 0.1 * rng.standard_normal((n, n))
    a = rng.standard_normal((n, n)) + SEPARATED
    if kind == "complex":
        a = (a + 1j * rng.standard_normal((n, n))).astype(np.complex64)
    return a


@pytest.mark.parametrize("kind", ["real", "real_pairs", "complex"])
def test_eig_vector_jvp_matches_finite_differences(rng, kind):
    a = eig_input(rng, kind)
    t = rng.standard_normal(a.shape)
    if kind == "complex":
        t = (t + 1j * rng.standard_normal(a.shape)).astype(np.complex64)
    (w, v), (dw, dv) = em.jvp(la.eig, [em.array(a)], [em.array(t)])
    base = npa(w)
    eps = 1e-6
    # real inputs through dgeev as ember's (its signs), complex ones through zgeev
    wide = np.complex128 if kind == "complex" else np.float64
    a64, t64 = a.astype(wide), t.astype(wide)
    wp, vp = matched_eig(a64 + eps * t64, base)
    wm, vm = matched_eig(a64 - eps * t64, base)
    # LAPACK makes each vector's largest entry real but leaves its sign free, and
    # the sign can differ between two nearby inputs: align both to ember's vectors
    v0 = npa(v)
    top = np.abs(v0).argmax(axis=0)
    cols = np.arange(v0.shape[1])
    vp = vp * np.sign(np.real(vp[top, cols] * np.conj(v0[top, cols])))
    vm = vm * np.sign(np.real(vm[top, cols] * np.conj(v0[top, cols])))
    np.testing.assert_allclose(npa(dw), (wp - wm) / (2 * eps), atol=2e-5 * np.abs(npa(dw)).max())
    np.testing.assert_allclose(npa(dv), (vp - vm) / (2 * eps), atol=2e-5 * max(1, np.abs(npa(dv)).max()))
    # the tangent keeps the normalisation: unit norm, largest entry real
    v = npa(v)
    np.testing.assert_allclose(np.real(np.sum(np.conj(v) * npa(dv), axis=0)), 0, atol=1e-5)
    top = np.abs(v).argmax(axis=0)
    np.testing.assert_allclose(np.imag(npa(dv)[top, np.arange(4)]), 0, atol=1e-5)


@pytest.mark.parametrize("kind", ["real", "real_pairs", "complex"])
def test_eig_grad_matches_torch(rng, kind):
    import torch
    a = eig_input(rng, kind)
    # weights per row and one c: a loss that ignores the eigenpairs' order, which
    # LAPACK may give differently in single (ember's cgeev) and double precision
    weights = rng.standard_normal((4, 1))
    c = np.complex64(rng.standard_normal() + 1j * rng.standard_normal())

    def loss(w, v, xp):
        return xp.sum(xp.abs(v) ** 3 * weights_of[xp]) + xp.sum(xp.real(c_of[xp] * w * w))

    weights_of = {em: em.array(weights.astype(np.float32)), torch: torch.tensor(weights)}
    c_of = {em: em.array(c), torch: torch.tensor(complex(c))}
    ours = npa(em.grad(lambda x: loss(*la.eig(x), em))(em.array(a)))
    at = torch.tensor(a.astype(np.complex128) if kind == "complex" else a, requires_grad=True)
    loss(*torch.linalg.eig(at), torch).backward()
    ref = at.grad.numpy()
    if kind == "complex":
        ref = np.conj(ref)   # torch's gradient is the conjugate of JAX's (and ember's)
    assert ours.dtype == a.dtype
    np.testing.assert_allclose(ours, ref, atol=5e-5 * np.abs(ref).max())


# ---- end to end: em.grad, em.vmap, em.hessian on linalg functions, against JAX ----

GRAD_CASES = {
    # name: (ember function, JAX function, input kind)
    "det": (lambda x: la.det(x), lambda j, x: j.numpy.linalg.det(x), "general"),
    "slogdet": (lambda x: la.slogdet(x)[1], lambda j, x: j.numpy.linalg.slogdet(x)[1], "general"),
    "inv": (lambda x: em.sum(la.inv(x) ** 2), lambda j, x: (j.numpy.linalg.inv(x) ** 2).sum(), "general"),
    "solve": (lambda x: em.sum(la.solve(x, x[:, :2]) ** 3),
              lambda j, x: (j.numpy.linalg.solve(x, x[:, :2]) ** 3).sum(), "general"),
    "cholesky": (lambda x: em.sum(la.cholesky(x) ** 3), lambda j, x: (j.numpy.linalg.cholesky(x) ** 3).sum(),
                 "spd"),
    "cholesky_inv": (lambda x: em.sum(la.cholesky_inv(la.cholesky(x)) ** 2),
                     lambda j, x: (j.numpy.linalg.inv(x) ** 2).sum(), "spd"),
    "eigvalsh": (lambda x: em.sum(la.eigvalsh(x) ** 3), lambda j, x: (j.numpy.linalg.eigvalsh(x) ** 3).sum(),
                 "spd"),
    "eigh_vectors": (lambda x: em.sum(em.abs(la.eigh(x)[1]) ** 3),
                     lambda j, x: (abs(j.numpy.linalg.eigh(x)[1]) ** 3).sum(), "spd"),
    "svd_values": (lambda x: em.sum(la.svd(x, compute_uv=False) ** 3),
                   lambda j, x: (j.numpy.linalg.svd(x, compute_uv=False) ** 3).sum(), "tall"),
    "svd_vectors": (lambda x: em.sum(em.abs(la.svd(x)[0][:, :3]) ** 3) + em.sum(em.abs(la.svd(x)[2]) ** 3),
                    lambda j, x: (abs(j.numpy.linalg.svd(x, full_matrices=False)[0]) ** 3).sum()
                    + (abs(j.numpy.linalg.svd(x, full_matrices=False)[2]) ** 3).sum(), "tall"),
    "qr": (lambda x: em.sum(la.qr(x)[0] ** 3) + em.sum(la.qr(x)[1] ** 3),
           lambda j, x: (j.numpy.linalg.qr(x)[0] ** 3).sum() + (j.numpy.linalg.qr(x)[1] ** 3).sum(), "tall"),
    "qr_wide": (lambda x: em.sum(la.qr(x.T)[0] ** 3) + em.sum(la.qr(x.T)[1] ** 3),
                lambda j, x: (j.numpy.linalg.qr(x.T)[0] ** 3).sum() + (j.numpy.linalg.qr(x.T)[1] ** 3).sum(),
                "tall"),
    "lu": (lambda x: em.sum(la.lu(x)[1] ** 3) + em.sum(la.lu(x)[2] ** 3),
           lambda j, x: (j.scipy.linalg.lu(x)[1] ** 3).sum() + (j.scipy.linalg.lu(x)[2] ** 3).sum(), "general"),
    "pinv": (lambda x: em.sum(la.pinv(x) ** 2), lambda j, x: (j.numpy.linalg.pinv(x) ** 2).sum(), "tall"),
    "norm_nuc": (lambda x: la.norm(x, "nuc"), lambda j, x: j.numpy.linalg.norm(x, "nuc"), "tall"),
    "eigvals": (lambda x: em.sum(em.real(la.eigvals(x) ** 2)),
                lambda j, x: j.numpy.real(j.numpy.linalg.eigvals(x) ** 2).sum(), "separated"),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_grad_matches_jax(rng, name):
    import jax
    import jax.scipy.linalg  # noqa: F401  (jax.scipy.linalg.lu)
    ours_fn, jax_fn, kind = GRAD_CASES[name]
    x = {"general": lambda: general(rng, (4, 4), np.float64), "spd": lambda: spd(rng, (4, 4), np.float64),
         "tall": lambda: rng.standard_normal((5, 3)),
         "separated": lambda: rng.standard_normal((4, 4)) + SEPARATED}[kind]()
    ours = npa(em.grad(ours_fn)(em.array(x)))
    with jax.enable_x64(True):
        ref = np.asarray(jax.grad(lambda y: jax_fn(jax, y))(jax.numpy.asarray(x)))
    # eig computes in float64 but returns complex64
    t = dict(rtol=1e-5, atol=1e-5) if name == "eigvals" else dict(rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours, ref, **t)


def test_vmap_hessian_and_compile_of_linalg(rng):
    import jax
    xs = general(rng, (3, 4, 4), np.float64)
    np.testing.assert_allclose(npa(em.vmap(la.det)(em.array(xs))), np.linalg.det(xs), rtol=1e-12)
    moved = em.array(np.moveaxis(xs, 0, 2))
    np.testing.assert_allclose(npa(em.vmap(lambda x: la.svd(x, compute_uv=False), in_axes=2)(moved)),
                               np.linalg.svd(xs, compute_uv=False), rtol=1e-12)
    vs = rng.standard_normal((3, 4))
    out = em.vmap(lambda v: la.solve(em.array(xs[0]), v))(em.array(vs))
    np.testing.assert_allclose(npa(out), np.linalg.solve(xs[0], vs.T).T, rtol=1e-12)
    hess = npa(em.hessian(lambda x: la.slogdet(x)[1])(em.array(xs[0])))
    with jax.enable_x64(True):
        ref = np.asarray(jax.hessian(lambda x: jax.numpy.linalg.slogdet(x)[1])(jax.numpy.asarray(xs[0])))
    np.testing.assert_allclose(hess, ref, rtol=1e-8, atol=1e-10)
    compiled = em.compile(em.grad(lambda x: la.slogdet(x)[1]))
    np.testing.assert_allclose(npa(compiled(em.array(xs[1]))), np.linalg.inv(xs[1]).T, rtol=1e-10)
