/* sort_avx512.c: an AVX-512 quicksort of 32-bit unsigned keys (the value
 * sort of float32, int32 and uint32 after sort.c's order-preserving key
 * transform).
 *
 * A range is split around a pivot (the median of a small sorted sample) by a
 * partition that reads 16 keys at a time and compresses those below the
 * pivot to the left end and the rest to the right end, in place. Ranges of
 * up to 256 keys are sorted in registers by a bitonic network (padded with
 * the largest key, its padding-only registers left out). A pivot equal to
 * the range's smallest key leaves nothing on the left; the range is then
 * split into keys equal to the pivot (done) and larger ones, so runs of equal
 * keys cost one pass. A range that is still split badly after ~2 log2(n)
 * levels goes to the caller's fallback (sort.c's stable radix sort). Keys
 * turn back into values where their places are final (em_vsort_unkey), so
 * the caller needs no pass for it.
 *
 * It also counts, moves and splits keys into buckets between splitters, for
 * sort.c's split of a long line over the threads.
 *
 * Only compiled for AVX-512 functions (attributes, not flags), so the build
 * stays portable; em_vsort_available() says whether the CPU runs them.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "lines.h"

#include "sort_avx512.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,popcnt")))
#define NETWORK_MAX 256   /* 16 registers of 16 keys */
#define ALWAYS_INLINE static inline __attribute__((always_inline)) AVX512

int em_vsort_available(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("popcnt");
}

/* One compare-exchange step inside a register: lane i meets lane i ^ j and
 * takes the larger key where `take_max` is set. Partners within 128 bits
 * come from immediate shuffles (faster than a variable permute). */
ALWAYS_INLINE __m512i exchange(__m512i v, int j, __mmask16 take_max) {
  __m512i partner;
  if (j == 1) partner = _mm512_shuffle_epi32(v, (_MM_PERM_ENUM)0xB1);       /* 1 0 3 2 */
  else if (j == 2) partner = _mm512_shuffle_epi32(v, (_MM_PERM_ENUM)0x4E);  /* 2 3 0 1 */
  else if (j == 4) partner = _mm512_shuffle_i64x2(v, v, 0xB1);
  else partner = _mm512_shuffle_i64x2(v, v, 0x4E);
  __m512i lo = _mm512_min_epu32(v, partner), hi = _mm512_max_epu32(v, partner);
  return _mm512_mask_mov_epi32(lo, take_max, hi);
}

/* The network is written out step by step with literal masks, and each
 * register-level loop is a single loop the compiler unrolls completely:
 * masks computed from the step's numbers, or nested loops left rolled,
 * cost a vptestmd, a broadcast and branches per step, which made the
 * network three times slower than its arithmetic. */

/* Sorts the 16 keys of v ascending (bitonic sort): stages k = 2, 4, 8, 16
 * of steps j = k/2 ... 1. Lane i takes the larger key where bit j of i
 * differs from bit k (ascending and descending blocks of k alternate). */
ALWAYS_INLINE __m512i sort16(__m512i v) {
  v = exchange(v, 1, 0x6666);
  v = exchange(v, 2, 0x3C3C);
  v = exchange(v, 1, 0x5A5A);
  v = exchange(v, 4, 0x0FF0);
  v = exchange(v, 2, 0x33CC);
  v = exchange(v, 1, 0x55AA);
  v = exchange(v, 8, 0xFF00);
  v = exchange(v, 4, 0xF0F0);
  v = exchange(v, 2, 0xCCCC);
  return exchange(v, 1, 0xAAAA);
}

/* Sorts a bitonic register ascending: lane i takes the larger key where
 * bit j of i is set. */
ALWAYS_INLINE __m512i clean16(__m512i v) {
  v = exchange(v, 8, 0xFF00);
  v = exchange(v, 4, 0xF0F0);
  v = exchange(v, 2, 0xCCCC);
  return exchange(v, 1, 0xAAAA);
}

static inline AVX512 __m512i reverse16(__m512i v) {
  const __m512i rev = _mm512_set_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  return _mm512_permutexvar_epi32(rev, v);
}

/* The values of the keys of v (see em_vsort_unkey). */
ALWAYS_INLINE __m512i unkey16(__m512i v, em_vsort_unkey u) {
  __mmask16 top = _mm512_movepi32_mask(v);
  return _mm512_xor_si512(v, _mm512_mask_blend_epi32(top, _mm512_set1_epi32((int)u.top_clear),
                                                     _mm512_set1_epi32((int)u.top_set)));
}

