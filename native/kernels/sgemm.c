/* sgemm.c: ember's float32 matrix product on CPUs with AVX-512.
 *
 *   em_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, c, ldc):
 *     c = alpha * op(a) @ op(b), row-major, on the calling thread
 *
 * Every float32 product of the engine comes here (matmul, conv, attention,
 * quantized matmul); the callers spread blocks of a product over the pool.
 * Why ember has a product of its own: OpenBLAS runs the kernels of the core
 * type it detects or is told (OPENBLAS_CORETYPE), and its Haswell kernels on
 * an AVX-512 machine run at half its rate (one thread here: 100 GFLOPS
 * against 185). This kernel does not depend on that choice. Without
 * AVX-512, or with EMBER_SGEMM=openblas in the environment, the product is
 * OpenBLAS's sgemm; float64 and complex products always are.
 *
 * Method (Goto's, as in BLIS). A block of KC steps along k of b is packed
 * into panels of NR columns (NR values per step, contiguous), and a block of
 * MC rows of a into panels of MR rows (MR values per step); edges are padded
 * with zeros, so the micro-kernel reads both with unit stride and no tests.
 * The micro-kernel holds an MR x NR tile of c in 24 zmm registers (12 rows of
 * two 16-float vectors) and per step does 2 loads of b, 12 broadcasts of a
 * and 24 FMAs. Loops, outer to inner: jc (NC columns) > pc (KC steps, pack
 * b) > ic (MC rows, pack a) > jr (NR columns) > ir (MR rows), so that a b
 * panel (KC x NR, 48 KB at most) stays in L1 while every a panel of the block
 * (L2) passes it. A product of at most MR rows reads a row-major b in place:
 * packing it would be a pass over b as long as the product itself.
 *
 * em_sgemm_runs takes a as runs instead of a matrix (internal.h's
 * em_gemm_runs: row i is a list of pointers to runs of contiguous floats, or
 * NULL for zeros). conv's im2col rows are such lists into its input, so it
 * needs no im2col buffer: a is not packed at all, and tile_lines broadcasts
 * straight from the runs (12 row pointers held in registers per run).
 *
 * Each element of c is a sum over k in order: in order within a KC block,
 * and the blocks added to c in order, so results do not depend on threads.
 */
#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "classes.h"

#define MR 12      /* rows of the micro-kernel's tile */
#define NR 32      /* columns: two vectors of 16 */
#define KC_MAX 384 /* steps along k per packed block: an NR panel is 48 KB */
#define KC_RUNS_MAX 1152 /* the same for a given by runs (conv) */
#define MC_MAX 192 /* rows of a per packed block (288 KB at KC_MAX), a multiple of MR */
#define NC_MAX 3072 /* columns of b per packed block, a multiple of NR */
#define PREFETCH_ROWS 12 /* how far ahead a tile reading b in place fetches it */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Equal blocks of at most `max` covering `total`, rounded up to `align`. */
static int64_t block_size(int64_t total, int64_t max, int64_t align) {
  int64_t blocks = (total + max - 1) / max;
  int64_t size = (total + blocks - 1) / blocks;
  return (size + align - 1) / align * align;
}

/* ---- which product runs ---- */

static int own_state = -1; /* -1 not decided yet, 0 OpenBLAS, 1 ember's */
static pthread_once_t own_once = PTHREAD_ONCE_INIT;

int em_sgemm_own_available(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
#else
  return 0;
#endif
}

static void decide_own(void) {
  const char* env = getenv("EMBER_SGEMM");
  int wanted = !(env && strcmp(env, "openblas") == 0);
  __atomic_store_n(&own_state, wanted && em_sgemm_own_available(), __ATOMIC_RELAXED);
}

static int own_enabled(void) {
  pthread_once(&own_once, decide_own);
  return __atomic_load_n(&own_state, __ATOMIC_RELAXED);
}

int em_set_sgemm_own(int own) {
  pthread_once(&own_once, decide_own);
  if (own < 0) {
    decide_own();
  } else {
    __atomic_store_n(&own_state, own && em_sgemm_own_available(), __ATOMIC_RELAXED);
  }
  return own_enabled();
}

static void openblas_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                           const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                           int64_t ldc) {
  scipy_cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, 0.0f, c, (int)ldc);
}

/* ---- per-thread packing buffers ---- */

