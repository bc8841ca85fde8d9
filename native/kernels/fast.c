/* fast.c: fused kernels of ember.core.fast (mlx.core.fast's ops).
 *
 * rms_norm, layer_norm and rope read each row once: the row is loaded into a
 * small buffer of the compute type (float for float32, float16 and bfloat16,
 * double for float64), normalised or rotated there while it sits in L1, and
 * stored. Attention runs per (batch, head, block of queries): one gemm gives
 * the block's scores against every key, the mask and a stable softmax are
 * applied row by row in the score buffer, and a second gemm multiplies by the
 * values; the (L, L) score matrix of a head never exists whole. Rows and
 * blocks are spread over the pool with em_parallel_for; each block's gemms
 * run single-threaded on its worker (OpenBLAS's threading is off: one thread
 * budget, native/threads.c).
 */
#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "classes.h"
#include "vmath.h"

/* ---- operands ---- */

/* The compute class of a float dtype: CL_F64 for float64, else CL_F32. */
static int compute_class(int dtype) { return dtype == EM_FLOAT64 ? CL_F64 : CL_F32; }

/* Releases what a kernel took, fails the output on error. */
static int finish(em_array* out, int status, em_array** temps, int n) {
  for (int i = 0; i < n; i++)
    if (temps[i]) em_release(temps[i]);
  if (status != EM_OK && out->buf) {
    em_buffer_release(out->buf);
    out->buf = NULL;
  }
  return status;
}

/* Workers that cannot get their scratch memory raise this flag. */
static int failed_status(atomic_int* failed, const char* op) {
  if (!atomic_load(failed)) return EM_OK;
  em_fail(EM_MEMORY_ERROR, "[%s] out of memory for scratch buffers", op);
  return EM_MEMORY_ERROR;
}

/* ---- rms_norm and layer_norm ---- */

typedef struct {
  const char* x;
  char* out;
  int dtype, cls;
  int64_t d;
  const void* w;    /* d entries of the compute type */
  const void* b;    /* d entries, or NULL for rms_norm */
  double eps;
  atomic_int failed;
} norm_job;

/* Sums of a row and of its squared deviations from c, in eight lanes so that
 * the loops vectorise without -ffast-math. */
#define LANE_SUMS(NAME, T)                                                         \
  static inline __attribute__((always_inline)) T NAME(const T* x, int64_t d, T c, int sq) { \
    T lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                          \
    int64_t i = 0;                                                                 \
    if (sq)                                                                        \
      for (; i + 8 <= d; i += 8)                                                   \
        for (int u = 0; u < 8; u++) lane[u] += (x[i + u] - c) * (x[i + u] - c);   \
    else                                                                           \
      for (; i + 8 <= d; i += 8)                                                   \
        for (int u = 0; u < 8; u++) lane[u] += x[i + u];                           \
    for (; i < d; i++) lane[0] += sq ? (x[i] - c) * (x[i] - c) : x[i];             \
    T sum = 0;                                                                     \
    for (int u = 0; u < 8; u++) sum += lane[u];                                    \
    return sum;                                                                    \
  }

LANE_SUMS(lane_sums_f32, float)
LANE_SUMS(lane_sums_f64, double)

/* Layer norm's two passes over the cached row (the mean, then the centred
 * squares) are numerically careful; rms_norm needs one. */
#define NORM_ROWS(NAME, T, SQRT, SUMS, CLONES)                                     \
  CLONES static void NAME(void* ctx, int64_t lo, int64_t hi) {                     \
    const norm_job* j = ctx;                                                       \
    int64_t d = j->d;                                                              \
    int esize = em_dtype_size(j->dtype);                                           \
    const T* w = j->w;                                                             \
    const T* b = j->b;                                                             \
    T* row = malloc(sizeof(T) * (size_t)d);                                        \
    if (!row) {                                                                    \
      atomic_store(&((norm_job*)ctx)->failed, 1);                                  \
      return;                                                                      \
    }                                                                              \
    /* Rows of the compute type are read and written in place; half types go \
     * through the row buffer. */                                                  \
    int direct = j->dtype == em_class_dtype(j->cls);                               \
    for (int64_t r = lo; r < hi; r++) {                                            \
      const T* src = direct ? (const T*)(j->x + r * d * esize) : row;              \
      T* dst = direct ? (T*)(j->out + r * d * esize) : row;                        \
      if (!direct) em_load(row, j->cls, j->x + r * d * esize, j->dtype, 1, d);     \
      if (b) {                                                                     \
        T mean = SUMS(src, d, 0, 0) / (T)d;                                        \
        T inv = (T)1 / SQRT(SUMS(src, d, mean, 1) / (T)d + (T)j->eps);             \
        for (int64_t i = 0; i < d; i++) dst[i] = (src[i] - mean) * inv * w[i] + b[i]; \
      } else {                                                                     \
        T inv = (T)1 / SQRT(SUMS(src, d, 0, 1) / (T)d + (T)j->eps);                \
        for (int64_t i = 0; i < d; i++) dst[i] = src[i] * inv * w[i];              \
      }                                                                            \
      if (!direct) em_store(j->out + r * d * esize, j->dtype, 1, row, j->cls, d);  \
    }                                                                              \
    free(row);                                                                     \
  }

