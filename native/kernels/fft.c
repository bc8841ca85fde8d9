/* fft.c: the discrete Fourier transform along one axis (EM_P_FFT).
 *
 * A length-n transform runs as a mixed-radix Stockham FFT: n is factored
 * into radices 4, 2, 3, 5 and other primes up to GENERIC_MAX_RADIX, and each
 * stage reads one buffer and writes the other in sorted order, so no bit
 * reversal is needed. A length with a larger prime factor runs Bluestein's
 * algorithm: the DFT becomes a convolution with a chirp, done with FFTs of a
 * 5-smooth length m >= 2n - 1. Twiddles (computed in double precision) live
 * in a plan, and plans are cached by n.
 *
 * Only the forward transform is written out: the inverse is
 * conj(F(conj(x))), applied while a line is loaded and stored. A real
 * transform of even length n packs the line into n/2 complex values (even
 * samples real, odd samples imaginary), runs one half-length transform and
 * untangles the two halves with the n-th roots of unity (a "real plan"). A
 * real transform of odd length runs as a complex one: real input with zero
 * imaginary parts, and for complex to real the rebuilt Hermitian spectrum
 * whose real part is kept. Both ignore the imaginary parts of the zero and
 * Nyquist bins, as numpy does. Data are complex64, as in mlx.
 *
 * Many lines are spread over the thread pool; a few long lines run one at a
 * time with each stage's butterflies spread over the pool instead.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lines.h"

typedef struct {
  float re, im;
} cpx;

static inline cpx cadd(cpx a, cpx b) { return (cpx){a.re + b.re, a.im + b.im}; }
static inline cpx csub(cpx a, cpx b) { return (cpx){a.re - b.re, a.im - b.im}; }
static inline cpx cmul(cpx a, cpx b) {
  return (cpx){a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}
static inline cpx cscale(cpx a, float s) { return (cpx){a.re * s, a.im * s}; }
static inline cpx conjugate(cpx a) { return (cpx){a.re, -a.im}; }
/* a * -i */
static inline cpx rot_neg_i(cpx a) { return (cpx){a.im, -a.re}; }

#define MAX_STAGES 64
#define GENERIC_MAX_RADIX 61
#define PLAN_CACHE_SIZE 32
/* Lines at least this long and fewer than the threads: split each stage instead. */
#define STAGE_PARALLEL_MIN 8192

typedef struct fft_plan {
  int64_t n;
  int nstages;
  int radix[MAX_STAGES];
  int64_t span[MAX_STAGES];    /* product of the radices before the stage */
  int64_t tw_off[MAX_STAGES];  /* the stage's twiddles: span * (radix - 1) */
  int64_t root_off[MAX_STAGES];/* a generic stage's radix-th roots of unity */
  cpx* table;
  /* Bluestein's algorithm, when n has a prime factor above GENERIC_MAX_RADIX. */
  struct fft_plan* sub;        /* the plan of length m */
  cpx* chirp;                  /* n entries: exp(-pi i k^2 / n) */
  cpx* kernel;                 /* m entries: F(conj chirp, wrapped) / m */
  int64_t work;                /* entries each of the two line buffers needs */
  /* A real plan (even n): the complex plan of n/2 and exp(-2 pi i k/n), k <= n/2. */
  int real;
  struct fft_plan* half;
  cpx* real_tw;
} fft_plan;

static cpx* transform(const struct fft_plan* p, cpx* x, cpx* tmp, int parallel);

static cpx unit_root(int64_t num, int64_t den) {
  double angle = -6.283185307179586477 * (double)num / (double)den;
  return (cpx){(float)cos(angle), (float)sin(angle)};
}

static void free_plan(fft_plan* p) {
  if (!p) return;
  free_plan(p->sub);
  free_plan(p->half);
  free(p->real_tw);
  free(p->table);
  free(p->chirp);
  free(p->kernel);
  free(p);
}

