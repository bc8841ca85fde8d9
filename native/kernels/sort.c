/* sort.c: sort, argsort, partition and argpartition along one axis.
 *
 * Each line is turned into unsigned integer keys whose unsigned order is
 * numpy's order for the dtype: signed integers get their sign bit flipped;
 * floats map sign-magnitude onto a monotone integer and every NaN onto the
 * largest key, so NaNs go last; complex64 is (real key, imaginary key), the
 * lexicographic order numpy uses. Keys of up to 32 bits sort as uint32,
 * wider ones as uint64.
 *
 * SORT and ARGSORT run a merge sort on short lines, an LSD radix sort (a
 * digit that every key shares is skipped) on middling ones, and on lines of
 * 65536 keys and more one pass on the top digit followed by an LSD sort of
 * each bucket in cache, split over the thread pool. All are stable, so
 * argsort is stable. PARTITION and ARGPARTITION run a radix select (top digit
 * first, keeping only kth's digit, ending in a quickselect on the few keys
 * left) on (key, index) pairs, and partition gathers the input's values
 * through those indices, so partition(a) is exactly take_along_axis(a,
 * argpartition(a)): the transform rules rely on it. The index-producing paths
 * treat -0.0 and 0.0 as equal (numpy's order); a real sort may put -0.0
 * before 0.0.
 *
 * On CPUs with AVX-512, SORT of 32-bit keys (float32, int32, uint32) runs the
 * quicksort of sort_avx512.c instead (values only, so stability does not
 * matter); a long line is split by sampled splitters into one bucket per
 * thread, each sorted on its own.
 * EMBER_NO_AVX512_SORT=1 keeps the radix path (tests compare the two).
 *
 * ip: axis (normalized), and kth (normalized) for the partitions. Lines are
 * spread over the thread pool; a long line's passes split over it.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lines.h"
#include "sort_avx512.h"

/* Radix digits: up to 11 bits for long lines, up to 8 where clearing and
 * summing 2048 buckets per pass would cost more than the pass it saves. */
#define WIDE_DIGIT_BELOW 4096
#define HIST_ENTRIES (6 * 2048)   /* 64-bit keys: 6 passes of 11 bits or 8 of 8 */
#define MERGE_BELOW 256           /* shorter lines merge sort instead of radix */
#define INSERTION_RUN 16
#define SELECT_DIRECT 64         /* radix select hands this few keys to quickselect */

/* ---- keys ---- */

/* Key of a float's bits b (sign bit `sign`, +inf bits `inf`, `mask` the
 * width's bits): NaN -> mask, negatives reversed below the positives. */
/* Written without branches so that the loading loops vectorise. */
static inline uint64_t float_key(uint64_t b, uint64_t sign, uint64_t inf, uint64_t mask,
                                 int merge_zeros) {
  uint64_t mag = b & ~sign & mask;
  uint64_t negative = (b & sign) ? mask : 0;
  uint64_t key = (b ^ (negative | sign)) & mask;
  key = merge_zeros && mag == 0 ? sign : key;
  return mag > inf ? mask : key;
}

static inline uint64_t float_unkey(uint64_t k, uint64_t sign, uint64_t mask) {
  return (k & sign) ? (k ^ sign) : (~k & mask);
}

#define F16_KEY(b) (uint32_t)float_key(b, 0x8000u, 0x7C00u, 0xFFFFu, merge_zeros)
#define BF16_KEY(b) (uint32_t)float_key(b, 0x8000u, 0x7F80u, 0xFFFFu, merge_zeros)
/* float32's key in 32-bit arithmetic (the vectorised loads are twice as wide). */
static inline uint32_t f32_key(uint32_t b, int merge_zeros) {
  uint32_t mag = b & 0x7FFFFFFFu;
  uint32_t key = b ^ ((uint32_t)((int32_t)b >> 31) | 0x80000000u);
  key = merge_zeros && mag == 0 ? 0x80000000u : key;
  return mag > 0x7F800000u ? 0xFFFFFFFFu : key;
}

#define F32_KEY(b) f32_key((uint32_t)(b), merge_zeros)
#define F64_KEY(b) float_key(b, 1ull << 63, 0x7FF0000000000000ull, ~0ull, merge_zeros)

/* Bits of the key: 8, 16, 32 or 64. */
static int key_bits(int dtype) {
  switch (dtype) {
    case EM_BOOL: case EM_UINT8: case EM_INT8: return 8;
    case EM_UINT16: case EM_INT16: case EM_FLOAT16: case EM_BFLOAT16: return 16;
    case EM_UINT32: case EM_INT32: case EM_FLOAT32: return 32;
    default: return 64;
  }
}

#define LOAD(T, EXPR)                                    \
  do {                                                   \
    const T* s = (const T*)src;                          \
    if (stride == 1) {                                   \
      for (int64_t i = 0; i < n; i++) {                  \
        T v = s[i];                                      \
        k[i] = (EXPR);                                   \
      }                                                  \
    } else {                                             \
      for (int64_t i = 0; i < n; i++) {                  \
        T v = s[i * stride];                             \
        k[i] = (EXPR);                                   \
      }                                                  \
    }                                                    \
  } while (0)

/* The key loads and value stores of 32-bit keys run once or twice over every
 * long line beside the sort itself: cloned for wider vectors, they take a
 * fraction of SSE2's time. */
#define KEY_CLONES __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))

KEY_CLONES static void load_keys32(uint32_t* k, const char* src, int dtype, int64_t stride,
                                   int64_t n, int merge_zeros) {
  switch (dtype) {
    case EM_BOOL: case EM_UINT8: LOAD(uint8_t, v); break;
    case EM_INT8: LOAD(uint8_t, v ^ 0x80u); break;
    case EM_UINT16: LOAD(uint16_t, v); break;
    case EM_INT16: LOAD(uint16_t, v ^ 0x8000u); break;
    case EM_FLOAT16: LOAD(uint16_t, F16_KEY(v)); break;
    case EM_BFLOAT16: LOAD(uint16_t, BF16_KEY(v)); break;
    case EM_UINT32: LOAD(uint32_t, v); break;
    case EM_INT32: LOAD(uint32_t, v ^ 0x80000000u); break;
    default: LOAD(uint32_t, F32_KEY(v)); break;
  }
}

static void load_keys64(uint64_t* k, const char* src, int dtype, int64_t stride, int64_t n,
                        int merge_zeros) {
  switch (dtype) {
    case EM_UINT64: LOAD(uint64_t, v); break;
    case EM_INT64: LOAD(uint64_t, v ^ (1ull << 63)); break;
    case EM_FLOAT64: LOAD(uint64_t, F64_KEY(v)); break;
    default: /* complex64: real part's key above the imaginary part's */
      LOAD(uint64_t, (uint64_t)F32_KEY((uint32_t)v) << 32 | F32_KEY((uint32_t)(v >> 32)));
      break;
  }
}

#define STORE(T, EXPR)                                   \
  do {                                                   \
    T* d = (T*)dst;                                      \
    if (stride == 1) {                                   \
      for (int64_t i = 0; i < n; i++) {                  \
        uint64_t v = k[i];                               \
        d[i] = (T)(EXPR);                                \
      }                                                  \
    } else {                                             \
      for (int64_t i = 0; i < n; i++) {                  \
        uint64_t v = k[i];                               \
        d[i * stride] = (T)(EXPR);                       \
      }                                                  \
    }                                                    \
  } while (0)

/* The values of sorted keys (the inverse of load_keys*; complex64 sorts
 * through indices instead). */