NORM_ROWS(norm_rows_f32, float, sqrtf, lane_sums_f32,
          __attribute__((target_clones("avx512f", "avx2", "default"))))
NORM_ROWS(norm_rows_f64, double, sqrt, lane_sums_f64, )

/* RMS_NORM (x, w) and LAYER_NORM (x, w, b) over the last axis; w and b have
 * the last axis's length and out's dtype (the shape rule cast them). */
int em_kernel_norm(em_array* out) {
  int layer = out->prim == EM_P_LAYER_NORM;
  em_array* temps[3] = {NULL, NULL, NULL};
  int status = em_alloc_output(out);
  if (status != EM_OK || out->size == 0) return status;
  norm_job j;
  j.dtype = out->dtype;
  j.cls = compute_class(out->dtype);
  j.d = out->shape[out->ndim - 1];
  j.eps = out->fp[0];
  int cdtype = em_class_dtype(j.cls);
  temps[0] = em_row_major_as(out->inputs[0], out->dtype);
  temps[1] = em_row_major_as(out->inputs[1], cdtype);
  if (layer) temps[2] = em_row_major_as(out->inputs[2], cdtype);
  if (!temps[0] || !temps[1] || (layer && !temps[2]))
    return finish(out, EM_MEMORY_ERROR, temps, 3);
  j.x = em_data(temps[0]);
  j.out = out->buf->data;
  j.w = em_data(temps[1]);
  j.b = layer ? em_data(temps[2]) : NULL;
  atomic_init(&j.failed, 0);
  em_parallel_for(out->size / j.d, 1 + 16384 / (j.d + 1),
                  j.cls == CL_F64 ? norm_rows_f64 : norm_rows_f32, &j);
  return finish(out, failed_status(&j.failed, layer ? "layer_norm" : "rms_norm"), temps, 3);
}

/* ---- rope ---- */

typedef struct {
  const char* x;
  char* out;
  int dtype, cls;
  int64_t len, d, half, dims; /* sequence length, row length, dims / 2, dims */
  int traditional;
  const void* cos_sin;        /* len x half cosines, then len x half sines */
  atomic_int failed;
} rope_job;

#define ROPE_ROWS(NAME, T)                                                        \
  static void NAME(void* ctx, int64_t lo, int64_t hi) {                           \
    const rope_job* j = ctx;                                                      \
    int esize = em_dtype_size(j->dtype);                                          \
    int64_t d = j->d, half = j->half;                                             \
    const T* cs = j->cos_sin;                                                     \
    T* row = malloc(sizeof(T) * (size_t)d);                                       \
    if (!row) {                                                                   \
      atomic_store(&((rope_job*)ctx)->failed, 1);                                 \
      return;                                                                     \
    }                                                                             \
    for (int64_t r = lo; r < hi; r++) {                                           \
      em_load(row, j->cls, j->x + r * d * esize, j->dtype, 1, d);                 \
      const T* c = cs + (r % j->len) * half;                                      \
      const T* s = c + j->len * half;                                             \
      /* Pairs are (2i, 2i+1) in the traditional layout, (i, i + dims/2) else. */ \
      int64_t step = j->traditional ? 2 : 1, other = j->traditional ? 1 : half;   \
      for (int64_t i = 0; i < half; i++) {                                        \
        T x1 = row[i * step], x2 = row[i * step + other];                         \
        row[i * step] = x1 * c[i] - x2 * s[i];                                    \
        row[i * step + other] = x1 * s[i] + x2 * c[i];                            \
      }                                                                           \
      em_store(j->out + r * d * esize, j->dtype, 1, row, j->cls, d);              \
    }                                                                             \
    free(row);                                                                    \
  }

