/* vmath.h: float32 math written so the compiler can vectorise it.
 *
 * libm's expf is a scalar call per element; these versions are branch-free
 * arithmetic on floats and integers, so a loop over them becomes SIMD code.
 * Accuracy: within 2 ulp of the correctly rounded result over the whole
 * float range, with inf, nan, overflow and underflow handled like expf.
 */
#ifndef EMBER_VMATH_H
#define EMBER_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float em_bits_to_float(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* e^x = 2^n * e^r with n = round(x / ln2) and |r| <= ln2 / 2; e^r from its
 * Taylor polynomial to degree 7 (truncation error below 1e-8 relative) in
 * Horner form with fused multiply-adds; 2^n applied in two halves so that
 * results in the subnormal range are rounded once and overflow gives inf.
 * Written for SIMD (exp is compute-bound on a vector unit: every operation
 * counts): the clamps are max/min instructions, and x is clamped into
 * [-120, 89], where both halves of 2^n are normal floats and the products
 * still reach 0 and inf; nan is put back at the end.
 * fmaf is one instruction where the caller is compiled for FMA hardware
 * (target "avx512f" or "arch=x86-64-v3"), libm's elsewhere. */
static inline __attribute__((always_inline)) float em_expf(float x) {
  const float log2e = 1.44269504088896341f;
  const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  float xc = x > -120.0f ? x : -120.0f; /* a nan becomes -120 here */
  xc = xc < 89.0f ? xc : 89.0f;
  /* Adding then subtracting 1.5 * 2^23 rounds to the nearest integer
   * without a call, so the loop vectorises. */
  const float round_magic = 12582912.0f;
  float n = fmaf(xc, log2e, round_magic) - round_magic;
  float r = fmaf(n, -ln2_hi, xc);
  r = fmaf(n, -ln2_lo, r);
  float p = 1.98412698e-4f;
  p = fmaf(p, r, 1.38888889e-3f);
  p = fmaf(p, r, 8.33333333e-3f);
  p = fmaf(p, r, 4.16666667e-2f);
  p = fmaf(p, r, 1.66666667e-1f);
  p = fmaf(p, r, 0.5f);
  p = fmaf(p, r, 1.0f);
  p = fmaf(p, r, 1.0f);
  int32_t ni = (int32_t)n;
  int32_t n1 = ni >> 1, n2 = ni - n1;
  float s1 = em_bits_to_float((uint32_t)(n1 + 127) << 23);
  float s2 = em_bits_to_float((uint32_t)(n2 + 127) << 23);
  float y = p * s1 * s2;
  return x != x ? x : y;
}

static inline uint32_t em_float_to_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

/* The float32 log, log1p, erf and erfinv that XLA's CPU backend computes, so
 * that ember's ops and the samples built on them (random.normal, gumbel, ...)
 * equal JAX's.
 * Where XLA fuses a multiply and an add into one rounding, these call fmaf
 * at the same place; a caller compiled for FMA hardware gets one
 * instruction, any other gets libm's exactly rounded fmaf, same result.
 * They are always inlined so that they take the caller's target, and pick
 * between computed values with em_select so that loops over them vectorise. */

/* cond ? a : b through bit masks: a plain ?: between two computed floats
 * stays a branch (the compiler may not speculate float operations), which
 * keeps the loop from vectorising. */
static inline __attribute__((always_inline)) float em_select(int cond, float a, float b) {
  uint32_t mask = 0u - (uint32_t)cond;
  return em_bits_to_float((em_float_to_bits(a) & mask) | (em_float_to_bits(b) & ~mask));
}

/* log(x): x = 2^e * m with m in [sqrt(1/2), sqrt(2)), log(m) from Cephes'
 * degree 8 polynomial in m - 1 evaluated in three interleaved parts (the
 * order Eigen and XLA use), ln 2 split in two for exactness. Subnormal
 * inputs are scaled by 2^23 first (XLA flushes them to zero and returns
 * -inf; nothing in random produces them). */
