/* scan.c: cumulative sum, product, max, min and logsumexp along one axis.
 *
 * ip: axis, reverse, inclusive. A reverse scan is a forward scan of the
 * axis flipped (its strides negated). When the scanned axis is the
 * innermost in memory, each line is scanned in chunks carrying the running
 * value; otherwise a block of lines that lie side by side along the
 * innermost kept axis is scanned together, one vectorised row update per
 * step, so memory is read in order instead of one strided element at a time.
 */
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "axes.h"
#include "classes.h"

/* y[i] = running value including (inclusive) or excluding x[i]; `carry`
 * holds the running value between chunks. OP combines `a` (the running
 * value) with `b`. */
typedef void (*scan_line_fn)(const void* x, void* y, int64_t n, void* carry, int inclusive);
/* The same for n independent lines advanced one step: carry[j], x[j], y[j]. */
typedef void (*scan_cols_fn)(void* carry, const void* x, void* y, int64_t n, int inclusive);

#define SCAN_FNS(NAME, T, OP)                                                          \
  static void NAME##_line(const void* x_, void* y_, int64_t n, void* carry, int inclusive) { \
    const T* x = x_;                                                                   \
    T* y = y_;                                                                         \
    T c = *(T*)carry;                                                                  \
    if (inclusive)                                                                     \
      for (int64_t i = 0; i < n; i++) { T a = c, b = x[i]; c = (OP); y[i] = c; }       \
    else                                                                               \
      for (int64_t i = 0; i < n; i++) { T a = c, b = x[i]; y[i] = c; c = (OP); }       \
    *(T*)carry = c;                                                                    \
  }                                                                                    \
  static void NAME##_cols(void* carry, const void* x_, void* y_, int64_t n, int inclusive) { \
    T* c = carry;                                                                      \
    const T* x = x_;                                                                   \
    T* y = y_;                                                                         \
    if (inclusive)                                                                     \
      for (int64_t j = 0; j < n; j++) { T a = c[j], b = x[j]; c[j] = (OP); y[j] = c[j]; } \
    else                                                                               \
      for (int64_t j = 0; j < n; j++) { T a = c[j], b = x[j]; y[j] = a; c[j] = (OP); } \
  }

/* log(e^a + e^b) from the larger operand, so nothing overflows; equal
 * operands (including two infinities of one sign) give a + log 2. */
static inline float logaddexp_f32(float a, float b) {
  if (a != a || b != b) return a + b;
  if (a == b) return a + 0.693147180559945309f;
  float m = a > b ? a : b;
  return m + log1pf(expf(-fabsf(a - b)));
}
static inline double logaddexp_f64(double a, double b) {
  if (a != a || b != b) return a + b;
  if (a == b) return a + 0.693147180559945309;
  double m = a > b ? a : b;
  return m + log1p(exp(-fabs(a - b)));
}

/* Integer sums and products run on uint64 bits: exact modulo 2^64 (numpy's
 * wrapping) for signed values too, without signed overflow. Max and min
 * propagate NaN like numpy's maximum.accumulate. */
SCAN_FNS(sum_u64, uint64_t, a + b)
SCAN_FNS(prod_u64, uint64_t, a * b)
SCAN_FNS(sum_f32, float, a + b)
SCAN_FNS(prod_f32, float, a * b)
SCAN_FNS(sum_f64, double, a + b)
SCAN_FNS(prod_f64, double, a * b)
SCAN_FNS(sum_c64, c64, a + b)
SCAN_FNS(prod_c64, c64, a * b)
SCAN_FNS(max_i64, int64_t, b > a ? b : a)
SCAN_FNS(min_i64, int64_t, b < a ? b : a)
SCAN_FNS(max_u64, uint64_t, b > a ? b : a)
SCAN_FNS(min_u64, uint64_t, b < a ? b : a)
SCAN_FNS(max_f32, float, (b > a || b != b) ? b : a)
SCAN_FNS(min_f32, float, (b < a || b != b) ? b : a)
SCAN_FNS(max_f64, double, (b > a || b != b) ? b : a)
SCAN_FNS(min_f64, double, (b < a || b != b) ? b : a)
SCAN_FNS(lse_f32, float, logaddexp_f32(a, b))
SCAN_FNS(lse_f64, double, logaddexp_f64(a, b))

typedef struct {
  scan_line_fn line;
  scan_cols_fn cols;
} scan_ops;

#define OPS(NAME) ((scan_ops){NAME##_line, NAME##_cols})

