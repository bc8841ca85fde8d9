/* sort.c: sort, argsort, partition and argpartition along one axis.
 *
 * Each line is turned into unsigned integer keys whose unsigned order is
 * numpy's order for the dtype: signed integers get their sign bit flipped;
 * floats map sign-magnitude onto a monotone integer and every NaN onto the
 * largest key, so NaNs go last; complex64 is (real key, imaginary key), the
 * lexicographic order numpy uses. Keys of up to 32 bits sort as uint32,
 * wider ones as uint64.
 *
 * SORT and ARGSORT run an LSD radix sort (a digit that every key shares is
 * skipped) on long lines and a merge sort on short ones. Both are stable,
 * so argsort is stable. PARTITION and ARGPARTITION run a
 * quickselect on (key, index) pairs, and partition gathers the input's values
 * through those indices, so partition(a) is exactly take_along_axis(a,
 * argpartition(a)): the transform rules rely on it. The index-producing paths
 * treat -0.0 and 0.0 as equal (numpy's order); a real sort may put -0.0
 * before 0.0.
 *
 * ip: axis (normalized), and kth (normalized) for the partitions. Lines are
 * spread over the thread pool.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lines.h"

/* Radix digits: 11 bits for long lines, 8 where clearing and summing 2048
 * buckets per pass would cost more than the line itself. */
#define WIDE_DIGIT_BELOW 65536
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

