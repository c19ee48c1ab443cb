/*
 * test_audit.c - the pure parts of audit events: HMAC-SHA256 against RFC 4231's vectors (the
 * webhook signature), Flipt's audit.events filter and its errors, and the event of a change-log
 * entry (type, action, actor, payload with booleans, no token hash, idempotency key).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "audit/audit.h"
#include "base/sha256.h"

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void test_hmac_rfc4231(void **state)
{
    (void)state;
    uint8_t mac[32];
    char h[65];
    uint8_t key1[20];
    memset(key1, 0x0b, sizeof(key1));
    assert_int_equal(ef_hmac_sha256(key1, sizeof(key1), "Hi There", 8, mac), 0);
    hex(mac, 32, h);
    assert_string_equal(h, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    assert_int_equal(ef_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac), 0);
    hex(mac, 32, h);
    assert_string_equal(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    uint8_t key6[131]; /* longer than a block: hashed first */
    memset(key6, 0xaa, sizeof(key6));
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    assert_int_equal(ef_hmac_sha256(key6, sizeof(key6), m6, strlen(m6), mac), 0);
    hex(mac, 32, h);
    assert_string_equal(h, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void expect_filter_error(const char *spec, const char *msg)
{
    ef_audit_filter f;
    char err[160];
    assert_int_equal(ef_audit_filter_parse(spec, &f, err, sizeof(err)), -1);
    assert_string_equal(err, msg);
}

static void test_filter(void **state)
{
    (void)state;
    ef_audit_filter f;
    char err[160];
    assert_int_equal(ef_audit_filter_parse(NULL, &f, err, sizeof(err)), 0);
    assert_true(ef_audit_filter_check(&f, ef_bytes_of("variant"), ef_bytes_of("deleted")));
    assert_int_equal(ef_audit_filter_parse("flag:*, segment:created", &f, err, sizeof(err)), 0);
    assert_true(ef_audit_filter_check(&f, ef_bytes_of("flag"), ef_bytes_of("updated")));
    assert_true(ef_audit_filter_check(&f, ef_bytes_of("segment"), ef_bytes_of("created")));
    assert_false(ef_audit_filter_check(&f, ef_bytes_of("segment"), ef_bytes_of("deleted")));
    assert_false(ef_audit_filter_check(&f, ef_bytes_of("rule"), ef_bytes_of("created")));
    assert_false(ef_audit_filter_check(&f, ef_bytes_of("flag"), ef_bytes_of("read")));
    expect_filter_error("flag", "invalid event pair: flag");
    expect_filter_error("flags:created", "invalid noun: flags");
    expect_filter_error("flag:made", "invalid verb: made");
    expect_filter_error("*:created flag:created", "repeated event pair: flag:created");
    expect_filter_error(" , ", "no event pairs exist");
}

static void test_event(void **state)
{
    (void)state;
    ef_audit_filter all, flags;
    char err[160], key[EF_AUDIT_KEY_MAX];
    assert_int_equal(ef_audit_filter_parse("*:*", &all, err, sizeof(err)), 0);
    assert_int_equal(ef_audit_filter_parse("flag:*", &flags, err, sizeof(err)), 0);
    const char entry[] =
        "{\"seq\":7,\"time\":1795862702999999999,\"namespaces\":[],\"changes\":[{\"table\":\"tokens\","
        "\"op\":\"upsert\",\"pk\":{\"id\":\"t1\"},\"row\":{\"id\":\"t1\",\"hashed_token\":\"SECRET\","
        "\"name\":\"ci\"}}],\"audit\":{\"actor\":{\"method\":\"token\",\"id\":\"bootstrap\",\"name\":"
        "\"boot\",\"ip\":\"1.2.3.4:5\"},\"via\":\"replica-a\",\"type\":\"token\",\"action\":\"created\"}}";
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_buf out;
    ef_buf_init(&out);
    assert_int_equal(ef_audit_event_json(entry, strlen(entry), &flags, "h1", &a, &out, key, err, sizeof(err)), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(ef_audit_event_json(entry, strlen(entry), &all, "h1", &a, &out, key, err, sizeof(err)), 1);
    ef_buf_putc(&out, '\0');
    assert_string_equal(key, "h1:7");
    assert_string_equal(out.data,
                        "{\"version\":\"0.2\",\"type\":\"token\",\"action\":\"created\",\"metadata\":{\"actor\":"
                        "{\"authentication\":\"token\",\"ip\":\"1.2.3.4:5\",\"name\":\"boot\"},\"edgeflag\":"
                        "{\"key\":\"h1:7\",\"seq\":7,\"actor_id\":\"bootstrap\",\"via\":\"replica-a\"}},"
                        "\"payload\":{\"id\":\"t1\",\"name\":\"ci\"},\"timestamp\":\"2026-11-28T10:45:02Z\","
                        "\"status\":\"success\"}");
    /* without an audit object: derived from the first change; booleans are booleans */
    const char plain[] = "{\"seq\":2,\"time\":0,\"namespaces\":[{\"key\":\"default\",\"version\":2}],\"changes\":"
                         "[{\"table\":\"flags\",\"op\":\"upsert\",\"pk\":{\"namespace_key\":\"default\",\"key\":\"f\"},"
                         "\"row\":{\"key\":\"f\",\"enabled\":1},\"old\":{\"key\":\"f\",\"enabled\":0}}]}";
    ef_buf_clear(&out);
    assert_int_equal(ef_audit_event_json(plain, strlen(plain), &all, "", &a, &out, key, err, sizeof(err)), 1);
    ef_buf_putc(&out, '\0');
    assert_non_null(strstr(out.data, "\"type\":\"flag\",\"action\":\"updated\""));
    assert_non_null(strstr(out.data, "\"actor\":{\"authentication\":\"none\"}"));
    assert_non_null(strstr(out.data, "\"payload\":{\"key\":\"f\",\"enabled\":true}"));
    /* unreadable entries are errors, not events */
    const char *bad[] = {"", "[]", "{\"seq\":1}", "{\"seq\":1,\"time\":0,\"namespaces\":[],\"changes\":[1]}",
                         "{\"seq\":1,\"time\":0,\"namespaces\":[],\"changes\":[{\"table\":\"flags\"}]}",
                         "{\"seq\":1,\"time\":0,\"namespaces\":[],\"changes\":[],\"audit\":3}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ef_buf_clear(&out);
        assert_int_equal(ef_audit_event_json(bad[i], strlen(bad[i]), &all, "", &a, &out, key, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "change-log entry"));
    }
    ef_buf_free(&out);
    ef_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