static int is_smooth(int64_t m) {
  for (int f = 2; f <= 5; f++)
    while (m % f == 0) m /= f;
  return m == 1;
}

/* Factors n into stages; zero when a prime factor is too large. */
static int factor(fft_plan* p) {
  int64_t m = p->n;
  p->nstages = 0;
  while (m % 4 == 0) { p->radix[p->nstages++] = 4; m /= 4; }
  if (m % 2 == 0) { p->radix[p->nstages++] = 2; m /= 2; }
  for (int64_t f = 3; m > 1; f += 2) {
    if (f * f > m) f = m;
    if (f > GENERIC_MAX_RADIX) return 0;
    while (m % f == 0) { p->radix[p->nstages++] = (int)f; m /= f; }
  }
  return 1;
}

static fft_plan* make_plan(int64_t n) {
  fft_plan* p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->n = n;
  p->work = n;
  if (factor(p)) {
    int64_t size = 0, span = 1;
    for (int s = 0; s < p->nstages; s++) {
      int r = p->radix[s];
      p->span[s] = span;
      p->tw_off[s] = size;
      size += span * (r - 1);
      p->root_off[s] = size;
      if (r > 5) size += r;
      span *= r;
    }
    p->table = malloc(sizeof(cpx) * (size_t)(size ? size : 1));
    if (!p->table) { free_plan(p); return NULL; }
    for (int s = 0; s < p->nstages; s++) {
      int r = p->radix[s];
      int64_t ns = p->span[s];
      cpx* tw = p->table + p->tw_off[s];
      for (int64_t j = 0; j < ns; j++)
        for (int q = 1; q < r; q++) tw[j * (r - 1) + q - 1] = unit_root(q * j, ns * r);
      if (r > 5)
        for (int q = 0; q < r; q++) p->table[p->root_off[s] + q] = unit_root(q, r);
    }
    return p;
  }
  /* Bluestein: X_k = w_k sum_j (x_j w_j) conj(w_{k-j}), w_k = exp(-pi i k^2/n). */
  int64_t m = 2 * n - 1;
  while (!is_smooth(m)) m++;
  p->nstages = 0;
  p->work = m;
  p->sub = make_plan(m);
  p->chirp = malloc(sizeof(cpx) * (size_t)n);
  p->kernel = calloc((size_t)m, sizeof(cpx));
  cpx* tmp = malloc(sizeof(cpx) * (size_t)m);
  if (!p->sub || !p->chirp || !p->kernel || !tmp) {
    free(tmp);
    free_plan(p);
    return NULL;
  }
  /* k^2 mod 2n, advanced as (k+1)^2 = k^2 + 2k + 1, keeps the angle small and exact. */
  for (int64_t k = 0, k2 = 0; k < n; k2 = (k2 + 2 * k + 1) % (2 * n), k++)
    p->chirp[k] = unit_root(k2, 2 * n);
  float inv_m = 1.0f / (float)m;
  p->kernel[0] = cscale(conjugate(p->chirp[0]), inv_m);
  for (int64_t k = 1; k < n; k++)
    p->kernel[k] = p->kernel[m - k] = cscale(conjugate(p->chirp[k]), inv_m);
  cpx* f = transform(p->sub, p->kernel, tmp, 0);
  if (f != p->kernel) memcpy(p->kernel, f, sizeof(cpx) * (size_t)m);
  free(tmp);
  return p;
}

/* The real plan of even length n. */
static fft_plan* make_real_plan(int64_t n) {
  fft_plan* p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->n = n;
  p->real = 1;
  p->half = make_plan(n / 2);
  p->real_tw = malloc(sizeof(cpx) * (size_t)(n / 2 + 1));
  if (!p->half || !p->real_tw) {
    free_plan(p);
    return NULL;
  }
  p->work = p->half->work;
  for (int64_t k = 0; k <= n / 2; k++) p->real_tw[k] = unit_root(k, n);
  return p;
}

