/* linalg.c: LAPACK kernels (scipy-openblas32) for ember.core.linalg.
 *
 * Every kernel works the same way: the input batch is copied once into a
 * temporary whose matrices are column-major (LAPACK's layout), each matrix of
 * the batch is factored in place by LAPACK, and the results are written
 * row-major into the output. Batches of small matrices are spread over the
 * thread pool; a large matrix runs alone, with OpenBLAS lent the thread
 * budget for the call (em_run_blas_threaded in native/threads.c).
 *
 * Decompositions with several results (qr, svd, eigh, eig, lu) have ONE
 * output, shaped (..., P): for each matrix of the batch the results are
 * packed one after the other, each row-major (the layout of each primitive is
 * documented in native/prims.c). core/linalg.py slices the packed buffer into
 * the arrays the user sees. One node per decomposition means one LAPACK call
 * per matrix, however many of its results are used.
 *
 * LAPACK's failure codes (info > 0: singular, not positive definite, no
 * convergence) become a ValueError naming the op and the first failing matrix
 * of the batch, where numpy.linalg raises LinAlgError.
 */
#include <complex.h>
#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

#include "classes.h"

/* ---- layout helpers ---- */

static int lapack_dim(int64_t n) { return n > 1 ? (int)n : 1; }

/* A contiguous copy of x (..., rows, cols) converted to dtype, whose matrices
 * are column-major: matrix b starts at element b * rows * cols. */
static em_array* colmajor_copy(em_array* x, int dtype) {
  em_array* t = em_node_new(-1, dtype, x->ndim, x->shape, 0, NULL, 0, NULL, 0, NULL, 0);
  if (!t) return NULL;
  if (em_alloc_output(t) != EM_OK) {
    em_release(t);
    return NULL;
  }
  int nd = x->ndim;
  int64_t rows = x->shape[nd - 2], cols = x->shape[nd - 1];
  int64_t strides[EM_MAX_NDIM];
  strides[nd - 2] = 1;
  strides[nd - 1] = rows;
  int64_t s = rows * cols;
  for (int d = nd - 3; d >= 0; d--) {
    strides[d] = s;
    s *= x->shape[d];
  }
  em_copy_into(t, 0, strides, x);
  return t;
}

static char* data_of(const em_array* a) {
  return (char*)a->buf->data + a->offset * em_dtype_size(a->dtype);
}

enum part { FULL, UPPER, LOWER };

/* Writes a column-major rows x cols matrix (leading dimension ld) row-major
 * into dst, keeping only `part` of it (zeros elsewhere). */
static void store_rowmajor(int esize, char* dst, const char* src, int64_t rows, int64_t cols,
                           int64_t ld, int part) {
  for (int64_t i = 0; i < rows; i++) {
    int64_t lo = part == UPPER ? i : 0, hi = part == LOWER ? i + 1 : cols;
    if (hi > cols) hi = cols;
    if (lo > cols) lo = cols;
    char* row = dst + i * cols * esize;
    memset(row, 0, (size_t)(lo * esize));
    memset(row + hi * esize, 0, (size_t)((cols - hi) * esize));
    if (esize == 4) {
      uint32_t* d = (uint32_t*)row;
      const uint32_t* s = (const uint32_t*)src;
      for (int64_t j = lo; j < hi; j++) d[j] = s[i + j * ld];
    } else {
      uint64_t* d = (uint64_t*)row;
      const uint64_t* s = (const uint64_t*)src;
      for (int64_t j = lo; j < hi; j++) d[j] = s[i + j * ld];
    }
  }
}

/* dst[i] = v for a real dtype. */
static void store_real(int dtype, char* dst, int64_t i, double v) {
  if (dtype == EM_FLOAT32) ((float*)dst)[i] = (float)v;
  else if (dtype == EM_FLOAT64) ((double*)dst)[i] = v;
  else ((c64*)dst)[i] = (float)v;
}

/* An n x n identity, column-major. */
static void set_identity(int dtype, char* a, int64_t n) {
  memset(a, 0, (size_t)(n * n * em_dtype_size(dtype)));
  for (int64_t i = 0; i < n; i++) store_real(dtype, a, i * n + i, 1.0);
}

/* ---- LAPACK by dtype (float32, float64, complex64) ---- */

static const int COL = LAPACK_COL_MAJOR;

