"""Elementwise ops against numpy.

Every unary and binary op of core/elementwise.py runs on fresh random inputs of
every dtype it accepts; the result's dtype must follow mlx.core's rules
(float functions of integers give float32, comparisons give bool, python
scalars are weakly typed) and its values must match numpy's within a
tolerance set by the output dtype. numpy computes the reference in float64
(complex128 for complex64) on the exact input values, so the tolerance only
has to cover the error of ember's own kernels and the final rounding.

Layouts (transposed, negative-step, strided and broadcast views, 0-d and empty
arrays) and large inputs (the threaded path) are covered for a representative
set of ops; special values (nan, inf, -0.0, integer division by zero,
INT_MIN // -1) and error messages have their own tests.
"""
import warnings

import numpy as np
import pytest

import ember.core as em

DTYPES = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
          "float16", "bfloat16", "float32", "float64", "complex64"]
INTS = ["uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64"]
FLOATS = ["float16", "bfloat16", "float32", "float64"]

# (rtol, atol) per output dtype.
TOL = {"float16": (2e-3, 2e-3), "bfloat16": (1.6e-2, 1.6e-2), "float32": (2e-6, 1e-6),
       "float64": (1e-12, 1e-13), "complex64": (2e-5, 2e-6)}


def is_int(d):
    return d in INTS


def is_float(d):
    return d in FLOATS


def np_dtype(d):
    """The numpy dtype ember converts `d` to (bfloat16 goes through float32)."""
    return np.dtype("float32" if d == "bfloat16" else ("bool" if d == "bool" else d))


def random_values(rng, shape, dtype, domain="any"):
    """Random numpy values of `dtype` in `domain`, never all zeros."""
    shape = tuple(shape)
    if dtype == "bool":
        x = rng.random(shape) < 0.5
        if x.size:
            x.flat[0] = True
        return x
    if is_int(dtype):
        lo, hi = {"any": (-50, 50), "pos": (1, 50), "nonzero": (-20, 20), "unit": (-1, 2),
                  "ge1": (1, 50), "small": (0, 6), "exp": (-8, 9)}[domain]
        info = np.iinfo(dtype)
        lo, hi = max(lo, int(info.min)), min(hi, int(info.max))
        if lo == 0 and domain == "any":
            hi = min(100, int(info.max))
        x = rng.integers(lo, hi, shape).astype(dtype)
        if domain == "nonzero":
            x[x == 0] = 1
        return x
    lo, hi = {"any": (-3, 3), "pos": (0.1, 8), "nonzero": (0.25, 8), "unit": (-0.95, 0.95),
              "ge1": (1.05, 8), "small": (0.5, 3), "exp": (-8, 8)}[domain]
    x = rng.uniform(lo, hi, shape)
    if domain == "nonzero":
        x *= rng.choice([-1.0, 1.0], shape)
    if dtype == "complex64":
        if domain in ("any", "exp"):
            x = x + 1j * rng.uniform(-1.5, 1.5, shape)
        else:
            x = x + 1j * rng.uniform(-0.5, 0.5, shape)
    return x.astype(np_dtype(dtype))


def to_ember(x, dtype):
    """An ember array of `dtype` holding x, and the exact values it holds as numpy."""
    a = em.array(x, dtype=getattr(em, "bool_" if dtype == "bool" else dtype))
    return a, np.array(a)


def make(rng, shape, dtype, domain="any"):
    return to_ember(random_values(rng, shape, dtype, domain), dtype)


def reference(fn, *xs, out_dtype, compute=None):
    """numpy's fn on the exact input values, in a wide type, cast to out_dtype."""
    if compute is None:
        compute = wide_type(out_dtype, *[x.dtype for x in xs])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fn(*[np.asarray(x).astype(compute) for x in xs])
        return np.asarray(r).astype(np_dtype(out_dtype))


def wide_type(out_dtype, *in_dtypes):
    if out_dtype == "complex64" or any(d.kind == "c" for d in in_dtypes):
        return np.complex128
    if is_float(out_dtype):
        return np.float64
    if out_dtype == "bool" and all(d.kind in "fb" for d in in_dtypes) and \
            any(d.kind == "f" for d in in_dtypes):
        return np.float64
    if out_dtype == "bool" and any(d.kind == "f" for d in in_dtypes):
        return np.float64
    kinds = {d.kind for d in in_dtypes}
    if kinds <= {"b"}:
        return np.int64
    if out_dtype in INTS:
        return np_dtype(out_dtype)
    # bool output from integer inputs: compare in a type holding both
    return np.result_type(*in_dtypes) if "f" not in kinds else np.float64


def check(out, expected, dtype):
    """out has ember dtype `dtype`, expected's shape, and expected's values."""
    assert isinstance(out, em.array)
    assert out.dtype == getattr(em, "bool_" if dtype == "bool" else dtype), (out.dtype, dtype)
    got = np.array(out)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if dtype in TOL:
        rtol, atol = TOL[dtype]
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, expected)


# ---- unary ops ----

def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _erf(x):
    from math import erf
    return np.vectorize(erf, otypes=[np.float64])(x)


