/* internal.h: what the engine's C files share and the public header hides. */
#ifndef EMBER_INTERNAL_H
#define EMBER_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ember.h"

/* A block of memory from the caching allocator, shared by every view on it. */
typedef struct em_buffer {
  void* data;
  size_t nbytes;
  atomic_int refcount;
} em_buffer;

struct em_array {
  atomic_int refcount;
  int dtype;
  int ndim;
  int stream;
  int prim;             /* primitive that makes it; -1 for a leaf (data source, or
                           a node whose graph was dropped after evaluation) */
  int evaluated;        /* buf, strides and offset are valid */
  int64_t size;
  int64_t offset;       /* elements from the start of buf */
  int64_t* shape;       /* ndim entries, in the same allocation as the node */
  int64_t* strides;     /* ndim entries, elements; set when evaluated */
  em_buffer* buf;       /* NULL while pending */
  int ninputs;
  em_array** inputs;
  int nip;
  int64_t* ip;
  int nfp;
  double* fp;
  uint64_t mark;        /* eval's visit stamp */
};

/* ---- errors (error.c) ---- */
/* Sets the thread's error; returns NULL so shape rules can `return em_fail(...)`. */
void* em_fail(int kind, const char* fmt, ...);
int em_failed(void);
/* Formats a shape as "(2, 3)" into buf. */
const char* em_fmt_shape(char* buf, size_t cap, int ndim, const int64_t* shape);

/* ---- dtypes (dtype.c) ---- */
int em_is_float(int dtype);     /* float16, bfloat16, float32, float64 */
int em_is_inexact(int dtype);   /* floats and complex */
int em_is_integer(int dtype);   /* signed and unsigned, not bool */
int em_is_unsigned(int dtype);
float em_f16_to_f32(uint16_t h);
uint16_t em_f32_to_f16(float f);
float em_bf16_to_f32(uint16_t h);
uint16_t em_f32_to_bf16(float f);

/* ---- allocator (alloc.c) ---- */
em_buffer* em_buffer_new(size_t nbytes);  /* NULL + MemoryError when over the limit */
void em_buffer_retain(em_buffer* b);
void em_buffer_release(em_buffer* b);

/* ---- nodes (array.c) ---- */
/* A new pending node with refcount 1; takes new references to inputs. */
em_array* em_node_new(int prim, int dtype, int ndim, const int64_t* shape,
                      int nin, em_array** inputs, int nip, const int64_t* ip,
                      int nfp, const double* fp, int stream);
/* Sets row-major strides for the node's shape. */
void em_set_row_strides(em_array* a);
/* Gives the node a fresh row-major buffer. 0 on success. */
int em_alloc_output(em_array* out);
/* Like em_alloc_output, but reuses the buffer of a dead, row-contiguous
 * input of the same byte size where there is one. */
int em_alloc_output_donated(em_array* out);
/* The same, with only the first n_donors inputs allowed to give their buffer:
 * a kernel that reads the others after writing its output (slice_update's
 * update, scatter's indices and values) keeps them out. */
int em_alloc_output_donated_by(em_array* out, int n_donors);
/* For a node of `rows` stacked results (shape (rows, *S), an elementwise
 * kernel's several outputs): reuses a buffer of the same byte size that only
 * dead inputs hold, each of them one whole row of it, laid out as S. The
 * kernel must read every input at the index it writes (elementwise), and
 * store a row only once no later read of that chunk remains. Falls back to
 * em_alloc_output_donated. */
int em_alloc_output_stacked_donated(em_array* out, int64_t rows, int* stacked);
/* A new reference to x when it is row-major in dtype, else to a row-major
 * copy of it in dtype (evaluated x; NULL + error on failure): kernels that
 * need contiguous operands of one dtype take them from here. */
em_array* em_row_major_as(em_array* x, int dtype);
/* Makes out a view of src's buffer with the given strides and offset. */
void em_set_view(em_array* out, em_array* src, const int64_t* strides, int64_t offset);
int em_row_contiguous(int ndim, const int64_t* shape, const int64_t* strides);

/* ---- evaluation (eval.c) ---- */
/* Nonzero while a transform is tracing: eval keeps each node's inputs. */
int em_keeping_graph(void);

/* ---- primitive table (prims.c) ---- */
typedef int (*em_kernel)(em_array* out);
em_kernel em_kernel_of(int prim);

/* ---- threads (threads.c) ---- */
typedef void (*em_range_fn)(void* ctx, int64_t lo, int64_t hi);
/* Runs fn over [0, n) in chunks of at least grain, spread over the pool: at
 * most one chunk per thread (a kernel with per-call setup, like a product's
 * packing, pays it once per thread). */
void em_parallel_for(int64_t n, int64_t grain, em_range_fn fn, void* ctx);
/* The same in up to EM_SLICES_PER_THREAD chunks per thread, claimed as threads
 * come: for kernels without per-call setup (elementwise, fused chains), so a
 * worker that wakes late takes only what is left instead of holding up the
 * caller with a whole share. */