static int lp_gesv(int dt, int n, int nrhs, void* a, int* ipiv, void* b) {
  int ld = lapack_dim(n);
  if (dt == EM_FLOAT32) return scipy_LAPACKE_sgesv_work(COL, n, nrhs, a, ld, ipiv, b, ld);
  if (dt == EM_FLOAT64) return scipy_LAPACKE_dgesv_work(COL, n, nrhs, a, ld, ipiv, b, ld);
  return scipy_LAPACKE_cgesv_work(COL, n, nrhs, a, ld, ipiv, b, ld);
}

static int lp_trtrs(int dt, char uplo, int n, int nrhs, const void* a, void* b) {
  int ld = lapack_dim(n);
  if (dt == EM_FLOAT32) return scipy_LAPACKE_strtrs_work(COL, uplo, 'N', 'N', n, nrhs, a, ld, b, ld);
  if (dt == EM_FLOAT64) return scipy_LAPACKE_dtrtrs_work(COL, uplo, 'N', 'N', n, nrhs, a, ld, b, ld);
  return scipy_LAPACKE_ctrtrs_work(COL, uplo, 'N', 'N', n, nrhs, a, ld, b, ld);
}

static int lp_potrf(int dt, char uplo, int n, void* a) {
  int ld = lapack_dim(n);
  if (dt == EM_FLOAT32) return scipy_LAPACKE_spotrf_work(COL, uplo, n, a, ld);
  if (dt == EM_FLOAT64) return scipy_LAPACKE_dpotrf_work(COL, uplo, n, a, ld);
  return scipy_LAPACKE_cpotrf_work(COL, uplo, n, a, ld);
}

static int lp_getrf(int dt, int m, int n, void* a, int* ipiv) {
  int ld = lapack_dim(m);
  if (dt == EM_FLOAT32) return scipy_LAPACKE_sgetrf_work(COL, m, n, a, ld, ipiv);
  if (dt == EM_FLOAT64) return scipy_LAPACKE_dgetrf_work(COL, m, n, a, ld, ipiv);
  return scipy_LAPACKE_cgetrf_work(COL, m, n, a, ld, ipiv);
}

/* lwork < 0 asks for the workspace size, written to work[0]. */
static int lp_geqrf(int dt, int m, int n, void* a, void* tau, void* work, int lwork) {
  int ld = lapack_dim(m);
  if (dt == EM_FLOAT32) return scipy_LAPACKE_sgeqrf_work(COL, m, n, a, ld, tau, work, lwork);
  if (dt == EM_FLOAT64) return scipy_LAPACKE_dgeqrf_work(COL, m, n, a, ld, tau, work, lwork);
  return scipy_LAPACKE_cgeqrf_work(COL, m, n, a, ld, tau, work, lwork);
}

static int lp_orgqr(int dt, int m, int n, int k, void* a, const void* tau, void* work, int lwork) {
  int ld = lapack_dim(m);
  if (dt == EM_FLOAT32) return scipy_LAPACKE_sorgqr_work(COL, m, n, k, a, ld, tau, work, lwork);
  if (dt == EM_FLOAT64) return scipy_LAPACKE_dorgqr_work(COL, m, n, k, a, ld, tau, work, lwork);
  return scipy_LAPACKE_cungqr_work(COL, m, n, k, a, ld, tau, work, lwork);
}

/* The size LAPACK reported in work[0] by a workspace query. */
static int64_t queried_size(int dt, const void* work) {
  if (dt == EM_FLOAT32) return (int64_t)((const float*)work)[0] + 1;
  if (dt == EM_FLOAT64) return (int64_t)((const double*)work)[0] + 1;
  return (int64_t)crealf(((const c64*)work)[0]) + 1;
}

/* ---- the batch driver ---- */

typedef struct job job;
/* Factors matrix `b` of the batch; returns LAPACK's info. */
typedef int (*matrix_fn)(job* j, int64_t b, char* scratch);

struct job {
  em_array* out;
  int dtype;            /* the LAPACK dtype */
  int esize;
  int64_t m, n;         /* rows and columns of the (first) input's matrices */
  int64_t nrhs;         /* columns of the second input (solves) */
  char* a;              /* column-major copies of the inputs */
  char* b;
  int64_t packed;       /* output elements per matrix */
  int64_t scratch_bytes;
  int64_t ip0, ip1;     /* the primitive's parameters */
  const void* layout;   /* the kernel's scratch layout, computed once */
  matrix_fn fn;
  int* infos;           /* LAPACK's info per matrix, or NO_SCRATCH */
};

