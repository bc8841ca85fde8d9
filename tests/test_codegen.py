"""compile()'s generated fused kernels (core/_codegen.py) against the
interpreter of fused.c and the ops run one by one: bit for bit.

Every op that fuses, in every compute class it has, goes through a generated
kernel (EMBER_CODEGEN_MIN_SIZE=1 forces generation at any size) over random
inputs and the special values (zeros of both signs, infinities, nan,
subnormals), and must give what the interpreter and the unfused kernels give.
The kernels are compiled into a fresh cache directory per test, so every
test also exercises the compiler.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import ember.core as em
from ember.core import _codegen


@pytest.fixture
def generate(monkeypatch, tmp_path):
    """Generation on at every size, into an empty cache, with none of this
    process's kernels known (so each test compiles its own)."""
    monkeypatch.setattr(_codegen, "_loaded", {})
    monkeypatch.setenv("EMBER_CODEGEN", "1")
    monkeypatch.setenv("EMBER_CODEGEN_MIN_SIZE", "1")
    monkeypatch.setenv("EMBER_KERNEL_CACHE", str(tmp_path))
    if _codegen._find_compiler() is None:
        pytest.fail("no C compiler found: generated kernels are untested")
    return tmp_path


def _program(cf):
    (program,) = cf.cache.values()
    return program


def _bits_equal(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    if got.dtype.kind in "fc":
        np.testing.assert_array_equal(got, want)  # nan where nan
        both = ~np.isnan(got)
        assert np.array_equal(np.signbit(got.real[both]), np.signbit(want.real[both]))
    else:
        np.testing.assert_array_equal(got, want)


FLOAT_UNARY = [em.abs, em.negative, em.sign, em.sqrt, em.rsqrt, em.exp, em.expm1, em.log,
               em.log1p, em.log2, em.log10, em.sin, em.cos, em.tan, em.arcsin, em.arccos,
               em.arctan, em.sinh, em.cosh, em.tanh, em.arcsinh, em.arccosh, em.arctanh,
               em.erf, em.erfinv, em.sigmoid, em.floor, em.ceil, em.round]
FLOAT_BINARY = [em.add, em.subtract, em.multiply, em.divide, em.floor_divide, em.remainder,
                em.maximum, em.minimum, em.arctan2, em.logaddexp]
COMPARE = [em.equal, em.not_equal, em.less, em.less_equal, em.greater, em.greater_equal,
           em.logical_and, em.logical_or]
BOOL_UNARY = [em.isnan, em.isinf, em.logical_not]
INT_UNARY = [em.abs, em.negative, em.sign, em.floor, em.ceil, em.round]
INT_BINARY = [em.add, em.subtract, em.multiply, em.floor_divide, em.remainder, em.maximum,
              em.minimum]
COMPLEX_UNARY = [em.negative, em.sqrt, em.exp, em.sin, em.cos, em.tanh, em.log]
COMPLEX_BINARY = [em.add, em.subtract, em.multiply, em.divide]


def _ops(unary, binary, compare, bool_unary):
    """Each op as a function of (x, y) with x's dtype."""
    ops = [lambda x, y, f=f: f(x) for f in unary]
    ops += [lambda x, y, f=f: f(x, y) for f in binary]
    ops += [lambda x, y, f=f: em.where(f(x, y), x, y) for f in compare]
    ops += [lambda x, y, f=f: em.where(f(x), y, x) for f in bool_unary]
    return ops


def _inputs(dtype, n, rng):
    if dtype in ("float32", "float64"):
        special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 1e-40, 1e-310, 100.0,
                            -100.0, 0.5, 2.0, 3.0])
        x = np.concatenate([special, rng.uniform(-1.5, 1.5, n)])
        y = np.concatenate([special[::-1], rng.uniform(0.25, 3.0, n)])
    elif dtype == "complex64":
        x = rng.standard_normal(n) + 1j * rng.standard_normal(n)
        y = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    else:
        lo = 0 if dtype == "uint64" else -40
        x = np.concatenate([[0, 1, 7], rng.integers(lo, 40, n)])
        y = np.concatenate([[0, 0, 3], rng.integers(lo, 40, n)])
    return x.astype(dtype), y.astype(dtype)


