/*
 * test_request.c - the request block (eval/request.h) and the inline CRC-32 (eval/crc32.h).
 *
 * ef_mem_eq (base/hash.h) must agree with memcmp for every length and every differing byte.
 * The block must answer every lookup as the JSON object it came from would (a later duplicate
 * wins, a missing key reads as ""), for keys with any bytes, and so must a request that borrows
 * the caller's pairs; the inline CRC must equal zlib's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "eval/crc32.h"
#include "eval/request.h"

static ef_bytes find(const ef_eval_request *r, ef_bytes key)
{
    return ef_context_find(r->context, key, ef_context_hash(key.p, key.n));
}

static void assert_value(ef_bytes got, ef_bytes want)
{
    if (!ef_bytes_eq(got, want)) fail_msg("got \"%.*s\", want \"%.*s\"", (int)got.n, got.p, (int)want.n, want.p);
}

static void test_block_lookup(void **state)
{
    (void)state;
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_kv kv[] = {
        {EF_BYTES_LIT("country"), EF_BYTES_LIT("de")},
        {EF_BYTES_LIT("plan"), EF_BYTES_LIT("pro")},
        {EF_BYTES_LIT("country"), EF_BYTES_LIT("fr")}, /* a later duplicate wins */
        {{"a\0b", 3}, EF_BYTES_LIT("nul")},
        {EF_BYTES_LIT(""), EF_BYTES_LIT("empty key")},
        {EF_BYTES_LIT("long-property-name-over-eight"), {"v\0", 2}},
    };
    ef_eval_request r;
    assert_int_equal(ef_request_build(&a, EF_BYTES_LIT("flag"), EF_BYTES_LIT("user-1"), kv, 6, &r), 0);
    assert_value(r.flag_key, EF_BYTES_LIT("flag"));
    assert_value(r.entity_id, EF_BYTES_LIT("user-1"));
    assert_true(r.flag_hash == ef_hash_bytes("flag", 4));
    assert_int_equal(ef_context_count(r.context), 6);
    assert_value(find(&r, EF_BYTES_LIT("country")), EF_BYTES_LIT("fr"));
    assert_value(find(&r, EF_BYTES_LIT("plan")), EF_BYTES_LIT("pro"));
    assert_value(find(&r, (ef_bytes){"a\0b", 3}), EF_BYTES_LIT("nul"));
    assert_value(find(&r, (ef_bytes){"a\0c", 3}), EF_BYTES_LIT(""));
    assert_value(find(&r, EF_BYTES_LIT("a")), EF_BYTES_LIT(""));
    assert_value(find(&r, EF_BYTES_LIT("")), EF_BYTES_LIT("empty key"));
    assert_value(find(&r, EF_BYTES_LIT("long-property-name-over-eight")), (ef_bytes){"v\0", 2});
    assert_value(find(&r, EF_BYTES_LIT("long-property-name-over-eighT")), EF_BYTES_LIT(""));
    assert_value(find(&r, EF_BYTES_LIT("missing")), EF_BYTES_LIT(""));
    /* iteration keeps every entry in order, duplicates included (the legacy API echoes them) */
    assert_value(ef_context_key(r.context, 2), EF_BYTES_LIT("country"));
    assert_value(ef_context_value(r.context, 0), EF_BYTES_LIT("de"));

    /* no context at all */
    ef_eval_request e;
    assert_int_equal(ef_request_build(&a, EF_BYTES_LIT(""), EF_BYTES_LIT(""), NULL, 0, &e), 0);
    assert_int_equal(ef_context_count(e.context), 0);
    assert_value(find(&e, EF_BYTES_LIT("country")), EF_BYTES_LIT(""));
    ef_eval_request none = {.flag_key = EF_BYTES_LIT("f")};
    assert_value(find(&none, EF_BYTES_LIT("country")), EF_BYTES_LIT(""));
    ef_arena_free(&a);
}

