/* threads.c: the thread budget, and the pool that spends it.
 *
 * One budget for the process: em_num_threads() threads (EMBER_NUM_THREADS,
 * else the online cores), and ember's pool owns all of them. OpenBLAS is
 * pinned to one thread when the budget is first read, so every gemm runs on
 * the thread that calls it: the matmul kernel (kernels/matmul.c, em_gemm)
 * splits a product into blocks of rows or columns over em_parallel_for, and
 * conv and attention call gemm from pool workers. Two pools would fight over
 * the cores: OpenBLAS's threads spin for a long while after each call, and a
 * spinning thread takes the core that the next kernel's worker needs. LAPACK
 * is the one exception, and it is given threads in one place: a large
 * factorization runs on the caller through em_run_blas_threaded, which lends
 * OpenBLAS the whole budget for that call while the pool is held idle.
 *
 * em_parallel_for publishes a job (a function over [0, n) cut into at most
 * budget slices) and every thread, the caller included, claims slices until
 * none are left, so a worker that the OS has not scheduled yet delays
 * nothing: the caller runs its slice too. em_parallel_for_balanced cuts the
 * job finer (EM_SLICES_PER_THREAD slices per thread), for kernels with no
 * per-call setup: a worker woken late (tens of microseconds, on a virtual
 * machine whose other vCPU was halted) then takes the slices still left
 * instead of a whole share that the caller must wait for. With one slice per
 * thread, the batch-8 MLP step's Adam update took longer on two threads than
 * on one (217 against 174 us for its largest leaf); with eight, 125-130 us.
 * A job is one word, generation | slices | next slice, claimed by
 * compare-and-swap, so a late worker can never claim a slice of a later job.
 * Idle workers sleep on a condition variable and do not spin: on the shared
 * 2-core machine, spinning 20-50 us after each job cost 10-20% more CPU per
 * MLP train step and bought no wall-clock time. The caller, which has claimed
 * every slice and waits only for the ones still running, spins up to 30 us
 * before it sleeps. Work smaller than two grains runs inline, as does a call
 * from inside a job (a kernel inside a kernel).
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define MAX_THREADS 64

static pthread_once_t budget_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t submit_lock = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_ready = PTHREAD_COND_INITIALIZER;
static pthread_cond_t work_done = PTHREAD_COND_INITIALIZER;
static int sleeping_workers = 0;   /* under sleep_lock */
static atomic_int caller_sleeping; /* written under sleep_lock, read without it */

static atomic_int num_threads;     /* the budget, the caller included */
static int started_workers = 0;    /* under submit_lock */

/* The current job: generation (high 32 bits), slices (16), next slice (16). */
static _Atomic uint64_t job_word;
static atomic_int pending_slices;
static em_range_fn job_fn;
static void* job_ctx;
static int64_t job_n;
static int job_slices;

static uint32_t word_generation(uint64_t w) { return (uint32_t)(w >> 32); }

/* The next unclaimed slice of generation `gen`, or -1 when there is none. */
static int claim_slice(uint32_t gen) {
  uint64_t w = atomic_load_explicit(&job_word, memory_order_acquire);
  for (;;) {
    int slices = (int)((w >> 16) & 0xffff), next = (int)(w & 0xffff);
    if (word_generation(w) != gen || next >= slices) return -1;
    if (atomic_compare_exchange_weak_explicit(&job_word, &w, w + 1, memory_order_acq_rel,
                                              memory_order_acquire))
      return next;
  }
}

/* Runs slice `slice` of the current job; the last one to finish wakes the
 * caller if it has gone to sleep. */
static void run_slice(int slice) {
  int64_t lo = job_n * slice / job_slices, hi = job_n * (slice + 1) / job_slices;
  if (lo < hi) job_fn(job_ctx, lo, hi);
  /* The lock only when the caller sleeps: taking it on every job made the
   * caller and the worker hand the mutex back and forth (a futex wake per
   * job, 5% of the batch-8 MLP step). No wake-up is lost: the caller sets
   * caller_sleeping before it checks pending_slices, this side decrements
   * before it reads the flag (both sequentially consistent), so one of them
   * sees the other's write; and the caller holds the lock until it waits. */
  if (atomic_fetch_sub(&pending_slices, 1) == 1 && atomic_load(&caller_sleeping)) {
    pthread_mutex_lock(&sleep_lock);
    pthread_cond_signal(&work_done);
    pthread_mutex_unlock(&sleep_lock);
  }
}

/* Sleeps until a generation other than `seen` is published. */
static uint32_t wait_for_job(uint32_t seen) {
  pthread_mutex_lock(&sleep_lock);
  sleeping_workers++;
  uint32_t gen;
  while ((gen = word_generation(atomic_load(&job_word))) == seen)
    pthread_cond_wait(&work_ready, &sleep_lock);
  sleeping_workers--;
  pthread_mutex_unlock(&sleep_lock);
  return gen;
}

