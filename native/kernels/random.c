/* random.c: counter-based random numbers with JAX's Threefry-2x32.
 *
 * A key is two uint32 words. THREEFRY hashes counter pairs under keys (JAX's
 * threefry2x32 primitive: split and fold_in are built on it). RANDOM draws a
 * whole array for each key the way JAX does with jax_threefry_partitionable:
 * element i (row-major) hashes the 64-bit counter i, split into its high and
 * low words, and keeps y0 ^ y1 (or y0:y1 for 64 bits). Nothing is stored
 * between calls, so any slice of the output can be computed on its own:
 * large outputs are split over the thread pool, each worker hashing its own
 * counters.
 *
 * RANDOM can also map the bits to floats in the same pass, which saves
 * writing and re-reading the bits: UNIFORM gives JAX's [0, 1) floats (random
 * mantissa bits under exponent 0, minus 1), NORMAL gives JAX's standard
 * normals sqrt(2) * erfinv(u) with u uniform on [nextafter(-1, 0), 1).
 * PERMUTATION gives JAX's shuffle of range(n): positions sorted by bits.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "classes.h"
#include "vmath.h"

/* Counters hashed per block: enough for the loops below to vectorise, small
 * enough for the block to stay in L1. */
#define BLOCK 512

static inline uint32_t rotl(uint32_t x, int d) { return (x << d) | (x >> (32 - d)); }

/* Threefry-2x32 with 20 rounds on n counter pairs under one key. Written as
 * plain loops over arrays so that the compiler turns them into SIMD code. */
static inline __attribute__((always_inline)) void threefry_block(
    uint32_t k0, uint32_t k1, int64_t n, uint32_t* x0, uint32_t* x1) {
  static const int rot[2][4] = {{13, 15, 26, 6}, {17, 29, 16, 24}};
  const uint32_t ks[3] = {k0, k1, k0 ^ k1 ^ 0x1BD11BDAu};
  for (int64_t i = 0; i < n; i++) {
    uint32_t a = x0[i] + ks[0], b = x1[i] + ks[1];
    for (int s = 0; s < 5; s++) {
      const int* r = rot[s & 1];
      for (int j = 0; j < 4; j++) {
        a += b;
        b = rotl(b, r[j]) ^ a;
      }
      a += ks[(s + 1) % 3];
      b += ks[(s + 2) % 3] + (uint32_t)(s + 1);
    }
    x0[i] = a;
    x1[i] = b;
  }
}

/* ---- THREEFRY ---- */

int em_kernel_threefry(em_array* out) {
  em_array* key = out->inputs[0];
  em_array* count = out->inputs[1];
  int status = em_alloc_output(out);
  if (status != EM_OK) return status;
  int nd = out->ndim;
  int64_t ks[EM_MAX_NDIM], cs[EM_MAX_NDIM];
  em_broadcast_strides(key, nd, out->shape, ks);
  em_broadcast_strides(count, nd, out->shape, cs);
  const uint32_t* kd = (const uint32_t*)key->buf->data + key->offset;
  const uint32_t* cd = (const uint32_t*)count->buf->data + count->offset;
  uint32_t* od = out->buf->data;
  int64_t pairs = out->size / 2, idx[EM_MAX_NDIM] = {0};
  for (int64_t p = 0; p < pairs; p++) {
    int64_t ko = 0, co = 0;
    for (int d = 0; d < nd - 1; d++) {
      ko += idx[d] * ks[d];
      co += idx[d] * cs[d];
    }
    uint32_t x0 = cd[co], x1 = cd[co + cs[nd - 1]];
    threefry_block(kd[ko], kd[ko + ks[nd - 1]], 1, &x0, &x1);
    od[2 * p] = x0;
    od[2 * p + 1] = x1;
    for (int d = nd - 2; d >= 0; d--) {
      if (++idx[d] < out->shape[d]) break;
      idx[d] = 0;
    }
  }
  return EM_OK;
}

/* ---- RANDOM ---- */