/* Zero when the primitive has no loop for the class. */
static int ops_for(int prim, int cls, scan_ops* ops) {
  switch (prim) {
    case EM_P_CUMSUM:
      *ops = cls == CL_F32 ? OPS(sum_f32) : cls == CL_F64 ? OPS(sum_f64)
           : cls == CL_C64 ? OPS(sum_c64) : OPS(sum_u64);
      return 1;
    case EM_P_CUMPROD:
      *ops = cls == CL_F32 ? OPS(prod_f32) : cls == CL_F64 ? OPS(prod_f64)
           : cls == CL_C64 ? OPS(prod_c64) : OPS(prod_u64);
      return 1;
    case EM_P_CUMMAX:
    case EM_P_CUMMIN: {
      int mx = prim == EM_P_CUMMAX;
      switch (cls) {
        case CL_I64: *ops = mx ? OPS(max_i64) : OPS(min_i64); return 1;
        case CL_U64: *ops = mx ? OPS(max_u64) : OPS(min_u64); return 1;
        case CL_F32: *ops = mx ? OPS(max_f32) : OPS(min_f32); return 1;
        case CL_F64: *ops = mx ? OPS(max_f64) : OPS(min_f64); return 1;
        default: return 0;
      }
    }
    case EM_P_LOGCUMSUMEXP:
      if (cls == CL_F32) *ops = OPS(lse_f32);
      else if (cls == CL_F64) *ops = OPS(lse_f64);
      else return 0;
      return 1;
    default: return 0;
  }
}

/* The running value before the first element, as a class value: the
 * operation's identity, with max/min bounded by the output dtype's range so
 * an exclusive scan's first element is that dtype's lowest/highest. */
static void identity(int prim, int dtype, int cls, void* v) {
  int64_t lo = 0, hi = 0;
  uint64_t uhi = 0;
  switch (dtype) {
    case EM_BOOL: lo = 0; hi = 1; break;
    case EM_INT8: lo = INT8_MIN; hi = INT8_MAX; break;
    case EM_INT16: lo = INT16_MIN; hi = INT16_MAX; break;
    case EM_INT32: lo = INT32_MIN; hi = INT32_MAX; break;
    case EM_INT64: lo = INT64_MIN; hi = INT64_MAX; break;
    case EM_UINT8: uhi = UINT8_MAX; break;
    case EM_UINT16: uhi = UINT16_MAX; break;
    case EM_UINT32: uhi = UINT32_MAX; break;
    case EM_UINT64: uhi = UINT64_MAX; break;
    default: break;
  }
  int mx = prim == EM_P_CUMMAX, mn = prim == EM_P_CUMMIN;
  double f = prim == EM_P_CUMPROD ? 1.0 : mx || prim == EM_P_LOGCUMSUMEXP ? -INFINITY
           : mn ? INFINITY : 0.0;
  switch (cls) {
    case CL_I64: *(int64_t*)v = mx ? lo : mn ? hi : prim == EM_P_CUMPROD; break;
    case CL_U64: *(uint64_t*)v = mx ? 0 : mn ? uhi : prim == EM_P_CUMPROD; break;
    case CL_F32: *(float*)v = (float)f; break;
    case CL_F64: *(double*)v = f; break;
    default: *(c64*)v = (float)f; break;
  }
}

/* Elements of work per parallel slice. */
#define GRAIN_WORK 32768

typedef struct {
  scan_ops ops;
  int cls, csize, in_dtype, in_isz, out_dtype, out_isz, inclusive;
  const char* in;
  char* out;
  em_iter it;                /* the other axes, memory order: input, output strides */
  int64_t n, sin, sout;      /* the scanned axis, flipped when reverse */
  int line_mode;             /* the scanned axis is innermost in memory */
  int64_t width, nblocks;    /* block mode: lines per block along the inner axis */
  _Alignas(16) char ident[16];
} scan_job;

static const void* scan_load(const scan_job* job, int64_t off, int64_t stride, int64_t n, void* buf) {
  const char* src = job->in + off * job->in_isz;
  if (stride == 1 && job->in_dtype == em_class_dtype(job->cls)) return src;
  em_load(buf, job->cls, src, job->in_dtype, stride, n);
  return buf;
}

/* Results go straight to the output when it has the class's type and the
 * run is contiguous; otherwise through `buf` and em_store. */
static void* scan_dst(const scan_job* job, int64_t off, int64_t stride, void* buf) {
  if (stride == 1 && job->out_dtype == em_class_dtype(job->cls)) return job->out + off * job->out_isz;
  return buf;
}

static void scan_put(const scan_job* job, int64_t off, int64_t stride, const void* y, int64_t n) {
  char* dst = job->out + off * job->out_isz;
  if (y != dst) em_store(dst, job->out_dtype, stride, y, job->cls, n);
}

