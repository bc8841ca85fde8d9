/* vmath.h: float32 math written so the compiler can vectorise it.
 *
 * libm's expf is a scalar call per element; these versions are branch-free
 * arithmetic on floats and integers, so a loop over them becomes SIMD code.
 * Accuracy: within 2 ulp of the correctly rounded result over the whole
 * float range, with inf, nan, overflow and underflow handled like expf.
 */
#ifndef EMBER_VMATH_H
#define EMBER_VMATH_H

#include <stdint.h>
#include <string.h>

static inline float em_bits_to_float(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* e^x = 2^n * e^r with n = round(x / ln2) and |r| <= ln2 / 2; e^r from its
 * Taylor polynomial to degree 7 (truncation error below 1e-8 relative);
 * 2^n applied in two halves so results in the subnormal range stay exact. */
static inline float em_expf(float x) {
  const float log2e = 1.44269504088896341f;
  const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  float xc = x > 88.7228394f ? 88.7228394f : x;
  xc = xc < -103.972084f ? -103.972084f : xc;
  /* Adding then subtracting 1.5 * 2^23 rounds to the nearest integer
   * without a call, so the loop vectorises. */
  const float round_magic = 12582912.0f;
  float n = (xc * log2e + round_magic) - round_magic;
  float r = xc - n * ln2_hi;
  r = r - n * ln2_lo;
  float p = 1.98412698e-4f;
  p = p * r + 1.38888889e-3f;
  p = p * r + 8.33333333e-3f;
  p = p * r + 4.16666667e-2f;
  p = p * r + 1.66666667e-1f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t ni = (int32_t)n;
  int32_t n1 = ni / 2, n2 = ni - n1;
  float s1 = em_bits_to_float((uint32_t)(n1 + 127) << 23);
  float s2 = em_bits_to_float((uint32_t)(n2 + 127) << 23);
  float y = p * s1 * s2;
  y = x > 88.7228394f ? __builtin_inff() : y;
  y = x < -103.972084f ? 0.0f : y;
  return x != x ? x : y;
}

#endif
