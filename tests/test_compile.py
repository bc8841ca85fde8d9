"""compile: results equal the uncompiled function's, traces are cached per
signature and redone when it changes, static arguments, pytrees, closures,
implicit state, fusion, composition with the other transforms, errors."""
from typing import NamedTuple

import numpy as np
import pytest

import ember.core as em


def _close(a, b, tol=1e-6):
    np.testing.assert_allclose(np.array(a), np.array(b), rtol=tol, atol=tol)


def _program(compiled):
    (prog,) = compiled.cache.values()
    return prog


def test_matches_the_function_and_caches_the_trace(rng):
    calls = []

    def f(x, y):
        calls.append(1)
        return em.tanh(x) * y + em.sum(x, axis=0)

    cf = em.compile(f)
    for _ in range(3):
        x = em.array(rng.standard_normal((4, 3)).astype(np.float32))
        y = em.array(rng.standard_normal((3,)).astype(np.float32))
        _close(cf(x, y), f(x, y))
    assert cf.trace_count == 1
    assert len(calls) == 4  # one trace, three direct calls of f


def test_retraces_when_the_signature_changes(rng):
    cf = em.compile(lambda x: x * 2.0)
    cf(em.ones((2, 3)))
    cf(em.ones((2, 3)) * 5)
    assert cf.trace_count == 1
    _close(cf(em.ones((3, 3))), np.full((3, 3), 2.0))       # new shape
    _close(cf(em.ones((2, 3), em.float64)), np.full((2, 3), 2.0))  # new dtype
    cf([em.ones(2)][0])
    assert cf.trace_count == 4


def test_signature_tells_apart_shapes_ranks_and_leaf_kinds(rng):
    # the key reads every array's dtype and shape in one call into C: arrays
    # of high rank (past its first guess at the key's length), swapped axes
    # and an array trading places with a scalar must each get their own trace
    cf = em.compile(lambda a, b: a * b)
    deep = rng.standard_normal((2, 1, 3, 1, 2, 1, 1, 2)).astype(np.float32)
    _close(cf(em.array(deep), em.array(deep)), deep * deep)
    _close(cf(em.array(deep), em.array(deep)), deep * deep)
    assert cf.trace_count == 1
    wide = rng.standard_normal((2, 3)).astype(np.float32)
    _close(cf(em.array(wide), em.array(wide)), wide * wide)
    _close(cf(em.array(wide.T), em.array(wide.T)), wide.T * wide.T)
    assert cf.trace_count == 3
    _close(cf(em.array(wide), 2.0), wide * 2)
    _close(cf(2.0, em.array(wide)), wide * 2)
    _close(cf(em.array(wide), 3.0), wide * 3)
    assert cf.trace_count == 6


def test_python_scalars_are_part_of_the_signature():
    cf = em.compile(lambda x, s: x * s)
    _close(cf(em.ones(3), 2.0), [2, 2, 2])
    _close(cf(em.ones(3), 3.0), [3, 3, 3])
    _close(cf(em.ones(3), 2.0), [2, 2, 2])
    assert cf.trace_count == 2


def test_static_argnums_and_argnames(rng):
    def f(x, n, *, mode):
        out = x
        for _ in range(n):
            out = out * 2.0 if mode == "double" else out + 1.0
        return out

    cf = em.compile(f, static_argnums=1, static_argnames="mode")
    x = em.array(rng.standard_normal(5).astype(np.float32))
    _close(cf(x, 3, mode="double"), np.array(x) * 8)
    _close(cf(x, 2, mode="add"), np.array(x) + 2)
    _close(cf(x, 3, mode="double"), np.array(x) * 8)
    assert cf.trace_count == 2
    with pytest.raises(TypeError, match="hashable"):
        em.compile(lambda x, s: x, static_argnums=1)(x, [1, 2])


class Params(NamedTuple):
    w: em.array
    b: em.array


def test_pytrees_in_and_out(rng):
    def f(params, batch):
        h = batch["x"] @ params.w + params.b
        return {"out": h, "stats": (em.mean(h), em.max(h))}

    cf = em.compile(f)
    p = Params(em.array(rng.standard_normal((3, 2)).astype(np.float32)),
               em.array(rng.standard_normal(2).astype(np.float32)))
    batch = {"x": em.array(rng.standard_normal((4, 3)).astype(np.float32))}
    got, want = cf(p, batch), f(p, batch)
    assert set(got) == {"out", "stats"} and isinstance(got["stats"], tuple)
    _close(got["out"], want["out"])
    _close(got["stats"][0], want["stats"][0])
    _close(got["stats"][1], want["stats"][1])