ROPE_ROWS(rope_rows_f32, float)
ROPE_ROWS(rope_rows_f64, double)

/* ROPE (x (..., L, D), inv_freqs (dims/2)) ip: dims, traditional, offset;
 * fp: scale. Position p of the sequence turns pair i by
 * (p + offset) * scale * inv_freqs[i]; features from dims on are copied. */
int em_kernel_rope(em_array* out) {
  em_array* temps[2] = {NULL, NULL};
  int status = em_alloc_output(out);
  if (status != EM_OK || out->size == 0) return status;
  rope_job j;
  j.dtype = out->dtype;
  j.cls = compute_class(out->dtype);
  j.d = out->shape[out->ndim - 1];
  j.len = out->shape[out->ndim - 2];
  j.dims = out->ip[0];
  j.half = j.dims / 2;
  j.traditional = (int)out->ip[1];
  double offset = (double)out->ip[2], scale = out->fp[0];
  temps[0] = em_row_major_as(out->inputs[0], out->dtype);
  temps[1] = em_row_major_as(out->inputs[1], EM_FLOAT64);
  int csize = em_class_size(j.cls);
  void* table = malloc((size_t)(2 * j.len * j.half + 1) * (size_t)csize);
  if (!temps[0] || !temps[1] || !table) {
    free(table);
    return finish(out, EM_MEMORY_ERROR, temps, 2);
  }
  /* The angles are formed in double and rounded once to the compute type. */
  const double* inv_freqs = (const double*)em_data(temps[1]);
  for (int64_t p = 0; p < j.len; p++)
    for (int64_t i = 0; i < j.half; i++) {
      double theta = (p + offset) * scale * inv_freqs[i];
      int64_t at = p * j.half + i, st = at + j.len * j.half;
      if (j.cls == CL_F64) {
        ((double*)table)[at] = cos(theta);
        ((double*)table)[st] = sin(theta);
      } else {
        ((float*)table)[at] = (float)cos(theta);
        ((float*)table)[st] = (float)sin(theta);
      }
    }
  j.cos_sin = table;
  j.x = em_data(temps[0]);
  j.out = out->buf->data;
  atomic_init(&j.failed, 0);
  em_parallel_for(out->size / j.d, 1 + 16384 / (j.d + 1),
                  j.cls == CL_F64 ? rope_rows_f64 : rope_rows_f32, &j);
  free(table);
  return finish(out, failed_status(&j.failed, "rope"), temps, 2);
}

/* ---- scaled dot-product attention ---- */

/* Queries per block. Each block's gemms repack every key and value, so
 * taller blocks amortise that (measured on a 2-core Zen 5 at 512 tokens: 64
 * rows took 1.3x the time of 256), while the block's scores should stay in
 * L2 (SCORE_BYTES, a quarter of a 2 MiB L2 core's share) and every thread
 * should get a few blocks. Causal blocks stay short: a block computes its
 * full rectangle up to its last query's diagonal, so tall ones waste half
 * their square (64 measured fastest there). */
#define QBLOCK_MAX 256
#define QBLOCK_MIN 16
#define QBLOCK_CAUSAL 64
#define SCORE_BYTES (512 * 1024)

static int64_t query_block(int64_t heads, int64_t lq, int64_t lk, int64_t cs, int causal) {
  int64_t rows = causal ? QBLOCK_CAUSAL : QBLOCK_MAX;
  while (rows > QBLOCK_MIN && rows * (lk > 1 ? lk : 1) * cs > SCORE_BYTES) rows /= 2;
  while (rows > QBLOCK_MIN
         && heads * ((lq + rows - 1) / rows) < 4 * (int64_t)em_num_threads())
    rows /= 2;
  return rows;
}

typedef struct {
  const char *q, *k, *v;       /* row-major, compute dtype */
  const em_array* mask;        /* (B, Hq, Lq, Lk) with any strides, or NULL */
  const void* sinks;           /* Hq logits of the compute type, or NULL */
  char* out;                   /* out's buffer (out's dtype) */
  int dtype, cls, causal;
  int64_t hq, hkv, lq, lk, d, dv, qblock, blocks;
  double scale;
  atomic_int failed;
} sdpa_job;

