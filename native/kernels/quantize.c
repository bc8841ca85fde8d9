/* quantize.c: affine quantization in mlx.core's packed layout.
 *
 * Layout. A float array w (..., K) is quantized in groups of g consecutive
 * elements of its last axis (g = 32, 64 or 128). Each group keeps a scale and
 * a bias in w's dtype and one b-bit code per element (b = 1, 2, 3, 4, 5, 6 or
 * 8), with w ~ scale * code + bias. The codes of a row form one little-endian
 * bit stream: code j occupies bits [j*b, (j+1)*b), lowest first, stored as
 * uint32 words, so a row of K codes takes K*b/32 words and every group fills
 * whole words (g*b/32 of them). This is mlx's layout for every b: its 3, 5
 * and 6-bit byte packs are the same stream.
 *
 * Quantize follows mlx's rounding, in float32 whatever w's dtype. Per group,
 * with lo and hi its least and greatest element, n = 2^b - 1, eps = 1e-7f:
 *   scale = max((hi - lo) / n, eps), negated unless |lo| > |hi|;
 *   edge = lo if |lo| > |hi| else hi;  q0 = rint(edge / scale);
 *   q0 != 0: scale = edge / q0, bias = edge (the edge is represented exactly);
 *   q0 == 0: bias = 0;
 *   code = clamp(rint((w - bias) / scale), 0, n) with the float32 scale.
 * One bit is the exception (as in mlx): scale = max(hi - lo, eps), bias = lo.
 * The stored scale and bias are then rounded to w's dtype. A constant group
 * gets codes 0 and bias equal to the constant (scale is tiny but nonzero).
 *
 * Dequantize computes scale * code rounded to the scales' dtype, adds the
 * bias and rounds to the scales' and biases' common dtype: mlx's two ops, so
 * the result equals mlx's bit for bit in every dtype.
 *
 * Quantized matmul multiplies x (..., M, K) by W^T (transpose) or W, where W
 * is the (N, K) or (K, N) float matrix the packed weight stands for, in
 * float32 arithmetic whatever the dtypes. W is never materialised whole:
 *  - transpose, M <= 2: out[m, n] = sum_g scale_g * <x_g, code_g> + bias_g *
 *    sum(x_g). Codes are decoded into registers as they are read (AVX2 + FMA
 *    where the CPU has them, a portable decode-then-dot otherwise), so a
 *    batch-1 product reads the packed weight exactly once.
 *  - transpose, M <= 32: each row of W is dequantized into an L1 buffer once
 *    and dotted with the M rows of x.
 *  - not transposed, M <= 32: each worker owns a block of output columns and
 *    streams W's rows through it: each row's codes are decoded once into L1
 *    and out[m, cols] += (x[m, k] * scale) * code + x[m, k] * bias.
 *  - M > 32: tiles of W are dequantized into a buffer and multiplied by BLAS
 *    sgemm, one tile per task (each gemm single-threaded: native/threads.c).
 * Every path decodes codes eight lanes at a time with AVX2 where the CPU has
 * it (EMBER_NO_AVX2=1 forces the portable C). Work is spread over the pool by
 * blocks of rows or columns (and batch entries); batch axes of x and the
 * weight broadcast like matmul's.
 */
#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "classes.h"

#define SHAPE_BUF 256
#define SMALL_M 2      /* up to this many rows of x: fused decode-and-dot */
#define GEMV_M 32      /* up to this many: dequantized rows and dots; above: BLAS */
#define ROW_BLOCK 16   /* rows of W per task (transpose) */
#define COL_BLOCK 1024 /* columns of W per task (not transposed), a multiple of g */
#define TILE_ROWS 64   /* rows of W per BLAS tile (transpose) */
#define TILE_COLS 256  /* columns of W per BLAS tile (not transposed) */

/* ---- shapes and checks (the shape rules) ---- */

static int valid_bits(int64_t bits) { return bits >= 1 && bits <= 8 && bits != 7; }
static int valid_group(int64_t g) { return g == 32 || g == 64 || g == 128; }

static const char* shape_str(char* buf, const em_array* a) {
  return em_fmt_shape(buf, SHAPE_BUF, a->ndim, a->shape);
}

static int check_params(const char* op, int nip, const int64_t* ip, int want) {
  if (nip != want) {
    em_fail(EM_VALUE_ERROR, "[%s] expected %d parameters, got %d", op, want, nip);
    return 0;
  }
  if (!valid_group(ip[0])) {
    em_fail(EM_VALUE_ERROR, "[%s] The requested group size %lld is not supported. The supported "
            "group sizes are 32, 64, and 128.", op, (long long)ip[0]);
    return 0;
  }
  if (!valid_bits(ip[1])) {
    em_fail(EM_VALUE_ERROR, "[%s] The requested number of bits %lld is not supported. The "
            "supported bits are 1, 2, 3, 4, 5, 6 and 8.", op, (long long)ip[1]);
    return 0;
  }
  return 1;
}

/* QUANTIZE (w (..., K) float) ip: group_size, bits, which (0 the packed
 * codes, 1 the scales, 2 the biases). */