def _erfinv(y):
    # Newton on erf from a float64 start; accurate to ~1e-15 on (-1, 1).
    from math import erf, exp, pi, sqrt
    def one(v):
        if v >= 1 or v <= -1:
            return np.inf * np.sign(v) if abs(v) == 1 else np.nan
        x = 0.0
        for _ in range(100):
            x -= (erf(x) - v) / (2 / sqrt(pi) * exp(-x * x))
        return x
    return np.vectorize(one, otypes=[np.float64])(y)


# name: (numpy function, input domain, kind, complex supported)
#   kind "float": float function (integers and bool compute as float32)
#   kind "same": keeps the input dtype
#   kind "pred": bool result
UNARY = {
    "abs": (np.abs, "any", "same", True),
    "negative": (np.negative, "any", "same", True),
    "sign": (np.sign, "any", "same", True),
    "sqrt": (np.sqrt, "pos", "float", True),
    "rsqrt": (lambda x: 1 / np.sqrt(x), "pos", "float", True),
    "exp": (np.exp, "exp", "float", True),
    "expm1": (np.expm1, "exp", "float", True),
    "log": (np.log, "pos", "float", True),
    "log1p": (np.log1p, "pos", "float", True),
    "log2": (np.log2, "pos", "float", True),
    "log10": (np.log10, "pos", "float", True),
    "sin": (np.sin, "any", "float", True),
    "cos": (np.cos, "any", "float", True),
    "tan": (np.tan, "unit", "float", True),
    "arcsin": (np.arcsin, "unit", "float", True),
    "arccos": (np.arccos, "unit", "float", True),
    "arctan": (np.arctan, "any", "float", True),
    "sinh": (np.sinh, "any", "float", True),
    "cosh": (np.cosh, "any", "float", True),
    "tanh": (np.tanh, "any", "float", True),
    "arcsinh": (np.arcsinh, "any", "float", True),
    "arccosh": (np.arccosh, "ge1", "float", True),
    "arctanh": (np.arctanh, "unit", "float", True),
    "erf": (_erf, "any", "float", False),
    "erfinv": (_erfinv, "unit", "float", False),
    "sigmoid": (_sigmoid, "exp", "float", True),
    "floor": (np.floor, "any", "same", False),
    "ceil": (np.ceil, "any", "same", False),
    "round": (np.round, "any", "same", False),
    "square": (np.square, "any", "same", True),
    "reciprocal": (np.reciprocal, "nonzero", "float", True),
    "degrees": (np.degrees, "any", "float", False),
    "radians": (np.radians, "any", "float", False),
    "isnan": (np.isnan, "any", "pred", True),
    "isinf": (np.isinf, "any", "pred", True),
    "isfinite": (np.isfinite, "any", "pred", False),
    "isposinf": (np.isposinf, "any", "pred", False),
    "isneginf": (np.isneginf, "any", "pred", False),
    "logical_not": (np.logical_not, "any", "pred", True),
    "bitwise_invert": (np.invert, "any", "same", False),
    "stop_gradient": (lambda x: x, "any", "same", True),
    "conjugate": (np.conjugate, "any", "same", True),
    "conj": (np.conjugate, "any", "same", True),
    "real": (np.real, "any", "same", True),
    "imag": (np.imag, "any", "same", True),
}

# Ops that raise TypeError for some dtypes (checked in test_unary_rejects).
UNARY_REJECTS = {
    "negative": ["bool"],
    "bitwise_invert": FLOATS + ["complex64"],
    "erf": ["complex64"],
    "erfinv": ["complex64"],
    "floor": ["complex64"],
    "ceil": ["complex64"],
    "round": ["complex64"],
}


def unary_out_dtype(name, dtype):
    kind = UNARY[name][2]
    if kind == "pred":
        return "bool"
    if dtype == "complex64" and name in ("abs", "real", "imag"):
        return "float32"
    if kind == "float" and not (is_float(dtype) or dtype == "complex64"):
        return "float32"
    return dtype


def unary_cases():
    for name, (_, _, _, cplx) in UNARY.items():
        for dtype in DTYPES:
            if dtype in UNARY_REJECTS.get(name, ()):
                continue
            if dtype == "complex64" and not cplx:
                continue
            yield name, dtype


@pytest.mark.parametrize("name,dtype", list(unary_cases()))
def test_unary(rng, name, dtype):
    fn, domain, kind, _ = UNARY[name]
    if name in ("sign", "abs", "negative", "square") and dtype in INTS[:4]:
        domain = "any"  # unsigned: values are non-negative anyway
    a, x = make(rng, (4, 5), dtype, domain)
    op = getattr(em, name)
    out_dtype = unary_out_dtype(name, dtype)
    if name in ("real", "imag", "conjugate", "conj") and dtype != "complex64":
        # real arrays: real/conj are the array itself, imag is zeros
        expected = np.zeros_like(x) if name == "imag" else x
        if name == "imag" and dtype == "bool":
            out_dtype = "int32"  # a * 0 with a weak int scalar: bool promotes to int32
            expected = expected.astype(np.int32)
        check(op(a), expected, out_dtype)
        return
    if name == "sign" and dtype == "complex64":
        fn = lambda v: v / np.abs(v)  # noqa: E731  (numpy 2's definition; mlx's too)
    compute = None
    if kind == "pred":
        compute = np.complex128 if dtype == "complex64" else (
            np.float64 if is_float(dtype) else np_dtype(dtype))
    elif name == "bitwise_invert":
        compute = np_dtype(dtype)
    expected = reference(fn, x, out_dtype=out_dtype, compute=compute)
    check(op(a), expected, out_dtype)


