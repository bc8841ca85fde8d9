/* eval.c: evaluating the lazy graph.
 *
 * A depth-first walk with an explicit stack orders the pending nodes that the
 * requested arrays depend on (inputs before consumers). Each node's kernel then
 * runs once; right after, the node drops its inputs and becomes a plain
 * evaluated array, so an intermediate is freed as soon as its last consumer
 * has run and its buffer can be donated to the next node in a chain.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "internal.h"

/* One evaluation at a time: async_eval runs em_eval on a background thread,
 * and a later eval (or a read of values) waits here until it is done. */
static pthread_mutex_t eval_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t eval_stamp = 0;
static atomic_int keep_graph_depth = 0;

int em_keep_graph(int on) {
  return atomic_fetch_add(&keep_graph_depth, on ? 1 : -1) + (on ? 1 : -1);
}

int em_keeping_graph(void) { return atomic_load(&keep_graph_depth) > 0; }

static int eval_locked(int n, em_array** arrays);

int em_eval(int n, em_array** arrays) {
  pthread_mutex_lock(&eval_lock);
  int status = eval_locked(n, arrays);
  pthread_mutex_unlock(&eval_lock);
  return status;
}

int em_is_evaluated(em_array* a) {
  pthread_mutex_lock(&eval_lock);
  int done = a->evaluated;
  pthread_mutex_unlock(&eval_lock);
  return done;
}

typedef struct {
  em_array* node;
  int next_input;
} frame;

/* Drops the node's inputs and parameters: it is now a leaf. */
static void detach(em_array* a) {
  if (em_keeping_graph()) return;
  int n = a->ninputs;
  a->ninputs = 0;
  a->nip = 0;
  a->nfp = 0;
  a->prim = -1;
  for (int i = 0; i < n; i++) em_release(a->inputs[i]);
}

static int eval_locked(int n, em_array** arrays) {
  uint64_t stamp = ++eval_stamp;
  size_t order_cap = 256, order_len = 0, stack_cap = 256, top = 0;
  em_array** order = malloc(sizeof *order * order_cap);
  frame* stack = malloc(sizeof *stack * stack_cap);
  int status = EM_OK;
  if (!order || !stack) {
    free(order);
    free(stack);
    em_fail(EM_MEMORY_ERROR, "[eval] out of memory ordering the graph");
    return EM_MEMORY_ERROR;
  }
  for (int r = 0; r < n; r++) {
    em_array* root = arrays[r];
    if (root->evaluated || root->mark == stamp) continue;
    root->mark = stamp;
    stack[top++] = (frame){root, 0};
    while (top) {
      frame* f = &stack[top - 1];
      if (f->next_input < f->node->ninputs) {
        em_array* child = f->node->inputs[f->next_input++];
        if (child->evaluated || child->mark == stamp) continue;
        child->mark = stamp;
        if (top == stack_cap) {
          frame* grown = realloc(stack, sizeof *stack * stack_cap * 2);
          if (!grown) { status = EM_MEMORY_ERROR; goto done; }
          stack = grown;
          stack_cap *= 2;
        }
        stack[top++] = (frame){child, 0};
      } else {
        if (order_len == order_cap) {
          em_array** grown = realloc(order, sizeof *order * order_cap * 2);
          if (!grown) { status = EM_MEMORY_ERROR; goto done; }
          order = grown;
          order_cap *= 2;
        }
        order[order_len++] = f->node;
        top--;
      }
    }
  }
  /* The roots stay alive through the caller's references; each other node is
   * held by a consumer that has not run yet, so no node in `order` is freed
   * before its own kernel runs. */
  for (size_t i = 0; i < order_len; i++) {
    em_array* a = order[i];
    status = em_kernel_of(a->prim)(a);
    if (status != EM_OK) {
      if (!em_failed()) em_fail(status, "[eval] %s failed", em_prim_name(a->prim));
      goto done;
    }
    a->evaluated = 1;
    detach(a);
  }
done:
  if (status == EM_MEMORY_ERROR && !em_failed())
    em_fail(EM_MEMORY_ERROR, "[eval] out of memory ordering the graph");
  free(order);
  free(stack);
  return status;
}