static void gemm_rows(int cls, CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k, double alpha,
                      const void* a, int64_t lda, const void* b, int64_t ldb, void* c, int64_t ldc) {
  if (cls == CL_F64)
    scipy_cblas_dgemm(CblasRowMajor, CblasNoTrans, tb, (int)m, (int)n, (int)k, alpha, a, (int)lda,
                      b, (int)ldb, 0.0, c, (int)ldc);
  else
    em_sgemm(0, tb == CblasTrans, m, n, k, (float)alpha, a, lda, b, ldb, c, ldc);
}

/* The softmax pieces over a row of n scores: the maximum, and exp(s - shift)
 * in place returning its sum. Eight lanes of max and sum, exp in a loop of
 * its own, and clones per instruction set: without -ffast-math the compiler
 * vectorises only what is written this way. */
#define ROW_MAX(NAME, T, CLONES)                                                   \
  CLONES static T NAME(const T* s, int64_t n) {                                    \
    T lane[8];                                                                     \
    for (int u = 0; u < 8; u++) lane[u] = (T)-INFINITY;                            \
    int64_t t = 0;                                                                 \
    for (; t + 8 <= n; t += 8)                                                     \
      for (int u = 0; u < 8; u++) lane[u] = s[t + u] > lane[u] ? s[t + u] : lane[u]; \
    for (; t < n; t++) lane[0] = s[t] > lane[0] ? s[t] : lane[0];                  \
    T mx = lane[0];                                                                \
    for (int u = 1; u < 8; u++) mx = lane[u] > mx ? lane[u] : mx;                  \
    return mx;                                                                     \
  }

#define EXP_SUM(NAME, T, EXP, CLONES)                                              \
  CLONES static T NAME(T* s, int64_t n, T shift) {                                 \
    for (int64_t t = 0; t < n; t++) s[t] = EXP(s[t] - shift);                      \
    T lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                          \
    int64_t t = 0;                                                                 \
    for (; t + 8 <= n; t += 8)                                                     \
      for (int u = 0; u < 8; u++) lane[u] += s[t + u];                             \
    for (; t < n; t++) lane[0] += s[t];                                            \
    T sum = 0;                                                                     \
    for (int u = 0; u < 8; u++) sum += lane[u];                                    \
    return sum;                                                                    \
  }

#define CLONES __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
ROW_MAX(row_max_f32, float, CLONES)
EXP_SUM(exp_sum_f32, float, em_expf, CLONES)
ROW_MAX(row_max_f64, double, )
EXP_SUM(exp_sum_f64, double, exp, )

/* e^x for attention's shifted scores, x <= 0 (or -inf, or nan): em_expf's
 * reduction and degree-7 polynomial, written with fmaf so that the clones
 * for FMA hardware get one instruction per step (ISO C mode contracts
 * nothing by itself), and without em_expf's overflow branch, which x <= 0
 * never takes. Below -103.97 (masked keys' -inf) the result is exactly 0. */
static inline __attribute__((always_inline)) float exp_nonpositive(float x) {
  const float log2e = 1.44269504088896341f, round_magic = 12582912.0f;
  float xc = x < -103.972084f ? -103.972084f : x;
  float n = fmaf(xc, log2e, round_magic) - round_magic;
  float r = fmaf(n, -0.693359375f, xc);
  r = fmaf(n, 2.12194440e-4f, r);
  float p = fmaf(1.98412698e-4f, r, 1.38888889e-3f);
  p = fmaf(p, r, 8.33333333e-3f);
  p = fmaf(p, r, 4.16666667e-2f);
  p = fmaf(p, r, 1.66666667e-1f);
  p = fmaf(p, r, 0.5f);
  p = fmaf(p, r, 1.0f);
  p = fmaf(p, r, 1.0f);
  int32_t ni = (int32_t)n, n1 = ni / 2, n2 = ni - n1;
  float y = p * em_bits_to_float((uint32_t)(n1 + 127) << 23)
              * em_bits_to_float((uint32_t)(n2 + 127) << 23);
  y = em_select(x < -103.972084f, 0.0f, y);
  return em_select(x != x, x, y);
}