/* ---- plan cache ---- */

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static fft_plan* cache[PLAN_CACHE_SIZE];

/* A cached plan (real or complex), or (cache full) a fresh one with *owned
 * set: the caller frees it. */
static fft_plan* get_plan(int64_t n, int real, int* owned) {
  *owned = 0;
  pthread_mutex_lock(&cache_lock);
  int slot = -1;
  for (int i = 0; i < PLAN_CACHE_SIZE; i++) {
    if (cache[i] && cache[i]->n == n && cache[i]->real == real) {
      fft_plan* p = cache[i];
      pthread_mutex_unlock(&cache_lock);
      return p;
    }
    if (!cache[i] && slot < 0) slot = i;
  }
  fft_plan* p = real ? make_real_plan(n) : make_plan(n);
  if (p && slot >= 0) cache[slot] = p;
  else *owned = 1;
  pthread_mutex_unlock(&cache_lock);
  return p;
}

/* ---- stages ---- */

/* Butterflies j in [lo, hi) of stage s: the j-th reads x[j + q * n/r] for
 * q < r, twiddles them, and writes their length-r DFT to
 * y[(j / span) * span * r + j % span + q * span]. */
static void run_stage(const fft_plan* p, int s, const cpx* x, cpx* y, int64_t lo, int64_t hi) {
  int r = p->radix[s];
  int64_t span = p->span[s], stride = p->n / r;
  const cpx* tw = p->table + p->tw_off[s];
  int64_t b = lo / span, jj = lo % span;
  for (int64_t j = lo; j < hi; j++) {
    const cpx* w = tw + jj * (r - 1);
    cpx* out = y + b * span * r + jj;
    const cpx* in = x + j;
    if (r == 4) {
      cpx a0 = in[0], a1 = cmul(in[stride], w[0]), a2 = cmul(in[2 * stride], w[1]),
          a3 = cmul(in[3 * stride], w[2]);
      cpx t0 = cadd(a0, a2), t1 = csub(a0, a2), t2 = cadd(a1, a3), t3 = rot_neg_i(csub(a1, a3));
      out[0] = cadd(t0, t2);
      out[span] = cadd(t1, t3);
      out[2 * span] = csub(t0, t2);
      out[3 * span] = csub(t1, t3);
    } else if (r == 2) {
      cpx a0 = in[0], a1 = cmul(in[stride], w[0]);
      out[0] = cadd(a0, a1);
      out[span] = csub(a0, a1);
    } else if (r == 3) {
      const float s3 = 0.866025403784438647f; /* sin(2 pi / 3) */
      cpx a0 = in[0], a1 = cmul(in[stride], w[0]), a2 = cmul(in[2 * stride], w[1]);
      cpx t1 = cadd(a1, a2);
      cpx t2 = csub(a0, cscale(t1, 0.5f));
      cpx t3 = cscale(rot_neg_i(csub(a1, a2)), s3);
      out[0] = cadd(a0, t1);
      out[span] = cadd(t2, t3);
      out[2 * span] = csub(t2, t3);
    } else if (r == 5) {
      const float c1 = 0.309016994374947424f, c2 = -0.809016994374947424f;
      const float s1 = 0.951056516295153572f, s2 = 0.587785252292473129f;
      cpx a0 = in[0], a1 = cmul(in[stride], w[0]), a2 = cmul(in[2 * stride], w[1]),
          a3 = cmul(in[3 * stride], w[2]), a4 = cmul(in[4 * stride], w[3]);
      cpx b1 = cadd(a1, a4), b2 = cadd(a2, a3), d1 = csub(a1, a4), d2 = csub(a2, a3);
      cpx e1 = cadd(a0, cadd(cscale(b1, c1), cscale(b2, c2)));
      cpx e2 = cadd(a0, cadd(cscale(b1, c2), cscale(b2, c1)));
      cpx f1 = rot_neg_i(cadd(cscale(d1, s1), cscale(d2, s2)));
      cpx f2 = rot_neg_i(csub(cscale(d1, s2), cscale(d2, s1)));
      out[0] = cadd(a0, cadd(b1, b2));
      out[span] = cadd(e1, f1);
      out[4 * span] = csub(e1, f1);
      out[2 * span] = cadd(e2, f2);
      out[3 * span] = csub(e2, f2);
    } else {
      cpx a[GENERIC_MAX_RADIX];
      const cpx* roots = p->table + p->root_off[s];
      a[0] = in[0];
      for (int q = 1; q < r; q++) a[q] = cmul(in[q * stride], w[q - 1]);
      for (int k = 0; k < r; k++) {
        cpx acc = a[0];
        int t = 0;
        for (int q = 1; q < r; q++) {
          t += k;
          if (t >= r) t -= r;
          acc = cadd(acc, cmul(a[q], roots[t]));
        }
        out[k * span] = acc;
      }
    }
    if (++jj == span) {
      jj = 0;
      b++;
    }
  }
}