typedef struct {
  float* buf[2]; /* packed a, packed b */
  size_t cap[2]; /* floats */
} workspace;

static pthread_key_t workspace_key;
static pthread_once_t workspace_once = PTHREAD_ONCE_INIT;

static void workspace_free(void* p) {
  workspace* w = p;
  free(w->buf[0]);
  free(w->buf[1]);
  free(w);
}

static void workspace_key_make(void) { pthread_key_create(&workspace_key, workspace_free); }

/* This thread's buffer `which` with room for `floats`, 64-byte aligned; grows,
 * never shrinks (the pool's threads live as long as the process). NULL when
 * memory runs out. */
static float* workspace_get(int which, size_t floats) {
  pthread_once(&workspace_once, workspace_key_make);
  workspace* w = pthread_getspecific(workspace_key);
  if (!w) {
    w = calloc(1, sizeof *w);
    if (!w || pthread_setspecific(workspace_key, w) != 0) {
      free(w);
      return NULL;
    }
  }
  if (w->cap[which] < floats) {
    free(w->buf[which]);
    size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    w->buf[which] = aligned_alloc(64, bytes);
    w->cap[which] = w->buf[which] ? floats : 0;
  }
  return w->buf[which];
}

/* Where a's values come from: a matrix (read transposed when ta), or runs. */
typedef struct {
  int ta;
  const float* a;
  int64_t lda;
  const em_gemm_runs* runs;
} a_source;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))
#define ALWAYS_INLINE static inline __attribute__((always_inline)) AVX512

/* The masks of a panel's columns that exist: `cols` of NR. */
static __mmask16 lane_mask(int64_t cols) {
  return cols >= 16 ? (__mmask16)0xffff : cols <= 0 ? 0 : (__mmask16)((1u << cols) - 1);
}

/* Writes the tile's sums: c[0:mr, columns of m0|m1] = alpha * acc, plus
 * what c holds when `add`. */
ALWAYS_INLINE void store_tile(const int rows, const __m512* acc0, const __m512* acc1,
                              __mmask16 m0, __mmask16 m1, float alpha, float* c, int64_t ldc,
                              int mr, int add) {
  __m512 scale = _mm512_set1_ps(alpha);
#pragma GCC unroll 12
  for (int i = 0; i < rows; i++) {
    if (i >= mr) break;
    float* ci = c + i * ldc;
    __m512 c0 = add ? _mm512_maskz_loadu_ps(m0, ci) : _mm512_setzero_ps();
    __m512 c1 = add ? _mm512_maskz_loadu_ps(m1, ci + 16) : _mm512_setzero_ps();
    _mm512_mask_storeu_ps(ci, m0, _mm512_fmadd_ps(acc0[i], scale, c0));
    _mm512_mask_storeu_ps(ci + 16, m1, _mm512_fmadd_ps(acc1[i], scale, c1));
  }
}

/* The tile c[0:mr, columns of m0|m1] (+)= alpha * ap @ bp over kc steps: ap
 * a packed a panel (MR values per step, `rows` of them used), bp b's panel
 * (rows `bs` floats apart). `rows` is a constant after inlining, so the
 * accumulators are registers and the loops over them unroll. */
ALWAYS_INLINE void tile(const int rows, const int in_place, int64_t kc, const float* restrict ap,
                        const float* restrict bp, int64_t bs, __mmask16 m0, __mmask16 m1,
                        float alpha, float* c, int64_t ldc, int mr, int add) {
  __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 12
  for (int i = 0; i < rows; i++) acc0[i] = acc1[i] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; p++) {
    if (in_place) {
      /* b in place: rows bs apart, each on its own lines, which the hardware
       * prefetchers do not see coming; fetch PREFETCH_ROWS ahead */
      _mm_prefetch((const char*)(bp + PREFETCH_ROWS * bs), _MM_HINT_T0);
      _mm_prefetch((const char*)(bp + PREFETCH_ROWS * bs + 16), _MM_HINT_T0);
    }
    __m512 b0 = in_place ? _mm512_maskz_loadu_ps(m0, bp) : _mm512_load_ps(bp);
    __m512 b1 = in_place ? _mm512_maskz_loadu_ps(m1, bp + 16) : _mm512_load_ps(bp + 16);
#pragma GCC unroll 12
    for (int i = 0; i < rows; i++) {
      __m512 av = _mm512_set1_ps(ap[i]);
      acc0[i] = _mm512_fmadd_ps(av, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(av, b1, acc1[i]);
    }
    ap += MR;
    bp += bs;
  }
  store_tile(rows, acc0, acc1, m0, m1, alpha, c, ldc, mr, add);
}

