/* conv.c: n-dimensional convolution, channels last, as matrix products.
 *
 * Input x (N, *spatial, C_in), weight w (C_out, *kernel, C_in/groups), output
 * (N, *out, C_out). Output rows (one output position of one batch entry) are
 * products, per group g, of an im2col matrix with the group's weights:
 *
 *   out[r, g*co : (g+1)*co] = cols[r, :] @ w[g*co : (g+1)*co, :]^T
 *
 * Row r of cols holds, for every kernel position in row-major order, the
 * C_in/groups channels of group g that the position reads: zeros where it
 * falls on padding or between the entries of a dilated input.
 *
 * In float32 with 16 or more channels per group (and kernels of at most
 * TAPS_MAX per axis), cols is never built: each
 * row is a list of runs (one per kernel position: a pointer to the input
 * pixel's channels, or zeros), which locate_runs finds per panel of rows and
 * ember's gemm (em_sgemm_runs, kernels/sgemm.c) reads where they lie. Each
 * thread takes one share of the rows. Otherwise (float64, few channels, or
 * no AVX-512) rows are built in chunks into a bounded workspace per worker
 * thread, and each chunk is one single-threaded gemm on that thread. A
 * kernel that reads the
 * input as it is (every kernel size 1, stride 1, no padding, no input
 * dilation) skips im2col and hands x to the gemm. float16 and bfloat16 run in
 * float32 and round the result once.
 */
#include <cblas.h>
#include <limits.h>
#include <stdatomic.h>
#include <string.h>

#include "classes.h"

/* Bytes of im2col workspace per chunk: big enough for a tall, efficient
 * gemm, small enough to stay in L2 with the packed panels (512 KB measured
 * 1.4x faster than 4 MB on the benchmark's conv, two threads). */
#define WORKSPACE_BYTES ((int64_t)1 << 19)
#define MIN_CHUNK_ROWS 128
/* Channels per group from which the float32 product reads the input in
 * place (em_sgemm_runs) instead of through im2col rows. */
#define MIN_RUN 16
/* Kernel sizes per axis up to which the input is read in place (locate_runs
 * tables each axis's taps); larger kernels go through im2col. */
#define TAPS_MAX 32

typedef struct {
  int n;                        /* spatial axes */
  int64_t in[EM_MAX_NDIM], k[EM_MAX_NDIM], out[EM_MAX_NDIM];
  const int64_t *stride, *lo, *kdil, *idil;
  int flip;
  int64_t c_in, cg;             /* input channels, and per group */
  int64_t in_count, out_count;  /* spatial positions of one batch entry */
  int64_t kpos;                 /* kernel positions */
  int esize;
  const char* x;                /* contiguous input, compute dtype */
  char* cols;                   /* the chunk's im2col rows */
  int64_t row0, group;
} conv_plan;

/* Whether padded, dilated position `pos` lands on an input entry (at *at). */
static inline int tap(int64_t pos, int64_t dilation, int64_t size, int64_t* at) {
  if (pos < 0) return 0;
  if (dilation != 1) {
    if (pos % dilation != 0) return 0;
    pos /= dilation;
  }
  *at = pos;
  return pos < size;
}

/* Fills cols rows [lo, hi) of the chunk (global rows row0 + lo ...). The
 * kernel's last axis is the inner loop: the other axes decide once per run
 * of it whether the run falls on the input at all. */