typedef struct {
  const fft_plan* plan;
  int stage;
  const cpx* x;
  cpx* y;
} stage_job;

static void stage_range(void* ctx, int64_t lo, int64_t hi) {
  const stage_job* job = ctx;
  run_stage(job->plan, job->stage, job->x, job->y, lo, hi);
}

/* The forward DFT of x[0, n); tmp is scratch; both hold plan->work entries.
 * Returns the buffer holding the result (x or tmp). */
static cpx* transform(const struct fft_plan* p, cpx* x, cpx* tmp, int parallel) {
  if (p->sub) {
    int64_t n = p->n, m = p->sub->n;
    for (int64_t k = 0; k < n; k++) x[k] = cmul(x[k], p->chirp[k]);
    memset(x + n, 0, sizeof(cpx) * (size_t)(m - n));
    cpx* f = transform(p->sub, x, tmp, parallel);
    cpx* other = f == x ? tmp : x;
    /* The inverse of the product, as conj(F(conj(.))); kernel carries 1/m. */
    for (int64_t k = 0; k < m; k++) f[k] = conjugate(cmul(f[k], p->kernel[k]));
    cpx* g = transform(p->sub, f, other, parallel);
    for (int64_t k = 0; k < n; k++) g[k] = cmul(conjugate(g[k]), p->chirp[k]);
    return g;
  }
  cpx *a = x, *b = tmp;
  for (int s = 0; s < p->nstages; s++) {
    int64_t count = p->n / p->radix[s];
    if (parallel) {
      stage_job job = {p, s, a, b};
      em_parallel_for(count, 2048, stage_range, &job);
    } else {
      run_stage(p, s, a, b, 0, count);
    }
    cpx* t = a; a = b; b = t;
  }
  return a;
}

/* ---- the kernel ---- */

typedef struct {
  em_lines lines;
  const fft_plan* plan;
  int kind;
  int64_t n, in_len, out_len, sin, sout;
  float scale;
  const char* in;
  char* out;
  atomic_int out_of_memory;
} fft_job;

static void load_line(const fft_job* job, const char* src, cpx* a) {
  int64_t n = job->n, sin = job->sin;
  if (job->kind == EM_FFT_REAL_FORWARD) {
    const float* x = (const float*)src;
    int64_t len = job->in_len < n ? job->in_len : n;
    for (int64_t k = 0; k < len; k++) a[k] = (cpx){x[k * sin], 0.0f};
    for (int64_t k = len; k < n; k++) a[k] = (cpx){0.0f, 0.0f};
    return;
  }
  const cpx* x = (const cpx*)src;
  if (job->kind == EM_FFT_REAL_INVERSE) {
    /* conj of the full spectrum Z, Z[n - k] = conj(Z[k]). */
    int64_t h = n / 2 + 1, len = job->in_len < h ? job->in_len : h;
    for (int64_t k = 0; k < h; k++) a[k] = k < len ? conjugate(x[k * sin]) : (cpx){0.0f, 0.0f};
    for (int64_t k = 1; n - k >= h; k++) a[n - k] = conjugate(a[k]);
    return;
  }
  int64_t len = job->in_len < n ? job->in_len : n;
  if (job->kind == EM_FFT_INVERSE)
    for (int64_t k = 0; k < len; k++) a[k] = conjugate(x[k * sin]);
  else
    for (int64_t k = 0; k < len; k++) a[k] = x[k * sin];
  for (int64_t k = len; k < n; k++) a[k] = (cpx){0.0f, 0.0f};
}