/* Many keys, a quarter of them repeated: every lookup agrees with a linear last-wins scan. */
static void test_block_many(void **state)
{
    (void)state;
    ef_arena a;
    ef_arena_init(&a, 1 << 16);
    enum { N = 2000 };
    static ef_kv kv[N];
    static char keys[N][16], vals[N][16];
    srand(7);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", rand() % (N * 3 / 4));
        snprintf(vals[i], sizeof(vals[i]), "v%d", i);
        kv[i] = (ef_kv){ef_bytes_of(keys[i]), ef_bytes_of(vals[i])};
    }
    ef_eval_request r;
    assert_int_equal(ef_request_build(&a, EF_BYTES_LIT("f"), EF_BYTES_LIT("e"), kv, N, &r), 0);
    for (int k = 0; k < N; k++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", k);
        ef_bytes want = {"", 0};
        for (int i = N; i-- > 0;)
            if (!strcmp(keys[i], key)) {
                want = kv[i].value;
                break;
            }
        assert_value(find(&r, ef_bytes_of(key)), want);
    }
    ef_arena_free(&a);
}

/* A borrowed request (libedgeflag's) answers every lookup as a block built from the same pairs
 * does, points at the caller's strings, and reads a pair with no value bytes as "". */
static void test_borrowed(void **state)
{
    (void)state;
    ef_arena a;
    ef_arena_init(&a, 1 << 16);
    enum { N = 300 };
    static ef_kv kv[N];
    static char keys[N][16], vals[N][16];
    srand(11);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), i % 7 ? "k%d" : "long-key-%d", rand() % (N / 2));
        snprintf(vals[i], sizeof(vals[i]), "v%d", i);
        kv[i] = (ef_kv){ef_bytes_of(keys[i]), ef_bytes_of(vals[i])};
    }
    kv[5].value = (ef_bytes){NULL, 0};
    for (size_t n = 0; n <= N; n += n < 20 ? 1 : 40) {
        ef_eval_request built, borrowed;
        ef_context head;
        assert_int_equal(ef_request_build(&a, EF_BYTES_LIT("flag"), EF_BYTES_LIT("user"), kv, n, &built), 0);
        ef_bytes flag = EF_BYTES_LIT("flag"), entity = EF_BYTES_LIT("user");
        ef_request_borrow(&borrowed, &head, flag, entity, kv, n);
        assert_ptr_equal(borrowed.flag_key.p, flag.p);
        assert_true(borrowed.flag_hash == built.flag_hash);
        assert_value(borrowed.entity_id, EF_BYTES_LIT("user"));
        assert_int_equal(ef_context_count(borrowed.context), n);
        for (int k = 0; k < N / 2 + 2; k++) {
            char key[16];
            snprintf(key, sizeof(key), k % 2 ? "k%d" : "long-key-%d", k);
            assert_value(find(&borrowed, ef_bytes_of(key)), find(&built, ef_bytes_of(key)));
        }
        assert_value(find(&borrowed, EF_BYTES_LIT("")), EF_BYTES_LIT(""));
        for (size_t i = 0; i < n; i++) {
            assert_value(ef_context_key(borrowed.context, i), ef_context_key(built.context, i));
            assert_value(ef_context_value(borrowed.context, i), ef_context_value(built.context, i));
        }
    }
    ef_arena_free(&a);
}

/* Keys chosen to collide in the index (a hostile client can compute them: the hash is fixed):
 * the block gives its index up instead of probing quadratically, and still answers right. */