/* The tile of MR rows with a read in place from runs (em_gemm_runs):
 * line[j * MR + i] is run j of row i (never NULL: zeros stand in), the
 * steps start at offset `first` of run 0, and bp is a packed b panel. */
AVX512 static void tile_lines(const float* const* line, int64_t first, int64_t run, int64_t kc,
                              const float* restrict bp, __mmask16 m0, __mmask16 m1, float alpha,
                              float* c, int64_t ldc, int mr, int add) {
  __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 12
  for (int i = 0; i < MR; i++) acc0[i] = acc1[i] = _mm512_setzero_ps();
  for (int64_t off = first; kc > 0; off = 0, line += MR) {
    int64_t len = min64(run - off, kc);
    const float* l[MR];
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) l[i] = line[i] + off;
    for (int64_t p = 0; p < len; p++) {
      __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 12
      for (int i = 0; i < MR; i++) {
        __m512 av = _mm512_set1_ps(l[i][p]);
        acc0[i] = _mm512_fmadd_ps(av, b0, acc0[i]);
        acc1[i] = _mm512_fmadd_ps(av, b1, acc1[i]);
      }
      bp += NR;
    }
    kc -= len;
  }
  store_tile(MR, acc0, acc1, m0, m1, alpha, c, ldc, mr, add);
}

typedef void (*tile_fn)(int64_t kc, const float* ap, const float* bp, int64_t bs, __mmask16 m0,
                        __mmask16 m1, float alpha, float* c, int64_t ldc, int mr, int add);

/* Tiles of R rows reading b packed (P: aligned, zero-padded panels) or in
 * place (D: masked loads that stop at the matrix's last column). */
#define TILE_ROWS(R)                                                                          \
  AVX512 static void tile_p##R(int64_t kc, const float* ap, const float* bp, int64_t bs,      \
                               __mmask16 m0, __mmask16 m1, float alpha, float* c, int64_t ldc, \
                               int mr, int add) {                                             \
    tile(R, 0, kc, ap, bp, bs, m0, m1, alpha, c, ldc, mr, add);                               \
  }                                                                                           \
  AVX512 static void tile_d##R(int64_t kc, const float* ap, const float* bp, int64_t bs,      \
                               __mmask16 m0, __mmask16 m1, float alpha, float* c, int64_t ldc, \
                               int mr, int add) {                                             \
    tile(R, 1, kc, ap, bp, bs, m0, m1, alpha, c, ldc, mr, add);                               \
  }
TILE_ROWS(4)
TILE_ROWS(8)
TILE_ROWS(12)

/* The smallest tile that covers mr rows. */
static tile_fn tile_for(int direct, int64_t mr) {
  if (direct) return mr <= 4 ? tile_d4 : mr <= 8 ? tile_d8 : tile_d12;
  return mr <= 4 ? tile_p4 : mr <= 8 ? tile_p8 : tile_p12;
}

/* v[c] = column c of the 16 x 16 block v (v[r] its row r): unpacks pair
 * rows into 2 x 2 and then 4 x 4 blocks inside each 128-bit lane; a 4 x 4
 * transpose of those lanes finishes it. */
