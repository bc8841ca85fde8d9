/* index.c: gathers and scatters along one axis (take, take_along_axis,
 * scatter_along_axis).
 *
 * Indices may have any integer dtype and any layout; negative ones count from
 * the end of the axis. Every kernel checks all its indices before it writes
 * anything: errors are per thread, so the pool's workers only note the first
 * bad position and the calling thread reports it, and a scatter into a donated
 * buffer never leaves its input half-updated. Elements are moved by their byte
 * size; only the scatter modes that combine values compute, in the dtype's
 * compute class.
 */
#include <math.h>
#include <string.h>

#include "classes.h"

/* ---- reading indices ---- */

#define READ_LOOP(T, EXPR)                                                             \
  do {                                                                                 \
    const T* s = src;                                                                  \
    if (stride == 1)                                                                   \
      for (int64_t i = 0; i < n; i++) { T v = s[i]; dst[i] = (EXPR); }                 \
    else                                                                               \
      for (int64_t i = 0; i < n; i++) { T v = s[i * stride]; dst[i] = (EXPR); }        \
  } while (0)

/* Reads n indices of an integer dtype (stride in elements) as int64. */
static void read_indices(int64_t* dst, const void* src, int dtype, int64_t stride, int64_t n) {
  switch (dtype) {
    case EM_BOOL: case EM_UINT8: READ_LOOP(uint8_t, (int64_t)v); break;
    case EM_UINT16: READ_LOOP(uint16_t, (int64_t)v); break;
    case EM_UINT32: READ_LOOP(uint32_t, (int64_t)v); break;
    /* Past INT64_MAX an index is out of bounds anyway: saturate so that it
     * cannot wrap around to a valid negative index. */
    case EM_UINT64: READ_LOOP(uint64_t, v > INT64_MAX ? INT64_MAX : (int64_t)v); break;
    case EM_INT8: READ_LOOP(int8_t, v); break;
    case EM_INT16: READ_LOOP(int16_t, v); break;
    case EM_INT32: READ_LOOP(int32_t, v); break;
    case EM_INT64: READ_LOOP(int64_t, v); break;
    default: memset(dst, 0, sizeof(int64_t) * (size_t)n); break; /* refused by the shape rule */
  }
}

/* Wraps already checked indices into [0, size). */
static void wrap_indices(int64_t* t, int64_t n, int64_t size) {
  for (int64_t i = 0; i < n; i++) t[i] += t[i] < 0 ? size : 0;
}

/* ---- checking indices ---- */

typedef struct {
  em_iter it; /* over the indices, in row-major order */
  const char* base;
  int dtype;
  int64_t size;        /* of the indexed axis */
  int64_t inner, chunks_per_run;
  int64_t* wrapped;    /* row-major copy of the wrapped indices, or NULL */
  _Atomic int64_t first_bad; /* lowest row-major position of a bad index */
} check_job;

static void check_range(void* ctx, int64_t lo, int64_t hi) {
  check_job* job = ctx;
  int64_t buf[EM_CHUNK], offset;
  int64_t stride = job->it.strides[0][job->it.ndim - 1];
  int esize = em_dtype_size(job->dtype);
  for (int64_t item = lo; item < hi; item++) {
    int64_t run = item / job->chunks_per_run, start = item % job->chunks_per_run * EM_CHUNK;
    int64_t n = job->inner - start < EM_CHUNK ? job->inner - start : EM_CHUNK;
    int64_t pos = run * job->inner + start;
    int64_t* t = job->wrapped ? job->wrapped + pos : buf;
    em_iter_offsets(&job->it, run, &offset);
    read_indices(t, job->base + (offset + start * stride) * esize, job->dtype, stride, n);
    for (int64_t i = 0; i < n; i++) {
      int64_t v = t[i] < 0 ? t[i] + job->size : t[i];
      if ((uint64_t)v >= (uint64_t)job->size) {
        /* Items run in order, so this is the first bad index of the slice. */
        int64_t seen = atomic_load(&job->first_bad);
        while (pos + i < seen && !atomic_compare_exchange_weak(&job->first_bad, &seen, pos + i)) {
        }
        return;
      }
      t[i] = v;
    }
  }
}

