/* array.c: node lifetime, layout helpers, inspection and data sources. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

em_array* em_node_new(int prim, int dtype, int ndim, const int64_t* shape,
                      int nin, em_array** inputs, int nip, const int64_t* ip,
                      int nfp, const double* fp, int stream) {
  if (ndim > EM_MAX_NDIM)
    return em_fail(EM_VALUE_ERROR, "[%s] arrays have at most %d dimensions, got %d",
                   prim >= 0 ? em_prim_name(prim) : "array", EM_MAX_NDIM, ndim);
  /* One allocation holds the node, its shape, strides, inputs and params. */
  size_t bytes = sizeof(em_array) + sizeof(int64_t) * (2 * (size_t)ndim + (size_t)nip) +
                 sizeof(double) * (size_t)nfp + sizeof(em_array*) * (size_t)nin;
  em_array* a = malloc(bytes);
  if (!a) return em_fail(EM_MEMORY_ERROR, "[array] out of memory creating a node");
  atomic_init(&a->refcount, 1);
  a->dtype = dtype;
  a->ndim = ndim;
  a->stream = stream;
  a->prim = prim;
  a->evaluated = prim < 0;
  a->offset = 0;
  a->buf = NULL;
  a->mark = 0;
  int64_t* tail = (int64_t*)(a + 1);
  a->shape = tail;
  a->strides = tail + ndim;
  a->ip = tail + 2 * ndim;
  a->fp = (double*)(a->ip + nip);
  a->inputs = (em_array**)(a->fp + nfp);
  int64_t size = 1;
  for (int i = 0; i < ndim; i++) {
    a->shape[i] = shape[i];
    size *= shape[i];
  }
  a->size = size;
  a->nip = nip;
  if (nip) memcpy(a->ip, ip, sizeof(int64_t) * (size_t)nip);
  a->nfp = nfp;
  if (nfp) memcpy(a->fp, fp, sizeof(double) * (size_t)nfp);
  a->ninputs = nin;
  for (int i = 0; i < nin; i++) {
    a->inputs[i] = inputs[i];
    em_retain(inputs[i]);
  }
  em_set_row_strides(a);
  return a;
}

void em_retain(em_array* a) { atomic_fetch_add_explicit(&a->refcount, 1, memory_order_relaxed); }
int em_refcount(em_array* a) { return atomic_load(&a->refcount); }

/* Releasing may free a long chain of pending nodes; walk it with an explicit
 * stack so a 1,000,000-node chain does not overflow the C stack. */
void em_release(em_array* a) {
  if (atomic_fetch_sub_explicit(&a->refcount, 1, memory_order_acq_rel) != 1) return;
  em_array* local[64];
  em_array** stack = local;
  size_t cap = 64, top = 0;
  stack[top++] = a;
  while (top) {
    em_array* x = stack[--top];
    for (int i = 0; i < x->ninputs; i++) {
      em_array* in = x->inputs[i];
      if (atomic_fetch_sub_explicit(&in->refcount, 1, memory_order_acq_rel) != 1) continue;
      if (top == cap) {
        size_t ncap = cap * 2;
        em_array** grown = malloc(sizeof *grown * ncap);
        if (!grown) abort(); /* cannot free safely without memory */
        memcpy(grown, stack, sizeof *stack * top);
        if (stack != local) free(stack);
        stack = grown;
        cap = ncap;
      }
      stack[top++] = in;
    }
    if (x->buf) em_buffer_release(x->buf);
    free(x);
  }
  if (stack != local) free(stack);
}

void em_set_row_strides(em_array* a) {
  int64_t s = 1;
  for (int i = a->ndim - 1; i >= 0; i--) {
    a->strides[i] = s;
    s *= a->shape[i] > 1 ? a->shape[i] : 1;
  }
}

int em_row_contiguous(int ndim, const int64_t* shape, const int64_t* strides) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    if (shape[i] == 1) continue;
    if (shape[i] == 0) return 1;
    if (strides[i] != s) return 0;
    s *= shape[i];
  }
  return 1;
}

int em_alloc_output(em_array* out) {
  em_buffer* b = em_buffer_new((size_t)out->size * (size_t)em_dtype_size(out->dtype));
  if (!b) return EM_MEMORY_ERROR;
  out->buf = b;
  out->offset = 0;
  em_set_row_strides(out);
  return EM_OK;
}

/* An input is dead when nothing but `out` holds it (the node's refcount is the
 * number of times out lists it) and nothing else holds its buffer. */
int em_alloc_output_donated(em_array* out) { return em_alloc_output_donated_by(out, out->ninputs); }

