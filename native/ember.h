/* ember.h: the public API of the ember engine.
 *
 * This header is read by cffi (build_native.py) and by the C sources, so it
 * holds only plain declarations: no macros, no includes.
 *
 * An em_array is a refcounted node of a lazy graph. It is either evaluated
 * (it owns a view onto a buffer) or pending (it names a primitive, the
 * parameters of that primitive and its input nodes). Creating a node infers
 * its shape and dtype at once; a bad call returns NULL and leaves an error
 * (kind + message) that em_error_kind / em_error_message report.
 */

typedef struct em_array em_array;

/* Dtypes, in the order mlx.core numbers them. */
enum em_dtype {
  EM_BOOL = 0, EM_UINT8, EM_UINT16, EM_UINT32, EM_UINT64,
  EM_INT8, EM_INT16, EM_INT32, EM_INT64,
  EM_FLOAT16, EM_FLOAT32, EM_FLOAT64, EM_BFLOAT16, EM_COMPLEX64,
  EM_NUM_DTYPES
};

/* Error kinds, mapped to Python exceptions by core/_ffi.py. */
enum em_error {
  EM_OK = 0, EM_VALUE_ERROR, EM_TYPE_ERROR, EM_INDEX_ERROR,
  EM_MEMORY_ERROR, EM_RUNTIME_ERROR
};

/* Primitives. Each has one C entry (shape rule + kernel, native/prims.c)
 * and one Python entry (core/primitives.py). */
enum em_prim {
  /* sources */
  EM_P_ARANGE = 0,
  /* layout: views where the input's strides allow, copies otherwise */
  EM_P_COPY, EM_P_ASTYPE, EM_P_RESHAPE, EM_P_TRANSPOSE, EM_P_BROADCAST,
  EM_P_SLICE, EM_P_AS_STRIDED, EM_P_CONCATENATE, EM_P_SLICE_UPDATE,
  /* unary elementwise */
  EM_P_ABS, EM_P_NEGATIVE, EM_P_SIGN, EM_P_SQRT, EM_P_RSQRT, EM_P_EXP,
  EM_P_EXPM1, EM_P_LOG, EM_P_LOG1P, EM_P_LOG2, EM_P_LOG10,
  EM_P_SIN, EM_P_COS, EM_P_TAN, EM_P_ARCSIN, EM_P_ARCCOS, EM_P_ARCTAN,
  EM_P_SINH, EM_P_COSH, EM_P_TANH, EM_P_ARCSINH, EM_P_ARCCOSH, EM_P_ARCTANH,
  EM_P_ERF, EM_P_ERFINV, EM_P_SIGMOID, EM_P_FLOOR, EM_P_CEIL, EM_P_ROUND,
  EM_P_ISNAN, EM_P_ISINF, EM_P_LOGICAL_NOT, EM_P_BITWISE_INVERT,
  EM_P_REAL, EM_P_IMAG, EM_P_CONJUGATE, EM_P_STOP_GRADIENT,
  /* binary elementwise (broadcasting, promoting) */
  EM_P_ADD, EM_P_SUBTRACT, EM_P_MULTIPLY, EM_P_DIVIDE, EM_P_FLOOR_DIVIDE,
  EM_P_REMAINDER, EM_P_POWER, EM_P_MAXIMUM, EM_P_MINIMUM, EM_P_ARCTAN2,
  EM_P_LOGADDEXP,
  EM_P_EQUAL, EM_P_NOT_EQUAL, EM_P_LESS, EM_P_LESS_EQUAL, EM_P_GREATER,
  EM_P_GREATER_EQUAL,
  EM_P_LOGICAL_AND, EM_P_LOGICAL_OR,
  EM_P_BITWISE_AND, EM_P_BITWISE_OR, EM_P_BITWISE_XOR,
  EM_P_LEFT_SHIFT, EM_P_RIGHT_SHIFT,
  /* ternary */
  EM_P_WHERE,
  /* reductions over a set of axes (output keeps reduced axes as size 1) */
  EM_P_SUM, EM_P_PROD, EM_P_MAX, EM_P_MIN, EM_P_ALL, EM_P_ANY,
  /* arg-reductions over one axis (output keeps it as size 1) */
  EM_P_ARGMAX, EM_P_ARGMIN,
  /* scans along one axis */
  EM_P_CUMSUM, EM_P_CUMPROD, EM_P_CUMMAX, EM_P_CUMMIN, EM_P_LOGCUMSUMEXP,
  /* indexing */
  EM_P_TAKE, EM_P_TAKE_ALONG_AXIS, EM_P_SCATTER_ALONG_AXIS,
  /* products */
  EM_P_MATMUL,
  /* transforms: a traced input (a zero-copy view) and a value-less stand-in */
  EM_P_IDENTITY, EM_P_PLACEHOLDER,
  /* custom_function: inputs are the function's outputs then its primals */
  EM_P_CUSTOM,
  /* compile: a chain of elementwise ops run in one pass (kernels/fused.c) */
  EM_P_FUSED,
  /* sorting along one axis */
  EM_P_SORT, EM_P_ARGSORT, EM_P_PARTITION, EM_P_ARGPARTITION,
  /* discrete Fourier transform along one axis */
  EM_P_FFT,
  /* random numbers (Threefry-2x32 keys), bit casts, fused multiply-add */
  EM_P_THREEFRY, EM_P_RANDOM, EM_P_BITCAST, EM_P_FMA,
  /* linear algebra (LAPACK); decompositions pack their results in one output */
  EM_P_SOLVE, EM_P_INV, EM_P_SOLVE_TRIANGULAR, EM_P_CHOLESKY, EM_P_QR, EM_P_SVD,
  EM_P_EIGH, EM_P_EIG, EM_P_LU,
  /* convolution over n spatial axes, channels last (kernels/conv.c) */
  EM_P_CONV,
  /* ember.core.fast: fused normalisations, rotary embedding, attention */
  EM_P_RMS_NORM, EM_P_LAYER_NORM, EM_P_ROPE, EM_P_SDPA,
  /* one-pass softmax and logsumexp over the last axis */
  EM_P_SOFTMAX, EM_P_LOGSUMEXP,
  /* affine quantization in mlx's packed layout (kernels/quantize.c) */
  EM_P_QUANTIZE, EM_P_DEQUANTIZE, EM_P_QUANTIZED_MATMUL,
  EM_NUM_PRIMS
};