em_array* em_rule_quantize(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                           int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  em_array* w = in[0];
  char b1[SHAPE_BUF];
  if (!check_params("quantize", nip, ip, 3)) return NULL;
  if (ip[2] < 0 || ip[2] > 2) return em_fail(EM_VALUE_ERROR, "[quantize] bad output selector");
  if (!em_is_float(w->dtype))
    return em_fail(EM_VALUE_ERROR, "[quantize] Only real floating types can be quantized but w "
                   "has type %s.", em_dtype_name(w->dtype));
  if (w->dtype == EM_FLOAT64)
    return em_fail(EM_VALUE_ERROR, "[quantize] float64 is not supported (as in mlx); w of shape "
                   "%s needs float32, float16 or bfloat16.", shape_str(b1, w));
  if (w->ndim < 2)
    return em_fail(EM_VALUE_ERROR, "[quantize] The matrix to be quantized must have at least 2 "
                   "dimensions but w has shape %s.", shape_str(b1, w));
  int64_t k = w->shape[w->ndim - 1], g = ip[0], bits = ip[1];
  if (k % g != 0)
    return em_fail(EM_VALUE_ERROR, "[quantize] The last dimension of the matrix needs to be "
                   "divisible by the quantization group size %lld. However the provided matrix "
                   "has shape %s.", (long long)g, shape_str(b1, w));
  int64_t shape[EM_MAX_NDIM];
  memcpy(shape, w->shape, sizeof(int64_t) * (size_t)w->ndim);
  shape[w->ndim - 1] = ip[2] == 0 ? k * bits / 32 : k / g;
  int dtype = ip[2] == 0 ? EM_UINT32 : w->dtype;
  return em_node_new(prim, dtype, w->ndim, shape, 1, in, nip, ip, 0, NULL, stream);
}

/* Checks a packed weight against its scales and biases; returns the number
 * of codes per row (the unpacked last axis), or -1 with an error set. */
static int64_t check_packed(const char* op, em_array* w, em_array* s, em_array* b,
                            int64_t g, int64_t bits) {
  char b1[SHAPE_BUF], b2[SHAPE_BUF];
  if (w->dtype != EM_UINT32) {
    em_fail(EM_VALUE_ERROR, "[%s] The weight matrix should be uint32 but received %s.", op,
            em_dtype_name(w->dtype));
    return -1;
  }
  if (w->ndim < 2) {
    em_fail(EM_VALUE_ERROR, "[%s] The quantized matrix must have at least 2 dimensions but w "
            "has shape %s.", op, shape_str(b1, w));
    return -1;
  }
  if (!em_is_float(s->dtype) || !em_is_float(b->dtype)) {
    em_fail(EM_VALUE_ERROR, "[%s] scales and biases must be floating point, got %s and %s.", op,
            em_dtype_name(s->dtype), em_dtype_name(b->dtype));
    return -1;
  }
  int same = s->ndim == b->ndim;
  for (int d = 0; same && d < s->ndim; d++) same = s->shape[d] == b->shape[d];
  if (!same) {
    em_fail(EM_VALUE_ERROR, "[%s] Scales and biases should have the same shape. Received "
            "scales with shape %s and biases with %s.", op, shape_str(b1, s), shape_str(b2, b));
    return -1;
  }
  int nd = w->ndim;
  int ok = s->ndim == nd;
  for (int d = 0; ok && d < nd - 1; d++) ok = s->shape[d] == w->shape[d];
  int64_t codes = s->ndim == nd ? s->shape[nd - 1] * g : -1;
  if (!ok || w->shape[nd - 1] * 32 != codes * bits) {
    em_fail(EM_VALUE_ERROR, "[%s] The shapes of the weight and scales are incompatible based on "
            "bits and group_size: w has shape %s and scales %s with group_size=%lld and "
            "bits=%lld.", op, shape_str(b1, w), shape_str(b2, s), (long long)g, (long long)bits);
    return -1;
  }
  return codes;
}

/* DEQUANTIZE (w (..., Kp) uint32, scales (..., G), biases (..., G)) ip:
 * group_size, bits, dtype of the result. */
em_array* em_rule_dequantize(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                             int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  if (!check_params("dequantize", nip, ip, 3)) return NULL;
  if (ip[2] < 0 || ip[2] >= EM_NUM_DTYPES || !em_is_float((int)ip[2]))
    return em_fail(EM_VALUE_ERROR, "[dequantize] Only real floating types are supported but "
                   "output dtype == %s.", ip[2] >= 0 && ip[2] < EM_NUM_DTYPES ?
                   em_dtype_name((int)ip[2]) : "unknown");
  int64_t codes = check_packed("dequantize", in[0], in[1], in[2], ip[0], ip[1]);
  if (codes < 0) return NULL;
  int64_t shape[EM_MAX_NDIM];
  memcpy(shape, in[0]->shape, sizeof(int64_t) * (size_t)in[0]->ndim);
  shape[in[0]->ndim - 1] = codes;
  return em_node_new(prim, (int)ip[2], in[0]->ndim, shape, 3, in, nip, ip, 0, NULL, stream);
}

/* QUANTIZED_MATMUL (x (..., M, K) or (K,), w, scales, biases) ip:
 * group_size, bits, transpose. The result has x's and w's batch axes
 * broadcast, then (M, N) ((N,) for a 1-D x), in the dtypes' common type. */