static inline __attribute__((always_inline)) float em_logf_xla(float x) {
  const float min_normal = 1.17549435e-38f;
  int subnormal = x < min_normal;
  float xs = em_select(subnormal, x * 8388608.0f, x);
  float m = em_bits_to_float((em_float_to_bits(xs) & 0x807fffffu) | 0x3f000000u);
  float e = (float)((int32_t)(em_float_to_bits(xs) >> 23) - 126);
  e = e - em_select(subnormal, 23.0f, 0.0f);
  int below = m < 0.707106781186547524f;
  float r = em_select(below, (m + m) - 1.0f, m - 1.0f);
  e = em_select(below, e - 1.0f, e);
  float r2 = r * r, r3 = r2 * r;
  float y = fmaf(7.0376836292e-2f, r, -1.1514610310e-1f);
  float y1 = fmaf(-1.2420140846e-1f, r, 1.4249322787e-1f);
  float y2 = fmaf(2.0000714765e-1f, r, -2.4999993993e-1f);
  y = fmaf(y, r, 1.1676998740e-1f);
  y1 = fmaf(y1, r, -1.6668057665e-1f);
  y2 = fmaf(y2, r, 3.3333331174e-1f);
  y = fmaf(y, r3, y1);
  y = fmaf(y, r3, y2);
  y = fmaf(y, r3, e * -2.12194440e-4f);
  r = r - r2 * 0.5f;
  r = r + y;
  r = r + e * 0.693359375f;
  r = em_select(x == 0.0f, -__builtin_inff(), r);
  r = em_select(x == __builtin_inff(), x, r);
  r = em_select(x < 0.0f, __builtin_nanf(""), r);
  return em_select(x != x, x, r);
}

/* log1p(x): Cephes' rational approximation for |x| < sqrt(2) - 1, else
 * log(1 + x). */
static inline __attribute__((always_inline)) float em_log1pf_xla(float x) {
  float x2 = x * x;
  float num = 4.5270000862445199635215e-5f, den = 1.0f;
  num = fmaf(num, x, 4.9854102823193375972212e-1f);
  den = fmaf(den, x, 1.5062909083469192043167e1f);
  num = fmaf(num, x, 6.5787325942061044846969e0f);
  den = fmaf(den, x, 8.3047565967967209469434e1f);
  num = fmaf(num, x, 2.9911919328553073277375e1f);
  den = fmaf(den, x, 2.2176239823732856465394e2f);
  num = fmaf(num, x, 6.0949667980987787057556e1f);
  den = fmaf(den, x, 3.0909872225312059774938e2f);
  num = fmaf(num, x, 5.7112963590585538103336e1f);
  den = fmaf(den, x, 2.1642788614495947685003e2f);
  num = fmaf(num, x, 2.0039553499201281259648e1f);
  den = fmaf(den, x, 6.0118660497603843919306e1f);
  float small = x + fmaf(-0.5f, x2, (x * x2) * (num / den));
  float large = em_logf_xla(x + 1.0f);
  return em_select(fabsf(x) < 0.41421356237309504880f, small, large);
}

/* erfinv(x): Giles' single-precision approximation, w = -log(1 - x^2),
 * one polynomial for w < 5 and one in sqrt(w) beyond; +-inf at +-1. */
static inline __attribute__((always_inline)) float em_erfinvf_xla(float x) {
  float w = -em_log1pf_xla(x * -x);
  int central = w < 5.0f;
  float t = em_select(central, w - 2.5f, sqrtf(w) - 3.0f);
  float p = central ? 2.81022636e-08f : -0.000200214257f;
  p = fmaf(p, t, central ? 3.43273939e-07f : 0.000100950558f);
  p = fmaf(p, t, central ? -3.5233877e-06f : 0.00134934322f);
  p = fmaf(p, t, central ? -4.39150654e-06f : -0.00367342844f);
  p = fmaf(p, t, central ? 0.00021858087f : 0.00573950773f);
  p = fmaf(p, t, central ? -0.00125372503f : -0.0076224613f);
  p = fmaf(p, t, central ? -0.00417768164f : 0.00943887047f);
  p = fmaf(p, t, central ? 0.246640727f : 1.00167406f);
  p = fmaf(p, t, central ? 1.50140941f : 2.83297682f);
  return em_select(fabsf(x) == 1.0f, x * __builtin_inff(), p * x);
}

/* erf(x): a rational function, x p(x^2) / q(x^2) of degrees 9 and 12 (the
 * interpolant of Eigen's generic_fast_erf_float), +-1 beyond the point
 * where erf rounds to 1. */
static inline __attribute__((always_inline)) float em_erff_xla(float x) {
  float x2 = x * x;
  float p = fmaf(x2, 0.00022905065861350646f, 0.0034082910107109506f);
  p = fmaf(x2, p, 0.050955695062380861f);
  p = fmaf(x2, p, 0.18520832239976145f);
  p = fmaf(x2, p, 1.128379143519084f);
  p = x * p;
  float q = fmaf(x2, -1.1791602954361697e-7f, 0.000023547966471313185f);
  q = fmaf(x2, q, 0.0010179625278914885f);
  q = fmaf(x2, q, 0.014070470171167667f);
  q = fmaf(x2, q, 0.11098505178285362f);
  q = fmaf(x2, q, 0.49746925110067538f);
  q = fmaf(x2, q, 1.0f);
  return em_select(3.832506856900711f <= fabsf(x), copysignf(1.0f, x), p / q);
}