static void test_block_collisions(void **state)
{
    (void)state;
    enum { N = 200 };
    ef_arena a;
    ef_arena_init(&a, 1 << 16);
    static char keys[N][16];
    static ef_kv kv[N + 1];
    uint32_t mask = 4; /* the index of a block of N + 1 entries: a power of two >= 2 (N + 1) */
    while (mask < 2 * (N + 1)) mask *= 2;
    mask -= 1;
    int found = 0;
    for (unsigned i = 0; found < N; i++) {
        char k[16];
        snprintf(k, sizeof(k), "c%u", i);
        if ((ef_context_hash(k, strlen(k)) & mask) != 0) continue;
        memcpy(keys[found], k, sizeof(k));
        kv[found] = (ef_kv){ef_bytes_of(keys[found]), ef_bytes_of(keys[found])};
        found++;
    }
    kv[N] = (ef_kv){ef_bytes_of(keys[0]), EF_BYTES_LIT("last")}; /* a repeat: the later wins */
    ef_eval_request r;
    assert_int_equal(ef_request_build(&a, EF_BYTES_LIT("f"), EF_BYTES_LIT("e"), kv, N + 1, &r), 0);
    assert_int_equal(r.context->mask, mask);
    assert_int_equal(r.context->linear, 1);
    assert_value(find(&r, ef_bytes_of(keys[0])), EF_BYTES_LIT("last"));
    for (int i = 1; i < N; i++) assert_value(find(&r, ef_bytes_of(keys[i])), ef_bytes_of(keys[i]));
    assert_value(find(&r, EF_BYTES_LIT("absent")), EF_BYTES_LIT(""));
    ef_arena_free(&a);
}

/* A slot is one byte: up to EF_CONTEXT_INDEXED entries are indexed, one more and the block is
 * scanned; both answer every lookup, the last duplicate winning. */
static void test_block_index_limit(void **state)
{
    (void)state;
    ef_arena a;
    ef_arena_init(&a, 1 << 16);
    static ef_kv kv[EF_CONTEXT_INDEXED + 1];
    static char keys[EF_CONTEXT_INDEXED + 1][16], vals[EF_CONTEXT_INDEXED + 1][16];
    for (int i = 0; i <= EF_CONTEXT_INDEXED; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i % 200); /* repeats from 200 on: they win */
        snprintf(vals[i], sizeof(vals[i]), "v%d", i);
        kv[i] = (ef_kv){ef_bytes_of(keys[i]), ef_bytes_of(vals[i])};
    }
    for (size_t n = EF_CONTEXT_INDEXED - 1; n <= EF_CONTEXT_INDEXED + 1; n++) {
        ef_eval_request r;
        assert_int_equal(ef_request_build(&a, EF_BYTES_LIT("f"), EF_BYTES_LIT("e"), kv, n, &r), 0);
        assert_int_equal(r.context->linear, n > EF_CONTEXT_INDEXED);
        assert_true((uintptr_t)ef_context_entries(r.context) % 4 == 0);
        for (int k = 0; k < 200; k++) {
            char key[16], want[16];
            snprintf(key, sizeof(key), "k%d", k);
            snprintf(want, sizeof(want), "v%d", k + 200 < (int)n ? k + 200 : k);
            assert_value(find(&r, ef_bytes_of(key)), ef_bytes_of(want));
            assert_value(ef_context_key(r.context, (size_t)k), ef_bytes_of(key));
        }
        assert_value(find(&r, EF_BYTES_LIT("k200")), EF_BYTES_LIT(""));
        assert_value(r.flag_key, EF_BYTES_LIT("f"));
        assert_value(r.entity_id, EF_BYTES_LIT("e"));
    }
    ef_arena_free(&a);
}

/* The context hash has three forms that must agree: ef_context_hash on the bytes, and for keys of
 * up to 16 bytes ef_context_hash_padded on 16 readable bytes (the bytes past the key never count)
 * and ef_context_hash_words on the key as two little-endian words padded with zeros. */
static void test_context_hash_forms(void **state)
{
    (void)state;
    char buf[64], other[64];
    srand(5);
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof(buf); i++) buf[i] = (char)rand();
        for (size_t n = 0; n <= 40; n++) {
            uint32_t h = ef_context_hash(buf, n);
            assert_int_equal(ef_context_hash_padded(buf, n), h);
            for (size_t i = 0; i < sizeof(other); i++) other[i] = i < n ? buf[i] : (char)~buf[i];
            assert_int_equal(ef_context_hash(other, n), h);
            assert_int_equal(ef_context_hash_padded(other, n), h);
            if (n <= 16) {
                uint64_t lo = 0, hi = 0;
                for (size_t i = 0; i < n; i++) {
                    uint64_t byte = (unsigned char)buf[i];
                    if (i < 8) lo |= byte << (8 * i);
                    else hi |= byte << (8 * (i - 8));
                }
                assert_int_equal(ef_context_hash_words(lo, hi, n), h);
            }
        }
    }
    /* the length counts: "", "\0" and "\0\0" differ */
    assert_true(ef_context_hash("\0\0", 0) != ef_context_hash("\0\0", 1));
    assert_true(ef_context_hash("\0\0", 1) != ef_context_hash("\0\0", 2));
}