/* The info of a matrix whose thread could not allocate its scratch space. */
enum { NO_SCRATCH = -1000000 };

static void run_range(void* ctx, int64_t lo, int64_t hi) {
  job* j = ctx;
  char* scratch = j->scratch_bytes ? malloc((size_t)j->scratch_bytes) : NULL;
  if (j->scratch_bytes && !scratch) {
    for (int64_t b = lo; b < hi; b++) j->infos[b] = NO_SCRATCH;
    return;
  }
  for (int64_t b = lo; b < hi; b++) j->infos[b] = j->fn(j, b, scratch);
  free(scratch);
}

static int64_t batch_count(const em_array* x) {
  int64_t count = 1;
  for (int d = 0; d < x->ndim - 2; d++) count *= x->shape[d];
  return count;
}

/* Runs fn over every matrix of the batch and reports the first failure as
 * "[op] <what> (matrix i of the batch)". */
static int run_batch(job* j, int64_t count, const char* what) {
  const char* op = em_prim_name(j->out->prim);
  j->infos = calloc((size_t)(count > 0 ? count : 1), sizeof(int));
  if (!j->infos) {
    em_fail(EM_MEMORY_ERROR, "[%s] out of memory", op);
    return EM_MEMORY_ERROR;
  }
  int64_t n = j->m > j->n ? j->m : j->n;
  int64_t work = n * n * n + 1;
  /* Large matrices run one at a time with OpenBLAS threading each of them;
   * small ones are spread over the pool, one single-threaded call each. */
  if (n >= 128) em_run_blas_threaded(run_range, j, count);
  else em_parallel_for(count, 1 + 262144 / work, run_range, j);
  int status = EM_OK;
  for (int64_t b = 0; b < count && status == EM_OK; b++) {
    int info = j->infos[b];
    if (info == 0) continue;
    if (info == NO_SCRATCH) {
      status = EM_MEMORY_ERROR;
      em_fail(status, "[%s] out of memory", op);
    } else if (info < 0) {
      status = EM_RUNTIME_ERROR;
      em_fail(status, "[%s] LAPACK rejected argument %d", op, -info);
    } else {
      status = EM_VALUE_ERROR;
      if (count > 1) em_fail(status, "[%s] %s (matrix %lld of the batch)", op, what, (long long)b);
      else em_fail(status, "[%s] %s", op, what);
    }
  }
  free(j->infos);
  return status;
}

/* Sets up j for out (dims from its first input) and allocates out. */
static int begin(job* j, em_array* out, matrix_fn fn, int64_t packed, int64_t scratch_bytes) {
  em_array* x = out->inputs[0];
  memset(j, 0, sizeof *j);
  j->out = out;
  j->dtype = x->dtype;
  j->esize = em_dtype_size(x->dtype);
  j->m = x->shape[x->ndim - 2];
  j->n = x->shape[x->ndim - 1];
  j->packed = packed;
  j->scratch_bytes = scratch_bytes;
  j->fn = fn;
  j->ip0 = out->nip > 0 ? out->ip[0] : 0;
  j->ip1 = out->nip > 1 ? out->ip[1] : 0;
  if (j->m > INT32_MAX || j->n > INT32_MAX) {
    em_fail(EM_VALUE_ERROR, "[%s] dimensions above %d are not supported",
            em_prim_name(out->prim), INT32_MAX);
    return EM_VALUE_ERROR;
  }
  return em_alloc_output(out);
}

/* Runs the job on copies of the inputs; releases out's buffer on failure. */
static int finish(job* j, const char* what) {
  em_array* out = j->out;
  em_array* ca = colmajor_copy(out->inputs[0], j->dtype);
  em_array* cb = NULL;
  int status = ca ? EM_OK : EM_MEMORY_ERROR;
  if (status == EM_OK && out->ninputs > 1) {
    em_array* y = out->inputs[1];
    j->nrhs = y->shape[y->ndim - 1];
    cb = colmajor_copy(y, j->dtype);
    if (!cb) status = EM_MEMORY_ERROR;
  }
  if (status == EM_OK) {
    j->a = data_of(ca);
    j->b = cb ? data_of(cb) : NULL;
    status = run_batch(j, batch_count(out->inputs[0]), what);
  } else {
    em_fail(status, "[%s] out of memory", em_prim_name(out->prim));
  }
  if (ca) em_release(ca);
  if (cb) em_release(cb);
  if (status != EM_OK) {
    em_buffer_release(out->buf);
    out->buf = NULL;
  }
  return status;
}