static void im2col_rows(void* ctx, int64_t lo, int64_t hi) {
  const conv_plan* p = ctx;
  int n = p->n, last = n - 1;
  size_t run = (size_t)p->cg * (size_t)p->esize, pixel = (size_t)p->c_in * (size_t)p->esize;
  int64_t k_last = p->k[last], outer_runs = p->kpos / k_last;
  for (int64_t r = lo; r < hi; r++) {
    int64_t row = p->row0 + r;
    int64_t batch = row / p->out_count, rest = row % p->out_count;
    int64_t base[EM_MAX_NDIM], kc[EM_MAX_NDIM];
    for (int d = last; d >= 0; d--) {
      base[d] = rest % p->out[d] * p->stride[d] - p->lo[d];
      rest /= p->out[d];
      kc[d] = 0;
    }
    const char* xb = p->x + ((size_t)(batch * p->in_count) * (size_t)p->c_in +
                             (size_t)(p->group * p->cg)) * (size_t)p->esize;
    char* dst = p->cols + (size_t)r * (size_t)p->kpos * run;
    for (int64_t ko = 0; ko < outer_runs; ko++) {
      int inside = 1;
      int64_t lin = 0, at;
      for (int d = 0; d < last && inside; d++) {
        int64_t kk = p->flip ? p->k[d] - 1 - kc[d] : kc[d];
        inside = tap(base[d] + kk * p->kdil[d], p->idil[d], p->in[d], &at);
        lin = lin * p->in[d] + at;
      }
      if (!inside) {
        memset(dst, 0, (size_t)k_last * run);
        dst += (size_t)k_last * run;
      } else {
        lin *= p->in[last];
        for (int64_t j = 0; j < k_last; j++, dst += run) {
          int64_t kk = p->flip ? k_last - 1 - j : j;
          if (tap(base[last] + kk * p->kdil[last], p->idil[last], p->in[last], &at))
            memcpy(dst, xb + (size_t)(lin + at) * pixel, run);
          else
            memset(dst, 0, run);
        }
      }
      for (int d = last - 1; d >= 0; d--) {
        if (++kc[d] < p->k[d]) break;
        kc[d] = 0;
      }
    }
  }
}

/* em_gemm_runs's locate for a chunk of output rows (float32): run s of row
 * r is the group's channels of the input pixel under kernel position s, or
 * NULL where that position falls on padding or between dilated entries. */
static void locate_runs(const void* ctx, int64_t i0, int64_t rows, int64_t s0, int64_t count,
                        const float** line, int64_t stride) {
  const conv_plan* p = ctx;
  int n = p->n, last = n - 1;
  const float* x = (const float*)p->x + p->group * p->cg;
  /* The first row's batch entry and output position; the next rows step
   * the position (no divisions per row). */
  int64_t row = p->row0 + i0, batch = row / p->out_count, rest = row % p->out_count;
  int64_t pos[EM_MAX_NDIM], k0[EM_MAX_NDIM], s = s0;
  for (int d = last; d >= 0; d--) {
    pos[d] = rest % p->out[d];
    rest /= p->out[d];
    k0[d] = s % p->k[d];
    s /= p->k[d];
  }
  /* Per row and axis, the input coordinate under each kernel offset (-1 off
   * the input): taps once per offset, not once per run. */
  int64_t under[EM_MAX_NDIM][TAPS_MAX];
  for (int64_t r = 0; r < rows; r++) {
    const float* xb = x + batch * p->in_count * p->c_in;
    for (int d = 0; d < n; d++)
      for (int64_t kk = 0; kk < p->k[d]; kk++) {
        int64_t kf = p->flip ? p->k[d] - 1 - kk : kk, at;
        under[d][kk] = tap(pos[d] * p->stride[d] - p->lo[d] + kf * p->kdil[d], p->idil[d],
                           p->in[d], &at) ? at : -1;
      }
    int64_t kc[EM_MAX_NDIM];
    for (int d = 0; d < n; d++) kc[d] = k0[d];
    /* the linear input position of the axes before the last, -1 off the
     * input; found again only when the last axis wraps */
    int64_t outer = 0;
    int fresh = 0;
    for (int64_t j = 0; j < count; j++) {
      if (!fresh) {
        outer = 0;
        for (int d = 0; d < last && outer >= 0; d++)
          outer = under[d][kc[d]] < 0 ? -1 : outer * p->in[d] + under[d][kc[d]];
        fresh = 1;
      }
      int64_t at = under[last][kc[last]];
      line[j * stride + r] =
          outer >= 0 && at >= 0 ? xb + (outer * p->in[last] + at) * p->c_in : NULL;
      for (int d = last; d >= 0; d--) {
        if (++kc[d] < p->k[d]) break;
        kc[d] = 0;
        fresh = 0;
      }
    }
    for (int d = last; d >= 0; d--) {
      if (++pos[d] < p->out[d]) break;
      pos[d] = 0;
      if (d == 0) batch++;
    }
  }
}

static void gemm_nt(int dtype, int64_t m, int64_t n, int64_t k, const void* a, int64_t lda,
                    const void* b, int64_t ldb, void* c, int64_t ldc) {
  if (dtype == EM_FLOAT32)
    em_sgemm(0, 1, m, n, k, 1.0f, a, lda, b, ldb, c, ldc);
  else
    scipy_cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0, a,
                      (int)lda, b, (int)ldb, 0.0, c, (int)ldc);
}