/* Scatter modes of EM_P_SCATTER_ALONG_AXIS (iparam after the axis). */
enum em_scatter_mode {
  EM_SCATTER_SET = 0, EM_SCATTER_ADD, EM_SCATTER_MULTIPLY, EM_SCATTER_DIVIDE,
  EM_SCATTER_MAXIMUM, EM_SCATTER_MINIMUM
};

/* Kinds of EM_P_FFT (iparam after the axis): complex to complex forward
 * (exp(-2 pi i jk/n)) and inverse (exp(+2 pi i jk/n), unscaled), real to
 * complex (n//2+1 outputs), complex (n//2+1 inputs) to real. */
enum em_fft_kind {
  EM_FFT_FORWARD = 0, EM_FFT_INVERSE, EM_FFT_REAL_FORWARD, EM_FFT_REAL_INVERSE
};

/* What EM_P_RANDOM returns for each key (iparam 0). */
enum em_random_kind {
  EM_RANDOM_BITS = 0, EM_RANDOM_UNIFORM, EM_RANDOM_NORMAL, EM_RANDOM_PERMUTATION
};

/* errors */
int em_error_kind(void);
const char* em_error_message(void);
void em_clear_error(void);

/* dtypes */
int em_dtype_size(int dtype);
const char* em_dtype_name(int dtype);
int em_promote_types(int a, int b);

/* node lifetime */
void em_retain(em_array* a);
void em_release(em_array* a);
int em_refcount(em_array* a);

/* node inspection */
int em_ndim(em_array* a);
const int64_t* em_shape(em_array* a);
const int64_t* em_strides(em_array* a);   /* elements; valid once evaluated */
int64_t em_size(em_array* a);
int em_dtype(em_array* a);
int em_stream(em_array* a);
int em_is_evaluated(em_array* a);
void* em_data(em_array* a);               /* first element; evaluated only */
int em_is_row_contiguous(em_array* a);
int em_prim_of(em_array* a);              /* -1 for a leaf */
int em_num_inputs(em_array* a);
em_array* em_input(em_array* a, int i);   /* borrowed */
int em_num_iparams(em_array* a);
const int64_t* em_iparams(em_array* a);
int em_num_fparams(em_array* a);
const double* em_fparams(em_array* a);
const char* em_prim_name(int prim);

