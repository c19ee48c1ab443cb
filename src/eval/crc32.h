/*
 * crc32.h - CRC-32 as zlib's crc32() computes it, inlined for short inputs.
 *
 * Evaluation buckets entities with CRC-32 (Flipt's rule): a flag key's CRC continued with an entity
 * id of a few bytes. A call into zlib costs more than the bytes themselves there, so short inputs
 * run inline, four bytes a step with four tables (4 KiB); long ones go to zlib's wide implementation. Both give zlib's
 * result bit for bit (tests/unit/test_crc32.c compares them). Never allocates, holds no state.
 */
#ifndef EF_EVAL_CRC32_H
#define EF_EVAL_CRC32_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

extern const uint32_t ef_crc32_table[4][256];

/* zlib's crc32(crc, p, n): continues crc (0 to start) over n bytes. */
static inline uint32_t ef_crc32_update(uint32_t crc, const char *p, size_t n)
{
    if (n > 32) return (uint32_t)crc32_z(crc, (const Bytef *)p, n);
    const uint32_t(*t)[256] = ef_crc32_table;
    uint32_t c = ~crc;
    for (; n >= 4; p += 4, n -= 4) { /* four bytes a step (slicing by four) */
        uint32_t w;
        memcpy(&w, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap32(w);
#endif
        c ^= w;
        c = t[3][c & 0xff] ^ t[2][(c >> 8) & 0xff] ^ t[1][(c >> 16) & 0xff] ^ t[0][c >> 24];
    }
    for (; n; p++, n--) c = t[0][(c ^ (unsigned char)*p) & 0xff] ^ (c >> 8);
    return ~c;
}

#endif