@pytest.mark.parametrize("name,dtypes", list(UNARY_REJECTS.items()))
def test_unary_rejects(name, dtypes):
    for dtype in dtypes:
        a = em.ones((2, 3), dtype=getattr(em, "bool_" if dtype == "bool" else dtype))
        with pytest.raises(TypeError, match=rf"\[{name}\].*{dtype}"):
            em.eval(getattr(em, name)(a))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("decimals", [1, 2, -1])
def test_round_decimals(rng, dtype, decimals):
    a, x = make(rng, (50,), dtype)
    a, x = to_ember(x * 40, dtype)
    expected = reference(lambda v: np.round(v, decimals), x, out_dtype=dtype)
    got = np.array(em.round(a, decimals))
    # half-way cases may round either way after scaling: allow one unit of 10**-decimals
    assert a.dtype == em.round(a, decimals).dtype
    np.testing.assert_allclose(got, expected, rtol=TOL[dtype][0], atol=10.0 ** -decimals * 1.01)


def test_round_half_to_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.49, -3.51], np.float32)
    np.testing.assert_array_equal(np.array(em.round(em.array(x))), np.round(x))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_unary_special_values(dtype):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0], np_dtype(dtype))
    a, x = to_ember(x, dtype)
    for name in ["abs", "negative", "sqrt", "exp", "log", "sin", "tanh", "floor", "ceil",
                 "sigmoid", "isnan", "isinf", "isfinite", "isposinf", "isneginf", "arctan",
                 "expm1", "log1p", "erf"]:
        out_dtype = unary_out_dtype(name, dtype)
        expected = reference(UNARY[name][0], x, out_dtype=out_dtype,
                             compute=np.float64)
        got = getattr(em, name)(a)
        check(got, expected, out_dtype)
    # the sign of zero survives negative and abs
    assert np.signbit(np.array(em.negative(a))[3])
    assert not np.signbit(np.array(em.abs(a))[4])
    assert np.array(em.sign(a))[0] != np.array(em.sign(a))[0]  # sign(nan) is nan


def test_erfinv_edges():
    a = em.array([-1.0, 1.0, 0.0, 2.0, -2.0])
    got = np.array(em.erfinv(a))
    np.testing.assert_array_equal(got[:3], [-np.inf, np.inf, 0.0])
    assert np.isnan(got[3:]).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_is_stable_for_large_inputs(dtype):
    a, x = to_ember(np.array([-1000.0, -100.0, -30.0, 30.0, 100.0, 1000.0]), dtype)
    got = np.array(em.sigmoid(a))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, reference(_sigmoid, x, out_dtype=dtype), rtol=1e-6,
                               atol=0)


def test_nan_to_num(rng):
    x = rng.standard_normal(12).astype(np.float32)
    x[[1, 4, 7]] = [np.nan, np.inf, -np.inf]
    check(em.nan_to_num(em.array(x)), np.nan_to_num(x), "float32")
    check(em.nan_to_num(em.array(x), nan=2.0, posinf=7.0, neginf=-9.0),
          np.nan_to_num(x, nan=2.0, posinf=7.0, neginf=-9.0), "float32")
    h = x.astype(np.float16)
    check(em.nan_to_num(em.array(h)), np.nan_to_num(h), "float16")
    i = rng.integers(-5, 5, 7).astype(np.int32)
    check(em.nan_to_num(em.array(i)), i, "int32")


@pytest.mark.parametrize("dtype", ["float32", "int32", "float16", "uint8", "int64"])
def test_clip(rng, dtype):
    a, x = make(rng, (6, 7), dtype)
    lo, hi = (-1, 2) if dtype != "uint8" else (20, 60)
    check(em.clip(a, lo, hi), np.clip(x, lo, hi), dtype)
    check(em.clip(a, lo, None), np.maximum(x, np.array(lo, x.dtype)), dtype)
    check(em.clip(a, None, hi), np.minimum(x, np.array(hi, x.dtype)), dtype)
    b_lo, xl = make(rng, (6, 1), dtype)
    check(em.clip(a, b_lo, None), np.maximum(x, xl), dtype)
    with pytest.raises(ValueError, match=r"\[clip\]"):
        em.clip(a, None, None)


# ---- binary ops ----

