/* prims.c: the C half of the primitive registry.
 *
 * Each primitive has a name, a shape rule and a kernel. The shape rule runs
 * when a node is built: it checks the inputs, infers the output's shape and
 * dtype, inserts the dtype conversions the primitive needs, and creates the
 * node, or fails with an error naming the op, the shapes, dtypes or axes.
 * The Python half (core/primitives.py) holds the transform rules.
 *
 * Parameters (iparams / fparams) per primitive:
 *   ARANGE          ip: dtype, n            fp: start, step
 *   ASTYPE          ip: dtype
 *   RESHAPE         ip: new shape (one entry may be -1)
 *   TRANSPOSE       ip: permutation
 *   BROADCAST       ip: target shape
 *   SLICE           ip: start, stop, step for each axis (Python slice.indices form)
 *   AS_STRIDED      ip: ndim, shape..., strides..., offset (input's row-major elements)
 *   CONCATENATE     ip: axis
 *   SLICE_UPDATE    ip: start, stop, step for each axis
 *   reductions      ip: axes
 *   ARGMAX/ARGMIN   ip: axis
 *   scans           ip: axis, reverse, inclusive
 *   TAKE, TAKE_ALONG_AXIS   ip: axis
 *   SCATTER_ALONG_AXIS      ip: axis, mode
 *   PLACEHOLDER     ip: transform (0 vmap, 1 compile), dtype, shape...
 *   CUSTOM          ip: rules key, which output, number of outputs
 *   FUSED           ip: out dtype and a program (see kernels/fused.c)
 *   SORT, ARGSORT           ip: axis
 *   PARTITION, ARGPARTITION ip: axis, kth
 *   FFT             ip: axis, kind (enum em_fft_kind), n (the transform length)
 *                   fp: scale applied to the result
 *                   The input's axis is cropped or zero-padded to n (to
 *                   n//2+1 for REAL_INVERSE); the output's axis has n entries
 *                   (n//2+1 for REAL_FORWARD).
 *   THREEFRY        (keys (..., 2), counters (..., 2), both uint32, batch axes broadcast)
 *   RANDOM          ip: kind (enum em_random_kind), dtype, shape...  (keys (..., 2) uint32;
 *                   the output is the keys' batch shape followed by shape; a
 *                   PERMUTATION is int32 with one axis)
 *   BITCAST         ip: dtype
 *   FMA             (a, b, c broadcast and promoted: a * b + c rounded once)
 *   SOLVE, INV      a (..., n, n) [, b (..., n, k)]; batch axes broadcast
 *   SOLVE_TRIANGULAR        ip: upper
 *   CHOLESKY        ip: upper
 *   QR     -> (..., m*k + k*n): Q (m, k), R (k, n); k = min(m, n)
 *   SVD             ip: compute_uv -> (..., m*m + k + n*n): U, S, Vt; or S (..., k)
 *   EIGH            ip: upper, vectors -> (..., n + n*n): w, V; or w (..., n)
 *                   (S and w are real: complex64 inputs store them with zero imaginary parts)
 *   EIG             ip: vectors -> complex64 (..., n + n*n): w, V; or w (..., n)
 *   LU     -> (..., m*n + k + m): LU (m, n), pivots (k), p (m), as floats;
 *                  pivots are 0-based row swaps, p the row indices with A = L[p] @ U
 *   (decompositions pack their results row-major, one after the other)
 *   CONV            x (N, *spatial, C_in), w (C_out, *kernel, C_in / groups) -> (N, *out, C_out)
 *                   ip: n (spatial axes), strides[n], pad_lo[n], pad_hi[n],
 *                   kernel_dilation[n], input_dilation[n], groups, flip.
 *                   Padding may be negative (crops); out = (in' - k') / stride + 1 with
 *                   in' = (in - 1) * input_dilation + 1 + lo + hi, k' = (k - 1) * dilation + 1
 *   RMS_NORM        (x, w) over x's last axis          fp: eps
 *   LAYER_NORM      (x, w, b) over x's last axis       fp: eps
 *   ROPE            (x (..., L, D), inv_freqs (dims/2)) ip: dims, traditional, offset
 *                   fp: scale
 *   SDPA            (q (B, Hq, Lq, D), k (B, Hkv, Lk, D), v (B, Hkv, Lk, Dv)
 *                   [, mask (B, Hq, Lq, Lk): bool keeps, else added]
 *                   [, sinks (Hq): one more logit in each softmax of head h, valueless])
 *                   ip: causal[, sinks (1: the last input is sinks)]  fp: scale
 *   SOFTMAX         over the last axis (x's shape)
 *   LOGSUMEXP       over the last axis (kept, size 1)
 *   QUANTIZE        w (..., K) float   ip: group_size, bits, which (0: the packed codes,
 *                   uint32 (..., K*bits/32); 1: scales, 2: biases, (..., K/group_size)
 *                   in w's dtype)
 *   DEQUANTIZE      (w (..., Kp) uint32, scales (..., G), biases (..., G))
 *                   ip: group_size, bits, dtype of the result -> (..., G*group_size)
 *   QUANTIZED_MATMUL (x (..., M, K) or (K,), w, scales, biases) ip: group_size, bits,
 *                   transpose: x @ W.T (W (N, K)) or x @ W (W (K, N)); batch axes broadcast
 *   (the packed layout and the rounding are described in kernels/quantize.c)
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef em_array* (*shape_rule)(int prim, int nin, em_array** in, int nip,
                                const int64_t* ip, int nfp, const double* fp, int stream);

typedef struct {
  const char* name;
  int ninputs; /* -1: one or more */
  shape_rule rule;
  em_kernel kernel;
} prim_entry;

static const prim_entry* entry(int prim);

const char* em_prim_name(int prim) {
  return (prim >= 0 && prim < EM_NUM_PRIMS) ? entry(prim)->name : "unknown";
}
em_kernel em_kernel_of(int prim) { return entry(prim)->kernel; }

/* ---- helpers ---- */

#define SHAPE_BUF 256

static const char* shape_str(char* buf, const em_array* a) {
  return em_fmt_shape(buf, SHAPE_BUF, a->ndim, a->shape);
}

/* A new reference to a, converted to dtype where it differs. */
static em_array* cast(em_array* a, int dtype, int stream) {
  if (a->dtype == dtype) {
    em_retain(a);
    return a;
  }
  int64_t d = dtype;
  return em_node_new(EM_P_ASTYPE, dtype, a->ndim, a->shape, 1, &a, 1, &d, 0, NULL, stream);
}

/* Builds a node after casting each input to the matching dtype in `dtypes`. */
static em_array* node_with_casts(int prim, int out_dtype, int ndim, const int64_t* shape,
                                 int nin, em_array** in, const int* dtypes, int nip,
                                 const int64_t* ip, int nfp, const double* fp, int stream) {
  em_array* cast_in[8];
  em_array** inputs = nin <= 8 ? cast_in : malloc(sizeof *inputs * (size_t)nin);
  if (!inputs) return em_fail(EM_MEMORY_ERROR, "[%s] out of memory", em_prim_name(prim));
  int made = 0;
  em_array* out = NULL;
  for (; made < nin; made++) {
    inputs[made] = cast(in[made], dtypes[made], stream);
    if (!inputs[made]) goto done;
  }
  out = em_node_new(prim, out_dtype, ndim, shape, nin, inputs, nip, ip, nfp, fp, stream);
done:
  for (int i = 0; i < made; i++) em_release(inputs[i]);
  if (inputs != cast_in) free(inputs);
  return out;
}

static int normalize_axis(int prim, int64_t axis, int ndim, int* out) {
  if (axis < -ndim || axis >= ndim) {
    em_fail(EM_VALUE_ERROR, "[%s] axis %lld is out of bounds for array of dimension %d",
            em_prim_name(prim), (long long)axis, ndim);
    return 0;
  }
  *out = (int)(axis < 0 ? axis + ndim : axis);
  return 1;
}

/* Broadcasts the shapes of n arrays into shape/ndim; fails naming them. */
static int broadcast_shapes(int prim, int n, em_array** in, int64_t* shape, int* ndim) {
  int nd = 0;
  for (int k = 0; k < n; k++) nd = in[k]->ndim > nd ? in[k]->ndim : nd;
  for (int d = 0; d < nd; d++) {
    int64_t size = 1;
    for (int k = 0; k < n; k++) {
      int ad = d - (nd - in[k]->ndim);
      if (ad < 0) continue;
      int64_t s = in[k]->shape[ad];
      if (s == size || s == 1) continue;
      if (size != 1) {
        char b1[SHAPE_BUF], b2[SHAPE_BUF];
        em_fail(EM_VALUE_ERROR, "[%s] shapes %s and %s cannot be broadcast", em_prim_name(prim),
                shape_str(b1, in[0]), shape_str(b2, in[k]));
        return 0;
      }
      size = s;
    }
    shape[d] = size;
  }
  *ndim = nd;
  return 1;
}

/* ---- sources and layout ---- */

static em_array* rule_arange(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                             int nfp, const double* fp, int stream) {
  (void)nin; (void)in;
  if (nip != 2 || nfp != 2) return em_fail(EM_VALUE_ERROR, "[arange] bad parameters");
  if (ip[0] < 0 || ip[0] >= EM_NUM_DTYPES) return em_fail(EM_TYPE_ERROR, "[arange] unknown dtype");
  if (ip[1] < 0) return em_fail(EM_VALUE_ERROR, "[arange] negative length %lld", (long long)ip[1]);
  int64_t n = ip[1];
  return em_node_new(prim, (int)ip[0], 1, &n, 0, NULL, nip, ip, nfp, fp, stream);
}

