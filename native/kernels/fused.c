/* fused.c: a chain of elementwise ops in one pass over memory.
 *
 * compile() replaces groups of unary, binary, where and astype nodes of one
 * shape by a FUSED node. Its parameters are a small program; the kernel runs
 * the whole program over one chunk of elements at a time, so intermediates
 * live in per-thread chunk buffers (in cache) instead of full arrays.
 *
 * Parameters (ip):
 *   out dtype,
 *   n_loads, then (input index, class) per load: input arrays read into a
 *     slot in a compute class (broadcast to the output's shape),
 *   n_instr, then (prim, out class, a, b, c) per instruction: operands are
 *     slots (loads first, then each instruction's result), -1 when unused,
 *   n_outputs, then the slot of each output (all of the out dtype),
 *   optionally a generated kernel: its index (em_fused_register), then per
 *   load its kind, 1 (an input of the output's shape), 0 (a one-element
 *   input) or R >= 2 (a row of R elements, broadcast along the leading
 *   axes), and the dtype the kernel reads it as.
 * With one output, the node's shape is the broadcast S of the inputs' shapes;
 * with k > 1 outputs it is (k, *S), output i at index i of the first axis (a
 * chain whose intermediates are also needed elsewhere, like an optimizer's
 * new moments and new parameters, is still one pass).
 *
 * Two ways to run a program:
 * - Generated: compile() writes the chain as one C loop, every op an
 *   expression on values in registers, compiles it with the system's C
 *   compiler and registers the function (core/_codegen.py). A loop that reads
 *   every input and writes every output in the same pass keeps all memory
 *   streams going at once, which the interpreter below cannot (adamw's
 *   pattern ran at about half the speed here). It runs when the inputs are
 *   as the generator assumed: each one row-contiguous, of the output's shape,
 *   a single element or a row broadcast along the leading axes, and of the
 *   dtype the kernel reads; else the interpreter runs. The loop's
 *   expressions are the interpreter's own (the records of em_ew_exprs,
 *   elementwise.h), so both give the same bits.
 * - Interpreted: the chunk loop below.
 *
 * Two things keep a chunk's work close to the memory traffic it must do:
 * - Intermediates share buffers: a result takes a buffer freed by a value
 *   that is no longer read (liveness, decided once when decoding), so an
 *   optimizer's chain of sixteen ops touches a few buffers that stay in L1
 *   instead of sixteen that spill to L2.
 * - The next chunk's cache lines (every input read in place, every output)
 *   are prefetched a few lines after each instruction. Issued in one burst
 *   they stall on the core's few outstanding-miss slots; issued without them
 *   each op that reads an input from memory waits on that one stream (adamw
 *   over 10M parameters, one thread: 34 ms with a burst, 21 ms spread).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "elementwise.h"

#define FUSED_CHUNK EM_CHUNK /* em_load_broadcast fills this many */
#define FUSED_MAX_SLOTS 96
#define FUSED_MAX_STREAMS (EM_ITER_MAX_OPS - 1 + FUSED_MAX_SLOTS)
/* Bytes between slot buffers: a chunk plus a little, so that the buffers do not
 * all start at the same offset modulo 4 KB (which makes loads stall on stores
 * to other buffers: 4K aliasing). */
#define SLOT_BYTES (FUSED_CHUNK * 8 + 320)

typedef struct {
  int prim, out_cls, a, b, c;
  em_ew_fn fn;
} instr;

typedef struct {
  int out_dtype, n_loads, n_instr, n_slots, n_outputs;
  int load_input[EM_ITER_MAX_OPS - 1];
  int out_slot[FUSED_MAX_SLOTS];
  int is_output[FUSED_MAX_SLOTS];     /* 1 + output index, or 0 */
  int slot_cls[FUSED_MAX_SLOTS];
  int slot_buf[FUSED_MAX_SLOTS];      /* scratch buffer holding the slot's chunk */
  int n_bufs;
  int kernel;                         /* generated kernel index, or -1 */
  int64_t load_kind[EM_ITER_MAX_OPS - 1]; /* per load: 1 output's shape, 0 one element, R a row */
  int load_dtype[EM_ITER_MAX_OPS - 1];    /* the dtype the generated kernel reads */
  instr code[FUSED_MAX_SLOTS];
} program;