# name: (numpy function, domain of a, domain of b, kind, complex supported)
#   kind "arith": result dtype is the promoted dtype
#   kind "float": integers promote to float32
#   kind "pred": bool result
BINARY = {
    "add": (np.add, "any", "any", "arith", True),
    "subtract": (np.subtract, "any", "any", "arith", True),
    "multiply": (np.multiply, "any", "any", "arith", True),
    "divide": (np.divide, "any", "nonzero", "float", True),
    "floor_divide": (lambda a, b: np.floor(a / b) if a.dtype.kind == "f"
                     else np.floor_divide(a, b), "any", "nonzero", "arith", False),
    "remainder": (np.remainder, "any", "nonzero", "arith", False),
    "power": (np.power, "small", "small", "arith", True),
    "maximum": (np.maximum, "any", "any", "arith", False),
    "minimum": (np.minimum, "any", "any", "arith", False),
    "arctan2": (np.arctan2, "any", "any", "float", False),
    "logaddexp": (np.logaddexp, "any", "any", "float", False),
    "equal": (np.equal, "any", "any", "pred", True),
    "not_equal": (np.not_equal, "any", "any", "pred", True),
    "less": (np.less, "any", "any", "pred", False),
    "less_equal": (np.less_equal, "any", "any", "pred", False),
    "greater": (np.greater, "any", "any", "pred", False),
    "greater_equal": (np.greater_equal, "any", "any", "pred", False),
    "logical_and": (np.logical_and, "any", "any", "pred", True),
    "logical_or": (np.logical_or, "any", "any", "pred", True),
    "bitwise_and": (np.bitwise_and, "any", "any", "bits", False),
    "bitwise_or": (np.bitwise_or, "any", "any", "bits", False),
    "bitwise_xor": (np.bitwise_xor, "any", "any", "bits", False),
    "left_shift": (np.left_shift, "any", "shift", "bits", False),
    "right_shift": (np.right_shift, "any", "shift", "bits", False),
}

COMPLEX_REJECTS = [n for n, v in BINARY.items() if not v[4] and v[3] != "bits"]


def binary_out_dtype(name, a_dtype, b_dtype):
    p = em.promote_types(dt(a_dtype), dt(b_dtype)).name
    kind = BINARY[name][3]
    if kind == "pred":
        return "bool"
    if kind == "float" and not (is_float(p) or p == "complex64"):
        return "float32"
    return p


def dt(name):
    return getattr(em, "bool_" if name == "bool" else name)


def binary_inputs(rng, name, a_dtype, b_dtype, a_shape=(4, 5), b_shape=(4, 5)):
    _, da, db, _, _ = BINARY[name]
    if db == "shift":
        bits = 1 if b_dtype == "bool" else np.dtype(np_dtype(b_dtype)).itemsize * 8
        a_bits = 1 if a_dtype == "bool" else np.dtype(np_dtype(a_dtype)).itemsize * 8
        b = rng.integers(0, min(bits, a_bits, 64), b_shape).astype(np_dtype(b_dtype))
        b_arr = to_ember(b, b_dtype)
    else:
        b_arr = make(rng, b_shape, b_dtype, db)
    return make(rng, a_shape, a_dtype, da), b_arr


def binary_reference(name, x, y, out_dtype, p):
    fn = BINARY[name][0]
    kind = BINARY[name][3]
    if kind in ("arith", "bits") and p in INTS:
        compute = np_dtype(p)
    elif kind == "pred" and p in INTS:
        compute = np_dtype(p)
    elif p == "bool":
        compute = np.bool_ if kind in ("pred", "bits") else np.int64
    else:
        compute = None
    return reference(fn, x, y, out_dtype=out_dtype, compute=compute)


def binary_cases():
    for name, (_, _, _, kind, cplx) in BINARY.items():
        for dtype in DTYPES:
            if dtype == "complex64" and not cplx:
                continue
            if kind == "bits" and not (is_int(dtype) or dtype == "bool"):
                continue
            if name == "subtract" and dtype == "bool":
                continue  # numpy refuses bool - bool
            yield name, dtype


@pytest.mark.parametrize("name,dtype", list(binary_cases()))
def test_binary(rng, name, dtype):
    (a, x), (b, y) = binary_inputs(rng, name, dtype, dtype)
    out_dtype = binary_out_dtype(name, dtype, dtype)
    expected = binary_reference(name, x, y, out_dtype, dtype)
    check(getattr(em, name)(a, b), expected, out_dtype)


PROMOTION_OPS = ["add", "multiply", "maximum", "less", "divide", "equal"]


@pytest.mark.parametrize("name", PROMOTION_OPS)
def test_binary_mixed_dtypes(rng, name):
    """Every pair of dtypes: the promoted dtype and the values."""
    for da in DTYPES:
        for db in DTYPES:
            p = em.promote_types(dt(da), dt(db)).name
            if p == "complex64" and not BINARY[name][4]:
                continue
            (a, x), (b, y) = binary_inputs(rng, name, da, db, (3, 4), (4,))
            out_dtype = binary_out_dtype(name, da, db)
            # the reference sees both inputs at the promoted dtype, as ember does
            xp = np.array(em.array(x).astype(dt(p))) if p == "bfloat16" else x.astype(np_dtype(p))
            yp = np.array(em.array(y).astype(dt(p))) if p == "bfloat16" else y.astype(np_dtype(p))
            expected = binary_reference(name, xp, yp, out_dtype, p)
            try:
                check(getattr(em, name)(a, b), expected, out_dtype)
            except AssertionError as e:
                raise AssertionError(f"{name}({da}, {db}): {e}") from None


