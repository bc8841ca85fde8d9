/* matmul.c: batched matrix products, (..., M, K) @ (..., K, N).
 *
 * Float types go to a gemm: float32 to em_sgemm (kernels/sgemm.c: ember's
 * AVX-512 kernel, else OpenBLAS's), float64 and complex64 to OpenBLAS's
 * dgemm and cgemm (scipy-openblas32); float16 and bfloat16 run the float32
 * product on float32 copies and round the result once. An operand whose last two axes
 * are row-major or column-major is passed in place (a transpose flag covers
 * column-major); any other layout, or a dtype other than the gemm's, is first
 * copied to a contiguous temporary. Integer and bool products run a blocked
 * loop in 64-bit arithmetic that wraps like numpy's.
 *
 * OpenBLAS runs single-threaded (native/threads.c: one thread budget, spent
 * by ember's pool), so the float products are spread here: over the batch
 * when it has a product per thread, else each product is cut into blocks of
 * rows (or of columns, when it is wider than tall), one gemm per block.
 */
#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "classes.h"

/* One operand as the product reads it. */
typedef struct {
  const char* data;                   /* first element */
  int64_t batch_strides[EM_MAX_NDIM]; /* over out's batch axes, 0 where broadcast */
  int trans;                          /* read as the transpose of a row-major matrix */
  int64_t ld;                         /* leading dimension of that row-major matrix */
  em_array* tmp;                      /* owned contiguous copy, or NULL */
} operand;

/* Whether a rows x cols matrix with the given strides can be read as a
 * row-major matrix (trans 0) or the transpose of one (trans 1), and with which
 * leading dimension. A single row or column leaves its stride unused. */
static int blas_layout(int64_t rows, int64_t cols, int64_t sr, int64_t sc, int* trans, int64_t* ld) {
  int64_t min_row = cols > 1 ? cols : 1, min_col = rows > 1 ? rows : 1;
  if ((cols <= 1 || sc == 1) && (rows <= 1 || sr >= min_row)) {
    *trans = 0;
    *ld = rows <= 1 ? min_row : sr;
  } else if ((rows <= 1 || sr == 1) && (cols <= 1 || sc >= min_col)) {
    *trans = 1;
    *ld = cols <= 1 ? min_col : sc;
  } else {
    return 0;
  }
  return *ld <= INT_MAX;
}

/* Sets op up to read x as `dtype`, copying x when its dtype or layout does
 * not suit (always when transposed reading is not allowed). */
static int prepare(operand* op, em_array* x, int dtype, int allow_trans, const em_array* out) {
  int nd = x->ndim;
  int64_t rows = x->shape[nd - 2], cols = x->shape[nd - 1];
  em_array* src = x;
  op->tmp = NULL;
  if (x->dtype != dtype ||
      !blas_layout(rows, cols, x->strides[nd - 2], x->strides[nd - 1], &op->trans, &op->ld) ||
      (op->trans && !allow_trans)) {
    em_array* tmp = em_node_new(-1, dtype, nd, x->shape, 0, NULL, 0, NULL, 0, NULL, 0);
    if (!tmp) return EM_MEMORY_ERROR;
    int status = em_alloc_output(tmp);
    if (status != EM_OK) {
      em_release(tmp);
      return status;
    }
    em_copy_into(tmp, 0, tmp->strides, x);
    op->tmp = src = tmp;
    op->trans = 0;
    op->ld = cols > 1 ? cols : 1;
  }
  op->data = (const char*)src->buf->data + src->offset * em_dtype_size(dtype);
  int nb = out->ndim - 2, lead = nb - (nd - 2);
  for (int d = 0; d < nb; d++) {
    int xd = d - lead;
    op->batch_strides[d] = (xd < 0 || src->shape[xd] == 1) ? 0 : src->strides[xd];
  }
  return EM_OK;
}

/* A vector-matrix (m == 1) or matrix-vector (n == 1) product through gemv:
 * gemm would pack the whole matrix first, which is a second pass over the
 * largest operand for a product that reads it once. 0 when it does not apply. */