em_array* em_rule_quantized_matmul(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                                   int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  const char* op = "quantized_matmul";
  em_array *x = in[0], *w = in[1];
  char b1[SHAPE_BUF], b2[SHAPE_BUF];
  if (!check_params(op, nip, ip, 3)) return NULL;
  if (!em_is_float(x->dtype))
    return em_fail(EM_VALUE_ERROR, "[%s] Only real floating types are supported but x has type "
                   "%s.", op, em_dtype_name(x->dtype));
  if (x->ndim < 1)
    return em_fail(EM_VALUE_ERROR, "[%s] x must have at least 1 dimension, got shape %s.", op,
                   shape_str(b1, x));
  int64_t codes = check_packed(op, w, in[2], in[3], ip[0], ip[1]);
  if (codes < 0) return NULL;
  int dtype = em_promote_types(em_promote_types(x->dtype, in[2]->dtype), in[3]->dtype);
  if (dtype == EM_FLOAT64)
    return em_fail(EM_VALUE_ERROR, "[%s] float64 is not supported (x %s, scales %s, biases %s); "
                   "use float32, float16 or bfloat16.", op, em_dtype_name(x->dtype),
                   em_dtype_name(in[2]->dtype), em_dtype_name(in[3]->dtype));
  int transpose = ip[2] != 0;
  int64_t rows = w->shape[w->ndim - 2];
  int64_t inner = transpose ? codes : rows, outer = transpose ? rows : codes;
  if (x->shape[x->ndim - 1] != inner)
    return em_fail(EM_VALUE_ERROR, "[%s] Last dimension of first input with shape %s does not "
                   "match the expanded quantized matrix (%lld, %lld) computed from shape %s with "
                   "group_size=%lld, bits=%lld and transpose=%s.", op, shape_str(b1, x),
                   (long long)inner, (long long)outer, shape_str(b2, w), (long long)ip[0],
                   (long long)ip[1], transpose ? "true" : "false");
  int xb = x->ndim > 2 ? x->ndim - 2 : 0, wb = w->ndim - 2;
  int nb = xb > wb ? xb : wb;
  int64_t shape[EM_MAX_NDIM];
  for (int d = 0; d < nb; d++) {
    int dx = d - (nb - xb), dw = d - (nb - wb);
    int64_t sx = dx >= 0 ? x->shape[dx] : 1, sw = dw >= 0 ? w->shape[dw] : 1;
    if (sx != sw && sx != 1 && sw != 1)
      return em_fail(EM_VALUE_ERROR, "[%s] the batch shapes of x %s and w %s cannot be "
                     "broadcast.", op, shape_str(b1, x), shape_str(b2, w));
    shape[d] = sx == 1 ? sw : sx;
  }
  int nd = nb;
  if (x->ndim > 1) shape[nd++] = x->shape[x->ndim - 2];
  shape[nd++] = outer;
  return em_node_new(prim, dtype, nd, shape, 4, in, nip, ip, 0, NULL, stream);
}

/* ---- operands ---- */

static int finish(em_array* out, int status, em_array** temps, int n) {
  for (int i = 0; i < n; i++)
    if (temps[i]) em_release(temps[i]);
  if (status != EM_OK && out->buf) {
    em_buffer_release(out->buf);
    out->buf = NULL;
  }
  return status;
}

static int scratch_status(atomic_int* failed, const char* op) {
  if (!atomic_load(failed)) return EM_OK;
  em_fail(EM_MEMORY_ERROR, "[%s] out of memory for scratch buffers", op);
  return EM_MEMORY_ERROR;
}

/* ---- codes ---- */

/* Decodes 32 codes of `bits` bits (`bits` words) into floats. */
static inline __attribute__((always_inline)) void decode32(const uint32_t* p, int bits, float* out) {
  const uint32_t mask = (1u << bits) - 1;
  for (int j = 0; j < 32; j++) {
    int bit = j * bits, word = bit >> 5, shift = bit & 31;
    uint64_t window = p[word];
    if (shift + bits > 32) window |= (uint64_t)p[word + 1] << 32;
    out[j] = (float)((uint32_t)(window >> shift) & mask);
  }
}

/* Decodes n codes (a multiple of 32) that start at word p into floats: with
 * AVX2 where the CPU has it (below), else decode_portable. */
static void decode_codes(const uint32_t* p, int bits, int64_t n, float* out);

/* The portable decoder: each case has constant bits, so shifts and masks fold. */
static void decode_portable(const uint32_t* p, int bits, int64_t n, float* out) {
#define DECODE_BITS(B)                                                   \
  case B:                                                                \
    for (int64_t i = 0; i < n; i += 32, p += B) decode32(p, B, out + i); \
    break;
  switch (bits) {
    DECODE_BITS(1) DECODE_BITS(2) DECODE_BITS(3) DECODE_BITS(4)
    DECODE_BITS(5) DECODE_BITS(6) DECODE_BITS(8)
  }
#undef DECODE_BITS
}

/* Dequantizes `groups` groups of g codes from word p into out (float32). */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void dequantize_f32(const uint32_t* p, int bits, int g, int64_t groups, const float* s,
                           const float* b, float* out) {
  decode_codes(p, bits, groups * g, out);
  for (int64_t i = 0; i < groups; i++) {
    float scale = s[i], bias = b[i];
    float* o = out + i * g;
    for (int j = 0; j < g; j++) o[j] = scale * o[j] + bias;
  }
}

/* ---- quantize ---- */

typedef struct {
  float scale, bias;
} affine;

/* mlx's max and min (std::max / std::min: the first argument wins ties and NaNs). */
static inline float max_of(float a, float b) { return a < b ? b : a; }
static inline float min_of(float a, float b) { return b < a ? b : a; }

static affine group_params(const float* w, int g, int bits) {
  const float n_bins = (float)((1 << bits) - 1), eps = 1e-7f;
  float lo = INFINITY, hi = -INFINITY;
  for (int j = 0; j < g; j++) {
    hi = max_of(hi, w[j]);
    lo = min_of(lo, w[j]);
  }
  float scale = max_of((hi - lo) / n_bins, eps);
  if (bits == 1) return (affine){scale, lo}; /* two levels: lo and lo + scale */
  int low_edge = fabsf(lo) > fabsf(hi);
  scale = low_edge ? scale : -scale;
  float edge = low_edge ? lo : hi;
  float q0 = rintf(edge / scale);
  affine a = {scale, 0.0f};
  if (q0 != 0) {
    a.scale = edge / q0;
    a.bias = edge;
  }
  return a;
}

