/* program.c: replaying a compiled function's graph in one call.
 *
 * compile() traces a function once and hands the simplified graph here as a
 * program: a list of instructions (primitive, input slots, parameters) over
 * slots that hold the call's inputs, the trace's constants, then each
 * instruction's result. Running it builds the same nodes over new inputs,
 * with the shape rules checking them, and returns the output nodes: one
 * crossing from Python into C per call, however many ops the function has.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct em_program {
  int n_inputs, n_consts, n_instr, n_outputs;
  em_array** consts;
  int* prim;
  int* stream;
  int* nin;       /* per instruction */
  int* nip;
  int* nfp;
  int* in_start;  /* offsets into in_slots / ips / fps */
  int* ip_start;
  int* fp_start;
  int* in_slots;
  int64_t* ips;
  double* fps;
  int* out_slots;
};

void em_program_free(em_program* p) {
  if (!p) return;
  for (int i = 0; i < p->n_consts; i++) em_release(p->consts[i]);
  free(p->consts);
  free(p->prim);
  free(p->stream);
  free(p->nin);
  free(p->nip);
  free(p->nfp);
  free(p->in_start);
  free(p->ip_start);
  free(p->fp_start);
  free(p->in_slots);
  free(p->ips);
  free(p->fps);
  free(p->out_slots);
  free(p);
}

#define COPY_ARRAY(dst, src, count)                                  \
  do {                                                               \
    size_t bytes_ = sizeof *(src) * (size_t)((count) > 0 ? (count) : 1); \
    (dst) = malloc(bytes_);                                          \
    if (!(dst)) goto oom;                                            \
    if ((count) > 0) memcpy((dst), (src), sizeof *(src) * (size_t)(count)); \
  } while (0)

em_program* em_program_new(int n_inputs, int n_consts, em_array** consts, int n_instr,
                           const int* prims, const int* streams, const int* nins,
                           const int* in_slots, const int* nips, const int64_t* ips,
                           const int* nfps, const double* fps, int n_outputs,
                           const int* out_slots) {
  em_program* p = calloc(1, sizeof *p);
  if (!p) return em_fail(EM_MEMORY_ERROR, "[compile] out of memory");
  p->n_inputs = n_inputs;
  p->n_instr = n_instr;
  p->n_outputs = n_outputs;
  int total_in = 0, total_ip = 0, total_fp = 0;
  for (int i = 0; i < n_instr; i++) {
    total_in += nins[i];
    total_ip += nips[i];
    total_fp += nfps[i];
  }
  int n_slots = n_inputs + n_consts + n_instr;
  for (int i = 0, at = 0; i < n_instr; i++)
    for (int k = 0; k < nins[i]; k++, at++)
      if (in_slots[at] < 0 || in_slots[at] >= n_inputs + n_consts + i) {
        em_program_free(p);
        return em_fail(EM_VALUE_ERROR, "[compile] instruction %d reads slot %d before it is set",
                       i, in_slots[at]);
      }
  for (int k = 0; k < n_outputs; k++)
    if (out_slots[k] < 0 || out_slots[k] >= n_slots) {
      em_program_free(p);
      return em_fail(EM_VALUE_ERROR, "[compile] output %d reads slot %d", k, out_slots[k]);
    }
  COPY_ARRAY(p->consts, consts, n_consts);
  for (int i = 0; i < n_consts; i++) em_retain(consts[i]);
  p->n_consts = n_consts;
  COPY_ARRAY(p->prim, prims, n_instr);
  COPY_ARRAY(p->stream, streams, n_instr);
  COPY_ARRAY(p->nin, nins, n_instr);
  COPY_ARRAY(p->nip, nips, n_instr);
  COPY_ARRAY(p->nfp, nfps, n_instr);
  COPY_ARRAY(p->in_slots, in_slots, total_in);
  COPY_ARRAY(p->ips, ips, total_ip);
  COPY_ARRAY(p->fps, fps, total_fp);
  COPY_ARRAY(p->out_slots, out_slots, n_outputs);
  p->in_start = malloc(sizeof(int) * (size_t)(n_instr + 1));
  p->ip_start = malloc(sizeof(int) * (size_t)(n_instr + 1));
  p->fp_start = malloc(sizeof(int) * (size_t)(n_instr + 1));
  if (!p->in_start || !p->ip_start || !p->fp_start) goto oom;
  p->in_start[0] = p->ip_start[0] = p->fp_start[0] = 0;
  for (int i = 0; i < n_instr; i++) {
    p->in_start[i + 1] = p->in_start[i] + nins[i];
    p->ip_start[i + 1] = p->ip_start[i] + nips[i];
    p->fp_start[i + 1] = p->fp_start[i] + nfps[i];
  }
  return p;
oom:
  em_program_free(p);
  return em_fail(EM_MEMORY_ERROR, "[compile] out of memory");
}

int em_program_run(em_program* p, em_array** inputs, em_array** outputs) {
  int n_slots = p->n_inputs + p->n_consts + p->n_instr;
  em_array* local[256];
  em_array** slot = n_slots <= 256 ? local : malloc(sizeof *slot * (size_t)n_slots);
  if (!slot) {
    em_fail(EM_MEMORY_ERROR, "[compile] out of memory");
    return EM_MEMORY_ERROR;
  }
  memcpy(slot, inputs, sizeof *slot * (size_t)p->n_inputs);
  memcpy(slot + p->n_inputs, p->consts, sizeof *slot * (size_t)p->n_consts);
  int base = p->n_inputs + p->n_consts, built = 0, status = EM_OK;
  em_array* args[64];
  for (; built < p->n_instr; built++) {
    int n = p->nin[built];
    em_array** in = n <= 64 ? args : malloc(sizeof *in * (size_t)n);
    if (!in) {
      em_fail(EM_MEMORY_ERROR, "[compile] out of memory");
      status = EM_MEMORY_ERROR;
      break;
    }
    const int* s = p->in_slots + p->in_start[built];
    for (int k = 0; k < n; k++) in[k] = slot[s[k]];
    em_array* node = em_op(p->prim[built], n, in, p->nip[built], p->ips + p->ip_start[built],
                           p->nfp[built], p->fps + p->fp_start[built], p->stream[built]);
    if (in != args) free(in);
    if (!node) {
      status = em_error_kind();
      break;
    }
    slot[base + built] = node;
  }
  if (status == EM_OK)
    for (int k = 0; k < p->n_outputs; k++) {
      outputs[k] = slot[p->out_slots[k]];
      em_retain(outputs[k]);
    }
  for (int i = 0; i < built; i++) em_release(slot[base + i]);
  if (slot != local) free(slot);
  return status;
}

int em_program_num_outputs(em_program* p) { return p->n_outputs; }

int64_t em_signature(int n, em_array** arrays, int shapeless, int64_t* out, int64_t cap) {
  int64_t at = 0;
  for (int i = 0; i < n; i++) {
    const em_array* a = arrays[i];
    int dims = shapeless ? 0 : a->ndim;
    if (at + 2 + dims <= cap) {
      out[at] = a->dtype;
      out[at + 1] = a->ndim;
      if (dims) memcpy(out + at + 2, a->shape, sizeof(int64_t) * (size_t)dims);
    }
    at += 2 + dims;
  }
  return at;
}