KEY_CLONES static void store_values32(char* dst, int dtype, int64_t stride, const uint32_t* k,
                                      int64_t n) {
  switch (dtype) {
    case EM_BOOL: case EM_UINT8: STORE(uint8_t, v); break;
    case EM_INT8: STORE(uint8_t, v ^ 0x80u); break;
    case EM_UINT16: STORE(uint16_t, v); break;
    case EM_INT16: STORE(uint16_t, v ^ 0x8000u); break;
    case EM_FLOAT16: case EM_BFLOAT16: STORE(uint16_t, float_unkey(v, 0x8000u, 0xFFFFu)); break;
    case EM_UINT32: STORE(uint32_t, v); break;
    case EM_INT32: STORE(uint32_t, v ^ 0x80000000u); break;
    default: STORE(uint32_t, float_unkey(v, 0x80000000u, 0xFFFFFFFFu)); break;
  }
}

static void store_values64(char* dst, int dtype, int64_t stride, const uint64_t* k, int64_t n) {
  switch (dtype) {
    case EM_UINT64: STORE(uint64_t, v); break;
    case EM_INT64: STORE(uint64_t, v ^ (1ull << 63)); break;
    default: STORE(uint64_t, float_unkey(v, 1ull << 63, ~0ull)); break; /* float64 */
  }
}

/* ---- sorting keys (with their indices when ix is set) ---- */

#define SWAP_PAIR(K, k, ix, x, y)                                        \
  do {                                                                   \
    K tk_ = k[x]; k[x] = k[y]; k[y] = tk_;                               \
    uint32_t ti_ = ix[x]; ix[x] = ix[y]; ix[y] = ti_;                    \
  } while (0)

#define COUNT_PASSES(P)                                                        \
  for (int64_t i = 0; i < n; i++) {                                            \
    uint64_t x_ = k[i];                                                        \
    for (int p = 0; p < (P); p++)                                              \
      hist[p * buckets + ((x_ >> (p * digit_bits)) & (buckets - 1))]++;        \
  }