static void store_line(const fft_job* job, const cpx* r, char* dst) {
  int64_t len = job->out_len, sout = job->sout;
  float s = job->scale;
  if (job->kind == EM_FFT_REAL_INVERSE) {
    float* y = (float*)dst;
    for (int64_t k = 0; k < len; k++) y[k * sout] = r[k].re * s;
    return;
  }
  cpx* y = (cpx*)dst;
  if (job->kind == EM_FFT_INVERSE)
    for (int64_t k = 0; k < len; k++) y[k * sout] = cscale(conjugate(r[k]), s);
  else
    for (int64_t k = 0; k < len; k++) y[k * sout] = cscale(r[k], s);
}

/* Real to complex with a real plan: z = x[even] + i x[odd], Z = F(z), and
 * X[k] = E[k] + w^k O[k] with E[k] = (Z[k] + conj Z[N-k]) / 2 and
 * O[k] = (Z[k] - conj Z[N-k]) / 2i the spectra of the even and odd samples. */
static void real_forward_line(const fft_job* job, const float* x, cpx* y, cpx* a, cpx* b,
                              int parallel) {
  const fft_plan* p = job->plan;
  int64_t half = p->n / 2, sin = job->sin, sout = job->sout;
  for (int64_t k = 0; k < half; k++) {
    int64_t j = 2 * k;
    a[k] = (cpx){j < job->in_len ? x[j * sin] : 0.0f, j + 1 < job->in_len ? x[(j + 1) * sin] : 0.0f};
  }
  const cpx* z = transform(p->half, a, b, parallel);
  float s = 0.5f * job->scale;
  for (int64_t k = 0; k <= half; k++) {
    cpx zk = z[k == half ? 0 : k], zc = conjugate(z[k == 0 ? 0 : half - k]);
    cpx e = cadd(zk, zc), o = rot_neg_i(csub(zk, zc)); /* 2E and 2O */
    y[k * sout] = cscale(cadd(e, cmul(p->real_tw[k], o)), s);
  }
}

/* Complex to real with a real plan, the inverse of the above: from the half
 * spectrum (imaginary parts of bins 0 and N dropped) 2Z[k] = 2E[k] + 2i O[k],
 * 2E[k] = X[k] + conj X[N-k], 2O[k] = (X[k] - conj X[N-k]) conj(w^k); then
 * z = F^-1(Z) holds the even samples in its real parts and the odd ones in
 * its imaginary parts. */
static void real_inverse_line(const fft_job* job, const cpx* x, float* y, cpx* a, cpx* b,
                              int parallel) {
  const fft_plan* p = job->plan;
  int64_t half = p->n / 2, sin = job->sin, sout = job->sout;
  for (int64_t k = 0; k < half; k++) {
    int64_t m = half - k;
    cpx xk = k < job->in_len ? x[k * sin] : (cpx){0.0f, 0.0f};
    cpx xm = m < job->in_len ? x[m * sin] : (cpx){0.0f, 0.0f};
    if (k == 0) {
      xk.im = 0.0f;
      xm.im = 0.0f;
    }
    cpx xc = conjugate(xm);
    cpx e = cadd(xk, xc), o = cmul(csub(xk, xc), conjugate(p->real_tw[k]));
    /* conj(e + i o), the input of the conj(F(conj(.))) inverse */
    a[k] = conjugate((cpx){e.re - o.im, e.im + o.re});
  }
  const cpx* z = transform(p->half, a, b, parallel);
  float s = job->scale;
  for (int64_t k = 0; k < half; k++) {
    y[2 * k * sout] = z[k].re * s;
    y[(2 * k + 1) * sout] = -z[k].im * s;
  }
}

