/* convert.c: class conversion (load/store) and strided iteration. */
#include <math.h>
#include <string.h>

#include "classes.h"

int em_class_of(int dtype) {
  switch (dtype) {
    case EM_BOOL: case EM_INT8: case EM_INT16: case EM_INT32: case EM_INT64: return CL_I64;
    case EM_UINT8: case EM_UINT16: case EM_UINT32: case EM_UINT64: return CL_U64;
    case EM_FLOAT16: case EM_BFLOAT16: case EM_FLOAT32: return CL_F32;
    case EM_FLOAT64: return CL_F64;
    default: return CL_C64;
  }
}

int em_class_size(int cls) {
  static const int sizes[CL_COUNT] = {1, 8, 8, 4, 8, 8};
  return sizes[cls];
}

int em_class_dtype(int cls) {
  static const int dtypes[CL_COUNT] = {EM_BOOL, EM_INT64, EM_UINT64, EM_FLOAT32, EM_FLOAT64,
                                       EM_COMPLEX64};
  return dtypes[cls];
}

/* Type-generic conversion loops: the only way to write one loop per type pair
 * in C is a macro. */
#define CONVERT_LOOP(DST_T, SRC_T, EXPR)                      \
  do {                                                        \
    DST_T* d = dst;                                           \
    const SRC_T* s = src;                                     \
    if (stride == 1)                                          \
      for (int64_t i = 0; i < n; i++) { SRC_T v = s[i]; d[i] = (DST_T)(EXPR); } \
    else                                                      \
      for (int64_t i = 0; i < n; i++) { SRC_T v = s[i * stride]; d[i] = (DST_T)(EXPR); } \
  } while (0)

#define LOAD_AS(DST_T)                                                          \
  switch (dtype) {                                                              \
    case EM_BOOL: case EM_UINT8: CONVERT_LOOP(DST_T, uint8_t, v); break;        \
    case EM_UINT16: CONVERT_LOOP(DST_T, uint16_t, v); break;                    \
    case EM_UINT32: CONVERT_LOOP(DST_T, uint32_t, v); break;                    \
    case EM_UINT64: CONVERT_LOOP(DST_T, uint64_t, v); break;                    \
    case EM_INT8: CONVERT_LOOP(DST_T, int8_t, v); break;                        \
    case EM_INT16: CONVERT_LOOP(DST_T, int16_t, v); break;                      \
    case EM_INT32: CONVERT_LOOP(DST_T, int32_t, v); break;                      \
    case EM_INT64: CONVERT_LOOP(DST_T, int64_t, v); break;                      \
    case EM_FLOAT16: CONVERT_LOOP(DST_T, uint16_t, em_f16_to_f32(v)); break;    \
    case EM_BFLOAT16: CONVERT_LOOP(DST_T, uint16_t, em_bf16_to_f32(v)); break;  \
    case EM_FLOAT32: CONVERT_LOOP(DST_T, float, v); break;                      \
    case EM_FLOAT64: CONVERT_LOOP(DST_T, double, v); break;                     \
    case EM_COMPLEX64: CONVERT_LOOP(DST_T, c64, crealf(v)); break;              \
  }