/* Keys that differ in one byte anywhere (tier1, tier2, ...; user_attr_001, ...) spread over the low
 * bits an index uses: 512 such keys fall on nearly as many of 1,024 slots as random values would
 * (about 400). A hash whose low bits came from one part of the key put them on a few. */
static void test_context_hash_spread(void **state)
{
    (void)state;
    static const char *formats[] = {"%d", "tier%d", "flag-%03d", "%03d-flag", "user_attribute_%d",
                                    "x%dx", "some_long_property_name_%d"};
    for (size_t f = 0; f < sizeof(formats) / sizeof(formats[0]); f++) {
        static bool used[1024];
        memset(used, 0, sizeof(used));
        int distinct = 0;
        for (int i = 0; i < 512; i++) {
            char k[64];
            int n = snprintf(k, sizeof(k), formats[f], i);
            uint32_t s = ef_context_hash(k, (size_t)n) & 1023;
            if (!used[s]) distinct++;
            used[s] = true;
        }
        if (distinct < 350) fail_msg("%s: 512 keys on %d of 1024 slots", formats[f], distinct);
    }
}

/* A block built in place (ef_request_open, ef_request_put, ef_request_close), as the one-pass JSON
 * decoder builds it: up to EF_REQUEST_PUT_MAX entries indexed as they come, more indexed again at
 * the close, repeats won by the later entry, keys chosen to collide given up on; every lookup
 * answers as the pairs would. */
static void test_block_in_place(void **state)
{
    (void)state;
    ef_arena a;
    ef_arena_init(&a, 1 << 16);
    for (size_t n = 0; n <= 64; n++)
        for (int collide = 0; collide < 2; collide++) {
            char keys[64][16];
            ef_kv kv[64];
            size_t made = 0;
            for (unsigned i = 0; made < n; i++) { /* every 7th entry repeats the key 5 before it */
                if (made >= 7 && made % 7 == 0) {
                    kv[made] = (ef_kv){kv[made - 5].key, EF_BYTES_LIT("again")};
                    made++;
                    continue;
                }
                snprintf(keys[made], sizeof(keys[made]), "c%u", i);
                if (collide && (ef_context_hash(keys[made], strlen(keys[made])) & 127) != 0) continue;
                kv[made] = (ef_kv){ef_bytes_of(keys[made]), ef_bytes_of(keys[made])};
                made++;
            }
            ef_context *c = ef_request_open(&a, 64, 64 * 32 + 8);
            assert_non_null(c);
            ef_ctx_entry *e = ef_request_entries(c);
            char *text = ef_request_text(c), *o = text;
            memcpy(o, "fe", 2);
            o += 2;
            for (size_t i = 0; i < n; i++) {
                uint32_t hash = ef_context_hash(kv[i].key.p, kv[i].key.n);
                e[i] = (ef_ctx_entry){hash, (uint32_t)kv[i].key.n, (uint32_t)kv[i].value.n, (uint32_t)(o - text)};
                memcpy(o, kv[i].key.p, kv[i].key.n);
                memcpy(o + kv[i].key.n, kv[i].value.p, kv[i].value.n);
                ef_request_put(c, (uint32_t)i, (ef_bytes){o, kv[i].key.n}, hash);
                o += kv[i].key.n + kv[i].value.n;
            }
            ef_eval_request r;
            ef_request_close(&r, c, n, (size_t)(o - text), (ef_bytes){text, 1}, (ef_bytes){text + 1, 1});
            assert_value(r.flag_key, EF_BYTES_LIT("f"));
            assert_value(r.entity_id, EF_BYTES_LIT("e"));
            assert_true(r.flag_hash == ef_hash_bytes("f", 1));
            assert_int_equal(ef_context_count(r.context), n);
            for (size_t i = 0; i < n; i++) {
                ef_bytes want = {"", 0};
                for (size_t j = 0; j < n; j++)
                    if (ef_bytes_eq(kv[j].key, kv[i].key)) want = kv[j].value;
                assert_value(find(&r, kv[i].key), want);
                assert_value(ef_context_key(r.context, i), kv[i].key);
            }
            assert_value(find(&r, EF_BYTES_LIT("absent")), EF_BYTES_LIT(""));
            /* 64 keys on one slot of 128: more probes than an index allows */
            if (collide && n == 64) assert_int_equal(r.context->linear, 1);
            if (!collide) assert_int_equal(r.context->linear, 0);
        }
    ef_arena_free(&a);
}