CASES = {
    "float32": _ops(FLOAT_UNARY, FLOAT_BINARY, COMPARE, BOOL_UNARY),
    "float64": _ops(FLOAT_UNARY, FLOAT_BINARY, COMPARE, BOOL_UNARY),
    "int64": _ops(INT_UNARY, INT_BINARY, COMPARE, []),
    "uint64": _ops(INT_UNARY, INT_BINARY, COMPARE, []),
    "complex64": _ops(COMPLEX_UNARY, COMPLEX_BINARY, [em.equal, em.not_equal], []),
}


@pytest.mark.parametrize("dtype", list(CASES))
def test_every_op_generated_gives_the_interpreters_bits(dtype, generate, rng, monkeypatch):
    ops = CASES[dtype]
    x_np, y_np = _inputs(dtype, 1000, rng)
    x, y = em.array(x_np), em.array(y_np)
    for start in range(0, len(ops), 16):  # a fused group holds at most 80 ops
        group = ops[start:start + 16]

        def f(x, y):
            results = [op(x, y) for op in group]
            total = results[0]
            for r in results[1:]:
                total = total + r
            return (*results, total)

        want = [np.asarray(v) for v in f(x, y)]  # op by op
        generated = em.compile(f)
        got = generated(x, y)
        assert _program(generated).generated == 1
        monkeypatch.setenv("EMBER_CODEGEN", "0")
        interpreted = em.compile(f)
        by_interpreter = interpreted(x, y)
        assert _program(interpreted).generated == 0
        monkeypatch.setenv("EMBER_CODEGEN", "1")
        for g, i, w in zip(got, by_interpreter, want):
            _bits_equal(g, w)
            _bits_equal(i, w)


def _adamw(p, g, m, v, lr, b1=0.9, b2=0.999, eps=1e-8, wd=1e-2):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    p = p - lr * (m / (em.sqrt(v) + eps) + wd * p)
    return p, m, v


@pytest.mark.parametrize("shape", [(70_001,), (3, 1025), (17,)])
def test_an_optimizer_step_with_several_outputs(shape, generate, rng):
    arrays = [em.array(rng.standard_normal(shape).astype(np.float32)) for _ in range(3)]
    arrays.append(em.array(rng.uniform(0, 1, shape).astype(np.float32)))
    lr = em.array(np.float32(1e-3))
    step = em.compile(_adamw)
    got = step(*arrays, lr)
    assert _program(step).generated == 1
    for g, w in zip(got, _adamw(*arrays, lr)):
        _bits_equal(g, w)


def test_inputs_laid_out_otherwise_run_the_interpreter(generate, rng):
    """The kernel assumes row-contiguous inputs; a transposed or sliced view of
    the same shape and dtype (same trace) runs the interpreter, and a lazy
    input whose buffer the output takes over (a donated buffer) is read
    before it is written."""
    f = em.compile(lambda a, b: em.exp(a) * b + a)
    a_np = rng.standard_normal((300, 200)).astype(np.float32)
    b_np = rng.standard_normal((300, 200)).astype(np.float32)
    a, b = em.array(a_np), em.array(b_np)
    want = np.asarray(em.exp(a) * b + a)
    _bits_equal(f(a, b), want)
    assert _program(f).generated == 1
    a_t = em.array(np.ascontiguousarray(a_np.T)).T            # strides of a transpose
    _bits_equal(f(a_t, b), want)
    wide = em.array(np.concatenate([b_np, b_np], axis=1))
    _bits_equal(f(a, wide[:, :200]), want)                     # a strided slice
    _bits_equal(f(a * 1.0, b * 1.0), want)                     # dead inputs: donated


def test_an_op_without_an_expression_keeps_the_chain_interpreted(generate, rng):
    """power's loop checks a chunk for exponent 2 first, so it has no
    one-expression form: a chain with it is interpreted, and still right."""
    x = em.array(rng.uniform(0.5, 2, 5000).astype(np.float32))
    f = em.compile(lambda x: (x ** 2.5) * 2 + 1)
    _bits_equal(f(x), (x ** 2.5) * 2 + 1)
    assert _program(f).generated == 0


def test_small_chains_are_interpreted_by_default(monkeypatch, tmp_path, rng):
    monkeypatch.delenv("EMBER_CODEGEN_MIN_SIZE", raising=False)
    monkeypatch.setenv("EMBER_KERNEL_CACHE", str(tmp_path))
    x = em.array(rng.standard_normal(1000).astype(np.float32))
    f = em.compile(lambda x: em.exp(x) * 2 + 1)
    _bits_equal(f(x), em.exp(x) * 2 + 1)
    assert _program(f).generated == 0 and not list(tmp_path.iterdir())