/* ---- float32 functions computed through float64 or em_expf ---- */

static inline double em_bits_to_double(uint64_t u) {
  double d;
  memcpy(&d, &u, 8);
  return d;
}
static inline uint64_t em_double_to_bits(double d) {
  uint64_t u;
  memcpy(&u, &d, 8);
  return u;
}

/* em_select for float64 values. */
static inline __attribute__((always_inline)) double em_select_f64(int cond, double a, double b) {
  uint64_t mask = 0u - (uint64_t)cond;
  return em_bits_to_double((em_double_to_bits(a) & mask) | (em_double_to_bits(b) & ~mask));
}

/* e^x in float64 for x in [-708, 708], relative error below 1e-12: enough
 * that a float32 result computed from it is rounded once, correctly in all
 * but rare ties (within 0.501 ulp). n = round(x / ln2) through the 1.5 * 2^52
 * trick, whose low mantissa bits then hold n (two's complement), so 2^n is
 * built with integer shifts and adds, vectorisable without AVX-512DQ; e^r
 * for |r| <= ln2 / 2 from its Taylor polynomial to degree 11. */
static inline __attribute__((always_inline)) double em_exp_f64_for_f32(double x) {
  const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
  double nm = fma(x, 1.4426950408889634, magic);
  double n = nm - magic;
  double r = fma(n, -0.6931471805599453, x);
  r = fma(n, -2.3190468138462996e-17, r);
  double p = 2.505210838544172e-08;
  p = fma(p, r, 2.755731922398589e-07);
  p = fma(p, r, 2.7557319223985893e-06);
  p = fma(p, r, 2.48015873015873e-05);
  p = fma(p, r, 1.984126984126984e-04);
  p = fma(p, r, 1.388888888888889e-03);
  p = fma(p, r, 8.333333333333333e-03);
  p = fma(p, r, 4.1666666666666664e-02);
  p = fma(p, r, 1.6666666666666666e-01);
  p = fma(p, r, 0.5);
  p = fma(p, r, 1.0);
  p = fma(p, r, 1.0);
  uint64_t scale = (em_double_to_bits(nm) + 1023u) << 52;
  return p * em_bits_to_double(scale);
}

/* tanh(x) = 1 - 2 / (e^2|x| + 1) with the sign of x, in float64 (the
 * cancellation near 0 costs at most 2^10 of float64's 2^-53, far below
 * float32's ulp), and the odd Taylor polynomial to x^7 below |x| = 2^-10;
 * |x| is clamped at 10, where tanh rounds to 1 in float32. Rounded once to
 * float32: within 0.501 ulp. */
static inline __attribute__((always_inline)) float em_tanhf(float x) {
  double a = fabs((double)x);
  double ac = a < 10.0 ? a : 10.0;
  double big = 1.0 - 2.0 / (em_exp_f64_for_f32(2.0 * ac) + 1.0);
  double a2 = a * a;
  double small = fma(a * a2, fma(a2, fma(a2, -17.0 / 315.0, 2.0 / 15.0), -1.0 / 3.0), a);
  float t = (float)em_select_f64(a < 0.0009765625, small, big);
  return em_select(x != x, x, copysignf(t, x));
}

/* sigmoid(x) = 1 / (1 + e^-x) in float64, x clamped into [-200, 200] (where
 * float32 results are 0 and 1 already): within 0.501 ulp, subnormal
 * results included. */
static inline __attribute__((always_inline)) float em_sigmoidf(float x) {
  double xd = (double)x;
  xd = em_select_f64(xd > -200.0, xd, -200.0); /* a nan becomes -200 here */
  xd = em_select_f64(xd < 200.0, xd, 200.0);
  float s = (float)(1.0 / (1.0 + em_exp_f64_for_f32(-xd)));
  return em_select(x != x, x, s);
}

/* logaddexp(x, y) = max + log1p(e), e = e^-|x - y| in (0, 1], as XLA
 * computes it. log1p(e) is log(u) for u = 1 + e, corrected for the rounding
 * of u by (e - (u - 1)) / u (exact to first order; for e below float32's
 * epsilon u is 1 and the correction is e itself): one log instead of the
 * log and the rational function that log1p evaluates over all of its
 * range. Equal arguments (infinities included) give x + ln 2, and a nan in
 * either argument gives nan (through x - y). */
static inline __attribute__((always_inline)) float em_logaddexpf(float x, float y) {
  float m = x > y ? x : y;
  float e = em_expf(-fabsf(x - y));
  float u = 1.0f + e;
  float log1p_e = em_logf_xla(u) + (e - (u - 1.0f)) / u;
  return em_select(x == y, x + 0.693147182f, m + log1p_e);
}

#endif