/* Checks every index against an axis of `size`; optionally writes the wrapped
 * indices, row-major, to `wrapped`. Fails with IndexError naming the first bad
 * index in row-major order, so the message does not depend on threading. */
static int check_indices(em_array* idx, int64_t size, const char* op, int axis, int64_t* wrapped) {
  if (idx->size == 0) return EM_OK;
  check_job job;
  const int64_t* strides[1] = {idx->strides};
  em_iter_init(&job.it, idx->ndim, idx->shape, 1, strides);
  job.base = (const char*)idx->buf->data + idx->offset * em_dtype_size(idx->dtype);
  job.dtype = idx->dtype;
  job.size = size;
  job.inner = job.it.shape[job.it.ndim - 1];
  job.chunks_per_run = (job.inner + EM_CHUNK - 1) / EM_CHUNK;
  job.wrapped = wrapped;
  atomic_init(&job.first_bad, INT64_MAX);
  int64_t per_item = job.inner < EM_CHUNK ? job.inner : EM_CHUNK;
  em_parallel_for(em_iter_outer(&job.it) * job.chunks_per_run, (65536 + per_item - 1) / per_item,
                  check_range, &job);
  int64_t bad = atomic_load(&job.first_bad);
  if (bad == INT64_MAX) return EM_OK;
  /* Read the offending index again: its row-major position gives its offset. */
  int64_t offset = 0, rest = bad, value;
  for (int d = idx->ndim - 1; d >= 0; d--) {
    offset += rest % idx->shape[d] * idx->strides[d];
    rest /= idx->shape[d];
  }
  const char* at = job.base + offset * em_dtype_size(idx->dtype);
  read_indices(&value, at, idx->dtype, 1, 1);
  if (idx->dtype == EM_UINT64 && value == INT64_MAX) /* saturated on reading */
    em_fail(EM_INDEX_ERROR, "[%s] index %llu is out of bounds for axis %d with size %lld", op,
            (unsigned long long)*(const uint64_t*)at, axis, (long long)size);
  else
    em_fail(EM_INDEX_ERROR, "[%s] index %lld is out of bounds for axis %d with size %lld", op,
            (long long)value, axis, (long long)size);
  return EM_INDEX_ERROR;
}

/* ---- moving elements by byte size ---- */

/* memcpy of a constant size compiles to one load and store and, unlike a cast
 * to an integer pointer, is defined for any element type. */
#define MOVE_LOOP(SZ, DST_OFF, SRC_OFF) \
  for (int64_t i = 0; i < n; i++) memcpy(dst + (DST_OFF) * SZ, src + (SRC_OFF) * SZ, SZ)

#define BY_SIZE(esize, DST_OFF, SRC_OFF)            \
  switch (esize) {                                  \
    case 1: MOVE_LOOP(1, DST_OFF, SRC_OFF); break;  \
    case 2: MOVE_LOOP(2, DST_OFF, SRC_OFF); break;  \
    case 4: MOVE_LOOP(4, DST_OFF, SRC_OFF); break;  \
    default: MOVE_LOOP(8, DST_OFF, SRC_OFF); break; \
  }

/* dst[i * ds] = src[i * ss] */
static void copy_strided(char* dst, int64_t ds, const char* src, int64_t ss, int64_t n, int esize) {
  if (ds == 1 && ss == 1) memcpy(dst, src, (size_t)(n * esize));
  else BY_SIZE(esize, i * ds, i * ss)
}

/* dst[i * ds] = src[i * ss + t[i] * sax] */
static void gather(char* dst, int64_t ds, const char* src, int64_t ss, const int64_t* t,
                   int64_t sax, int64_t n, int esize) {
  BY_SIZE(esize, i * ds, i * ss + t[i] * sax)
}

/* dst[i * ds + t[i] * dax] = src[i * ss], in order of i */
static void scatter(char* dst, int64_t ds, const int64_t* t, int64_t dax, const char* src,
                    int64_t ss, int64_t n, int esize) {
  BY_SIZE(esize, i * ds + t[i] * dax, i * ss)
}