static int gemv(int dtype, const operand* a, const operand* b, int64_t m, int64_t n, int64_t k,
                const void* pa, const void* pb, void* c, int64_t ldc) {
  if ((dtype != EM_FLOAT32 && dtype != EM_FLOAT64) || k < 1 || (m != 1 && n != 1)) return 0;
  const operand* mat = m == 1 ? b : a;
  const void *pm = m == 1 ? pb : pa, *pv = m == 1 ? pa : pb;
  int64_t rows = m == 1 ? n : m, incy = m == 1 ? 1 : ldc;
  /* the vector: a's row (m == 1) or b's column (n == 1) */
  int64_t incx = m == 1 ? (a->trans ? a->ld : 1) : (b->trans ? 1 : b->ld);
  /* y = M x with M (rows, k): for m == 1, M = op(b)^T; for n == 1, M = op(a) */
  int stored_rows = m == 1 ? b->trans : !a->trans;   /* M is row-major as stored */
  enum CBLAS_TRANSPOSE t = stored_rows ? CblasNoTrans : CblasTrans;
  int gm = (int)(stored_rows ? rows : k), gn = (int)(stored_rows ? k : rows);
  if (dtype == EM_FLOAT32)
    scipy_cblas_sgemv(CblasRowMajor, t, gm, gn, 1.0f, pm, (int)mat->ld, pv, (int)incx, 0.0f, c,
                      (int)incy);
  else
    scipy_cblas_dgemv(CblasRowMajor, t, gm, gn, 1.0, pm, (int)mat->ld, pv, (int)incx, 0.0, c,
                      (int)incy);
  return 1;
}

static void gemm(int dtype, const operand* a, const operand* b, int64_t m, int64_t n, int64_t k,
                 const void* pa, const void* pb, void* c, int64_t ldc) {
  if (gemv(dtype, a, b, m, n, k, pa, pb, c, ldc)) return;
  enum CBLAS_TRANSPOSE ta = a->trans ? CblasTrans : CblasNoTrans;
  enum CBLAS_TRANSPOSE tb = b->trans ? CblasTrans : CblasNoTrans;
  if (dtype == EM_FLOAT32) {
    em_sgemm(a->trans, b->trans, m, n, k, 1.0f, pa, a->ld, pb, b->ld, c, ldc);
  } else if (dtype == EM_FLOAT64) {
    scipy_cblas_dgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, 1.0, pa, (int)a->ld, pb,
                      (int)b->ld, 0.0, c, (int)ldc);
  } else {
    const c64 one = 1.0f, zero = 0.0f;
    scipy_cblas_cgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, &one, pa, (int)a->ld, pb,
                      (int)b->ld, &zero, c, (int)ldc);
  }
}

/* The batch axes of out as (count, offset of batch i in each operand). */
static int64_t batch_count(const em_array* out) {
  int64_t count = 1;
  for (int d = 0; d < out->ndim - 2; d++) count *= out->shape[d];
  return count;
}

static void batch_offsets(const em_array* out, int64_t i, const operand* a, const operand* b,
                          int64_t* oa, int64_t* ob) {
  *oa = *ob = 0;
  for (int d = out->ndim - 3; d >= 0; d--) {
    int64_t j = i % out->shape[d];
    i /= out->shape[d];
    *oa += j * a->batch_strides[d];
    *ob += j * b->batch_strides[d];
  }
}

/* A block of a product is worth a thread's wake-up from about this many
 * multiply-adds (some tens of microseconds of gemm: 4M since ember's float32
 * gemm, twice as fast as the 1M that OpenBLAS's Haswell kernels were given;
 * the MLP step at batch 8, whose products stay whole below it, took 1.4-1.6
 * ms on two threads against 2.1 with 1M in one session's alternating runs). */
#define MIN_BLOCK_MACS ((int64_t)1 << 22)
/* Block edges fall on whole panels of the gemm's micro-kernel. */
#define BLOCK_ALIGN 16

/* The float products as tasks: product i / blocks, block i % blocks. */
typedef struct {
  const em_array* out;   /* the batch's shape, or NULL for one product */
  const operand* a;
  const operand* b;
  int dtype, esize, split_rows;
  int64_t m, n, k, ldc, count, blocks, block;
  char* c;
} gemm_job;