/* ---- generated kernels ---- */

/* A generated kernel: elements [lo, hi) of each output, from a pointer per
 * load (to its element 0: of a full input, of a row, or the one element). */
typedef void (*fused_kernel_fn)(int64_t lo, int64_t hi, const void* const* in, void* const* out);

#define MAX_KERNELS 4096
static fused_kernel_fn kernels[MAX_KERNELS];
static _Atomic int n_kernels;
static pthread_mutex_t kernels_lock = PTHREAD_MUTEX_INITIALIZER;

int em_fused_register(void* fn) {
  if (!fn) return -1;
  pthread_mutex_lock(&kernels_lock);
  int k = atomic_load(&n_kernels);
  if (k < MAX_KERNELS) {
    kernels[k] = (fused_kernel_fn)(uintptr_t)fn;
    atomic_store(&n_kernels, k + 1);
  } else {
    k = -1;
  }
  pthread_mutex_unlock(&kernels_lock);
  return k;
}

/* The section of expression records that the loop macros fill (the linker
 * names its bounds). */
extern em_ew_expr __start_em_ew_exprs[], __stop_em_ew_exprs[];

int em_ew_expr_of(int prim, int nargs, int cls, const char** expr, const char** in_type,
                  const char** out_type) {
  int out_cls = cls;
  em_ew_fn fn = NULL;
  if (cls < 0 || cls >= CL_COUNT) return -1;
  if (nargs == 1) fn = em_unary_loop(prim, cls, &out_cls);
  else if (nargs == 2) fn = em_binary_loop(prim, cls, &out_cls);
  else if (nargs == 3 && prim == EM_P_WHERE) fn = em_where_loop(cls);
  if (!fn) return -1;
  for (const em_ew_expr* r = __start_em_ew_exprs; r < __stop_em_ew_exprs; r++)
    if (r->fn == fn) {
      *expr = r->expr;
      *in_type = r->in_type;
      *out_type = r->out_type;
      return out_cls;
    }
  return -1; /* a loop not written as one expression (power's) */
}

/* Gives each slot a scratch buffer: a load its own, an instruction's result
 * one that no later instruction reads through another slot. Outputs keep
 * theirs to the end (they are stored after the last instruction). A result
 * never shares its operands' buffer, so loops need not support aliasing. */
static void assign_buffers(program* p) {
  int last_use[FUSED_MAX_SLOTS], owner[FUSED_MAX_SLOTS];
  for (int s = 0; s < p->n_slots; s++) last_use[s] = p->is_output[s] ? p->n_instr : -1;
  for (int i = 0; i < p->n_instr; i++) {
    const instr* in = &p->code[i];
    int ops[3] = {in->a, in->b, in->c};
    for (int k = 0; k < 3; k++)
      if (ops[k] >= 0 && last_use[ops[k]] < i) last_use[ops[k]] = i;
  }
  p->n_bufs = p->n_loads;
  for (int k = 0; k < p->n_loads; k++) p->slot_buf[k] = k;
  for (int i = 0; i < p->n_instr; i++) {
    int s = p->n_loads + i, buf = -1;
    for (int b = p->n_loads; b < p->n_bufs && buf < 0; b++)
      if (last_use[owner[b]] < i) buf = b;
    if (buf < 0) buf = p->n_bufs++;
    owner[buf] = s;
    p->slot_buf[s] = buf;
  }
}

