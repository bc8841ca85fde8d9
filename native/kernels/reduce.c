/* reduce.c: reductions over a set of axes (sum, prod, max, min, all, any)
 * and arg-reductions over one axis (argmax, argmin).
 *
 * The input is walked in memory order: its axes are sorted by stride and
 * merged where contiguous. Two layouts follow.
 *  - The innermost memory axis is reduced: each output reduces contiguous
 *    runs of that axis with several independent lane accumulators (a loop
 *    the compiler vectorises).
 *  - The innermost memory axis is kept: a block of outputs along it
 *    accumulates whole input rows, acc[j] op= x[j], also vectorised.
 * Float32 sums accumulate short runs in float32 lanes and fold the runs into
 * float64, which keeps 1e6-element sums within float32 rounding of the
 * exact result. Work is split over outputs; when there are too few outputs
 * to occupy the pool, each output's reduction is also cut into a number of
 * pieces fixed by the shape alone, so results never depend on the thread
 * count.
 */
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "axes.h"
#include "classes.h"

typedef double _Complex c128;

/* ---- per (operation, class) loops ---- */

/* "Narrow" values have the class's own type; "wide" accumulators may be
 * wider (float64 for float32 sums and products, complex double for
 * complex64) so long reductions do not lose precision. */
typedef struct {
  int wide_size;
  void (*fill)(void* acc, int64_t n);                          /* narrow identity */
  void (*fill_wide)(void* wide, int64_t n);                    /* wide identity */
  void (*reduce_into)(void* wide, const void* x, int64_t n);   /* wide[0] op= op over x */
  void (*accum)(void* acc, const void* x, int64_t n);          /* acc[j] op= x[j] */
  void (*accum4)(void* acc, const void* x0, const void* x1,    /* the same for four */
                 const void* x2, const void* x3, int64_t n);   /* rows, in order */
  void (*widen_into)(void* wide, const void* acc, int64_t n);  /* wide[j] op= acc[j] */
  void (*combine)(void* wide, const void* other, int64_t n);   /* wide[j] op= other[j] */
  void (*narrow)(void* dst, const void* wide, int64_t n);      /* dst[j] = wide[j] */
} red_ops;

/* One set of loops per (operation, narrow type, wide type). OP combines
 * `a` (the accumulator) with `b`; LANES independent accumulators break the
 * dependency chain so the lane loop becomes SIMD code. */