static void gemm_tasks(void* ctx, int64_t lo, int64_t hi) {
  const gemm_job* j = ctx;
  const operand *a = j->a, *b = j->b;
  for (int64_t t = lo; t < hi; t++) {
    int64_t i = t / j->blocks, start = (t % j->blocks) * j->block, oa = 0, ob = 0;
    if (j->out) batch_offsets(j->out, i, a, b, &oa, &ob);
    const char* pa = a->data + oa * j->esize;
    const char* pb = b->data + ob * j->esize;
    char* pc = j->c + i * j->m * j->ldc * j->esize;
    int64_t m = j->m, n = j->n;
    if (j->split_rows) {
      m = m - start < j->block ? m - start : j->block;
      pa += start * (a->trans ? 1 : a->ld) * j->esize;
      pc += start * j->ldc * j->esize;
    } else {
      n = n - start < j->block ? n - start : j->block;
      pb += start * (b->trans ? b->ld : 1) * j->esize;
      pc += start * j->esize;
    }
    gemm(j->dtype, a, b, m, n, j->k, pa, pb, pc, j->ldc);
  }
}

/* Runs `count` products of m x k by k x n into c (row-major, ldc, product i
 * at c + i * m * ldc), spread over the pool. */
static void run_products(const em_array* out, int dtype, const operand* a, const operand* b,
                         int64_t count, int64_t m, int64_t n, int64_t k, char* c, int64_t ldc) {
  gemm_job j = {out, a, b, dtype, em_dtype_size(dtype), m >= n, m, n, k, ldc, count, 1, 0, c};
  int64_t macs = m * n * k, threads = em_num_threads();
  int64_t edge = j.split_rows ? m : n;
  j.block = edge;
  if (count < threads) {
    /* Enough blocks per product for every thread, each worth its wake-up. */
    int64_t blocks = (threads + count - 1) / count;
    int64_t affordable = macs / MIN_BLOCK_MACS;
    if (blocks > affordable) blocks = affordable;
    if (blocks > 1) {
      int64_t block = (edge + blocks - 1) / blocks;
      block = (block + BLOCK_ALIGN - 1) / BLOCK_ALIGN * BLOCK_ALIGN;
      if (block < edge) {
        j.block = block;
        j.blocks = (edge + block - 1) / block;
      }
    }
  }
  int64_t task_macs = macs / j.blocks + 1;
  em_parallel_for(count * j.blocks, (MIN_BLOCK_MACS + task_macs - 1) / task_macs, gemm_tasks,
                  &j);
}

/* Runs the float product into c (row-major, out's shape, dtype gemm_dtype). */
static void blas_product(const em_array* out, int dtype, const operand* a, const operand* b,
                         int64_t m, int64_t n, int64_t k, char* c) {
  int64_t count = batch_count(out);
  /* With b shared by every batch and a's batches stacked row after row, the
   * batches are one product with count * m rows. */
  int stacked = !a->trans && count > 1 && count * m <= INT_MAX;
  int64_t expect = m * a->ld;
  for (int d = out->ndim - 3; d >= 0 && stacked; d--) {
    if (b->batch_strides[d] != 0) stacked = 0;
    if (out->shape[d] == 1) continue;
    if (a->batch_strides[d] != expect) stacked = 0;
    expect *= out->shape[d];
  }
  if (stacked) {
    m *= count;
    count = 1;
  }
  run_products(count > 1 ? out : NULL, dtype, a, b, count, m, n, k, c, n > 1 ? n : 1);
}

void em_gemm(int dtype, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
             const void* a, int64_t lda, const void* b, int64_t ldb, void* c, int64_t ldc) {
  operand oa = {.data = a, .trans = trans_a, .ld = lda};
  operand ob = {.data = b, .trans = trans_b, .ld = ldb};
  run_products(NULL, dtype, &oa, &ob, 1, m, n, k, c, ldc);
}

/* ---- integer and bool products ---- */

typedef struct {
  const em_array* out;
  const operand* a;
  const operand* b;
  int64_t m, n, k;
  uint64_t* c;
} int_job;

/* Blocks keep a panel of b's rows in cache while a row of c accumulates. */
#define KBLOCK 128
#define NBLOCK 512

/* Rows of c in [lo, hi); rows count over batches. Operands are 64-bit
 * integers; the sums wrap on the unsigned bits, as numpy's do. */
