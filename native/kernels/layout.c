/* layout.c: kernels that only move data: views, copies, concatenation,
 * slice updates and arange. A view kernel shares the input's buffer and sets
 * strides; it copies only when the input's layout cannot express the result. */
#include <string.h>

#include "elementwise.h"

static void copy_1(int64_t n, const void* const* in, void* out) { memcpy(out, in[0], (size_t)n); }
static void copy_4(int64_t n, const void* const* in, void* out) { memcpy(out, in[0], (size_t)n * 4); }
static void copy_8(int64_t n, const void* const* in, void* out) { memcpy(out, in[0], (size_t)n * 8); }

static em_ew_fn copy_fn(int cls) {
  int size = em_class_size(cls);
  return size == 1 ? copy_1 : (size == 4 ? copy_4 : copy_8);
}

/* Class used to move values from src's dtype into dst's dtype. */
static int transfer_class(int src_dtype, int dst_dtype) {
  if (dst_dtype == EM_BOOL) return CL_BOOL;
  /* Same-size integer moves keep every bit. */
  if (src_dtype == dst_dtype) return em_class_of(dst_dtype);
  if (em_is_unsigned(src_dtype) && !em_is_inexact(dst_dtype)) return CL_U64;
  return em_class_of(dst_dtype);
}

void em_copy_into(em_array* dst, int64_t dst_offset, const int64_t* dst_strides, em_array* src) {
  em_array view = *dst;
  view.offset = dst_offset;
  view.strides = (int64_t*)dst_strides;
  view.ndim = dst->ndim;
  int cls = transfer_class(src->dtype, dst->dtype);
  em_elementwise(&view, 1, &src, &cls, cls, copy_fn(cls));
}

int em_kernel_copy(em_array* out) {
  em_array* in = out->inputs[0];
  int status = em_alloc_output_donated(out);
  if (status != EM_OK) return status;
  /* Donated: the bytes are already there, unless they need converting (astype
   * between same-size dtypes converts in place, element by element). */
  if (out->buf == in->buf && in->dtype == out->dtype) return EM_OK;
  em_copy_into(out, out->offset, out->strides, in);
  return EM_OK;
}

int em_kernel_reshape(em_array* out) {
  em_array* in = out->inputs[0];
  if (em_row_contiguous(in->ndim, in->shape, in->strides)) {
    int64_t strides[EM_MAX_NDIM];
    int64_t s = 1;
    for (int i = out->ndim - 1; i >= 0; i--) {
      strides[i] = s;
      s *= out->shape[i] > 1 ? out->shape[i] : 1;
    }
    em_set_view(out, in, strides, in->offset);
    return EM_OK;
  }
  int status = em_alloc_output(out);
  if (status != EM_OK) return status;
  /* Copy in row-major order: view the output with the input's shape. */
  em_array view = *out;
  int64_t strides[EM_MAX_NDIM];
  int64_t s = 1;
  for (int i = in->ndim - 1; i >= 0; i--) {
    strides[i] = s;
    s *= in->shape[i] > 1 ? in->shape[i] : 1;
  }
  view.ndim = in->ndim;
  view.shape = in->shape;
  em_copy_into(&view, 0, strides, in);
  return EM_OK;
}

int em_kernel_transpose(em_array* out) {
  em_array* in = out->inputs[0];
  int64_t strides[EM_MAX_NDIM];
  for (int i = 0; i < out->ndim; i++) strides[i] = in->strides[out->ip[i]];
  em_set_view(out, in, strides, in->offset);
  return EM_OK;
}

int em_kernel_broadcast(em_array* out) {
  em_array* in = out->inputs[0];
  int64_t strides[EM_MAX_NDIM];
  em_broadcast_strides(in, out->ndim, out->shape, strides);
  em_set_view(out, in, strides, in->offset);
  return EM_OK;
}

/* ip: start, stop, step per axis (already clamped by the shape rule). */
int em_kernel_slice(em_array* out) {
  em_array* in = out->inputs[0];
  int64_t strides[EM_MAX_NDIM];
  int64_t offset = in->offset;
  for (int i = 0; i < out->ndim; i++) {
    if (out->shape[i] > 0) offset += out->ip[3 * i] * in->strides[i];
    strides[i] = in->strides[i] * out->ip[3 * i + 2];
  }
  em_set_view(out, in, strides, out->size ? offset : in->offset);
  return EM_OK;
}

