/*
 * crc32.h - CRC-32 as zlib's crc32() computes it, inlined for short inputs.
 *
 * Evaluation buckets entities with CRC-32 (Flipt's rule): a flag key's CRC continued with an entity
 * id of a few bytes. A call into zlib costs more than the bytes themselves there, so short inputs
 * run inline, four bytes a step with four tables (4 KiB), and four to eight bytes (an entity id) in
 * two steps without a branch; long ones go to zlib's wide implementation. All give zlib's result bit
 * for bit (tests/unit/test_request.c compares them). Never allocates, holds no state.
 */
#ifndef EF_EVAL_CRC32_H
#define EF_EVAL_CRC32_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

extern const uint32_t ef_crc32_table[4][256];

/* Four bytes at p as a little-endian word, on any host. */
static inline uint32_t ef_crc32_le32(const char *p)
{
    uint32_t w;
    memcpy(&w, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap32(w);
#endif
    return w;
}

/* One step of four bytes (slicing by four): the register c with the next four bytes already
 * XORed into it. */
static inline uint32_t ef_crc32_step(uint32_t c)
{
    const uint32_t(*t)[256] = ef_crc32_table;
    return t[3][c & 0xff] ^ t[2][(c >> 8) & 0xff] ^ t[1][(c >> 16) & 0xff] ^ t[0][c >> 24];
}

/* zlib's crc32(crc, p, n) for 4 <= n <= 8, without a branch: an entity id is a few bytes of a
 * length that changes from one request to the next, and the loops below took a mispredicted exit
 * or two for it. The n bytes (two overlapping loads) are moved to the top of an eight-byte word,
 * the register XORed into their first four, and the word is run from a zero register: the
 * leading zero bytes leave a zero register zero, so this is the same as running the n bytes from
 * the register. */
static inline uint32_t ef_crc32_short(uint32_t crc, const char *p, size_t n)
{
    uint64_t m = ef_crc32_le32(p) | (uint64_t)ef_crc32_le32(p + n - 4) << (8 * (n - 4));
    uint64_t x = (m ^ (uint32_t)~crc) << (8 * (8 - n));
    uint32_t c = ef_crc32_step((uint32_t)x);
    return ~ef_crc32_step(c ^ (uint32_t)(x >> 32));
}

/* zlib's crc32(crc, p, n): continues crc (0 to start) over n bytes. Always inlined, as it was
 * before the short path made it too big for the compiler's taste: a call costs about what a few
 * bytes do. */
static inline __attribute__((always_inline)) uint32_t ef_crc32_update(uint32_t crc, const char *p, size_t n)
{
    if (n - 4 <= 4) return ef_crc32_short(crc, p, n); /* 4 to 8 bytes (a smaller n wraps) */
    if (n > 32) return (uint32_t)crc32_z(crc, (const Bytef *)p, n);
    const uint32_t(*t)[256] = ef_crc32_table;
    uint32_t c = ~crc;
    for (; n >= 4; p += 4, n -= 4) /* four bytes a step */
        c = ef_crc32_step(c ^ ef_crc32_le32(p));
    for (; n; p++, n--) c = t[0][(c ^ (unsigned char)*p) & 0xff] ^ (c >> 8);
    return ~c;
}

#endif