/* A new evaluated row-major array of `shape`, or NULL (error set). */
static em_array* new_temp(int dtype, int ndim, const int64_t* shape) {
  em_array* t = em_node_new(-1, dtype, ndim, shape, 0, NULL, 0, NULL, 0, NULL, 0);
  if (t && em_alloc_output(t) != EM_OK) {
    em_release(t);
    return NULL;
  }
  return t;
}

/* a's first element as a row-major array of `dtype`: a itself, or a copy
 * left in *tmp for the caller to release. */
static const char* contiguous(em_array* a, int dtype, em_array** tmp) {
  *tmp = NULL;
  if (a->dtype == dtype && em_row_contiguous(a->ndim, a->shape, a->strides))
    return (const char*)a->buf->data + a->offset * em_dtype_size(dtype);
  *tmp = new_temp(dtype, a->ndim, a->shape);
  if (!*tmp) return NULL;
  em_copy_into(*tmp, 0, (*tmp)->strides, a);
  return (*tmp)->buf->data;
}

/* The chunks of output rows, dealt round-robin to the workers. */
typedef struct {
  const conv_plan* plan;
  int dtype;
  const char* w;
  char* c;
  char* workspace;              /* one chunk of im2col rows per worker */
  int64_t rows, chunk, workers, groups, co, c_out, depth;
  int runs;                     /* em_sgemm_runs reads x in place: no workspace */
  atomic_int* failed;           /* set when em_sgemm_runs could not get its buffers */
} conv_job;

/* Worker `i` builds and multiplies chunks i, i + workers, ... in its own
 * workspace; OpenBLAS is single-threaded (native/threads.c), so each gemm
 * runs on the worker that calls it. */
static void conv_workers(void* ctx, int64_t lo, int64_t hi) {
  const conv_job* job = ctx;
  for (int64_t i = lo; i < hi; i++) {
    conv_plan p = *job->plan;
    p.cols = job->workspace ? job->workspace + (size_t)(i * job->chunk * job->depth) * (size_t)p.esize
                            : NULL;
    for (int64_t k = i; k * job->chunk < job->rows; k += job->workers) {
      p.row0 = k * job->chunk;
      int64_t m = job->rows - p.row0 < job->chunk ? job->rows - p.row0 : job->chunk;
      for (p.group = 0; p.group < job->groups; p.group++) {
        const char* w = job->w + (size_t)(p.group * job->co * job->depth) * (size_t)p.esize;
        char* c = job->c + (size_t)(p.row0 * job->c_out + p.group * job->co) * (size_t)p.esize;
        if (job->runs) {
          em_gemm_runs runs = {p.cg, locate_runs, &p};
          if (!em_sgemm_runs(&runs, 1, m, job->co, job->depth, 1.0f, (const float*)w,
                             job->depth, (float*)c, job->c_out))
            atomic_store(job->failed, 1);
          continue;
        }
        im2col_rows(&p, 0, m);
        gemm_nt(job->dtype, m, job->co, job->depth, p.cols, job->depth, w, job->depth, c,
                job->c_out);
      }
    }
  }
}

