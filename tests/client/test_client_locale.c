/*
 * test_client_locale.c - libedgeflag gives the same answers in any locale (issue 19, item 9).
 *
 * An application may call setlocale(LC_ALL, "") and run under a locale whose decimal separator is
 * a comma (de_DE.UTF-8). The snapshot document's numbers (rollout percentages, distribution
 * rollouts) are JSON, always written with a '.', so reading them with the C library's
 * locale-sensitive strtod would turn 0.5 into 0 and 50.5 into 50. This test evaluates one document
 * (from a cache file, no network) under "C" and under de_DE.UTF-8 and requires identical answers,
 * and checks the JSON number writer too.
 *
 * The locale is installed by scripts/install-deps.sh test. When it is missing the test FAILS with a
 * message saying so: it must never pass without having run under the comma locale.
 */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/json.h"
#include "client/cache.h"
#include "edgeflag.h"
#include "helper.h"

#define COMMA_LOCALE "de_DE.UTF-8"
#define DEAD_URL "http://127.0.0.1:1"
#define ENTITIES 4000

/* Percentages a comma locale would truncate: 0.5 % and 99.5 % splits, a 50.5 % threshold, a
 * 0.9 % threshold; and number constraints beside them. */
static const char DOC[] =
    "{\"namespace\":{\"key\":\"default\"},\"flags\":["
    "{\"key\":\"v\",\"name\":\"v\",\"enabled\":true,\"type\":\"VARIANT_FLAG_TYPE\",\"rules\":["
    " {\"rank\":1,\"segmentOperator\":\"OR_SEGMENT_OPERATOR\",\"segments\":["
    "   {\"key\":\"all\",\"matchType\":\"ALL_SEGMENT_MATCH_TYPE\",\"constraints\":[]}],"
    "  \"distributions\":[{\"variantKey\":\"a\",\"rollout\":0.5},{\"variantKey\":\"b\",\"rollout\":33.25},"
    "                     {\"variantKey\":\"c\",\"rollout\":66.25}]}],\"rollouts\":[]},"
    "{\"key\":\"t\",\"name\":\"t\",\"enabled\":false,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":["
    " {\"threshold\":{\"percentage\":50.5,\"value\":true}}]},"
    "{\"key\":\"small\",\"name\":\"small\",\"enabled\":false,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":["
    " {\"threshold\":{\"percentage\":0.9,\"value\":true}}]},"
    "{\"key\":\"n\",\"name\":\"n\",\"enabled\":true,\"type\":\"VARIANT_FLAG_TYPE\",\"rules\":["
    " {\"rank\":1,\"segmentOperator\":\"AND_SEGMENT_OPERATOR\",\"segments\":["
    "   {\"key\":\"adult\",\"matchType\":\"ALL_SEGMENT_MATCH_TYPE\",\"constraints\":["
    "     {\"type\":\"NUMBER_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"age\",\"operator\":\"gte\",\"value\":\"18\"},"
    "     {\"type\":\"NUMBER_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"age\",\"operator\":\"lt\",\"value\":\"1000\"}]}],"
    "  \"distributions\":[{\"variantKey\":\"yes\",\"rollout\":100.0}]}],\"rollouts\":[]}"
    "]}";

/* One run's answers: per entity, the variant of v, t's and small's value; and n per age. */
typedef struct answers {
    char v[ENTITIES];
    char t[ENTITIES];
    char small[ENTITIES];
    char n[8];
} answers;

static const char *AGES[8] = {"17", "18", "19", "999", "1000", "18.5", "1,5", "-3"};

static void evaluate_all(const char *cache, answers *out)
{
    ef_client_options o = {.url = DEAD_URL, .cache_path = cache, .timeout_ms = 200};
    ef_client *c;
    CHECK_EQ_INT(ef_client_open(&o, &c), EF_OK);
    ef_status st;
    ef_client_status(c, &st);
    CHECK_EQ_INT(st.cache_status, EF_OK); /* the document compiled from the cache */
    for (int i = 0; i < ENTITIES; i++) {
        char id[24];
        snprintf(id, sizeof(id), "user-%d", i);
        ef_result r;
        CHECK_EQ_INT(ef_client_variant(c, "v", id, NULL, 0, &r), EF_OK);
        CHECK(r.variant_key_len == 1);
        out->v[i] = r.variant_key[0];
        ef_result_release(&r);
        CHECK_EQ_INT(ef_client_boolean(c, "t", id, NULL, 0, &r), EF_OK);
        out->t[i] = r.enabled ? '1' : '0';
        ef_result_release(&r);
        CHECK_EQ_INT(ef_client_boolean(c, "small", id, NULL, 0, &r), EF_OK);
        out->small[i] = r.enabled ? '1' : '0';
        ef_result_release(&r);
    }
    for (int i = 0; i < 8; i++) {
        ef_pair ctx = ef_pair_of("age", AGES[i]);
        ef_result r;
        CHECK_EQ_INT(ef_client_variant(c, "n", "someone", &ctx, 1, &r), EF_OK);
        out->n[i] = r.match ? 'm' : '-';
        ef_result_release(&r);
    }
    ef_client_close(c);
}

static int count(const char *a, char want)
{
    int n = 0;
    for (int i = 0; i < ENTITIES; i++) n += a[i] == want;
    return n;
}

static void first_difference(const char *what, const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) {
            fprintf(stderr, "test_client_locale: under %s, %s for entity %zu is '%c', under C '%c'\n",
                    COMMA_LOCALE, what, i, b[i], a[i]);
            exit(1);
        }
}

/* The JSON writer and reader of src/base, which the library links, in the current locale. */
static void check_json_numbers(void)
{
    ef_buf b;
    ef_buf_init(&b);
    ef_json_put_double(&b, 50.5);
    ef_buf_putc(&b, ' ');
    ef_json_put_double(&b, 1.25e-9);
    ef_buf_putc(&b, ' ');
    ef_json_put_float(&b, 33.3f);
    ef_buf_putc(&b, '\0');
    CHECK(ef_buf_ok(&b));
    if (strcmp(b.data, "50.5 1.25e-9 33.3") != 0) {
        fprintf(stderr, "test_client_locale: numbers written as \"%s\" under %s\n", b.data,
                setlocale(LC_NUMERIC, NULL));
        exit(1);
    }
    ef_buf_free(&b);
    ef_arena a;
    ef_arena_init(&a, 1024);
    ef_json_error je;
    const char in[] = "[0.5, 99.25, -1.5e2]";
    const ef_json *v = ef_json_parse(in, sizeof(in) - 1, &a, NULL, &je);
    CHECK(v && v->type == EF_JSON_ARRAY && v->len == 3);
    CHECK(v->child->num == 0.5);
    CHECK(v->child->next->num == 99.25);
    CHECK(v->child->next->next->num == -150.0);
    ef_arena_free(&a);
}

int main(void)
{
    char dir[] = "/tmp/ef-locale-XXXXXX";
    CHECK(mkdtemp(dir));
    char cache[96];
    snprintf(cache, sizeof(cache), "%s/cache", dir);
    CHECK_EQ_INT(ef_cache_write(cache, 3, "e3", DOC, sizeof(DOC) - 1, 1), EF_OK);

    CHECK(setlocale(LC_ALL, "C"));
    static answers in_c, in_comma;
    evaluate_all(cache, &in_c);
    check_json_numbers();
    /* the C answers are the reference: every split is really exercised */
    int na = count(in_c.v, 'a'), nt = count(in_c.t, '1'), ns = count(in_c.small, '1');
    printf("under C: %d of %d get variant a (0.5 %%), %d threshold 50.5 %%, %d threshold 0.9 %%\n",
           na, ENTITIES, nt, ns);
    CHECK(na > 0 && ns > 0 && nt > ENTITIES / 3);
    CHECK_STRN(in_c.n, sizeof(in_c.n), "-mmm----");

    if (!setlocale(LC_ALL, COMMA_LOCALE)) {
        fprintf(stderr,
                "test_client_locale: FAIL: the locale %s is not installed, so libedgeflag's locale "
                "independence cannot be tested. Install it: scripts/install-deps.sh test (Debian: the "
                "`locales` package, then `localedef -i de_DE -f UTF-8 de_DE.UTF-8`).\n",
                COMMA_LOCALE);
        return 1;
    }
    /* make sure the locale really has a decimal comma, or the test proves nothing */
    char probe[16];
    snprintf(probe, sizeof(probe), "%.1f", 1.5);
    if (strcmp(probe, "1,5") != 0) {
        fprintf(stderr, "test_client_locale: FAIL: %s formats 1.5 as \"%s\", expected a decimal comma\n",
                COMMA_LOCALE, probe);
        return 1;
    }
    evaluate_all(cache, &in_comma);
    first_difference("variant of v (0.5/33.25/66.25 %)", in_c.v, in_comma.v, ENTITIES);
    first_difference("flag t (threshold 50.5 %)", in_c.t, in_comma.t, ENTITIES);
    first_difference("flag small (threshold 0.9 %)", in_c.small, in_comma.small, ENTITIES);
    first_difference("number constraint on age", in_c.n, in_comma.n, sizeof(in_c.n));
    check_json_numbers();
    setlocale(LC_ALL, "C");

    unlink(cache);
    rmdir(dir);
    printf("test_client_locale: ok (same answers under C and %s)\n", COMMA_LOCALE);
    return 0;
}