static char* out_matrix(job* j, int64_t b) { return data_of(j->out) + b * j->packed * j->esize; }
static char* a_matrix(job* j, int64_t b) { return j->a + b * j->m * j->n * j->esize; }

/* ---- solve, inv, solve_triangular ---- */

static int solve_one(job* j, int64_t b, char* scratch) {
  int n = (int)j->n;
  char* rhs = j->b + b * j->n * j->nrhs * j->esize;
  int info = lp_gesv(j->dtype, n, (int)j->nrhs, a_matrix(j, b), (int*)scratch, rhs);
  if (info == 0) store_rowmajor(j->esize, out_matrix(j, b), rhs, j->n, j->nrhs, lapack_dim(n), FULL);
  return info;
}

int em_kernel_solve(em_array* out) {
  job j;
  em_array* a = out->inputs[0];
  int64_t n = a->shape[a->ndim - 1];
  int status = begin(&j, out, solve_one, 0, (n + 1) * (int64_t)sizeof(int));
  if (status != EM_OK) return status;
  em_array* b = out->inputs[1];
  j.packed = n * b->shape[b->ndim - 1];
  return finish(&j, "singular matrix");
}

/* Bytes of n + 1 pivots, rounded up so what follows them is aligned. */
static int64_t pivots_bytes(int64_t n) { return ((n + 1) * (int64_t)sizeof(int) + 15) / 16 * 16; }

static int inv_one(job* j, int64_t b, char* scratch) {
  int n = (int)j->n;
  char* eye = scratch + pivots_bytes(j->n);
  set_identity(j->dtype, eye, j->n);
  int info = lp_gesv(j->dtype, n, n, a_matrix(j, b), (int*)scratch, eye);
  if (info == 0) store_rowmajor(j->esize, out_matrix(j, b), eye, j->n, j->n, lapack_dim(n), FULL);
  return info;
}

int em_kernel_inv(em_array* out) {
  job j;
  em_array* a = out->inputs[0];
  int64_t n = a->shape[a->ndim - 1];
  int64_t scratch = pivots_bytes(n) + n * n * em_dtype_size(a->dtype);
  int status = begin(&j, out, inv_one, n * n, scratch);
  if (status != EM_OK) return status;
  return finish(&j, "singular matrix");
}

/* ip0: upper. */
static int solve_triangular_one(job* j, int64_t b, char* scratch) {
  (void)scratch;
  int n = (int)j->n;
  char* rhs = j->b + b * j->n * j->nrhs * j->esize;
  int info = lp_trtrs(j->dtype, j->ip0 ? 'U' : 'L', n, (int)j->nrhs, a_matrix(j, b), rhs);
  if (info == 0) store_rowmajor(j->esize, out_matrix(j, b), rhs, j->n, j->nrhs, lapack_dim(n), FULL);
  return info;
}

int em_kernel_solve_triangular(em_array* out) {
  job j;
  em_array* b = out->inputs[1];
  int status = begin(&j, out, solve_triangular_one, 0, 0);
  if (status != EM_OK) return status;
  j.packed = j.n * b->shape[b->ndim - 1];
  return finish(&j, "singular matrix (a zero on the diagonal)");
}

/* ---- cholesky (ip0: upper) ---- */

static int cholesky_one(job* j, int64_t b, char* scratch) {
  (void)scratch;
  int n = (int)j->n;
  char* a = a_matrix(j, b);
  int info = lp_potrf(j->dtype, j->ip0 ? 'U' : 'L', n, a);
  if (info == 0)
    store_rowmajor(j->esize, out_matrix(j, b), a, j->n, j->n, lapack_dim(n), j->ip0 ? UPPER : LOWER);
  return info;
}

int em_kernel_cholesky(em_array* out) {
  job j;
  int status = begin(&j, out, cholesky_one, 0, 0);
  if (status != EM_OK) return status;
  j.packed = j.n * j.n;
  return finish(&j, "matrix is not positive definite");
}

/* ---- qr: packed Q (m x k), R (k x n), k = min(m, n) ---- */

