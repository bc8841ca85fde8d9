/* binary.c: elementwise functions of two arguments (and where), per class. */
#include <math.h>

#include "elementwise.h"
#include "ew_inline.h"

/* Every loop is compiled for several instruction sets and picked at load
 * time (EM_CLONES, elementwise.h). */
#define BINARY(NAME, IT, OT, EXPR)                                    \
  EM_CLONES                                                           \
  static void NAME(int64_t n, const void* const* in, void* out) {     \
    const IT* a = in[0];                                              \
    const IT* b = in[1];                                              \
    OT* o = out;                                                      \
    for (int64_t i = 0; i < n; i++) {                                 \
      IT x = a[i], y = b[i];                                          \
      o[i] = (EXPR);                                                  \
    }                                                                 \
  }                                                                   \
  EM_EW_EXPR(NAME, #IT, #OT, #EXPR)


#define ARITH(NAME, OP)                                                 \
  BINARY(NAME##_i64, int64_t, int64_t, (int64_t)((uint64_t)x OP (uint64_t)y)) \
  BINARY(NAME##_u64, uint64_t, uint64_t, x OP y)                        \
  BINARY(NAME##_f32, float, float, x OP y)                              \
  BINARY(NAME##_f64, double, double, x OP y)                            \
  BINARY(NAME##_c64, c64, c64, x OP y)
ARITH(add, +)
ARITH(sub, -)
ARITH(mul, *)
BINARY(div_f32, float, float, x / y)
BINARY(div_f64, double, double, x / y)
BINARY(div_c64, c64, c64, x / y)
BINARY(floordiv_i64_fn, int64_t, int64_t, floordiv_i64(x, y))
BINARY(floordiv_u64, uint64_t, uint64_t, y ? x / y : 0)
BINARY(floordiv_f32, float, float, floorf(x / y))
BINARY(floordiv_f64, double, double, floor(x / y))
BINARY(mod_i64_fn, int64_t, int64_t, mod_i64(x, y))
BINARY(mod_u64, uint64_t, uint64_t, y ? x % y : 0)
BINARY(mod_f32_fn, float, float, mod_f32(x, y))
BINARY(mod_f64_fn, double, double, mod_f64(x, y))
BINARY(pow_i64_fn, int64_t, int64_t, pow_i64(x, y))
BINARY(pow_u64_fn, uint64_t, uint64_t, pow_u64(x, y))
/* x ** 2 (a square in a loss, a variance) is a multiply, as numpy and JAX
 * compute it: a chunk whose exponents are all 2 skips the scalar libm call. */
#define POW_FLOAT(NAME, T, POW)                                       \
  EM_CLONES                                                           \
  static void NAME(int64_t n, const void* const* in, void* out) {     \
    const T* a = in[0];                                               \
    const T* b = in[1];                                               \
    T* o = out;                                                       \
    int all_two = 1;                                                  \
    for (int64_t i = 0; i < n; i++) all_two &= b[i] == 2;             \
    if (all_two) {                                                    \
      for (int64_t i = 0; i < n; i++) o[i] = a[i] * a[i];             \
      return;                                                         \
    }                                                                 \
    for (int64_t i = 0; i < n; i++) o[i] = POW(a[i], b[i]);           \
  }
POW_FLOAT(pow_f32, float, powf)
POW_FLOAT(pow_f64, double, pow)
BINARY(pow_c64, c64, c64, cpowf(x, y))
BINARY(max_i64, int64_t, int64_t, x > y ? x : y)
BINARY(max_u64, uint64_t, uint64_t, x > y ? x : y)
BINARY(max_f32_fn, float, float, max_f32(x, y))
BINARY(max_f64_fn, double, double, max_f64(x, y))
BINARY(min_i64, int64_t, int64_t, x < y ? x : y)
BINARY(min_u64, uint64_t, uint64_t, x < y ? x : y)
BINARY(min_f32_fn, float, float, min_f32(x, y))
BINARY(min_f64_fn, double, double, min_f64(x, y))
BINARY(atan2_f32, float, float, atan2f(x, y))
BINARY(atan2_f64, double, double, atan2(x, y))
BINARY(logaddexp_f32_fn, float, float, em_logaddexpf(x, y))
BINARY(logaddexp_f64_fn, double, double, logaddexp_f64(x, y))

#define COMPARE(NAME, OP)                               \
  BINARY(NAME##_i64, int64_t, uint8_t, x OP y)          \
  BINARY(NAME##_u64, uint64_t, uint8_t, x OP y)         \
  BINARY(NAME##_f32, float, uint8_t, x OP y)            \
  BINARY(NAME##_f64, double, uint8_t, x OP y)
COMPARE(eq, ==)
COMPARE(ne, !=)
COMPARE(lt, <)
COMPARE(le, <=)
COMPARE(gt, >)
COMPARE(ge, >=)
BINARY(eq_c64, c64, uint8_t, x == y)
BINARY(ne_c64, c64, uint8_t, x != y)

#define LOGICAL(NAME, OP)                                         \
  BINARY(NAME##_i64, int64_t, uint8_t, (x != 0) OP (y != 0))      \
  BINARY(NAME##_u64, uint64_t, uint8_t, (x != 0) OP (y != 0))     \
  BINARY(NAME##_f32, float, uint8_t, (x != 0) OP (y != 0))        \
  BINARY(NAME##_f64, double, uint8_t, (x != 0) OP (y != 0))       \
  BINARY(NAME##_c64, c64, uint8_t, (x != 0) OP (y != 0))
LOGICAL(land, &&)
LOGICAL(lor, ||)

#define BITWISE(NAME, OP)                                   \
  BINARY(NAME##_i64, int64_t, int64_t, x OP y)              \
  BINARY(NAME##_u64, uint64_t, uint64_t, x OP y)
BITWISE(band, &)
BITWISE(bor, |)
BITWISE(bxor, ^)
BINARY(shl_i64_fn, int64_t, int64_t, shl_i64(x, y))
BINARY(shr_i64_fn, int64_t, int64_t, shr_i64(x, y))
BINARY(shl_u64_fn, uint64_t, uint64_t, shl_u64(x, y))
BINARY(shr_u64_fn, uint64_t, uint64_t, shr_u64(x, y))

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
#define PICK_ALL(NAME) PICK(NAME##_i64, NAME##_u64, NAME##_f32, NAME##_f64, NAME##_c64)
#define PICK_REAL(NAME) PICK(NAME##_i64, NAME##_u64, NAME##_f32, NAME##_f64, NULL)
  switch (prim) {
    case EM_P_ADD: PICK_ALL(add)
    case EM_P_SUBTRACT: PICK_ALL(sub)
    case EM_P_MULTIPLY: PICK_ALL(mul)
    case EM_P_DIVIDE: PICK(NULL, NULL, div_f32, div_f64, div_c64)
    case EM_P_FLOOR_DIVIDE: PICK(floordiv_i64_fn, floordiv_u64, floordiv_f32, floordiv_f64, NULL)
    case EM_P_REMAINDER: PICK(mod_i64_fn, mod_u64, mod_f32_fn, mod_f64_fn, NULL)
    case EM_P_POWER: PICK(pow_i64_fn, pow_u64_fn, pow_f32, pow_f64, pow_c64)
    case EM_P_MAXIMUM: PICK(max_i64, max_u64, max_f32_fn, max_f64_fn, NULL)
    case EM_P_MINIMUM: PICK(min_i64, min_u64, min_f32_fn, min_f64_fn, NULL)
    case EM_P_ARCTAN2: PICK(NULL, NULL, atan2_f32, atan2_f64, NULL)
    case EM_P_LOGADDEXP: PICK(NULL, NULL, logaddexp_f32_fn, logaddexp_f64_fn, NULL)
    case EM_P_EQUAL: *out_cls = CL_BOOL; PICK_ALL(eq)
    case EM_P_NOT_EQUAL: *out_cls = CL_BOOL; PICK_ALL(ne)
    case EM_P_LESS: *out_cls = CL_BOOL; PICK_REAL(lt)
    case EM_P_LESS_EQUAL: *out_cls = CL_BOOL; PICK_REAL(le)
    case EM_P_GREATER: *out_cls = CL_BOOL; PICK_REAL(gt)
    case EM_P_GREATER_EQUAL: *out_cls = CL_BOOL; PICK_REAL(ge)
    case EM_P_LOGICAL_AND: *out_cls = CL_BOOL; PICK_ALL(land)
    case EM_P_LOGICAL_OR: *out_cls = CL_BOOL; PICK_ALL(lor)
    case EM_P_BITWISE_AND: PICK(band_i64, band_u64, NULL, NULL, NULL)
    case EM_P_BITWISE_OR: PICK(bor_i64, bor_u64, NULL, NULL, NULL)
    case EM_P_BITWISE_XOR: PICK(bxor_i64, bxor_u64, NULL, NULL, NULL)
    case EM_P_LEFT_SHIFT: PICK(shl_i64_fn, shl_u64_fn, NULL, NULL, NULL)
    case EM_P_RIGHT_SHIFT: PICK(shr_i64_fn, shr_u64_fn, NULL, NULL, NULL)
  }
#undef PICK
#undef PICK_ALL
#undef PICK_REAL
  return NULL;
}

em_ew_fn em_binary_loop(int prim, int cls, int* out_cls) { return select(prim, cls, out_cls); }

int em_kernel_binary(em_array* out) {
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
  int classes[2] = {cls, cls};
  em_elementwise(out, 2, out->inputs, classes, out_cls, fn);
  return EM_OK;
}

/* where(cond, x, y): cond as bool, x and y in the output's class. */
#define SELECT(NAME, T)                                               \
  EM_CLONES                                                           \
  static void NAME(int64_t n, const void* const* in, void* out) {     \
    const uint8_t* c = in[0];                                         \
    const T* x = in[1];                                               \
    const T* y = in[2];                                               \
    T* o = out;                                                       \
    for (int64_t i = 0; i < n; i++) o[i] = c[i] ? x[i] : y[i];        \
  }                                                                   \
  EM_EW_EXPR(NAME, #T, #T, "c ? x : y")
SELECT(select_i64, int64_t)
SELECT(select_u64, uint64_t)
SELECT(select_f32, float)
SELECT(select_f64, double)
SELECT(select_c64, c64)

em_ew_fn em_where_loop(int cls) {
  em_ew_fn fns[CL_COUNT] = {NULL, select_i64, select_u64, select_f32, select_f64, select_c64};
  return fns[cls];
}

int em_kernel_where(em_array* out) {
  int cls = em_class_of(out->dtype);
  em_ew_fn fns[CL_COUNT] = {NULL, select_i64, select_u64, select_f32, select_f64, select_c64};
  int status = em_alloc_output_donated(out);
  if (status != EM_OK) return status;
  int classes[3] = {CL_BOOL, cls, cls};
  em_elementwise(out, 3, out->inputs, classes, cls, fns[cls]);
  return EM_OK;
}