#define SORT_FNS(W, K)                                                                     \
  static void insertion_sort##W(K* k, uint32_t* ix, int64_t n) {                           \
    for (int64_t i = 1; i < n; i++) {                                                      \
      K key = k[i];                                                                        \
      uint32_t id = ix ? ix[i] : 0;                                                        \
      int64_t j = i;                                                                       \
      for (; j > 0 && k[j - 1] > key; j--) {                                               \
        k[j] = k[j - 1];                                                                   \
        if (ix) ix[j] = ix[j - 1];                                                         \
      }                                                                                    \
      k[j] = key;                                                                          \
      if (ix) ix[j] = id;                                                                  \
    }                                                                                      \
  }                                                                                        \
                                                                                           \
  /* Bottom-up stable merge sort; kt/ixt are scratch of n entries. */                      \
  static void merge_sort##W(K* k, uint32_t* ix, K* kt, uint32_t* ixt, int64_t n) {         \
    for (int64_t s = 0; s < n; s += INSERTION_RUN)                                         \
      insertion_sort##W(k + s, ix ? ix + s : NULL,                                         \
                        n - s < INSERTION_RUN ? n - s : INSERTION_RUN);                    \
    K *a = k, *b = kt;                                                                     \
    uint32_t *ia = ix, *ib = ixt;                                                          \
    for (int64_t w = INSERTION_RUN; w < n; w *= 2) {                                       \
      for (int64_t lo = 0; lo < n; lo += 2 * w) {                                          \
        int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;       \
        int64_t i = lo, j = mid, o = lo;                                                   \
        while (i < mid && j < hi) {                                                        \
          int64_t from = a[j] < a[i] ? j++ : i++;                                          \
          b[o] = a[from];                                                                  \
          if (ix) ib[o] = ia[from];                                                        \
          o++;                                                                             \
        }                                                                                  \
        for (; i < mid; i++, o++) { b[o] = a[i]; if (ix) ib[o] = ia[i]; }                  \
        for (; j < hi; j++, o++) { b[o] = a[j]; if (ix) ib[o] = ia[j]; }                   \
      }                                                                                    \
      K* t = a; a = b; b = t;                                                              \
      uint32_t* it = ia; ia = ib; ib = it;                                                 \
    }                                                                                      \
    if (a != k) {                                                                          \
      memcpy(k, a, sizeof(K) * (size_t)n);                                                 \
      if (ix) memcpy(ix, ia, sizeof(uint32_t) * (size_t)n);                                \
    }                                                                                      \
  }                                                                                        \
                                                                                           \
  /* Adds the counts of the digit at `shift` of a[lo, hi) to h. */                        \
  static void count_digit##W(const K* a, int64_t lo, int64_t hi, int shift, K mask,        \
                             uint32_t* h) {                                                \
    for (int64_t i = lo; i < hi; i++) h[(a[i] >> shift) & mask]++;                         \
  }                                                                                        \
                                                                                           \
  /* Moves a[lo, hi) (and ia's entries with them) to b at the positions h holds for        \
   * their digit, advancing them: one stable pass of a radix sort. */                      \
  static void scatter_digit##W(const K* a, const uint32_t* ia, int64_t lo, int64_t hi,     \
                               int shift, K mask, uint32_t* h, K* b, uint32_t* ib) {       \
    if (ia) {                                                                              \
      for (int64_t i = lo; i < hi; i++) {                                                  \
        K x = a[i];                                                                        \
        uint32_t pos = h[(x >> shift) & mask]++;                                           \
        b[pos] = x;                                                                        \
        ib[pos] = ia[i];                                                                   \
      }                                                                                    \
    } else {                                                                               \
      for (int64_t i = lo; i < hi; i++) {                                                  \
        K x = a[i];                                                                        \
        b[h[(x >> shift) & mask]++] = x;                                                   \
      }                                                                                    \
    }                                                                                      \
  }                                                                                        \
                                                                                           \
  /* LSD radix sort over the low `bits` bits; hist holds HIST_ENTRIES. */                  \
  static void radix_sort##W(K* k, uint32_t* ix, K* kt, uint32_t* ixt, int64_t n, int bits, \
                            uint32_t* hist) {                                              \
    const int widest = n < WIDE_DIGIT_BELOW ? 8 : 11;                                      \
    int passes = (bits + widest - 1) / widest;                                             \
    const int digit_bits = (bits + passes - 1) / passes; /* 16 bits: 8 + 8, not 11 + 5 */ \
    const int buckets = 1 << digit_bits;                                                   \
    memset(hist, 0, sizeof(uint32_t) * (size_t)buckets * (size_t)passes);                  \
    /* Digit counts do not depend on the order: one read counts every pass (a     \
     * constant number of passes per loop lets the compiler unroll it). */              \
    switch (passes) {                                                                      \
      case 1: COUNT_PASSES(1); break;                                                      \
      case 2: COUNT_PASSES(2); break;                                                      \
      case 3: COUNT_PASSES(3); break;                                                      \
      case 4: COUNT_PASSES(4); break;                                                      \
      default: COUNT_PASSES(passes);                                                       \
    }                                                                                      \
    K *a = k, *b = kt;                                                                     \
    uint32_t *ia = ix, *ib = ix ? ixt : NULL;                                              \
    for (int p = 0; p < passes; p++) {                                                     \
      uint32_t* h = hist + p * buckets;                                                    \
      int shift = p * digit_bits;                                                          \
      if (h[(a[0] >> shift) & (buckets - 1)] == (uint32_t)n) continue;                     \
      uint32_t sum = 0;                                                                    \
      for (int d = 0; d < buckets; d++) {                                                  \
        uint32_t c = h[d];                                                                 \
        h[d] = sum;                                                                        \
        sum += c;                                                                          \
      }                                                                                    \
      scatter_digit##W(a, ia, 0, n, shift, (K)(buckets - 1), h, b, ib);                    \
      K* t = a; a = b; b = t;                                                              \
      uint32_t* it = ia; ia = ib; ib = it;                                                 \
    }                                                                                      \
    if (a != k) {                                                                          \
      memcpy(k, a, sizeof(K) * (size_t)n);                                                 \
      if (ix) memcpy(ix, ia, sizeof(uint32_t) * (size_t)n);                                \
    }                                                                                      \
  }                                                                                        \
                                                                                           \
  /* Quickselect with a three-way split (many equal keys stay linear); after it        \
   * k[kth] is in its sorted place with no larger key before it and no smaller          \
   * after. Pathological inputs fall back to sorting the remaining range. */              \
  static void select##W(K* k, uint32_t* ix, K* kt, uint32_t* ixt, int64_t n, int64_t kth) { \
    int64_t lo = 0, hi = n;                                                                \
    for (int rounds = 0; hi - lo > INSERTION_RUN; rounds++) {                              \
      if (rounds > 64) {                                                                   \
        merge_sort##W(k + lo, ix + lo, kt, ixt, hi - lo);                                  \
        return;                                                                            \
      }                                                                                    \
      K a = k[lo], b = k[lo + (hi - lo) / 2], c = k[hi - 1];                               \
      K p = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));         \
      int64_t lt = lo, i = lo, gt = hi;                                                    \
      while (i < gt) {                                                                     \
        if (k[i] < p) {                                                                    \
          SWAP_PAIR(K, k, ix, lt, i);                                                      \
          lt++;                                                                            \
          i++;                                                                             \
        } else if (k[i] > p) {                                                             \
          gt--;                                                                            \
          SWAP_PAIR(K, k, ix, i, gt);                                                      \
        } else {                                                                           \
          i++;                                                                             \
        }                                                                                  \
      }                                                                                    \
      if (kth < lt) hi = lt;                                                               \
      else if (kth >= gt) lo = gt;                                                         \
      else return;                                                                         \
    }                                                                                      \
    insertion_sort##W(k + lo, ix + lo, hi - lo);                                           \
  }                                                                                        \
                                                                                           \
  /* Stable sort of k (and ix) on the low `bits` bits (higher bits are equal). */          \
  static void sort_keys##W(K* k, uint32_t* ix, K* kt, uint32_t* ixt, int64_t n, int bits,  \
                           uint32_t* hist) {                                               \
    if (n < 2 || bits == 0) return;                                                        \
    if (n < MERGE_BELOW) merge_sort##W(k, ix, kt, ixt, n);                                 \
    else radix_sort##W(k, ix, kt, ixt, n, bits, hist);                                     \
  }                                                                                        \
                                                                                           \
  /* Radix select: perm (n entries) receives a partition of the line's indices      \
   * around kth. Each level counts one digit (top digit first) of the keys still in  \
   * play, finds the digit of the kth smallest, writes the indices of smaller and    \
   * larger digits to their final sides of perm, and keeps only kth's digit (keys    \
   * in k, indices in kix, compacted in place). A few keys left get a quickselect;   \
   * every step is a function of the keys alone, so partition and argpartition       \
   * agree. With `identity` set, kix is not filled yet: the index of k[i] is i. */    \
  static void radix_select##W(K* k, uint32_t* kix, int identity, K* kt, uint32_t* ixt,     \
                              uint32_t* perm, int64_t n, int64_t kth, int bits,            \
                              uint32_t* hist) {                                            \
    const int digit_bits = n < WIDE_DIGIT_BELOW ? 8 : 11;                                  \
    const K mask = (K)((1u << digit_bits) - 1);                                            \
    int64_t m = n, base = 0;                                                               \
    for (int shift = bits - digit_bits; m > SELECT_DIRECT; shift -= digit_bits) {         \
      if (shift < 0) shift = 0;                                                            \
      memset(hist, 0, sizeof(uint32_t) << digit_bits);                                     \
      for (int64_t i = 0; i < m; i++) hist[(k[i] >> shift) & mask]++;                      \
      int64_t below = 0;                                                                   \
      uint32_t digit = 0;                                                                  \
      while (below + hist[digit] <= kth) below += hist[digit++];                           \
      int64_t count = hist[digit];                                                         \
      if (count < m) {                                                                     \
        /* where the next smaller digit, kth's digit and larger digit go in perm */        \
        int64_t smaller = base, kept_at = base + below, larger = base + below + count;     \
        int64_t kept = 0;                                                                  \
        for (int64_t i = 0; i < m; i++) {                                                  \
          K x = k[i];                                                                      \
          uint32_t id = identity ? (uint32_t)i : kix[i];                                   \
          uint32_t d = (uint32_t)((x >> shift) & mask);                                    \
          int64_t less = d < digit, more = d > digit, same = !(less | more);               \
          int64_t to_less = -less, to_more = -more; /* masks: no branch to mispredict */   \
          perm[(smaller & to_less) | (larger & to_more) | (kept_at & ~(to_less | to_more))] = id; \
          smaller += less;                                                                 \
          larger += more;                                                                  \
          kept_at += same;                                                                 \
          k[kept] = x;                                                                     \
          kix[kept] = id;                                                                  \
          kept += same;                                                                    \
        }                                                                                  \
        identity = 0;                                                                      \
        base += below;                                                                     \
        kth -= below;                                                                      \
        m = count;                                                                         \
      }                                                                                    \
      if (shift == 0) break;                                                               \
    }                                                                                      \
    if (identity)                                                                          \
      for (int64_t i = 0; i < m; i++) kix[i] = (uint32_t)i;                                \
    select##W(k, kix, kt, ixt, m, kth);                                                    \
    memcpy(perm + base, kix, sizeof(uint32_t) * (size_t)m);                                \
  }

SORT_FNS(32, uint32_t)
SORT_FNS(64, uint64_t)

/* ---- the kernel ---- */

#define GATHER(T)                                                                   \
  for (int64_t i = 0; i < n; i++) ((T*)dst)[i * sout] = ((const T*)src)[(int64_t)ix[i] * sin]; \
  break

/* dst[i] = src[ix[i]] for elements of isz bytes. */
static void gather(char* dst, int64_t sout, const char* src, int64_t sin, const uint32_t* ix,
                   int64_t n, int isz) {
  switch (isz) {
    case 1: GATHER(uint8_t);
    case 2: GATHER(uint16_t);
    case 4: GATHER(uint32_t);
    default: GATHER(uint64_t);
  }
}

typedef struct {
  em_lines lines;
  int prim, dtype, isz, wide, bits;
  int64_t n, kth, sin, sout;
  const char* in;
  char* out;
  atomic_int out_of_memory;
} sort_job;

/* ---- the AVX-512 quicksort for value sorts of 32-bit keys ----
 *
 * The order of keys is the order of values, so any correct sort of the keys
 * gives the stable sort's values; only SORT uses it (ARGSORT stays stable). */

static int vsort_cpu = -1;  /* set by em_kernel_sort before any line runs */

static int vsort_applies(const sort_job* job) {
  return vsort_cpu > 0 && job->prim == EM_P_SORT && job->bits == 32;
}