/* ip: ndim, shape..., strides..., offset; strides index the input's
 * row-major elements, so a non-contiguous input is copied first. */
int em_kernel_as_strided(em_array* out) {
  em_array* in = out->inputs[0];
  const int64_t* strides = out->ip + 1 + out->ndim;
  int64_t offset = out->ip[1 + 2 * out->ndim];
  if (em_row_contiguous(in->ndim, in->shape, in->strides)) {
    em_set_view(out, in, strides, in->offset + offset);
    return EM_OK;
  }
  em_array* tmp = em_node_new(-1, in->dtype, in->ndim, in->shape, 0, NULL, 0, NULL, 0, NULL, 0);
  if (!tmp) return EM_MEMORY_ERROR;
  int status = em_alloc_output(tmp);
  if (status != EM_OK) {
    em_release(tmp);
    return status;
  }
  em_copy_into(tmp, 0, tmp->strides, in);
  em_set_view(out, tmp, strides, offset);
  em_release(tmp);
  return EM_OK;
}

/* ip: axis. */
int em_kernel_concatenate(em_array* out) {
  int status = em_alloc_output(out);
  if (status != EM_OK) return status;
  int axis = (int)out->ip[0];
  int64_t start = 0;
  for (int k = 0; k < out->ninputs; k++) {
    em_array* in = out->inputs[k];
    if (in->size > 0) {
      em_array view = *out;
      view.shape = in->shape;
      em_copy_into(&view, start * out->strides[axis], out->strides, in);
    }
    start += in->shape[axis];
  }
  return EM_OK;
}

/* inputs: a, update; ip: start, stop, step per axis. */
int em_kernel_slice_update(em_array* out) {
  em_array* a = out->inputs[0];
  em_array* update = out->inputs[1];
  /* Only a's buffer may become the output: copying a into the update's own
   * buffer would overwrite the update before it is read. */
  int status = em_alloc_output_donated_by(out, 1);
  if (status != EM_OK) return status;
  if (out->buf != a->buf) em_copy_into(out, 0, out->strides, a);
  int64_t shape[EM_MAX_NDIM], strides[EM_MAX_NDIM], offset = 0;
  int64_t size = 1;
  for (int i = 0; i < out->ndim; i++) {
    int64_t start = out->ip[3 * i], stop = out->ip[3 * i + 1], step = out->ip[3 * i + 2];
    int64_t len = step > 0 ? (stop - start + step - 1) / step : (start - stop - step - 1) / -step;
    shape[i] = len > 0 ? len : 0;
    size *= shape[i];
    offset += start * out->strides[i];
    strides[i] = out->strides[i] * step;
  }
  if (size == 0) return EM_OK;
  em_array view = *out;
  view.shape = shape;
  view.size = size;
  em_copy_into(&view, offset, strides, update);
  return EM_OK;
}

/* ip: dtype, n; fp: start, step. Values are start + i * step in float64,
 * then converted, so integer and float ranges both come out exact. */
typedef struct {
  double start, step;
  void* data;
  int dtype;
} arange_job;

static void arange_range(void* ctx, int64_t lo, int64_t hi) {
  arange_job* job = ctx;
  double buf[EM_CHUNK];
  int size = em_dtype_size(job->dtype);
  for (int64_t i = lo; i < hi; i += EM_CHUNK) {
    int64_t n = hi - i < EM_CHUNK ? hi - i : EM_CHUNK;
    for (int64_t k = 0; k < n; k++) buf[k] = job->start + (double)(i + k) * job->step;
    em_store((char*)job->data + i * size, job->dtype, 1, buf, CL_F64, n);
  }
}

int em_kernel_arange(em_array* out) {
  int status = em_alloc_output(out);
  if (status != EM_OK) return status;
  arange_job job = {out->fp[0], out->fp[1], out->buf->data, out->dtype};
  em_parallel_for(out->size, 65536, arange_range, &job);
  return EM_OK;
}