static void int_rows(void* ctx, int64_t lo, int64_t hi) {
  int_job* job = ctx;
  int64_t n = job->n, k = job->k, lda = job->a->ld, ldb = job->b->ld;
  for (int64_t row = lo; row < hi; row++) {
    int64_t batch = row / job->m, i = row % job->m, oa, ob;
    batch_offsets(job->out, batch, job->a, job->b, &oa, &ob);
    const uint64_t* ar = (const uint64_t*)job->a->data + oa + i * lda;
    const uint64_t* bm = (const uint64_t*)job->b->data + ob;
    uint64_t* cr = job->c + row * n;
    memset(cr, 0, sizeof(uint64_t) * (size_t)n);
    for (int64_t k0 = 0; k0 < k; k0 += KBLOCK) {
      int64_t k1 = k0 + KBLOCK < k ? k0 + KBLOCK : k;
      for (int64_t j0 = 0; j0 < n; j0 += NBLOCK) {
        int64_t j1 = j0 + NBLOCK < n ? j0 + NBLOCK : n;
        for (int64_t p = k0; p < k1; p++) {
          uint64_t x = ar[p];
          const uint64_t* br = bm + p * ldb;
          for (int64_t j = j0; j < j1; j++) cr[j] += x * br[j];
        }
      }
    }
  }
}

static void int_product(const em_array* out, const operand* a, const operand* b, int64_t m,
                        int64_t n, int64_t k, uint64_t* c) {
  int_job job = {out, a, b, m, n, k, c};
  int64_t work = n * k > 0 ? n * k : 1;
  em_parallel_for(batch_count(out) * m, (32768 + work - 1) / work, int_rows, &job);
}

/* ---- the kernel ---- */

/* A contiguous temporary of out's shape in `dtype`. */
static em_array* new_temp(const em_array* out, int dtype) {
  em_array* t = em_node_new(-1, dtype, out->ndim, out->shape, 0, NULL, 0, NULL, 0, NULL, 0);
  if (t && em_alloc_output(t) != EM_OK) {
    em_release(t);
    return NULL;
  }
  return t;
}

int em_kernel_matmul(em_array* out) {
  em_array* x = out->inputs[0];
  em_array* y = out->inputs[1];
  int64_t m = out->shape[out->ndim - 2], n = out->shape[out->ndim - 1];
  int64_t k = x->shape[x->ndim - 1];
  int status = em_alloc_output(out);
  if (status != EM_OK || out->size == 0) return status;
  if (k == 0) {
    /* Zero bits are zero in every dtype. */
    memset(out->buf->data, 0, (size_t)out->size * (size_t)em_dtype_size(out->dtype));
    return EM_OK;
  }
  int cls = em_class_of(out->dtype);
  int is_int = cls == CL_I64 || cls == CL_U64;
  /* The dtype the product runs in. */
  int dtype = is_int ? em_class_dtype(cls) : (cls == CL_F32 ? EM_FLOAT32 : out->dtype);
  if (!is_int && (m > INT_MAX || n > INT_MAX || k > INT_MAX)) {
    em_buffer_release(out->buf);
    out->buf = NULL;
    em_fail(EM_VALUE_ERROR, "[matmul] dimensions above %d are not supported", INT_MAX);
    return EM_VALUE_ERROR;
  }
  operand a, b;
  a.tmp = b.tmp = NULL;
  em_array* ctmp = NULL;
  status = prepare(&a, x, dtype, !is_int, out);
  if (status == EM_OK) status = prepare(&b, y, dtype, !is_int, out);
  if (status == EM_OK && dtype != out->dtype) {
    ctmp = new_temp(out, dtype);
    if (!ctmp) status = EM_MEMORY_ERROR;
  }
  if (status == EM_OK) {
    char* c = ctmp ? ctmp->buf->data : out->buf->data;
    if (is_int) int_product(out, &a, &b, m, n, k, (uint64_t*)c);
    else blas_product(out, dtype, &a, &b, m, n, k, c);
    if (ctmp) em_copy_into(out, 0, out->strides, ctmp);
  } else {
    em_buffer_release(out->buf);
    out->buf = NULL;
  }
  if (a.tmp) em_release(a.tmp);
  if (b.tmp) em_release(b.tmp);
  if (ctmp) em_release(ctmp);
  return status;
}
