/* fma.c: a * b + c with one rounding (fused multiply-add), per class.
 *
 * XLA fuses a multiply feeding an add into one fma instruction; ops that
 * must round like JAX (random.uniform's floats * (high - low) + low) use this
 * primitive to do the same.
 */
#include <math.h>

#include "elementwise.h"

#define FMA_LOOP(NAME, T, EXPR)                                              \
  static void NAME(int64_t n, const void* const* in, void* out) {           \
    const T* a = in[0];                                                      \
    const T* b = in[1];                                                      \
    const T* c = in[2];                                                      \
    T* o = out;                                                              \
    for (int64_t i = 0; i < n; i++) o[i] = (EXPR);                           \
  }

FMA_LOOP(fma_f32, float, fmaf(a[i], b[i], c[i]))
FMA_LOOP(fma_f64, double, fma(a[i], b[i], c[i]))
FMA_LOOP(fma_c64, c64, a[i] * b[i] + c[i])
/* Integers wrap like numpy's; the product is taken unsigned to keep it defined. */
FMA_LOOP(fma_i64, int64_t, (int64_t)((uint64_t)a[i] * (uint64_t)b[i] + (uint64_t)c[i]))
FMA_LOOP(fma_u64, uint64_t, a[i] * b[i] + c[i])

#if defined(__x86_64__) && defined(__GNUC__)
/* With FMA hardware fmaf is one instruction and the loop vectorises. */
__attribute__((target("avx2,fma"))) static void fma_f32_hw(int64_t n, const void* const* in,
                                                           void* out) {
  const float* a = in[0];
  const float* b = in[1];
  const float* c = in[2];
  float* o = out;
  for (int64_t i = 0; i < n; i++) o[i] = fmaf(a[i], b[i], c[i]);
}

static em_ew_fn fma_f32_best(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? fma_f32_hw : fma_f32;
}
#else
static em_ew_fn fma_f32_best(void) { return fma_f32; }
#endif

int em_kernel_fma(em_array* out) {
  int cls = em_class_of(out->dtype);
  em_ew_fn fn;
  switch (cls) {
    case CL_F32: fn = fma_f32_best(); break;
    case CL_F64: fn = fma_f64; break;
    case CL_C64: fn = fma_c64; break;
    case CL_U64: fn = fma_u64; break;
    default: fn = fma_i64;
  }
  int status = em_alloc_output_donated(out);
  if (status != EM_OK) return status;
  int classes[3] = {cls, cls, cls};
  em_elementwise(out, 3, out->inputs, classes, cls, fn);
  return EM_OK;
}