@pytest.mark.parametrize("name", COMPLEX_REJECTS)
def test_binary_rejects_complex(name):
    a = em.array([1 + 2j, 3 - 1j])
    with pytest.raises(TypeError, match=rf"\[{name}\].*complex64"):
        em.eval(getattr(em, name)(a, a))
    with pytest.raises(TypeError, match=rf"\[{name}\].*complex64"):
        em.eval(getattr(em, name)(a, em.array([1.0, 2.0])))


@pytest.mark.parametrize("name", ["bitwise_and", "bitwise_or", "bitwise_xor", "left_shift",
                                  "right_shift"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64", "complex64"])
def test_bitwise_rejects_inexact(name, dtype):
    a = em.ones((2, 2), dtype=dt(dtype))
    i = em.ones((2, 2), dtype=em.int32)
    with pytest.raises(TypeError, match=rf"\[{name}\] requires integer or bool inputs, got "
                                        rf"{dtype} and int32"):
        getattr(em, name)(a, i)
    with pytest.raises(TypeError, match=rf"\[{name}\].*{dtype}"):
        getattr(em, name)(a, 1)


@pytest.mark.parametrize("name", list(BINARY))
def test_broadcast_mismatch(name):
    a = em.zeros((2, 3), dtype=em.int32)
    b = em.zeros((4, 3), dtype=em.int32)
    with pytest.raises(ValueError, match=rf"\[{name}\] shapes \(2, 3\) and \(4, 3\) cannot be "
                                         "broadcast"):
        getattr(em, name)(a, b)
    with pytest.raises(ValueError, match=rf"\[{name}\].*\(5,\)"):
        getattr(em, name)(em.zeros((2, 1, 3), dtype=em.int32), em.zeros((5,), dtype=em.int32))


def test_integer_division_by_zero_does_not_crash(rng):
    for dtype in INTS:
        x = random_values(rng, (30,), dtype, "any")
        y = random_values(rng, (30,), dtype, "small") * 0
        y[::3] = 1
        a, b = em.array(x), em.array(y)
        with np.errstate(all="ignore"):
            check(em.floor_divide(a, b), np.floor_divide(x, y), dtype)
            check(em.remainder(a, b), np.remainder(x, y), dtype)
        check(em.divide(a, b), reference(np.divide, x, y, out_dtype="float32"), "float32")


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64"])
def test_int_min_floor_divide_minus_one(dtype):
    info = np.iinfo(dtype)
    x = np.array([info.min, info.min, info.max, -7, 7], dtype)
    y = np.array([-1, 1, -1, -1, -2], dtype)
    with np.errstate(all="ignore"):
        check(em.floor_divide(em.array(x), em.array(y)), np.floor_divide(x, y), dtype)
        check(em.remainder(em.array(x), em.array(y)), np.remainder(x, y), dtype)
    q, r = em.divmod(em.array(x), em.array(y))
    with np.errstate(all="ignore"):
        check(q, np.floor_divide(x, y), dtype)
        check(r, np.remainder(x, y), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_binary_special_values(dtype):
    vals = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.0], np_dtype(dtype))
    x = np.repeat(vals, len(vals))
    y = np.tile(vals, len(vals))
    a, b = em.array(x), em.array(y)
    for name in ["add", "subtract", "multiply", "divide", "maximum", "minimum", "equal",
                 "not_equal", "less", "less_equal", "greater", "greater_equal", "arctan2",
                 "logaddexp", "power", "logical_and", "logical_or", "remainder"]:
        out_dtype = binary_out_dtype(name, dtype, dtype)
        with np.errstate(all="ignore"):
            expected = BINARY[name][0](x, y).astype(np_dtype(out_dtype))
        try:
            check(getattr(em, name)(a, b), expected, out_dtype)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None


def test_shift_by_width_or_more():
    x = np.array([5, -5, 1, -1], np.int32)
    for s in (31, 32, 40):
        sh = np.full(4, s, np.int32)
        got = np.array(em.right_shift(em.array(x), em.array(sh)))
        np.testing.assert_array_equal(got, np.where(x < 0, -1, 0) if s >= 32 else x >> s)
        got = np.array(em.left_shift(em.array(x), em.array(sh)))
        np.testing.assert_array_equal(got, np.zeros(4, np.int32) if s >= 32 else x << s)


def test_divmod_floats(rng):
    x = rng.uniform(-10, 10, 40).astype(np.float32)
    y = rng.uniform(0.5, 3, 40).astype(np.float32) * rng.choice([-1, 1], 40).astype(np.float32)
    q, r = em.divmod(em.array(x), em.array(y))
    check(q, np.floor(x / y), "float32")
    check(r, np.remainder(x, y), "float32")


def test_isclose(rng):
    x = rng.standard_normal(50).astype(np.float32)
    y = x + rng.standard_normal(50).astype(np.float32) * np.float32(1e-5) * \
        rng.choice([0, 1, 100], 50).astype(np.float32)
    x[:3] = [np.nan, np.inf, -np.inf]
    y[:3] = [np.nan, np.inf, np.inf]
    check(em.isclose(em.array(x), em.array(y)), np.isclose(x, y), "bool")
    check(em.isclose(em.array(x), em.array(y), equal_nan=True),
          np.isclose(x, y, equal_nan=True), "bool")
    check(em.isclose(em.array(x), em.array(y), rtol=1e-3, atol=1e-4),
          np.isclose(x, y, rtol=1e-3, atol=1e-4), "bool")


def test_allclose_and_array_equal(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    a = em.array(x)
    for shift in (1e-7, 1e-5, 1e-2):
        y = x + np.float32(shift)
        for rtol, atol in ((1e-5, 1e-8), (1e-3, 1e-6), (0.0, 2e-2)):
            assert em.allclose(a, em.array(y), rtol=rtol, atol=atol).item() is \
                bool(np.allclose(x, y, rtol=rtol, atol=atol)), (shift, rtol, atol)
    assert em.allclose(a, a * (1 + 1e-7)).item() is True
    assert em.allclose(a, a + 1e-2).item() is False
    assert em.array_equal(a, em.array(x)).item() is True
    assert em.array_equal(a, a + 1).item() is False
    assert em.array_equal(a, a.astype(em.float16).astype(em.float32)).item() == \
        bool(np.array_equal(x, x.astype(np.float16).astype(np.float32)))
    assert em.array_equal(a, em.array(x[:2])).item() is False
    n = em.array([np.nan, 1.0])
    assert em.array_equal(n, n).item() is False
    assert em.array_equal(n, n, equal_nan=True).item() is True


# ---- python scalars are weakly typed ----

WEAK_SCALARS = [
    ("int32", 1.0, "float32"), ("int32", 1, "int32"), ("uint8", 1, "uint8"),
    ("int8", 3, "int8"), ("uint64", 7, "uint64"), ("float16", 2.0, "float16"),
    ("float16", 2, "float16"), ("bfloat16", 2.5, "bfloat16"), ("float64", 0.5, "float64"),
    ("bool", 1, "int32"), ("bool", 1.5, "float32"), ("bool", True, "bool"),
    ("int16", True, "int16"), ("complex64", 2.0, "complex64"), ("int32", 2j, "complex64"),
    ("float32", 3, "float32"), ("uint16", 2.0, "float32"),
]


def weak_scalar_cases():
    for op in ["add", "multiply", "maximum", "subtract"]:
        for dtype, scalar, expected in WEAK_SCALARS:
            if op == "maximum" and expected == "complex64":
                continue  # maximum has no complex form
            if op == "subtract" and expected == "bool":
                continue  # numpy refuses bool - bool
            yield op, dtype, scalar, expected


@pytest.mark.parametrize("op,dtype,scalar,expected", list(weak_scalar_cases()))
def test_weak_scalars(rng, op, dtype, scalar, expected):
    """array op scalar and scalar op array take the array's dtype where the
    scalar's kind allows (mlx.core's weak scalars)."""
    a, x = make(rng, (5,), dtype, "small")
    fn = getattr(em, op)
    np_fn = BINARY[op][0]
    sc = np.asarray(scalar).astype(np_dtype(expected))
    compute = np.int64 if expected == "bool" else None
    check(fn(a, scalar), reference(np_fn, x, sc, out_dtype=expected, compute=compute), expected)
    check(fn(scalar, a), reference(np_fn, sc, x, out_dtype=expected, compute=compute), expected)


def test_weak_scalar_operators():
    a = em.array([1, 2, 3], dtype=em.int32)
    assert (a + 1.0).dtype == em.float32
    assert (1.0 + a).dtype == em.float32
    assert (a / 2).dtype == em.float32
    assert (a // 2).dtype == em.int32
    assert (em.array([1.0], dtype=em.float16) * 2.0).dtype == em.float16
    assert (2.0 * em.array([1.0], dtype=em.float16)).dtype == em.float16
    assert (em.array([1], dtype=em.uint8) + 1).dtype == em.uint8
    assert (em.array([1], dtype=em.int32) / em.array([2], dtype=em.int32)).dtype == em.float32
    np.testing.assert_array_equal(np.array(em.array([200], dtype=em.uint8) + 100), [44])


# ---- layouts, broadcasting and large inputs ----

LAYOUT_DTYPES = ["float32", "int32", "float16", "uint8", "float64", "bfloat16"]
LAYOUTS = ["transposed", "reversed", "step2", "broadcast", "offset", "transposed_reversed"]


def make_layout(rng, shape, dtype, layout, domain="any"):
    """An ember view of `shape` built with `layout`, and its numpy values."""
    if layout == "transposed":
        a, x = make(rng, shape[::-1], dtype, domain)
        return em.transpose(a), x.T
    if layout == "reversed":
        a, x = make(rng, shape, dtype, domain)
        return a[::-1], x[::-1]
    if layout == "step2":
        a, x = make(rng, shape[:-1] + (2 * shape[-1],), dtype, domain)
        return a[..., ::-2], x[..., ::-2]
    if layout == "broadcast":
        a, x = make(rng, (1,) + shape[1:], dtype, domain)
        return em.broadcast_to(a, shape), np.broadcast_to(x, shape)
    if layout == "offset":
        a, x = make(rng, (shape[0] + 2,) + shape[1:], dtype, domain)
        return a[2:], x[2:]
    if layout == "transposed_reversed":
        a, x = make(rng, (shape[1], 2 * shape[0]), dtype, domain)
        return em.transpose(a)[::-2], x.T[::-2]
    raise AssertionError(layout)


# Operands read transposed (stride 1 on the axis before the last) run in
# tiles of 32 rows x 128 columns (native/kernels/elementwise.c, ew_tiles):
# shapes on and beside the tile edges, a batch axis in front, up to three
# operands of which one, two or all are transposed, dtypes that convert on
# load and store (float16 and bfloat16 compute in float32), and a copy of a
# transposed view.
TILE_SHAPES = [(32, 8), (33, 129), (95, 257), (3, 40, 130), (2, 64, 128)]


def _transposed(rng, shape, dtype, domain="any"):
    """A view of `shape` whose last two axes are swapped in memory."""
    a, x = make(rng, shape[:-2] + (shape[-1], shape[-2]), dtype, domain)
    return em.swapaxes(a, -1, -2), np.swapaxes(x, -1, -2)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "uint8", "float16",
                                   "bfloat16", "complex64", "bool"])
@pytest.mark.parametrize("shape", TILE_SHAPES, ids=repr)
def test_transposed_operands_run_in_tiles(rng, dtype, shape):
    a, x = _transposed(rng, shape, dtype)
    b, y = make(rng, shape, dtype)
    row, r = make(rng, shape[-1:], dtype)          # broadcast along the rows
    c, z = _transposed(rng, shape, dtype)
    name = "logical_or" if dtype == "bool" else "add"
    for args, vals in [((a, b), (x, y)), ((b, a), (y, x)), ((a, c), (x, z)),
                       ((a, row), (x, r)), ((row, a), (r, x))]:
        out_dtype = binary_out_dtype(name, dtype, dtype)
        check(getattr(em, name)(*args), binary_reference(name, *vals, out_dtype, dtype),
              out_dtype)
    mask, m = _transposed(rng, shape, "bool")
    check(em.where(mask, a, c), np.where(m, x, z), dtype)           # three operands
    check(em.where(m, b, a), np.where(m, y, x), dtype)
    if dtype != "complex64":                                        # converts on load
        check(a.astype(em.float32), x.astype(np.float32), "float32")
    np.testing.assert_array_equal(np.array(em.contiguous(a)), x)    # a copy


@pytest.mark.parametrize("dtype", LAYOUT_DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [(6, 7), (2000, 70)], ids=["small", "large"])
def test_layouts(rng, dtype, layout, shape):
    """Non-contiguous views on either side of unary and binary ops; the large
    shape (> 100k elements) runs on several threads."""
    a, x = make_layout(rng, shape, dtype, layout)
    out_shape = np.broadcast_shapes(x.shape, x[:, :1].shape)
    b, y = make_layout(rng, x.shape, dtype, LAYOUTS[(LAYOUTS.index(layout) + 1) % len(LAYOUTS)],
                       "nonzero")
    for name in ["add", "multiply", "maximum", "less", "divide", "remainder"]:
        out_dtype = binary_out_dtype(name, dtype, dtype)
        expected = binary_reference(name, x, y, out_dtype, dtype)
        check(getattr(em, name)(a, b), expected, out_dtype)
        check(getattr(em, name)(b, a), binary_reference(name, y, x, out_dtype, dtype), out_dtype)
    for name in ["abs", "exp", "negative", "sqrt", "floor", "isnan"]:
        out_dtype = unary_out_dtype(name, dtype)
        fn = UNARY[name][0]
        src, vals = (b, y) if name == "sqrt" else (a, x)
        if name == "sqrt":
            src, vals = em.abs(b), np.abs(y)
        if name == "exp" and dtype in INTS + ["uint8"]:
            src, vals = em.remainder(a, 8), np.remainder(x, 8)
        compute = np.float64 if name == "isnan" and is_float(dtype) else (
            np_dtype(dtype) if name == "isnan" else None)
        expected = reference(fn, vals, out_dtype=out_dtype, compute=compute)
        check(getattr(em, name)(src), expected, out_dtype)
    assert out_shape == x.shape


BROADCAST_SHAPES = [
    ((), (3, 4)), ((3, 4), ()), ((3, 1), (1, 4)), ((5,), (2, 3, 5)), ((2, 1, 5), (4, 1)),
    ((0,), (3, 0)), ((0, 3), (1, 3)), ((1,), (0,)), ((4, 1, 1), (1, 3, 1)), ((1, 1), (1, 1)),
    ((3, 70000), (70000,)), ((3, 1), (3, 70000)), ((400, 1), (1, 300)),
]


@pytest.mark.parametrize("sa,sb", BROADCAST_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "int16", "bfloat16"])
def test_broadcasting(rng, sa, sb, dtype):
    (a, x), (b, y) = make(rng, sa, dtype), make(rng, sb, dtype, "nonzero")
    for name in ["subtract", "multiply", "greater", "divide"]:
        out_dtype = binary_out_dtype(name, dtype, dtype)
        check(getattr(em, name)(a, b), binary_reference(name, x, y, out_dtype, dtype),
              out_dtype)
        check(getattr(em, name)(b, a), binary_reference(name, y, x, out_dtype, dtype),
              out_dtype)