static int qr_one(job* j, int64_t b, char* scratch) {
  int m = (int)j->m, n = (int)j->n, k = m < n ? m : n;
  char* a = a_matrix(j, b);
  char* tau = scratch;
  char* work = scratch + (k + 1) * j->esize;
  int lwork = (int)((j->scratch_bytes - (k + 1) * j->esize) / j->esize);
  char* out = out_matrix(j, b);
  if (k == 0) {
    memset(out, 0, (size_t)(j->packed * j->esize));
    return 0;
  }
  int info = lp_geqrf(j->dtype, m, n, a, tau, work, lwork);
  if (info != 0) return info;
  store_rowmajor(j->esize, out + j->m * k * j->esize, a, k, j->n, lapack_dim(m), UPPER);
  info = lp_orgqr(j->dtype, m, k, k, a, tau, work, lwork);
  if (info == 0) store_rowmajor(j->esize, out, a, j->m, k, lapack_dim(m), FULL);
  return info;
}

int em_kernel_qr(em_array* out) {
  job j;
  em_array* x = out->inputs[0];
  int dt = x->dtype, es = em_dtype_size(dt);
  int64_t m = x->shape[x->ndim - 2], n = x->shape[x->ndim - 1], k = m < n ? m : n;
  /* Workspace sizes from LAPACK's queries (on a dummy matrix). */
  char query[16] = {0}, dummy[16] = {0};
  int64_t lwork = 1;
  if (k > 0 && m <= INT32_MAX && n <= INT32_MAX) {
    lp_geqrf(dt, (int)m, (int)n, dummy, dummy, query, -1);
    lwork = queried_size(dt, query);
    lp_orgqr(dt, (int)m, (int)k, (int)k, dummy, dummy, query, -1);
    int64_t l2 = queried_size(dt, query);
    if (l2 > lwork) lwork = l2;
  }
  int status = begin(&j, out, qr_one, m * k + k * n, (k + 1 + lwork) * es);
  if (status != EM_OK) return status;
  return finish(&j, "QR factorization failed");
}

/* ---- svd, eigh, eig: real results of complex inputs ---- */

/* Bytes of one real number of dtype's precision (singular values and
 * Hermitian eigenvalues are real even for complex inputs). */
static int real_size(int dt) { return dt == EM_COMPLEX64 ? 4 : em_dtype_size(dt); }

/* Writes n real values of dtype `dt`'s precision into a packed output of dtype
 * dt (complex outputs get a zero imaginary part; core/linalg.py takes the real part). */
static void store_reals(int dt, char* dst, const char* src, int64_t n) {
  if (dt != EM_COMPLEX64) {
    memcpy(dst, src, (size_t)(n * em_dtype_size(dt)));
    return;
  }
  for (int64_t i = 0; i < n; i++) ((c64*)dst)[i] = ((const float*)src)[i];
}

static int64_t align16(int64_t bytes) { return (bytes + 15) / 16 * 16; }

/* ---- svd (ip0: compute_uv): packed U (m x m), S (k), Vt (n x n), or S ---- */

static int lp_gesdd(int dt, char jobz, int m, int n, void* a, void* s, void* u, void* vt,
                    void* work, int lwork, void* rwork, int* iwork) {
  int lda = lapack_dim(m), ldu = lapack_dim(m), ldvt = lapack_dim(n);
  if (dt == EM_FLOAT32)
    return scipy_LAPACKE_sgesdd_work(COL, jobz, m, n, a, lda, s, u, ldu, vt, ldvt, work, lwork, iwork);
  if (dt == EM_FLOAT64)
    return scipy_LAPACKE_dgesdd_work(COL, jobz, m, n, a, lda, s, u, ldu, vt, ldvt, work, lwork, iwork);
  return scipy_LAPACKE_cgesdd_work(COL, jobz, m, n, a, lda, s, u, ldu, vt, ldvt, work, lwork, rwork,
                                   iwork);
}

typedef struct {
  int64_t u, vt, s, iwork, rwork, work, lwork; /* byte offsets in scratch; lwork in elements */
} svd_scratch;