static void test_block_limits(void **state)
{
    (void)state;
    assert_int_equal(ef_request_size((size_t)UINT32_MAX, 0), 0);
    assert_int_equal(ef_request_size(0, (size_t)UINT32_MAX + 1), 0);
    assert_int_equal(ef_request_size(0, (size_t)UINT32_MAX), 0); /* the header makes it too big */
    assert_true(ef_request_size(1000, 100000) > 100000);
    assert_true(ef_request_size(0, 0) > 0);
}

static void test_crc32_matches_zlib(void **state)
{
    (void)state;
    unsigned char buf[200];
    srand(11);
    for (size_t i = 0; i < sizeof(buf); i++) buf[i] = (unsigned char)rand();
    for (size_t n = 0; n <= sizeof(buf); n++)
        for (uint32_t start = 0; start < 3; start++) {
            uint32_t seed = start == 0 ? 0 : start == 1 ? 0xdeadbeefu : (uint32_t)crc32(0, buf, 7);
            uint32_t want = (uint32_t)crc32(seed, buf, (uInt)n);
            assert_int_equal(ef_crc32_update(seed, (const char *)buf, n), want);
        }
    /* the inline lengths (up to 32) and past them, from every offset (the word loads), continuing
     * registers with every byte set (a short input leaves some bytes of it unmet) */
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n <= 40; n++)
            for (int k = 0; k < 16; k++) {
                uint32_t seed = (uint32_t)rand() * 2654435761u ^ (uint32_t)rand();
                uint32_t want = (uint32_t)crc32(seed, buf + off, (uInt)n);
                assert_int_equal(ef_crc32_update(seed, (const char *)buf + off, n), want);
            }
}

/* ef_mem_eq against memcmp for every length to 40 and a difference at every position. */
static void test_mem_eq(void **state)
{
    (void)state;
    char a[48], b[48];
    for (size_t i = 0; i < sizeof(a); i++) a[i] = b[i] = (char)('a' + i % 26);
    for (size_t n = 0; n <= 40; n++) {
        assert_true(ef_mem_eq(a, b, n));
        for (size_t d = 0; d < n; d++) {
            b[d] ^= 0x10;
            assert_false(ef_mem_eq(a, b, n));
            assert_false(ef_mem_eq(b, a, n));
            b[d] ^= 0x10;
        }
        b[n] ^= 0x10; /* a byte past the length never counts */
        assert_true(ef_mem_eq(a, b, n));
        b[n] ^= 0x10;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_lookup),
        cmocka_unit_test(test_block_many),
        cmocka_unit_test(test_borrowed),
        cmocka_unit_test(test_block_collisions),
        cmocka_unit_test(test_block_index_limit),
        cmocka_unit_test(test_block_limits),
        cmocka_unit_test(test_context_hash_forms),
        cmocka_unit_test(test_context_hash_spread),
        cmocka_unit_test(test_block_in_place),
        cmocka_unit_test(test_crc32_matches_zlib),
        cmocka_unit_test(test_mem_eq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