static void scan_range(void* ctx, int64_t lo, int64_t hi) {
  const scan_job* job = ctx;
  _Alignas(64) char xbuf[EM_CHUNK * 8];
  _Alignas(64) char ybuf[EM_CHUNK * 8];
  _Alignas(64) char carry[EM_CHUNK * 8];
  int last = job->it.ndim - 1;
  int64_t ilen = job->it.shape[last], iin = job->it.strides[0][last], iout = job->it.strides[1][last];
  int64_t offs[2];
  for (int64_t item = lo; item < hi; item++) {
    if (job->line_mode) {
      /* item is one line. */
      em_iter_offsets(&job->it, item / ilen, offs);
      int64_t ib = offs[0] + item % ilen * iin, ob = offs[1] + item % ilen * iout;
      memcpy(carry, job->ident, (size_t)job->csize);
      for (int64_t i = 0; i < job->n; i += EM_CHUNK) {
        int64_t m = job->n - i < EM_CHUNK ? job->n - i : EM_CHUNK;
        const void* x = scan_load(job, ib + i * job->sin, job->sin, m, xbuf);
        void* y = scan_dst(job, ob + i * job->sout, job->sout, ybuf);
        job->ops.line(x, y, m, carry, job->inclusive);
        scan_put(job, ob + i * job->sout, job->sout, y, m);
      }
    } else {
      /* item is a block of lines side by side along the inner kept axis. */
      int64_t col = item % job->nblocks * job->width;
      int64_t w = ilen - col < job->width ? ilen - col : job->width;
      em_iter_offsets(&job->it, item / job->nblocks, offs);
      int64_t ib = offs[0] + col * iin, ob = offs[1] + col * iout;
      for (int64_t j = 0; j < w; j++) memcpy(carry + j * job->csize, job->ident, (size_t)job->csize);
      for (int64_t i = 0; i < job->n; i++) {
        const void* x = scan_load(job, ib + i * job->sin, iin, w, xbuf);
        void* y = scan_dst(job, ob + i * job->sout, iout, ybuf);
        job->ops.cols(carry, x, y, w, job->inclusive);
        scan_put(job, ob + i * job->sout, iout, y, w);
      }
    }
  }
}

int em_kernel_scan(em_array* out) {
  em_array* in = out->inputs[0];
  int axis = (int)out->ip[0];
  scan_job job;
  job.cls = em_class_of(out->dtype);
  if (!ops_for(out->prim, job.cls, &job.ops)) {
    em_fail(EM_TYPE_ERROR, "[%s] not defined for %s", em_prim_name(out->prim),
            em_dtype_name(out->dtype));
    return EM_TYPE_ERROR;
  }
  int status = em_alloc_output(out);
  if (status != EM_OK) return status;
  if (out->size == 0) return EM_OK;
  job.csize = em_class_size(job.cls);
  job.in_dtype = in->dtype;
  job.in_isz = em_dtype_size(in->dtype);
  job.out_dtype = out->dtype;
  job.out_isz = em_dtype_size(out->dtype);
  job.inclusive = out->ip[2] != 0;
  identity(out->prim, out->dtype, job.cls, job.ident);
  job.n = in->shape[axis];
  job.sin = in->strides[axis];
  job.sout = out->strides[axis];
  int64_t in_off = in->offset, out_off = 0;
  if (out->ip[1]) {
    in_off += job.sin * (job.n - 1);
    out_off += job.sout * (job.n - 1);
    job.sin = -job.sin;
    job.sout = -job.sout;
  }
  /* The other axes: the shape with the scanned axis dropped (set to 1). */
  int64_t shape[EM_MAX_NDIM];
  memcpy(shape, out->shape, sizeof(int64_t) * (size_t)out->ndim);
  shape[axis] = 1;
  em_iter_in_memory_order(&job.it, out->ndim, shape, in->strides, out->strides, &in_off, &out_off);
  job.in = (const char*)in->buf->data + in_off * job.in_isz;
  job.out = (char*)out->buf->data + out_off * job.out_isz;
  int last = job.it.ndim - 1;
  int64_t ilen = job.it.shape[last];
  job.line_mode = ilen == 1 || llabs(job.sin) < llabs(job.it.strides[0][last]);
  int64_t items, per_item;
  if (job.line_mode) {
    items = out->size / job.n;
    per_item = job.n;
  } else {
    job.width = ilen < EM_CHUNK ? ilen : EM_CHUNK;
    job.nblocks = (ilen + job.width - 1) / job.width;
    items = em_iter_outer(&job.it) * job.nblocks;
    per_item = job.n * job.width;
  }
  int64_t grain = per_item >= GRAIN_WORK ? 1 : GRAIN_WORK / per_item;
  em_parallel_for(items, grain, scan_range, &job);
  return EM_OK;
}