static const char* first_element(const em_array* a) {
  return (const char*)a->buf->data + a->offset * em_dtype_size(a->dtype);
}

/* ---- take ---- */

typedef struct {
  const char* a;
  char* out;
  const int64_t* idx;  /* wrapped, row-major */
  int64_t nidx, inner, axis_stride;
  int esize;
  int npre;            /* a's axes before `axis` */
  const int64_t* pre_shape;
  const int64_t* pre_strides;
  em_iter post;        /* a's axes after `axis` */
  int post_contiguous;
} take_job;

/* Output rows are (pre position, index) pairs of `inner` elements each. */
static void take_range(void* ctx, int64_t lo, int64_t hi) {
  take_job* job = ctx;
  int esize = job->esize;
  int64_t post_runs = em_iter_outer(&job->post), run_len = job->post.shape[job->post.ndim - 1];
  int64_t post_stride = job->post.strides[0][job->post.ndim - 1];
  for (int64_t row = lo; row < hi;) {
    int64_t o = row / job->nidx, j = row % job->nidx;
    int64_t end = (o + 1) * job->nidx < hi ? (o + 1) * job->nidx : hi;
    int64_t pre = 0, rest = o;
    for (int d = job->npre - 1; d >= 0; d--) {
      pre += rest % job->pre_shape[d] * job->pre_strides[d];
      rest /= job->pre_shape[d];
    }
    const char* src = job->a + pre * esize;
    char* dst = job->out + row * job->inner * esize;
    if (job->inner == 1) {
      /* One element per index (a 1-D table, or the last axis): a gather. */
      gather(dst, 1, src, 0, job->idx + j, job->axis_stride, end - row, esize);
    } else {
      for (int64_t k = j; k < j + (end - row); k++, dst += job->inner * esize) {
        const char* line = src + job->idx[k] * job->axis_stride * esize;
        if (job->post_contiguous) {
          memcpy(dst, line, (size_t)(job->inner * esize));
          continue;
        }
        for (int64_t r = 0; r < post_runs; r++) {
          int64_t offset;
          em_iter_offsets(&job->post, r, &offset);
          copy_strided(dst + r * run_len * esize, 1, line + offset * esize, post_stride, run_len,
                       esize);
        }
      }
    }
    row = end;
  }
}

int em_kernel_take(em_array* out) {
  em_array* a = out->inputs[0];
  em_array* idx = out->inputs[1];
  int axis = (int)out->ip[0];
  em_buffer* wrapped = NULL;
  if (out->size > 0) {
    wrapped = em_buffer_new(sizeof(int64_t) * (size_t)idx->size);
    if (!wrapped) return EM_MEMORY_ERROR;
    int status = check_indices(idx, a->shape[axis], "take", axis, wrapped->data);
    if (status != EM_OK) {
      em_buffer_release(wrapped);
      return status;
    }
  }
  int status = em_alloc_output(out);
  if (status != EM_OK || out->size == 0) {
    if (wrapped) em_buffer_release(wrapped);
    return status;
  }
  take_job job;
  job.a = first_element(a);
  job.out = out->buf->data;
  job.idx = wrapped->data;
  job.nidx = idx->size;
  job.axis_stride = a->strides[axis];
  job.esize = em_dtype_size(a->dtype);
  job.npre = axis;
  job.pre_shape = a->shape;
  job.pre_strides = a->strides;
  const int64_t* post_strides[1] = {a->strides + axis + 1};
  em_iter_init(&job.post, a->ndim - axis - 1, a->shape + axis + 1, 1, post_strides);
  job.inner = job.post.shape[0];
  for (int d = 1; d < job.post.ndim; d++) job.inner *= job.post.shape[d];
  job.post_contiguous = job.post.ndim == 1 && (job.post.strides[0][0] == 1 || job.inner == 1);
  int64_t rows = out->size / job.inner;
  em_parallel_for(rows, (32768 + job.inner - 1) / job.inner, take_range, &job);
  em_buffer_release(wrapped);
  return EM_OK;
}

/* ---- take_along_axis ---- */

