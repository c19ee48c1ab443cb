/*
 * test_decl_validate.c - `edgeflag validate`: exit status 0/1/2 and one FILE:LINE:COLUMN: message
 * line per invalid file on stderr (captured into a temporary file, removed afterwards).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli/cli.h"

static char captured[8192];

/* Runs the command with stderr and stdout redirected to a file; returns its exit status. */
static int run(int argc, char **argv)
{
    char path[] = "/tmp/ef_validate_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    fflush(stdout);
    int saved_err = dup(2), saved_out = dup(1);
    dup2(fd, 2);
    dup2(fd, 1);
    int rc = ef_cmd_validate(argc, argv);
    fflush(stderr);
    fflush(stdout);
    dup2(saved_err, 2);
    dup2(saved_out, 1);
    close(saved_err);
    close(saved_out);
    ssize_t n = pread(fd, captured, sizeof(captured) - 1, 0);
    captured[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return rc;
}

static void test_validate(void **state)
{
    const char *root = getenv("EF_SOURCE_DIR");
    char good[1024], bad[1024], bad2[1024];
    snprintf(good, sizeof(good), "%s/tests/fixtures/decl/valid/v1_4_full.yml", root);
    snprintf(bad, sizeof(bad), "%s/tests/fixtures/decl/invalid/gate_type.yml", root);
    snprintf(bad2, sizeof(bad2), "%s/tests/fixtures/decl/invalid/bad_json.json", root);

    char *ok_args[] = {good};
    assert_int_equal(run(1, ok_args), 0);
    assert_non_null(strstr(captured, "ok (1 namespace, 2 flags, 4 segments)"));

    char *mixed[] = {good, bad, bad2};
    assert_int_equal(run(3, mixed), 1);
    char want[1200];
    snprintf(want, sizeof(want), "%s:5:11: flag type is supported in version >=1.1, found 1.0\n", bad);
    assert_non_null(strstr(captured, want));
    snprintf(want, sizeof(want), "%s:2:13: invalid JSON", bad2);
    assert_non_null(strstr(captured, want));

    char *quiet[] = {"-q", good};
    assert_int_equal(run(2, quiet), 0);
    assert_string_equal(captured, "");

    char *missing[] = {"/nonexistent/features.yml"};
    assert_int_equal(run(1, missing), 1);
    assert_non_null(strstr(captured, "/nonexistent/features.yml: cannot read"));

    assert_int_equal(run(0, NULL), 2);
    char *badopt[] = {"--frobnicate", good};
    assert_int_equal(run(2, badopt), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_validate)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