typedef struct {
  uint32_t *spare, *hist;   /* scratch for the radix fallback, or NULL to allocate */
} vsort_scratch;

static int vsort_fallback(void* ctx, uint32_t* a, int64_t n) {
  vsort_scratch* s = ctx;
  if (s->spare) {
    sort_keys32(a, NULL, s->spare, NULL, n, 32, s->hist);
    return 1;
  }
  uint32_t* mem = malloc(((size_t)n + HIST_ENTRIES) * sizeof(uint32_t));
  if (!mem) return 0;
  sort_keys32(a, NULL, mem, NULL, n, 32, mem + n);
  free(mem);
  return 1;
}

static const em_vsort_unkey KEEP_KEYS = {0, 0};

/* The xors that turn the quicksort's keys of dtype (float32, int32 or
 * uint32) back into values, as store_values32 does. */
static em_vsort_unkey unkey_of(int dtype) {
  switch (dtype) {
    case EM_FLOAT32: return (em_vsort_unkey){0x80000000u, 0xFFFFFFFFu};
    case EM_INT32: return (em_vsort_unkey){0x80000000u, 0x80000000u};
    default: return KEEP_KEYS;
  }
}

/* Sorts k[0, n) with kt (n keys) and hist as the fallback's scratch. */
static void vsort_line(uint32_t* k, int64_t n, uint32_t* kt, uint32_t* hist) {
  vsort_scratch s = {kt, hist};
  em_vsort32(k, n, em_vsort_depth(n), vsort_fallback, &s, KEEP_KEYS);
}

/* One line; k and kt hold n keys, ix, ixt and ix3 n indices, hist HIST_ENTRIES. */
static void sort_line(const sort_job* job, const char* src, char* dst, void* k, void* kt,
                      uint32_t* ix, uint32_t* ixt, uint32_t* ix3, uint32_t* hist) {
  int64_t n = job->n;
  int prim = job->prim;
  /* A complex sort goes through indices: its keys merge -0.0 and 0.0 (a tie
   * on the real part must fall through to the imaginary part), so they would
   * lose the sign of zero. */
  int gathers = prim == EM_P_PARTITION || (prim == EM_P_SORT && job->dtype == EM_COMPLEX64);
  int wants_index = prim != EM_P_SORT || gathers;
  int merge_zeros = wants_index;
  if (job->wide) load_keys64(k, src, job->dtype, job->sin, n, merge_zeros);
  else load_keys32(k, src, job->dtype, job->sin, n, merge_zeros);
  if (prim == EM_P_PARTITION || prim == EM_P_ARGPARTITION) {
    if (job->wide) radix_select64(k, ixt, 1, kt, ix3, ix, n, job->kth, job->bits, hist);
    else radix_select32(k, ixt, 1, kt, ix3, ix, n, job->kth, job->bits, hist);
  } else {
    uint32_t* order = wants_index ? ix : NULL;
    if (order)
      for (int64_t i = 0; i < n; i++) ix[i] = (uint32_t)i;
    if (job->wide) sort_keys64(k, order, kt, ixt, n, job->bits, hist);
    else if (vsort_applies(job)) vsort_line(k, n, kt, hist);
    else sort_keys32(k, order, kt, ixt, n, job->bits, hist);
  }
  if (gathers) {
    gather(dst, job->sout, src, job->sin, ix, n, job->isz);
  } else if (prim == EM_P_SORT) {
    if (job->wide) store_values64(dst, job->dtype, job->sout, k, n);
    else store_values32(dst, job->dtype, job->sout, k, n);
  } else {
    uint32_t* d = (uint32_t*)dst;
    for (int64_t i = 0; i < n; i++) d[i * job->sout] = ix[i];
  }
}

static void sort_range(void* ctx, int64_t lo, int64_t hi) {
  sort_job* job = ctx;
  size_t ksz = job->wide ? 8 : 4, n = (size_t)job->n;
  /* One allocation per slice: keys, scratch keys, indices, scratch indices, histograms. */
  char* mem = malloc(2 * n * ksz + 3 * n * sizeof(uint32_t) + HIST_ENTRIES * sizeof(uint32_t));
  if (!mem) {
    atomic_store(&job->out_of_memory, 1);
    return;
  }
  void* k = mem;
  void* kt = mem + n * ksz;
  uint32_t* ix = (uint32_t*)(mem + 2 * n * ksz);
  uint32_t* ixt = ix + n;
  uint32_t* ix3 = ixt + n;
  uint32_t* hist = ix3 + n;
  int out_isz = em_dtype_size(job->prim == EM_P_SORT || job->prim == EM_P_PARTITION
                                  ? job->dtype : EM_UINT32);
  for (int64_t r = lo; r < hi; r++) {
    int64_t io, oo;
    em_line_offsets(&job->lines, r, &io, &oo);
    sort_line(job, job->in + io * job->isz, job->out + oo * out_isz, k, kt, ix, ixt, ix3, hist);
  }
  free(mem);
}

/* ---- long lines: one pass on the top digit, then buckets in cache ----
 *
 * A long line's keys, less the smallest one (so only the bits that vary
 * count), are scattered by their top MSD_BITS bits, chunk by chunk over the
 * pool: each chunk counts its digits, a prefix sum in (digit, chunk) order
 * gives every chunk its positions, and chunk order within a digit keeps the
 * sort stable. Each bucket is then short enough to sort in cache on the bits
 * below the digit, and the pool shares the buckets out by element count.
 * Against an LSD sort of the whole line this reads and writes main memory
 * about half as often. */

#define MSD_LINE_MIN 65536
#define MSD_BITS 11
#define MSD_BUCKETS (1 << MSD_BITS)
#define MSD_CHUNK_MIN 32768   /* shorter chunks cost more to wake than they save */
#define MAX_CHUNKS 64

enum { MSD_LOAD, MSD_COUNT, MSD_SCATTER, MSD_FINISH };

typedef struct {
  const sort_job* job;
  const char* src;
  char* dst;
  int64_t chunks;
  int step, shift;                       /* the digit is (key - lowest) >> shift */
  uint64_t lowest;
  uint64_t low[MAX_CHUNKS], high[MAX_CHUNKS];  /* each chunk's smallest and largest key */
  void *keys, *moved;                    /* keys as loaded; after the digit pass */
  uint32_t *index, *scratch;             /* argsort: indices after the digit pass; scratch */
  uint32_t* hist;                        /* chunks x MSD_BUCKETS counts, then positions */
  uint32_t* bucket_hist;                 /* chunks x HIST_ENTRIES for the bucket sorts */
  int64_t starts[MSD_BUCKETS + 1];       /* where each bucket begins */
  int first_bucket[MAX_CHUNKS + 1];      /* the buckets chunk c finishes */
} msd_job;