static em_array* rule_same(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                           int nfp, const double* fp, int stream) {
  (void)nin;
  return em_node_new(prim, in[0]->dtype, in[0]->ndim, in[0]->shape, 1, in, nip, ip, nfp, fp,
                     stream);
}

static em_array* rule_astype(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                             int nfp, const double* fp, int stream) {
  (void)nin;
  if (nip != 1 || ip[0] < 0 || ip[0] >= EM_NUM_DTYPES)
    return em_fail(EM_TYPE_ERROR, "[astype] unknown dtype");
  return em_node_new(prim, (int)ip[0], in[0]->ndim, in[0]->shape, 1, in, nip, ip, nfp, fp,
                     stream);
}

static em_array* rule_reshape(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                              int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  int64_t shape[EM_MAX_NDIM];
  int infer = -1;
  int64_t known = 1;
  char b1[SHAPE_BUF], b2[SHAPE_BUF];
  if (nip > EM_MAX_NDIM) return em_fail(EM_VALUE_ERROR, "[reshape] too many dimensions (%d)", nip);
  for (int i = 0; i < nip; i++) {
    shape[i] = ip[i];
    if (ip[i] == -1) {
      if (infer >= 0) return em_fail(EM_VALUE_ERROR, "[reshape] can only infer one dimension");
      infer = i;
    } else if (ip[i] < 0) {
      return em_fail(EM_VALUE_ERROR, "[reshape] invalid dimension %lld", (long long)ip[i]);
    } else {
      known *= ip[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || in[0]->size % known != 0)
      return em_fail(EM_VALUE_ERROR, "[reshape] cannot infer the size of -1 reshaping an array of shape %s into %s",
                     shape_str(b1, in[0]), em_fmt_shape(b2, SHAPE_BUF, nip, ip));
    shape[infer] = in[0]->size / known;
    known *= shape[infer];
  }
  if (known != in[0]->size)
    return em_fail(EM_VALUE_ERROR, "[reshape] cannot reshape array of size %lld and shape %s into shape %s",
                   (long long)in[0]->size, shape_str(b1, in[0]), em_fmt_shape(b2, SHAPE_BUF, nip, shape));
  /* the resolved shape is the node's parameter, so the node can be rebuilt */
  return em_node_new(prim, in[0]->dtype, nip, shape, 1, in, nip, shape, 0, NULL, stream);
}

static em_array* rule_transpose(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                                int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  em_array* a = in[0];
  if (nip != a->ndim)
    return em_fail(EM_VALUE_ERROR, "[transpose] got %d axes for an array of dimension %d", nip, a->ndim);
  int64_t perm[EM_MAX_NDIM], shape[EM_MAX_NDIM];
  int seen[EM_MAX_NDIM] = {0};
  for (int i = 0; i < nip; i++) {
    int ax;
    if (!normalize_axis(prim, ip[i], a->ndim, &ax)) return NULL;
    if (seen[ax]++) return em_fail(EM_VALUE_ERROR, "[transpose] repeated axis %lld", (long long)ip[i]);
    perm[i] = ax;
    shape[i] = a->shape[ax];
  }
  return em_node_new(prim, a->dtype, a->ndim, shape, 1, in, nip, perm, 0, NULL, stream);
}

static em_array* rule_broadcast(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                                int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  em_array* a = in[0];
  char b1[SHAPE_BUF], b2[SHAPE_BUF];
  int ok = nip >= a->ndim;
  for (int d = 0; ok && d < a->ndim; d++) {
    int64_t s = a->shape[d], t = ip[nip - a->ndim + d];
    ok = s == t || s == 1;
  }
  for (int d = 0; ok && d < nip; d++) ok = ip[d] >= 0;
  if (!ok)
    return em_fail(EM_VALUE_ERROR, "[broadcast_to] cannot broadcast an array of shape %s to shape %s",
                   shape_str(b1, a), em_fmt_shape(b2, SHAPE_BUF, nip, ip));
  return em_node_new(prim, a->dtype, nip, ip, 1, in, nip, ip, 0, NULL, stream);
}

/* Length of range(start, stop, step). */
static int64_t range_length(int64_t start, int64_t stop, int64_t step) {
  int64_t len = step > 0 ? (stop - start + step - 1) / step : (start - stop - step - 1) / -step;
  return len > 0 ? len : 0;
}

static int check_slices(int prim, const em_array* a, int nip, const int64_t* ip, int64_t* shape) {
  if (nip != 3 * a->ndim) {
    em_fail(EM_VALUE_ERROR, "[%s] expected start, stop and step for each of %d axes",
            em_prim_name(prim), a->ndim);
    return 0;
  }
  for (int d = 0; d < a->ndim; d++) {
    int64_t start = ip[3 * d], stop = ip[3 * d + 1], step = ip[3 * d + 2];
    if (step == 0) {
      em_fail(EM_VALUE_ERROR, "[%s] slice step cannot be zero (axis %d)", em_prim_name(prim), d);
      return 0;
    }
    int64_t len = range_length(start, stop, step);
    if (len > 0 && (start < 0 || start >= a->shape[d] || start + (len - 1) * step < 0 ||
                    start + (len - 1) * step >= a->shape[d])) {
      em_fail(EM_INDEX_ERROR, "[%s] slice [%lld:%lld:%lld] out of bounds for axis %d with size %lld",
              em_prim_name(prim), (long long)start, (long long)stop, (long long)step, d,
              (long long)a->shape[d]);
      return 0;
    }
    shape[d] = len;
  }
  return 1;
}

static em_array* rule_slice(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                            int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  int64_t shape[EM_MAX_NDIM];
  if (!check_slices(prim, in[0], nip, ip, shape)) return NULL;
  return em_node_new(prim, in[0]->dtype, in[0]->ndim, shape, 1, in, nip, ip, 0, NULL, stream);
}

static em_array* rule_as_strided(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                                 int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  if (nip < 2 || ip[0] < 0 || nip != 2 + 2 * ip[0])
    return em_fail(EM_VALUE_ERROR, "[as_strided] bad parameters");
  int nd = (int)ip[0];
  const int64_t* shape = ip + 1;
  const int64_t* strides = ip + 1 + nd;
  int64_t lo = ip[1 + 2 * nd], hi = lo, size = 1;
  for (int d = 0; d < nd; d++) {
    if (shape[d] < 0) return em_fail(EM_VALUE_ERROR, "[as_strided] negative dimension");
    size *= shape[d];
    if (shape[d] == 0) continue;
    int64_t reach = (shape[d] - 1) * strides[d];
    if (reach < 0) lo += reach; else hi += reach;
  }
  if (size > 0 && (lo < 0 || hi >= in[0]->size))
    return em_fail(EM_VALUE_ERROR, "[as_strided] the view reaches elements [%lld, %lld] outside an array of size %lld",
                   (long long)lo, (long long)hi, (long long)in[0]->size);
  return em_node_new(prim, in[0]->dtype, nd, shape, 1, in, nip, ip, 0, NULL, stream);
}

static em_array* rule_concatenate(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                                  int nfp, const double* fp, int stream) {
  (void)nfp; (void)fp;
  if (nin < 1) return em_fail(EM_VALUE_ERROR, "[concatenate] no arrays to concatenate");
  if (nip != 1) return em_fail(EM_VALUE_ERROR, "[concatenate] expected an axis");
  em_array* first = in[0];
  if (first->ndim == 0) return em_fail(EM_VALUE_ERROR, "[concatenate] zero-dimensional arrays cannot be concatenated");
  int axis;
  if (!normalize_axis(prim, ip[0], first->ndim, &axis)) return NULL;
  int64_t shape[EM_MAX_NDIM];
  memcpy(shape, first->shape, sizeof(int64_t) * (size_t)first->ndim);
  shape[axis] = 0;
  int dtype = first->dtype;
  for (int k = 0; k < nin; k++) {
    char b1[SHAPE_BUF], b2[SHAPE_BUF];
    int ok = in[k]->ndim == first->ndim;
    for (int d = 0; ok && d < first->ndim; d++) ok = d == axis || in[k]->shape[d] == first->shape[d];
    if (!ok)
      return em_fail(EM_VALUE_ERROR, "[concatenate] all arrays must match except on axis %d, got shapes %s and %s",
                     axis, shape_str(b1, first), shape_str(b2, in[k]));
    shape[axis] += in[k]->shape[axis];
    dtype = em_promote_types(dtype, in[k]->dtype);
  }
  int dtypes_small[64];
  int* dtypes = nin <= 64 ? dtypes_small : malloc(sizeof *dtypes * (size_t)nin);
  if (!dtypes) return em_fail(EM_MEMORY_ERROR, "[concatenate] out of memory for %d inputs", nin);
  for (int k = 0; k < nin; k++) dtypes[k] = dtype;
  int64_t ax = axis;
  em_array* out = node_with_casts(prim, dtype, first->ndim, shape, nin, in, dtypes, 1, &ax, 0,
                                  NULL, stream);
  if (dtypes != dtypes_small) free(dtypes);
  return out;
}

static em_array* rule_slice_update(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                                   int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  em_array* a = in[0];
  em_array* u = in[1];
  int64_t shape[EM_MAX_NDIM];
  char b1[SHAPE_BUF], b2[SHAPE_BUF];
  if (!check_slices(prim, a, nip, ip, shape)) return NULL;
  int ok = u->ndim <= a->ndim;
  for (int d = 0; ok && d < u->ndim; d++) {
    int64_t s = u->shape[d], t = shape[a->ndim - u->ndim + d];
    ok = s == t || s == 1;
  }
  if (!ok)
    return em_fail(EM_VALUE_ERROR, "[slice_update] update of shape %s cannot be broadcast to the slice shape %s",
                   shape_str(b1, u), em_fmt_shape(b2, SHAPE_BUF, a->ndim, shape));
  int dtypes[2] = {a->dtype, a->dtype};
  return node_with_casts(prim, a->dtype, a->ndim, a->shape, 2, in, dtypes, nip, ip, 0, NULL, stream);
}

/* ---- elementwise ---- */

static int is_float_fn(int prim) {
  return (prim >= EM_P_SQRT && prim <= EM_P_ERFINV) || prim == EM_P_SIGMOID;
}

static em_array* rule_unary(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                            int nfp, const double* fp, int stream) {
  (void)nin; (void)nip; (void)ip; (void)nfp; (void)fp;
  em_array* a = in[0];
  int in_dtype = a->dtype, out_dtype = a->dtype;
  const char* name = em_prim_name(prim);
  if (is_float_fn(prim)) {
    if (!em_is_inexact(in_dtype)) in_dtype = out_dtype = EM_FLOAT32;
    if ((prim == EM_P_ERF || prim == EM_P_ERFINV) && in_dtype == EM_COMPLEX64)
      return em_fail(EM_TYPE_ERROR, "[%s] not defined for complex64", name);
  }
  switch (prim) {
    case EM_P_ABS:
      if (in_dtype == EM_COMPLEX64) out_dtype = EM_FLOAT32;
      break;
    case EM_P_NEGATIVE:
      if (in_dtype == EM_BOOL) return em_fail(EM_TYPE_ERROR, "[negative] not defined for bool; use logical_not");
      break;
    case EM_P_FLOOR: case EM_P_CEIL: case EM_P_ROUND:
      if (in_dtype == EM_COMPLEX64) return em_fail(EM_TYPE_ERROR, "[%s] not defined for complex64", name);
      break;
    case EM_P_ISNAN: case EM_P_ISINF: case EM_P_LOGICAL_NOT:
      out_dtype = EM_BOOL;
      break;
    case EM_P_BITWISE_INVERT:
      if (in_dtype == EM_BOOL) prim = EM_P_LOGICAL_NOT;
      else if (!em_is_integer(in_dtype))
        return em_fail(EM_TYPE_ERROR, "[bitwise_invert] requires integer or bool inputs, got %s",
                       em_dtype_name(in_dtype));
      break;
    case EM_P_REAL: case EM_P_IMAG: case EM_P_CONJUGATE:
      if (in_dtype != EM_COMPLEX64)
        return em_fail(EM_TYPE_ERROR, "[%s] requires a complex64 input, got %s", name, em_dtype_name(in_dtype));
      if (prim != EM_P_CONJUGATE) out_dtype = EM_FLOAT32;
      break;
  }
  return node_with_casts(prim, out_dtype, a->ndim, a->shape, 1, in, &in_dtype, 0, NULL, 0, NULL, stream);
}

static em_array* rule_binary(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                             int nfp, const double* fp, int stream) {
  (void)nin; (void)nip; (void)ip; (void)nfp; (void)fp;
  int64_t shape[EM_MAX_NDIM];
  int ndim;
  if (!broadcast_shapes(prim, 2, in, shape, &ndim)) return NULL;
  int dtype = em_promote_types(in[0]->dtype, in[1]->dtype), out_dtype;
  const char* name = em_prim_name(prim);
  switch (prim) {
    case EM_P_DIVIDE: case EM_P_ARCTAN2: case EM_P_LOGADDEXP:
      if (!em_is_inexact(dtype)) dtype = EM_FLOAT32;
      break;
    case EM_P_BITWISE_AND: case EM_P_BITWISE_OR: case EM_P_BITWISE_XOR:
    case EM_P_LEFT_SHIFT: case EM_P_RIGHT_SHIFT:
      if (em_is_inexact(dtype))
        return em_fail(EM_TYPE_ERROR, "[%s] requires integer or bool inputs, got %s and %s", name,
                       em_dtype_name(in[0]->dtype), em_dtype_name(in[1]->dtype));
      break;
  }
  if (dtype == EM_COMPLEX64) {
    switch (prim) {
      case EM_P_FLOOR_DIVIDE: case EM_P_REMAINDER: case EM_P_MAXIMUM: case EM_P_MINIMUM:
      case EM_P_ARCTAN2: case EM_P_LOGADDEXP: case EM_P_LESS: case EM_P_LESS_EQUAL:
      case EM_P_GREATER: case EM_P_GREATER_EQUAL:
        return em_fail(EM_TYPE_ERROR, "[%s] not defined for complex64", name);
    }
  }
  switch (prim) {
    case EM_P_EQUAL: case EM_P_NOT_EQUAL: case EM_P_LESS: case EM_P_LESS_EQUAL:
    case EM_P_GREATER: case EM_P_GREATER_EQUAL: case EM_P_LOGICAL_AND: case EM_P_LOGICAL_OR:
      out_dtype = EM_BOOL;
      break;
    default:
      out_dtype = dtype;
  }
  int dtypes[2] = {dtype, dtype};
  return node_with_casts(prim, out_dtype, ndim, shape, 2, in, dtypes, 0, NULL, 0, NULL, stream);
}

static em_array* rule_where(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                            int nfp, const double* fp, int stream) {
  (void)nin; (void)nip; (void)ip; (void)nfp; (void)fp;
  int64_t shape[EM_MAX_NDIM];
  int ndim;
  if (!broadcast_shapes(prim, 3, in, shape, &ndim)) return NULL;
  int dtype = em_promote_types(in[1]->dtype, in[2]->dtype);
  int dtypes[3] = {in[0]->dtype, dtype, dtype};
  return node_with_casts(prim, dtype, ndim, shape, 3, in, dtypes, 0, NULL, 0, NULL, stream);
}

/* ---- reductions and scans ---- */

static em_array* rule_reduce(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                             int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  em_array* a = in[0];
  const char* name = em_prim_name(prim);
  int reduced[EM_MAX_NDIM] = {0};
  int64_t axes[EM_MAX_NDIM], shape[EM_MAX_NDIM];
  if (nip > a->ndim) return em_fail(EM_VALUE_ERROR, "[%s] more axes (%d) than dimensions (%d)", name, nip, a->ndim);
  for (int i = 0; i < nip; i++) {
    int ax;
    if (!normalize_axis(prim, ip[i], a->ndim, &ax)) return NULL;
    if (reduced[ax]++) return em_fail(EM_VALUE_ERROR, "[%s] duplicate axis %lld", name, (long long)ip[i]);
  }
  int n = 0;
  for (int d = 0; d < a->ndim; d++) {
    shape[d] = reduced[d] ? 1 : a->shape[d];
    if (reduced[d]) {
      axes[n++] = d;
      if (a->shape[d] == 0 && (prim == EM_P_MAX || prim == EM_P_MIN))
        return em_fail(EM_VALUE_ERROR, "[%s] cannot reduce over axis %d of size zero", name, d);
    }
  }
  int dtype = a->dtype;
  if (prim == EM_P_ALL || prim == EM_P_ANY) dtype = EM_BOOL;
  else if (prim == EM_P_SUM || prim == EM_P_PROD) {
    /* as mlx.core: small integers accumulate in 32 bits */
    if (dtype == EM_BOOL || dtype == EM_INT8 || dtype == EM_INT16) dtype = EM_INT32;
    else if (dtype == EM_UINT8 || dtype == EM_UINT16) dtype = EM_UINT32;
  }
  if ((prim == EM_P_MAX || prim == EM_P_MIN) && dtype == EM_COMPLEX64)
    return em_fail(EM_TYPE_ERROR, "[%s] not defined for complex64", name);
  return em_node_new(prim, dtype, a->ndim, shape, 1, in, n, axes, 0, NULL, stream);
}

static em_array* rule_argreduce(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                                int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  em_array* a = in[0];
  int axis;
  if (nip != 1) return em_fail(EM_VALUE_ERROR, "[%s] expected one axis", em_prim_name(prim));
  if (!normalize_axis(prim, ip[0], a->ndim, &axis)) return NULL;
  if (a->shape[axis] == 0)
    return em_fail(EM_VALUE_ERROR, "[%s] cannot reduce over axis %d of size zero", em_prim_name(prim), axis);
  if (a->dtype == EM_COMPLEX64)
    return em_fail(EM_TYPE_ERROR, "[%s] not defined for complex64", em_prim_name(prim));
  int64_t shape[EM_MAX_NDIM], ax = axis;
  memcpy(shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
  shape[axis] = 1;
  return em_node_new(prim, EM_UINT32, a->ndim, shape, 1, in, 1, &ax, 0, NULL, stream);
}

static em_array* rule_scan(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                           int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  em_array* a = in[0];
  int axis;
  if (nip != 3) return em_fail(EM_VALUE_ERROR, "[%s] expected axis, reverse, inclusive", em_prim_name(prim));
  if (!normalize_axis(prim, ip[0], a->ndim, &axis)) return NULL;
  int dtype = a->dtype;
  if (prim == EM_P_CUMSUM && dtype == EM_BOOL) dtype = EM_INT32;  /* as mlx: cumprod of bool stays bool */
  if (prim == EM_P_LOGCUMSUMEXP && !em_is_inexact(dtype)) dtype = EM_FLOAT32;
  if (dtype == EM_COMPLEX64 && prim != EM_P_CUMSUM && prim != EM_P_CUMPROD)
    return em_fail(EM_TYPE_ERROR, "[%s] not defined for complex64", em_prim_name(prim));
  int64_t params[3] = {axis, ip[1] != 0, ip[2] != 0};
  return node_with_casts(prim, dtype, a->ndim, a->shape, 1, in, &dtype, 3, params, 0, NULL, stream);
}

/* ---- indexing ---- */

static int check_indices(int prim, const em_array* idx) {
  if (!em_is_integer(idx->dtype)) {
    em_fail(EM_TYPE_ERROR, "[%s] indices must be integers, got %s", em_prim_name(prim),
            em_dtype_name(idx->dtype));
    return 0;
  }
  return 1;
}

static em_array* rule_take(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                           int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  em_array* a = in[0];
  em_array* idx = in[1];
  int axis;
  if (nip != 1) return em_fail(EM_VALUE_ERROR, "[take] expected an axis");
  if (!check_indices(prim, idx) || !normalize_axis(prim, ip[0], a->ndim, &axis)) return NULL;
  if (a->ndim - 1 + idx->ndim > EM_MAX_NDIM) return em_fail(EM_VALUE_ERROR, "[take] result has too many dimensions");
  if (a->shape[axis] == 0 && idx->size > 0)
    return em_fail(EM_INDEX_ERROR, "[take] cannot take from axis %d of size zero", axis);
  int64_t shape[EM_MAX_NDIM], ax = axis;
  int nd = 0;
  for (int d = 0; d < axis; d++) shape[nd++] = a->shape[d];
  for (int d = 0; d < idx->ndim; d++) shape[nd++] = idx->shape[d];
  for (int d = axis + 1; d < a->ndim; d++) shape[nd++] = a->shape[d];
  return em_node_new(prim, a->dtype, nd, shape, 2, in, 1, &ax, 0, NULL, stream);
}

/* Shape of an along-axis operation: broadcast a's and the operands' shapes on
 * every axis except `axis`, where the operands' (broadcast) size is used. */
static int along_axis_shape(int prim, em_array* a, int nops, em_array** ops, int axis,
                            int64_t* shape, int include_a) {
  char b1[SHAPE_BUF], b2[SHAPE_BUF];
  for (int k = 0; k < nops; k++)
    if (ops[k]->ndim != a->ndim) {
      em_fail(EM_VALUE_ERROR, "[%s] indices of shape %s must have as many dimensions as the array of shape %s",
              em_prim_name(prim), shape_str(b1, ops[k]), shape_str(b2, a));
      return 0;
    }
  for (int d = 0; d < a->ndim; d++) {
    int64_t size = (d == axis || !include_a) ? 1 : a->shape[d];
    for (int k = 0; k < nops; k++) {
      int64_t s = ops[k]->shape[d];
      if (s == size || s == 1) continue;
      if (size != 1 || (d != axis && !include_a && s != a->shape[d])) {
        em_fail(EM_VALUE_ERROR, "[%s] shapes %s and %s cannot be broadcast on axis %d",
                em_prim_name(prim), shape_str(b1, a), shape_str(b2, ops[k]), d);
        return 0;
      }
      size = s;
    }
    shape[d] = size;
  }
  return 1;
}

static em_array* rule_take_along_axis(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                                      int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  em_array* a = in[0];
  int axis;
  if (nip != 1) return em_fail(EM_VALUE_ERROR, "[take_along_axis] expected an axis");
  if (!check_indices(prim, in[1]) || !normalize_axis(prim, ip[0], a->ndim, &axis)) return NULL;
  int64_t shape[EM_MAX_NDIM], ax = axis;
  if (!along_axis_shape(prim, a, 1, in + 1, axis, shape, 1)) return NULL;
  if (a->shape[axis] == 0 && in[1]->size > 0)
    return em_fail(EM_INDEX_ERROR, "[take_along_axis] cannot take from axis %d of size zero", axis);
  return em_node_new(prim, a->dtype, a->ndim, shape, 2, in, 1, &ax, 0, NULL, stream);
}

static em_array* rule_scatter_along_axis(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                                         int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  em_array* a = in[0];
  int axis;
  if (nip != 2 || ip[1] < EM_SCATTER_SET || ip[1] > EM_SCATTER_MINIMUM)
    return em_fail(EM_VALUE_ERROR, "[scatter] expected an axis and a mode");
  if (!check_indices(prim, in[1]) || !normalize_axis(prim, ip[0], a->ndim, &axis)) return NULL;
  int64_t shape[EM_MAX_NDIM], params[2] = {axis, ip[1]};
  /* The update block must fit a on every other axis. */
  for (int k = 1; k < 3; k++)
    for (int d = 0; d < a->ndim && in[k]->ndim == a->ndim; d++)
      if (d != axis && in[k]->shape[d] != 1 && in[k]->shape[d] != a->shape[d]) {
        char b1[SHAPE_BUF], b2[SHAPE_BUF];
        return em_fail(EM_VALUE_ERROR, "[scatter] shape %s does not fit the array of shape %s on axis %d",
                       shape_str(b1, in[k]), shape_str(b2, a), d);
      }
  if (!along_axis_shape(prim, a, 2, in + 1, axis, shape, 1)) return NULL;
  if (a->shape[axis] == 0 && in[1]->size > 0)
    return em_fail(EM_INDEX_ERROR, "[scatter] cannot scatter into axis %d of size zero", axis);
  if (a->dtype == EM_COMPLEX64 && (ip[1] == EM_SCATTER_MAXIMUM || ip[1] == EM_SCATTER_MINIMUM))
    return em_fail(EM_TYPE_ERROR, "[scatter] maximum and minimum are not defined for complex64");
  int dtypes[3] = {a->dtype, in[1]->dtype, a->dtype};
  return node_with_casts(prim, a->dtype, a->ndim, a->shape, 3, in, dtypes, 2, params, 0, NULL, stream);
}

/* ---- products ---- */

static em_array* rule_matmul(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                             int nfp, const double* fp, int stream) {
  (void)nin; (void)nip; (void)ip; (void)nfp; (void)fp;
  em_array* a = in[0];
  em_array* b = in[1];
  char b1[SHAPE_BUF], b2[SHAPE_BUF];
  if (a->ndim < 2 || b->ndim < 2)
    return em_fail(EM_VALUE_ERROR, "[matmul] inputs need at least 2 dimensions, got shapes %s and %s",
                   shape_str(b1, a), shape_str(b2, b));
  int64_t k = a->shape[a->ndim - 1];
  if (k != b->shape[b->ndim - 2])
    return em_fail(EM_VALUE_ERROR, "[matmul] last axis of a (%lld) must equal axis -2 of b (%lld); shapes %s and %s",
                   (long long)k, (long long)b->shape[b->ndim - 2], shape_str(b1, a), shape_str(b2, b));
  /* Broadcast the batch axes. */
  int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
  int64_t shape[EM_MAX_NDIM];
  for (int d = 0; d < nd - 2; d++) {
    int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
    int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
    if (sa != sb && sa != 1 && sb != 1)
      return em_fail(EM_VALUE_ERROR, "[matmul] batch shapes of %s and %s cannot be broadcast",
                     shape_str(b1, a), shape_str(b2, b));
    shape[d] = sa == 1 ? sb : sa;
  }
  shape[nd - 2] = a->shape[a->ndim - 2];
  shape[nd - 1] = b->shape[b->ndim - 1];
  int dtype = em_promote_types(a->dtype, b->dtype);
  int dtypes[2] = {dtype, dtype};
  return node_with_casts(prim, dtype, nd, shape, 2, in, dtypes, 0, NULL, 0, NULL, stream);
}

/* A stand-in for a traced input of known shape and dtype that has no value:
 * vmap and compile trace a function over placeholders, then rewrite the graph. */
static em_array* rule_placeholder(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                                  int nfp, const double* fp, int stream) {
  (void)nin; (void)in;
  if (nip < 2 || ip[1] < 0 || ip[1] >= EM_NUM_DTYPES)
    return em_fail(EM_VALUE_ERROR, "[placeholder] bad parameters");
  return em_node_new(prim, (int)ip[1], nip - 2, ip + 2, 0, NULL, nip, ip, nfp, fp, stream);
}

/* The output of a custom_function: a view of one of the function's outputs,
 * with the primals as further inputs so custom rules can read them. */
static em_array* rule_custom(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                             int nfp, const double* fp, int stream) {
  if (nip != 3 || ip[2] < 1 || ip[2] > nin || ip[1] < 0 || ip[1] >= ip[2])
    return em_fail(EM_VALUE_ERROR, "[custom_function] bad parameters");
  em_array* src = in[ip[1]];
  return em_node_new(prim, src->dtype, src->ndim, src->shape, nin, in, nip, ip, nfp, fp, stream);
}

static int em_kernel_custom(em_array* out) {
  em_array* in = out->inputs[out->ip[1]];
  em_set_view(out, in, in->strides, in->offset);
  return EM_OK;
}

static int em_kernel_placeholder(em_array* out) {
  em_fail(EM_VALUE_ERROR,
          out->ip[0] == 0
              ? "[vmap] cannot evaluate a value that depends on a vmapped input inside the "
                "function (no item(), numpy conversion or eval of traced values)"
              : "[compile] cannot evaluate a traced value inside a compiled function: "
                "item(), numpy conversion and eval need concrete values, which exist only "
                "when the compiled function runs; return the value instead");
  return EM_VALUE_ERROR;
}

/* ---- sorting ---- */

static em_array* rule_sort(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                           int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  em_array* a = in[0];
  const char* name = em_prim_name(prim);
  int partition = prim == EM_P_PARTITION || prim == EM_P_ARGPARTITION;
  if (nip != 1 + partition)
    return em_fail(EM_VALUE_ERROR, "[%s] expected %s", name, partition ? "an axis and kth" : "an axis");
  int axis;
  if (!normalize_axis(prim, ip[0], a->ndim, &axis)) return NULL;
  int64_t n = a->shape[axis], params[2] = {axis, 0};
  if (n > UINT32_MAX)
    return em_fail(EM_VALUE_ERROR, "[%s] axis %d has %lld elements; at most 2**32 - 1 are supported",
                   name, axis, (long long)n);
  if (partition) {
    int64_t kth = ip[1];
    if (kth < -n || kth >= n)
      return em_fail(EM_VALUE_ERROR, "[%s] kth %lld is out of bounds for axis %d of size %lld", name,
                     (long long)kth, axis, (long long)n);
    params[1] = kth < 0 ? kth + n : kth;
  }
  int dtype = prim == EM_P_ARGSORT || prim == EM_P_ARGPARTITION ? EM_UINT32 : a->dtype;
  return em_node_new(prim, dtype, a->ndim, a->shape, 1, in, 1 + partition, params, 0, NULL, stream);
}

/* ---- fft ---- */

static em_array* rule_fft(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                          int nfp, const double* fp, int stream) {
  (void)nin;
  em_array* a = in[0];
  if (nip != 3 || nfp != 1 || ip[1] < EM_FFT_FORWARD || ip[1] > EM_FFT_REAL_INVERSE)
    return em_fail(EM_VALUE_ERROR, "[fft] expected an axis, a kind, a length and a scale");
  int axis;
  if (!normalize_axis(prim, ip[0], a->ndim, &axis)) return NULL;
  int64_t kind = ip[1], n = ip[2];
  if (n < 1)
    return em_fail(EM_VALUE_ERROR, "[fft] invalid number of data points (%lld) along axis %d",
                   (long long)n, axis);
  int64_t shape[EM_MAX_NDIM], params[3] = {axis, kind, n};
  memcpy(shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
  shape[axis] = kind == EM_FFT_REAL_FORWARD ? n / 2 + 1 : n;
  int in_dtype = kind == EM_FFT_REAL_FORWARD ? EM_FLOAT32 : EM_COMPLEX64;
  int out_dtype = kind == EM_FFT_REAL_INVERSE ? EM_FLOAT32 : EM_COMPLEX64;
  return node_with_casts(prim, out_dtype, a->ndim, shape, 1, in, &in_dtype, 3, params, 1, fp, stream);
}

/* ---- random numbers, bit casts, fused multiply-add ---- */

/* Keys are uint32 arrays whose last axis holds the two words. */
static int check_keys(int prim, const char* what, const em_array* a) {
  char b1[SHAPE_BUF];
  if (a->dtype != EM_UINT32) {
    em_fail(EM_TYPE_ERROR, "[%s] %s must be uint32, got %s", em_prim_name(prim), what,
            em_dtype_name(a->dtype));
    return 0;
  }
  if (a->ndim < 1 || a->shape[a->ndim - 1] != 2) {
    em_fail(EM_VALUE_ERROR, "[%s] %s must have shape (..., 2), got %s", em_prim_name(prim), what,
            shape_str(b1, a));
    return 0;
  }
  return 1;
}

static em_array* rule_threefry(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                               int nfp, const double* fp, int stream) {
  (void)nin; (void)nip; (void)ip; (void)nfp; (void)fp;
  if (!check_keys(prim, "keys", in[0]) || !check_keys(prim, "counters", in[1])) return NULL;
  int64_t shape[EM_MAX_NDIM];
  int ndim;
  if (!broadcast_shapes(prim, 2, in, shape, &ndim)) return NULL;
  return em_node_new(prim, EM_UINT32, ndim, shape, 2, in, 0, NULL, 0, NULL, stream);
}

static em_array* rule_random(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                             int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  em_array* key = in[0];
  if (!check_keys(prim, "key", key)) return NULL;
  if (nip < 2) return em_fail(EM_VALUE_ERROR, "[random] expected kind, dtype and shape");
  int64_t kind = ip[0], dtype = ip[1];
  int ok = 0;
  switch (kind) {
    case EM_RANDOM_BITS:
      ok = dtype == EM_UINT8 || dtype == EM_UINT16 || dtype == EM_UINT32 || dtype == EM_UINT64;
      break;
    case EM_RANDOM_UNIFORM:
      ok = dtype == EM_FLOAT16 || dtype == EM_BFLOAT16 || dtype == EM_FLOAT32 || dtype == EM_FLOAT64;
      break;
    case EM_RANDOM_NORMAL:
      ok = dtype == EM_FLOAT16 || dtype == EM_BFLOAT16 || dtype == EM_FLOAT32;
      break;
    case EM_RANDOM_PERMUTATION:
      if (nip != 3 || ip[2] > INT32_MAX)
        return em_fail(EM_VALUE_ERROR, "[random] a permutation has one axis of at most 2**31 - 1 elements");
      ok = dtype == EM_INT32;
      break;
    default:
      return em_fail(EM_VALUE_ERROR, "[random] unknown kind %lld", (long long)kind);
  }
  if (!ok)
    return em_fail(EM_TYPE_ERROR, "[random] cannot draw %s of dtype %s",
                   kind == EM_RANDOM_BITS ? "bits" : kind == EM_RANDOM_UNIFORM ? "uniforms"
                   : kind == EM_RANDOM_NORMAL ? "normals" : "permutations",
                   dtype >= 0 && dtype < EM_NUM_DTYPES ? em_dtype_name((int)dtype) : "unknown");
  int ndim = key->ndim - 1 + (nip - 2);
  if (ndim > EM_MAX_NDIM) return em_fail(EM_VALUE_ERROR, "[random] too many dimensions (%d)", ndim);
  int64_t shape[EM_MAX_NDIM];
  for (int d = 0; d < key->ndim - 1; d++) shape[d] = key->shape[d];
  for (int d = 2; d < nip; d++) {
    if (ip[d] < 0)
      return em_fail(EM_VALUE_ERROR, "[random] negative dimension %lld", (long long)ip[d]);
    shape[key->ndim - 1 + d - 2] = ip[d];
  }
  return em_node_new(prim, (int)dtype, ndim, shape, 1, in, nip, ip, 0, NULL, stream);
}

static em_array* rule_bitcast(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                              int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  em_array* a = in[0];
  if (nip != 1 || ip[0] < 0 || ip[0] >= EM_NUM_DTYPES)
    return em_fail(EM_TYPE_ERROR, "[view] unknown dtype");
  int dtype = (int)ip[0];
  int from = em_dtype_size(a->dtype), to = em_dtype_size(dtype);
  int64_t shape[EM_MAX_NDIM];
  char b1[SHAPE_BUF];
  memcpy(shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
  if (from != to) {
    if (a->ndim == 0)
      return em_fail(EM_VALUE_ERROR, "[view] cannot view a 0-d %s array as %s: item sizes differ",
                     em_dtype_name(a->dtype), em_dtype_name(dtype));
    int64_t bytes = a->shape[a->ndim - 1] * from;
    if (bytes % to != 0)
      return em_fail(EM_VALUE_ERROR, "[view] the last axis of a %s array of shape %s (%lld bytes) "
                     "is not a multiple of the size of %s", em_dtype_name(a->dtype), shape_str(b1, a),
                     (long long)bytes, em_dtype_name(dtype));
    shape[a->ndim - 1] = bytes / to;
  }
  return em_node_new(prim, dtype, a->ndim, shape, 1, in, nip, ip, 0, NULL, stream);
}

static em_array* rule_fma(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                          int nfp, const double* fp, int stream) {
  (void)nin; (void)nip; (void)ip; (void)nfp; (void)fp;
  int64_t shape[EM_MAX_NDIM];
  int ndim;
  if (!broadcast_shapes(prim, 3, in, shape, &ndim)) return NULL;
  int dtype = em_promote_types(em_promote_types(in[0]->dtype, in[1]->dtype), in[2]->dtype);
  int dtypes[3] = {dtype, dtype, dtype};
  return node_with_casts(prim, dtype, ndim, shape, 3, in, dtypes, 0, NULL, 0, NULL, stream);
}

/* ---- ember.core.fast ---- */

/* The float dtype a fast op computes and returns in (integers give float32). */
static int fast_dtype(int prim, int nin, em_array** in) {
  int dtype = in[0]->dtype;
  for (int i = 1; i < nin; i++) dtype = em_promote_types(dtype, in[i]->dtype);
  if (dtype == EM_COMPLEX64) {
    em_fail(EM_TYPE_ERROR, "[%s] complex inputs are not supported", em_prim_name(prim));
    return -1;
  }
  return em_is_float(dtype) ? dtype : EM_FLOAT32;
}

static em_array* rule_norm(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                           int nfp, const double* fp, int stream) {
  (void)nip; (void)ip;
  char b1[SHAPE_BUF], b2[SHAPE_BUF];
  em_array* x = in[0];
  if (nfp != 1) return em_fail(EM_VALUE_ERROR, "[%s] expected eps", em_prim_name(prim));
  if (x->ndim < 1)
    return em_fail(EM_VALUE_ERROR, "[%s] expected an array with at least 1 dimension, got shape %s",
                   em_prim_name(prim), shape_str(b1, x));
  for (int i = 1; i < nin; i++)
    if (in[i]->ndim != 1 || in[i]->shape[0] != x->shape[x->ndim - 1])
      return em_fail(EM_VALUE_ERROR, "[%s] %s must be 1-D with the size of x's last axis, got "
                     "shape %s for x of shape %s", em_prim_name(prim), i == 1 ? "weight" : "bias",
                     shape_str(b1, in[i]), shape_str(b2, x));
  int dtype = fast_dtype(prim, nin, in);
  if (dtype < 0) return NULL;
  int dtypes[3] = {dtype, dtype, dtype};
  return node_with_casts(prim, dtype, x->ndim, x->shape, nin, in, dtypes, 0, NULL, 1, fp, stream);
}

static em_array* rule_rope(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                           int nfp, const double* fp, int stream) {
  (void)nin;
  char b1[SHAPE_BUF];
  em_array* x = in[0];
  if (nip != 3 || nfp != 1) return em_fail(EM_VALUE_ERROR, "[rope] expected dims, traditional, offset, scale");
  if (x->ndim < 2)
    return em_fail(EM_VALUE_ERROR, "[rope] expected an array with at least 2 dimensions "
                   "(..., sequence, features), got shape %s", shape_str(b1, x));
  int64_t d = x->shape[x->ndim - 1];
  if (ip[0] <= 0 || ip[0] % 2 != 0 || ip[0] > d)
    return em_fail(EM_VALUE_ERROR, "[rope] dims must be even, positive and at most the last axis "
                   "(%lld), got %lld", (long long)d, (long long)ip[0]);
  if (in[1]->ndim != 1 || in[1]->shape[0] != ip[0] / 2)
    return em_fail(EM_VALUE_ERROR, "[rope] freqs must have shape (%lld,) (dims / 2), got %s",
                   (long long)(ip[0] / 2), shape_str(b1, in[1]));
  int dtype = fast_dtype(prim, 1, in);
  if (dtype < 0) return NULL;
  if (!em_is_float(in[1]->dtype))
    return em_fail(EM_TYPE_ERROR, "[rope] freqs must be floating point, got %s", em_dtype_name(in[1]->dtype));
  int64_t params[3] = {ip[0], ip[1] != 0, ip[2]};
  int dtypes[2] = {dtype, in[1]->dtype};
  return node_with_casts(prim, dtype, x->ndim, x->shape, 2, in, dtypes, 3, params, 1, fp, stream);
}

static em_array* rule_sdpa(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                           int nfp, const double* fp, int stream) {
  char b1[SHAPE_BUF], b2[SHAPE_BUF], b3[SHAPE_BUF];
  const char* name = "scaled_dot_product_attention";
  if ((nip != 1 && nip != 2) || nfp != 1)
    return em_fail(EM_VALUE_ERROR, "[%s] expected causal, optional sinks flag, and scale", name);
  int sinks = nip == 2 && ip[1] != 0;
  int masked = nin - 3 - sinks;
  if (masked != 0 && masked != 1)
    return em_fail(EM_VALUE_ERROR, "[%s] expected q, k, v, an optional mask and optional sinks", name);
  em_array *q = in[0], *k = in[1], *v = in[2];
  if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4)
    return em_fail(EM_VALUE_ERROR, "[%s] q, k and v must be 4-D (batch, heads, sequence, features), "
                   "got shapes %s, %s and %s", name, shape_str(b1, q), shape_str(b2, k), shape_str(b3, v));
  if (q->shape[0] != k->shape[0] || k->shape[0] != v->shape[0] || k->shape[1] != v->shape[1]
      || k->shape[2] != v->shape[2] || q->shape[3] != k->shape[3])
    return em_fail(EM_VALUE_ERROR, "[%s] shapes of q %s, k %s and v %s do not match: batch and "
                   "key/value heads must agree, k and v need the same sequence length, q and k "
                   "the same features", name, shape_str(b1, q), shape_str(b2, k), shape_str(b3, v));
  if (k->shape[1] == 0 || q->shape[1] % k->shape[1] != 0)
    return em_fail(EM_VALUE_ERROR, "[%s] the number of query heads (%lld) must be a multiple of "
                   "the number of key/value heads (%lld)", name, (long long)q->shape[1],
                   (long long)k->shape[1]);
  int dtype = fast_dtype(prim, 3, in);
  if (dtype < 0) return NULL;
  int64_t shape[4] = {q->shape[0], q->shape[1], q->shape[2], v->shape[3]};
  if (sinks) {
    em_array* s = in[nin - 1];
    if (s->ndim != 1 || s->shape[0] != q->shape[1])
      return em_fail(EM_VALUE_ERROR, "[%s] sinks must have one entry per query head, shape (%lld,), "
                     "got %s", name, (long long)q->shape[1], shape_str(b1, s));
    if (!em_is_float(s->dtype))
      return em_fail(EM_TYPE_ERROR, "[%s] sinks must be floating point, got %s", name,
                     em_dtype_name(s->dtype));
  }
  if (masked) {
    int64_t want[4] = {q->shape[0], q->shape[1], q->shape[2], k->shape[2]};
    if (in[3]->ndim != 4 || memcmp(in[3]->shape, want, sizeof want) != 0)
      return em_fail(EM_VALUE_ERROR, "[%s] mask of shape %s does not match the scores' shape %s",
                     name, shape_str(b1, in[3]), em_fmt_shape(b2, SHAPE_BUF, 4, want));
    if (in[3]->dtype == EM_COMPLEX64)
      return em_fail(EM_TYPE_ERROR, "[%s] a complex mask is not supported", name);
  }
  int64_t params[2] = {ip[0] != 0, sinks};
  /* sinks are read in the compute type, like q, k and v */
  int dtypes[5] = {dtype, dtype, dtype, masked ? in[3]->dtype : dtype, dtype};
  if (sinks) dtypes[nin - 1] = dtype == EM_FLOAT64 ? EM_FLOAT64 : EM_FLOAT32;
  return node_with_casts(prim, dtype, 4, shape, nin, in, dtypes, sinks ? 2 : 1, params, 1, fp, stream);
}

static em_array* rule_softmax(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                              int nfp, const double* fp, int stream) {
  (void)nin; (void)nip; (void)ip; (void)nfp; (void)fp;
  char b1[SHAPE_BUF];
  em_array* x = in[0];
  if (x->ndim < 1)
    return em_fail(EM_VALUE_ERROR, "[%s] expected an array with at least 1 dimension, got shape %s",
                   em_prim_name(prim), shape_str(b1, x));
  int dtype = fast_dtype(prim, 1, in);
  if (dtype < 0) return NULL;
  int64_t shape[EM_MAX_NDIM];
  memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  if (prim == EM_P_LOGSUMEXP) shape[x->ndim - 1] = 1;
  return node_with_casts(prim, dtype, x->ndim, shape, 1, in, &dtype, 0, NULL, 0, NULL, stream);
}

/* ---- linear algebra ---- */

/* The dtype LAPACK runs in: float64 and complex64 stay, everything else is
 * computed (and returned) as float32. */
static int linalg_dtype(int dtype) {
  return (dtype == EM_FLOAT64 || dtype == EM_COMPLEX64) ? dtype : EM_FLOAT32;
}

static int check_matrices(int prim, const em_array* a, int square) {
  char b1[SHAPE_BUF];
  if (a->ndim < 2) {
    em_fail(EM_VALUE_ERROR, "[%s] expected an array with at least 2 dimensions, got shape %s",
            em_prim_name(prim), shape_str(b1, a));
    return 0;
  }
  if (square && a->shape[a->ndim - 1] != a->shape[a->ndim - 2]) {
    em_fail(EM_VALUE_ERROR, "[%s] expected square matrices in the last two axes, got shape %s",
            em_prim_name(prim), shape_str(b1, a));
    return 0;
  }
  return 1;
}

/* Rules for the one-input decompositions. */
static em_array* rule_decomposition(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                                    int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  em_array* a = in[0];
  int square = prim == EM_P_INV || prim == EM_P_CHOLESKY || prim == EM_P_EIGH || prim == EM_P_EIG;
  int want_ip = (prim == EM_P_CHOLESKY || prim == EM_P_SVD || prim == EM_P_EIG) ? 1
              : prim == EM_P_EIGH ? 2 : 0;
  if (nip != want_ip)
    return em_fail(EM_VALUE_ERROR, "[%s] expected %d parameters, got %d", em_prim_name(prim), want_ip, nip);
  if (!check_matrices(prim, a, square)) return NULL;
  int dtype = linalg_dtype(a->dtype);
  int nd = a->ndim;
  int64_t m = a->shape[nd - 2], n = a->shape[nd - 1], k = m < n ? m : n;
  int64_t shape[EM_MAX_NDIM];
  memcpy(shape, a->shape, sizeof(int64_t) * (size_t)nd);
  int out_nd = nd - 1, out_dtype = dtype;
  switch (prim) {
    case EM_P_INV: case EM_P_CHOLESKY: out_nd = nd; break;
    case EM_P_QR: shape[nd - 2] = m * k + k * n; break;
    case EM_P_SVD: shape[nd - 2] = ip[0] ? m * m + k + n * n : k; break;
    case EM_P_EIGH: shape[nd - 2] = ip[1] ? n + n * n : n; break;
    case EM_P_EIG: shape[nd - 2] = ip[0] ? n + n * n : n; out_dtype = EM_COMPLEX64; break;
    case EM_P_LU: shape[nd - 2] = m * n + k + m; break;
  }
  int64_t params[2] = {0, 0};
  for (int i = 0; i < nip; i++) params[i] = ip[i] != 0;
  return node_with_casts(prim, out_dtype, out_nd, shape, 1, in, &dtype, nip, params, 0, NULL, stream);
}

/* SOLVE and SOLVE_TRIANGULAR: a (..., n, n) and b (..., n, k), batch axes
 * broadcast (both inputs are broadcast to the output's batch shape). */
static em_array* rule_solve(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                            int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  em_array* a = in[0];
  em_array* b = in[1];
  char b1[SHAPE_BUF], b2[SHAPE_BUF];
  int want_ip = prim == EM_P_SOLVE_TRIANGULAR ? 1 : 0;
  if (nip != want_ip)
    return em_fail(EM_VALUE_ERROR, "[%s] expected %d parameters, got %d", em_prim_name(prim), want_ip, nip);
  if (!check_matrices(prim, a, 1)) return NULL;
  if (b->ndim < 2)
    return em_fail(EM_VALUE_ERROR, "[%s] expected b with at least 2 dimensions, got shape %s",
                   em_prim_name(prim), shape_str(b1, b));
  int64_t n = a->shape[a->ndim - 1];
  if (b->shape[b->ndim - 2] != n)
    return em_fail(EM_VALUE_ERROR, "[%s] a of shape %s and b of shape %s do not match: b needs %lld rows",
                   em_prim_name(prim), shape_str(b1, a), shape_str(b2, b), (long long)n);
  int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
  int64_t shape[EM_MAX_NDIM];
  for (int d = 0; d < nd - 2; d++) {
    int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
    int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
    if (sa != sb && sa != 1 && sb != 1)
      return em_fail(EM_VALUE_ERROR, "[%s] batch shapes of a %s and b %s cannot be broadcast",
                     em_prim_name(prim), shape_str(b1, a), shape_str(b2, b));
    shape[d] = sa == 1 ? sb : sa;
  }
  int dtype = linalg_dtype(em_promote_types(a->dtype, b->dtype));
  /* Broadcast both inputs to the output's batch shape. */
  em_array* full[2] = {NULL, NULL};
  em_array* out = NULL;
  for (int i = 0; i < 2; i++) {
    em_array* x = in[i];
    shape[nd - 2] = x->shape[x->ndim - 2];
    shape[nd - 1] = x->shape[x->ndim - 1];
    full[i] = em_op(EM_P_BROADCAST, 1, &x, nd, shape, 0, NULL, stream);
    if (!full[i]) goto done;
  }
  shape[nd - 2] = n;
  shape[nd - 1] = b->shape[b->ndim - 1];
  int dtypes[2] = {dtype, dtype};
  int64_t upper = nip ? ip[0] != 0 : 0;
  out = node_with_casts(prim, dtype, nd, shape, 2, full, dtypes, nip, &upper, 0, NULL, stream);
done:
  for (int i = 0; i < 2; i++)
    if (full[i]) em_release(full[i]);
  return out;
}

/* Convolution: checks ranks, channels, groups and parameters; the output's
 * spatial sizes follow from the padded, dilated input and kernel. */
static em_array* rule_conv(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                           int nfp, const double* fp, int stream) {
  (void)nin; (void)nfp; (void)fp;
  em_array* x = in[0];
  em_array* w = in[1];
  char b1[SHAPE_BUF], b2[SHAPE_BUF];
  int n = nip > 0 ? (int)ip[0] : -1;
  if (n < 1 || n > EM_MAX_NDIM - 2 || nip != 5 * n + 3)
    return em_fail(EM_VALUE_ERROR, "[conv] bad parameters");
  const int64_t *stride = ip + 1, *lo = ip + 1 + n, *hi = ip + 1 + 2 * n;
  const int64_t *kdil = ip + 1 + 3 * n, *idil = ip + 1 + 4 * n;
  int64_t groups = ip[5 * n + 1];
  if (x->ndim != n + 2 || w->ndim != n + 2)
    return em_fail(EM_VALUE_ERROR,
                   "[conv] a %d-D convolution needs input (N, ..., C_in) and weight "
                   "(C_out, ..., C_in) of %d dimensions, got shapes %s and %s",
                   n, n + 2, shape_str(b1, x), shape_str(b2, w));
  int dtype = em_promote_types(x->dtype, w->dtype);
  if (!em_is_float(dtype))
    return em_fail(EM_VALUE_ERROR, "[conv] only floating point types are supported, got %s and %s",
                   em_dtype_name(x->dtype), em_dtype_name(w->dtype));
  int64_t c_in = x->shape[n + 1], c_out = w->shape[0];
  if (groups < 1 || c_in % groups != 0 || c_out % groups != 0)
    return em_fail(EM_VALUE_ERROR,
                   "[conv] groups (%lld) must divide the input channels (%lld) and the output "
                   "channels (%lld)", (long long)groups, (long long)c_in, (long long)c_out);
  if (w->shape[n + 1] * groups != c_in)
    return em_fail(EM_VALUE_ERROR,
                   "[conv] input channels (%lld) must equal the weight's last axis (%lld) times "
                   "groups (%lld); shapes %s and %s", (long long)c_in, (long long)w->shape[n + 1],
                   (long long)groups, shape_str(b1, x), shape_str(b2, w));
  int64_t shape[EM_MAX_NDIM];
  shape[0] = x->shape[0];
  shape[n + 1] = c_out;
  for (int d = 0; d < n; d++) {
    if (stride[d] < 1 || kdil[d] < 1 || idil[d] < 1)
      return em_fail(EM_VALUE_ERROR,
                     "[conv] strides and dilations must be positive, got stride %lld, kernel "
                     "dilation %lld, input dilation %lld on spatial axis %d", (long long)stride[d],
                     (long long)kdil[d], (long long)idil[d], d);
    int64_t size = x->shape[d + 1], k = w->shape[d + 1];
    int64_t padded = (size > 0 ? (size - 1) * idil[d] + 1 : 0) + lo[d] + hi[d];
    int64_t span = k > 0 ? (k - 1) * kdil[d] + 1 : 0;
    if (k < 1 || padded < span)
      return em_fail(EM_VALUE_ERROR,
                     "[conv] the kernel (%lld with dilation %lld) is larger than the padded input "
                     "(%lld) on spatial axis %d; shapes %s and %s", (long long)k,
                     (long long)kdil[d], (long long)padded, d, shape_str(b1, x), shape_str(b2, w));
    shape[d + 1] = (padded - span) / stride[d] + 1;
  }
  int dtypes[2] = {dtype, dtype};
  return node_with_casts(prim, dtype, n + 2, shape, 2, in, dtypes, nip, ip, 0, NULL, stream);
}

/* ---- the table ---- */

static int em_kernel_view(em_array* out) {
  em_array* in = out->inputs[0];
  em_set_view(out, in, in->strides, in->offset);
  return EM_OK;
}

#define UNARY_ENTRY(NAME) {NAME, 1, rule_unary, em_kernel_unary}
#define BINARY_ENTRY(NAME) {NAME, 2, rule_binary, em_kernel_binary}

static const prim_entry table[EM_NUM_PRIMS] = {
    [EM_P_ARANGE] = {"arange", 0, rule_arange, em_kernel_arange},
    [EM_P_COPY] = {"copy", 1, rule_same, em_kernel_copy},
    [EM_P_ASTYPE] = {"astype", 1, rule_astype, em_kernel_copy},
    [EM_P_RESHAPE] = {"reshape", 1, rule_reshape, em_kernel_reshape},
    [EM_P_TRANSPOSE] = {"transpose", 1, rule_transpose, em_kernel_transpose},
    [EM_P_BROADCAST] = {"broadcast_to", 1, rule_broadcast, em_kernel_broadcast},
    [EM_P_SLICE] = {"slice", 1, rule_slice, em_kernel_slice},
    [EM_P_AS_STRIDED] = {"as_strided", 1, rule_as_strided, em_kernel_as_strided},
    [EM_P_CONCATENATE] = {"concatenate", -1, rule_concatenate, em_kernel_concatenate},
    [EM_P_SLICE_UPDATE] = {"slice_update", 2, rule_slice_update, em_kernel_slice_update},
    [EM_P_ABS] = UNARY_ENTRY("abs"),
    [EM_P_NEGATIVE] = UNARY_ENTRY("negative"),
    [EM_P_SIGN] = UNARY_ENTRY("sign"),
    [EM_P_SQRT] = UNARY_ENTRY("sqrt"),
    [EM_P_RSQRT] = UNARY_ENTRY("rsqrt"),
    [EM_P_EXP] = UNARY_ENTRY("exp"),
    [EM_P_EXPM1] = UNARY_ENTRY("expm1"),
    [EM_P_LOG] = UNARY_ENTRY("log"),
    [EM_P_LOG1P] = UNARY_ENTRY("log1p"),
    [EM_P_LOG2] = UNARY_ENTRY("log2"),
    [EM_P_LOG10] = UNARY_ENTRY("log10"),
    [EM_P_SIN] = UNARY_ENTRY("sin"),
    [EM_P_COS] = UNARY_ENTRY("cos"),
    [EM_P_TAN] = UNARY_ENTRY("tan"),
    [EM_P_ARCSIN] = UNARY_ENTRY("arcsin"),
    [EM_P_ARCCOS] = UNARY_ENTRY("arccos"),
    [EM_P_ARCTAN] = UNARY_ENTRY("arctan"),
    [EM_P_SINH] = UNARY_ENTRY("sinh"),
    [EM_P_COSH] = UNARY_ENTRY("cosh"),
    [EM_P_TANH] = UNARY_ENTRY("tanh"),
    [EM_P_ARCSINH] = UNARY_ENTRY("arcsinh"),
    [EM_P_ARCCOSH] = UNARY_ENTRY("arccosh"),
    [EM_P_ARCTANH] = UNARY_ENTRY("arctanh"),
    [EM_P_ERF] = UNARY_ENTRY("erf"),
    [EM_P_ERFINV] = UNARY_ENTRY("erfinv"),
    [EM_P_SIGMOID] = UNARY_ENTRY("sigmoid"),
    [EM_P_FLOOR] = UNARY_ENTRY("floor"),
    [EM_P_CEIL] = UNARY_ENTRY("ceil"),
    [EM_P_ROUND] = UNARY_ENTRY("round"),
    [EM_P_ISNAN] = UNARY_ENTRY("isnan"),
    [EM_P_ISINF] = UNARY_ENTRY("isinf"),
    [EM_P_LOGICAL_NOT] = UNARY_ENTRY("logical_not"),
    [EM_P_BITWISE_INVERT] = UNARY_ENTRY("bitwise_invert"),
    [EM_P_REAL] = UNARY_ENTRY("real"),
    [EM_P_IMAG] = UNARY_ENTRY("imag"),
    [EM_P_CONJUGATE] = UNARY_ENTRY("conjugate"),
    [EM_P_STOP_GRADIENT] = {"stop_gradient", 1, rule_same, em_kernel_view},
    [EM_P_ADD] = BINARY_ENTRY("add"),
    [EM_P_SUBTRACT] = BINARY_ENTRY("subtract"),
    [EM_P_MULTIPLY] = BINARY_ENTRY("multiply"),
    [EM_P_DIVIDE] = BINARY_ENTRY("divide"),
    [EM_P_FLOOR_DIVIDE] = BINARY_ENTRY("floor_divide"),
    [EM_P_REMAINDER] = BINARY_ENTRY("remainder"),
    [EM_P_POWER] = BINARY_ENTRY("power"),
    [EM_P_MAXIMUM] = BINARY_ENTRY("maximum"),
    [EM_P_MINIMUM] = BINARY_ENTRY("minimum"),
    [EM_P_ARCTAN2] = BINARY_ENTRY("arctan2"),
    [EM_P_LOGADDEXP] = BINARY_ENTRY("logaddexp"),
    [EM_P_EQUAL] = BINARY_ENTRY("equal"),
    [EM_P_NOT_EQUAL] = BINARY_ENTRY("not_equal"),
    [EM_P_LESS] = BINARY_ENTRY("less"),
    [EM_P_LESS_EQUAL] = BINARY_ENTRY("less_equal"),
    [EM_P_GREATER] = BINARY_ENTRY("greater"),
    [EM_P_GREATER_EQUAL] = BINARY_ENTRY("greater_equal"),
    [EM_P_LOGICAL_AND] = BINARY_ENTRY("logical_and"),
    [EM_P_LOGICAL_OR] = BINARY_ENTRY("logical_or"),
    [EM_P_BITWISE_AND] = BINARY_ENTRY("bitwise_and"),
    [EM_P_BITWISE_OR] = BINARY_ENTRY("bitwise_or"),
    [EM_P_BITWISE_XOR] = BINARY_ENTRY("bitwise_xor"),
    [EM_P_LEFT_SHIFT] = BINARY_ENTRY("left_shift"),
    [EM_P_RIGHT_SHIFT] = BINARY_ENTRY("right_shift"),
    [EM_P_WHERE] = {"where", 3, rule_where, em_kernel_where},
    [EM_P_SUM] = {"sum", 1, rule_reduce, em_kernel_reduce},
    [EM_P_PROD] = {"prod", 1, rule_reduce, em_kernel_reduce},
    [EM_P_MAX] = {"max", 1, rule_reduce, em_kernel_reduce},
    [EM_P_MIN] = {"min", 1, rule_reduce, em_kernel_reduce},
    [EM_P_ALL] = {"all", 1, rule_reduce, em_kernel_reduce},
    [EM_P_ANY] = {"any", 1, rule_reduce, em_kernel_reduce},
    [EM_P_ARGMAX] = {"argmax", 1, rule_argreduce, em_kernel_argreduce},
    [EM_P_ARGMIN] = {"argmin", 1, rule_argreduce, em_kernel_argreduce},
    [EM_P_CUMSUM] = {"cumsum", 1, rule_scan, em_kernel_scan},
    [EM_P_CUMPROD] = {"cumprod", 1, rule_scan, em_kernel_scan},
    [EM_P_CUMMAX] = {"cummax", 1, rule_scan, em_kernel_scan},
    [EM_P_CUMMIN] = {"cummin", 1, rule_scan, em_kernel_scan},
    [EM_P_LOGCUMSUMEXP] = {"logcumsumexp", 1, rule_scan, em_kernel_scan},
    [EM_P_TAKE] = {"take", 2, rule_take, em_kernel_take},
    [EM_P_TAKE_ALONG_AXIS] = {"take_along_axis", 2, rule_take_along_axis, em_kernel_take_along_axis},
    [EM_P_SCATTER_ALONG_AXIS] = {"scatter_along_axis", 3, rule_scatter_along_axis, em_kernel_scatter_along_axis},
    [EM_P_MATMUL] = {"matmul", 2, rule_matmul, em_kernel_matmul},
    [EM_P_IDENTITY] = {"identity", 1, rule_same, em_kernel_view},
    [EM_P_PLACEHOLDER] = {"placeholder", 0, rule_placeholder, em_kernel_placeholder},
    [EM_P_CUSTOM] = {"custom", -1, rule_custom, em_kernel_custom},
    [EM_P_FUSED] = {"fused", -1, em_rule_fused, em_kernel_fused},
    [EM_P_SORT] = {"sort", 1, rule_sort, em_kernel_sort},
    [EM_P_ARGSORT] = {"argsort", 1, rule_sort, em_kernel_sort},
    [EM_P_PARTITION] = {"partition", 1, rule_sort, em_kernel_sort},
    [EM_P_ARGPARTITION] = {"argpartition", 1, rule_sort, em_kernel_sort},
    [EM_P_FFT] = {"fft", 1, rule_fft, em_kernel_fft},
    [EM_P_THREEFRY] = {"threefry2x32", 2, rule_threefry, em_kernel_threefry},
    [EM_P_RANDOM] = {"random", 1, rule_random, em_kernel_random},
    [EM_P_BITCAST] = {"view", 1, rule_bitcast, em_kernel_bitcast},
    [EM_P_FMA] = {"fma", 3, rule_fma, em_kernel_fma},
    [EM_P_SOLVE] = {"solve", 2, rule_solve, em_kernel_solve},
    [EM_P_INV] = {"inv", 1, rule_decomposition, em_kernel_inv},
    [EM_P_SOLVE_TRIANGULAR] = {"solve_triangular", 2, rule_solve, em_kernel_solve_triangular},
    [EM_P_CHOLESKY] = {"cholesky", 1, rule_decomposition, em_kernel_cholesky},
    [EM_P_QR] = {"qr", 1, rule_decomposition, em_kernel_qr},
    [EM_P_SVD] = {"svd", 1, rule_decomposition, em_kernel_svd},
    [EM_P_EIGH] = {"eigh", 1, rule_decomposition, em_kernel_eigh},
    [EM_P_EIG] = {"eig", 1, rule_decomposition, em_kernel_eig},
    [EM_P_LU] = {"lu", 1, rule_decomposition, em_kernel_lu},
    [EM_P_CONV] = {"conv", 2, rule_conv, em_kernel_conv},
    [EM_P_RMS_NORM] = {"rms_norm", 2, rule_norm, em_kernel_norm},
    [EM_P_LAYER_NORM] = {"layer_norm", 3, rule_norm, em_kernel_norm},
    [EM_P_ROPE] = {"rope", 2, rule_rope, em_kernel_rope},
    [EM_P_SDPA] = {"scaled_dot_product_attention", -1, rule_sdpa, em_kernel_sdpa},
    [EM_P_SOFTMAX] = {"softmax", 1, rule_softmax, em_kernel_softmax},
    [EM_P_LOGSUMEXP] = {"logsumexp", 1, rule_softmax, em_kernel_softmax},
    [EM_P_QUANTIZE] = {"quantize", 1, em_rule_quantize, em_kernel_quantize},
    [EM_P_DEQUANTIZE] = {"dequantize", 3, em_rule_dequantize, em_kernel_dequantize},
    [EM_P_QUANTIZED_MATMUL] = {"quantized_matmul", 4, em_rule_quantized_matmul,
                               em_kernel_quantized_matmul},
};

static const prim_entry* entry(int prim) { return &table[prim]; }

/* ---- entry points ---- */

em_array* em_op(int prim, int nin, em_array** inputs, int nip, const int64_t* iparams,
                int nfp, const double* fparams, int stream) {
  if (prim < 0 || prim >= EM_NUM_PRIMS)
    return em_fail(EM_VALUE_ERROR, "[op] unknown primitive %d", prim);
  const prim_entry* e = &table[prim];
  if ((e->ninputs >= 0 && nin != e->ninputs) || (e->ninputs < 0 && nin < 1))
    return em_fail(EM_VALUE_ERROR, "[%s] expected %d inputs, got %d", e->name, e->ninputs, nin);
  for (int i = 0; i < nin; i++)
    if (!inputs[i]) return em_fail(EM_VALUE_ERROR, "[%s] input %d is missing", e->name, i);
  return e->rule(prim, nin, inputs, nip, iparams, nfp, fparams, stream);
}

em_array* em_unary(int prim, em_array* a, int stream) {
  return em_op(prim, 1, &a, 0, NULL, 0, NULL, stream);
}

em_array* em_binary(int prim, em_array* a, em_array* b, int stream) {
  em_array* in[2] = {a, b};
  return em_op(prim, 2, in, 0, NULL, 0, NULL, stream);
}
