/* axes.h: the axes of two arrays of one shape, put in the input's memory order.
 *
 * Reductions and scans walk their input and output together. Visiting the
 * axes largest input stride first, with negative strides flipped so offsets
 * only grow, and contiguous runs merged, makes the inner loop a unit-stride
 * walk wherever the input's layout allows one.
 */
#ifndef EMBER_AXES_H
#define EMBER_AXES_H

#include <stdlib.h>

#include "classes.h"

/* Fills `it` over (shape, in_strides, out_strides) in memory order and adds
 * to *in_off / *out_off the element offsets of the flipped origin. */
static inline void em_iter_in_memory_order(em_iter* it, int ndim, const int64_t* shape,
                                           const int64_t* in_strides, const int64_t* out_strides,
                                           int64_t* in_off, int64_t* out_off) {
  int64_t sh[EM_MAX_NDIM], is[EM_MAX_NDIM], os[EM_MAX_NDIM];
  int n = 0;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 1) continue;
    int64_t s = in_strides[d], o = out_strides[d];
    if (s < 0) {
      *in_off += s * (shape[d] - 1);
      *out_off += o * (shape[d] - 1);
      s = -s;
      o = -o;
    }
    /* Insertion sort: stable, and ndim is small. */
    int k = n++;
    while (k > 0 && (is[k - 1] < s || (is[k - 1] == s && llabs(os[k - 1]) < llabs(o)))) {
      sh[k] = sh[k - 1];
      is[k] = is[k - 1];
      os[k] = os[k - 1];
      k--;
    }
    sh[k] = shape[d];
    is[k] = s;
    os[k] = o;
  }
  const int64_t* strides[2] = {is, os};
  em_iter_init(it, n, sh, 2, strides);
}

#endif