typedef struct {
  const uint32_t* keys;  /* one pair per key, in row-major order */
  int64_t per_key;       /* elements drawn for each key */
  int kind;              /* EM_RANDOM_BITS / UNIFORM / NORMAL */
  int dtype;
  char* out;
} draw_job;

/* Bits of an unsigned dtype's width: JAX keeps the low bits of y0 ^ y1. */
static inline __attribute__((always_inline)) void store_bits(
    int dtype, const uint32_t* y0, const uint32_t* y1, int64_t n, void* dst) {
  switch (dtype) {
    case EM_UINT8:
      for (int64_t i = 0; i < n; i++) ((uint8_t*)dst)[i] = (uint8_t)(y0[i] ^ y1[i]);
      break;
    case EM_UINT16:
      for (int64_t i = 0; i < n; i++) ((uint16_t*)dst)[i] = (uint16_t)(y0[i] ^ y1[i]);
      break;
    case EM_UINT32:
      for (int64_t i = 0; i < n; i++) ((uint32_t*)dst)[i] = y0[i] ^ y1[i];
      break;
    default: /* EM_UINT64 */
      for (int64_t i = 0; i < n; i++) ((uint64_t*)dst)[i] = (uint64_t)y0[i] << 32 | y1[i];
  }
}

/* Uniform [0, 1) floats: the top mantissa bits of the dtype's width of bits
 * under the exponent of 1.0, minus 1. bfloat16 has 7 mantissa bits, fewer
 * than 8, so JAX draws 8 bits for it. */
static inline __attribute__((always_inline)) void store_uniform(
    int dtype, const uint32_t* y0, const uint32_t* y1, int64_t n, void* dst) {
  switch (dtype) {
    case EM_FLOAT32:
      for (int64_t i = 0; i < n; i++)
        ((float*)dst)[i] = em_bits_to_float(((y0[i] ^ y1[i]) >> 9) | 0x3f800000u) - 1.0f;
      break;
    case EM_FLOAT16:
      for (int64_t i = 0; i < n; i++) {
        uint16_t h = (uint16_t)((uint16_t)(y0[i] ^ y1[i]) >> 6 | 0x3c00u);
        ((uint16_t*)dst)[i] = em_f32_to_f16(em_f16_to_f32(h) - 1.0f);
      }
      break;
    case EM_BFLOAT16:
      for (int64_t i = 0; i < n; i++) {
        uint16_t h = (uint16_t)((uint8_t)(y0[i] ^ y1[i]) >> 1 | 0x3f80u);
        ((uint16_t*)dst)[i] = em_f32_to_bf16(em_bf16_to_f32(h) - 1.0f);
      }
      break;
    default: /* EM_FLOAT64 */
      for (int64_t i = 0; i < n; i++) {
        uint64_t b = ((uint64_t)y0[i] << 32 | y1[i]) >> 12 | 0x3ff0000000000000ull;
        double d;
        memcpy(&d, &b, 8);
        ((double*)dst)[i] = d - 1.0;
      }
  }
}

/* Standard normals in float32: u = 2 f + nextafter(-1, 0) from the uniform
 * f (exact: 2 f needs no rounding, so XLA's fused multiply-add rounds the
 * same way), then sqrt(2) * erfinv(u). */
static inline __attribute__((always_inline)) void store_normal_f32(
    const uint32_t* y0, const uint32_t* y1, int64_t n, float* dst) {
  const float lo = -0.99999994f, sqrt2 = 1.41421356f;
  for (int64_t i = 0; i < n; i++) {
    float f = em_bits_to_float(((y0[i] ^ y1[i]) >> 9) | 0x3f800000u) - 1.0f;
    float u = f * 2.0f + lo;
    u = em_select(u < lo, lo, u);
    dst[i] = sqrt2 * em_erfinvf_xla(u);
  }
}

/* The same for float16 and bfloat16, rounding where XLA does: u, erfinv(u)
 * (computed in float32) and the product are each rounded to the half type. */