/* The weights exp(s - shift) in place and their sum, in one pass of sixteen
 * lanes (one AVX-512 register). Haswell's clone rather than plain AVX2:
 * it has FMA, where the "avx2" target would call libm's fmaf. */
__attribute__((target_clones("avx512f", "arch=haswell", "default")))
static float exp_sum_scores_f32(float* s, int64_t n, float shift) {
  float lane[16] = {0};
  int64_t t = 0;
  for (; t + 16 <= n; t += 16)
    for (int u = 0; u < 16; u++) {
      float e = exp_nonpositive(s[t + u] - shift);
      s[t + u] = e;
      lane[u] += e;
    }
  float sum = 0;
  for (; t < n; t++) {
    s[t] = exp_nonpositive(s[t] - shift);
    sum += s[t];
  }
  for (int u = 0; u < 16; u++) sum += lane[u];
  return sum;
}
#undef CLONES

/* Masks row `i` of a score block (n keys), then turns it into softmax weights
 * (unnormalised; returns their sum). Masked keys weigh exactly 0; a row with
 * every key masked sums to 0 and its output is 0, as torch's is. A head's
 * sink joins the maximum and the sum as one more (valueless) score. */
#define SOFTMAX_ROW(NAME, T, ROW_MAX_FN, EXP_SUM_FN, EXP)                            \
  static T NAME(const sdpa_job* j, T* s, T* m, int64_t n, int64_t bh, int64_t i) {   \
    if (j->mask) {                                                                   \
      const em_array* mk = j->mask;                                                  \
      int64_t b = bh / j->hq, h = bh % j->hq;                                        \
      int64_t at = mk->offset + b * mk->strides[0] + h * mk->strides[1]              \
                 + i * mk->strides[2];                                               \
      em_load(m, j->cls, (const char*)mk->buf->data + at * em_dtype_size(mk->dtype), \
              mk->dtype, mk->strides[3], n);                                         \
      if (mk->dtype == EM_BOOL)                                                      \
        for (int64_t t = 0; t < n; t++) s[t] = m[t] != 0 ? s[t] : (T)-INFINITY;     \
      else                                                                           \
        for (int64_t t = 0; t < n; t++) s[t] += m[t];                                \
    }                                                                                \
    T mx = ROW_MAX_FN(s, n);                                                         \
    if (!j->sinks) return EXP_SUM_FN(s, n, isinf(mx) ? 0 : mx);                      \
    T sink = ((const T*)j->sinks)[bh % j->hq];                                       \
    mx = sink > mx ? sink : mx;                                                      \
    T shift = isinf(mx) ? 0 : mx;                                                    \
    return EXP_SUM_FN(s, n, shift) + EXP(sink - shift);                              \
  }

SOFTMAX_ROW(softmax_row_f32, float, row_max_f32, exp_sum_scores_f32, em_expf)
SOFTMAX_ROW(softmax_row_f64, double, row_max_f64, exp_sum_f64, exp)