#define EM_SLICES_PER_THREAD 8
void em_parallel_for_balanced(int64_t n, int64_t grain, em_range_fn fn, void* ctx);
/* Runs fn(ctx, 0, n) on the caller with OpenBLAS lent the whole thread budget
 * (for large LAPACK calls; every other BLAS call runs single-threaded). */
void em_run_blas_threaded(em_range_fn fn, void* ctx, int64_t n);

/* ---- kernels (kernels/) ---- */
int em_kernel_arange(em_array* out);
int em_kernel_copy(em_array* out);          /* COPY and ASTYPE */
int em_kernel_reshape(em_array* out);
int em_kernel_transpose(em_array* out);
int em_kernel_broadcast(em_array* out);
int em_kernel_slice(em_array* out);
int em_kernel_as_strided(em_array* out);
int em_kernel_concatenate(em_array* out);
int em_kernel_slice_update(em_array* out);
int em_kernel_unary(em_array* out);
int em_kernel_binary(em_array* out);
int em_kernel_where(em_array* out);
int em_kernel_reduce(em_array* out);
int em_kernel_argreduce(em_array* out);
int em_kernel_scan(em_array* out);
int em_kernel_take(em_array* out);
int em_kernel_take_along_axis(em_array* out);
int em_kernel_scatter_along_axis(em_array* out);
int em_kernel_matmul(em_array* out);
/* c = op(a) @ op(b) for float32, float64 or complex64, row-major (op: the
 * transpose where trans_* is set), split into blocks over the pool. */
void em_gemm(int dtype, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
             const void* a, int64_t lda, const void* b, int64_t ldb, void* c, int64_t ldc);
/* c = alpha * op(a) @ op(b) in float32, row-major, on the calling thread
 * (kernels/sgemm.c: ember's AVX-512 kernel, else OpenBLAS's sgemm). */
void em_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
              int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc);
/* A left operand of em_sgemm_runs whose rows are runs of `run` contiguous
 * floats: locate(ctx, i0, rows, s0, count, line, stride) sets line[j * stride
 * + r] to the start of run s0 + j of row i0 + r (its steps [s * run, (s + 1)
 * * run)), or to NULL where that run is zeros. conv's im2col rows, read from
 * the input where they lie. */
typedef struct {
  int64_t run;
  void (*locate)(const void* ctx, int64_t i0, int64_t rows, int64_t s0, int64_t count,
                 const float** line, int64_t stride);
  const void* ctx;
} em_gemm_runs;
/* em_sgemm with a given by runs; 0 (nothing written) when ember's kernel is
 * not in use (em_sgemm_runs_available() says whether it is) or its buffers
 * cannot be had. */
int em_sgemm_runs_available(void);
int em_sgemm_runs(const em_gemm_runs* a, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* b, int64_t ldb, float* c, int64_t ldc);
int em_kernel_fused(em_array* out);
em_array* em_rule_fused(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                        int nfp, const double* fp, int stream);
int em_kernel_sort(em_array* out);          /* SORT, ARGSORT, PARTITION, ARGPARTITION */
int em_kernel_fft(em_array* out);
int em_kernel_threefry(em_array* out);
int em_kernel_random(em_array* out);
int em_kernel_bitcast(em_array* out);
int em_kernel_fma(em_array* out);
int em_kernel_solve(em_array* out);
int em_kernel_inv(em_array* out);
int em_kernel_solve_triangular(em_array* out);
int em_kernel_cholesky(em_array* out);
int em_kernel_qr(em_array* out);
int em_kernel_svd(em_array* out);
int em_kernel_eigh(em_array* out);
int em_kernel_eig(em_array* out);
int em_kernel_lu(em_array* out);
int em_kernel_conv(em_array* out);
int em_kernel_norm(em_array* out);          /* RMS_NORM and LAYER_NORM */
int em_kernel_rope(em_array* out);
int em_kernel_sdpa(em_array* out);
int em_kernel_softmax(em_array* out);       /* SOFTMAX and LOGSUMEXP */
int em_kernel_quantize(em_array* out);
int em_kernel_dequantize(em_array* out);
int em_kernel_quantized_matmul(em_array* out);
em_array* em_rule_quantize(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                           int nfp, const double* fp, int stream);
em_array* em_rule_dequantize(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                             int nfp, const double* fp, int stream);
em_array* em_rule_quantized_matmul(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                                   int nfp, const double* fp, int stream);

/* Copies src (any strides, any dtype) into dst's buffer converting to dst's
 * dtype; dst has the same shape as src. Used by COPY/ASTYPE and kernels that
 * need a contiguous operand. */
void em_copy_into(em_array* dst, int64_t dst_offset, const int64_t* dst_strides,
                  em_array* src);

#define EM_MAX_NDIM 64

#endif