def test_a_failing_compiler_leaves_the_chain_interpreted(generate, monkeypatch, rng):
    monkeypatch.setattr(_codegen, "_compiler", ("/bin/false", "false"))
    x = em.array(rng.standard_normal(4000).astype(np.float32))
    f = em.compile(lambda x: em.tanh(x) * 3 - x)
    _bits_equal(f(x), em.tanh(x) * 3 - x)
    assert _program(f).generated == 0
    assert "failed" in _codegen.last_failure
    assert not [p for p in generate.iterdir() if p.suffix == ".so"]  # nothing half-written


def test_a_cached_library_is_loaded_without_compiling(generate, monkeypatch, rng):
    x = em.array(rng.standard_normal(4000).astype(np.float32))
    first = em.compile(lambda x: em.sin(x) * x + 0.25)
    first(x)
    assert [p.suffix for p in generate.iterdir()] == [".so"]
    monkeypatch.setattr(_codegen, "_loaded", {})  # as in a new process

    def no_compiler(*args):
        raise AssertionError("compiled again")

    monkeypatch.setattr(_codegen, "_build", no_compiler)
    again = em.compile(lambda x: em.sin(x) * x + 0.25)
    _bits_equal(again(x), em.sin(x) * x + 0.25)
    assert _program(again).generated == 1