static void sdpa_blocks(void* ctx, int64_t lo, int64_t hi) {
  const sdpa_job* j = ctx;
  int f64 = j->cls == CL_F64;
  int64_t cs = f64 ? 8 : 4, esize = em_dtype_size(j->dtype);
  int64_t qb = j->qblock;
  char* s = malloc((size_t)(qb * j->lk + j->lk + qb * j->dv + 1) * (size_t)cs);
  double* inv = malloc(sizeof(double) * (size_t)qb); /* rows' 1 / sum of weights */
  if (!s || !inv) {
    free(s);
    free(inv);
    atomic_store(&((sdpa_job*)ctx)->failed, 1);
    return;
  }
  char* mrow = s + qb * j->lk * cs;
  char* o = mrow + j->lk * cs;
  int64_t group = j->hq / j->hkv;
  for (int64_t task = lo; task < hi; task++) {
    int64_t bh = task / j->blocks, q0 = (task % j->blocks) * j->qblock;
    int64_t rows = j->lq - q0 < j->qblock ? j->lq - q0 : j->qblock;
    int64_t bkv = (bh / j->hq) * j->hkv + (bh % j->hq) / group;
    /* Causal masks align the last query with the last key; keys past the
     * block's last query are masked for every row, so the gemms skip them. */
    int64_t shift = j->lk - j->lq, n = j->lk;
    if (j->causal) n = q0 + rows + shift < j->lk ? q0 + rows + shift : j->lk;
    if (n < 0) n = 0;
    const char* q = j->q + (bh * j->lq + q0) * j->d * cs;
    const char* k = j->k + bkv * j->lk * j->d * cs;
    const char* v = j->v + bkv * j->lk * j->dv * cs;
    if (n > 0 && j->d > 0)
      gemm_rows(j->cls, CblasTrans, rows, n, j->d, j->scale, q, j->d, k, j->d, s, j->lk);
    else
      memset(s, 0, (size_t)(rows * j->lk * cs)); /* an empty head dimension scores 0 */
    for (int64_t r = 0; r < rows; r++) {
      int64_t i = q0 + r, keep = j->causal ? i + shift + 1 : n;
      if (keep > n) keep = n;
      if (keep < 0) keep = 0;
      double sum;
      if (f64) {
        double* row = (double*)s + r * j->lk;
        for (int64_t t = keep; t < n; t++) row[t] = -INFINITY;
        sum = softmax_row_f64(j, row, (double*)mrow, n, bh, i);
      } else {
        float* row = (float*)s + r * j->lk;
        for (int64_t t = keep; t < n; t++) row[t] = -INFINITY;
        sum = softmax_row_f32(j, row, (float*)mrow, n, bh, i);
      }
      inv[r] = sum != 0 ? 1.0 / sum : 0.0;
    }
    /* float32 and float64 outputs take the product in place. */
    char* dst = j->out + (bh * j->lq + q0) * j->dv * esize;
    char* prod = j->dtype == em_class_dtype(j->cls) ? dst : o;
    if (n > 0 && j->dv > 0)
      gemm_rows(j->cls, CblasNoTrans, rows, j->dv, n, 1.0, s, j->lk, v, j->dv, prod, j->dv);
    else
      memset(prod, 0, (size_t)(rows * j->dv * cs)); /* no key survives the mask */
    for (int64_t r = 0; r < rows; r++) {
      if (f64) {
        double* row = (double*)prod + r * j->dv;
        for (int64_t t = 0; t < j->dv; t++) row[t] *= inv[r];
      } else {
        float* row = (float*)prod + r * j->dv, f = (float)inv[r];
        for (int64_t t = 0; t < j->dv; t++) row[t] *= f;
      }
    }
    if (prod == o) em_store(dst, j->dtype, 1, o, j->cls, rows * j->dv);
  }
  free(inv);
  free(s);
}

/* SDPA (q (B, Hq, Lq, D), k (B, Hkv, Lk, D), v (B, Hkv, Lk, Dv)[, mask
 * (B, Hq, Lq, Lk)][, sinks (Hq)]) ip: causal[, sinks]; fp: scale. Query head
 * h reads key/value head h / (Hq / Hkv). A bool mask keeps the keys where it
 * is true; any other mask is added to the scores. */
int em_kernel_sdpa(em_array* out) {
  em_array* temps[4] = {NULL, NULL, NULL, NULL};
  int status = em_alloc_output(out);
  if (status != EM_OK || out->size == 0) return status;
  em_array *q = out->inputs[0], *k = out->inputs[1], *v = out->inputs[2];
  sdpa_job j;
  j.dtype = out->dtype;
  j.cls = compute_class(out->dtype);
  int cdtype = em_class_dtype(j.cls);
  j.hq = q->shape[1];
  j.hkv = k->shape[1];
  j.lq = q->shape[2];
  j.lk = k->shape[2];
  j.d = q->shape[3];
  j.dv = v->shape[3];
  j.causal = (int)out->ip[0];
  j.scale = out->fp[0];
  int sinks = out->nip > 1 && out->ip[1] != 0;
  j.mask = out->ninputs - sinks > 3 ? out->inputs[3] : NULL;
  j.qblock = query_block(q->shape[0] * j.hq, j.lq, j.lk, j.cls == CL_F64 ? 8 : 4, j.causal);
  j.blocks = (j.lq + j.qblock - 1) / j.qblock;
  temps[0] = em_row_major_as(q, cdtype);
  temps[1] = em_row_major_as(k, cdtype);
  temps[2] = em_row_major_as(v, cdtype);
  if (sinks) temps[3] = em_row_major_as(out->inputs[out->ninputs - 1], cdtype);
  if (!temps[0] || !temps[1] || !temps[2] || (sinks && !temps[3]))
    return finish(out, EM_MEMORY_ERROR, temps, 4);
  j.sinks = sinks ? em_data(temps[3]) : NULL;
  j.q = em_data(temps[0]);
  j.k = em_data(temps[1]);
  j.v = em_data(temps[2]);
  j.out = out->buf->data;
  atomic_init(&j.failed, 0);
  em_parallel_for(q->shape[0] * j.hq * j.blocks, 1, sdpa_blocks, &j);
  return finish(out, failed_status(&j.failed, "scaled_dot_product_attention"), temps, 4);
}

