/*
 * crc32.h - CRC-32 as zlib's crc32() computes it, inlined for short inputs.
 *
 * Evaluation buckets entities with CRC-32 (Flipt's rule): a flag key's CRC continued with an entity
 * id of a few bytes. A call into zlib costs more than the bytes themselves there, so short inputs
 * run a byte-table loop inline; long ones go to zlib's wide implementation. Both give zlib's
 * result bit for bit (tests/unit/test_crc32.c compares them). Never allocates, holds no state.
 */
#ifndef EF_EVAL_CRC32_H
#define EF_EVAL_CRC32_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

extern const uint32_t ef_crc32_table[256];

/* zlib's crc32(crc, p, n): continues crc (0 to start) over n bytes. */
static inline uint32_t ef_crc32_update(uint32_t crc, const char *p, size_t n)
{
    if (n > 32) return (uint32_t)crc32_z(crc, (const Bytef *)p, n);
    uint32_t c = ~crc;
    for (size_t i = 0; i < n; i++) c = ef_crc32_table[(c ^ (unsigned char)p[i]) & 0xff] ^ (c >> 8);
    return ~c;
}

#endif