typedef struct {
  em_iter it;          /* over out's shape; operands: out, indices, a (axis stride 0) */
  char* out;
  const char* idx;
  const char* a;
  int idx_dtype, esize;
  int64_t size, axis_stride, inner, chunks_per_run;
} along_job;

static void along_range(void* ctx, int64_t lo, int64_t hi) {
  along_job* job = ctx;
  int64_t t[EM_CHUNK], off[3];
  int last = job->it.ndim - 1;
  int64_t os = job->it.strides[0][last], is = job->it.strides[1][last],
          as = job->it.strides[2][last];
  int isize = em_dtype_size(job->idx_dtype), esize = job->esize;
  for (int64_t item = lo; item < hi; item++) {
    int64_t run = item / job->chunks_per_run, start = item % job->chunks_per_run * EM_CHUNK;
    int64_t n = job->inner - start < EM_CHUNK ? job->inner - start : EM_CHUNK;
    em_iter_offsets(&job->it, run, off);
    read_indices(t, job->idx + (off[1] + start * is) * isize, job->idx_dtype, is, n);
    wrap_indices(t, n, job->size);
    gather(job->out + (off[0] + start * os) * esize, os, job->a + (off[2] + start * as) * esize,
           as, t, job->axis_stride, n, esize);
  }
}

/* Strides of x broadcast to `ndim` axes of equal rank (0 where x has size 1). */
static void same_rank_strides(const em_array* x, int64_t* strides) {
  for (int d = 0; d < x->ndim; d++) strides[d] = x->shape[d] == 1 ? 0 : x->strides[d];
}

int em_kernel_take_along_axis(em_array* out) {
  em_array* a = out->inputs[0];
  em_array* idx = out->inputs[1];
  int axis = (int)out->ip[0];
  if (out->size > 0) {
    int status = check_indices(idx, a->shape[axis], "take_along_axis", axis, NULL);
    if (status != EM_OK) return status;
  }
  int status = em_alloc_output(out);
  if (status != EM_OK || out->size == 0) return status;
  along_job job;
  int64_t idx_strides[EM_MAX_NDIM], a_strides[EM_MAX_NDIM];
  same_rank_strides(idx, idx_strides);
  same_rank_strides(a, a_strides);
  a_strides[axis] = 0; /* the index supplies the position on the axis */
  const int64_t* strides[3] = {out->strides, idx_strides, a_strides};
  em_iter_init(&job.it, out->ndim, out->shape, 3, strides);
  job.out = out->buf->data;
  job.idx = first_element(idx);
  job.a = first_element(a);
  job.idx_dtype = idx->dtype;
  job.esize = em_dtype_size(a->dtype);
  job.size = a->shape[axis];
  job.axis_stride = a->strides[axis];
  job.inner = job.it.shape[job.it.ndim - 1];
  job.chunks_per_run = (job.inner + EM_CHUNK - 1) / EM_CHUNK;
  int64_t per_item = job.inner < EM_CHUNK ? job.inner : EM_CHUNK;
  em_parallel_for(em_iter_outer(&job.it) * job.chunks_per_run, (32768 + per_item - 1) / per_item,
                  along_range, &job);
  return EM_OK;
}

/* ---- scatter_along_axis ---- */

/* Python's floor division; integer division by zero gives 0 rather than trapping. */
static inline int64_t floordiv_i64(int64_t x, int64_t y) {
  if (y == 0) return 0;
  if (y == -1) return (int64_t)(0 - (uint64_t)x);
  int64_t q = x / y;
  return (x % y != 0 && ((x < 0) != (y < 0))) ? q - 1 : q;
}
static inline uint64_t div_u64(uint64_t x, uint64_t y) { return y ? x / y : 0; }
/* Maximum and minimum propagate NaN, like numpy's. */
static inline float max_f32(float x, float y) { return (x > y || isnan(x)) ? x : y; }
static inline float min_f32(float x, float y) { return (x < y || isnan(x)) ? x : y; }
static inline double max_f64(double x, double y) { return (x > y || isnan(x)) ? x : y; }
static inline double min_f64(double x, double y) { return (x < y || isnan(x)) ? x : y; }
/* The shape rule refuses complex maximum/minimum; order by real part regardless. */
static inline c64 max_c64(c64 x, c64 y) { return crealf(y) > crealf(x) ? y : x; }
static inline c64 min_c64(c64 x, c64 y) { return crealf(y) < crealf(x) ? y : x; }
/* Signed sums and products wrap, computed on the unsigned bits. */
static inline int64_t add_i64(int64_t x, int64_t y) { return (int64_t)((uint64_t)x + (uint64_t)y); }
static inline int64_t mul_i64(int64_t x, int64_t y) { return (int64_t)((uint64_t)x * (uint64_t)y); }