@pytest.mark.parametrize("dtype", ["float32", "int64", "complex64", "float16"])
def test_zero_d_and_empty(rng, dtype):
    for shape in [(), (0,), (2, 0, 3)]:
        a, x = make(rng, shape, dtype)
        check(em.negative(a), reference(np.negative, x, out_dtype=dtype), dtype)
        check(em.exp(a), reference(np.exp, x, out_dtype=unary_out_dtype("exp", dtype)),
              unary_out_dtype("exp", dtype))
        check(em.add(a, a), reference(np.add, x, x, out_dtype=dtype), dtype)
        check(em.equal(a, 1), np.equal(x, 1), "bool")
    assert em.add(em.array(2.0), em.array(3.0)).shape == ()


def test_large_unary_float32(rng):
    """Over the threaded path: every float32 function on 300k elements."""
    x = rng.uniform(0.1, 0.9, 300_001).astype(np.float32)
    a = em.array(x)
    for name in ["exp", "log", "sin", "tanh", "sqrt", "arcsin", "sigmoid", "erf", "erfinv"]:
        check(getattr(em, name)(a), reference(UNARY[name][0], x, out_dtype="float32"),
              "float32")


def test_large_chain(rng):
    """A chain of ops over 250k float16 elements, with broadcast and transposed operands."""
    x = rng.uniform(-2, 2, (500, 500)).astype(np.float16)
    y = rng.uniform(-2, 2, (500,)).astype(np.float16)
    a, b = em.array(x), em.array(y)
    out = em.maximum(em.multiply(a.T, b), em.subtract(b, a)) + 1.0
    xs, ys = x.astype(np.float32), y.astype(np.float32)
    expected = np.maximum((xs.T * ys).astype(np.float16), (ys - xs).astype(np.float16))
    check(out, expected.astype(np.float32) + 1, "float16")


