/* error.c: the per-thread error that a failed call leaves for Python. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static _Thread_local int error_kind = EM_OK;
static _Thread_local char error_message[1024];

void* em_fail(int kind, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vsnprintf(error_message, sizeof error_message, fmt, args);
  va_end(args);
  error_kind = kind;
  return NULL;
}

int em_failed(void) { return error_kind != EM_OK; }
int em_error_kind(void) { return error_kind; }
const char* em_error_message(void) { return error_message; }

void em_clear_error(void) {
  error_kind = EM_OK;
  error_message[0] = '\0';
}

const char* em_fmt_shape(char* buf, size_t cap, int ndim, const int64_t* shape) {
  size_t used = (size_t)snprintf(buf, cap, "(");
  for (int i = 0; i < ndim && used < cap; i++)
    used += (size_t)snprintf(buf + used, cap - used, i ? ", %lld" : "%lld",
                             (long long)shape[i]);
  if (used < cap)
    snprintf(buf + used, cap - used, ndim == 1 ? ",)" : ")");
  return buf;
}