static void load_keys32(uint32_t* k, const char* src, int dtype, int64_t stride, int64_t n,
                        int merge_zeros) {
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
static void store_values32(char* dst, int dtype, int64_t stride, const uint32_t* k, int64_t n) {
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
    const int digit_bits = n < WIDE_DIGIT_BELOW ? 8 : 11;                                  \
    const int buckets = 1 << digit_bits;                                                   \
    int passes = (bits + digit_bits - 1) / digit_bits;                                     \
    memset(hist, 0, sizeof(uint32_t) * (size_t)buckets * (size_t)passes);                  \
    /* Digit counts do not depend on the order: one read counts every pass. */             \
    for (int64_t i = 0; i < n; i++) {                                                      \
      K x = k[i];                                                                          \
      for (int p = 0; p < passes; p++) hist[p * buckets + ((x >> (p * digit_bits)) & (buckets - 1))]++; \
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
   * every step is a function of the keys alone, so sort and argsort agree. */       \
  static void radix_select##W(K* k, uint32_t* kix, K* kt, uint32_t* ixt, uint32_t* perm,  \
                              int64_t n, int64_t kth, int bits, uint32_t* hist) {          \
    const int digit_bits = n < WIDE_DIGIT_BELOW ? 8 : 11;                                  \
    const K mask = (K)((1u << digit_bits) - 1);                                            \
    int64_t m = n, base = 0;                                                               \
    int identity = 1; /* kix not filled yet: the index of k[i] is i */                     \
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
    if (job->wide) radix_select64(k, ixt, kt, ix3, ix, n, job->kth, job->bits, hist);
    else radix_select32(k, ixt, kt, ix3, ix, n, job->kth, job->bits, hist);
  } else {
    uint32_t* order = wants_index ? ix : NULL;
    if (order)
      for (int64_t i = 0; i < n; i++) ix[i] = (uint32_t)i;
    if (job->wide) sort_keys64(k, order, kt, ixt, n, job->bits, hist);
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

/* ---- one long line split over the thread pool ----
 *
 * With fewer lines than threads, a long line's radix sort splits instead:
 * each chunk of the line counts its digits, a prefix sum in (digit, chunk)
 * order gives every chunk its positions, and the chunks scatter at once;
 * chunk order within a digit keeps the sort stable. */

#define SPLIT_LINE_MIN (1 << 18)
#define SPLIT_DIGIT_BITS 11
#define SPLIT_BUCKETS (1 << SPLIT_DIGIT_BITS)
#define MAX_CHUNKS 64

enum { SPLIT_LOAD, SPLIT_COUNT, SPLIT_SCATTER, SPLIT_STORE };

typedef struct {
  const sort_job* job;
  const char* src;
  char* dst;
  int64_t chunks;
  int step, shift;
  void *a, *b;            /* this pass moves keys from a to b */
  uint32_t *ia, *ib;      /* and indices (argsort) from ia to ib */
  uint32_t* hist;         /* chunks x SPLIT_BUCKETS */
} split_job;

static void split_range(void* ctx, int64_t lo, int64_t hi) {
  const split_job* s = ctx;
  const sort_job* job = s->job;
  int64_t n = job->n, isz = job->isz;
  int wide = job->wide, merge_zeros = job->prim != EM_P_SORT;
  for (int64_t c = lo; c < hi; c++) {
    int64_t from = n * c / s->chunks, to = n * (c + 1) / s->chunks;
    uint32_t* h = s->hist + c * SPLIT_BUCKETS;
    switch (s->step) {
      case SPLIT_LOAD: {
        const char* src = s->src + from * job->sin * isz;
        if (wide) load_keys64((uint64_t*)s->a + from, src, job->dtype, job->sin, to - from, merge_zeros);
        else load_keys32((uint32_t*)s->a + from, src, job->dtype, job->sin, to - from, merge_zeros);
        if (s->ia)
          for (int64_t i = from; i < to; i++) s->ia[i] = (uint32_t)i;
        break;
      }
      case SPLIT_COUNT:
        memset(h, 0, sizeof(uint32_t) * SPLIT_BUCKETS);
        if (wide) count_digit64(s->a, from, to, s->shift, SPLIT_BUCKETS - 1, h);
        else count_digit32(s->a, from, to, s->shift, SPLIT_BUCKETS - 1, h);
        break;
      case SPLIT_SCATTER:
        if (wide) scatter_digit64(s->a, s->ia, from, to, s->shift, SPLIT_BUCKETS - 1, h, s->b, s->ib);
        else scatter_digit32(s->a, s->ia, from, to, s->shift, SPLIT_BUCKETS - 1, h, s->b, s->ib);
        break;
      default:
        if (job->prim == EM_P_SORT) {
          char* dst = s->dst + from * job->sout * isz;
          if (wide) store_values64(dst, job->dtype, job->sout, (uint64_t*)s->a + from, to - from);
          else store_values32(dst, job->dtype, job->sout, (uint32_t*)s->a + from, to - from);
        } else {
          uint32_t* d = (uint32_t*)s->dst;
          for (int64_t i = from; i < to; i++) d[i * job->sout] = s->ia[i];
        }
    }
  }
}

/* Sorts (SORT of a real dtype, or ARGSORT) one line; 0 when out of memory. */
static int sort_split_line(const sort_job* job, const char* src, char* dst) {
  split_job s;
  size_t ksz = job->wide ? 8 : 4, n = (size_t)job->n;
  int indexed = job->prim == EM_P_ARGSORT;
  s.job = job;
  s.src = src;
  s.dst = dst;
  s.chunks = em_num_threads() < MAX_CHUNKS ? em_num_threads() : MAX_CHUNKS;
  char* mem = malloc(2 * n * ksz + (indexed ? 2 * n * sizeof(uint32_t) : 0) +
                     (size_t)s.chunks * SPLIT_BUCKETS * sizeof(uint32_t));
  if (!mem) return 0;
  s.a = mem;
  s.b = mem + n * ksz;
  s.ia = indexed ? (uint32_t*)(mem + 2 * n * ksz) : NULL;
  s.ib = indexed ? s.ia + n : NULL;
  s.hist = (uint32_t*)(mem + 2 * n * ksz + (indexed ? 2 * n * sizeof(uint32_t) : 0));
  s.step = SPLIT_LOAD;
  em_parallel_for(s.chunks, 1, split_range, &s);
  for (int shift = 0; shift < job->bits; shift += SPLIT_DIGIT_BITS) {
    s.shift = shift;
    s.step = SPLIT_COUNT;
    em_parallel_for(s.chunks, 1, split_range, &s);
    uint32_t sum = 0;
    int shared = 0;   /* one digit holds every key: the pass changes nothing */
    for (int d = 0; d < SPLIT_BUCKETS && !shared; d++) {
      uint32_t total = 0;
      for (int64_t c = 0; c < s.chunks; c++) total += s.hist[c * SPLIT_BUCKETS + d];
      shared = total == (uint32_t)n;
    }
    if (shared) continue;
    for (int d = 0; d < SPLIT_BUCKETS; d++)
      for (int64_t c = 0; c < s.chunks; c++) {
        uint32_t count = s.hist[c * SPLIT_BUCKETS + d];
        s.hist[c * SPLIT_BUCKETS + d] = sum;
        sum += count;
      }
    s.step = SPLIT_SCATTER;
    em_parallel_for(s.chunks, 1, split_range, &s);
    void* t = s.a; s.a = s.b; s.b = t;
    uint32_t* it = s.ia; s.ia = s.ib; s.ib = it;
  }
  s.step = SPLIT_STORE;
  em_parallel_for(s.chunks, 1, split_range, &s);
  free(mem);
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
  int splits = job.lines.count < em_num_threads() && job.n >= SPLIT_LINE_MIN &&
               ((job.prim == EM_P_SORT && job.dtype != EM_COMPLEX64) || job.prim == EM_P_ARGSORT);
  if (splits) {
    int out_isz = em_dtype_size(out->dtype);
    for (int64_t r = 0; r < job.lines.count; r++) {
      int64_t io, oo;
      em_line_offsets(&job.lines, r, &io, &oo);
      if (!sort_split_line(&job, job.in + io * job.isz, job.out + oo * out_isz))
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