void em_load(void* dst, int cls, const void* src, int dtype, int64_t stride, int64_t n) {
  switch (cls) {
    case CL_BOOL:
      if (dtype == EM_COMPLEX64) CONVERT_LOOP(uint8_t, c64, v != 0);
      else if (dtype == EM_FLOAT16) CONVERT_LOOP(uint8_t, uint16_t, (v & 0x7fff) != 0);
      else if (dtype == EM_BFLOAT16) CONVERT_LOOP(uint8_t, uint16_t, (v & 0x7fff) != 0);
      else {
        /* Load as float64/int64 first, then test against zero. */
        switch (dtype) {
          case EM_BOOL: case EM_UINT8: case EM_INT8: CONVERT_LOOP(uint8_t, uint8_t, v != 0); break;
          case EM_UINT16: case EM_INT16: CONVERT_LOOP(uint8_t, uint16_t, v != 0); break;
          case EM_UINT32: case EM_INT32: CONVERT_LOOP(uint8_t, uint32_t, v != 0); break;
          case EM_UINT64: case EM_INT64: CONVERT_LOOP(uint8_t, uint64_t, v != 0); break;
          case EM_FLOAT32: CONVERT_LOOP(uint8_t, float, v != 0); break;
          case EM_FLOAT64: CONVERT_LOOP(uint8_t, double, v != 0); break;
        }
      }
      break;
    case CL_I64: LOAD_AS(int64_t); break;
    case CL_U64: LOAD_AS(uint64_t); break;
    case CL_F32: LOAD_AS(float); break;
    case CL_F64: LOAD_AS(double); break;
    case CL_C64:
      if (dtype == EM_COMPLEX64) CONVERT_LOOP(c64, c64, v);
      else {
        float tmp[EM_CHUNK];
        for (int64_t done = 0; done < n; done += EM_CHUNK) {
          int64_t m = n - done < EM_CHUNK ? n - done : EM_CHUNK;
          em_load(tmp, CL_F32, (const char*)src + done * stride * em_dtype_size(dtype), dtype,
                  stride, m);
          c64* d = (c64*)dst + done;
          for (int64_t i = 0; i < m; i++) d[i] = tmp[i];
        }
      }
      break;
  }
}

/* Float to integer conversion saturates NaN to 0 rather than invoking
 * undefined behaviour on out-of-range values where C leaves it open. */
static inline int64_t f2i(double v) {
  if (!(v == v)) return 0;
  if (v >= 9.2233720368547758e18) return INT64_MAX;
  if (v <= -9.2233720368547758e18) return INT64_MIN;
  return (int64_t)v;
}
static inline uint64_t f2u(double v) {
  if (!(v == v) || v <= -1.0) return v <= -1.0 ? (uint64_t)f2i(v) : 0;
  if (v >= 1.8446744073709552e19) return UINT64_MAX;
  return (uint64_t)v;
}

#define STORE_LOOP(DST_T, SRC_T, EXPR)                        \
  do {                                                        \
    DST_T* d = dst;                                           \
    const SRC_T* s = src;                                     \
    if (stride == 1)                                          \
      for (int64_t i = 0; i < n; i++) { SRC_T v = s[i]; d[i] = (DST_T)(EXPR); } \
    else                                                      \
      for (int64_t i = 0; i < n; i++) { SRC_T v = s[i]; d[i * stride] = (DST_T)(EXPR); } \
  } while (0)

#define STORE_FROM_INT(SRC_T)                                                     \
  switch (dtype) {                                                                \
    case EM_BOOL: STORE_LOOP(uint8_t, SRC_T, v != 0); break;                      \
    case EM_UINT8: case EM_INT8: STORE_LOOP(uint8_t, SRC_T, v); break;            \
    case EM_UINT16: case EM_INT16: STORE_LOOP(uint16_t, SRC_T, v); break;         \
    case EM_UINT32: case EM_INT32: STORE_LOOP(uint32_t, SRC_T, v); break;         \
    case EM_UINT64: case EM_INT64: STORE_LOOP(uint64_t, SRC_T, v); break;         \
    case EM_FLOAT16: STORE_LOOP(uint16_t, SRC_T, em_f32_to_f16((float)v)); break; \
    case EM_BFLOAT16: STORE_LOOP(uint16_t, SRC_T, em_f32_to_bf16((float)v)); break; \
    case EM_FLOAT32: STORE_LOOP(float, SRC_T, v); break;                          \
    case EM_FLOAT64: STORE_LOOP(double, SRC_T, v); break;                         \
    case EM_COMPLEX64: STORE_LOOP(c64, SRC_T, (float)v); break;                   \
  }