/* The smaller keys of *x and *y lane by lane to *x, the larger to *y. */
ALWAYS_INLINE void order_pair(__m512i* x, __m512i* y) {
  __m512i lo = _mm512_min_epu32(*x, *y);
  *y = _mm512_max_epu32(*x, *y);
  *x = lo;
}

/* Merges the sorted runs r[0, w) and r[w, 2w) into one: reversing the second
 * makes the pair bitonic, the compares leave each half bitonic with every key
 * of the first <= the second's, and halving steps across registers and then
 * within them sort it.
 *
 * Registers from `live` on hold only padding (the largest key) and are left
 * out: every step pairs a register with one at a higher index, and against
 * padding above it the minimum is the register itself and the maximum the
 * padding, so skipping those steps changes nothing. */
ALWAYS_INLINE void merge_runs(__m512i* r, int w, int live) {
  _Pragma("GCC unroll 8") for (int i = 0; i < w; i++) {
    if (2 * w - 1 - i >= live) continue;
    r[2 * w - 1 - i] = reverse16(r[2 * w - 1 - i]);
    order_pair(&r[i], &r[2 * w - 1 - i]);
  }
  _Pragma("GCC unroll 3") for (int d = w / 2; d >= 1; d /= 2) {
    _Pragma("GCC unroll 16") for (int i = 0; i < 2 * w; i++)
      if (!(i & d) && i + d < live) order_pair(&r[i], &r[i + d]);
  }
  _Pragma("GCC unroll 16") for (int i = 0; i < 2 * w; i++)
    if (i < live) r[i] = clean16(r[i]);
}

/* Sorts the keys of r[0, count) (count a power of two up to 16, registers
 * from `live` on all padding) as one ascending sequence: each register
 * sorted, then runs of 1, 2, 4, 8 registers merged pairwise. */
ALWAYS_INLINE void sort_registers(__m512i* r, int count, int live) {
  _Pragma("GCC unroll 16") for (int i = 0; i < live; i++) r[i] = sort16(r[i]);
  _Pragma("GCC unroll 8") for (int b = 0; b + 1 < count; b += 2) merge_runs(r + b, 1, live - b);
  _Pragma("GCC unroll 4") for (int b = 0; b + 3 < count; b += 4) merge_runs(r + b, 2, live - b);
  _Pragma("GCC unroll 2") for (int b = 0; b + 7 < count; b += 8) merge_runs(r + b, 4, live - b);
  if (count == 16) merge_runs(r, 8, live);
}

/* Sorts a[0, n) (n <= 16 live) in the network of `count` registers, of which
 * the first `live` hold the keys (the last padded with the largest key), and
 * stores their values; inlined with constants, so the registers stay
 * registers. */
ALWAYS_INLINE void sort_in(uint32_t* a, int64_t n, int count, int live, em_vsort_unkey u) {
  __m512i r[16];
  const __m512i pad = _mm512_set1_epi32(-1);
  _Pragma("GCC unroll 16") for (int i = 0; i < count; i++) {
    int64_t left = n - 16 * i;
    __mmask16 m = left >= 16 ? 0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
    r[i] = _mm512_mask_loadu_epi32(pad, m, a + 16 * i);
  }
  sort_registers(r, count, live);
  _Pragma("GCC unroll 16") for (int i = 0; i < live; i++) {
    int64_t left = n - 16 * i;
    __mmask16 m = left >= 16 ? 0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
    _mm512_mask_storeu_epi32(a + 16 * i, m, unkey16(r[i], u));
  }
}

/* Sorts a[0, n) for n <= NETWORK_MAX in registers: a short range costs its
 * live registers (in steps of two), not the power of two above them (leaves
 * of the quicksort of 129 to 256 keys are the common case). */
static AVX512 void sort_small(uint32_t* a, int64_t n, em_vsort_unkey u) {
  if (n <= 16) sort_in(a, n, 1, 1, u);
  else if (n <= 32) sort_in(a, n, 2, 2, u);
  else if (n <= 64) sort_in(a, n, 4, 4, u);
  else if (n <= 96) sort_in(a, n, 8, 6, u);
  else if (n <= 128) sort_in(a, n, 8, 8, u);
  else if (n <= 160) sort_in(a, n, 16, 10, u);
  else if (n <= 192) sort_in(a, n, 16, 12, u);
  else if (n <= 224) sort_in(a, n, 16, 14, u);
  else sort_in(a, n, 16, 16, u);
}

