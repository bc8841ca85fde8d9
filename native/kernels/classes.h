/* classes.h: compute classes for elementwise kernels.
 *
 * Elementwise kernels are written once per compute class, not once per dtype:
 * operands are loaded in chunks and converted to the class of their dtype
 * (every integer type computes as int64 or uint64, half types as float32),
 * the operation runs over the contiguous chunk, and the result is converted
 * on store. Chunks of the class's own dtype that are contiguous skip the
 * conversion and are used in place.
 */
#ifndef EMBER_CLASSES_H
#define EMBER_CLASSES_H

#include <complex.h>

#include "../internal.h"

enum em_class { CL_BOOL, CL_I64, CL_U64, CL_F32, CL_F64, CL_C64, CL_COUNT };

typedef float _Complex c64;

/* Elements per chunk: small enough that the chunk buffers stay in L1. */
#define EM_CHUNK 1024

int em_class_of(int dtype);
int em_class_size(int cls);
/* The dtype whose storage equals the class's compute type. */
int em_class_dtype(int cls);
/* Converts n elements of dtype at src (stride in elements) into class cls at dst. */
void em_load(void* dst, int cls, const void* src, int dtype, int64_t stride, int64_t n);
/* Fills a chunk buffer with one broadcast element (an operand of stride 0):
 * as many copies as the longest chunk of a job whose inner runs have `inner`
 * elements, not always EM_CHUNK (a small array's broadcast scalars would cost
 * more than its ops). */
static inline void em_load_broadcast(void* dst, int cls, const void* src, int dtype,
                                     int64_t inner) {
  em_load(dst, cls, src, dtype, 0, inner < EM_CHUNK ? inner : EM_CHUNK);
}
/* Converts n elements of class cls at src into dtype at dst (stride in elements). */
void em_store(void* dst, int dtype, int64_t stride, const void* src, int cls, int64_t n);

/* Collapsed strided iteration over operands of one shape (fused kernels use
 * up to EM_ITER_MAX_OPS; the others four or fewer). */
#define EM_ITER_MAX_OPS 17
typedef struct {
  int ndim;
  int nops;
  int64_t shape[EM_MAX_NDIM];
  int64_t strides[EM_ITER_MAX_OPS][EM_MAX_NDIM];
} em_iter;

/* Drops size-1 axes and merges axes that are contiguous for every operand. */
void em_iter_init(em_iter* it, int ndim, const int64_t* shape, int nops,
                  const int64_t* const* strides);
/* Number of inner runs (product of all but the last axis). */
int64_t em_iter_outer(const em_iter* it);
/* Element offsets of each operand at the start of inner run `r`. */
void em_iter_offsets(const em_iter* it, int64_t r, int64_t* offsets);

/* Strides of `a` broadcast to out's shape (0 on broadcast axes). */
void em_broadcast_strides(const em_array* a, int ndim, const int64_t* shape, int64_t* strides);

#endif