static inline __attribute__((always_inline)) void store_normal_half(
    int dtype, const uint32_t* y0, const uint32_t* y1, int64_t n, uint16_t* dst) {
  int f16 = dtype == EM_FLOAT16;
  float lo = f16 ? -0.99951172f : -0.99609375f;
  const float sqrt2 = 1.4140625f; /* sqrt(2) rounded to either half type */
  for (int64_t i = 0; i < n; i++) {
    uint32_t b = y0[i] ^ y1[i];
    float f = f16 ? em_f16_to_f32((uint16_t)((uint16_t)b >> 6 | 0x3c00u)) - 1.0f
                  : em_bf16_to_f32((uint16_t)((uint8_t)b >> 1 | 0x3f80u)) - 1.0f;
    float u = f * 2.0f + lo;
    u = em_select(u < lo, lo, u);
    u = f16 ? em_f16_to_f32(em_f32_to_f16(u)) : em_bf16_to_f32(em_f32_to_bf16(u));
    float e = em_erfinvf_xla(u);
    e = f16 ? em_f16_to_f32(em_f32_to_f16(e)) : em_bf16_to_f32(em_f32_to_bf16(e));
    float z = sqrt2 * e;
    dst[i] = f16 ? em_f32_to_f16(z) : em_f32_to_bf16(z);
  }
}

/* Draws output elements [lo, hi): key k = e / per_key, counter e % per_key. */
static inline __attribute__((always_inline)) void draw_range_body(
    const draw_job* job, int64_t lo, int64_t hi) {
  _Alignas(64) uint32_t y0[BLOCK], y1[BLOCK];
  int item = em_dtype_size(job->dtype);
  for (int64_t e = lo; e < hi;) {
    int64_t k = e / job->per_key, c = e % job->per_key;
    int64_t n = job->per_key - c;
    if (n > hi - e) n = hi - e;
    if (n > BLOCK) n = BLOCK;
    for (int64_t i = 0; i < n; i++) {
      uint64_t counter = (uint64_t)(c + i);
      y0[i] = (uint32_t)(counter >> 32);
      y1[i] = (uint32_t)counter;
    }
    threefry_block(job->keys[2 * k], job->keys[2 * k + 1], n, y0, y1);
    void* dst = job->out + e * item;
    if (job->kind == EM_RANDOM_BITS) store_bits(job->dtype, y0, y1, n, dst);
    else if (job->kind == EM_RANDOM_UNIFORM) store_uniform(job->dtype, y0, y1, n, dst);
    else if (job->dtype == EM_FLOAT32) store_normal_f32(y0, y1, n, dst);
    else store_normal_half(job->dtype, y0, y1, n, dst);
    e += n;
  }
}

static void draw_range(void* ctx, int64_t lo, int64_t hi) { draw_range_body(ctx, lo, hi); }

#if defined(__x86_64__) && defined(__GNUC__)
/* The same loops compiled for AVX2 and FMA: eight counters per instruction,
 * and fmaf as one instruction instead of a libm call. */
__attribute__((target("avx2,fma"))) static void draw_range_avx2(void* ctx, int64_t lo,
                                                                int64_t hi) {
  draw_range_body(ctx, lo, hi);
}

static em_range_fn pick_draw_range(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return draw_range_avx2;
  return draw_range;
}
#else
static em_range_fn pick_draw_range(void) { return draw_range; }
#endif

/* Copies the (possibly strided) uint32 array a into dst in row-major order. */
static void gather_u32(const em_array* a, uint32_t* dst) {
  const uint32_t* src = (const uint32_t*)a->buf->data + a->offset;
  int64_t idx[EM_MAX_NDIM] = {0};
  for (int64_t e = 0; e < a->size; e++) {
    int64_t off = 0;
    for (int d = 0; d < a->ndim; d++) off += idx[d] * a->strides[d];
    dst[e] = src[off];
    for (int d = a->ndim - 1; d >= 0; d--) {
      if (++idx[d] < a->shape[d]) break;
      idx[d] = 0;
    }
  }
}

/* ---- permutations ---- */

/* Sorts vals by keys, stably: least significant digit radix sort, one pass
 * per byte. tmp_keys and tmp_vals hold n elements each. */