#define COMBINE_LOOP(T, EXPR)                                                      \
  do {                                                                             \
    const T* v = values;                                                           \
    for (int64_t i = 0; i < n; i++) {                                              \
      T* p = (T*)(base + (i * bs + (t ? t[i] * bax : 0)) * (int64_t)sizeof(T));    \
      T x = *p, y = v[i];                                                          \
      *p = (EXPR);                                                                 \
    }                                                                              \
  } while (0)

#define COMBINE_MODES(T, ADD, MUL, DIV, MAX, MIN)        \
  switch (mode) {                                        \
    case EM_SCATTER_ADD: COMBINE_LOOP(T, ADD); break;    \
    case EM_SCATTER_MULTIPLY: COMBINE_LOOP(T, MUL); break; \
    case EM_SCATTER_DIVIDE: COMBINE_LOOP(T, DIV); break; \
    case EM_SCATTER_MAXIMUM: COMBINE_LOOP(T, MAX); break; \
    case EM_SCATTER_MINIMUM: COMBINE_LOOP(T, MIN); break; \
    default: COMBINE_LOOP(T, ((void)x, y)); break;       \
  }

/* In order of i: b[i * bs + t[i] * bax] = mode(b[...], values[i]) on memory
 * of class cls (t NULL: no index term). In order, so repeated targets
 * accumulate. */
static void combine(char* base, int64_t bs, const int64_t* t, int64_t bax, const void* values,
                    int cls, int mode, int64_t n) {
  switch (cls) {
    case CL_I64:
      COMBINE_MODES(int64_t, add_i64(x, y), mul_i64(x, y), floordiv_i64(x, y),
                    x > y ? x : y, x < y ? x : y);
      break;
    case CL_U64:
      COMBINE_MODES(uint64_t, x + y, x * y, div_u64(x, y), x > y ? x : y, x < y ? x : y);
      break;
    case CL_F32:
      COMBINE_MODES(float, x + y, x * y, x / y, max_f32(x, y), min_f32(x, y));
      break;
    case CL_F64:
      COMBINE_MODES(double, x + y, x * y, x / y, max_f64(x, y), min_f64(x, y));
      break;
    default:
      COMBINE_MODES(c64, x + y, x * y, x / y, max_c64(x, y), min_c64(x, y));
      break;
  }
}

typedef struct {
  em_iter it;     /* over a's axes except `axis`; operands: out, indices, values */
  char* out;
  const char* idx;
  const char* vals;
  int out_dtype, idx_dtype, vals_dtype, cls, mode;
  int in_place;   /* out's dtype is its class's own: combine directly in out */
  int64_t size;   /* a.shape[axis] */
  int64_t length; /* positions along the axis */
  int64_t out_ax, idx_ax, vals_ax;
  int64_t inner, chunks_per_run;
} scatter_job;

/* Across lines: a chunk of positions that differ off the axis, stepped along
 * the axis together. Their targets lie on different lines of out, so a chunk
 * may be gathered, combined and scattered back as a whole. */