/* The lowest `count` lanes, 0 <= count <= 16 (no branch: a partition's
 * counts are unpredictable). */
static inline __mmask16 first_lanes(int count) { return (__mmask16)((1u << count) - 1); }

/* Moves the keys of v that belong left (mask `left`) to a[*wl...] and the
 * others to just below a[*wr], advancing the cursors. Compress-stores to
 * memory are microcoded and slow on some CPUs (AMD Zen 4): each side's keys
 * are compressed in a register. The left ones are stored 16 wide (faster
 * than a masked store; the junk past them is overwritten later), which needs
 * 16 free places there; the right ones by a store masked to their count. */
static inline AVX512 void split_store(uint32_t* a, __m512i v, __mmask16 left, int64_t* wl,
                                      int64_t* wr) {
  __mmask16 right = (__mmask16)~left;
  int nl = __builtin_popcount(left), nr = 16 - nl;
  _mm512_storeu_si512(a + *wl, _mm512_maskz_compress_epi32(left, v));
  *wl += nl;
  *wr -= nr;
  _mm512_mask_storeu_epi32(a + *wr, first_lanes(nr), _mm512_maskz_compress_epi32(right, v));
}

/* As split_store for the lanes in `valid` only, writing no place beyond the
 * keys stored (for the last stores, when the free places may be fewer). */
static inline AVX512 void split_store_exact(uint32_t* a, __m512i v, __mmask16 left,
                                            __mmask16 valid, int64_t* wl, int64_t* wr) {
  __mmask16 right = (__mmask16)(~left & valid);
  left &= valid;
  int nl = __builtin_popcount(left), nr = __builtin_popcount(right);
  _mm512_mask_storeu_epi32(a + *wl, first_lanes(nl), _mm512_maskz_compress_epi32(left, v));
  *wl += nl;
  *wr -= nr;
  _mm512_mask_storeu_epi32(a + *wr, first_lanes(nr), _mm512_maskz_compress_epi32(right, v));
}

static inline AVX512 __mmask16 goes_left(__m512i v, __m512i p, int or_equal) {
  return or_equal ? _mm512_cmple_epu32_mask(v, p) : _mm512_cmplt_epu32_mask(v, p);
}

/* Partitions a[0, n) (n >= 128) in place: the keys below `pivot` (at most
 * pivot with or_equal) first; returns how many. The first and last 64 keys
 * are held in registers, which leaves 128 free places: reading 64 keys from
 * the side with fewer free places keeps at least 64 free on both before the
 * stores (and 16 when reading 16). */
static AVX512 int64_t partition(uint32_t* a, int64_t n, uint32_t pivot, int or_equal) {
  const __m512i p = _mm512_set1_epi32((int)pivot);
  __m512i held[8];
  for (int i = 0; i < 4; i++) {
    held[i] = _mm512_loadu_si512(a + 16 * i);
    held[4 + i] = _mm512_loadu_si512(a + n - 64 + 16 * i);
  }
  int64_t l = 64, r = n - 64, wl = 0, wr = n;
  while (r - l >= 64) {
    const uint32_t* from;
    if (l - wl <= wr - r) {
      from = a + l;
      l += 64;
    } else {
      r -= 64;
      from = a + r;
    }
    __m512i v0 = _mm512_loadu_si512(from), v1 = _mm512_loadu_si512(from + 16);
    __m512i v2 = _mm512_loadu_si512(from + 32), v3 = _mm512_loadu_si512(from + 48);
    split_store(a, v0, goes_left(v0, p, or_equal), &wl, &wr);
    split_store(a, v1, goes_left(v1, p, or_equal), &wl, &wr);
    split_store(a, v2, goes_left(v2, p, or_equal), &wl, &wr);
    split_store(a, v3, goes_left(v3, p, or_equal), &wl, &wr);
  }
  while (r - l >= 16) {
    __m512i v;
    if (l - wl <= wr - r) {
      v = _mm512_loadu_si512(a + l);
      l += 16;
    } else {
      r -= 16;
      v = _mm512_loadu_si512(a + r);
    }
    split_store(a, v, goes_left(v, p, or_equal), &wl, &wr);
  }
  /* the fewer than 16 keys left, then the held registers */
  __mmask16 tail = (__mmask16)((1u << (r - l)) - 1);
  __m512i v = _mm512_maskz_loadu_epi32(tail, a + l);
  split_store_exact(a, v, goes_left(v, p, or_equal), tail, &wl, &wr);
  for (int i = 0; i < 8; i++)
    split_store_exact(a, held[i], goes_left(held[i], p, or_equal), 0xFFFF, &wl, &wr);
  return wl;
}

