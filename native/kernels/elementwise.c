/* elementwise.c: chunked, threaded, strided execution of elementwise ops. */
#include <string.h>

#include "elementwise.h"

typedef struct {
  em_iter it;
  int nin;
  int in_dtype[3];
  int in_cls[3];
  const char* in_base[3];
  char* out_base;
  int out_dtype;
  int out_cls;
  int64_t inner;
  int64_t chunks_per_run;
  em_ew_fn fn;
} ew_job;

static void ew_range(void* ctx, int64_t lo, int64_t hi) {
  ew_job* job = ctx;
  _Alignas(64) char in_buf[3][EM_CHUNK * 8];
  _Alignas(64) char out_buf[EM_CHUNK * 8];
  int64_t offsets[4];
  /* A broadcast (stride 0) operand fills its chunk once per source element,
   * not once per chunk. */
  const char* filled_from[3] = {NULL, NULL, NULL};
  int last = job->it.ndim - 1;
  for (int64_t item = lo; item < hi; item++) {
    int64_t run = item / job->chunks_per_run, chunk = item % job->chunks_per_run;
    em_iter_offsets(&job->it, run, offsets);
    int64_t start = chunk * EM_CHUNK;
    int64_t n = job->inner - start < EM_CHUNK ? job->inner - start : EM_CHUNK;
    const void* ins[3];
    for (int k = 0; k < job->nin; k++) {
      int64_t stride = job->it.strides[k + 1][last];
      int dt = job->in_dtype[k];
      const char* src = job->in_base[k] + (offsets[k + 1] + start * stride) * em_dtype_size(dt);
      if (stride == 1 && dt == em_class_dtype(job->in_cls[k])) {
        ins[k] = src;
      } else if (stride == 0) {
        if (filled_from[k] != src) {
          em_load_broadcast(in_buf[k], job->in_cls[k], src, dt, job->inner);
          filled_from[k] = src;
        }
        ins[k] = in_buf[k];
      } else {
        em_load(in_buf[k], job->in_cls[k], src, dt, stride, n);
        ins[k] = in_buf[k];
      }
    }
    int64_t ostride = job->it.strides[0][last];
    char* dst = job->out_base + (offsets[0] + start * ostride) * em_dtype_size(job->out_dtype);
    if (ostride == 1 && job->out_dtype == em_class_dtype(job->out_cls)) {
      job->fn(n, ins, dst);
    } else {
      job->fn(n, ins, out_buf);
      em_store(dst, job->out_dtype, ostride, out_buf, job->out_cls, n);
    }
  }
}

void em_elementwise(em_array* out, int nin, em_array** in, const int* in_classes,
                    int out_cls, em_ew_fn fn) {
  if (out->size == 0) return;
  ew_job job;
  int64_t bstrides[3][EM_MAX_NDIM];
  const int64_t* strides[4];
  strides[0] = out->strides;
  for (int k = 0; k < nin; k++) {
    em_broadcast_strides(in[k], out->ndim, out->shape, bstrides[k]);
    strides[k + 1] = bstrides[k];
    job.in_dtype[k] = in[k]->dtype;
    job.in_cls[k] = in_classes[k];
    job.in_base[k] = (const char*)in[k]->buf->data + 0;
  }
  em_iter_init(&job.it, out->ndim, out->shape, nin + 1, strides);
  /* Offsets are relative to each operand's own start. */
  for (int k = 0; k < nin; k++)
    job.in_base[k] = (const char*)in[k]->buf->data + in[k]->offset * em_dtype_size(in[k]->dtype);
  job.nin = nin;
  job.out_base = (char*)out->buf->data + out->offset * em_dtype_size(out->dtype);
  job.out_dtype = out->dtype;
  job.out_cls = out_cls;
  job.fn = fn;
  job.inner = job.it.shape[job.it.ndim - 1];
  job.chunks_per_run = (job.inner + EM_CHUNK - 1) / EM_CHUNK;
  int64_t items = em_iter_outer(&job.it) * job.chunks_per_run;
  /* About 32K elements per thread before splitting pays off. */
  int64_t per_item = job.inner < EM_CHUNK ? job.inner : EM_CHUNK;
  int64_t grain = (32768 + per_item - 1) / per_item;
  em_parallel_for_balanced(items, grain, ew_range, &job);
}
