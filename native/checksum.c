/* checksum.c: the checksum ember.checkpoint stores for every array.
 *
 * em_checksum32 is CRC-32C (Castagnoli) on four interleaved lanes, so that
 * the CPU's crc32 instruction (three cycles of latency, one issued per cycle)
 * runs on four independent chains: 8-byte word j of every 32-byte group goes
 * to lane j; the n % 32 tail bytes follow in lane 0. Each lane is a standard
 * CRC-32C (initial value and final xor 0xFFFFFFFF); the result is the CRC-32C
 * of the four lane values (little-endian uint32) followed by n (little-endian
 * uint64). With SSE4.2 the instruction does the work; elsewhere, or with
 * `portable` set, a byte table gives the same values. zlib's crc32 managed
 * about a third of the speed, which a checkpoint save then waited for.
 */
#include <stdint.h>
#include <string.h>

#include "ember.h"

#define CRC32C_POLY 0x82F63B78u /* reflected Castagnoli polynomial */

static uint32_t table[256];
static int table_ready;

static void build_table(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
    table[i] = c;
  }
  table_ready = 1; /* idempotent: racing builders write the same values */
}

static uint32_t bytes_portable(uint32_t crc, const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
  return crc;
}

static uint64_t load_u64(const unsigned char* p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static void lanes_portable(uint32_t lane[4], const unsigned char* p, size_t groups) {
  for (size_t g = 0; g < groups; g++, p += 32)
    for (int j = 0; j < 4; j++) lane[j] = bytes_portable(lane[j], p + 8 * j, 8);
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2")))
static void lanes_sse42(uint32_t lane[4], const unsigned char* p, size_t groups) {
  uint64_t c0 = lane[0], c1 = lane[1], c2 = lane[2], c3 = lane[3];
  for (size_t g = 0; g < groups; g++, p += 32) {
    c0 = _mm_crc32_u64(c0, load_u64(p));
    c1 = _mm_crc32_u64(c1, load_u64(p + 8));
    c2 = _mm_crc32_u64(c2, load_u64(p + 16));
    c3 = _mm_crc32_u64(c3, load_u64(p + 24));
  }
  lane[0] = (uint32_t)c0, lane[1] = (uint32_t)c1, lane[2] = (uint32_t)c2, lane[3] = (uint32_t)c3;
}

static int have_sse42(void) { return __builtin_cpu_supports("sse4.2"); }
#else
static void lanes_sse42(uint32_t lane[4], const unsigned char* p, size_t groups) {
  lanes_portable(lane, p, groups);
}

static int have_sse42(void) { return 0; }
#endif

uint32_t em_checksum32(const void* data, size_t nbytes, int portable) {
  if (!table_ready) build_table();
  const unsigned char* p = data;
  size_t groups = nbytes / 32;
  uint32_t lane[4] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
  if (!portable && have_sse42())
    lanes_sse42(lane, p, groups);
  else
    lanes_portable(lane, p, groups);
  lane[0] = bytes_portable(lane[0], p + 32 * groups, nbytes % 32);
  unsigned char summary[24];
  for (int j = 0; j < 4; j++) {
    uint32_t v = lane[j] ^ 0xFFFFFFFFu;
    for (int k = 0; k < 4; k++) summary[4 * j + k] = (unsigned char)(v >> (8 * k));
  }
  uint64_t n = nbytes;
  for (int k = 0; k < 8; k++) summary[16 + k] = (unsigned char)(n >> (8 * k));
  return bytes_portable(0xFFFFFFFFu, summary, sizeof summary) ^ 0xFFFFFFFFu;
}
