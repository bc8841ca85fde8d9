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
/* Sorts a[0, n) ascending; 0 if the fallback ran out of memory. */
int em_vsort32(uint32_t* a, int64_t n, int depth, em_vsort_fallback fallback, void* ctx);
/* Partitions a[0, n) (n >= 128) around pivot: keys < pivot (<= with or_equal)
 * first; returns their count. */
int64_t em_vsort_partition(uint32_t* a, int64_t n, uint32_t pivot, int or_equal);
#endif