#define MSD_FNS(W, K)                                                                      \
  static void msd_load##W(msd_job* s, int64_t c, int64_t from, int64_t to) {               \
    const sort_job* job = s->job;                                                          \
    K* k = (K*)s->keys;                                                                    \
    uint32_t* h = s->hist + c * MSD_BUCKETS;                                               \
    int shift = job->bits > MSD_BITS ? job->bits - MSD_BITS : 0;                           \
    memset(h, 0, sizeof(uint32_t) * MSD_BUCKETS);                                          \
    K lo = ~(K)0, hi = 0;                                                                  \
    /* In blocks, so that the extremes and the top digit's counts (which serve    \
     * when the keys span every bit) read keys still in cache. */                    \
    for (int64_t b = from; b < to; b += 4096) {                                            \
      int64_t e = b + 4096 < to ? b + 4096 : to;                                           \
      load_keys##W(k + b, s->src + b * job->sin * job->isz, job->dtype, job->sin, e - b,   \
                   job->prim != EM_P_SORT);                                                \
      for (int64_t i = b; i < e; i++) {                                                    \
        lo = k[i] < lo ? k[i] : lo;                                                        \
        hi = k[i] > hi ? k[i] : hi;                                                        \
      }                                                                                    \
      for (int64_t i = b; i < e; i++) h[k[i] >> shift]++;                                  \
    }                                                                                      \
    s->low[c] = lo;                                                                        \
    s->high[c] = hi;                                                                       \
  }                                                                                        \
                                                                                           \
  static void msd_count##W(msd_job* s, int64_t c, int64_t from, int64_t to) {              \
    const K* k = (const K*)s->keys;                                                        \
    K lowest = (K)s->lowest;                                                               \
    int shift = s->shift;                                                                  \
    uint32_t* h = s->hist + c * MSD_BUCKETS;                                               \
    memset(h, 0, sizeof(uint32_t) * MSD_BUCKETS);                                          \
    for (int64_t i = from; i < to; i++) h[(K)(k[i] - lowest) >> shift]++;                  \
  }                                                                                        \
                                                                                           \
  static void msd_scatter##W(msd_job* s, int64_t c, int64_t from, int64_t to) {            \
    const K* k = (const K*)s->keys;                                                        \
    K* moved = (K*)s->moved;                                                               \
    K lowest = (K)s->lowest;                                                               \
    int shift = s->shift;                                                                  \
    uint32_t* h = s->hist + c * MSD_BUCKETS;                                               \
    if (s->index) {                                                                        \
      for (int64_t i = from; i < to; i++) {                                                \
        K x = (K)(k[i] - lowest);                                                          \
        uint32_t pos = h[x >> shift]++;                                                    \
        moved[pos] = x;                                                                    \
        s->index[pos] = (uint32_t)i;                                                       \
      }                                                                                    \
    } else {                                                                               \
      for (int64_t i = from; i < to; i++) {                                                \
        K x = (K)(k[i] - lowest);                                                          \
        moved[h[x >> shift]++] = x;                                                        \
      }                                                                                    \
    }                                                                                      \
  }                                                                                        \
                                                                                           \
  /* Sorts chunk c's buckets and writes them out. */                                      \
  static void msd_finish##W(msd_job* s, int64_t c) {                                       \
    const sort_job* job = s->job;                                                          \
    K* moved = (K*)s->moved;                                                               \
    K* spare = (K*)s->keys;                                                                \
    uint32_t* bh = s->bucket_hist + c * HIST_ENTRIES;                                      \
    for (int d = s->first_bucket[c]; d < s->first_bucket[c + 1]; d++) {                    \
      int64_t lo = s->starts[d], len = s->starts[d + 1] - lo;                              \
      sort_keys##W(moved + lo, s->index ? s->index + lo : NULL, spare + lo,                \
                   s->index ? s->scratch + lo : NULL, len, s->shift, bh);                  \
    }                                                                                      \
    int64_t from = s->starts[s->first_bucket[c]], to = s->starts[s->first_bucket[c + 1]];  \
    if (job->prim == EM_P_SORT) {                                                          \
      K lowest = (K)s->lowest;                                                             \
      for (int64_t i = from; i < to; i++) moved[i] += lowest;                              \
      store_values##W(s->dst + from * job->sout * job->isz, job->dtype, job->sout,         \
                      moved + from, to - from);                                            \
    } else {                                                                               \
      uint32_t* d = (uint32_t*)s->dst;                                                     \
      for (int64_t i = from; i < to; i++) d[i * job->sout] = s->index[i];                  \
    }                                                                                      \
  }

MSD_FNS(32, uint32_t)
MSD_FNS(64, uint64_t)

static void msd_range(void* ctx, int64_t lo, int64_t hi) {
  msd_job* s = ctx;
  int64_t n = s->job->n;
  int wide = s->job->wide;
  for (int64_t c = lo; c < hi; c++) {
    int64_t from = n * c / s->chunks, to = n * (c + 1) / s->chunks;
    switch (s->step) {
      case MSD_LOAD: wide ? msd_load64(s, c, from, to) : msd_load32(s, c, from, to); break;
      case MSD_COUNT: wide ? msd_count64(s, c, from, to) : msd_count32(s, c, from, to); break;
      case MSD_SCATTER: wide ? msd_scatter64(s, c, from, to) : msd_scatter32(s, c, from, to); break;
      default: wide ? msd_finish64(s, c) : msd_finish32(s, c);
    }
  }
}

/* Sorts (SORT of a real dtype, or ARGSORT) one line; 0 when out of memory. */
static int msd_sort_line(const sort_job* job, const char* src, char* dst) {
  msd_job* s = calloc(1, sizeof(msd_job));
  if (!s) return 0;
  size_t ksz = job->wide ? 8 : 4, n = (size_t)job->n;
  int indexed = job->prim == EM_P_ARGSORT;
  int64_t chunks = job->n / MSD_CHUNK_MIN;
  if (chunks > em_num_threads()) chunks = em_num_threads();
  if (chunks > MAX_CHUNKS) chunks = MAX_CHUNKS;
  s->chunks = chunks < 1 ? 1 : chunks;
  s->job = job;
  s->src = src;
  s->dst = dst;
  size_t index_bytes = indexed ? 2 * n * sizeof(uint32_t) : 0;
  char* mem = malloc(2 * n * ksz + index_bytes +
                     (size_t)s->chunks * (MSD_BUCKETS + HIST_ENTRIES) * sizeof(uint32_t));
  if (!mem) {
    free(s);
    return 0;
  }
  s->keys = mem;
  s->moved = mem + n * ksz;
  s->index = indexed ? (uint32_t*)(mem + 2 * n * ksz) : NULL;
  s->scratch = indexed ? s->index + n : NULL;
  s->hist = (uint32_t*)(mem + 2 * n * ksz + index_bytes);
  s->bucket_hist = s->hist + s->chunks * MSD_BUCKETS;

  s->step = MSD_LOAD;
  em_parallel_for(s->chunks, 1, msd_range, s);
  uint64_t lowest = s->low[0], highest = s->high[0];
  for (int64_t c = 1; c < s->chunks; c++) {
    lowest = s->low[c] < lowest ? s->low[c] : lowest;
    highest = s->high[c] > highest ? s->high[c] : highest;
  }
  int range_bits = highest > lowest ? 64 - __builtin_clzll(highest - lowest) : 0;
  s->shift = range_bits > MSD_BITS ? range_bits - MSD_BITS : 0;
  if (range_bits == job->bits && range_bits > MSD_BITS) {
    /* The load counted the top digit: subtracting lowest with the bits below
     * the digit cleared moves every digit down by lowest's. */
    int offset = (int)(lowest >> s->shift);
    s->lowest = lowest >> s->shift << s->shift;
    for (int64_t c = 0; c < s->chunks; c++) {
      uint32_t* h = s->hist + c * MSD_BUCKETS;
      memmove(h, h + offset, sizeof(uint32_t) * (size_t)(MSD_BUCKETS - offset));
      memset(h + MSD_BUCKETS - offset, 0, sizeof(uint32_t) * (size_t)offset);
    }
  } else {
    s->lowest = lowest;
    s->step = MSD_COUNT;
    em_parallel_for(s->chunks, 1, msd_range, s);
  }
  uint32_t sum = 0;
  for (int d = 0; d < MSD_BUCKETS; d++) {
    s->starts[d] = sum;
    for (int64_t c = 0; c < s->chunks; c++) {
      uint32_t count = s->hist[c * MSD_BUCKETS + d];
      s->hist[c * MSD_BUCKETS + d] = sum;
      sum += count;
    }
  }
  s->starts[MSD_BUCKETS] = job->n;
  s->step = MSD_SCATTER;
  em_parallel_for(s->chunks, 1, msd_range, s);

  /* Chunk c finishes the buckets from the one holding element n*c/chunks on. */
  int d = 0;
  for (int64_t c = 0; c < s->chunks; c++) {
    while (d < MSD_BUCKETS && s->starts[d] < job->n * c / s->chunks) d++;
    s->first_bucket[c] = c == 0 ? 0 : d;
  }
  s->first_bucket[s->chunks] = MSD_BUCKETS;
  s->step = MSD_FINISH;
  em_parallel_for(s->chunks, 1, msd_range, s);
  free(mem);
  free(s);
  return 1;
}

