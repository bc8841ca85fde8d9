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

/* Each loop written as one expression per element (UNARY, BINARY and SELECT
 * in unary.c and binary.c) also leaves a record of that expression, as text,
 * in the section em_ew_exprs: compile()'s kernel generator pastes the same
 * expressions into one loop per fused chain (em_ew_expr_of, fused.c). The
 * expression names its operands x (and y), or c, x and y for where. */
typedef struct {
  em_ew_fn fn;
  const char* in_type;
  const char* out_type;
  const char* expr;
} em_ew_expr;
/* The loop's address is stored by a constructor, from code: the loops are
 * target_clones (ifuncs), whose address in static data resolves to another
 * value than the one code such as em_unary_loop returns. */
#define EM_EW_EXPR(NAME, IT, OT, EXPR)                                        \
  static em_ew_expr NAME##_record __attribute__((used, section("em_ew_exprs"))) = \
      {NULL, IT, OT, EXPR};                                                    \
  __attribute__((constructor)) static void NAME##_record_init(void) { NAME##_record.fn = NAME; }

#endif
