/*
 * test_backup_format.c - what continuous backup writes to a bucket and reads back
 * (src/backup/format.c, src/backup/s3_xml.c): object names round-trip and refuse anything else;
 * a batch reads back as written and every kind of damage is refused whole with its reason; a
 * manifest round-trips and refuses missing or malformed fields; ListObjectsV2 answers are read
 * with their entities, continuation and bounds; a long S3 error message is cut, not dropped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backup/format.h"
#include "backup/s3.h"

#define H "0123456789abcdef0123456789abcdef"

static void test_names(void **state)
{
    (void)state;
    ef_bk_name n = {.kind = EF_BK_BATCH, .history = H, .seq = 7, .last = 9, .time_ns = 123};
    char out[256];
    ef_bk_name_format(&n, out, sizeof(out));
    assert_string_equal(out, H "/log/00000000000000000007-00000000000000000009-00000000000000000123.batch");
    ef_bk_name back;
    assert_true(ef_bk_name_parse(ef_bytes_of(out), &back));
    assert_int_equal(back.kind, EF_BK_BATCH);
    assert_int_equal(back.seq, 7);
    assert_int_equal(back.last, 9);
    assert_int_equal(back.time_ns, 123);
    n = (ef_bk_name){.kind = EF_BK_SNAP_MANIFEST, .history = H, .seq = 5, .time_ns = 6};
    ef_bk_name_format(&n, out, sizeof(out));
    assert_true(ef_bk_name_parse(ef_bytes_of(out), &back));
    assert_int_equal(back.kind, EF_BK_SNAP_MANIFEST);
    static const char *const bad[] = {
        "",
        H,
        H "/log/00000000000000000009-00000000000000000007-00000000000000000123.batch", /* last < first */
        H "/log/00000000000000000000-00000000000000000007-00000000000000000123.batch", /* first 0 */
        H "/log/0000000000000000007-00000000000000000009-00000000000000000123.batch",  /* 19 digits */
        H "/log/00000000000000000007-00000000000000000009-00000000000000000123.batchx",
        H "/snap/00000000000000000007-00000000000000000009.dbx",
        H "/snap/00000000000000000007-00000000000000000009.db.json", /* fuzz_backup: read as a manifest */
        H "/snap/00000000000000000007-99999999999999999999.db", /* time past int64 */
        "0123456789ABCDEF/snap/00000000000000000007-00000000000000000009.db", /* upper-case history */
        "../snap/00000000000000000007-00000000000000000009.db",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(ef_bk_name_parse(ef_bytes_of(bad[i]), &back));
}

typedef struct got {
    char text[1024];
    size_t n;
} got;

static int on_entry(void *ctx, const ef_bk_entry *e)
{
    got *g = ctx;
    g->n++;
    size_t l = strlen(g->text);
    snprintf(g->text + l, sizeof(g->text) - l, "%llu@%lld:%.*s|", (unsigned long long)e->seq,
             (long long)e->time_ns, (int)e->entry.n, e->entry.p);
    return 0;
}

static int batch_read(const ef_buf *b, got *g, char *err)
{
    ef_bk_batch_head h;
    memset(g, 0, sizeof(*g));
    return ef_bk_batch_read(b->data, b->len, &h, on_entry, g, err, 200);
}

static void test_batches(void **state)
{
    (void)state;
    ef_bk_entry e[3] = {{11, 100, EF_BYTES_LIT("{\"seq\":11}")},
                        {12, 200, EF_BYTES_LIT("{\"a\":\"line\\nbreak\"}")},
                        {13, 300, EF_BYTES_LIT("x\ny")}};
    ef_buf b;
    ef_buf_init(&b);
    ef_bk_batch_write(&b, H, e, 3);
    got g;
    char err[200];
    assert_int_equal(batch_read(&b, &g, err), 0);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.text, "11@100:{\"seq\":11}|12@200:{\"a\":\"line\\nbreak\"}|13@300:x\ny|");

    /* every byte flipped in the body: refused whole, nothing handed out */
    size_t body = (size_t)(memchr(b.data, '\n', b.len) - (void *)b.data) + 1;
    for (size_t i = body; i < b.len; i++) {
        b.data[i] ^= 0x01;
        assert_int_equal(batch_read(&b, &g, err), -1);
        assert_int_equal(g.n, 0);
        assert_string_equal(err, "batch body does not match its sha256 (corrupt or cut short)");
        b.data[i] ^= 0x01;
    }
    /* cut short anywhere: refused */
    for (size_t cut = 0; cut < b.len; cut++) {
        ef_buf c = {.data = b.data, .len = cut};
        assert_int_equal(batch_read(&c, &g, err), -1);
        assert_int_equal(g.n, 0);
    }
    ef_buf_free(&b);

    /* a header that lies about the range, with a body that checks out */
    ef_bk_entry gap[2] = {{11, 1, EF_BYTES_LIT("a")}, {13, 2, EF_BYTES_LIT("b")}};
    ef_buf_init(&b);
    ef_bk_batch_write(&b, H, gap, 2);
    assert_int_equal(batch_read(&b, &g, err), -1);
    assert_string_equal(err, "batch header's first, last and count disagree");
    ef_buf_free(&b);
    ef_buf_init(&b);
    ef_buf_puts(&b, "not a batch\n");
    assert_int_equal(batch_read(&b, &g, err), -1);
    assert_string_equal(err, "not an edgeflag backup batch (bad header line)");
    ef_buf_free(&b);
}

