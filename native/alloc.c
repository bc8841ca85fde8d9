/* alloc.c: the caching allocator.
 *
 * Buffers are rounded up to a size class (64-byte steps up to 4 KiB, then
 * four classes per power of two) and, when released, kept in a free list per
 * class so the next allocation of that class is a pointer pop. Counters:
 * active (bytes in live buffers), peak (highest active since reset), cache
 * (bytes parked in free lists). Allocating past the memory limit fails with
 * MemoryError; the cache is trimmed to its own limit on every release.
 */
#define _DEFAULT_SOURCE /* madvise and MADV_HUGEPAGE under -std=c11 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define SMALL_STEP 64
#define SMALL_CLASSES 64 /* up to 4 KiB */
#define NUM_CLASSES (SMALL_CLASSES + 4 * 52)

typedef struct cached_block {
  struct cached_block* next;
} cached_block;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static cached_block* free_lists[NUM_CLASSES];
static size_t active_bytes, peak_bytes, cache_bytes;
static size_t memory_limit, cache_limit;
static int limits_set;

static void init_limits(void) {
  if (limits_set) return;
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  size_t ram = (pages > 0 && page > 0) ? (size_t)pages * (size_t)page : ((size_t)1 << 34);
  memory_limit = ram;
  cache_limit = ram;
  limits_set = 1;
}

/* Buffers of 4 MiB and more (their size classes are whole multiples of
 * 2 MiB) are 2 MiB aligned and asked to be backed by transparent huge pages,
 * as numpy does for its large arrays: where THP is in "madvise" mode (the
 * usual default) a 4 KB-paged buffer streams through the TLB one page at a
 * time, and elementwise kernels over tens of megabytes ran about 25% slower
 * than numpy's on the same data. */
#define HUGE_BYTES ((size_t)4 << 20)
#define HUGE_ALIGN ((size_t)2 << 20)

static void* os_alloc(size_t bytes) {
  if (bytes < HUGE_BYTES) return aligned_alloc(64, bytes);
  void* data = aligned_alloc(HUGE_ALIGN, bytes);
  if (data) madvise(data, bytes, MADV_HUGEPAGE); /* advice only: failure changes nothing */
  return data;
}

static int floor_log2(size_t n) { return 63 - __builtin_clzll((unsigned long long)n); }

/* The class of a request and the byte size that class hands out. */
static int size_class(size_t nbytes, size_t* class_bytes) {
  if (nbytes == 0) nbytes = 1;
  if (nbytes <= SMALL_STEP * SMALL_CLASSES) {
    size_t k = (nbytes + SMALL_STEP - 1) / SMALL_STEP;
    *class_bytes = k * SMALL_STEP;
    return (int)k - 1;
  }
  int e = floor_log2(nbytes - 1); /* 2^e < nbytes <= 2^(e+1) */
  size_t quarter = (size_t)1 << (e - 1);
  size_t k = (nbytes - ((size_t)1 << e) + quarter - 1) / quarter; /* 1..4 */
  *class_bytes = ((size_t)1 << e) + k * quarter;
  return SMALL_CLASSES + (e - 12) * 4 + (int)k - 1;
}

static void trim_cache_locked(size_t target) {
  for (int c = NUM_CLASSES - 1; c >= 0 && cache_bytes > target; c--) {
    while (free_lists[c] && cache_bytes > target) {
      cached_block* b = free_lists[c];
      free_lists[c] = b->next;
      size_t bytes;
      if (c < SMALL_CLASSES) bytes = (size_t)(c + 1) * SMALL_STEP;
      else {
        int e = (c - SMALL_CLASSES) / 4 + 12, k = (c - SMALL_CLASSES) % 4 + 1;
        bytes = ((size_t)1 << e) + (size_t)k * ((size_t)1 << (e - 1));
      }
      cache_bytes -= bytes;
      free(b);
    }
  }
}

em_buffer* em_buffer_new(size_t nbytes) {
  size_t bytes;
  int c = size_class(nbytes, &bytes);
  void* data = NULL;
  pthread_mutex_lock(&lock);
  init_limits();
  if (active_bytes + bytes > memory_limit) {
    pthread_mutex_unlock(&lock);
    return em_fail(EM_MEMORY_ERROR,
                   "[alloc] allocating %zu bytes would exceed the memory limit of %zu "
                   "bytes (%zu bytes active)", nbytes, memory_limit, active_bytes);
  }
  if (c < NUM_CLASSES && free_lists[c]) {
    data = free_lists[c];
    free_lists[c] = free_lists[c]->next;
    cache_bytes -= bytes;
  }
  pthread_mutex_unlock(&lock);
  if (!data) {
    data = os_alloc(bytes);
    if (!data) {
      pthread_mutex_lock(&lock);
      trim_cache_locked(0);
      pthread_mutex_unlock(&lock);
      data = os_alloc(bytes);
      if (!data)
        return em_fail(EM_MEMORY_ERROR, "[alloc] out of memory allocating %zu bytes", nbytes);
    }
  }
  em_buffer* b = malloc(sizeof *b);
  if (!b) {
    free(data);
    return em_fail(EM_MEMORY_ERROR, "[alloc] out of memory");
  }
  b->data = data;
  b->nbytes = nbytes;
  atomic_init(&b->refcount, 1);
  pthread_mutex_lock(&lock);
  active_bytes += bytes;
  if (active_bytes > peak_bytes) peak_bytes = active_bytes;
  pthread_mutex_unlock(&lock);
  return b;
}

void em_buffer_retain(em_buffer* b) { atomic_fetch_add_explicit(&b->refcount, 1, memory_order_relaxed); }

void em_buffer_release(em_buffer* b) {
  if (atomic_fetch_sub_explicit(&b->refcount, 1, memory_order_acq_rel) != 1) return;
  size_t bytes;
  int c = size_class(b->nbytes, &bytes);
  pthread_mutex_lock(&lock);
  init_limits();
  active_bytes -= bytes;
  if (c < NUM_CLASSES && bytes <= cache_limit) {
    cached_block* blk = b->data;
    blk->next = free_lists[c];
    free_lists[c] = blk;
    cache_bytes += bytes;
    if (cache_bytes > cache_limit) trim_cache_locked(cache_limit);
  } else {
    free(b->data);
  }
  pthread_mutex_unlock(&lock);
  free(b);
}

size_t em_get_active_memory(void) { return active_bytes; }
size_t em_get_peak_memory(void) { return peak_bytes; }
size_t em_get_cache_memory(void) { return cache_bytes; }

void em_reset_peak_memory(void) {
  pthread_mutex_lock(&lock);
  peak_bytes = active_bytes;
  pthread_mutex_unlock(&lock);
}

size_t em_set_memory_limit(size_t limit) {
  pthread_mutex_lock(&lock);
  init_limits();
  size_t previous = memory_limit;
  memory_limit = limit;
  pthread_mutex_unlock(&lock);
  return previous;
}

size_t em_set_cache_limit(size_t limit) {
  pthread_mutex_lock(&lock);
  init_limits();
  size_t previous = cache_limit;
  cache_limit = limit;
  trim_cache_locked(cache_limit);
  pthread_mutex_unlock(&lock);
  return previous;
}

void em_clear_cache(void) {
  pthread_mutex_lock(&lock);
  trim_cache_locked(0);
  pthread_mutex_unlock(&lock);
}