int em_alloc_output_donated_by(em_array* out, int n_donors) {
  /* A kept graph may still read every input (transform rules use primal values). */
  if (em_keeping_graph()) return em_alloc_output(out);
  size_t need = (size_t)out->size * (size_t)em_dtype_size(out->dtype);
  for (int i = 0; i < n_donors && i < out->ninputs; i++) {
    em_array* in = out->inputs[i];
    if (!in->buf || in->offset != 0 || in->buf->nbytes != need) continue;
    if (em_dtype_size(in->dtype) != em_dtype_size(out->dtype)) continue;
    if (!em_row_contiguous(in->ndim, in->shape, in->strides) || in->size != out->size) continue;
    int uses = 0, read_later = 0;
    for (int j = 0; j < out->ninputs; j++) {
      uses += out->inputs[j] == in;
      read_later |= j >= n_donors && out->inputs[j] == in;
    }
    if (read_later) continue;
    if (atomic_load(&in->refcount) != uses || atomic_load(&in->buf->refcount) != 1) continue;
    em_buffer_retain(in->buf);
    out->buf = in->buf;
    out->offset = 0;
    em_set_row_strides(out);
    return EM_OK;
  }
  return em_alloc_output(out);
}

/* Whether buffer b is held only by inputs of `out` that nothing else holds,
 * each one whole row (row-contiguous, `per_row` elements of out's item size,
 * starting at a multiple of per_row). */
static int held_by_dead_rows(em_array* out, em_buffer* b, int64_t per_row) {
  int holders = 0;
  for (int i = 0; i < out->ninputs; i++) {
    em_array* in = out->inputs[i];
    if (in->buf != b) continue;
    int first = 1, uses = 0;
    for (int j = 0; j < out->ninputs; j++) {
      first &= !(j < i && out->inputs[j] == in);
      uses += out->inputs[j] == in;
    }
    if (!first) continue; /* counted at its first listing */
    if (em_dtype_size(in->dtype) != em_dtype_size(out->dtype) || in->size != per_row ||
        in->offset % per_row != 0 || !em_row_contiguous(in->ndim, in->shape, in->strides))
      return 0;
    if (atomic_load(&in->refcount) != uses) return 0;
    holders++;
  }
  return holders > 0 && atomic_load(&b->refcount) == holders;
}

int em_alloc_output_stacked_donated(em_array* out, int64_t rows, int* stacked) {
  *stacked = 0;
  if (em_keeping_graph() || rows < 2 || out->size % rows != 0) return em_alloc_output(out);
  size_t need = (size_t)out->size * (size_t)em_dtype_size(out->dtype);
  int64_t per_row = out->size / rows;
  for (int i = 0; i < out->ninputs; i++) {
    em_buffer* b = out->inputs[i]->buf;
    if (!b || b->nbytes != need || !held_by_dead_rows(out, b, per_row)) continue;
    em_buffer_retain(b);
    out->buf = b;
    out->offset = 0;
    em_set_row_strides(out);
    *stacked = 1;
    return EM_OK;
  }
  return em_alloc_output_donated(out);
}

em_array* em_row_major_as(em_array* x, int dtype) {
  if (x->dtype == dtype && em_row_contiguous(x->ndim, x->shape, x->strides)) {
    em_retain(x);
    return x;
  }
  em_array* t = em_node_new(-1, dtype, x->ndim, x->shape, 0, NULL, 0, NULL, 0, NULL, 0);
  if (t && em_alloc_output(t) != EM_OK) {
    em_release(t);
    return NULL;
  }
  if (t) em_copy_into(t, 0, t->strides, x);
  return t;
}

void em_set_view(em_array* out, em_array* src, const int64_t* strides, int64_t offset) {
  em_buffer_retain(src->buf);
  out->buf = src->buf;
  out->offset = offset;
  for (int i = 0; i < out->ndim; i++) out->strides[i] = strides[i];
}

/* ---- inspection ---- */
int em_ndim(em_array* a) { return a->ndim; }
const int64_t* em_shape(em_array* a) { return a->shape; }
const int64_t* em_strides(em_array* a) { return a->strides; }
int64_t em_size(em_array* a) { return a->size; }
int em_dtype(em_array* a) { return a->dtype; }
int em_stream(em_array* a) { return a->stream; }
int em_is_row_contiguous(em_array* a) { return em_row_contiguous(a->ndim, a->shape, a->strides); }
int em_prim_of(em_array* a) { return a->prim; }
int em_num_inputs(em_array* a) { return a->ninputs; }
em_array* em_input(em_array* a, int i) { return a->inputs[i]; }
int em_num_iparams(em_array* a) { return a->nip; }
const int64_t* em_iparams(em_array* a) { return a->ip; }
int em_num_fparams(em_array* a) { return a->nfp; }
const double* em_fparams(em_array* a) { return a->fp; }

void* em_data(em_array* a) {
  if (!a->buf) return NULL;
  return (char*)a->buf->data + a->offset * em_dtype_size(a->dtype);
}

/* ---- sources ---- */
static em_array* new_evaluated(int dtype, int ndim, const int64_t* shape, int stream) {
  em_array* a = em_node_new(-1, dtype, ndim, shape, 0, NULL, 0, NULL, 0, NULL, stream);
  if (!a) return NULL;
  if (em_alloc_output(a) != EM_OK) {
    em_release(a);
    return NULL;
  }
  return a;
}