/* ---- long lines for the AVX-512 quicksort ----
 *
 * A sorted sample of the line gives tasks - 1 splitters that cut its keys
 * into buckets of about n / tasks. Over the pool, each chunk of the line
 * counts its keys per bucket, then moves them from the input straight to its
 * stretch of each bucket (in the output itself when it is contiguous); each
 * task then sorts one bucket and stores its values. Every pass over the line
 * splits over the threads: a partition on the calling thread would keep the
 * other cores idle for a pass or two.
 *
 * Two buckets need no count: each half of the line moves its smaller keys to
 * the bottom of its own stretch and the others to the top, and swapping the
 * larger keys of the first half with the smaller ones of the second (a
 * quarter of the line) joins them. When the machine is busy and both threads
 * share one core, the count's pass over the input was the dearest part. */

#define VSORT_SAMPLE 1024  /* splitters within ~2% of their ideal ranks */
#define VSORT_BLOCK 4096   /* keys loaded at a time, counted or moved while in cache */

enum { VSORT_COUNT, VSORT_MOVE, VSORT_HALVE, VSORT_SWAP, VSORT_SORT };
_Static_assert(MAX_CHUNKS <= EM_VSORT_MAX_BUCKETS, "a bucket per chunk");

typedef struct {
  const sort_job* job;
  const char* src;
  char* dst;
  uint32_t* keys;
  int64_t tasks;                            /* chunks of the line, and buckets */
  int step;
  uint32_t splitters[MAX_CHUNKS];           /* tasks - 1, ascending */
  int64_t counts[MAX_CHUNKS][MAX_CHUNKS];   /* [chunk][bucket] */
  int64_t cursor[MAX_CHUNKS][MAX_CHUNKS];   /* where chunk c's next key of bucket b goes */
  int64_t bucket_lo[MAX_CHUNKS + 1];        /* bucket b is keys[bucket_lo[b], bucket_lo[b + 1]) */
  int64_t swap_a, swap_b, swaps;            /* VSORT_SWAP: keys[swap_a + i] <-> keys[swap_b + i] */
  atomic_int out_of_memory;
} vsort_job;

/* Counts (VSORT_COUNT) or moves (VSORT_MOVE) the keys of chunk c by bucket,
 * or splits them within the chunk's own stretch (VSORT_HALVE, two chunks;
 * counts[c][0] gets the number of smaller keys), loading them a block at a
 * time. */
static void vsort_chunk(vsort_job* s, int64_t c) {
  const sort_job* job = s->job;
  int nsplit = (int)s->tasks - 1;
  uint32_t block[VSORT_BLOCK];
  int64_t from = job->n * c / s->tasks, to = job->n * (c + 1) / s->tasks;
  int64_t low = from, high = to;  /* VSORT_HALVE's cursors */
  if (s->step == VSORT_MOVE && nsplit == 0) {  /* one bucket: the keys load in place */
    load_keys32(s->keys + from, s->src + from * job->sin * job->isz, job->dtype, job->sin,
                to - from, 0);
    return;
  }
  for (int64_t lo = from; lo < to; lo += VSORT_BLOCK) {
    int64_t len = to - lo < VSORT_BLOCK ? to - lo : VSORT_BLOCK;
    load_keys32(block, s->src + lo * job->sin * job->isz, job->dtype, job->sin, len, 0);
    if (s->step == VSORT_COUNT) em_vsort_count(block, len, s->splitters, nsplit, s->counts[c]);
    else if (s->step == VSORT_MOVE) em_vsort_scatter(block, len, s->splitters, nsplit, s->keys,
                                                     s->cursor[c]);
    else em_vsort_split(block, len, s->splitters[0], s->keys, &low, &high);
  }
  if (s->step == VSORT_HALVE) s->counts[c][0] = low - from;
}

/* Task t's share of VSORT_SWAP's swaps. */
static void vsort_swap(vsort_job* s, int64_t t) {
  int64_t from = s->swaps * t / s->tasks, to = s->swaps * (t + 1) / s->tasks;
  uint32_t *a = s->keys + s->swap_a, *b = s->keys + s->swap_b;
  for (int64_t i = from; i < to; i++) {
    uint32_t x = a[i];
    a[i] = b[i];
    b[i] = x;
  }
}

/* Sorts bucket b and stores its values: in the output itself, the quicksort
 * turns the keys into values as it stores them. */
static void vsort_bucket(vsort_job* s, int64_t b) {
  const sort_job* job = s->job;
  int64_t from = s->bucket_lo[b], len = s->bucket_lo[b + 1] - from;
  int in_place = (char*)s->keys == s->dst;
  vsort_scratch scratch = {NULL, NULL};
  if (!em_vsort32(s->keys + from, len, em_vsort_depth(len), vsort_fallback, &scratch,
                  in_place ? unkey_of(job->dtype) : KEEP_KEYS))
    atomic_store(&s->out_of_memory, 1);
  if (!in_place)
    store_values32(s->dst + from * job->sout * job->isz, job->dtype, job->sout, s->keys + from,
                   len);
}

static void vsort_range(void* ctx, int64_t lo, int64_t hi) {
  vsort_job* s = ctx;
  for (int64_t t = lo; t < hi; t++) {
    if (s->step == VSORT_SORT) vsort_bucket(s, t);
    else if (s->step == VSORT_SWAP) vsort_swap(s, t);
    else vsort_chunk(s, t);
  }
}

/* The splitters: keys at even ranks of a sorted sample spread over the line
 * (equal splitters leave empty buckets, which cost nothing); 0 when out of
 * memory. */
static int vsort_pick_splitters(vsort_job* s) {
  const sort_job* job = s->job;
  uint32_t sample[VSORT_SAMPLE];
  for (int i = 0; i < VSORT_SAMPLE; i++) {
    int64_t at = (job->n - 1) * (2 * i + 1) / (2 * VSORT_SAMPLE);
    load_keys32(sample + i, s->src + at * job->sin * job->isz, job->dtype, job->sin, 1, 0);
  }
  vsort_scratch scratch = {NULL, NULL};
  if (!em_vsort32(sample, VSORT_SAMPLE, em_vsort_depth(VSORT_SAMPLE), vsort_fallback, &scratch,
                  KEEP_KEYS))
    return 0;
  for (int64_t b = 1; b < s->tasks; b++) s->splitters[b - 1] = sample[VSORT_SAMPLE * b / s->tasks];
  return 1;
}