static void test_manifests(void **state)
{
    (void)state;
    ef_bk_manifest m = {.history = H, .db_id = "ab", .seq = 42, .time_ns = 7, .bytes = 4096, .schema = 4};
    for (int i = 0; i < 32; i++) m.sha256[i] = (uint8_t)i;
    ef_buf b;
    ef_buf_init(&b);
    ef_bk_manifest_write(&b, &m);
    ef_bk_manifest r;
    char err[200];
    assert_int_equal(ef_bk_manifest_read(b.data, b.len, &r, err, sizeof(err)), 0);
    assert_int_equal(r.seq, 42);
    assert_int_equal(r.bytes, 4096);
    assert_int_equal(r.schema, 4);
    assert_memory_equal(r.sha256, m.sha256, 32);
    assert_string_equal(r.history, H);
    ef_buf_free(&b);
    static const char *const bad[] = {
        "{}",
        "[]",
        "{\"format\":\"edgeflag-backup-snapshot/2\"}",
        "{\"format\":\"edgeflag-backup-snapshot/1\",\"history\":\"" H "\",\"dbId\":\"ab\",\"seq\":-1,\"time\":0,\"bytes\":1,\"schema\":3,\"sha256\":\"00\"}",
        "{\"format\":\"edgeflag-backup-snapshot/1\",\"history\":\"XYZ\",\"dbId\":\"ab\",\"seq\":1,\"time\":0,\"bytes\":1,\"schema\":3,\"sha256\":\"" H H "\"}",
        "{\"format\":\"edgeflag-backup-snapshot/1\",\"history\":\"" H "\",\"dbId\":\"ab\",\"seq\":1,\"time\":0,\"bytes\":1,\"schema\":3,\"sha256\":\"" H "\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ef_bk_manifest_read(bad[i], strlen(bad[i]), &r, err, sizeof(err)), -1);
}

typedef struct keys {
    char all[512];
    uint64_t sizes;
} keys;

static int on_key(void *ctx, ef_bytes k, uint64_t size)
{
    keys *ks = ctx;
    size_t l = strlen(ks->all);
    snprintf(ks->all + l, sizeof(ks->all) - l, "%.*s|", (int)k.n, k.p);
    ks->sizes += size;
    return 0;
}

static void test_xml(void **state)
{
    (void)state;
    const char *list =
        "<?xml version=\"1.0\"?><ListBucketResult><IsTruncated>true</IsTruncated>"
        "<NextContinuationToken>a&amp;b&#x41;&#66;</NextContinuationToken>"
        "<Contents><Key>p/a&lt;b&gt;&quot;&apos;</Key><Size>10</Size></Contents>"
        "<Contents><Key>p/&#xe9;t&#233;</Key><Size>5</Size></Contents></ListBucketResult>";
    keys ks = {0};
    ef_s3_list_page pg;
    char err[200];
    assert_int_equal(ef_s3_xml_list(list, strlen(list), on_key, &ks, &pg, err, sizeof(err)), 0);
    assert_string_equal(ks.all, "p/a<b>\"'|p/\xc3\xa9t\xc3\xa9|");
    assert_int_equal(ks.sizes, 15);
    assert_true(pg.truncated);
    assert_string_equal(pg.next_token, "a&bAB");
    static const char *const bad[] = {
        "<Error><Code>AccessDenied</Code></Error>",
        "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>", /* no token */
        "<ListBucketResult><Contents><Key>a&bogus;</Key></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a&#0;</Key></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a&#xD800;</Key></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key></Key></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a</Key><Size>1x</Size></Contents></ListBucketResult>",
        /* cut short: a connection-delimited answer whose connection closed early */
        "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a</Key></Contents>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ef_s3_xml_list(bad[i], strlen(bad[i]), on_key, &ks, &pg, err, sizeof(err)), -1);
    /* a key longer than S3 allows is refused, not cut into another name */
    char big[3000] = "<ListBucketResult><Contents><Key>";
    memset(big + strlen(big), 'k', 1100);
    strcat(big, "</Key></Contents></ListBucketResult>");
    assert_int_equal(ef_s3_xml_list(big, strlen(big), on_key, &ks, &pg, err, sizeof(err)), -1);

    char code[32], msg[16];
    const char *e = "<Error><Code>SlowDown</Code><Message>a &amp; very long message</Message></Error>";
    ef_s3_xml_error(e, strlen(e), code, sizeof(code), msg, sizeof(msg));
    assert_string_equal(code, "SlowDown");
    assert_string_equal(msg, "a & very lo"); /* cut to fit (as sent), then decoded */
    const char *e2 = "<Error><Code>X</Code><Message>0123456789&amp;more</Message></Error>";
    ef_s3_xml_error(e2, strlen(e2), code, sizeof(code), msg, sizeof(msg));
    assert_string_equal(msg, "0123456789&more"); /* 15 bytes: fits once decoded */
    const char *e3 = "<Error><Code>X</Code><Message>0123456789abcd&amp;more</Message></Error>";
    ef_s3_xml_error(e3, strlen(e3), code, sizeof(code), msg, sizeof(msg));
    assert_string_equal(msg, "0123456789abcd"); /* the cut would split the reference */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_manifests),
        cmocka_unit_test(test_xml),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
