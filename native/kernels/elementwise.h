/* elementwise.h: the driver shared by unary, binary and ternary kernels. */
#ifndef EMBER_ELEMENTWISE_H
#define EMBER_ELEMENTWISE_H

#include "classes.h"

/* The loops are compiled for AVX-512, for AVX2 with FMA (x86-64-v3) and for
 * the baseline, and picked at load time: fused chains are compute-bound on
 * chunks in cache, where wider vectors pay, and the fmaf calls of vmath.h
 * are single instructions in the first two (a libm call in the baseline). */
#define EM_CLONES __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))

/* Computes n outputs from n elements of each contiguous input chunk. */
typedef void (*em_ew_fn)(int64_t n, const void* const* in, void* out);

/* Runs fn over out (already allocated) and its inputs broadcast to out's
 * shape. Inputs are loaded as class in_cls (or per-input classes when
 * in_classes is non-NULL), results are produced as class out_cls. */
void em_elementwise(em_array* out, int nin, em_array** in, const int* in_classes,
                    int out_cls, em_ew_fn fn);

/* The loops of the unary and binary primitives and of where, by compute
 * class (NULL where undefined); out_cls receives the class they write.
 * Fused kernels run them over chunks of their intermediate values. */
em_ew_fn em_unary_loop(int prim, int cls, int* out_cls);
em_ew_fn em_binary_loop(int prim, int cls, int* out_cls);
em_ew_fn em_where_loop(int cls);

#endif
