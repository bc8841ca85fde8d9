"""einsum and einsum_path against numpy (values, paths of the greedy
planner), JAX (gradients), and loops (vmap)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ember.core as em


def npa(x):
    return np.array(x)


CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(2, 3), (3, 1)]),
    ("ij->ji", [(3, 5)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("ij->", [(3, 4)]),
    ("iij,jk", [(3, 3, 2), (2, 4)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,i->", [(7,), (7,)]),
    (",i->i", [(), (3,)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("abc,cd,dbe->ae", [(2, 3, 4), (4, 5), (5, 3, 6)]),
    ("ab,bc,cd,de,ef->af", [(3, 9), (9, 2), (2, 8), (8, 4), (4, 5)]),
    ("...ij,...jk", [(2, 1, 2, 3), (5, 3, 4)]),
    ("...i,...i->...", [(2, 3), (1, 3)]),
    ("i...,i...->...", [(3, 2, 4), (3, 1, 4)]),
    ("i,i->i", [(1,), (3,)]),
    ("ijk,kji", [(2, 3, 4), (4, 3, 2)]),
    ("ab,ab,ab->a", [(3, 4), (3, 4), (3, 4)]),
    ("ea,fb,abcd,gc,hd->efgh", [(3, 2), (3, 2), (2, 2, 2, 2), (3, 2), (3, 2)]),
    ("Ab,bA->", [(3, 4), (4, 3)]),
    ("a,B", [(2,), (3,)]),
]


def _draw(rng, shape, dtype):
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-4, 5, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("subscripts,shapes", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_einsum_matches_numpy(rng, subscripts, shapes, dtype):
    arrays = [_draw(rng, s, dtype) for s in shapes]
    got = em.einsum(subscripts, *[em.array(a) for a in arrays])
    want = np.einsum(subscripts, *arrays)
    assert got.shape == want.shape
    assert got.dtype == em.array(want.astype(dtype)).dtype
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(npa(got), want, rtol=tol, atol=tol)


def test_einsum_promotes_mixed_dtypes(rng):
    a = rng.integers(-3, 3, (3, 4)).astype(np.int32)
    b = rng.standard_normal((4, 2)).astype(np.float32)
    got = em.einsum("ij,jk->ik", em.array(a), em.array(b))
    assert got.dtype == em.float32
    np.testing.assert_allclose(npa(got), a @ b, rtol=1e-5)


def _path_cost(subscripts, shapes, path):
    """Sum over the steps of the product of the sizes of the labels they touch."""
    inputs, output = subscripts.split("->")
    terms = [set(t) for t in inputs.split(",")]
    sizes = {c: n for t, s in zip(inputs.split(","), shapes) for c, n in zip(t, s)}
    cost = 0
    for i, j in path:
        joint = terms[i] | terms[j]
        rest = [t for k, t in enumerate(terms) if k not in (i, j)]
        keep = set(output).union(*rest) if rest else set(output)
        cost += int(np.prod([sizes[c] for c in joint]))
        terms = rest + [joint & keep]
    return cost


@pytest.mark.parametrize("n_operands", [3, 4, 5, 6])
def test_greedy_path_agrees_with_numpy_on_matrix_chains(rng, n_operands):
    letters = "abcdefgh"
    dims = [int(d) for d in rng.choice(np.arange(2, 40), n_operands + 1, replace=False)]
    subscripts = ",".join(letters[k:k + 2] for k in range(n_operands)) + \
        f"->{letters[0]}{letters[n_operands]}"
    shapes = [(dims[k], dims[k + 1]) for k in range(n_operands)]
    arrays = [rng.standard_normal(s) for s in shapes]
    path, text = em.einsum_path(subscripts, *[em.array(a) for a in arrays])
    numpy_path = np.einsum_path(subscripts, *arrays, optimize="greedy")[0][1:]
    assert path == [tuple(p) for p in numpy_path]
    assert "Complete contraction:  " + subscripts in text
    assert f"{_path_cost(subscripts, shapes, path):.3e}" in text
    np.testing.assert_allclose(npa(em.einsum(subscripts, *[em.array(a) for a in arrays])),
                               np.einsum(subscripts, *arrays), rtol=1e-10,
                               atol=1e-12 * np.abs(np.einsum(subscripts, *arrays)).max())


def test_greedy_path_beats_left_to_right_on_a_bad_order(rng):
    # Left to right builds a 50 x 50 intermediate; contracting the vector first never does.
    shapes = [(50, 3), (3, 50), (50,)]
    arrays = [rng.standard_normal(s) for s in shapes]
    path, _ = em.einsum_path("ij,jk,k->i", *[em.array(a) for a in arrays])
    assert path == [(1, 2), (0, 1)]
    assert _path_cost("ij,jk,k->i", shapes, path) < _path_cost("ij,jk,k->i", shapes,
                                                               [(0, 1), (0, 1)])


def test_einsum_path_of_one_operand_is_empty():
    path, text = em.einsum_path("ii->i", em.ones((3, 3)))
    assert path == []
    assert "ii->i" in text


ERRORS = [
    ("ij,jk->ik", [(2, 3)], r"\[einsum\] subscripts 'ij,jk->ik' name 2 operands but 1 were "
                            r"given"),
    ("ijk", [(2, 3)], r"\[einsum\] operand 0 has 2 dimensions but subscripts 'ijk' name 3"),
    ("ij,jk", [(2, 3), (4, 5)], r"\[einsum\] subscript 'j' has size 4 in operand 1 but 3"),
    ("i1", [(2, 3)], r"\[einsum\] invalid subscript '1'"),
    ("ij->k", [(2, 3)], r"\[einsum\] output subscript 'k' does not appear in the inputs"),
    ("ij->ii", [(2, 3)], r"\[einsum\] output subscripts 'ii' repeat a label"),
    ("...i->i", [(2, 3)], r"\[einsum\] the operands have '...' axes but output subscripts 'i'"),
    ("i.j", [(2, 3)], r"\[einsum\] operand 0: subscripts 'i.j' have a malformed ellipsis"),
    ("ij...k", [(2,)], r"\[einsum\] operand 0 has 1 dimensions but subscripts 'ij...k' name at "
                       r"least 3"),
]


@pytest.mark.parametrize("subscripts,shapes,message", ERRORS, ids=[e[0] for e in ERRORS])
def test_einsum_errors(subscripts, shapes, message):
    with pytest.raises(ValueError, match=message):
        em.einsum(subscripts, *[em.zeros(s) for s in shapes])
    with pytest.raises(ValueError, match=message):
        em.einsum_path(subscripts, *[em.zeros(s) for s in shapes])


def test_einsum_type_errors():
    with pytest.raises(TypeError, match=r"\[einsum\] subscripts must be a string"):
        em.einsum(["ij"], em.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"\[einsum\] at least one operand is required"):
        em.einsum("ij")


GRAD_CASES = ["ij,jk->ik", "ii->i", "iij,jk", "ij,jk,kl->il", "abc,cd,dbe->ae",
              "...ij,...jk", "ab,ab,ab->a", "i,j->ij"]


@pytest.mark.parametrize("subscripts", GRAD_CASES)
def test_einsum_grad_matches_jax(rng, subscripts):
    shapes = dict(CASES)[subscripts]
    arrays = [rng.standard_normal(s) for s in shapes]
    out_shape = np.einsum(subscripts, *arrays).shape
    weights = rng.standard_normal(out_shape)
    # One operand: an int argnum, so both libraries return a bare array.
    argnums = tuple(range(len(arrays))) if len(arrays) > 1 else 0
    ours = em.grad(lambda *xs: em.sum(em.einsum(subscripts, *xs) * em.array(weights)),
                   argnums=argnums)(*[em.array(a) for a in arrays])
    with jax.enable_x64(True):
        want = jax.grad(lambda *xs: jnp.sum(jnp.einsum(subscripts, *xs) * weights),
                        argnums=argnums)(*[jnp.asarray(a) for a in arrays])
    if len(arrays) == 1:
        ours, want = [ours], [want]
    for o, w in zip(ours, want):
        np.testing.assert_allclose(npa(o), np.asarray(w), rtol=1e-10, atol=1e-12)


def test_einsum_under_vmap_and_compile(rng):
    xs = rng.standard_normal((5, 3, 4))
    w = rng.standard_normal((4, 2))
    got = em.vmap(lambda x: em.einsum("ij,jk->ki", x, em.array(w)))(em.array(xs))
    np.testing.assert_allclose(npa(got), np.einsum("bij,jk->bki", xs, w), rtol=1e-12)
    compiled = em.compile(lambda a, b: em.einsum("bij,jk->bk", a, b))
    np.testing.assert_allclose(npa(compiled(em.array(xs), em.array(w))),
                               np.einsum("bij,jk->bk", xs, w), rtol=1e-12)


# ---- tensordot (einsum's pairwise building block) ----

@pytest.mark.parametrize("sa,sb,axes", [((3, 4, 5), (4, 5, 6), 2), ((3, 4), (4, 5), 1),
                                        ((2, 3), (4, 5), 0),
                                        ((3, 4, 5), (5, 3, 2), ([0, 2], [1, 0])),
                                        ((6, 4), (4, 6), ([-1, 0], [0, -1])),
                                        ((3, 4, 5), (5, 2), (2, 0))])
@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_tensordot_matches_numpy(rng, sa, sb, axes, dtype):
    a, b = _draw(rng, sa, dtype), _draw(rng, sb, dtype)
    got = em.tensordot(em.array(a), em.array(b), axes)
    np.testing.assert_allclose(npa(got), np.tensordot(a, b, axes), rtol=1e-5, atol=1e-4)


def test_tensordot_errors():
    with pytest.raises(ValueError, match=r"\[tensordot\] axes lists differ in length"):
        em.tensordot(em.zeros((2, 3)), em.zeros((3, 2)), ([0, 1], [1]))
    with pytest.raises(ValueError, match=r"\[tensordot\] axis 1 of a \(3\) does not match axis 0 "
                                         r"of b \(4\)"):
        em.tensordot(em.zeros((2, 3)), em.zeros((4, 2)), ([1], [0]))
    with pytest.raises(ValueError, match=r"\[tensordot\] axes must be non-negative"):
        em.tensordot(em.zeros((2, 3)), em.zeros((3, 2)), -1)


@pytest.mark.parametrize("subscripts,shapes", [("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
                                               ("bii->b", [(2, 3, 3)]),
                                               ("i,j->ij", [(3,), (4,)])])
def test_einsum_of_complex_and_bool(rng, subscripts, shapes):
    zs = [(rng.standard_normal(s) + 1j * rng.standard_normal(s)).astype(np.complex64)
          for s in shapes]
    got = em.einsum(subscripts, *[em.array(z) for z in zs])
    assert got.dtype == em.complex64
    np.testing.assert_allclose(npa(got), np.einsum(subscripts, *zs), rtol=1e-4, atol=1e-5)
    bs = [rng.random(s) < 0.5 for s in shapes]
    got = em.einsum(subscripts, *[em.array(b) for b in bs])
    assert got.dtype == em.bool_
    np.testing.assert_array_equal(npa(got), np.einsum(subscripts, *bs))
