/* sort_avx512.h: the AVX-512 quicksort of 32-bit keys (sort_avx512.c). */
#ifndef EMBER_SORT_AVX512_H
#define EMBER_SORT_AVX512_H
#include <stdint.h>

/* Sorts a[0, n) some other way when the quicksort recurses too deep; 0 when
 * out of memory. */
typedef int (*em_vsort_fallback)(void* ctx, uint32_t* a, int64_t n);

/* Nonzero when this CPU runs the AVX-512 functions below. */
int em_vsort_available(void);
/* The depth limit for a range of n keys. */
int em_vsort_depth(int64_t n);
/* How em_vsort32 turns each sorted key back into its value as it stores it
 * (which saves a pass over the line): a key with its top bit set is xored
 * with top_set, one without with top_clear. float32's keys: 0x80000000 and
 * 0xFFFFFFFF; int32's: 0x80000000 and 0x80000000; {0, 0} leaves keys. */
typedef struct {
  uint32_t top_set, top_clear;
} em_vsort_unkey;
/* Sorts a[0, n) ascending and turns the keys into values; 0 if the fallback
 * ran out of memory. */
int em_vsort32(uint32_t* a, int64_t n, int depth, em_vsort_fallback fallback, void* ctx,
               em_vsort_unkey unkey);
/* Buckets of keys between nsplit ascending splitters (at most
 * EM_VSORT_MAX_BUCKETS - 1): bucket b holds splitters[b - 1] <= key <
 * splitters[b]. em_vsort_count adds the number of a[0, n)'s keys in each
 * bucket to counts[b]; em_vsort_scatter moves each key to out[cursors[b]++]. */
#define EM_VSORT_MAX_BUCKETS 64
void em_vsort_count(const uint32_t* a, int64_t n, const uint32_t* splitters, int nsplit,
                    int64_t* counts);
void em_vsort_scatter(const uint32_t* a, int64_t n, const uint32_t* splitters, int nsplit,
                      uint32_t* out, int64_t* cursors);
/* Moves a[0, n) to out: keys below splitter to out[*low...] upward, the
 * others downward from just below out[*high]; advances the cursors. */
void em_vsort_split(const uint32_t* a, int64_t n, uint32_t splitter, uint32_t* out,
                    int64_t* low, int64_t* high);
#endif
