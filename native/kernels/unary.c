/* unary.c: elementwise functions of one argument, per compute class. */
#include <math.h>

#include "elementwise.h"
#include "ew_inline.h"

/* One loop per (function, class) pair; a macro is how C spells that. */
/* Compiled for several instruction sets, picked at load time (EM_CLONES). */
#define UNARY(NAME, IT, OT, EXPR)                                     \
  EM_CLONES                                                           \
  static void NAME(int64_t n, const void* const* in, void* out) {     \
    const IT* a = in[0];                                              \
    OT* o = out;                                                      \
    for (int64_t i = 0; i < n; i++) {                                 \
      IT x = a[i];                                                    \
      o[i] = (EXPR);                                                  \
    }                                                                 \
  }                                                                   \
  EM_EW_EXPR(NAME, #IT, #OT, #EXPR)


UNARY(abs_i64, int64_t, int64_t, x < 0 ? (int64_t)(0 - (uint64_t)x) : x)
UNARY(abs_u64, uint64_t, uint64_t, x)
UNARY(abs_f32, float, float, fabsf(x))
UNARY(abs_f64, double, double, fabs(x))
UNARY(abs_c64, c64, float, cabsf(x))
UNARY(neg_i64, int64_t, int64_t, (int64_t)(0 - (uint64_t)x))
UNARY(neg_u64, uint64_t, uint64_t, 0 - x)
UNARY(neg_f32, float, float, -x)
UNARY(neg_f64, double, double, -x)
UNARY(neg_c64, c64, c64, -x)
UNARY(sign_i64_fn, int64_t, int64_t, sign_i64(x))
UNARY(sign_u64, uint64_t, uint64_t, x != 0)
UNARY(sign_f32_fn, float, float, sign_f32(x))
UNARY(sign_f64_fn, double, double, sign_f64(x))
UNARY(sign_c64_fn, c64, c64, sign_c64(x))

/* Float functions: float32, float64 and complex64 forms. */
#define FLOAT_FN(NAME, F32, F64, C64EXPR)   \
  UNARY(NAME##_f32, float, float, F32)      \
  UNARY(NAME##_f64, double, double, F64)    \
  UNARY(NAME##_c64, c64, c64, C64EXPR)

FLOAT_FN(sqrt, sqrtf(x), sqrt(x), csqrtf(x))
FLOAT_FN(rsqrt, 1.0f / sqrtf(x), 1.0 / sqrt(x), 1.0f / csqrtf(x))
UNARY(exp_f32, float, float, em_expf(x))
UNARY(exp_f64, double, double, exp(x))
UNARY(exp_c64, c64, c64, cexpf(x))
FLOAT_FN(expm1, expm1f(x), expm1(x), cexpf(x) - 1.0f)
/* float32 log and log1p are XLA's (vmath.h), as erf and erfinv below. */
FLOAT_FN(log, em_logf_xla(x), log(x), clogf(x))
FLOAT_FN(log1p, em_log1pf_xla(x), log1p(x), clogf(1.0f + x))
FLOAT_FN(log2, log2f(x), log2(x), clogf(x) / 0.6931471805599453f)
FLOAT_FN(log10, log10f(x), log10(x), clogf(x) / 2.302585092994046f)
FLOAT_FN(sin, sinf(x), sin(x), csinf(x))
FLOAT_FN(cos, cosf(x), cos(x), ccosf(x))
FLOAT_FN(tan, tanf(x), tan(x), ctanf(x))
FLOAT_FN(arcsin, asinf(x), asin(x), casinf(x))
FLOAT_FN(arccos, acosf(x), acos(x), cacosf(x))
FLOAT_FN(arctan, atanf(x), atan(x), catanf(x))
FLOAT_FN(sinh, sinhf(x), sinh(x), csinhf(x))
FLOAT_FN(cosh, coshf(x), cosh(x), ccoshf(x))
UNARY(tanh_f32, float, float, em_tanhf(x))
UNARY(tanh_f64, double, double, tanh(x))
UNARY(tanh_c64, c64, c64, ctanhf(x))
FLOAT_FN(arcsinh, asinhf(x), asinh(x), casinhf(x))
FLOAT_FN(arccosh, acoshf(x), acosh(x), cacoshf(x))
FLOAT_FN(arctanh, atanhf(x), atanh(x), catanhf(x))
UNARY(sigmoid_f32, float, float, em_sigmoidf(x))
UNARY(sigmoid_f64, double, double, sigmoid1_f64(x))
UNARY(sigmoid_c64, c64, c64, 1.0f / (1.0f + cexpf(-x)))
/* float32 erf and erfinv are XLA's (vmath.h): ember and JAX agree bit for bit. */
UNARY(erf_f32, float, float, em_erff_xla(x))
UNARY(erf_f64, double, double, erf(x))
UNARY(erfinv_f32_fn, float, float, em_erfinvf_xla(x))
UNARY(erfinv_f64_fn, double, double, erfinv_f64(x))
UNARY(floor_f32, float, float, floorf(x))
UNARY(floor_f64, double, double, floor(x))
UNARY(ceil_f32, float, float, ceilf(x))
UNARY(ceil_f64, double, double, ceil(x))
UNARY(round_f32, float, float, rintf(x))   /* half to even, as numpy */
UNARY(round_f64, double, double, rint(x))
UNARY(copy_i64, int64_t, int64_t, x)
UNARY(copy_u64, uint64_t, uint64_t, x)
UNARY(isnan_f32, float, uint8_t, isnan(x) != 0)
UNARY(isnan_f64, double, uint8_t, isnan(x) != 0)
UNARY(isnan_c64, c64, uint8_t, isnan(crealf(x)) || isnan(cimagf(x)))
UNARY(isinf_f32, float, uint8_t, isinf(x) != 0)
UNARY(isinf_f64, double, uint8_t, isinf(x) != 0)
UNARY(isinf_c64, c64, uint8_t, isinf(crealf(x)) || isinf(cimagf(x)))
UNARY(false_i64, int64_t, uint8_t, 0 * x)
UNARY(false_u64, uint64_t, uint8_t, 0 * x)
UNARY(not_i64, int64_t, uint8_t, x == 0)
UNARY(not_u64, uint64_t, uint8_t, x == 0)
UNARY(not_f32, float, uint8_t, x == 0)
UNARY(not_f64, double, uint8_t, x == 0)
UNARY(not_c64, c64, uint8_t, x == 0)
UNARY(invert_i64, int64_t, int64_t, ~x)
UNARY(invert_u64, uint64_t, uint64_t, ~x)
UNARY(real_c64, c64, float, crealf(x))
UNARY(imag_c64, c64, float, cimagf(x))
UNARY(conj_c64, c64, c64, conjf(x))

/* Picks the loop for a primitive and input class, and the class it writes. */
static em_ew_fn select(int prim, int cls, int* out_cls) {
  *out_cls = cls;
#define PICK(I64, U64, F32, F64, C64)                 \
  switch (cls) {                                      \
    case CL_I64: return I64;                          \
    case CL_U64: return U64;                          \
    case CL_F32: return F32;                          \
    case CL_F64: return F64;                          \
    case CL_C64: return C64;                          \
    default: return NULL;                             \
  }
#define PICK_FLOAT(NAME) PICK(NULL, NULL, NAME##_f32, NAME##_f64, NAME##_c64)
  switch (prim) {
    case EM_P_ABS:
      if (cls == CL_C64) *out_cls = CL_F32;
      PICK(abs_i64, abs_u64, abs_f32, abs_f64, abs_c64)
    case EM_P_NEGATIVE: PICK(neg_i64, neg_u64, neg_f32, neg_f64, neg_c64)
    case EM_P_SIGN: PICK(sign_i64_fn, sign_u64, sign_f32_fn, sign_f64_fn, sign_c64_fn)
    case EM_P_SQRT: PICK_FLOAT(sqrt)
    case EM_P_RSQRT: PICK_FLOAT(rsqrt)
    case EM_P_EXP: PICK_FLOAT(exp)
    case EM_P_EXPM1: PICK_FLOAT(expm1)
    case EM_P_LOG: PICK(NULL, NULL, log_f32, log_f64, log_c64)
    case EM_P_LOG1P: PICK(NULL, NULL, log1p_f32, log1p_f64, log1p_c64)
    case EM_P_LOG2: PICK_FLOAT(log2)
    case EM_P_LOG10: PICK_FLOAT(log10)
    case EM_P_SIN: PICK_FLOAT(sin)
    case EM_P_COS: PICK_FLOAT(cos)
    case EM_P_TAN: PICK_FLOAT(tan)
    case EM_P_ARCSIN: PICK_FLOAT(arcsin)
    case EM_P_ARCCOS: PICK_FLOAT(arccos)
    case EM_P_ARCTAN: PICK_FLOAT(arctan)
    case EM_P_SINH: PICK_FLOAT(sinh)
    case EM_P_COSH: PICK_FLOAT(cosh)
    case EM_P_TANH: PICK_FLOAT(tanh)
    case EM_P_ARCSINH: PICK_FLOAT(arcsinh)
    case EM_P_ARCCOSH: PICK_FLOAT(arccosh)
    case EM_P_ARCTANH: PICK_FLOAT(arctanh)
    case EM_P_SIGMOID: PICK_FLOAT(sigmoid)
    case EM_P_ERF: PICK(NULL, NULL, erf_f32, erf_f64, NULL)
    case EM_P_ERFINV: PICK(NULL, NULL, erfinv_f32_fn, erfinv_f64_fn, NULL)
    case EM_P_FLOOR: PICK(copy_i64, copy_u64, floor_f32, floor_f64, NULL)
    case EM_P_CEIL: PICK(copy_i64, copy_u64, ceil_f32, ceil_f64, NULL)
    case EM_P_ROUND: PICK(copy_i64, copy_u64, round_f32, round_f64, NULL)
    case EM_P_ISNAN:
      *out_cls = CL_BOOL;
      PICK(false_i64, false_u64, isnan_f32, isnan_f64, isnan_c64)
    case EM_P_ISINF:
      *out_cls = CL_BOOL;
      PICK(false_i64, false_u64, isinf_f32, isinf_f64, isinf_c64)
    case EM_P_LOGICAL_NOT:
      *out_cls = CL_BOOL;
      PICK(not_i64, not_u64, not_f32, not_f64, not_c64)
    case EM_P_BITWISE_INVERT: PICK(invert_i64, invert_u64, NULL, NULL, NULL)
    case EM_P_REAL: *out_cls = CL_F32; return cls == CL_C64 ? real_c64 : NULL;
    case EM_P_IMAG: *out_cls = CL_F32; return cls == CL_C64 ? imag_c64 : NULL;
    case EM_P_CONJUGATE: return cls == CL_C64 ? conj_c64 : NULL;
  }
#undef PICK
#undef PICK_FLOAT
  return NULL;
}

em_ew_fn em_unary_loop(int prim, int cls, int* out_cls) { return select(prim, cls, out_cls); }

int em_kernel_unary(em_array* out) {
  em_array* a = out->inputs[0];
  int cls = em_class_of(a->dtype), out_cls;
  em_ew_fn fn = select(out->prim, cls, &out_cls);
  if (!fn) {
    em_fail(EM_TYPE_ERROR, "[%s] not defined for dtype %s", em_prim_name(out->prim),
            em_dtype_name(a->dtype));
    return EM_TYPE_ERROR;
  }
  int status = em_alloc_output_donated(out);
  if (status != EM_OK) return status;
  em_elementwise(out, 1, &a, &cls, out_cls, fn);
  return EM_OK;
}