/* The two buckets without a count: the halves split in their own stretches
 * leave [small0 | large0 | small1 | large1]; swapping the misplaced keys
 * between large0 and small1 (as many as the shorter of the two holds) puts
 * every smaller key first (order within a bucket does not matter). */
static void vsort_halves(vsort_job* s) {
  int64_t n = s->job->n, half = n / 2;  /* vsort_chunk's split of two chunks */
  s->step = VSORT_HALVE;
  em_parallel_for(2, 1, vsort_range, s);
  int64_t small0 = s->counts[0][0], small1 = s->counts[1][0];
  int64_t large0 = half - small0;
  s->swaps = large0 < small1 ? large0 : small1;
  s->swap_a = small0;                   /* the first of large0 */
  s->swap_b = half + small1 - s->swaps; /* the last of small1 */
  s->step = VSORT_SWAP;
  em_parallel_for(2, 1, vsort_range, s);
  s->bucket_lo[0] = 0;
  s->bucket_lo[1] = small0 + small1;
  s->bucket_lo[2] = n;
}

/* SORT of one long line of 32-bit keys; 0 when out of memory. */
static int vsort_long_line(const sort_job* job, const char* src, char* dst) {
  vsort_job* s = calloc(1, sizeof(vsort_job));
  if (!s) return 0;
  int64_t n = job->n;
  int in_place = job->sout == 1;  /* the output holds the keys while they sort */
  s->keys = in_place ? (uint32_t*)dst : malloc((size_t)n * sizeof(uint32_t));
  int64_t tasks = n / MSD_CHUNK_MIN;
  if (tasks > em_num_threads()) tasks = em_num_threads();
  if (tasks > MAX_CHUNKS) tasks = MAX_CHUNKS;
  s->tasks = tasks < 1 ? 1 : tasks;
  s->job = job;
  s->src = src;
  s->dst = dst;
  atomic_init(&s->out_of_memory, 0);
  if (!s->keys || (s->tasks > 1 && !vsort_pick_splitters(s))) {
    if (!in_place) free(s->keys);
    free(s);
    return 0;
  }
  if (s->tasks == 2) {
    vsort_halves(s);
  } else {
    if (s->tasks > 1) {
      s->step = VSORT_COUNT;
      em_parallel_for(s->tasks, 1, vsort_range, s);
    } else {
      s->counts[0][0] = n;
    }
    /* bucket b's stretch holds the chunks' keys of b in chunk order */
    int64_t at = 0;
    for (int64_t b = 0; b < s->tasks; b++) {
      s->bucket_lo[b] = at;
      for (int64_t c = 0; c < s->tasks; c++) {
        s->cursor[c][b] = at;
        at += s->counts[c][b];
      }
    }
    s->bucket_lo[s->tasks] = at;
    s->step = VSORT_MOVE;
    em_parallel_for(s->tasks, 1, vsort_range, s);
  }
  s->step = VSORT_SORT;
  em_parallel_for(s->tasks, 1, vsort_range, s);
  int ok = !atomic_load(&s->out_of_memory);
  if (!in_place) free(s->keys);
  free(s);
  return ok;
}

/* ---- long partitions: the first radix-select level over the pool ----
 *
 * Chunks load their keys and count the top digit at once; each chunk then
 * scatters its indices to its own stretch of the smaller and larger sides of
 * perm (stretches in chunk order) and copies the keys of kth's digit (and
 * their indices) to the kept arrays, which radix_select finishes on one
 * thread. The
 * result equals radix_select's on the whole line, so partition and
 * argpartition still agree. */

#define SELECT_SPLIT_MIN (1 << 17)

enum { SELECT_LOAD, SELECT_SCATTER, SELECT_EMIT };

typedef struct {
  const sort_job* job;
  const char* src;
  char* dst;
  int64_t chunks;
  int step, shift;
  uint32_t digit;                         /* kth's top digit */
  void *keys, *kept_keys;
  uint32_t *kept_ix, *perm;
  uint32_t* hist;                         /* chunks x MSD_BUCKETS */
  int64_t smaller[MAX_CHUNKS], kept_at[MAX_CHUNKS], larger[MAX_CHUNKS];  /* cursors */
} select_job;

#define SELECT_FNS(W, K)                                                                   \
  static void select_load##W(select_job* s, int64_t c, int64_t from, int64_t to) {         \
    const sort_job* job = s->job;                                                          \
    K* k = (K*)s->keys;                                                                    \
    uint32_t* h = s->hist + c * MSD_BUCKETS;                                               \
    memset(h, 0, sizeof(uint32_t) * MSD_BUCKETS);                                          \
    /* in blocks, so the count reads keys still in cache */                                \
    for (int64_t lo = from; lo < to; lo += 4096) {                                         \
      int64_t hi = lo + 4096 < to ? lo + 4096 : to;                                        \
      load_keys##W(k + lo, s->src + lo * job->sin * job->isz, job->dtype, job->sin,        \
                   hi - lo, 1);                                                            \
      for (int64_t i = lo; i < hi; i++) h[(k[i] >> s->shift) & (MSD_BUCKETS - 1)]++;       \
    }                                                                                      \
  }                                                                                        \
                                                                                           \
  static void select_scatter##W(select_job* s, int64_t c, int64_t from, int64_t to) {      \
    const K* k = (const K*)s->keys;                                                        \
    K* kept_keys = (K*)s->kept_keys;                                                       \
    int64_t smaller = s->smaller[c], kept_at = s->kept_at[c], larger = s->larger[c];       \
    int64_t kept = from; /* the kept stretch stays inside the chunk: the write past its end \
                          * (every step writes) must not reach the next chunk's */      \
    uint32_t digit = s->digit;                                                             \
    for (int64_t i = from; i < to; i++) {                                                  \
      K x = k[i];                                                                          \
      uint32_t d = (uint32_t)((x >> s->shift) & (MSD_BUCKETS - 1));                        \
      int64_t less = d < digit, more = d > digit, same = !(less | more);                   \
      int64_t to_less = -less, to_more = -more;                                            \
      s->perm[(smaller & to_less) | (larger & to_more) | (kept_at & ~(to_less | to_more))] = \
          (uint32_t)i;                                                                     \
      smaller += less;                                                                     \
      larger += more;                                                                      \
      kept_at += same;                                                                     \
      kept_keys[kept] = x;                                                                 \
      s->kept_ix[kept] = (uint32_t)i;                                                      \
      kept += same;                                                                        \
    }                                                                                      \
  }

SELECT_FNS(32, uint32_t)
SELECT_FNS(64, uint64_t)

/* dst's line [from, to) from the permutation perm. */
static void emit_permuted(const sort_job* job, const char* src, char* dst, const uint32_t* perm,
                          int64_t from, int64_t to) {
  if (job->prim == EM_P_ARGPARTITION || job->prim == EM_P_ARGSORT) {
    uint32_t* d = (uint32_t*)dst;
    for (int64_t i = from; i < to; i++) d[i * job->sout] = perm[i];
  } else {
    gather(dst + from * job->sout * job->isz, job->sout, src, job->sin, perm + from, to - from,
           job->isz);
  }
}

static void select_range(void* ctx, int64_t lo, int64_t hi) {
  select_job* s = ctx;
  int64_t n = s->job->n;
  for (int64_t c = lo; c < hi; c++) {
    int64_t from = n * c / s->chunks, to = n * (c + 1) / s->chunks;
    if (s->step == SELECT_LOAD)
      s->job->wide ? select_load64(s, c, from, to) : select_load32(s, c, from, to);
    else if (s->step == SELECT_SCATTER)
      s->job->wide ? select_scatter64(s, c, from, to) : select_scatter32(s, c, from, to);
    else
      emit_permuted(s->job, s->src, s->dst, s->perm, from, to);
  }
}