static void pack_group(const float* w, int g, int bits, affine a, uint32_t* out) {
  const float n_bins = (float)((1 << bits) - 1);
  uint64_t acc = 0;
  int filled = 0;
  for (int j = 0; j < g; j++) {
    float q = min_of(max_of(rintf((w[j] - a.bias) / a.scale), 0.0f), n_bins);
    acc |= (uint64_t)q << filled;
    filled += bits;
    if (filled >= 32) {
      *out++ = (uint32_t)acc;
      acc >>= 32;
      filled -= 32;
    }
  }
}

static void store_float(void* out, int dtype, int64_t i, float v) {
  switch (dtype) {
    case EM_FLOAT32: ((float*)out)[i] = v; break;
    case EM_FLOAT64: ((double*)out)[i] = v; break;
    case EM_FLOAT16: ((uint16_t*)out)[i] = em_f32_to_f16(v); break;
    default: ((uint16_t*)out)[i] = em_f32_to_bf16(v); break;
  }
}

typedef struct {
  const float* w;
  void* out;
  int g, bits, which, dtype;
} quantize_job;

static void quantize_groups(void* ctx, int64_t lo, int64_t hi) {
  const quantize_job* j = ctx;
  for (int64_t i = lo; i < hi; i++) {
    const float* w = j->w + i * j->g;
    affine a = group_params(w, j->g, j->bits);
    if (j->which == 0)
      pack_group(w, j->g, j->bits, a, (uint32_t*)j->out + i * j->g * j->bits / 32);
    else
      store_float(j->out, j->dtype, i, j->which == 1 ? a.scale : a.bias);
  }
}

int em_kernel_quantize(em_array* out) {
  em_array* temps[1] = {NULL};
  int status = em_alloc_output(out);
  if (status != EM_OK || out->size == 0) return status;
  temps[0] = em_row_major_as(out->inputs[0], EM_FLOAT32);
  if (!temps[0]) return finish(out, EM_MEMORY_ERROR, temps, 1);
  quantize_job j = {em_data(temps[0]), out->buf->data, (int)out->ip[0], (int)out->ip[1],
                    (int)out->ip[2], out->dtype};
  em_parallel_for(temps[0]->size / j.g, 64, quantize_groups, &j);
  return finish(out, EM_OK, temps, 1);
}

/* ---- dequantize ---- */

typedef struct {
  const uint32_t* w;
  const double *s, *b;
  char* out;
  int g, bits, product, sum, out_dtype; /* the dtypes the product and the sum round to */
  atomic_int failed;
} dequantize_job;

/* v rounded to dtype and back. Every value rounded here is the exact product
 * or sum of two values of dtype (codes are exact in every float type), and
 * double then float hold more than twice their precision, so rounding through
 * them equals rounding once. */
static inline double round_to(double v, int dtype) {
  switch (dtype) {
    case EM_FLOAT32: return (float)v;
    case EM_FLOAT16: return em_f16_to_f32(em_f32_to_f16((float)v));
    case EM_BFLOAT16: return em_bf16_to_f32(em_f32_to_bf16((float)v));
    default: return v;
  }
}

static void dequantize_groups(void* ctx, int64_t lo, int64_t hi) {
  dequantize_job* j = ctx;
  int g = j->g;
  float* codes = malloc(sizeof(float) * (size_t)g);
  double* vals = malloc(sizeof(double) * (size_t)g);
  if (!codes || !vals) {
    atomic_store(&j->failed, 1);
    free(codes);
    free(vals);
    return;
  }
  int esize = em_dtype_size(j->out_dtype);
  for (int64_t i = lo; i < hi; i++) {
    decode_codes(j->w + i * g * j->bits / 32, j->bits, g, codes);
    double s = j->s[i], b = j->b[i];
    for (int k = 0; k < g; k++) vals[k] = round_to(round_to(s * codes[k], j->product) + b, j->sum);
    em_store(j->out + i * g * esize, j->out_dtype, 1, vals, CL_F64, g);
  }
  free(codes);
  free(vals);
}

/* As mlx: the product rounds to the scales' dtype, the sum to the scales' and
 * biases' common dtype, then the result converts to the output's dtype. */
int em_kernel_dequantize(em_array* out) {
  em_array* temps[3] = {NULL, NULL, NULL};
  int status = em_alloc_output(out);
  if (status != EM_OK || out->size == 0) return status;
  temps[0] = em_row_major_as(out->inputs[0], EM_UINT32);
  temps[1] = em_row_major_as(out->inputs[1], EM_FLOAT64);
  temps[2] = em_row_major_as(out->inputs[2], EM_FLOAT64);
  if (!temps[0] || !temps[1] || !temps[2]) return finish(out, EM_MEMORY_ERROR, temps, 3);
  dequantize_job j;
  j.w = em_data(temps[0]);
  j.s = em_data(temps[1]);
  j.b = em_data(temps[2]);
  j.out = out->buf->data;
  j.g = (int)out->ip[0];
  j.bits = (int)out->ip[1];
  j.product = out->inputs[1]->dtype;
  j.sum = em_promote_types(out->inputs[1]->dtype, out->inputs[2]->dtype);
  j.out_dtype = out->dtype;
  atomic_init(&j.failed, 0);
  em_parallel_for(temps[1]->size, 64, dequantize_groups, &j);
  return finish(out, scratch_status(&j.failed, "dequantize"), temps, 3);
}

/* ---- quantized matmul: the fused row dot ---- */