/* The median of 16 keys spread over a[0, n). */
static AVX512 uint32_t pivot_of(const uint32_t* a, int64_t n) {
  uint32_t s[16];
  for (int i = 0; i < 16; i++) s[i] = a[(n - 1) * (2 * i + 1) / 32];
  __m512i v = sort16(_mm512_loadu_si512(s));
  _mm512_storeu_si512(s, v);
  return s[8];
}

/* The values of the keys of a[0, n), in place. */
static AVX512 void unkey_range(uint32_t* a, int64_t n, em_vsort_unkey u) {
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = first_lanes(n - i < 16 ? (int)(n - i) : 16);
    _mm512_mask_storeu_epi32(a + i, m, unkey16(_mm512_maskz_loadu_epi32(m, a + i), u));
  }
}

typedef struct {
  em_vsort_fallback fallback;
  void* ctx;
  em_vsort_unkey unkey;
} sort_env;

/* The quicksort; returns 0 if the fallback failed (out of memory). Every key
 * turns into its value where its place is final: in a network's stores, in a
 * run of keys equal to the pivot, after the fallback. */
static AVX512 int quicksort(uint32_t* a, int64_t n, int depth, const sort_env* env) {
  while (n > NETWORK_MAX) {
    if (depth-- <= 0) {
      if (!env->fallback(env->ctx, a, n)) return 0;
      unkey_range(a, n, env->unkey);
      return 1;
    }
    uint32_t pivot = pivot_of(a, n);
    int64_t below = partition(a, n, pivot, 0);
    if (below == 0) {
      /* the pivot is the smallest key: its copies are done, the rest remains */
      int64_t equal = partition(a, n, pivot, 1);
      unkey_range(a, equal, env->unkey);
      a += equal;
      n -= equal;
      continue;
    }
    /* recurse on the smaller side, loop on the larger */
    if (below < n - below) {
      if (!quicksort(a, below, depth, env)) return 0;
      a += below;
      n -= below;
    } else {
      if (!quicksort(a + below, n - below, depth, env)) return 0;
      n = below;
    }
  }
  if (n > 1) sort_small(a, n, env->unkey);
  else unkey_range(a, n, env->unkey);
  return 1;
}

/* ---- the buckets of sort.c's long lines ----
 * Bucket b holds the keys x with splitters[b - 1] <= x < splitters[b]. */

/* ge[j]: the lanes of v holding a key >= splitters[j]. */
static inline AVX512 void at_least(__m512i v, const uint32_t* splitters, int nsplit,
                                   __mmask16* ge) {
  for (int j = 0; j < nsplit; j++)
    ge[j] = _mm512_cmpge_epu32_mask(v, _mm512_set1_epi32((int)splitters[j]));
}

/* The lanes in bucket b, from at_least's masks (the splitters ascend, so the
 * masks nest). */
static inline AVX512 __mmask16 in_bucket(const __mmask16* ge, int b, int nsplit) {
  __mmask16 m = b > 0 ? ge[b - 1] : (__mmask16)0xFFFF;
  return b < nsplit ? (__mmask16)(m & ~ge[b]) : m;
}

AVX512 void em_vsort_count(const uint32_t* a, int64_t n, const uint32_t* splitters, int nsplit,
                           int64_t* counts) {
  __mmask16 ge[EM_VSORT_MAX_BUCKETS];
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 valid = first_lanes(n - i < 16 ? (int)(n - i) : 16);
    __m512i v = _mm512_maskz_loadu_epi32(valid, a + i);
    at_least(v, splitters, nsplit, ge);
    for (int b = 0; b <= nsplit; b++)
      counts[b] += __builtin_popcount(in_bucket(ge, b, nsplit) & valid);
  }
}