/* PARTITION or ARGPARTITION of one long line; 0 when out of memory. */
static int select_split_line(const sort_job* job, const char* src, char* dst) {
  select_job* s = calloc(1, sizeof(select_job));
  if (!s) return 0;
  size_t ksz = job->wide ? 8 : 4, n = (size_t)job->n;
  int64_t chunks = job->n / MSD_CHUNK_MIN;
  if (chunks > em_num_threads()) chunks = em_num_threads();
  if (chunks > MAX_CHUNKS) chunks = MAX_CHUNKS;
  s->chunks = chunks < 1 ? 1 : chunks;
  s->job = job;
  s->src = src;
  s->dst = dst;
  /* keys, kept keys, kept indices, perm, scratch indices, histograms */
  char* mem = malloc(2 * n * ksz + 3 * n * sizeof(uint32_t) +
                     ((size_t)s->chunks * MSD_BUCKETS + HIST_ENTRIES) * sizeof(uint32_t));
  if (!mem) {
    free(s);
    return 0;
  }
  s->keys = mem;
  s->kept_keys = mem + n * ksz;
  s->kept_ix = (uint32_t*)(mem + 2 * n * ksz);
  s->perm = s->kept_ix + n;
  uint32_t* scratch = s->perm + n;
  s->hist = scratch + n;
  uint32_t* hist = s->hist + s->chunks * MSD_BUCKETS;
  s->shift = job->bits > MSD_BITS ? job->bits - MSD_BITS : 0;
  s->step = SELECT_LOAD;
  em_parallel_for(s->chunks, 1, select_range, s);

  int64_t below = 0, count;
  uint32_t digit = 0;
  for (;; digit++) {
    count = 0;
    for (int64_t c = 0; c < s->chunks; c++) count += s->hist[c * MSD_BUCKETS + digit];
    if (below + count > job->kth) break;
    below += count;
  }
  if (count == job->n) {  /* one top digit: radix_select narrows on the lower ones */
    if (job->wide) radix_select64(s->keys, s->kept_ix, 1, s->kept_keys, scratch, s->perm,
                                  job->n, job->kth, job->bits, hist);
    else radix_select32(s->keys, s->kept_ix, 1, s->kept_keys, scratch, s->perm, job->n,
                        job->kth, job->bits, hist);
  } else {
    s->digit = digit;
    int64_t smaller = 0, kept_at = below, larger = below + count;
    for (int64_t c = 0; c < s->chunks; c++) {
      int64_t less = 0, same = s->hist[c * MSD_BUCKETS + digit];
      for (uint32_t d = 0; d < digit; d++) less += s->hist[c * MSD_BUCKETS + d];
      int64_t size = job->n * (c + 1) / s->chunks - job->n * c / s->chunks;
      s->smaller[c] = smaller;
      s->kept_at[c] = kept_at;
      s->larger[c] = larger;
      smaller += less;
      kept_at += same;
      larger += size - less - same;
    }
    s->step = SELECT_SCATTER;
    em_parallel_for(s->chunks, 1, select_range, s);
    for (int64_t c = 1; c < s->chunks; c++) {  /* close up the kept stretches */
      int64_t from = job->n * c / s->chunks, same = s->hist[c * MSD_BUCKETS + digit];
      int64_t at = s->kept_at[c] - below;
      memmove((char*)s->kept_keys + at * ksz, (char*)s->kept_keys + from * ksz, same * ksz);
      memmove(s->kept_ix + at, s->kept_ix + from, same * sizeof(uint32_t));
    }
    /* the kept keys share the top digit: select on the bits below it */
    if (job->wide) radix_select64(s->kept_keys, s->kept_ix, 0, s->keys, scratch, s->perm + below,
                                  count, job->kth - below, s->shift, hist);
    else radix_select32(s->kept_keys, s->kept_ix, 0, s->keys, scratch, s->perm + below, count,
                        job->kth - below, s->shift, hist);
  }
  s->step = SELECT_EMIT;
  em_parallel_for(s->chunks, 1, select_range, s);
  free(mem);
  free(s);
  return 1;
}

/* SORT, ARGSORT, PARTITION and ARGPARTITION. */
int em_kernel_sort(em_array* out) {
  em_array* in = out->inputs[0];
  int axis = (int)out->ip[0];
  int status = em_alloc_output(out);
  if (status != EM_OK) return status;
  if (out->size == 0) return EM_OK;
  sort_job job;
  job.prim = out->prim;
  job.dtype = in->dtype;
  job.isz = em_dtype_size(in->dtype);
  job.bits = key_bits(in->dtype);
  job.wide = job.bits > 32;
  job.n = in->shape[axis];
  job.kth = out->nip > 1 ? out->ip[1] : 0;
  job.sin = in->strides[axis];
  job.sout = out->strides[axis];
  job.in = (const char*)in->buf->data;
  job.out = (char*)out->buf->data;
  atomic_init(&job.out_of_memory, 0);
  em_lines_init(&job.lines, in, out, axis);
  if (vsort_cpu < 0) vsort_cpu = em_vsort_available() && !getenv("EMBER_NO_AVX512_SORT");
  int by_top_digit = job.n >= MSD_LINE_MIN &&
      ((job.prim == EM_P_SORT && job.dtype != EM_COMPLEX64) || job.prim == EM_P_ARGSORT);
  int split_select = job.n >= SELECT_SPLIT_MIN && em_num_threads() > 1 &&
      (job.prim == EM_P_PARTITION || job.prim == EM_P_ARGPARTITION) &&
      job.lines.count < em_num_threads();
  if (split_select) {
    int out_isz = em_dtype_size(out->dtype);
    for (int64_t r = 0; r < job.lines.count; r++) {
      int64_t io, oo;
      em_line_offsets(&job.lines, r, &io, &oo);
      if (!select_split_line(&job, job.in + io * job.isz, job.out + oo * out_isz))
        atomic_store(&job.out_of_memory, 1);
    }
  } else if (by_top_digit && vsort_cpu && job.prim == EM_P_SORT && job.bits == 32) {
    int out_isz = em_dtype_size(out->dtype);
    for (int64_t r = 0; r < job.lines.count; r++) {
      int64_t io, oo;
      em_line_offsets(&job.lines, r, &io, &oo);
      if (!vsort_long_line(&job, job.in + io * job.isz, job.out + oo * out_isz))
        atomic_store(&job.out_of_memory, 1);
    }
  } else if (by_top_digit) {
    int out_isz = em_dtype_size(out->dtype);
    for (int64_t r = 0; r < job.lines.count; r++) {
      int64_t io, oo;
      em_line_offsets(&job.lines, r, &io, &oo);
      if (!msd_sort_line(&job, job.in + io * job.isz, job.out + oo * out_isz))
        atomic_store(&job.out_of_memory, 1);
    }
  } else {
    int64_t grain = job.n >= 65536 ? 1 : 65536 / job.n;
    em_parallel_for(job.lines.count, grain, sort_range, &job);
  }
  if (atomic_load(&job.out_of_memory)) {
    em_fail(EM_MEMORY_ERROR, "[%s] out of memory for a line of %lld elements",
            em_prim_name(out->prim), (long long)job.n);
    return EM_MEMORY_ERROR;
  }
  return EM_OK;
}