static void radix_sort_pairs(int64_t n, uint32_t* keys, int32_t* vals, uint32_t* tmp_keys,
                             int32_t* tmp_vals) {
  for (int shift = 0; shift < 32; shift += 8) {
    int64_t count[257] = {0};
    for (int64_t i = 0; i < n; i++) count[((keys[i] >> shift) & 0xFF) + 1]++;
    for (int b = 0; b < 256; b++) count[b + 1] += count[b];
    for (int64_t i = 0; i < n; i++) {
      int64_t at = count[(keys[i] >> shift) & 0xFF]++;
      tmp_keys[at] = keys[i];
      tmp_vals[at] = vals[i];
    }
    uint32_t* k = keys;
    keys = tmp_keys;
    tmp_keys = k;
    int32_t* v = vals;
    vals = tmp_vals;
    tmp_vals = v;
  }
  /* Four passes: the sorted data is back in the caller's arrays. */
}

/* JAX's shuffle of range(n): each round splits the key, gives position i the
 * 32 bits of counter i under the second half and sorts stably by them; the
 * rounds (3 log n / log(2**32 - 1), rounded up) make ties negligible. */
static int draw_permutation(const uint32_t* key, int64_t n, int32_t* out) {
  uint32_t* sort_keys = malloc(sizeof(uint32_t) * 2 * (size_t)n);
  int32_t* tmp_vals = malloc(sizeof(int32_t) * (size_t)n);
  if (!sort_keys || !tmp_vals) {
    free(sort_keys);
    free(tmp_vals);
    em_fail(EM_MEMORY_ERROR, "[random] out of memory permuting %lld elements", (long long)n);
    return EM_MEMORY_ERROR;
  }
  for (int64_t i = 0; i < n; i++) out[i] = (int32_t)i;
  int rounds = (int)ceil(3.0 * log(n > 1 ? (double)n : 1.0) / log(4294967295.0));
  uint32_t k[2] = {key[0], key[1]};
  for (int r = 0; r < rounds; r++) {
    uint32_t next0 = 0, next1 = 0, sub[2] = {0, 1};
    threefry_block(k[0], k[1], 1, &next0, &next1);
    threefry_block(k[0], k[1], 1, &sub[0], &sub[1]);
    k[0] = next0;
    k[1] = next1;
    draw_job job = {sub, n, EM_RANDOM_BITS, EM_UINT32, (char*)sort_keys};
    em_parallel_for(n, 16384, pick_draw_range(), &job);
    radix_sort_pairs(n, sort_keys, out, sort_keys + n, tmp_vals);
  }
  free(sort_keys);
  free(tmp_vals);
  return EM_OK;
}

int em_kernel_random(em_array* out) {
  em_array* key = out->inputs[0];
  int64_t nkeys = key->size / 2;
  if (out->size == 0) return em_alloc_output(out);
  /* The workers read keys as contiguous pairs. */
  uint32_t local[64];
  uint32_t* keys = nkeys <= 32 ? local : malloc(sizeof(uint32_t) * 2 * (size_t)nkeys);
  if (!keys) {
    em_fail(EM_MEMORY_ERROR, "[random] out of memory copying %lld keys", (long long)nkeys);
    return EM_MEMORY_ERROR;
  }
  gather_u32(key, keys);
  int status = em_alloc_output(out);
  int64_t per_key = out->size / nkeys;
  if (status == EM_OK && out->ip[0] == EM_RANDOM_PERMUTATION) {
    for (int64_t k = 0; k < nkeys && status == EM_OK; k++)
      status = draw_permutation(keys + 2 * k, per_key, (int32_t*)out->buf->data + k * per_key);
    if (status != EM_OK) {
      em_buffer_release(out->buf);
      out->buf = NULL;
    }
  } else if (status == EM_OK) {
    draw_job job = {keys, per_key, (int)out->ip[0], out->dtype, out->buf->data};
    /* Hashing costs far more than a copy: split work above ~16K elements. */
    em_parallel_for(out->size, 16384, pick_draw_range(), &job);
  }
  if (keys != local) free(keys);
  return status;
}
