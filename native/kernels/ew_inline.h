/* ew_inline.h: the scalar helpers that elementwise expressions call.
 *
 * unary.c and binary.c write each loop as one expression per element (their
 * UNARY and BINARY macros); the expressions call these helpers and vmath.h's
 * functions. compile()'s generated kernels (core/_codegen.py) include this
 * header and paste the same expressions into one loop per fused chain, so a
 * generated kernel computes what the interpreter computes, bit for bit.
 * Everything here is static inline and needs only the C library.
 */
#ifndef EMBER_EW_INLINE_H
#define EMBER_EW_INLINE_H

#include <complex.h>
#include <math.h>
#include <stdint.h>

#include "vmath.h"

#ifndef EMBER_CLASSES_H
typedef float _Complex c64;
#endif

/* Giles' single-precision inverse error function approximation: the start
 * of the float64 Newton iteration. */
static inline float erfinv_approx(float x) {
  float w = -logf((1.0f - x) * (1.0f + x)), p;
  if (w < 5.0f) {
    w -= 2.5f;
    p = 2.81022636e-08f;
    p = 3.43273939e-07f + p * w;
    p = -3.5233877e-06f + p * w;
    p = -4.39150654e-06f + p * w;
    p = 0.00021858087f + p * w;
    p = -0.00125372503f + p * w;
    p = -0.00417768164f + p * w;
    p = 0.246640727f + p * w;
    p = 1.50140941f + p * w;
  } else {
    w = sqrtf(w) - 3.0f;
    p = -0.000200214257f;
    p = 0.000100950558f + p * w;
    p = 0.00134934322f + p * w;
    p = -0.00367342844f + p * w;
    p = 0.00573950773f + p * w;
    p = -0.0076224613f + p * w;
    p = 0.00943887047f + p * w;
    p = 1.00167406f + p * w;
    p = 2.83297682f + p * w;
  }
  return p * x;
}

static inline double erfinv_f64(double y) {
  if (y <= -1.0 || y >= 1.0) return y == 1.0 ? INFINITY : (y == -1.0 ? -INFINITY : NAN);
  if (!(y == y)) return y;
  double x = erfinv_approx((float)y);
  /* Newton steps on erf(x) - y, with erf's derivative 2/sqrt(pi) exp(-x^2). */
  for (int i = 0; i < 3; i++) x -= (erf(x) - y) / (1.1283791670955126 * exp(-x * x));
  return x;
}

static inline double sigmoid1_f64(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}

static inline int64_t sign_i64(int64_t x) { return (x > 0) - (x < 0); }
static inline float sign_f32(float x) { return x > 0 ? 1.0f : (x < 0 ? -1.0f : x); }
static inline double sign_f64(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : x); }
static inline c64 sign_c64(c64 x) { float m = cabsf(x); return m == 0 ? 0 : x / m; }

/* Python's floor division and modulo: the remainder takes the divisor's sign.
 * Integer division by zero gives 0 instead of trapping. */
static inline int64_t floordiv_i64(int64_t x, int64_t y) {
  if (y == 0) return 0;
  if (y == -1) return (int64_t)(0 - (uint64_t)x);
  int64_t q = x / y;
  return (x % y != 0 && ((x < 0) != (y < 0))) ? q - 1 : q;
}
static inline int64_t mod_i64(int64_t x, int64_t y) {
  if (y == 0 || y == -1) return 0;
  int64_t r = x % y;
  return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
}
static inline float mod_f32(float x, float y) {
  float r = fmodf(x, y);
  return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
}
static inline double mod_f64(double x, double y) {
  double r = fmod(x, y);
  return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
}
static inline int64_t pow_i64(int64_t base, int64_t e) {
  if (e < 0) return base == 1 ? 1 : (base == -1 ? ((e & 1) ? -1 : 1) : 0);
  uint64_t result = 1, b = (uint64_t)base;
  while (e) {
    if (e & 1) result *= b;
    b *= b;
    e >>= 1;
  }
  return (int64_t)result;
}
static inline uint64_t pow_u64(uint64_t b, uint64_t e) {
  uint64_t result = 1;
  while (e) {
    if (e & 1) result *= b;
    b *= b;
    e >>= 1;
  }
  return result;
}
static inline float max_f32(float x, float y) { return (x > y || isnan(x)) ? x : y; }
static inline float min_f32(float x, float y) { return (x < y || isnan(x)) ? x : y; }
static inline double max_f64(double x, double y) { return (x > y || isnan(x)) ? x : y; }
static inline double min_f64(double x, double y) { return (x < y || isnan(x)) ? x : y; }
static inline double logaddexp_f64(double x, double y) {
  if (x == -INFINITY && y == -INFINITY) return x;
  if (isnan(x) || isnan(y)) return x + y; /* NaN propagates, as in numpy */
  double m = x > y ? x : y;
  if (isinf(m) && m > 0) return m;
  return m + log1p(exp(-fabs(x - y)));
}
static inline int64_t shl_i64(int64_t x, int64_t s) { return (s < 0 || s > 63) ? 0 : (int64_t)((uint64_t)x << s); }
static inline int64_t shr_i64(int64_t x, int64_t s) { return (s < 0 || s > 63) ? (x < 0 ? -1 : 0) : x >> s; }
static inline uint64_t shl_u64(uint64_t x, uint64_t s) { return s > 63 ? 0 : x << s; }
static inline uint64_t shr_u64(uint64_t x, uint64_t s) { return s > 63 ? 0 : x >> s; }

#endif