/* Decodes and checks the program; fills slot classes and loop functions. */
static int decode(const int64_t* ip, int nip, int nin, program* p) {
  int at = 0;
#define NEXT() (at < nip ? ip[at++] : (int64_t)-999)
  p->out_dtype = (int)NEXT();
  p->n_loads = (int)NEXT();
  if (p->out_dtype < 0 || p->out_dtype >= EM_NUM_DTYPES || p->n_loads < 1 ||
      p->n_loads > EM_ITER_MAX_OPS - 1)
    return 0;
  for (int k = 0; k < p->n_loads; k++) {
    int64_t input = NEXT(), cls = NEXT();
    if (input < 0 || input >= nin || cls < 0 || cls >= CL_COUNT) return 0;
    p->load_input[k] = (int)input;
    p->slot_cls[k] = (int)cls;
  }
  p->n_instr = (int)NEXT();
  if (p->n_instr < 1 || p->n_loads + p->n_instr > FUSED_MAX_SLOTS) return 0;
  for (int i = 0; i < p->n_instr; i++) {
    instr* in = &p->code[i];
    in->prim = (int)NEXT();
    in->out_cls = (int)NEXT();
    in->a = (int)NEXT();
    in->b = (int)NEXT();
    in->c = (int)NEXT();
    int slot = p->n_loads + i;
    if (in->out_cls < 0 || in->out_cls >= CL_COUNT) return 0;
    if (in->a < 0 || in->a >= slot || in->b >= slot || in->c >= slot) return 0;
    int cls = p->slot_cls[in->a], out_cls = -1;
    if (in->prim == EM_P_ASTYPE) {
      in->fn = NULL;
      out_cls = in->out_cls;
    } else if (in->prim == EM_P_WHERE) {
      if (in->b < 0 || in->c < 0 || cls != CL_BOOL) return 0;
      cls = p->slot_cls[in->b];
      if (p->slot_cls[in->c] != cls) return 0;
      in->fn = em_where_loop(cls);
      out_cls = cls;
    } else if (in->b >= 0) {
      if (p->slot_cls[in->b] != cls) return 0;
      in->fn = em_binary_loop(in->prim, cls, &out_cls);
    } else {
      in->fn = em_unary_loop(in->prim, cls, &out_cls);
    }
    if (in->prim != EM_P_ASTYPE && !in->fn) return 0;
    if (out_cls != in->out_cls) return 0;
    p->slot_cls[slot] = out_cls;
  }
  p->n_slots = p->n_loads + p->n_instr;
  p->n_outputs = (int)NEXT();
  if (p->n_outputs < 1 || p->n_outputs > p->n_instr) return 0;
  memset(p->is_output, 0, sizeof p->is_output);
  for (int k = 0; k < p->n_outputs; k++) {
    int64_t slot = NEXT();
    if (slot < p->n_loads || slot >= p->n_slots || p->is_output[slot]) return 0;
    int cls = p->slot_cls[slot];
    if (cls != em_class_of(p->out_dtype) && !(cls == CL_BOOL && p->out_dtype == EM_BOOL))
      return 0;
    p->out_slot[k] = (int)slot;
    p->is_output[slot] = k + 1;
  }
  p->kernel = -1;
  if (at < nip) {
    int64_t k = NEXT();
    if (k < 0 || k >= atomic_load(&n_kernels)) return 0;
    p->kernel = (int)k;
    for (int j = 0; j < p->n_loads; j++) {
      int64_t kind = NEXT(), dtype = NEXT();
      if (kind < 0 || dtype < 0 || dtype >= EM_NUM_DTYPES) return 0;
      p->load_kind[j] = kind;
      p->load_dtype[j] = (int)dtype;
    }
  }
#undef NEXT
  if (at != nip) return 0;
  assign_buffers(p);
  return 1;
}

typedef struct {
  const program* prog;
  em_iter it;
  const char* in_base[EM_ITER_MAX_OPS - 1];
  int in_dtype[EM_ITER_MAX_OPS - 1];
  char* out_base;
  int64_t out_size;           /* elements of one output */
  int rows_donated;           /* the outputs' buffer is the inputs' (see em_kernel_fused) */
  int64_t inner, chunks_per_run;
} fused_job;

/* Asks for the next chunk's cache lines (of each input read in place, and of
 * each output) while this chunk computes, a few after each instruction (see
 * the top of the file). */
typedef struct {
  const char* at[FUSED_MAX_STREAMS];
  int64_t lines[FUSED_MAX_STREAMS];
  int writes[FUSED_MAX_STREAMS];
  int count, stream;         /* streams, and the one whose line comes next */
  int64_t line, max_lines;   /* the line of each stream that comes next, and the most */
  int64_t per_instr;
} prefetcher;

