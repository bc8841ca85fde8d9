/* lines.h: the 1-D lines of an array along one axis.
 *
 * Kernels that work on whole lines (sort, fft) read each line of the input
 * and write the matching line of the output. The two arrays agree on every
 * axis but `axis` (whose length may differ); line r is the r-th combination
 * of the other axes in row-major order.
 */
#ifndef EMBER_LINES_H
#define EMBER_LINES_H

#include "../internal.h"

typedef struct {
  int ndim;                          /* the other axes, size-1 axes dropped */
  int64_t shape[EM_MAX_NDIM];
  int64_t in_strides[EM_MAX_NDIM];
  int64_t out_strides[EM_MAX_NDIM];
  int64_t in_offset, out_offset;
  int64_t count;                     /* number of lines */
} em_lines;

static inline void em_lines_init(em_lines* l, const em_array* in, const em_array* out, int axis) {
  l->ndim = 0;
  l->count = 1;
  l->in_offset = in->offset;
  l->out_offset = out->offset;
  for (int d = 0; d < out->ndim; d++) {
    if (d == axis || out->shape[d] == 1) continue;
    l->shape[l->ndim] = out->shape[d];
    l->in_strides[l->ndim] = in->strides[d];
    l->out_strides[l->ndim] = out->strides[d];
    l->count *= out->shape[d];
    l->ndim++;
  }
}

/* Element offsets of line r's first element in the input and the output. */
static inline void em_line_offsets(const em_lines* l, int64_t r, int64_t* in_off, int64_t* out_off) {
  int64_t i = l->in_offset, o = l->out_offset;
  for (int d = l->ndim - 1; d >= 0 && r > 0; d--) {
    int64_t c = r % l->shape[d];
    r /= l->shape[d];
    i += c * l->in_strides[d];
    o += c * l->out_strides[d];
  }
  *in_off = i;
  *out_off = o;
}

#endif