/* Runs the convolution into c (row-major, out's shape, compute dtype). */
static int run_conv(em_array* out, int dtype, const char* x, const char* w, char* c) {
  em_array* xa = out->inputs[0];
  em_array* wa = out->inputs[1];
  const int64_t* ip = out->ip;
  conv_plan p;
  p.n = (int)ip[0];
  int n = p.n;
  p.stride = ip + 1;
  p.lo = ip + 1 + n;
  p.kdil = ip + 1 + 3 * n;
  p.idil = ip + 1 + 4 * n;
  int64_t groups = ip[5 * n + 1];
  p.flip = ip[5 * n + 2] != 0;
  p.in_count = p.out_count = p.kpos = 1;
  int reads_input_as_is = 1;
  for (int d = 0; d < n; d++) {
    p.in[d] = xa->shape[d + 1];
    p.k[d] = wa->shape[d + 1];
    p.out[d] = out->shape[d + 1];
    p.in_count *= p.in[d];
    p.out_count *= p.out[d];
    p.kpos *= p.k[d];
    if (p.k[d] != 1 || p.stride[d] != 1 || p.lo[d] != 0 || ip[1 + 2 * n + d] != 0 ||
        p.idil[d] != 1)
      reads_input_as_is = 0;
  }
  p.c_in = xa->shape[n + 1];
  p.cg = p.c_in / groups;
  p.esize = em_dtype_size(dtype);
  p.x = x;
  int64_t c_out = out->shape[n + 1], co = c_out / groups;
  int64_t depth = p.kpos * p.cg;  /* the gemm's inner dimension */
  int64_t rows = out->shape[0] * p.out_count;
  if (depth > INT_MAX || co > INT_MAX || p.c_in > INT_MAX || c_out > INT_MAX) {
    em_fail(EM_VALUE_ERROR, "[conv] dimensions above %d are not supported", INT_MAX);
    return EM_VALUE_ERROR;
  }
  if (depth == 0) {
    memset(c, 0, (size_t)out->size * (size_t)p.esize);
    return EM_OK;
  }
  int64_t chunk = WORKSPACE_BYTES / (depth * p.esize);
  /* A deep product (the weight's gradient sums over every output position)
   * still gets chunks tall enough that repacking the weights for each one
   * stays cheap beside the product. */
  if (chunk < MIN_CHUNK_ROWS) chunk = MIN_CHUNK_ROWS;
  if (chunk > INT_MAX) chunk = INT_MAX;
  int64_t threads = em_num_threads();
  if (rows < chunk * threads) chunk = (rows + threads - 1) / threads;
  if (reads_input_as_is) {
    int64_t limit = INT_MAX;
    for (int64_t r0 = 0; r0 < rows; r0 += limit) {
      int64_t m = rows - r0 < limit ? rows - r0 : limit;
      for (int64_t g = 0; g < groups; g++)
        em_gemm(dtype, 0, 1, m, co, depth, x + (size_t)(r0 * p.c_in + g * p.cg) * (size_t)p.esize,
                p.c_in, w + (size_t)(g * co * depth) * (size_t)p.esize, depth,
                c + (size_t)(r0 * c_out + g * co) * (size_t)p.esize, c_out);
    }
    return EM_OK;
  }
  /* float32 with runs long enough: the product reads x where it lies, one
   * share of the rows per thread (its weights packed once). */
  int runs = dtype == EM_FLOAT32 && p.cg >= MIN_RUN && em_sgemm_runs_available();
  for (int d = 0; d < n; d++) runs &= p.k[d] <= TAPS_MAX;
  if (runs) chunk = (rows + threads - 1) / threads;
  int64_t n_chunks = (rows + chunk - 1) / chunk;
  int64_t workers = threads < n_chunks ? threads : n_chunks;
  int64_t ws_len = runs ? 0 : workers * (rows < chunk ? rows : chunk) * depth;
  em_array* ws = runs ? NULL : new_temp(dtype, 1, &ws_len);
  if (!runs && !ws) return EM_MEMORY_ERROR;
  atomic_int failed = 0;
  conv_job job = {&p,    dtype, w,     c,    ws ? ws->buf->data : NULL, rows, chunk, workers,
                  groups, co,   c_out, depth, runs, &failed};
  em_parallel_for(workers, 1, conv_workers, &job);
  if (ws) em_release(ws);
  if (atomic_load(&failed)) {
    em_fail(EM_MEMORY_ERROR, "[conv] out of memory for the product's buffers");
    return EM_MEMORY_ERROR;
  }
  return EM_OK;
}

int em_kernel_conv(em_array* out) {
  int status = em_alloc_output(out);
  if (status != EM_OK || out->size == 0) return status;
  int dtype = out->dtype == EM_FLOAT64 ? EM_FLOAT64 : EM_FLOAT32;
  em_array *xt = NULL, *wt = NULL, *ct = NULL;
  const char* x = contiguous(out->inputs[0], dtype, &xt);
  const char* w = x ? contiguous(out->inputs[1], dtype, &wt) : NULL;
  if (w && dtype != out->dtype) ct = new_temp(dtype, out->ndim, out->shape);
  if (!x || !w || (dtype != out->dtype && !ct)) {
    status = EM_MEMORY_ERROR;
  } else {
    status = run_conv(out, dtype, x, w, ct ? ct->buf->data : out->buf->data);
    if (status == EM_OK && ct) em_copy_into(out, 0, out->strides, ct);
  }
  if (status != EM_OK) {
    em_buffer_release(out->buf);
    out->buf = NULL;
  }
  if (xt) em_release(xt);
  if (wt) em_release(wt);
  if (ct) em_release(ct);
  return status;
}