/* <a, b> over n floats, in 32 lanes: it vectorises without -ffast-math, and
 * several independent vector sums hide the latency of each add. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static float dot_f32(const float* a, const float* b, int64_t n) {
  float lane[32] = {0};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int u = 0; u < 32; u++) lane[u] += a[i + u] * b[i + u];
  for (; i < n; i++) lane[0] += a[i] * b[i];
  float sum = 0;
  for (int u = 0; u < 32; u++) sum += lane[u];
  return sum;
}

/* One row of W against one row of x, portable: each group's codes decoded
 * into `codes` (g floats) and dotted with x. xs holds x's group sums. */
static float row_dot_portable(const uint32_t* w, const float* x, const float* s, const float* b,
                              const float* xs, int64_t groups, int g, int bits, float* codes) {
  float sum = 0;
  int words = g * bits / 32;
  for (int64_t i = 0; i < groups; i++, w += words, x += g) {
    decode_codes(w, bits, g, codes);
    sum += s[i] * dot_f32(codes, x, g) + b[i] * xs[i];
  }
  return sum;
}

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline __attribute__((always_inline)) float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/* <x_g, code_g> for one group when bits divides 32: word i holds codes
 * [i*per, (i+1)*per), so a broadcast word shifted lane by lane gives eight
 * consecutive codes, matching eight consecutive floats of x. */
AVX2 static inline __attribute__((always_inline)) __m256 group_dot_pow2(const uint32_t* w,
                                                                         const float* x, int g,
                                                                         int bits) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  if (bits == 8) {
    for (int i = 0; i < g / 4; i += 4) {
      __m256i c0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(w + i)));
      __m256i c1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(w + i + 2)));
      acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(c0), _mm256_loadu_ps(x + 4 * i), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(c1), _mm256_loadu_ps(x + 4 * i + 8), acc1);
    }
    return _mm256_add_ps(acc0, acc1);
  }
  const int per = 32 / bits, vecs = per / 8; /* 8-code vectors per word: 1, 2 or 4 */
  const __m256i mask = _mm256_set1_epi32((1 << bits) - 1);
  __m256i shifts[4];
  for (int v = 0; v < 4; v++)
    shifts[v] = _mm256_setr_epi32((8 * v) * bits, (8 * v + 1) * bits, (8 * v + 2) * bits,
                                  (8 * v + 3) * bits, (8 * v + 4) * bits, (8 * v + 5) * bits,
                                  (8 * v + 6) * bits, (8 * v + 7) * bits);
  int words = g / per;
  for (int i = 0; i < words; i++) {
    __m256i word = _mm256_set1_epi32((int)w[i]);
    for (int v = 0; v < vecs; v++) {
      __m256 c = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srlv_epi32(word, shifts[v]), mask));
      __m256 xv = _mm256_loadu_ps(x + i * per + 8 * v);
      if ((i * vecs + v) & 1)
        acc1 = _mm256_fmadd_ps(c, xv, acc1);
      else
        acc0 = _mm256_fmadd_ps(c, xv, acc0);
    }
  }
  return _mm256_add_ps(acc0, acc1);
}

/* The same for 3, 5 and 6 bits: 32 codes fill `bits` words, which sit in one
 * vector; each lane gathers the word its code starts in and the next one
 * (permutes) and funnel-shifts its code out. The lane tables depend on bits
 * only and are built once per row. */
typedef struct {
  __m256i lo_idx[4], hi_idx[4], lo_sh[4], hi_sh[4], load;
} odd_tables;

AVX2 static void make_odd_tables(int bits, odd_tables* t) {
  int idx[8], nxt[8], sh[8], up[8], load[8];
  for (int v = 0; v < 4; v++) {
    for (int l = 0; l < 8; l++) {
      int bit = (8 * v + l) * bits;
      idx[l] = bit >> 5;
      sh[l] = bit & 31;
      nxt[l] = idx[l] + 1 < bits ? idx[l] + 1 : idx[l];
      up[l] = 32 - sh[l]; /* a shift of 32 gives 0: nothing from the next word */
    }
    t->lo_idx[v] = _mm256_loadu_si256((const __m256i*)idx);
    t->hi_idx[v] = _mm256_loadu_si256((const __m256i*)nxt);
    t->lo_sh[v] = _mm256_loadu_si256((const __m256i*)sh);
    t->hi_sh[v] = _mm256_loadu_si256((const __m256i*)up);
  }
  for (int l = 0; l < 8; l++) load[l] = l < bits ? -1 : 0;
  t->load = _mm256_loadu_si256((const __m256i*)load);
}

AVX2 static inline __attribute__((always_inline)) __m256 group_dot_odd(const uint32_t* w,
                                                                        const float* x, int g,
                                                                        int bits,
                                                                        const odd_tables* t) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const __m256i mask = _mm256_set1_epi32((1 << bits) - 1);
  for (int blk = 0; blk < g / 32; blk++, w += bits, x += 32) {
    /* masked: the lanes past the block's words are not read */
    __m256i words = _mm256_maskload_epi32((const int*)w, t->load);
    for (int v = 0; v < 4; v++) {
      __m256i lo = _mm256_srlv_epi32(_mm256_permutevar8x32_epi32(words, t->lo_idx[v]), t->lo_sh[v]);
      __m256i hi = _mm256_sllv_epi32(_mm256_permutevar8x32_epi32(words, t->hi_idx[v]), t->hi_sh[v]);
      __m256 c = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_or_si256(lo, hi), mask));
      if (v & 1)
        acc1 = _mm256_fmadd_ps(c, _mm256_loadu_ps(x + 8 * v), acc1);
      else
        acc0 = _mm256_fmadd_ps(c, _mm256_loadu_ps(x + 8 * v), acc0);
    }
  }
  return _mm256_add_ps(acc0, acc1);
}

/* Decodes 32 codes (`bits` words) into out, eight lanes at a time, as the
 * dot products above read them. */