static void scatter_across(void* ctx, int64_t lo, int64_t hi) {
  scatter_job* job = ctx;
  int64_t t[EM_CHUNK], off[3];
  _Alignas(64) char vbuf[EM_CHUNK * 8], acc[EM_CHUNK * 8], tmp[EM_CHUNK * 8];
  int last = job->it.ndim - 1;
  int64_t os = job->it.strides[0][last], is = job->it.strides[1][last],
          vs = job->it.strides[2][last];
  int esize = em_dtype_size(job->out_dtype), isize = em_dtype_size(job->idx_dtype),
      vsize = em_dtype_size(job->vals_dtype);
  int raw = job->mode == EM_SCATTER_SET && job->vals_dtype == job->out_dtype;
  for (int64_t item = lo; item < hi; item++) {
    int64_t run = item / job->chunks_per_run, start = item % job->chunks_per_run * EM_CHUNK;
    int64_t n = job->inner - start < EM_CHUNK ? job->inner - start : EM_CHUNK;
    em_iter_offsets(&job->it, run, off);
    char* line = job->out + (off[0] + start * os) * esize;
    for (int64_t k = 0; k < job->length; k++) {
      read_indices(t, job->idx + (off[1] + k * job->idx_ax + start * is) * isize, job->idx_dtype,
                   is, n);
      wrap_indices(t, n, job->size);
      const char* v = job->vals + (off[2] + k * job->vals_ax + start * vs) * vsize;
      if (raw) {
        scatter(line, os, t, job->out_ax, v, vs, n, esize);
        continue;
      }
      /* Values broadcast along the axis are converted once per chunk. */
      if (k == 0 || job->vals_ax != 0) em_load(vbuf, job->cls, v, job->vals_dtype, vs, n);
      if (job->in_place) {
        combine(line, os, t, job->out_ax, vbuf, job->cls, job->mode, n);
      } else {
        gather(tmp, 1, line, os, t, job->out_ax, n, esize);
        em_load(acc, job->cls, tmp, job->out_dtype, 1, n);
        combine(acc, 1, NULL, 0, vbuf, job->cls, job->mode, n);
        em_store(tmp, job->out_dtype, 1, acc, job->cls, n);
        scatter(line, os, t, job->out_ax, tmp, 1, n, esize);
      }
    }
  }
}

/* Along a line: one position off the axis, its axis positions in chunks.
 * Targets may repeat within a chunk, so elements combine one at a time: in
 * out itself where out's dtype is its class's own, in a class copy of the
 * whole line for short integer lines (exact: integer results wrap the same
 * whether stored after each step or once), else element by element, so that
 * half types round after every step as they do across lines. */
static void scatter_along(void* ctx, int64_t lo, int64_t hi) {
  scatter_job* job = ctx;
  int64_t t[EM_CHUNK], off[3];
  _Alignas(64) char vbuf[EM_CHUNK * 8], lbuf[EM_CHUNK * 8];
  int last = job->it.ndim - 1;
  int esize = em_dtype_size(job->out_dtype), isize = em_dtype_size(job->idx_dtype),
      vsize = em_dtype_size(job->vals_dtype), csize = em_class_size(job->cls);
  int raw = job->mode == EM_SCATTER_SET && job->vals_dtype == job->out_dtype;
  int buffered = !raw && !job->in_place && job->cls != CL_F32 && job->size <= EM_CHUNK;
  for (int64_t item = lo; item < hi; item++) {
    int64_t run = item / job->inner, i = item % job->inner;
    em_iter_offsets(&job->it, run, off);
    char* line = job->out + (off[0] + i * job->it.strides[0][last]) * esize;
    const char* ibase = job->idx + (off[1] + i * job->it.strides[1][last]) * isize;
    const char* vbase = job->vals + (off[2] + i * job->it.strides[2][last]) * vsize;
    if (buffered) em_load(lbuf, job->cls, line, job->out_dtype, job->out_ax, job->size);
    for (int64_t start = 0; start < job->length; start += EM_CHUNK) {
      int64_t n = job->length - start < EM_CHUNK ? job->length - start : EM_CHUNK;
      read_indices(t, ibase + start * job->idx_ax * isize, job->idx_dtype, job->idx_ax, n);
      wrap_indices(t, n, job->size);
      const char* v = vbase + start * job->vals_ax * vsize;
      if (raw) {
        scatter(line, 0, t, job->out_ax, v, job->vals_ax, n, esize);
        continue;
      }
      em_load(vbuf, job->cls, v, job->vals_dtype, job->vals_ax, n);
      if (job->in_place || buffered) {
        combine(buffered ? lbuf : line, 0, t, buffered ? 1 : job->out_ax, vbuf, job->cls, job->mode, n);
        continue;
      }
      for (int64_t k = 0; k < n; k++) {
        char* p = line + t[k] * job->out_ax * esize;
        _Alignas(8) char x[8];
        em_load(x, job->cls, p, job->out_dtype, 1, 1);
        combine(x, 0, NULL, 0, vbuf + k * csize, job->cls, job->mode, 1);
        em_store(p, job->out_dtype, 1, x, job->cls, 1);
      }
    }
    if (buffered) em_store(line, job->out_dtype, job->out_ax, lbuf, job->cls, job->size);
  }
}