def test_a_damaged_cached_library_is_reported_not_loaded(generate, rng):
    """A later process that finds a damaged file in the cache interprets the
    chain and says why (this process keeps the library it has mapped)."""
    x = em.array(rng.standard_normal(4000).astype(np.float32))
    em.compile(lambda x: em.cos(x) - x * 0.5)(x)
    (library,) = [p for p in generate.iterdir() if p.suffix == ".so"]
    library.unlink()  # a new file: this process still maps the old one
    library.write_bytes(b"not a shared library")
    script = (
        "import numpy as np, ember.core as em\n"
        "from ember.core import _codegen\n"
        "x = em.array(np.linspace(-3, 3, 4000, dtype=np.float32))\n"
        "f = em.compile(lambda x: em.cos(x) - x * 0.5)\n"
        "np.testing.assert_array_equal(np.asarray(f(x)), np.asarray(em.cos(x) - x * 0.5))\n"
        "(p,) = f.cache.values()\n"
        "print(p.generated, _codegen.last_failure)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("0 loading"), done.stdout


@pytest.mark.parametrize("row_shape", [(301,), (1, 301), (7, 301), (1, 7, 301)])
def test_rows_broadcast_along_leading_axes(row_shape, generate, rng):
    """A bias added to every row (broadcast along the leading axes) is read
    beside the output's index, in runs that end where its row does; the
    lengths make the threads' ranges start in the middle of a row."""
    x = em.array(rng.standard_normal((21, 7, 301)).astype(np.float32))
    b = em.array(rng.standard_normal(row_shape).astype(np.float32))

    def layer(x, b):
        h = x * 0.5 + b
        return em.maximum(h, 0.0), h

    f = em.compile(layer)
    got = f(x, b)
    assert _program(f).generated == 1
    for g, w in zip(got, layer(x, b)):
        _bits_equal(g, w)
    wide = rng.standard_normal(row_shape[:-1] + (602,)).astype(np.float32)
    strided = em.array(wide)[..., ::2]  # every other element: the interpreter runs
    for g, w in zip(f(x, strided), layer(x, strided)):
        _bits_equal(g, w)


def test_rows_of_two_lengths_keep_the_chain_interpreted(generate, rng):
    x = em.array(rng.standard_normal((6, 40, 50)).astype(np.float32))
    a = em.array(rng.standard_normal((50,)).astype(np.float32))
    b = em.array(rng.standard_normal((40, 50)).astype(np.float32))
    f = em.compile(lambda x, a, b: (x + a) * b)
    _bits_equal(f(x, a, b), (x + a) * b)
    assert _program(f).generated == 0


def test_loads_and_astypes_that_convert(generate, rng):
    """Inputs of other dtypes than their class (bool, small ints, float64)
    and astype between real classes are casts in the loop, as em_load's;
    a float to integer astype is left to the interpreter."""
    shape = (40, 1000)
    mask = em.array(rng.random(shape) < 0.5)
    small = em.array(rng.integers(-100, 100, shape).astype(np.int32))
    byte = em.array(rng.integers(0, 255, shape).astype(np.uint8))
    wide = em.array(rng.standard_normal(shape))
    x = em.array(rng.standard_normal(shape).astype(np.float32))

    def f(mask, small, byte, wide, x):
        relu_grad = mask.astype(em.float32) * x
        return relu_grad + small + byte * x + wide.astype(em.float32) + (x > 0).astype(em.float32)

    def g(mask, small, byte, wide, x):  # float64 stays float64, int64 class from int32
        return (small.astype(em.int64) * 3 + byte) * 2 - mask

    def h(x):  # float to integer: interpreted
        return (x * 100).astype(em.int64) + 1

    args = (mask, small, byte, wide, x)
    for fn, fn_args, generated in [(f, args, 1), (g, args, 1), (h, (x,), 0)]:
        cf = em.compile(fn)
        _bits_equal(cf(*fn_args), fn(*fn_args))
        assert _program(cf).generated == generated
        assert "fused" in [name for name, _ in _program(cf).ops]


# ---- several outputs that take over their inputs' buffer ----
#
# A chain of several outputs writes them as rows of one buffer. When the
# previous call's rows come back as inputs and nothing else holds them (a
# training loop that drops its old state before eval), the new rows take
# over that buffer: an optimizer updates its state in place.

@pytest.fixture(params=["generated", "interpreted"])
def either_path(request, generate, monkeypatch):
    if request.param == "interpreted":
        monkeypatch.setenv("EMBER_CODEGEN", "0")
    return request.param == "generated"


def _moments(p, g, m, v):
    """Three outputs, returned in another order than the rows they fill."""
    m = 0.9 * m + 0.1 * g
    v = 0.99 * v + 0.01 * g * g
    p = p - 0.1 * m / (em.sqrt(v) + 1e-3)
    return p, m, v


def _reads_after_writing(p, m):
    """The first output's row is the old m's, and m is read again after it."""
    m2 = m * 0.5 + p
    return m2, p - m2 * m


def _run_steps(fn, state, extra, steps, keep_old=False, keep_view=False):
    """Calls the compiled fn `steps` times the way a training loop does (old
    state dropped before eval), checking each call against fn run eagerly;
    returns the peak memory of the last call above the memory before it."""
    cf = em.compile(fn)
    for step in range(steps):
        before_np = [np.array(a) for a in state]  # copies: they hold no buffer of state's
        want = fn(em.array(before_np[0]), *extra, *map(em.array, before_np[1:]))
        old = list(state) if keep_old else None
        if keep_view:  # a view of the rows' buffer that is not an input
            old, before_np = [state[0][1:]], [before_np[0][1:]]
            em.eval(old)
        em.reset_peak_memory()
        before = em.get_active_memory()
        state[:] = cf(state[0], *extra, *state[1:])
        em.eval(state)
        peak = em.get_peak_memory() - before
        for k in range(len(state)):  # no loop variable left holding an array
            _bits_equal(state[k], want[k])
        if keep_old or keep_view:  # held elsewhere: its values must not change
            for a, b in zip(old, before_np):
                _bits_equal(a, b)
            del old
    assert _program(cf).generated == (1 if os.environ.get("EMBER_CODEGEN") != "0" else 0)
    return peak


@pytest.mark.parametrize("n", [70_001, 1000])
def test_optimizer_state_is_updated_in_place(n, either_path, rng):
    state = [em.array(rng.standard_normal(n).astype(np.float32)) for _ in range(3)]
    g = em.array(rng.standard_normal(n).astype(np.float32))
    em.eval(state, g)
    peak = _run_steps(_moments, state, (g,), steps=4)
    # no new buffer for the three rows (3 * n floats): the old rows' was reused
    assert peak < 3 * n * 4


def test_an_output_row_is_written_after_its_input_is_read(either_path, rng):
    n = 70_001
    state = [em.array(rng.standard_normal(n).astype(np.float32)) for _ in range(2)]
    em.eval(state)
    peak = _run_steps(_reads_after_writing, state, (), steps=4)
    assert peak < 2 * n * 4


def test_rows_held_elsewhere_are_not_overwritten(either_path, rng):
    n = 70_001
    state = [em.array(rng.standard_normal(n).astype(np.float32)) for _ in range(3)]
    g = em.array(rng.standard_normal(n).astype(np.float32))
    em.eval(state, g)
    peak = _run_steps(_moments, state, (g,), steps=3, keep_old=True)
    assert peak >= 3 * n * 4  # a new buffer: the old one is still read
    peak = _run_steps(_moments, state, (g,), steps=3, keep_view=True)
    assert peak >= 3 * n * 4