static void* worker_main(void* arg) {
  (void)arg;
  uint32_t seen = word_generation(atomic_load(&job_word));
  for (;;) {
    seen = wait_for_job(seen);
    int slice;
    while ((slice = claim_slice(seen)) >= 0) run_slice(slice);
  }
  return NULL;
}

static void init_budget(void) {
  const char* env = getenv("EMBER_NUM_THREADS");
  int n = env ? atoi(env) : (int)sysconf(_SC_NPROCESSORS_ONLN);
  atomic_store(&num_threads, n < 1 ? 1 : (n > MAX_THREADS ? MAX_THREADS : n));
  scipy_openblas_set_num_threads(1);
}

int em_num_threads(void) {
  pthread_once(&budget_once, init_budget);
  return atomic_load(&num_threads);
}

void em_set_num_threads(int n) {
  pthread_once(&budget_once, init_budget);
  pthread_mutex_lock(&submit_lock);
  atomic_store(&num_threads, n < 1 ? 1 : (n > MAX_THREADS ? MAX_THREADS : n));
  pthread_mutex_unlock(&submit_lock);
}

static void ensure_workers(int wanted) {
  while (started_workers < wanted - 1) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int failed = pthread_create(&t, &attr, worker_main, NULL);
    pthread_attr_destroy(&attr);
    if (failed) break;
    started_workers++;
  }
}

/* Waits for the slices that workers still run: a short spin first (the tail
 * is at most a slice or two, and a caller that sleeps on a futex can take far
 * longer to be woken on a virtual machine than the slice takes), then sleep. */
#define TAIL_SPIN_NS 30000
static void wait_for_slices(void) {
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (int spins = 1; atomic_load_explicit(&pending_slices, memory_order_acquire) > 0; spins++) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (spins % 64 == 0) {
      clock_gettime(CLOCK_MONOTONIC, &now);
      if ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) > TAIL_SPIN_NS)
        break;
    }
  }
  if (atomic_load_explicit(&pending_slices, memory_order_acquire) > 0) {
    pthread_mutex_lock(&sleep_lock);
    atomic_store(&caller_sleeping, 1);
    while (atomic_load(&pending_slices) > 0) pthread_cond_wait(&work_done, &sleep_lock);
    atomic_store(&caller_sleeping, 0);
    pthread_mutex_unlock(&sleep_lock);
  }
}

static void parallel_for(int64_t n, int64_t grain, em_range_fn fn, void* ctx, int per_thread) {
  if (n <= 0) return;
  int threads = em_num_threads();
  if (grain < 1) grain = 1;
  int64_t slices = n / grain;
  if (slices > (int64_t)threads * per_thread) slices = (int64_t)threads * per_thread;
  /* A nested call (a kernel inside a kernel) or a busy pool runs inline. */
  if (threads < 2 || slices < 2 || pthread_mutex_trylock(&submit_lock) != 0) {
    fn(ctx, 0, n);
    return;
  }
  ensure_workers(threads);
  if (started_workers == 0) {
    pthread_mutex_unlock(&submit_lock);
    fn(ctx, 0, n);
    return;
  }
  int64_t most = (int64_t)(started_workers + 1) * per_thread;
  if (slices > most) slices = most;
  job_fn = fn;
  job_ctx = ctx;
  job_n = n;
  job_slices = (int)slices;
  atomic_store_explicit(&pending_slices, (int)slices, memory_order_relaxed);
  uint32_t gen = word_generation(atomic_load(&job_word)) + 1;
  atomic_store_explicit(&job_word, (uint64_t)gen << 32 | (uint64_t)slices << 16,
                        memory_order_release);
  pthread_mutex_lock(&sleep_lock);
  if (sleeping_workers) pthread_cond_broadcast(&work_ready);
  pthread_mutex_unlock(&sleep_lock);
  int slice;
  while ((slice = claim_slice(gen)) >= 0) run_slice(slice);
  /* Every slice is claimed; wait for the workers still running theirs. */
  wait_for_slices();
  pthread_mutex_unlock(&submit_lock);
}

void em_parallel_for(int64_t n, int64_t grain, em_range_fn fn, void* ctx) {
  parallel_for(n, grain, fn, ctx, 1);
}

void em_parallel_for_balanced(int64_t n, int64_t grain, em_range_fn fn, void* ctx) {
  parallel_for(n, grain, fn, ctx, EM_SLICES_PER_THREAD);
}

void em_run_blas_threaded(em_range_fn fn, void* ctx, int64_t n) {
  int threads = em_num_threads();
  if (threads < 2 || pthread_mutex_trylock(&submit_lock) != 0) {
    fn(ctx, 0, n);
    return;
  }
  scipy_openblas_set_num_threads(threads);
  fn(ctx, 0, n);
  scipy_openblas_set_num_threads(1);
  pthread_mutex_unlock(&submit_lock);
}