static svd_scratch svd_layout(int dt, int64_t m, int64_t n, int compute_uv) {
  svd_scratch l;
  int es = em_dtype_size(dt);
  int64_t k = m < n ? m : n, big = m > n ? m : n;
  char query[16] = {0}, dummy[16] = {0};
  int idummy[8] = {0};
  l.lwork = 1;
  if (k > 0) {
    lp_gesdd(dt, compute_uv ? 'A' : 'N', (int)m, (int)n, dummy, dummy, dummy, dummy, query, -1,
             dummy, idummy);
    l.lwork = queried_size(dt, query);
  }
  /* cgesdd's real workspace, as its documentation sizes it. */
  int64_t rwork = dt != EM_COMPLEX64 ? 0
                : compute_uv ? k * (5 * k + 7 > 2 * big + 2 * k + 1 ? 5 * k + 7 : 2 * big + 2 * k + 1)
                : 7 * k + 1;
  int64_t usize = compute_uv ? m * m : 1, vtsize = compute_uv ? n * n : 1;
  l.u = 0;
  l.vt = l.u + usize * es;
  l.s = l.vt + vtsize * es;
  l.iwork = align16(l.s + (k + 1) * real_size(dt));
  l.rwork = align16(l.iwork + (8 * k + 2) * (int64_t)sizeof(int));
  l.work = align16(l.rwork + (rwork + 1) * real_size(dt));
  return l;
}

static int svd_one(job* j, int64_t b, char* scratch) {
  int m = (int)j->m, n = (int)j->n, k = m < n ? m : n, uv = (int)j->ip0;
  const svd_scratch l = *(const svd_scratch*)j->layout;
  char* out = out_matrix(j, b);
  char *u = scratch + l.u, *vt = scratch + l.vt, *s = scratch + l.s;
  if (k == 0) {
    if (uv) {
      set_identity(j->dtype, u, j->m);
      set_identity(j->dtype, vt, j->n);
    }
  } else {
    int info = lp_gesdd(j->dtype, uv ? 'A' : 'N', m, n, a_matrix(j, b), s, u, vt, scratch + l.work,
                        (int)l.lwork, scratch + l.rwork, (int*)(scratch + l.iwork));
    /* gesdd rejects a matrix holding NaN as a bad argument; numpy reports it
     * as no convergence, and so do we (the other arguments are always valid). */
    if (info != 0) return info < 0 ? 1 : info;
  }
  if (!uv) {
    store_reals(j->dtype, out, s, k);
    return 0;
  }
  store_rowmajor(j->esize, out, u, j->m, j->m, lapack_dim(m), FULL);
  store_reals(j->dtype, out + j->m * j->m * j->esize, s, k);
  store_rowmajor(j->esize, out + (j->m * j->m + k) * j->esize, vt, j->n, j->n, lapack_dim(n), FULL);
  return 0;
}

int em_kernel_svd(em_array* out) {
  job j;
  em_array* x = out->inputs[0];
  int64_t m = x->shape[x->ndim - 2], n = x->shape[x->ndim - 1], k = m < n ? m : n;
  int uv = (int)out->ip[0];
  svd_scratch l = svd_layout(x->dtype, m, n, uv);
  int64_t packed = uv ? m * m + k + n * n : k;
  int status = begin(&j, out, svd_one, packed, l.work + l.lwork * em_dtype_size(x->dtype));
  if (status != EM_OK) return status;
  j.layout = &l;
  return finish(&j, "SVD did not converge");
}

/* ---- eigh (ip0: upper, ip1: eigenvectors): packed w (n), V (n x n), or w ---- */

/* lwork, lrwork, liwork < 0 ask for the sizes (work[0], rwork[0], iwork[0]). */
static int lp_syevd(int dt, char jobz, char uplo, int n, void* a, void* w, void* work, int lwork,
                    void* rwork, int lrwork, int* iwork, int liwork) {
  int ld = lapack_dim(n);
  if (dt == EM_FLOAT32)
    return scipy_LAPACKE_ssyevd_work(COL, jobz, uplo, n, a, ld, w, work, lwork, iwork, liwork);
  if (dt == EM_FLOAT64)
    return scipy_LAPACKE_dsyevd_work(COL, jobz, uplo, n, a, ld, w, work, lwork, iwork, liwork);
  return scipy_LAPACKE_cheevd_work(COL, jobz, uplo, n, a, ld, w, work, lwork, rwork, lrwork, iwork,
                                   liwork);
}

typedef struct {
  int64_t w, iwork, liwork, rwork, lrwork, work, lwork;
} eigh_scratch;