static void prefetch_add(prefetcher* pf, const char* at, size_t bytes, int writes) {
  int64_t lines = (int64_t)((bytes + 63) / 64);
  pf->at[pf->count] = at;
  pf->lines[pf->count] = lines;
  pf->writes[pf->count++] = writes;
  if (lines > pf->max_lines) pf->max_lines = lines;
}

/* The next per_instr lines, taking the streams in turn. */
static inline void prefetch_some(prefetcher* pf) {
  for (int64_t q = 0; q < pf->per_instr && pf->line < pf->max_lines; q++) {
    int k = pf->stream;
    if (pf->line < pf->lines[k]) {
      const char* at = pf->at[k] + pf->line * 64;
      if (pf->writes[k]) __builtin_prefetch(at, 1, 3);
      else __builtin_prefetch(at, 0, 3);
    }
    if (++pf->stream == pf->count) {
      pf->stream = 0;
      pf->line++;
    }
  }
}

/* The calling thread's scratch buffers, kept from call to call instead of a
 * malloc and free per call (past glibc's mmap threshold, 128 KB or a chain
 * of about 15 slots, that can map and fault in fresh pages each time). At
 * most FUSED_MAX_SLOTS * SLOT_BYTES (800 KB) per thread, held for the
 * thread's life (the pool's threads live as long as the process). */
static char* thread_scratch(size_t bytes) {
  static _Thread_local char* buffer;
  static _Thread_local size_t size;
  if (bytes > size) {
    free(buffer);
    buffer = aligned_alloc(64, bytes);
    if (!buffer) abort(); /* under a megabyte; nothing sensible to do without it */
    size = bytes;
  }
  return buffer;
}

static void fused_range(void* ctx, int64_t lo, int64_t hi) {
  fused_job* job = ctx;
  const program* p = job->prog;
  char* scratch = thread_scratch((size_t)p->n_bufs * SLOT_BYTES);
  const void* slot[FUSED_MAX_SLOTS];
  /* A broadcast (stride 0) input fills its chunk once per source element. */
  const char* filled_from[EM_ITER_MAX_OPS - 1] = {NULL};
  int64_t offsets[EM_ITER_MAX_OPS];
  int last = job->it.ndim - 1;
  int64_t ostride = job->it.strides[0][last];
  size_t out_item = (size_t)em_dtype_size(p->out_dtype);
  /* Results of a class stored as the out dtype go straight into the output. */
  int direct = ostride == 1 && p->out_dtype == em_class_dtype(em_class_of(p->out_dtype)) &&
               !job->rows_donated;
  for (int64_t item = lo; item < hi; item++) {
    int64_t run = item / job->chunks_per_run, chunk = item % job->chunks_per_run;
    em_iter_offsets(&job->it, run, offsets);
    int64_t start = chunk * FUSED_CHUNK;
    int64_t n = job->inner - start < FUSED_CHUNK ? job->inner - start : FUSED_CHUNK;
    char* dst = job->out_base + (offsets[0] + start * ostride) * (int64_t)out_item;
    prefetcher pf;  /* not zero-initialised: its arrays fill as streams are added */
    pf.count = pf.stream = 0;
    pf.line = pf.max_lines = 0;
    int ahead = start + 2 * FUSED_CHUNK <= job->inner;
    for (int k = 0; k < p->n_loads; k++) {
      int input = p->load_input[k], cls = p->slot_cls[k], dt = job->in_dtype[input];
      int64_t stride = job->it.strides[input + 1][last];
      const char* src = job->in_base[input] + (offsets[input + 1] + start * stride) * em_dtype_size(dt);
      char* buf = scratch + (size_t)p->slot_buf[k] * SLOT_BYTES;
      if (stride == 1 && ahead)
        prefetch_add(&pf, src + FUSED_CHUNK * em_dtype_size(dt), (size_t)n * em_dtype_size(dt), 0);
      if (stride == 1 && dt == em_class_dtype(cls)) {
        slot[k] = src;
      } else if (stride == 0) {
        if (filled_from[k] != src) {
          em_load_broadcast(buf, cls, src, dt, job->inner);
          filled_from[k] = src;
        }
        slot[k] = buf;
      } else {
        em_load(buf, cls, src, dt, stride, n);
        slot[k] = buf;
      }
    }
    if (ostride == 1 && ahead)
      for (int k = 0; k < p->n_outputs; k++)
        prefetch_add(&pf, dst + ((size_t)k * (size_t)job->out_size + FUSED_CHUNK) * out_item,
                     (size_t)n * out_item, 1);
    pf.per_instr = (pf.max_lines * pf.count + p->n_instr - 1) / p->n_instr;
    for (int i = 0; i < p->n_instr; i++) {
      const instr* in = &p->code[i];
      int s = p->n_loads + i, k = p->is_output[s] - 1;
      char* buf = (k >= 0 && direct && p->slot_cls[s] != CL_BOOL)
                      ? dst + (size_t)k * (size_t)job->out_size * out_item
                      : scratch + (size_t)p->slot_buf[s] * SLOT_BYTES;
      if (in->prim == EM_P_ASTYPE) {
        em_load(buf, in->out_cls, slot[in->a], em_class_dtype(p->slot_cls[in->a]), 1, n);
      } else {
        const void* args[3] = {slot[in->a], in->b >= 0 ? slot[in->b] : NULL,
                               in->c >= 0 ? slot[in->c] : NULL};
        in->fn(n, args, buf);
      }
      slot[s] = buf;
      if (pf.count) prefetch_some(&pf);
    }
    for (int k = 0; k < p->n_outputs; k++) {
      int s = p->out_slot[k];
      char* out_k = dst + (size_t)k * (size_t)job->out_size * out_item;
      if (slot[s] != out_k)
        em_store(out_k, p->out_dtype, ostride, slot[s], p->slot_cls[s], n);
    }
  }
}