@pytest.mark.parametrize("dtype", ["int64", "uint64", "int32", "uint32", "int8"])
def test_full_range_integers(rng, dtype):
    """Integer arithmetic is exact over the whole range (no detour through
    floats) and wraps around as numpy's does."""
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, 1000, dtype=dtype, endpoint=True)
    y = rng.integers(info.min, info.max, 1000, dtype=dtype, endpoint=True)
    y[y == 0] = 1
    a, b = em.array(x), em.array(y)
    with np.errstate(all="ignore"):
        for name in ["add", "subtract", "multiply", "maximum", "minimum", "bitwise_and",
                     "bitwise_or", "bitwise_xor", "floor_divide", "remainder"]:
            check(getattr(em, name)(a, b), getattr(np, name)(x, y), dtype)
        for name in ["equal", "less", "greater_equal"]:
            check(getattr(em, name)(a, b), getattr(np, name)(x, y), "bool")
        check(em.negative(a), np.negative(x), dtype)
        check(em.abs(a), np.abs(x), dtype)
        check(em.bitwise_invert(a), np.invert(x), dtype)


def test_temporaries_and_buffer_reuse(rng):
    """Ops on dead intermediates (whose buffers the engine may reuse for the
    output), including views of them and dtype changes."""
    x = rng.uniform(0.5, 2, (300, 400)).astype(np.float32)
    y = rng.uniform(0.5, 2, (400,)).astype(np.float32)
    out = em.exp(em.negative(em.array(x).T[::-1] * 2.0))
    check(out, np.exp(-(x.T[::-1].astype(np.float64) * 2)), "float32")
    out = em.add(em.sqrt(em.array(x)), em.sqrt(em.array(x)).T.T) - em.array(y)
    check(out, 2 * np.sqrt(x.astype(np.float64)) - y, "float32")
    out = em.isnan(em.log(em.array(x) - 1.0))
    with np.errstate(invalid="ignore"):
        check(out, np.isnan(np.log(x - np.float32(1.0))), "bool")
    h = em.array(x).astype(em.float16) * 3
    check(em.exp(h), np.exp((x.astype(np.float16) * np.float16(3)).astype(np.float64)),
          "float16")
    i = em.array((x * 10).astype(np.int8)) + 1
    check(em.sqrt(i), np.sqrt((x * 10).astype(np.int8).astype(np.float64) + 1), "float32")
    c = em.array(x[:20, :20].astype(np.complex64)) * 1j
    check(em.abs(c + 1), np.abs(x[:20, :20] * 1j + 1), "float32")