/* Each bucket's keys are compressed in a register and written with a masked
 * store of exactly their count (compress-stores to memory are slow on some
 * CPUs, and a full store would reach into the stretch of another chunk). */
AVX512 void em_vsort_scatter(const uint32_t* a, int64_t n, const uint32_t* splitters,
                             int nsplit, uint32_t* out, int64_t* cursors) {
  __mmask16 ge[EM_VSORT_MAX_BUCKETS];
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 valid = first_lanes(n - i < 16 ? (int)(n - i) : 16);
    __m512i v = _mm512_maskz_loadu_epi32(valid, a + i);
    at_least(v, splitters, nsplit, ge);
    for (int b = 0; b <= nsplit; b++) {
      __mmask16 m = in_bucket(ge, b, nsplit) & valid;
      int count = __builtin_popcount(m);
      _mm512_mask_storeu_epi32(out + cursors[b], first_lanes(count),
                               _mm512_maskz_compress_epi32(m, v));
      cursors[b] += count;
    }
  }
}

AVX512 void em_vsort_split(const uint32_t* a, int64_t n, uint32_t splitter, uint32_t* out,
                           int64_t* low, int64_t* high) {
  const __m512i p = _mm512_set1_epi32((int)splitter);
  int64_t i = 0;
  /* the places between the cursors are free, and at least 16 until the tail:
   * split_store's full-width store of the smaller keys fits */
  for (; i + 16 <= n; i += 16) {
    __m512i v = _mm512_loadu_si512(a + i);
    split_store(out, v, _mm512_cmplt_epu32_mask(v, p), low, high);
  }
  __mmask16 tail = first_lanes((int)(n - i));
  __m512i v = _mm512_maskz_loadu_epi32(tail, a + i);
  split_store_exact(out, v, _mm512_cmplt_epu32_mask(v, p), tail, low, high);
}

/* A cap on the depth, for tests: random keys never reach the real limit, so
 * without it the fallback would run only on adversarial inputs. */
static _Atomic int depth_cap = 1 << 30;

void em_set_sort_depth_limit(int cap) { atomic_store(&depth_cap, cap < 0 ? 1 << 30 : cap); }

int em_vsort_depth(int64_t n) {
  int depth = 0;
  while (n > 1) {
    n >>= 1;
    depth += 2;
  }
  depth += 4;
  int cap = atomic_load(&depth_cap);
  return depth < cap ? depth : cap;
}

AVX512 int em_vsort32(uint32_t* a, int64_t n, int depth, em_vsort_fallback fallback,
                      void* ctx, em_vsort_unkey unkey) {
  sort_env env = {fallback, ctx, unkey};
  return quicksort(a, n, depth, &env);
}

#else
int em_vsort_available(void) { return 0; }
int em_vsort_depth(int64_t n) { return (int)n; }
static int bucket_of(uint32_t x, const uint32_t* splitters, int nsplit) {
  int b = 0;
  while (b < nsplit && splitters[b] <= x) b++;
  return b;
}
void em_vsort_count(const uint32_t* a, int64_t n, const uint32_t* splitters, int nsplit,
                    int64_t* counts) {
  for (int64_t i = 0; i < n; i++) counts[bucket_of(a[i], splitters, nsplit)]++;
}
void em_vsort_scatter(const uint32_t* a, int64_t n, const uint32_t* splitters, int nsplit,
                      uint32_t* out, int64_t* cursors) {
  for (int64_t i = 0; i < n; i++) out[cursors[bucket_of(a[i], splitters, nsplit)]++] = a[i];
}
void em_vsort_split(const uint32_t* a, int64_t n, uint32_t splitter, uint32_t* out,
                    int64_t* low, int64_t* high) {
  for (int64_t i = 0; i < n; i++) {
    if (a[i] < splitter) out[(*low)++] = a[i];
    else out[--*high] = a[i];
  }
}
int em_vsort32(uint32_t* a, int64_t n, int depth, em_vsort_fallback fallback, void* ctx,
               em_vsort_unkey unkey) {
  (void)depth;
  if (!fallback(ctx, a, n)) return 0;
  for (int64_t i = 0; i < n; i++) a[i] ^= (a[i] >> 31) ? unkey.top_set : unkey.top_clear;
  return 1;
}
#endif