static eigh_scratch eigh_layout(int dt, int64_t n, int vectors) {
  eigh_scratch l;
  char query[16] = {0}, dummy[16] = {0};
  float rquery[4] = {0};
  int iquery = 1;
  l.lwork = l.liwork = l.lrwork = 1;
  if (n > 0) {
    lp_syevd(dt, vectors ? 'V' : 'N', 'L', (int)n, dummy, dummy, query, -1, rquery, -1, &iquery, -1);
    l.lwork = queried_size(dt, query);
    l.liwork = iquery + 1;
    if (dt == EM_COMPLEX64) l.lrwork = (int64_t)rquery[0] + 1;
  }
  l.w = 0;
  l.iwork = align16((n + 2) * real_size(dt));
  l.rwork = align16(l.iwork + l.liwork * (int64_t)sizeof(int));
  l.work = align16(l.rwork + l.lrwork * real_size(dt));
  return l;
}

static int eigh_one(job* j, int64_t b, char* scratch) {
  int n = (int)j->n, vectors = (int)j->ip1;
  const eigh_scratch l = *(const eigh_scratch*)j->layout;
  char* a = a_matrix(j, b);
  char* out = out_matrix(j, b);
  if (n > 0) {
    int info = lp_syevd(j->dtype, vectors ? 'V' : 'N', j->ip0 ? 'U' : 'L', n, a, scratch + l.w,
                        scratch + l.work, (int)l.lwork, scratch + l.rwork, (int)l.lrwork,
                        (int*)(scratch + l.iwork), (int)l.liwork);
    if (info != 0) return info;
  }
  store_reals(j->dtype, out, scratch + l.w, j->n);
  if (vectors) store_rowmajor(j->esize, out + j->n * j->esize, a, j->n, j->n, lapack_dim(n), FULL);
  return 0;
}

int em_kernel_eigh(em_array* out) {
  job j;
  em_array* x = out->inputs[0];
  int64_t n = x->shape[x->ndim - 1];
  int vectors = (int)out->ip[1];
  eigh_scratch l = eigh_layout(x->dtype, n, vectors);
  int64_t packed = vectors ? n + n * n : n;
  int status = begin(&j, out, eigh_one, packed, l.work + l.lwork * em_dtype_size(x->dtype));
  if (status != EM_OK) return status;
  j.layout = &l;
  return finish(&j, "eigenvalues did not converge");
}

/* ---- eig (ip0: eigenvectors): complex64 packed w (n), V (n x n), or w ----
 * Real inputs: geev returns w as (wr, wi) and a complex pair's vectors as the
 * real and imaginary parts in two columns. Complex inputs: w and V as they are. */

static int lp_geev(int dt, char jobvr, int n, void* a, void* wr, void* wi, void* vr, void* work,
                   int lwork, void* rwork) {
  int ld = lapack_dim(n);
  char vl[16];
  if (dt == EM_FLOAT32)
    return scipy_LAPACKE_sgeev_work(COL, 'N', jobvr, n, a, ld, wr, wi, (float*)vl, 1, vr, ld, work,
                                    lwork);
  if (dt == EM_FLOAT64)
    return scipy_LAPACKE_dgeev_work(COL, 'N', jobvr, n, a, ld, wr, wi, (double*)vl, 1, vr, ld, work,
                                    lwork);
  return scipy_LAPACKE_cgeev_work(COL, 'N', jobvr, n, a, ld, wr, (c64*)vl, 1, vr, ld, work, lwork,
                                  rwork);
}

typedef struct {
  int64_t wr, wi, vr, rwork, work, lwork;
} eig_scratch;

static eig_scratch eig_layout(int dt, int64_t n, int vectors) {
  eig_scratch l;
  int es = em_dtype_size(dt);
  char query[16] = {0}, dummy[16] = {0};
  l.lwork = 1;
  if (n > 0) {
    lp_geev(dt, vectors ? 'V' : 'N', (int)n, dummy, dummy, dummy, dummy, query, -1, dummy);
    l.lwork = queried_size(dt, query);
  }
  l.wr = 0;
  l.wi = (n + 1) * es;
  l.vr = l.wi + (n + 1) * es;
  l.rwork = align16(l.vr + (vectors ? n * n : 1) * es);
  l.work = align16(l.rwork + (2 * n + 1) * real_size(dt));
  return l;
}

static double real_at(int dt, const char* p, int64_t i) {
  return dt == EM_FLOAT32 ? ((const float*)p)[i] : ((const double*)p)[i];
}

