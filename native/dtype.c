/* dtype.c: sizes, names, categories, promotion and half-precision conversion. */
#include <string.h>

#include "internal.h"

static const int sizes[EM_NUM_DTYPES] = {1, 1, 2, 4, 8, 1, 2, 4, 8, 2, 4, 8, 2, 8};
static const char* names[EM_NUM_DTYPES] = {
    "bool",    "uint8",   "uint16",  "uint32",  "uint64",   "int8",     "int16",
    "int32",   "int64",   "float16", "float32", "float64",  "bfloat16", "complex64"};

int em_dtype_size(int dtype) { return sizes[dtype]; }
const char* em_dtype_name(int dtype) { return names[dtype]; }

int em_is_float(int d) {
  return d == EM_FLOAT16 || d == EM_FLOAT32 || d == EM_FLOAT64 || d == EM_BFLOAT16;
}
int em_is_inexact(int d) { return em_is_float(d) || d == EM_COMPLEX64; }
int em_is_integer(int d) { return d >= EM_UINT8 && d <= EM_INT64; }
int em_is_unsigned(int d) { return d >= EM_UINT8 && d <= EM_UINT64; }

/* mlx.core's promotion table (mlx/dtype.cpp), indexed [a][b]. */
enum { B_ = EM_BOOL, U8 = EM_UINT8, U16 = EM_UINT16, U32 = EM_UINT32, U64 = EM_UINT64,
       I8 = EM_INT8, I16 = EM_INT16, I32 = EM_INT32, I64 = EM_INT64, F16 = EM_FLOAT16,
       F32 = EM_FLOAT32, F64 = EM_FLOAT64, BF = EM_BFLOAT16, C64 = EM_COMPLEX64 };
static const unsigned char promote[EM_NUM_DTYPES][EM_NUM_DTYPES] = {
/*          b    u8   u16  u32  u64  i8   i16  i32  i64  f16  f32  f64  bf16 c64 */
/* b   */ {B_,  U8,  U16, U32, U64, I8,  I16, I32, I64, F16, F32, F64, BF,  C64},
/* u8  */ {U8,  U8,  U16, U32, U64, I16, I16, I32, I64, F16, F32, F64, BF,  C64},
/* u16 */ {U16, U16, U16, U32, U64, I32, I32, I32, I64, F16, F32, F64, BF,  C64},
/* u32 */ {U32, U32, U32, U32, U64, I64, I64, I64, I64, F16, F32, F64, BF,  C64},
/* u64 */ {U64, U64, U64, U64, U64, F32, F32, F32, F32, F16, F32, F64, BF,  C64},
/* i8  */ {I8,  I16, I32, I64, F32, I8,  I16, I32, I64, F16, F32, F64, BF,  C64},
/* i16 */ {I16, I16, I32, I64, F32, I16, I16, I32, I64, F16, F32, F64, BF,  C64},
/* i32 */ {I32, I32, I32, I64, F32, I32, I32, I32, I64, F16, F32, F64, BF,  C64},
/* i64 */ {I64, I64, I64, I64, F32, I64, I64, I64, I64, F16, F32, F64, BF,  C64},
/* f16 */ {F16, F16, F16, F16, F16, F16, F16, F16, F16, F16, F32, F64, F32, C64},
/* f32 */ {F32, F32, F32, F32, F32, F32, F32, F32, F32, F32, F32, F64, F32, C64},
/* f64 */ {F64, F64, F64, F64, F64, F64, F64, F64, F64, F64, F64, F64, F64, C64},
/* bf16*/ {BF,  BF,  BF,  BF,  BF,  BF,  BF,  BF,  BF,  F32, F32, F64, BF,  C64},
/* c64 */ {C64, C64, C64, C64, C64, C64, C64, C64, C64, C64, C64, C64, C64, C64},
};

int em_promote_types(int a, int b) { return promote[a][b]; }

/* IEEE half <-> single, round to nearest even, NaN and infinity kept. */
float em_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else { /* subnormal: normalise */
      int e = -1;
      do { e++; mant <<= 1; } while ((mant & 0x400) == 0);
      bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

uint16_t em_f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) /* inf or nan */
    return sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0);
  if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow */
    return sign | 0x7c00;
  if (absx < 0x38800000u) { /* result is subnormal or zero */
    if (absx < 0x33000000u) return sign;
    uint32_t mant = (absx & 0x7fffff) | 0x800000;
    int shift = 113 - (int)(absx >> 23) + 13;
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) half++;
    return sign | (uint16_t)half;
  }
  uint32_t h = ((absx >> 13) - (112u << 10));
  uint32_t rem = absx & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
  return sign | (uint16_t)h;
}

float em_bf16_to_f32(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

uint16_t em_f32_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
  x += 0x7fffu + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}