typedef struct {
  fused_kernel_fn fn;
  const void* in[EM_ITER_MAX_OPS - 1];
  void* out[FUSED_MAX_SLOTS];
} generated_job;

static void generated_range(void* ctx, int64_t lo, int64_t hi) {
  generated_job* job = ctx;
  job->fn(lo, hi, job->in, job->out);
}

/* Runs the generated kernel when the operands are laid out as it assumes;
 * 0 when they are not (the interpreter runs instead). */
static int run_generated(const program* p, em_array* out) {
  int lead = p->n_outputs > 1;
  if (!em_row_contiguous(out->ndim, out->shape, out->strides)) return 0;
  /* results stored as they are computed: the out dtype is each one's class dtype */
  for (int k = 0; k < p->n_outputs; k++)
    if (em_class_dtype(p->slot_cls[p->out_slot[k]]) != p->out_dtype) return 0;
  generated_job job;
  job.fn = kernels[p->kernel];
  for (int k = 0; k < p->n_loads; k++) {
    em_array* in = out->inputs[p->load_input[k]];
    if (in->dtype != p->load_dtype[k]) return 0;
    int64_t kind = p->load_kind[k];
    if (kind == 0) {
      if (in->size != 1) return 0;
    } else if (!em_row_contiguous(in->ndim, in->shape, in->strides)) {
      return 0;
    } else if (kind == 1) {
      if (in->ndim != out->ndim - lead ||
          memcmp(in->shape, out->shape + lead, sizeof(int64_t) * (size_t)in->ndim) != 0)
        return 0;
    } else {
      /* a row: the output's trailing axes, after leading ones of size 1 */
      int skip = 0;
      while (skip < in->ndim && in->shape[skip] == 1) skip++;
      int nd = in->ndim - skip;
      if (in->size != kind || nd > out->ndim - lead ||
          memcmp(in->shape + skip, out->shape + out->ndim - nd, sizeof(int64_t) * (size_t)nd) != 0)
        return 0;
    }
    job.in[k] = (const char*)in->buf->data + in->offset * em_dtype_size(in->dtype);
  }
  int64_t per_output = lead ? out->size / out->shape[0] : out->size;
  size_t item = (size_t)em_dtype_size(out->dtype);
  char* base = (char*)out->buf->data + out->offset * (int64_t)item;
  for (int k = 0; k < p->n_outputs; k++) job.out[k] = base + (size_t)k * (size_t)per_output * item;
  em_parallel_for_balanced(per_output, 16384, generated_range, &job);
  return 1;
}

