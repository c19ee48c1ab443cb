/*
 * test_regressions.c - one test per bug found outside the module's own tests (fuzzing, reviews),
 * so it stays fixed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>

#include "store/doc.h"

/* fuzz_decl: a NULL buffer of length 0 reached libyaml, which asserts on NULL input. */
static void test_decl_parse_null_empty_input(void **state)
{
    ef_arena a;
    ef_arena_init(&a, 1024);
    ef_doc doc;
    ef_decl_error err;
    int rc = ef_decl_parse("empty.yml", NULL, 0, &a, &doc, &err);
    assert_true(rc == 0 || rc == -1); /* either answer, as long as it returns */
    rc = ef_decl_parse("empty.yml", "", 0, &a, &doc, &err);
    assert_true(rc == 0 || rc == -1);
    ef_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decl_parse_null_empty_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