/* out starts as a copy of a: a's own buffer where a is dead, never the
 * buffer of the indices or values, which are still to be read. */
static int alloc_scatter_output(em_array* out) {
  em_array* a = out->inputs[0];
  int status = em_alloc_output_donated_by(out, 1);
  if (status != EM_OK) return status;
  if (out->buf != a->buf) em_copy_into(out, 0, out->strides, a);
  return EM_OK;
}

int em_kernel_scatter_along_axis(em_array* out) {
  em_array* a = out->inputs[0];
  em_array* idx = out->inputs[1];
  em_array* vals = out->inputs[2];
  int axis = (int)out->ip[0];
  /* The iteration shape: a's off the axis, the operands' broadcast on it. */
  int64_t length = idx->shape[axis] == 1 ? vals->shape[axis] : idx->shape[axis];
  int64_t lines = length > 0;
  for (int d = 0; d < a->ndim; d++)
    if (d != axis) lines *= a->shape[d];
  if (lines > 0) {
    int status = check_indices(idx, a->shape[axis], "scatter", axis, NULL);
    if (status != EM_OK) return status;
  }
  int status = alloc_scatter_output(out);
  if (status != EM_OK || lines == 0) return status;

  scatter_job job;
  int64_t shape[EM_MAX_NDIM], strides[3][EM_MAX_NDIM], idx_strides[EM_MAX_NDIM],
      vals_strides[EM_MAX_NDIM];
  same_rank_strides(idx, idx_strides);
  same_rank_strides(vals, vals_strides);
  int nd = 0;
  for (int d = 0; d < a->ndim; d++) {
    if (d == axis) continue;
    shape[nd] = a->shape[d];
    strides[0][nd] = out->strides[d];
    strides[1][nd] = idx_strides[d];
    strides[2][nd] = vals_strides[d];
    nd++;
  }
  const int64_t* op_strides[3] = {strides[0], strides[1], strides[2]};
  em_iter_init(&job.it, nd, shape, 3, op_strides);
  job.out = out->buf->data;
  job.idx = first_element(idx);
  job.vals = first_element(vals);
  job.out_dtype = out->dtype;
  job.idx_dtype = idx->dtype;
  job.vals_dtype = vals->dtype;
  job.cls = em_class_of(out->dtype);
  job.mode = (int)out->ip[1];
  job.in_place = out->dtype == em_class_dtype(job.cls);
  job.size = a->shape[axis];
  job.length = length;
  job.out_ax = out->strides[axis];
  job.idx_ax = idx_strides[axis];
  job.vals_ax = vals_strides[axis];
  job.inner = job.it.shape[job.it.ndim - 1];
  job.chunks_per_run = (job.inner + EM_CHUNK - 1) / EM_CHUNK;
  /* Lines side by side step together along the axis, unless they are short
   * or the axis is out's innermost: then each line runs alone. */
  if (job.inner >= 16 && job.out_ax != 1) {
    int64_t per_item = (job.inner < EM_CHUNK ? job.inner : EM_CHUNK) * length;
    em_parallel_for(em_iter_outer(&job.it) * job.chunks_per_run, (32768 + per_item - 1) / per_item,
                    scatter_across, &job);
  } else {
    em_parallel_for(lines, (32768 + length - 1) / length, scatter_along, &job);
  }
  return EM_OK;
}