/* ---- softmax and logsumexp over the last axis ---- */

typedef struct {
  const char* x;
  char* out;
  int dtype, cls, log;       /* log: LOGSUMEXP (one value per row) */
  int64_t d;
  atomic_int failed;
} softmax_job;

/* A row's maximum (0 when infinite, as core's compositions shift) and the
 * sum of exp(x - shift), with the weights left in `w`. */
#define SOFTMAX_ROWS(NAME, T, ROW_MAX_FN, EXP_SUM_FN, LOG)                         \
  static void NAME(void* ctx, int64_t lo, int64_t hi) {                            \
    const softmax_job* j = ctx;                                                    \
    int64_t d = j->d;                                                              \
    int esize = em_dtype_size(j->dtype);                                           \
    T* row = malloc(sizeof(T) * (size_t)(d + 1));                                  \
    if (!row) {                                                                    \
      atomic_store(&((softmax_job*)ctx)->failed, 1);                               \
      return;                                                                      \
    }                                                                              \
    int direct = !j->log && j->dtype == em_class_dtype(j->cls);                    \
    for (int64_t r = lo; r < hi; r++) {                                            \
      T* w = direct ? (T*)(j->out + r * d * esize) : row;                          \
      em_load(w, j->cls, j->x + r * d * esize, j->dtype, 1, d);                    \
      T mx = ROW_MAX_FN(w, d);                                                     \
      T shift = isinf(mx) ? 0 : mx;                                                \
      T sum = EXP_SUM_FN(w, d, shift);                                             \
      if (j->log) {                                                                \
        T v = LOG(sum) + shift;                                                    \
        em_store(j->out + r * esize, j->dtype, 1, &v, j->cls, 1);                  \
        continue;                                                                  \
      }                                                                            \
      for (int64_t i = 0; i < d; i++) w[i] = w[i] / sum;                           \
      if (!direct) em_store(j->out + r * d * esize, j->dtype, 1, row, j->cls, d);  \
    }                                                                              \
    free(row);                                                                     \
  }

SOFTMAX_ROWS(softmax_rows_f32, float, row_max_f32, exp_sum_f32, logf)
SOFTMAX_ROWS(softmax_rows_f64, double, row_max_f64, exp_sum_f64, log)

/* SOFTMAX (x) -> x's shape; LOGSUMEXP (x) -> x's shape with the last axis 1.
 * One pass per row held in L1: max, exp and sum, then divide or log. */
int em_kernel_softmax(em_array* out) {
  em_array* x = out->inputs[0];
  em_array* temps[1] = {NULL};
  int status = em_alloc_output(out);
  if (status != EM_OK || out->size == 0) return status;
  softmax_job j;
  j.dtype = out->dtype;
  j.cls = compute_class(out->dtype);
  j.log = out->prim == EM_P_LOGSUMEXP;
  j.d = x->shape[x->ndim - 1];
  temps[0] = em_row_major_as(x, out->dtype);
  if (!temps[0]) return finish(out, EM_MEMORY_ERROR, temps, 1);
  j.x = em_data(temps[0]);
  j.out = out->buf->data;
  atomic_init(&j.failed, 0);
  int64_t rows = 1;
  for (int i = 0; i < x->ndim - 1; i++) rows *= x->shape[i];
  em_parallel_for(rows, 1 + 16384 / (j.d + 1),
                  j.cls == CL_F64 ? softmax_rows_f64 : softmax_rows_f32, &j);
  return finish(out, failed_status(&j.failed, j.log ? "logsumexp" : "softmax"), temps, 1);
}
