/* threads.c: a small pool that splits a range of work over the cores.
 *
 * em_parallel_for hands equal slices of [0, n) to the workers and runs the
 * first slice on the calling thread, then waits for the rest. Work smaller
 * than two grains runs inline: waking threads costs more than it saves.
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

#define MAX_THREADS 64

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_ready = PTHREAD_COND_INITIALIZER;
static pthread_cond_t work_done = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t submit_lock = PTHREAD_MUTEX_INITIALIZER;

static int num_threads = 0;   /* including the caller */
static int started_workers = 0;
static uint64_t generation = 0;
static int pending_slices = 0;

static em_range_fn job_fn;
static void* job_ctx;
static int64_t job_n;
static int job_slices;

static void run_slice(int slice) {
  int64_t lo = job_n * slice / job_slices, hi = job_n * (slice + 1) / job_slices;
  if (lo < hi) job_fn(job_ctx, lo, hi);
}

static void* worker_main(void* arg) {
  int index = (int)(intptr_t)arg; /* 1-based: slice 0 is the caller's */
  uint64_t seen = 0;
  pthread_mutex_lock(&pool_lock);
  for (;;) {
    while (generation == seen) pthread_cond_wait(&work_ready, &pool_lock);
    seen = generation;
    if (index >= job_slices) continue;
    pthread_mutex_unlock(&pool_lock);
    run_slice(index);
    pthread_mutex_lock(&pool_lock);
    if (--pending_slices == 0) pthread_cond_signal(&work_done);
  }
  return NULL;
}

static int default_threads(void) {
  const char* env = getenv("EMBER_NUM_THREADS");
  int n = env ? atoi(env) : (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  if (n > MAX_THREADS) n = MAX_THREADS;
  return n;
}

int em_num_threads(void) {
  if (!num_threads) num_threads = default_threads();
  return num_threads;
}

void em_set_num_threads(int n) {
  pthread_mutex_lock(&submit_lock);
  num_threads = n < 1 ? 1 : (n > MAX_THREADS ? MAX_THREADS : n);
  pthread_mutex_unlock(&submit_lock);
}

static void ensure_workers(int wanted) {
  while (started_workers < wanted - 1) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, worker_main, (void*)(intptr_t)(started_workers + 1)) != 0) {
      pthread_attr_destroy(&attr);
      break;
    }
    pthread_attr_destroy(&attr);
    started_workers++;
  }
}

void em_parallel_for(int64_t n, int64_t grain, em_range_fn fn, void* ctx) {
  if (n <= 0) return;
  int threads = em_num_threads();
  if (grain < 1) grain = 1;
  int64_t slices = n / grain;
  if (slices > threads) slices = threads;
  /* A nested call (a kernel inside a kernel) or a busy pool runs inline. */
  if (slices < 2 || pthread_mutex_trylock(&submit_lock) != 0) {
    fn(ctx, 0, n);
    return;
  }
  ensure_workers(threads);
  if (slices > started_workers + 1) slices = started_workers + 1;
  if (slices < 2) {
    pthread_mutex_unlock(&submit_lock);
    fn(ctx, 0, n);
    return;
  }
  pthread_mutex_lock(&pool_lock);
  job_fn = fn;
  job_ctx = ctx;
  job_n = n;
  job_slices = (int)slices;
  pending_slices = (int)slices - 1;
  generation++;
  pthread_cond_broadcast(&work_ready);
  pthread_mutex_unlock(&pool_lock);
  run_slice(0);
  pthread_mutex_lock(&pool_lock);
  while (pending_slices > 0) pthread_cond_wait(&work_done, &pool_lock);
  pthread_mutex_unlock(&pool_lock);
  pthread_mutex_unlock(&submit_lock);
}