/* sources: each returns a new reference, or NULL with an error set */
em_array* em_from_data(const void* data, int dtype, int ndim,
                       const int64_t* shape, const int64_t* byte_strides);
/* An evaluated, row-contiguous array whose contents are unspecified until
 * the caller writes its buffer (em_data) before sharing it: ember.checkpoint
 * reads files straight into it. */
em_array* em_uninitialized(int dtype, int ndim, const int64_t* shape);
em_array* em_scalar_f64(double v, int dtype);
em_array* em_scalar_i64(int64_t v, int dtype);
em_array* em_scalar_u64(uint64_t v, int dtype);
em_array* em_scalar_c64(double re, double im);

/* Build a node. iparams/fparams are the primitive's parameters
 * (axes, shapes, dtypes, scalars); their meaning is per primitive and
 * documented in native/prims.c. */
em_array* em_op(int prim, int nin, em_array** inputs, int nip,
                const int64_t* iparams, int nfp, const double* fparams,
                int stream);
em_array* em_unary(int prim, em_array* a, int stream);
em_array* em_binary(int prim, em_array* a, em_array* b, int stream);

/* evaluation: 0 on success, else an error kind with the message set */
int em_eval(int n, em_array** arrays);
/* Transforms call em_keep_graph(1) before tracing and em_keep_graph(0) after:
 * in between, evaluated nodes keep their inputs. Returns the new depth. */
int em_keep_graph(int on);

/* compiled programs (program.c): a traced graph replayed over new inputs.
 * Slots: the inputs, then the constants, then each instruction's result;
 * in_slots/ips/fps hold every instruction's entries one after another. */
typedef struct em_program em_program;
em_program* em_program_new(int n_inputs, int n_consts, em_array** consts, int n_instr,
                           const int* prims, const int* streams, const int* nins,
                           const int* in_slots, const int* nips, const int64_t* ips,
                           const int* nfps, const double* fps, int n_outputs,
                           const int* out_slots);
/* Builds the program's nodes over inputs; writes new references to outputs. */
int em_program_run(em_program* p, em_array** inputs, em_array** outputs);
int em_program_num_outputs(em_program* p);
/* A compiled call's cache key for its input arrays, in one crossing: per
 * array its dtype and ndim, then (unless shapeless) its shape, written to
 * out while they fit in cap entries. Returns the entries the key needs. */
int64_t em_signature(int n, em_array** arrays, int shapeless, int64_t* out, int64_t cap);
void em_program_free(em_program* p);
/* compile()'s generated fused kernels (kernels/fused.c, core/_codegen.py).
 * em_ew_expr_of: the C expression that the elementwise loop of prim over
 * nargs operands of compute class cls computes per element, with its operand
 * and result types; returns the result's class, -1 where the loop is not one
 * expression. em_fused_register: makes a generated kernel (a pointer to
 * void(int64_t lo, int64_t hi, const void* const* in, void* const* out))
 * known to FUSED programs; returns its index, -1 when the table is full. */
int em_ew_expr_of(int prim, int nargs, int cls, const char** expr, const char** in_type,
                  const char** out_type);
int em_fused_register(void* fn);
/* For tests: caps the vectorised quicksort's recursion depth (kernels/
 * sort_avx512.c), so that its fallback, the radix sort, runs on ordinary
 * inputs; a negative cap restores the default. */
void em_set_sort_depth_limit(int cap);
/* The float32 product (kernels/sgemm.c): whether ember's own AVX-512 kernel
 * can run on this CPU, and, for tests and benchmarks, a switch between it
 * (1) and OpenBLAS's sgemm (0); -1 restores the default (ember's where it
 * can run, unless EMBER_SGEMM=openblas). Returns whether ember's now runs. */
int em_sgemm_own_available(void);
int em_set_sgemm_own(int own);

/* memory */
size_t em_get_active_memory(void);
size_t em_get_peak_memory(void);
void em_reset_peak_memory(void);
size_t em_get_cache_memory(void);
size_t em_set_memory_limit(size_t limit);
size_t em_set_cache_limit(size_t limit);
void em_clear_cache(void);

/* threads */
int em_num_threads(void);
void em_set_num_threads(int n);

/* checksums: the 4-lane CRC-32C ember.checkpoint stores per array
 * (native/checksum.c); portable=1 skips the SSE4.2 instruction */
uint32_t em_checksum32(const void* data, size_t nbytes, int portable);