AVX2 static inline __attribute__((always_inline)) void decode_block_avx2(const uint32_t* w,
                                                                          int bits,
                                                                          const odd_tables* t,
                                                                          float* out) {
  const __m256i mask = _mm256_set1_epi32((1 << bits) - 1);
  if (bits == 8) {
    for (int i = 0; i < 8; i += 2)
      _mm256_storeu_ps(out + 4 * i, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
                                        _mm_loadl_epi64((const __m128i*)(w + i)))));
  } else if (32 % bits == 0) {
    const int per = 32 / bits;
    for (int i = 0; i < bits; i++) {
      __m256i word = _mm256_set1_epi32((int)w[i]);
      for (int v = 0; v < per / 8; v++) {
        __m256i sh = _mm256_setr_epi32((8 * v) * bits, (8 * v + 1) * bits, (8 * v + 2) * bits,
                                       (8 * v + 3) * bits, (8 * v + 4) * bits,
                                       (8 * v + 5) * bits, (8 * v + 6) * bits,
                                       (8 * v + 7) * bits);
        _mm256_storeu_ps(out + i * per + 8 * v,
                         _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srlv_epi32(word, sh), mask)));
      }
    }
  } else {
    __m256i words = _mm256_maskload_epi32((const int*)w, t->load);
    for (int v = 0; v < 4; v++) {
      __m256i lo = _mm256_srlv_epi32(_mm256_permutevar8x32_epi32(words, t->lo_idx[v]), t->lo_sh[v]);
      __m256i hi = _mm256_sllv_epi32(_mm256_permutevar8x32_epi32(words, t->hi_idx[v]), t->hi_sh[v]);
      _mm256_storeu_ps(out + 8 * v, _mm256_cvtepi32_ps(
                                        _mm256_and_si256(_mm256_or_si256(lo, hi), mask)));
    }
  }
}

AVX2 static void decode_avx2(const uint32_t* p, int bits, int64_t n, float* out) {
  odd_tables t;
  make_odd_tables(bits, &t);
#define DECODE_BITS(B)                                                                \
  case B:                                                                             \
    for (int64_t i = 0; i < n; i += 32, p += B) decode_block_avx2(p, B, &t, out + i); \
    break;
  switch (bits) {
    DECODE_BITS(1) DECODE_BITS(2) DECODE_BITS(3) DECODE_BITS(4)
    DECODE_BITS(5) DECODE_BITS(6) DECODE_BITS(8)
  }
#undef DECODE_BITS
}

AVX2 static inline __attribute__((always_inline)) float row_dot_bits(
    const uint32_t* w, const float* x, const float* s, const float* b, const float* xs,
    int64_t groups, int g, int bits) {
  __m256 total = _mm256_setzero_ps();
  float bias_part = 0;
  int words = g * bits / 32;
  odd_tables t;
  make_odd_tables(bits, &t);
  for (int64_t i = 0; i < groups; i++, w += words, x += g) {
    __m256 d = (32 % bits == 0) ? group_dot_pow2(w, x, g, bits) : group_dot_odd(w, x, g, bits, &t);
    total = _mm256_fmadd_ps(_mm256_set1_ps(s[i]), d, total);
    bias_part += b[i] * xs[i];
  }
  return hsum256(total) + bias_part;
}

/* One row of W against one row of x with AVX2: a case per (bits, g) so that
 * every loop bound is a constant. */
AVX2 static float row_dot_avx2(const uint32_t* w, const float* x, const float* s,
                               const float* b, const float* xs, int64_t groups, int g, int bits) {
#define ROW_G(B)                                                                    \
  case B:                                                                           \
    if (g == 32) return row_dot_bits(w, x, s, b, xs, groups, 32, B);                \
    if (g == 64) return row_dot_bits(w, x, s, b, xs, groups, 64, B);                \
    return row_dot_bits(w, x, s, b, xs, groups, 128, B);
  switch (bits) {
    ROW_G(1) ROW_G(2) ROW_G(3) ROW_G(4) ROW_G(5) ROW_G(6) ROW_G(8)
  }
#undef ROW_G
  return 0;
}

/* EMBER_NO_AVX2=1 forces the portable paths (the tests run them that way too). */
static int have_avx2(void) {
  static int known = -1;
  if (known < 0) {
    const char* off = getenv("EMBER_NO_AVX2");
    __builtin_cpu_init();
    known = !(off && off[0] == '1') && __builtin_cpu_supports("avx2") &&
            __builtin_cpu_supports("fma");
  }
  return known;
}
#else
static int have_avx2(void) { return 0; }
static void decode_avx2(const uint32_t* p, int bits, int64_t n, float* out) {
  decode_portable(p, bits, n, out);
}
static float row_dot_avx2(const uint32_t* w, const float* x, const float* s, const float* b,
                          const float* xs, int64_t groups, int g, int bits) {
  (void)w; (void)x; (void)s; (void)b; (void)xs; (void)groups; (void)g; (void)bits;
  return 0;
}
#endif

static void decode_codes(const uint32_t* p, int bits, int64_t n, float* out) {
  if (have_avx2())
    decode_avx2(p, bits, n, out);
  else
    decode_portable(p, bits, n, out);
}

/* ---- quantized matmul: the paths ---- */

typedef struct {
  const float* x;        /* (xbatch, M, K) float32 */
  const float* xs;       /* (xbatch, M, K/g) group sums of x (transpose, small M) */
  const uint32_t* w;     /* (wbatch, rows, words) */
  const float *s, *b;    /* (wbatch, rows, groups) */
  float* out;            /* (batch, M, N) float32 */
  const int64_t *xoff, *woff; /* per output batch entry: x's and w's batch index */
  int64_t m, n, k, rows, words, groups, blocks;
  int g, bits, avx2;
  atomic_int failed;
} qmm_job;