def test_captured_arrays_are_constants_of_the_trace():
    scale = em.array(2.0)
    cf = em.compile(lambda x: x * scale)
    _close(cf(em.ones(2)), [2, 2])
    scale = em.array(10.0)  # rebinding the closure's name does not reach the trace
    _close(cf(em.ones(2)), [2, 2])


def test_implicit_state_inputs_and_outputs():
    state = {"count": em.array(0.0), "total": em.array(0.0)}

    def step(x):
        state["count"] = state["count"] + 1
        state["total"] = state["total"] + em.sum(x)
        return state["total"] / state["count"]

    cf = em.compile(step, inputs=state, outputs=state)
    for k in range(1, 4):
        mean = cf(em.full((2,), float(k)))
        assert float(state["count"]) == k
    assert float(mean) == pytest.approx((2 + 4 + 6) / 3)
    assert cf.trace_count == 1


def test_common_subexpressions_merge_and_chains_fuse(rng):
    def f(x):
        a = em.exp(x) * 2.0 + 1.0
        b = em.exp(x) * 2.0 + 1.0
        return em.sigmoid(a + b) - em.log(em.abs(x) + 1.0)

    cf = em.compile(f)
    x = em.array(rng.standard_normal((64, 33)).astype(np.float32))
    _close(cf(x), f(x), 1e-5)
    ops = [name for name, _ in _program(cf).ops]
    assert ops == ["fused"]


def test_fused_float64_bool_and_where(rng):
    def f(x, y):
        mask = (x > 0) & (y < 0.5)
        return em.where(mask, em.sqrt(em.abs(x)) * y, -x) + em.maximum(x, y)

    cf = em.compile(f)
    x = em.array(rng.standard_normal((5, 7)))
    y = em.array(rng.standard_normal((7,)))
    _close(cf(x, y), f(x, y), 1e-12)
    assert "fused" in [name for name, _ in _program(cf).ops]


def test_constants_are_folded(rng):
    def f(x):
        table = em.exp(em.arange(10.0)) / 3.0  # no input: computed once, at trace time
        return x + table

    cf = em.compile(f)
    x = em.array(rng.standard_normal(10).astype(np.float32))
    _close(cf(x), f(x), 1e-5)
    assert [name for name, _ in _program(cf).ops] == ["add"]


def test_composes_with_grad_and_vmap(rng):
    f = lambda x: em.sum(em.sin(x) * em.exp(x * 0.5))
    x = em.array(rng.standard_normal(6))
    _close(em.compile(em.grad(f))(x), em.grad(f)(x), 1e-12)
    _close(em.grad(em.compile(f))(x), em.grad(f)(x), 1e-12)
    _close(em.grad(em.grad(em.compile(f)))(x[0]), em.grad(em.grad(f))(x[0]), 1e-12)
    xs = em.array(rng.standard_normal((3, 6)))
    _close(em.vmap(em.compile(em.grad(f)))(xs), em.vmap(em.grad(f))(xs), 1e-12)
    _close(em.compile(em.vmap(em.grad(f)))(xs), em.vmap(em.grad(f))(xs), 1e-12)


def test_shapeless_reuses_the_trace_across_shapes(rng):
    cf = em.compile(lambda x: em.exp(x) + 1.0, shapeless=True)
    for n in (3, 5, 8):
        x = em.array(rng.standard_normal(n).astype(np.float32))
        _close(cf(x), np.exp(np.array(x)) + 1.0, 1e-5)
    assert cf.trace_count == 1
    reshaper = em.compile(lambda x: x.reshape(2, -1).sum(axis=0), shapeless=True)
    reshaper(em.ones(4))
    with pytest.raises(ValueError, match="shapeless"):
        reshaper(em.ones(6))