#define RED_OPS(NAME, NT, WT, LANES, IDENT, OP)                                        \
  static void NAME##_fill(void* acc, int64_t n) {                                      \
    NT* d = acc;                                                                       \
    for (int64_t j = 0; j < n; j++) d[j] = (IDENT);                                    \
  }                                                                                    \
  static void NAME##_fill_wide(void* wide, int64_t n) {                                \
    WT* d = wide;                                                                      \
    for (int64_t j = 0; j < n; j++) d[j] = (WT)(IDENT);                                \
  }                                                                                    \
  static void NAME##_reduce_into(void* wide, const void* x_, int64_t n) {              \
    const NT* x = x_;                                                                  \
    NT lane[LANES];                                                                    \
    for (int k = 0; k < LANES; k++) lane[k] = (IDENT);                                 \
    int64_t i = 0;                                                                     \
    for (; i + LANES <= n; i += LANES)                                                 \
      for (int k = 0; k < LANES; k++) { NT a = lane[k], b = x[i + k]; lane[k] = (OP); } \
    for (int k = 0; i < n; i++, k++) { NT a = lane[k], b = x[i]; lane[k] = (OP); }     \
    for (int w = LANES / 2; w > 0; w /= 2)                                             \
      for (int k = 0; k < w; k++) { NT a = lane[k], b = lane[k + w]; lane[k] = (OP); } \
    WT* r = wide;                                                                      \
    WT a = *r, b = (WT)lane[0];                                                        \
    *r = (OP);                                                                         \
  }                                                                                    \
  static void NAME##_accum(void* acc, const void* x_, int64_t n) {                     \
    NT* d = acc;                                                                       \
    const NT* x = x_;                                                                  \
    for (int64_t j = 0; j < n; j++) { NT a = d[j], b = x[j]; d[j] = (OP); }            \
  }                                                                                    \
  static void NAME##_accum4(void* acc, const void* x0_, const void* x1_, const void* x2_,  \
                            const void* x3_, int64_t n) {                              \
    NT* d = acc;                                                                       \
    const NT *x0 = x0_, *x1 = x1_, *x2 = x2_, *x3 = x3_;                               \
    for (int64_t j = 0; j < n; j++) {                                                  \
      NT a = d[j], b = x0[j];                                                          \
      a = (OP); b = x1[j];                                                             \
      a = (OP); b = x2[j];                                                             \
      a = (OP); b = x3[j];                                                             \
      d[j] = (OP);                                                                     \
    }                                                                                  \
  }                                                                                    \
  static void NAME##_widen_into(void* wide, const void* acc, int64_t n) {              \
    WT* d = wide;                                                                      \
    const NT* x = acc;                                                                 \
    for (int64_t j = 0; j < n; j++) { WT a = d[j], b = (WT)x[j]; d[j] = (OP); }        \
  }                                                                                    \
  static void NAME##_combine(void* wide, const void* other, int64_t n) {               \
    WT* d = wide;                                                                      \
    const WT* x = other;                                                               \
    for (int64_t j = 0; j < n; j++) { WT a = d[j], b = x[j]; d[j] = (OP); }            \
  }                                                                                    \
  static void NAME##_narrow(void* dst, const void* wide, int64_t n) {                  \
    NT* d = dst;                                                                       \
    const WT* x = wide;                                                                \
    for (int64_t j = 0; j < n; j++) d[j] = (NT)x[j];                                   \
  }                                                                                    \
  static const red_ops NAME = {sizeof(WT), NAME##_fill, NAME##_fill_wide,             \
                               NAME##_reduce_into, NAME##_accum, NAME##_accum4,        \
                               NAME##_widen_into,                                      \
                               NAME##_combine, NAME##_narrow};

/* Max and min propagate NaN like numpy: once the accumulator is NaN it
 * stays NaN, and a NaN operand replaces it. */
#define FMAX_OP (((b > a) | (b != b)) ? b : a)
#define FMIN_OP (((b < a) | (b != b)) ? b : a)

/* Signed sums and products wrap like numpy's fixed-width ones: computing them
 * on the same bits as uint64 is exact modulo 2^64 and free of overflow UB. */
RED_OPS(sum_u64, uint64_t, uint64_t, 8, 0, a + b)
RED_OPS(prod_u64, uint64_t, uint64_t, 8, 1, a * b)
RED_OPS(sum_f32, float, double, 16, 0.0f, a + b)
RED_OPS(prod_f32, float, double, 16, 1.0f, a * b)
RED_OPS(sum_f64, double, double, 8, 0.0, a + b)
RED_OPS(prod_f64, double, double, 8, 1.0, a * b)
RED_OPS(sum_c64, c64, c128, 8, 0.0f, a + b)
RED_OPS(prod_c64, c64, c128, 8, 1.0f, a * b)
RED_OPS(max_i64, int64_t, int64_t, 8, INT64_MIN, b > a ? b : a)
RED_OPS(min_i64, int64_t, int64_t, 8, INT64_MAX, b < a ? b : a)
RED_OPS(max_u64, uint64_t, uint64_t, 8, 0, b > a ? b : a)
RED_OPS(min_u64, uint64_t, uint64_t, 8, UINT64_MAX, b < a ? b : a)
RED_OPS(max_f32, float, float, 64, -INFINITY, FMAX_OP)
RED_OPS(min_f32, float, float, 64, INFINITY, FMIN_OP)
RED_OPS(max_f64, double, double, 32, -INFINITY, FMAX_OP)
RED_OPS(min_f64, double, double, 32, INFINITY, FMIN_OP)
RED_OPS(all_b, uint8_t, uint8_t, 32, 1, a & b)
RED_OPS(any_b, uint8_t, uint8_t, 32, 0, a | b)

static const red_ops* ops_for(int prim, int cls) {
  switch (prim) {
    case EM_P_SUM:
      return cls == CL_F32 ? &sum_f32 : cls == CL_F64 ? &sum_f64 : cls == CL_C64 ? &sum_c64 : &sum_u64;
    case EM_P_PROD:
      return cls == CL_F32 ? &prod_f32 : cls == CL_F64 ? &prod_f64 : cls == CL_C64 ? &prod_c64 : &prod_u64;
    case EM_P_MAX:
      return cls == CL_F32 ? &max_f32 : cls == CL_F64 ? &max_f64 : cls == CL_U64 ? &max_u64 : &max_i64;
    case EM_P_MIN:
      return cls == CL_F32 ? &min_f32 : cls == CL_F64 ? &min_f64 : cls == CL_U64 ? &min_u64 : &min_i64;
    case EM_P_ALL: return &all_b;
    default: return &any_b;
  }
}

/* ---- layout ---- */

/* Rows accumulated in the narrow type before folding into the wide one. */
#define FOLD_ROWS 64
/* Columns per block when the inner axis is kept: whole rows of a 4096-wide
 * float32 array, so each thread streams contiguous memory (measured 2x
 * faster than 1024-column blocks). */
#define BLOCK_COLS 4096
/* Elements of work per parallel slice, and per piece of a split reduction. */
#define GRAIN_WORK 32768
#define PIECE_WORK 65536
/* Enough work items for the largest pools we expect. */
#define MIN_ITEMS 16

typedef struct {
  const red_ops* ops;
  int cls, csize;          /* compute class and its element size */
  int in_dtype, in_isz, out_dtype, out_isz;
  const char* in;          /* input element at index 0 of every (flipped) axis */
  char* out;
  /* Axes in memory order, outermost first, split into kept and reduced;
   * the innermost memory axis is held apart. */
  int nk, nr;
  int64_t kshape[EM_MAX_NDIM], kin[EM_MAX_NDIM], kout[EM_MAX_NDIM];
  int64_t rshape[EM_MAX_NDIM], rin[EM_MAX_NDIM];
  int64_t inner, inner_in, inner_out;
  int inner_kept;
  int64_t nkept;           /* positions of the kept outer axes */
  int64_t nrows;           /* positions of the reduced outer axes */
  int64_t width, nblocks;  /* inner kept: columns per block, blocks per row */
  int64_t nitems;          /* units of output: one output, or one block of columns */
  int64_t work;            /* input elements per unit of output */
  int64_t nsplit;          /* pieces each unit's reduction is cut into */
  char* partial;           /* nsplit > 1: wide results per (unit, piece) */
} red_job;

static void unravel(int n, const int64_t* shape, const int64_t* s1, const int64_t* s2,
                    int64_t pos, int64_t* o1, int64_t* o2) {
  int64_t a = 0, b = 0;
  for (int d = n - 1; d >= 0; d--) {
    int64_t i = pos % shape[d];
    pos /= shape[d];
    a += i * s1[d];
    if (s2) b += i * s2[d];
  }
  *o1 = a;
  if (o2) *o2 = b;
}

/* Walks the reduced outer positions in order, tracking the input offset. */
typedef struct {
  int64_t idx[EM_MAX_NDIM];
  int64_t off;
} walker;

static void walk_seek(const red_job* job, walker* w, int64_t pos) {
  w->off = 0;
  for (int d = job->nr - 1; d >= 0; d--) {
    w->idx[d] = pos % job->rshape[d];
    pos /= job->rshape[d];
    w->off += w->idx[d] * job->rin[d];
  }
}

static void walk_next(const red_job* job, walker* w) {
  for (int d = job->nr - 1; d >= 0; d--) {
    w->off += job->rin[d];
    if (++w->idx[d] < job->rshape[d]) return;
    w->off -= job->rin[d] * job->rshape[d];
    w->idx[d] = 0;
  }
}

/* n input elements from element offset `off`, stride `stride`, as class
 * values: in place when the input already is that type and contiguous. */
static const void* load(const red_job* job, int64_t off, int64_t stride, int64_t n, void* buf) {
  const char* src = job->in + off * job->in_isz;
  if (stride == 1 && job->in_dtype == em_class_dtype(job->cls)) return src;
  em_load(buf, job->cls, src, job->in_dtype, stride, n);
  return buf;
}

/* Stores n class values for consecutive units of output starting at `unit`
 * (inner axis reduced: units are outputs in kept-axis order). */
static void store_outputs(const red_job* job, int64_t unit, const char* vals, int64_t n) {
  int64_t last = job->nk ? job->kshape[job->nk - 1] : 1;
  int64_t step = job->nk ? job->kout[job->nk - 1] : 0;
  while (n > 0) {
    int64_t in_run = last - unit % last;
    int64_t m = n < in_run ? n : in_run;
    int64_t in_off, out_off = 0;
    if (job->nk) unravel(job->nk, job->kshape, job->kin, job->kout, unit, &in_off, &out_off);
    em_store(job->out + out_off * job->out_isz, job->out_dtype, step, vals, job->cls, m);
    vals += m * job->csize;
    unit += m;
    n -= m;
  }
}

/* Inner axis reduced: the wide result of one output over its piece of the
 * reduced space, which is rows of `inner` elements, flattened. */
static void reduce_piece(const red_job* job, int64_t unit, int64_t piece, void* wide) {
  _Alignas(64) char buf[EM_CHUNK * 8];
  int64_t total = job->nrows * job->inner;
  int64_t lo = total * piece / job->nsplit, hi = total * (piece + 1) / job->nsplit;
  int64_t base;
  unravel(job->nk, job->kshape, job->kin, NULL, unit, &base, NULL);
  walker w;
  walk_seek(job, &w, lo / job->inner);
  int64_t col = lo % job->inner;
  job->ops->fill_wide(wide, 1);
  while (lo < hi) {
    int64_t end = job->inner - col < hi - lo ? job->inner : col + (hi - lo);
    for (int64_t c = col; c < end; c += EM_CHUNK) {
      int64_t m = end - c < EM_CHUNK ? end - c : EM_CHUNK;
      const void* x = load(job, base + w.off + c * job->inner_in, job->inner_in, m, buf);
      job->ops->reduce_into(wide, x, m);
    }
    lo += end - col;
    col = 0;
    walk_next(job, &w);
  }
}

/* Inner axis kept: wide results for one block of columns over its piece of
 * the reduced rows. */
static void accumulate_piece(const red_job* job, int64_t unit, int64_t piece, void* wide) {
  _Alignas(64) char buf[BLOCK_COLS * 8];
  _Alignas(64) char acc[BLOCK_COLS * 8];
  int64_t p = unit / job->nblocks, col = unit % job->nblocks * job->width;
  int64_t w = job->inner - col < job->width ? job->inner - col : job->width;
  int64_t base;
  unravel(job->nk, job->kshape, job->kin, NULL, p, &base, NULL);
  base += col * job->inner_in;
  int64_t lo = job->nrows * piece / job->nsplit, hi = job->nrows * (piece + 1) / job->nsplit;
  walker wk;
  walk_seek(job, &wk, lo);
  int direct = job->inner_in == 1 && job->in_dtype == em_class_dtype(job->cls);
  job->ops->fill_wide(wide, w);
  while (lo < hi) {
    int64_t rows = hi - lo < FOLD_ROWS ? hi - lo : FOLD_ROWS;
    job->ops->fill(acc, w);
    int64_t r = 0;
    if (direct) {
      /* Four rows per pass: one load and store of acc instead of four. */
      for (; r + 4 <= rows; r += 4) {
        const char* x[4];
        for (int k = 0; k < 4; k++) {
          x[k] = job->in + (base + wk.off) * job->in_isz;
          walk_next(job, &wk);
        }
        job->ops->accum4(acc, x[0], x[1], x[2], x[3], w);
      }
    }
    for (; r < rows; r++) {
      job->ops->accum(acc, load(job, base + wk.off, job->inner_in, w, buf), w);
      walk_next(job, &wk);
    }
    job->ops->widen_into(wide, acc, w);
    lo += rows;
  }
}

static void store_block(const red_job* job, int64_t unit, const void* wide) {
  _Alignas(64) char vals[BLOCK_COLS * 8];
  int64_t p = unit / job->nblocks, col = unit % job->nblocks * job->width;
  int64_t w = job->inner - col < job->width ? job->inner - col : job->width;
  int64_t in_off, out_off;
  unravel(job->nk, job->kshape, job->kin, job->kout, p, &in_off, &out_off);
  out_off += col * job->inner_out;
  job->ops->narrow(vals, wide, w);
  em_store(job->out + out_off * job->out_isz, job->out_dtype, job->inner_out, vals, job->cls, w);
}

static void reduce_range(void* ctx, int64_t lo, int64_t hi) {
  const red_job* job = ctx;
  _Alignas(64) char wide[BLOCK_COLS * 16];
  _Alignas(64) char vals[EM_CHUNK * 8];
  if (job->nsplit > 1) {
    /* Items are (unit, piece) pairs; results are combined afterwards. */
    int64_t stride = (job->inner_kept ? job->width : 1) * job->ops->wide_size;
    for (int64_t item = lo; item < hi; item++) {
      char* dst = job->partial + item * stride;
      if (job->inner_kept) accumulate_piece(job, item / job->nsplit, item % job->nsplit, dst);
      else reduce_piece(job, item / job->nsplit, item % job->nsplit, dst);
    }
  } else if (job->inner_kept) {
    for (int64_t unit = lo; unit < hi; unit++) {
      accumulate_piece(job, unit, 0, wide);
      store_block(job, unit, wide);
    }
  } else {
    /* Outputs are gathered a chunk at a time so stores run along the
     * output rather than one element per call. */
    int ws = job->ops->wide_size;
    for (int64_t start = lo; start < hi; start += EM_CHUNK) {
      int64_t m = hi - start < EM_CHUNK ? hi - start : EM_CHUNK;
      for (int64_t k = 0; k < m; k++) reduce_piece(job, start + k, 0, wide + k * ws);
      job->ops->narrow(vals, wide, m);
      store_outputs(job, start, vals, m);
    }
  }
}

/* Folds the pieces of each unit together, in piece order, and stores. */
static void finish_split(const red_job* job) {
  _Alignas(64) char vals[EM_CHUNK * 8];
  int ws = job->ops->wide_size;
  int64_t width = job->inner_kept ? job->width : 1;
  for (int64_t unit = 0; unit < job->nitems; unit++) {
    char* first = job->partial + unit * job->nsplit * width * ws;
    for (int64_t s = 1; s < job->nsplit; s++)
      job->ops->combine(first, first + s * width * ws, width);
    if (job->inner_kept) {
      store_block(job, unit, first);
    } else {
      job->ops->narrow(vals, first, 1);
      store_outputs(job, unit, vals, 1);
    }
  }
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Pieces per unit: only when units are too few to occupy the pool, and
 * from the shape alone so the summation order is fixed. */
static int64_t pieces_for(int64_t nitems, int64_t work) {
  if (nitems >= MIN_ITEMS || work < 2 * PIECE_WORK) return 1;
  return min64(MIN_ITEMS / nitems > 1 ? MIN_ITEMS / nitems : 1, work / PIECE_WORK);
}

/* Writes the identity of the reduction into every output. */
static void fill_identity(em_array* out, const red_ops* ops, int cls) {
  _Alignas(64) char wide[EM_CHUNK * 16];
  _Alignas(64) char vals[EM_CHUNK * 8];
  int isz = em_dtype_size(out->dtype);
  for (int64_t i = 0; i < out->size; i += EM_CHUNK) {
    int64_t m = min64(out->size - i, EM_CHUNK);
    ops->fill_wide(wide, m);
    ops->narrow(vals, wide, m);
    em_store((char*)out->buf->data + i * isz, out->dtype, 1, vals, cls, m);
  }
}

int em_kernel_reduce(em_array* out) {
  em_array* in = out->inputs[0];
  int prim = out->prim;
  int cls = (prim == EM_P_ALL || prim == EM_P_ANY) ? CL_BOOL : em_class_of(out->dtype);
  const red_ops* ops = ops_for(prim, cls);
  int reduced[EM_MAX_NDIM] = {0};
  int64_t count = 1;
  for (int i = 0; i < out->nip; i++) {
    reduced[out->ip[i]] = 1;
    count *= in->shape[out->ip[i]];
  }
  if (out->size == 0 || count <= 1) {
    int status = em_alloc_output(out);
    if (status != EM_OK) return status;
    /* One element per output: the reduction is a conversion. */
    if (out->size && count == 1) em_copy_into(out, 0, out->strides, in);
    else if (out->size) fill_identity(out, ops, cls);
    return EM_OK;
  }

  red_job job;
  job.ops = ops;
  job.cls = cls;
  job.csize = em_class_size(cls);
  job.in_dtype = in->dtype;
  job.in_isz = em_dtype_size(in->dtype);
  job.out_dtype = out->dtype;
  job.out_isz = em_dtype_size(out->dtype);
  int64_t ostr[EM_MAX_NDIM];
  for (int d = 0; d < in->ndim; d++) ostr[d] = reduced[d] ? 0 : out->strides[d];
  em_iter it;
  int64_t in_off = 0, out_off = 0;
  em_iter_in_memory_order(&it, in->ndim, in->shape, in->strides, ostr, &in_off, &out_off);
  int last = it.ndim - 1;
  job.inner = it.shape[last];
  job.inner_in = it.strides[0][last];
  job.inner_out = it.strides[1][last];
  /* Kept axes of size > 1 have a nonzero output stride. */
  job.inner_kept = job.inner_out != 0;
  job.nk = job.nr = 0;
  job.nkept = job.nrows = 1;
  for (int d = 0; d < last; d++) {
    if (it.strides[1][d] != 0) {
      job.kshape[job.nk] = it.shape[d];
      job.kin[job.nk] = it.strides[0][d];
      job.kout[job.nk++] = it.strides[1][d];
      job.nkept *= it.shape[d];
    } else {
      job.rshape[job.nr] = it.shape[d];
      job.rin[job.nr++] = it.strides[0][d];
      job.nrows *= it.shape[d];
    }
  }
  if (job.inner_kept) {
    job.width = min64(job.inner, BLOCK_COLS);
    job.nblocks = (job.inner + job.width - 1) / job.width;
    job.nitems = job.nkept * job.nblocks;
    job.work = job.nrows * job.width;
  } else {
    job.width = job.nblocks = 1;
    job.nitems = job.nkept;
    job.work = job.nrows * job.inner;
  }
  job.nsplit = pieces_for(job.nitems, job.work);
  job.partial = NULL;
  if (job.nsplit > 1) {
    size_t bytes = (size_t)(job.nitems * job.nsplit * job.width) * (size_t)ops->wide_size;
    job.partial = malloc(bytes);
    if (!job.partial) {
      em_fail(EM_MEMORY_ERROR, "[%s] out of memory for partial results", em_prim_name(prim));
      return EM_MEMORY_ERROR;
    }
  }
  int status = em_alloc_output(out);
  if (status != EM_OK) {
    free(job.partial);
    return status;
  }
  job.in = (const char*)in->buf->data + (in->offset + in_off) * job.in_isz;
  job.out = (char*)out->buf->data + out_off * job.out_isz;
  int64_t per_item = job.work / job.nsplit;
  int64_t grain = per_item >= GRAIN_WORK ? 1 : GRAIN_WORK / (per_item ? per_item : 1);
  em_parallel_for(job.nitems * job.nsplit, grain, reduce_range, &job);
  if (job.nsplit > 1) finish_split(&job);
  free(job.partial);
  return EM_OK;
}

/* ---- argmax / argmin ---- */

/* Along a contiguous line, each chunk's max (or min) comes from the
 * vectorised reduction above; only a chunk that beats the best so far is
 * searched for the first position holding that value. Across side-by-side
 * lines, one compare-and-select pass per step updates every line at once.
 * BETTER is true when b (at a later index) replaces the best so far a:
 * strictly better, or the first NaN (numpy's argmax/argmin pick the first
 * NaN). */
#define ARG_FNS(NAME, T, BETTER)                                                     \
  static int NAME##_better(const void* a_, const void* b_) {                         \
    T a = *(const T*)a_, b = *(const T*)b_;                                          \
    return (BETTER);                                                                 \
  }                                                                                  \
  static int64_t NAME##_find(const void* x_, int64_t n, const void* v_) {            \
    const T* x = x_;                                                                 \
    T v = *(const T*)v_;                                                             \
    if (v != v) {                                                                    \
      for (int64_t i = 0; i < n; i++)                                                \
        if (x[i] != x[i]) return i;                                                  \
    }                                                                                \
    for (int64_t i = 0; i < n; i++)                                                  \
      if (x[i] == v) return i;                                                       \
    return 0;                                                                        \
  }                                                                                  \
  static void NAME##_cols(void* best_, uint32_t* idx, const void* x_, int64_t n,     \
                          uint32_t i) {                                              \
    T* best = best_;                                                                 \
    const T* x = x_;                                                                 \
    for (int64_t j = 0; j < n; j++) {                                                \
      T a = best[j], b = x[j];                                                       \
      int t = (BETTER);                                                              \
      best[j] = t ? b : a;                                                           \
      idx[j] = t ? i : idx[j];                                                       \
    }                                                                                \
  }                                                                                  \
  static const arg_ops NAME = {NAME##_better, NAME##_find, NAME##_cols};

typedef struct {
  int (*better)(const void* a, const void* b);
  int64_t (*find)(const void* x, int64_t n, const void* v);  /* first index holding v */
  void (*cols)(void* best, uint32_t* idx, const void* x, int64_t n, uint32_t i);
} arg_ops;

#define FBETTER_MAX ((b > a) | ((b != b) & (a == a)))
#define FBETTER_MIN ((b < a) | ((b != b) & (a == a)))
ARG_FNS(argmax_i64, int64_t, b > a)
ARG_FNS(argmin_i64, int64_t, b < a)
ARG_FNS(argmax_u64, uint64_t, b > a)
ARG_FNS(argmin_u64, uint64_t, b < a)
ARG_FNS(argmax_f32, float, FBETTER_MAX)
ARG_FNS(argmin_f32, float, FBETTER_MIN)
ARG_FNS(argmax_f64, double, FBETTER_MAX)
ARG_FNS(argmin_f64, double, FBETTER_MIN)

typedef struct {
  const arg_ops* ops;
  const red_ops* reduce;   /* max or min for the class */
  int cls, csize, in_dtype, in_isz;
  const char* in;
  uint32_t* out;
  em_iter it;              /* kept axes in memory order: input, output strides */
  int64_t n, stride;       /* the reduced axis */
  int row_mode;            /* the reduced axis is innermost in memory */
  int64_t width, nblocks;  /* column mode: blocks along the kept inner axis */
} arg_job;

static const void* arg_load(const arg_job* job, int64_t off, int64_t stride, int64_t n, void* buf) {
  const char* src = job->in + off * job->in_isz;
  if (stride == 1 && job->in_dtype == em_class_dtype(job->cls)) return src;
  em_load(buf, job->cls, src, job->in_dtype, stride, n);
  return buf;
}

static void arg_range(void* ctx, int64_t lo, int64_t hi) {
  const arg_job* job = ctx;
  _Alignas(64) char buf[EM_CHUNK * 8];
  _Alignas(64) char best[EM_CHUNK * 8];
  uint32_t idx[EM_CHUNK];
  int last = job->it.ndim - 1;
  int64_t ilen = job->it.shape[last], iin = job->it.strides[0][last], iout = job->it.strides[1][last];
  int64_t offs[2];
  for (int64_t item = lo; item < hi; item++) {
    if (job->row_mode) {
      /* item is an output: scan its line a chunk at a time. */
      em_iter_offsets(&job->it, item / ilen, offs);
      int64_t base = offs[0] + item % ilen * iin;
      int64_t best_idx = 0;
      _Alignas(16) char chunk_best[8];
      for (int64_t i = 0; i < job->n; i += EM_CHUNK) {
        int64_t m = min64(job->n - i, EM_CHUNK);
        const void* x = arg_load(job, base + i * job->stride, job->stride, m, buf);
        job->reduce->fill_wide(chunk_best, 1);
        job->reduce->reduce_into(chunk_best, x, m);
        if (i == 0 || job->ops->better(best, chunk_best)) {
          memcpy(best, chunk_best, (size_t)job->csize);
          best_idx = i + job->ops->find(x, m, chunk_best);
        }
      }
      job->out[offs[1] + item % ilen * iout] = (uint32_t)best_idx;
    } else {
      /* item is a block of outputs along the kept inner axis. */
      int64_t col = item % job->nblocks * job->width;
      int64_t w = min64(ilen - col, job->width);
      em_iter_offsets(&job->it, item / job->nblocks, offs);
      int64_t base = offs[0] + col * iin;
      memcpy(best, arg_load(job, base, iin, w, buf), (size_t)(w * job->csize));
      memset(idx, 0, sizeof(uint32_t) * (size_t)w);
      for (int64_t i = 1; i < job->n; i++)
        job->ops->cols(best, idx, arg_load(job, base + i * job->stride, iin, w, buf), w, (uint32_t)i);
      uint32_t* dst = job->out + offs[1] + col * iout;
      for (int64_t j = 0; j < w; j++) dst[j * iout] = idx[j];
    }
  }
}

int em_kernel_argreduce(em_array* out) {
  em_array* in = out->inputs[0];
  int axis = (int)out->ip[0];
  int is_max = out->prim == EM_P_ARGMAX;
  arg_job job;
  job.cls = em_class_of(in->dtype);
  switch (job.cls) {
    case CL_I64: job.ops = is_max ? &argmax_i64 : &argmin_i64; break;
    case CL_U64: job.ops = is_max ? &argmax_u64 : &argmin_u64; break;
    case CL_F32: job.ops = is_max ? &argmax_f32 : &argmin_f32; break;
    case CL_F64: job.ops = is_max ? &argmax_f64 : &argmin_f64; break;
    default:
      em_fail(EM_TYPE_ERROR, "[%s] not defined for %s", em_prim_name(out->prim),
              em_dtype_name(in->dtype));
      return EM_TYPE_ERROR;
  }
  job.reduce = ops_for(is_max ? EM_P_MAX : EM_P_MIN, job.cls);
  int status = em_alloc_output(out);
  if (status != EM_OK) return status;
  if (out->size == 0) return EM_OK;
  job.csize = em_class_size(job.cls);
  job.in_dtype = in->dtype;
  job.in_isz = em_dtype_size(in->dtype);
  job.n = in->shape[axis];
  job.stride = in->strides[axis];
  int64_t in_off = 0, out_off = 0;
  em_iter_in_memory_order(&job.it, out->ndim, out->shape, in->strides, out->strides, &in_off, &out_off);
  job.in = (const char*)in->buf->data + (in->offset + in_off) * job.in_isz;
  job.out = (uint32_t*)out->buf->data + out_off;
  int last = job.it.ndim - 1;
  int64_t ilen = job.it.shape[last];
  int64_t kstride = job.it.strides[0][last];
  job.row_mode = ilen == 1 || llabs(job.stride) < llabs(kstride);
  int64_t items, per_item;
  if (job.row_mode) {
    items = out->size;
    per_item = job.n;
  } else {
    job.width = min64(ilen, EM_CHUNK);
    job.nblocks = (ilen + job.width - 1) / job.width;
    items = em_iter_outer(&job.it) * job.nblocks;
    per_item = job.n * job.width;
  }
  int64_t grain = per_item >= GRAIN_WORK ? 1 : GRAIN_WORK / per_item;
  em_parallel_for(items, grain, arg_range, &job);
  return EM_OK;
}