ALWAYS_INLINE void transpose16(__m512 v[16]) {
  __m512 t[16], s[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
  }
  /* s[4i + q], lane L: rows 4i..4i+3 of column 4L + q */
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
    __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
    s[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
    s[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    s[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
    s[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
  }
#pragma GCC unroll 4
  for (int q = 0; q < 4; q++) {
    __m512 u0 = _mm512_shuffle_f32x4(s[q], s[4 + q], 0x44);
    __m512 u1 = _mm512_shuffle_f32x4(s[q], s[4 + q], 0xee);
    __m512 u2 = _mm512_shuffle_f32x4(s[8 + q], s[12 + q], 0x44);
    __m512 u3 = _mm512_shuffle_f32x4(s[8 + q], s[12 + q], 0xee);
    v[q] = _mm512_shuffle_f32x4(u0, u2, 0x88);
    v[4 + q] = _mm512_shuffle_f32x4(u0, u2, 0xdd);
    v[8 + q] = _mm512_shuffle_f32x4(u1, u3, 0x88);
    v[12 + q] = _mm512_shuffle_f32x4(u1, u3, 0xdd);
  }
}

/* A panel of `width` (MR or NR) interleaved lines: dst[p * width + r] =
 * line[r][p] for p < len, for the `lines` lines that exist, zeros for the
 * rest up to width and for a NULL line. Lines are read 16 steps at a time
 * and turned in registers. */
AVX512 static void pack_lines(const float* const* line, int64_t lines, int64_t width,
                              int64_t len, float* dst) {
  for (int64_t r0 = 0; r0 < width; r0 += 16) {
    __mmask16 keep = lane_mask(width - r0);
    for (int64_t p0 = 0; p0 < len; p0 += 16) {
      int64_t steps = min64(16, len - p0);
      __mmask16 load = lane_mask(steps);
      __m512 v[16];
#pragma GCC unroll 16
      for (int64_t i = 0; i < 16; i++)
        v[i] = r0 + i < lines && line[r0 + i] ? _mm512_maskz_loadu_ps(load, line[r0 + i] + p0)
                                              : _mm512_setzero_ps();
      transpose16(v);
      for (int64_t q = 0; q < steps; q++)
        _mm512_mask_storeu_ps(dst + (p0 + q) * width + r0, keep, v[q]);
    }
  }
}

/* Lines of a strided matrix: line r starts at src + r * ld. */
AVX512 static void pack_strided(const float* src, int64_t ld, int64_t lines, int64_t width,
                                int64_t len, float* dst) {
  const float* line[NR];
  for (int64_t r = 0; r < lines; r++) line[r] = src + r * ld;
  pack_lines(line, lines, width, len, dst);
}

/* Packs rows [i0, i0 + mc) of op(a) (a matrix), steps [pc, pc + kc), into
 * panels of MR rows (MR values per step, zeros past mc). */
AVX512 static void pack_a(const a_source* src, int64_t i0, int64_t mc, int64_t pc, int64_t kc,
                          float* dst) {
  for (int64_t r = 0; r < mc; r += MR, dst += kc * MR) {
    int64_t rows = min64(MR, mc - r);
    if (!src->ta) {
      pack_strided(src->a + (i0 + r) * src->lda + pc, src->lda, rows, MR, kc, dst);
    } else {
      __mmask16 keep = lane_mask(rows);
      const float* a = src->a + pc * src->lda + i0 + r;
      for (int64_t p = 0; p < kc; p++)
        _mm512_mask_storeu_ps(dst + p * MR, lane_mask(MR),
                              _mm512_maskz_loadu_ps(keep, a + p * src->lda));
    }
  }
}

/* Packs op(b)[0:kc, 0:nc] into panels of NR columns (NR values per step,
 * zeros past nc); op(b)[p, j] is b[j * ldb + p] when tb, else b[p * ldb + j]. */
AVX512 static void pack_b(int tb, int64_t kc, int64_t nc, const float* b, int64_t ldb,
                          float* dst) {
  for (int64_t j0 = 0; j0 < nc; j0 += NR, dst += kc * NR) {
    int64_t cols = min64(NR, nc - j0);
    if (tb) {
      pack_strided(b + j0 * ldb, ldb, cols, NR, kc, dst);
      continue;
    }
    __mmask16 m0 = lane_mask(cols), m1 = lane_mask(cols - 16);
    for (int64_t p = 0; p < kc; p++) {
      const float* src = b + p * ldb + j0;
      _mm512_store_ps(dst + p * NR, _mm512_maskz_loadu_ps(m0, src));
      _mm512_store_ps(dst + p * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
    }
  }
}

/* a given by runs, rows [i0, i0 + mc), runs [s0, s0 + count): per panel of
 * MR rows, table[j * MR + i] is run s0 + j of the panel's row i, with
 * `zeros` standing in for runs of zeros and for rows past mc. */
static void locate_block(const em_gemm_runs* g, int64_t i0, int64_t mc, int64_t s0,
                         int64_t count, const float** table, const float* zeros) {
  for (int64_t r = 0; r < mc; r += MR, table += count * MR) {
    g->locate(g->ctx, i0 + r, min64(MR, mc - r), s0, count, table, MR);
    for (int64_t j = 0; j < count; j++)
      for (int64_t i = 0; i < MR; i++)
        if (i >= mc - r || !table[j * MR + i]) table[j * MR + i] = zeros;
  }
}

/* The product on this thread; 0 when the packing buffers cannot be had. */
AVX512 static int own_sgemm(const a_source* as, int tb, int64_t m, int64_t n, int64_t k,
                            float alpha, const float* b, int64_t ldb, float* c, int64_t ldc) {
  if (k == 0) {
    for (int64_t i = 0; i < m; i++) memset(c + i * ldc, 0, (size_t)n * sizeof(float));
    return 1;
  }
  int direct = !tb && m <= MR && !as->runs;
  /* Runs are located once per block: their b panel may outgrow L1 (it
   * streams from L2 at a tenth of L2's rate) to need fewer blocks. */
  int64_t kc_block = block_size(k, as->runs ? KC_RUNS_MAX : KC_MAX, 1);
  int64_t mc_block = block_size(m, MC_MAX, MR);
  int64_t nc_block = min64(NC_MAX, (n + NR - 1) / NR * NR);
  const em_gemm_runs* runs = as->runs;
  /* a given by runs: per panel of the block, the runs its kc steps touch */
  int64_t run_count = runs ? (kc_block + runs->run - 2) / runs->run + 1 : 0;
  size_t a_floats = runs ? (size_t)((mc_block / MR) * run_count * MR) * 2 + (size_t)runs->run
                         : (size_t)(mc_block * kc_block);
  float* ap = workspace_get(0, a_floats);
  float* bp = direct ? NULL : workspace_get(1, (size_t)(kc_block * nc_block));
  if (!ap || (!direct && !bp)) return 0;
  const float** table = (const float**)ap;
  float* zeros = runs ? ap + (a_floats - (size_t)runs->run) : NULL;
  if (runs) memset(zeros, 0, (size_t)runs->run * sizeof(float));
  for (int64_t jc = 0; jc < n; jc += nc_block) {
    int64_t nc = min64(nc_block, n - jc);
    for (int64_t pc = 0; pc < k; pc += kc_block) {
      int64_t kc = min64(kc_block, k - pc);
      const float* bsrc = tb ? b + jc * ldb + pc : b + pc * ldb + jc;
      if (!direct) pack_b(tb, kc, nc, bsrc, ldb, bp);
      for (int64_t ic = 0; ic < m; ic += mc_block) {
        int64_t mc = min64(mc_block, m - ic);
        /* the runs that steps [pc, pc + kc) touch */
        int64_t s0 = runs ? pc / runs->run : 0;
        int64_t count = runs ? (pc + kc - 1) / runs->run - s0 + 1 : 0;
        if (runs)
          locate_block(runs, ic, mc, s0, count, table, zeros);
        else
          pack_a(as, ic, mc, pc, kc, ap);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          __mmask16 m0 = lane_mask(nc - jr), m1 = lane_mask(nc - jr - 16);
          const float* panel = direct ? bsrc + jr : bp + jr * kc;
          int64_t bs = direct ? ldb : NR;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            int64_t mr = min64(MR, mc - ir);
            float* ct = c + (ic + ir) * ldc + jc + jr;
            if (runs)
              tile_lines(table + (ir / MR) * count * MR, pc - s0 * runs->run, runs->run, kc,
                         panel, m0, m1, alpha, ct, ldc, (int)mr, pc > 0);
            else
              tile_for(direct, mr)(kc, ap + ir * kc, panel, bs, m0, m1, alpha, ct, ldc, (int)mr,
                                   pc > 0);
          }
        }
      }
    }
  }
  return 1;
}
#else
static int own_sgemm(const a_source* as, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                     const float* b, int64_t ldb, float* c, int64_t ldc) {
  return 0;
}
#endif

int em_sgemm_runs_available(void) { return own_enabled(); }

int em_sgemm_runs(const em_gemm_runs* a, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* b, int64_t ldb, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return 1;
  a_source as = {0, NULL, 0, a};
  return own_enabled() && own_sgemm(&as, tb, m, n, k, alpha, b, ldb, c, ldc);
}

void em_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
              int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  a_source as = {ta, a, lda, NULL};
  if (own_enabled() && own_sgemm(&as, tb, m, n, k, alpha, b, ldb, c, ldc)) return;
  openblas_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, c, ldc);
}