def test_disable_and_enable_compile():
    calls = []

    def f(x):
        calls.append(1)
        return x + 1

    cf = em.compile(f)
    em.disable_compile()
    try:
        cf(em.ones(2))
        cf(em.ones(2))
        assert cf.trace_count == 0 and len(calls) == 2
    finally:
        em.enable_compile()
    cf(em.ones(2))
    cf(em.ones(2))
    assert cf.trace_count == 1 and len(calls) == 3


def test_values_are_not_available_inside_a_compiled_function():
    with pytest.raises(ValueError, match=r"\[compile\] cannot evaluate a traced value"):
        em.compile(lambda x: x * x.item())(em.array(2.0))
    with pytest.raises(ValueError, match=r"\[compile\]"):
        em.compile(lambda x: np.array(x))(em.ones(3))


def test_outputs_must_be_arrays():
    with pytest.raises(TypeError, match="must return arrays"):
        em.compile(lambda x: (x, "label"))(em.ones(2))


def test_bad_calls_raise_clear_errors():
    cf = em.compile(lambda x, y: x @ y)
    with pytest.raises(ValueError, match="matmul"):
        cf(em.ones((2, 3)), em.ones((2, 3)))
    with pytest.raises(ValueError, match="static_argnums"):
        em.compile(lambda x: x, static_argnums=3)(em.ones(2))


def test_decorator_forms():
    @em.compile
    def f(x):
        return x * 3

    @em.compile(static_argnums=1)
    def g(x, k):
        return x * k

    _close(f(em.ones(2)), [3, 3])
    _close(g(em.ones(2), 4), [4, 4])


def test_a_chain_with_values_needed_elsewhere_is_one_multi_output_pass(rng):
    """An Adam-like update: new moments and new parameters from one fused node."""
    def update(p, g, m, v):
        m2 = 0.9 * m + 0.1 * g
        v2 = 0.999 * v + 0.001 * g * g
        return p - 0.01 * m2 / (em.sqrt(v2) + 1e-8), m2, v2

    cf = em.compile(update)
    args = [em.array(rng.standard_normal((33, 17)).astype(np.float32)) for _ in range(4)]
    for got, want in zip(cf(*args), update(*args)):
        _close(got, want, 1e-6)
    ops = [name for name, _ in _program(cf).ops]
    assert ops.count("fused") == 1 and "multiply" not in ops and "sqrt" not in ops
    # and its rules (through the stacked outputs) still differentiate
    loss = lambda p, g, m, v: em.sum(cf(p, g, m, v)[0] * cf(p, g, m, v)[1])
    _close(em.grad(loss, argnums=(0, 1))(*args)[1],
           em.grad(lambda *a: em.sum(update(*a)[0] * update(*a)[1]), argnums=(0, 1))(*args)[1],
           1e-4)


@pytest.mark.parametrize("n", [5, 1023, 1024, 3000, 70_001])
def test_random_fused_chains_equal_the_unfused_ops(n, rng):
    """Long chains with many values alive at once (the fused kernel shares
    scratch buffers between values by liveness), broadcast scalars and rows,
    several outputs, over sizes on both sides of its chunk: bit for bit the
    ops run one by one."""
    unary = [em.sin, em.exp, em.tanh, em.abs, lambda a: a * a, em.negative]
    binary = [em.add, em.subtract, em.multiply, em.maximum, em.minimum,
              lambda a, b: a / (1.0 + b * b)]

    def chain(x, y, row):
        values = [x, y, x * 0.5, row * y]
        for step in range(24):
            a = values[int(rng.integers(len(values)))]
            if step % 3 == 0:
                values.append(unary[int(rng.integers(len(unary)))](a))
            else:
                b = values[int(rng.integers(len(values)))]
                values.append(binary[int(rng.integers(len(binary)))](a, b))
        picks = rng.choice(np.arange(4, len(values)), size=3, replace=False)
        return tuple(values[int(k)] for k in picks)

    x = em.array(rng.standard_normal((3, n)).astype(np.float32))
    y = em.array(rng.standard_normal((3, n)).astype(np.float32))
    row = em.array(rng.standard_normal((n,)).astype(np.float32))
    state = rng.bit_generator.state
    want = chain(x, y, row)
    rng.bit_generator.state = state  # the same random chain, traced
    cf = em.compile(chain)
    got = cf(x, y, row)
    assert "fused" in [name for name, _ in _program(cf).ops]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