static void run_line(const fft_job* job, int64_t line, cpx* a, cpx* b, int parallel) {
  int64_t io, oo;
  em_line_offsets(&job->lines, line, &io, &oo);
  int in_isz = job->kind == EM_FFT_REAL_FORWARD ? 4 : 8;
  int out_isz = job->kind == EM_FFT_REAL_INVERSE ? 4 : 8;
  const char* src = job->in + io * in_isz;
  char* dst = job->out + oo * out_isz;
  if (job->plan->real && job->kind == EM_FFT_REAL_FORWARD)
    real_forward_line(job, (const float*)src, (cpx*)dst, a, b, parallel);
  else if (job->plan->real)
    real_inverse_line(job, (const cpx*)src, (float*)dst, a, b, parallel);
  else {
    load_line(job, src, a);
    store_line(job, transform(job->plan, a, b, parallel), dst);
  }
}

static void lines_range(void* ctx, int64_t lo, int64_t hi) {
  fft_job* job = ctx;
  cpx* a = malloc(sizeof(cpx) * 2 * (size_t)job->plan->work);
  if (!a) {
    atomic_store(&job->out_of_memory, 1);
    return;
  }
  for (int64_t line = lo; line < hi; line++) run_line(job, line, a, a + job->plan->work, 0);
  free(a);
}

int em_kernel_fft(em_array* out) {
  em_array* in = out->inputs[0];
  int axis = (int)out->ip[0];
  int status = em_alloc_output(out);
  if (status != EM_OK) return status;
  if (out->size == 0) return EM_OK;
  fft_job job;
  job.kind = (int)out->ip[1];
  job.n = out->ip[2];
  job.in_len = in->shape[axis];
  job.out_len = out->shape[axis];
  job.sin = in->strides[axis];
  job.sout = out->strides[axis];
  job.scale = (float)out->fp[0];
  job.in = (const char*)in->buf->data;
  job.out = (char*)out->buf->data;
  atomic_init(&job.out_of_memory, 0);
  em_lines_init(&job.lines, in, out, axis);
  int owned, real = (job.kind == EM_FFT_REAL_FORWARD || job.kind == EM_FFT_REAL_INVERSE) &&
                    job.n % 2 == 0;
  fft_plan* plan = get_plan(job.n, real, &owned);
  if (!plan) {
    em_fail(EM_MEMORY_ERROR, "[fft] out of memory planning a transform of length %lld",
            (long long)job.n);
    return EM_MEMORY_ERROR;
  }
  job.plan = plan;
  if (job.lines.count < em_num_threads() && job.n >= STAGE_PARALLEL_MIN) {
    cpx* a = malloc(sizeof(cpx) * 2 * (size_t)plan->work);
    if (!a) atomic_store(&job.out_of_memory, 1);
    for (int64_t line = 0; a && line < job.lines.count; line++)
      run_line(&job, line, a, a + plan->work, 1);
    free(a);
  } else {
    int64_t grain = job.n >= 4096 ? 1 : 4096 / job.n;
    em_parallel_for(job.lines.count, grain, lines_range, &job);
  }
  if (owned) free_plan(plan);
  if (atomic_load(&job.out_of_memory)) {
    em_fail(EM_MEMORY_ERROR, "[fft] out of memory for a line of %lld elements", (long long)job.n);
    return EM_MEMORY_ERROR;
  }
  return EM_OK;
}