int em_kernel_fused(em_array* out) {
  program p;
  if (!decode(out->ip, out->nip, out->ninputs, &p)) {
    em_fail(EM_VALUE_ERROR, "[fused] invalid program");
    return EM_VALUE_ERROR;
  }
  /* Several outputs can take over the buffer of the inputs they replace (an
   * optimizer's p, m and v, each a row of the previous step's result): each
   * element is read before it is written, in a generated loop's iteration,
   * or in the interpreter's chunk when outputs are stored after the chunk's
   * last instruction instead of as they are computed. */
  int rows_donated = 0;
  int status = p.n_outputs > 1 ? em_alloc_output_stacked_donated(out, p.n_outputs, &rows_donated)
                               : em_alloc_output_donated(out);
  if (status != EM_OK || out->size == 0) return status;
  if (p.kernel >= 0 && run_generated(&p, out)) return EM_OK;
  fused_job job;
  job.prog = &p;
  job.rows_donated = rows_donated;
  int64_t bstrides[EM_ITER_MAX_OPS - 1][EM_MAX_NDIM];
  const int64_t* strides[EM_ITER_MAX_OPS];
  int lead = p.n_outputs > 1;  /* the outputs' axis, outside the iteration */
  strides[0] = out->strides + lead;
  for (int k = 0; k < out->ninputs; k++) {
    em_array* in = out->inputs[k];
    em_broadcast_strides(in, out->ndim - lead, out->shape + lead, bstrides[k]);
    strides[k + 1] = bstrides[k];
    job.in_dtype[k] = in->dtype;
    job.in_base[k] = (const char*)in->buf->data + in->offset * em_dtype_size(in->dtype);
  }
  em_iter_init(&job.it, out->ndim - lead, out->shape + lead, out->ninputs + 1, strides);
  job.out_base = (char*)out->buf->data + out->offset * em_dtype_size(out->dtype);
  job.out_size = lead ? out->size / out->shape[0] : out->size;
  job.inner = job.it.shape[job.it.ndim - 1];
  job.chunks_per_run = (job.inner + FUSED_CHUNK - 1) / FUSED_CHUNK;
  int64_t items = em_iter_outer(&job.it) * job.chunks_per_run;
  int64_t per_item = job.inner < FUSED_CHUNK ? job.inner : FUSED_CHUNK;
  int64_t grain = (16384 + per_item - 1) / per_item;
  em_parallel_for_balanced(items, grain, fused_range, &job);
  return EM_OK;
}

/* Shape rule: the inputs broadcast together; the program must decode. */
em_array* em_rule_fused(int prim, int nin, em_array** in, int nip, const int64_t* ip,
                        int nfp, const double* fp, int stream) {
  program p;
  if (nin < 1 || nin > EM_ITER_MAX_OPS - 1)
    return em_fail(EM_VALUE_ERROR, "[fused] between 1 and %d inputs, got %d",
                   EM_ITER_MAX_OPS - 1, nin);
  if (!decode(ip, nip, nin, &p)) return em_fail(EM_VALUE_ERROR, "[fused] invalid program");
  int64_t shape[EM_MAX_NDIM];
  int nd = 0;
  for (int k = 0; k < nin; k++) nd = in[k]->ndim > nd ? in[k]->ndim : nd;
  for (int d = 0; d < nd; d++) {
    int64_t size = 1;
    for (int k = 0; k < nin; k++) {
      int ad = d - (nd - in[k]->ndim);
      if (ad < 0) continue;
      int64_t s = in[k]->shape[ad];
      if (s == size || s == 1) continue;
      if (size != 1) return em_fail(EM_VALUE_ERROR, "[fused] input shapes cannot be broadcast");
      size = s;
    }
    shape[d] = size;
  }
  if (p.n_outputs > 1) {
    if (nd == EM_MAX_NDIM) return em_fail(EM_VALUE_ERROR, "[fused] too many dimensions");
    memmove(shape + 1, shape, sizeof(int64_t) * (size_t)nd);
    shape[0] = p.n_outputs;
    nd++;
  }
  return em_node_new(prim, p.out_dtype, nd, shape, nin, in, nip, ip, nfp, fp, stream);
}
