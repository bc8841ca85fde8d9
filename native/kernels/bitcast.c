/* bitcast.c: the bytes of an array read as another dtype (mlx's view).
 *
 * A row-contiguous input whose start is aligned for the new dtype is shared
 * as it is; any other input is first copied into row-major order.
 */
#include <string.h>

#include "../internal.h"

int em_kernel_bitcast(em_array* out) {
  em_array* in = out->inputs[0];
  size_t in_item = (size_t)em_dtype_size(in->dtype), out_item = (size_t)em_dtype_size(out->dtype);
  size_t start = (size_t)in->offset * in_item;
  if (em_row_contiguous(in->ndim, in->shape, in->strides) && start % out_item == 0) {
    em_set_row_strides(out);
    em_set_view(out, in, out->strides, (int64_t)(start / out_item));
    return EM_OK;
  }
  int status = em_alloc_output(out);
  if (status != EM_OK) return status;
  const char* src = (const char*)in->buf->data + start;
  char* dst = out->buf->data;
  int64_t idx[EM_MAX_NDIM] = {0};
  for (int64_t e = 0; e < in->size; e++) {
    int64_t off = 0;
    for (int d = 0; d < in->ndim; d++) off += idx[d] * in->strides[d];
    memcpy(dst + (size_t)e * in_item, src + off * (int64_t)in_item, in_item);
    for (int d = in->ndim - 1; d >= 0; d--) {
      if (++idx[d] < in->shape[d]) break;
      idx[d] = 0;
    }
  }
  return EM_OK;
}