/* Writes a real geev's eigenvalues and vectors as complex64. */
static void store_real_eig(int dt, int64_t n, const char* wr, const char* wi, const char* vr,
                           c64* out, int vectors) {
  for (int64_t k = 0; k < n; k++) out[k] = (float)real_at(dt, wr, k) + I * (float)real_at(dt, wi, k);
  if (!vectors) return;
  /* A complex pair (w_k, conj w_k) stores v_k = vr[:, k] + i vr[:, k + 1]. */
  c64* v = out + n;
  for (int64_t k = 0; k < n; k++) {
    double im = real_at(dt, wi, k);
    for (int64_t r = 0; r < n; r++) {
      double re = real_at(dt, vr, r + k * n);
      if (im == 0) {
        v[r * n + k] = (float)re;
      } else if (im > 0 && k + 1 < n) {
        double ii = real_at(dt, vr, r + (k + 1) * n);
        v[r * n + k] = (float)re + I * (float)ii;
        v[r * n + k + 1] = (float)re - I * (float)ii;
      }
    }
    if (im > 0) k++;
  }
}

static int eig_one(job* j, int64_t b, char* scratch) {
  int n = (int)j->n, vectors = (int)j->ip0, dt = j->dtype;
  const eig_scratch l = *(const eig_scratch*)j->layout;
  char *wr = scratch + l.wr, *wi = scratch + l.wi, *vr = scratch + l.vr;
  c64* out = (c64*)data_of(j->out) + b * j->packed;
  if (n == 0) return 0;
  int info = lp_geev(dt, vectors ? 'V' : 'N', n, a_matrix(j, b), wr, wi, vr, scratch + l.work,
                     (int)l.lwork, scratch + l.rwork);
  if (info != 0) return info;
  if (dt != EM_COMPLEX64) {
    store_real_eig(dt, j->n, wr, wi, vr, out, vectors);
  } else {
    memcpy(out, wr, (size_t)(j->n * sizeof(c64)));
    if (vectors) store_rowmajor(sizeof(c64), (char*)(out + j->n), vr, j->n, j->n, lapack_dim(n), FULL);
  }
  return 0;
}

int em_kernel_eig(em_array* out) {
  job j;
  em_array* x = out->inputs[0];
  int64_t n = x->shape[x->ndim - 1];
  int vectors = (int)out->ip[0];
  eig_scratch l = eig_layout(x->dtype, n, vectors);
  int64_t packed = vectors ? n + n * n : n;
  int status = begin(&j, out, eig_one, packed, l.work + l.lwork * em_dtype_size(x->dtype));
  if (status != EM_OK) return status;
  j.layout = &l;
  return finish(&j, "eigenvalues did not converge");
}

/* ---- lu: packed LU (m x n), pivots (k), row indices p (m), with A = L[p] @ U ---- */

static int lu_one(job* j, int64_t b, char* scratch) {
  int m = (int)j->m, n = (int)j->n, k = m < n ? m : n;
  int* ipiv = (int*)scratch;
  int64_t* perm = (int64_t*)(scratch + (k + 1) * sizeof(int64_t));
  char* a = a_matrix(j, b);
  char* out = out_matrix(j, b);
  if (k > 0) {
    int info = lp_getrf(j->dtype, m, n, a, ipiv);
    if (info < 0) return info; /* info > 0 (an exact zero pivot) is a valid factorization */
  }
  store_rowmajor(j->esize, out, a, j->m, j->n, lapack_dim(m), FULL);
  /* perm: the rows of A in the order of L U; p is its inverse. */
  for (int64_t i = 0; i < j->m; i++) perm[i] = i;
  for (int64_t i = 0; i < k; i++) {
    int64_t r = ipiv[i] - 1, t = perm[i];
    perm[i] = perm[r];
    perm[r] = t;
    store_real(j->dtype, out, j->m * j->n + i, (double)r);
  }
  for (int64_t i = 0; i < j->m; i++) store_real(j->dtype, out, j->m * j->n + k + perm[i], (double)i);
  return 0;
}

int em_kernel_lu(em_array* out) {
  job j;
  em_array* x = out->inputs[0];
  int64_t m = x->shape[x->ndim - 2], n = x->shape[x->ndim - 1], k = m < n ? m : n;
  int64_t scratch = (k + 1) * (int64_t)sizeof(int64_t) + (m + 1) * (int64_t)sizeof(int64_t);
  int status = begin(&j, out, lu_one, m * n + k + m, scratch);
  if (status != EM_OK) return status;
  return finish(&j, "LU factorization failed");
}