#define STORE_FROM_FLOAT(SRC_T, RE)                                               \
  switch (dtype) {                                                                \
    case EM_BOOL: STORE_LOOP(uint8_t, SRC_T, (v) != 0); break;                    \
    case EM_UINT8: STORE_LOOP(uint8_t, SRC_T, f2u(RE)); break;                    \
    case EM_UINT16: STORE_LOOP(uint16_t, SRC_T, f2u(RE)); break;                  \
    case EM_UINT32: STORE_LOOP(uint32_t, SRC_T, f2u(RE)); break;                  \
    case EM_UINT64: STORE_LOOP(uint64_t, SRC_T, f2u(RE)); break;                  \
    case EM_INT8: STORE_LOOP(int8_t, SRC_T, f2i(RE)); break;                      \
    case EM_INT16: STORE_LOOP(int16_t, SRC_T, f2i(RE)); break;                    \
    case EM_INT32: STORE_LOOP(int32_t, SRC_T, f2i(RE)); break;                    \
    case EM_INT64: STORE_LOOP(int64_t, SRC_T, f2i(RE)); break;                    \
    case EM_FLOAT16: STORE_LOOP(uint16_t, SRC_T, em_f32_to_f16((float)(RE))); break; \
    case EM_BFLOAT16: STORE_LOOP(uint16_t, SRC_T, em_f32_to_bf16((float)(RE))); break; \
    case EM_FLOAT32: STORE_LOOP(float, SRC_T, RE); break;                         \
    case EM_FLOAT64: STORE_LOOP(double, SRC_T, RE); break;                        \
    case EM_COMPLEX64: STORE_LOOP(c64, SRC_T, v); break;                          \
  }

void em_store(void* dst, int dtype, int64_t stride, const void* src, int cls, int64_t n) {
  switch (cls) {
    case CL_BOOL: STORE_FROM_INT(uint8_t); break;
    case CL_I64: STORE_FROM_INT(int64_t); break;
    case CL_U64: STORE_FROM_INT(uint64_t); break;
    case CL_F32:
      if (dtype == EM_FLOAT16 && stride == 1) {
        /* The hot half path: keep it a tight loop. */
        uint16_t* d = dst;
        const float* s = src;
        for (int64_t i = 0; i < n; i++) d[i] = em_f32_to_f16(s[i]);
      } else {
        STORE_FROM_FLOAT(float, v);
      }
      break;
    case CL_F64: STORE_FROM_FLOAT(double, v); break;
    case CL_C64: STORE_FROM_FLOAT(c64, crealf(v)); break;
  }
}

/* ---- iteration ---- */

void em_iter_init(em_iter* it, int ndim, const int64_t* shape, int nops,
                  const int64_t* const* strides) {
  it->nops = nops;
  int n = 0;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 1) continue;
    if (n > 0) {
      /* Merge axis d into the previous kept axis when, for every operand,
       * stepping the previous axis equals stepping d shape[d] times. */
      int mergeable = 1;
      for (int k = 0; k < nops; k++)
        if (it->strides[k][n - 1] != strides[k][d] * shape[d]) mergeable = 0;
      if (mergeable) {
        it->shape[n - 1] *= shape[d];
        for (int k = 0; k < nops; k++) it->strides[k][n - 1] = strides[k][d];
        continue;
      }
    }
    it->shape[n] = shape[d];
    for (int k = 0; k < nops; k++) it->strides[k][n] = strides[k][d];
    n++;
  }
  if (n == 0) {
    it->shape[0] = 1;
    for (int k = 0; k < nops; k++) it->strides[k][0] = 0;
    n = 1;
  }
  it->ndim = n;
}

int64_t em_iter_outer(const em_iter* it) {
  int64_t r = 1;
  for (int d = 0; d < it->ndim - 1; d++) r *= it->shape[d];
  return r;
}

void em_iter_offsets(const em_iter* it, int64_t r, int64_t* offsets) {
  for (int k = 0; k < it->nops; k++) offsets[k] = 0;
  for (int d = it->ndim - 2; d >= 0; d--) {
    int64_t i = r % it->shape[d];
    r /= it->shape[d];
    for (int k = 0; k < it->nops; k++) offsets[k] += i * it->strides[k][d];
  }
}

void em_broadcast_strides(const em_array* a, int ndim, const int64_t* shape, int64_t* strides) {
  int lead = ndim - a->ndim;
  for (int d = 0; d < ndim; d++) {
    int ad = d - lead;
    strides[d] = (ad < 0 || a->shape[ad] == 1) ? 0 : a->strides[ad];
  }
  (void)shape;
}