/* An evaluated source array of dtype and shape whose buffer is not yet written. */
static em_array* new_source(int dtype, int ndim, const int64_t* shape) {
  if (dtype < 0 || dtype >= EM_NUM_DTYPES)
    return em_fail(EM_TYPE_ERROR, "[array] unknown dtype %d", dtype);
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0) return em_fail(EM_VALUE_ERROR, "[array] negative dimension %lld", (long long)shape[i]);
  return new_evaluated(dtype, ndim, shape, 0);
}

em_array* em_uninitialized(int dtype, int ndim, const int64_t* shape) {
  return new_source(dtype, ndim, shape);
}

em_array* em_from_data(const void* data, int dtype, int ndim, const int64_t* shape,
                       const int64_t* byte_strides) {
  em_array* a = new_source(dtype, ndim, shape);
  if (!a || a->size == 0) return a;
  size_t item = (size_t)em_dtype_size(dtype);
  if (!byte_strides) {
    memcpy(a->buf->data, data, item * (size_t)a->size);
    return a;
  }
  /* Strided source: walk it with an index counter, innermost axis fastest. */
  int64_t idx[EM_MAX_NDIM] = {0};
  const char* src = data;
  char* dst = a->buf->data;
  for (int64_t n = 0; n < a->size; n++) {
    memcpy(dst, src, item);
    dst += item;
    for (int d = ndim - 1; d >= 0; d--) {
      src += byte_strides[d];
      if (++idx[d] < shape[d]) break;
      src -= byte_strides[d] * shape[d];
      idx[d] = 0;
    }
  }
  return a;
}

static void store_f64(void* p, int dtype, double v) {
  switch (dtype) {
    case EM_BOOL: *(uint8_t*)p = v != 0; break;
    case EM_UINT8: *(uint8_t*)p = (uint8_t)(int64_t)v; break;
    case EM_UINT16: *(uint16_t*)p = (uint16_t)(int64_t)v; break;
    case EM_UINT32: *(uint32_t*)p = (uint32_t)(int64_t)v; break;
    case EM_UINT64: *(uint64_t*)p = v < 0 ? (uint64_t)(int64_t)v : (uint64_t)v; break;
    case EM_INT8: *(int8_t*)p = (int8_t)(int64_t)v; break;
    case EM_INT16: *(int16_t*)p = (int16_t)(int64_t)v; break;
    case EM_INT32: *(int32_t*)p = (int32_t)(int64_t)v; break;
    case EM_INT64: *(int64_t*)p = (int64_t)v; break;
    case EM_FLOAT16: *(uint16_t*)p = em_f32_to_f16((float)v); break;
    case EM_FLOAT32: *(float*)p = (float)v; break;
    case EM_FLOAT64: *(double*)p = v; break;
    case EM_BFLOAT16: *(uint16_t*)p = em_f32_to_bf16((float)v); break;
    case EM_COMPLEX64: ((float*)p)[0] = (float)v; ((float*)p)[1] = 0; break;
  }
}

static void store_u64(void* p, int dtype, uint64_t v) {
  switch (dtype) {
    case EM_BOOL: *(uint8_t*)p = v != 0; break;
    case EM_UINT8: case EM_INT8: *(uint8_t*)p = (uint8_t)v; break;
    case EM_UINT16: case EM_INT16: *(uint16_t*)p = (uint16_t)v; break;
    case EM_UINT32: case EM_INT32: *(uint32_t*)p = (uint32_t)v; break;
    case EM_UINT64: case EM_INT64: *(uint64_t*)p = v; break;
    default: store_f64(p, dtype, (double)v); break;
  }
}

em_array* em_scalar_f64(double v, int dtype) {
  em_array* a = new_evaluated(dtype, 0, NULL, 0);
  if (a) store_f64(a->buf->data, dtype, v);
  return a;
}

em_array* em_scalar_i64(int64_t v, int dtype) {
  em_array* a = new_evaluated(dtype, 0, NULL, 0);
  if (!a) return NULL;
  if (em_is_integer(dtype) || dtype == EM_BOOL) store_u64(a->buf->data, dtype, (uint64_t)v);
  else store_f64(a->buf->data, dtype, (double)v);
  return a;
}

em_array* em_scalar_u64(uint64_t v, int dtype) {
  em_array* a = new_evaluated(dtype, 0, NULL, 0);
  if (a) store_u64(a->buf->data, dtype, v);
  return a;
}

em_array* em_scalar_c64(double re, double im) {
  em_array* a = new_evaluated(EM_COMPLEX64, 0, NULL, 0);
  if (!a) return NULL;
  ((float*)a->buf->data)[0] = (float)re;
  ((float*)a->buf->data)[1] = (float)im;
  return a;
}