/* transpose, M <= GEMV_M: tasks are (batch entry, block of ROW_BLOCK rows of W). */
static void qmm_rows(void* ctx, int64_t lo, int64_t hi) {
  qmm_job* j = ctx;
  int fused = j->m <= SMALL_M;
  float* buf = malloc(sizeof(float) * (size_t)(fused ? j->g : j->k));
  if (!buf) {
    atomic_store(&j->failed, 1);
    return;
  }
  for (int64_t t = lo; t < hi; t++) {
    int64_t bt = t / j->blocks, r0 = (t % j->blocks) * ROW_BLOCK;
    int64_t r1 = r0 + ROW_BLOCK < j->n ? r0 + ROW_BLOCK : j->n;
    const float* x = j->x + j->xoff[bt] * j->m * j->k;
    const float* xs = j->xs ? j->xs + j->xoff[bt] * j->m * j->groups : NULL;
    float* out = j->out + bt * j->m * j->n;
    for (int64_t r = r0; r < r1; r++) {
      int64_t wr = j->woff[bt] * j->rows + r;
      const uint32_t* w = j->w + wr * j->words;
      const float *s = j->s + wr * j->groups, *b = j->b + wr * j->groups;
      if (fused) {
        for (int64_t m = 0; m < j->m; m++)
          out[m * j->n + r] =
              j->avx2 ? row_dot_avx2(w, x + m * j->k, s, b, xs + m * j->groups, j->groups, j->g, j->bits)
                      : row_dot_portable(w, x + m * j->k, s, b, xs + m * j->groups, j->groups,
                                         j->g, j->bits, buf);
      } else {
        dequantize_f32(w, j->bits, j->g, j->groups, s, b, buf);
        for (int64_t m = 0; m < j->m; m++) out[m * j->n + r] = dot_f32(x + m * j->k, buf, j->k);
      }
    }
  }
  free(buf);
}

/* out[c] += a * codes[c] + b over one group: x[m, k] * (scale * code + bias)
 * with the products x * scale and x * bias formed once per group. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void scaled_codes_add(float* out, const float* codes, float a, float b, int n) {
  for (int c = 0; c < n; c++) out[c] += a * codes[c] + b;
}

/* not transposed, M <= GEMV_M: tasks are (batch entry, block of COL_BLOCK
 * columns); W's rows stream through, the block's output stays in cache. */
static void qmm_cols(void* ctx, int64_t lo, int64_t hi) {
  qmm_job* j = ctx;
  float* row = malloc(sizeof(float) * COL_BLOCK);
  if (!row) {
    atomic_store(&j->failed, 1);
    return;
  }
  for (int64_t t = lo; t < hi; t++) {
    int64_t bt = t / j->blocks, c0 = (t % j->blocks) * COL_BLOCK;
    int64_t width = c0 + COL_BLOCK < j->n ? COL_BLOCK : j->n - c0;
    int64_t g0 = c0 / j->g, ng = width / j->g;
    const float* x = j->x + j->xoff[bt] * j->m * j->k;
    float* out = j->out + bt * j->m * j->n + c0;
    for (int64_t m = 0; m < j->m; m++) memset(out + m * j->n, 0, sizeof(float) * (size_t)width);
    for (int64_t kk = 0; kk < j->k; kk++) {
      int64_t wr = j->woff[bt] * j->rows + kk;
      const float *s = j->s + wr * j->groups + g0, *b = j->b + wr * j->groups + g0;
      decode_codes(j->w + wr * j->words + c0 * j->bits / 32, j->bits, width, row);
      for (int64_t m = 0; m < j->m; m++) {
        float xk = x[m * j->k + kk];
        for (int64_t i = 0; i < ng; i++)
          scaled_codes_add(out + m * j->n + i * j->g, row + i * j->g, xk * s[i], xk * b[i], j->g);
      }
    }
  }
  free(row);
}

/* M > GEMV_M: tasks are (batch entry, tile of W) dequantized and passed to
 * sgemm; a tile is TILE_ROWS rows of W (transpose) or TILE_COLS columns. */
static void qmm_blas_tiles(qmm_job* j, int transpose, int64_t lo, int64_t hi) {
  int64_t tile = transpose ? TILE_ROWS * j->k : TILE_COLS * j->k;
  float* buf = malloc(sizeof(float) * (size_t)tile);
  if (!buf) {
    atomic_store(&j->failed, 1);
    return;
  }
  for (int64_t t = lo; t < hi; t++) {
    int64_t bt = t / j->blocks, i0 = (t % j->blocks) * (transpose ? TILE_ROWS : TILE_COLS);
    const float* x = j->x + j->xoff[bt] * j->m * j->k;
    float* out = j->out + bt * j->m * j->n + i0;
    if (transpose) {
      int64_t nr = i0 + TILE_ROWS < j->n ? TILE_ROWS : j->n - i0;
      int64_t wr = j->woff[bt] * j->rows + i0;
      dequantize_f32(j->w + wr * j->words, j->bits, j->g, nr * j->groups, j->s + wr * j->groups,
                     j->b + wr * j->groups, buf);
      em_sgemm(0, 1, j->m, nr, j->k, 1.0f, x, j->k, buf, j->k, out, j->n);
    } else {
      int64_t width = i0 + TILE_COLS < j->n ? TILE_COLS : j->n - i0;
      for (int64_t kk = 0; kk < j->k; kk++) {
        int64_t wr = j->woff[bt] * j->rows + kk;
        dequantize_f32(j->w + wr * j->words + i0 * j->bits / 32, j->bits, j->g, width / j->g,
                       j->s + wr * j->groups + i0 / j->g, j->b + wr * j->groups + i0 / j->g,
                       buf + kk * width);
      }
      em_sgemm(0, 0, j->m, width, j->k, 1.0f, x, j->k, buf, width, out, j->n);
    }
  }
  free(buf);
}

static void qmm_blas_rows(void* ctx, int64_t lo, int64_t hi) { qmm_blas_tiles(ctx, 1, lo, hi); }
static void qmm_blas_cols(void* ctx, int64_t lo, int64_t hi) { qmm_blas_tiles(ctx, 0, lo, hi); }

/* Group sums of x's rows: xs[r, i] = sum of x[r, i*g : (i+1)*g]. */
static void group_sums(const float* x, int64_t rows, int64_t k, int g, float* xs) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t i = 0; i < k / g; i++) {
      const float* p = x + r * k + i * g;
      float sum = 0;
      for (int u = 0; u < g; u++) sum += p[u];
      xs[r * (k / g) + i] = sum;
    }
}

/* The batch index of x and of w for each entry of out's batch (broadcast). */
static void batch_offsets(const em_array* out, const em_array* x, const em_array* w,
                          int64_t batch, int64_t* xoff, int64_t* woff) {
  int nb = out->ndim - (x->ndim > 1 ? 2 : 1);
  int xb = x->ndim > 2 ? x->ndim - 2 : 0, wb = w->ndim - 2;
  for (int64_t t = 0; t < batch; t++) {
    int64_t rem = t, xi = 0, wi = 0, xmul = 1, wmul = 1;
    for (int d = nb - 1; d >= 0; d--) {
      int64_t idx = rem % out->shape[d];
      rem /= out->shape[d];
      int dx = d - (nb - xb), dw = d - (nb - wb);
      if (dx >= 0) {
        if (x->shape[dx] != 1) xi += idx * xmul;
        xmul *= x->shape[dx];
      }
      if (dw >= 0) {
        if (w->shape[dw] != 1) wi += idx * wmul;
        wmul *= w->shape[dw];
      }
    }
    xoff[t] = xi;
    woff[t] = wi;
  }
}

int em_kernel_quantized_matmul(em_array* out) {
  em_array* temps[5] = {NULL, NULL, NULL, NULL, NULL};
  int status = em_alloc_output(out);
  if (status != EM_OK || out->size == 0) return status;
  em_array *x = out->inputs[0], *w = out->inputs[1];
  int transpose = out->ip[2] != 0;
  qmm_job j;
  j.g = (int)out->ip[0];
  j.bits = (int)out->ip[1];
  j.k = x->shape[x->ndim - 1];
  j.m = x->ndim > 1 ? x->shape[x->ndim - 2] : 1;
  j.n = out->shape[out->ndim - 1];
  j.rows = w->shape[w->ndim - 2];
  j.words = w->shape[w->ndim - 1];
  j.groups = out->inputs[2]->shape[w->ndim - 1];
  j.avx2 = have_avx2();
  int64_t batch = out->size / (j.m * j.n);
  if (j.k == 0) { /* an empty sum */
    memset(out->buf->data, 0, (size_t)out->size * (size_t)em_dtype_size(out->dtype));
    return EM_OK;
  }
  temps[0] = em_row_major_as(x, EM_FLOAT32);
  temps[1] = em_row_major_as(w, EM_UINT32);
  temps[2] = em_row_major_as(out->inputs[2], EM_FLOAT32);
  temps[3] = em_row_major_as(out->inputs[3], EM_FLOAT32);
  int64_t* offsets = malloc(sizeof(int64_t) * (size_t)(2 * batch));
  int direct = out->dtype == EM_FLOAT32;
  float* result = direct ? (float*)out->buf->data : malloc(sizeof(float) * (size_t)out->size);
  int small = transpose && j.m <= SMALL_M;
  float* xs = small ? malloc(sizeof(float) * (size_t)(temps[0] ? temps[0]->size / j.g : 1)) : NULL;
  if (!temps[0] || !temps[1] || !temps[2] || !temps[3] || !offsets || !result ||
      (small && !xs)) {
    free(offsets);
    if (!direct) free(result);
    free(xs);
    return finish(out, EM_MEMORY_ERROR, temps, 5);
  }
  j.x = em_data(temps[0]);
  j.w = em_data(temps[1]);
  j.s = em_data(temps[2]);
  j.b = em_data(temps[3]);
  j.out = result;
  j.xs = xs;
  if (small) group_sums(j.x, temps[0]->size / j.k, j.k, j.g, xs);
  batch_offsets(out, x, w, batch, offsets, offsets + batch);
  j.xoff = offsets;
  j.woff = offsets + batch;
  atomic_init(&j.failed, 0);
  if (j.m <= GEMV_M) {
    int64_t span = transpose ? ROW_BLOCK : COL_BLOCK;
    j.blocks = (j.n + span - 1) / span;
    em_parallel_for(batch * j.blocks, 1, transpose ? qmm_rows : qmm_cols, &j);
  } else {
    int64_t span = transpose ? TILE_ROWS : TILE_COLS;
    j.blocks = (j.n + span - 1) / span;
    /* each tile's gemm runs single-threaded on its worker (one thread budget,
     * native/threads.c) */
    em_parallel_for(batch * j.blocks, 1, transpose ? qmm_blas_rows : qmm_blas_cols, &j);
  }
  status = scratch_status(&j.failed, "quantized_matmul");
  if (!direct) {
    if (status == EM_OK) em_store(out->buf->data, out->dtype, 1, result, CL_F32, out->size);
    free(result);
  }
  free(offsets);
  free(xs);
  return finish(out, status, temps, 5);
}
