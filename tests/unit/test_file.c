/*
 * test_file.c - ef_file_read: whole regular files, and nothing else.
 *
 * A path a user names (a snapshot, a certificate, a declarative directory's index) may be a FIFO,
 * a device or a directory; the read must refuse those at once instead of waiting for a writer or
 * reading /dev/zero until memory runs out, and must refuse a file past the caller's bound.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/file.h"

static char dir[] = "/tmp/ef-test-file-XXXXXX";

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* Writes the file name in the test's directory; its path in p (256 bytes). */
static void write_file(char *p, const char *name, const char *data, size_t len)
{
    path_of(p, 256, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void test_regular(void **state)
{
    (void)state;
    char p[256], *data = NULL;
    size_t len = 99;
    write_file(p, "a.txt", "hello\0world", 11);
    assert_int_equal(ef_file_read(p, 11, &data, &len), 0);
    assert_int_equal(len, 11);
    assert_memory_equal(data, "hello\0world", 11);
    assert_int_equal(data[11], '\0'); /* NUL-terminated */
    free(data);
    write_file(p, "empty", "", 0);
    assert_int_equal(ef_file_read(p, EF_FILE_MAX_ANY, &data, &len), 0);
    assert_int_equal(len, 0);
    free(data);
    path_of(p, sizeof(p), "missing");
    assert_int_equal(ef_file_read(p, EF_FILE_MAX_ANY, &data, &len), -ENOENT);
}

static void test_past_the_bound(void **state)
{
    (void)state;
    char p[256], *data = NULL;
    size_t len = 0;
    write_file(p, "b.txt", "0123456789", 10);
    assert_int_equal(ef_file_read(p, 9, &data, &len), -EFBIG);
    assert_string_equal(ef_file_strerror(-EFBIG), "larger than the limit");
    assert_int_equal(ef_file_read(p, 10, &data, &len), 0);
    free(data);
}

/* A FIFO with no writer: refused at once (before, the open waited for a writer for ever). */
static void test_fifo_device_directory(void **state)
{
    (void)state;
    char p[256], *data = NULL;
    size_t len = 0;
    path_of(p, sizeof(p), "fifo");
    assert_int_equal(mkfifo(p, 0600), 0);
    alarm(5); /* a regression would hang here: fail the test instead */
    assert_int_equal(ef_file_read(p, EF_FILE_MAX_ANY, &data, &len), -EINVAL);
    alarm(0);
    assert_string_equal(ef_file_strerror(-EINVAL), "not a regular file");
    assert_int_equal(ef_file_read("/dev/zero", EF_FILE_MAX_ANY, &data, &len), -EINVAL);
    assert_int_equal(ef_file_read(dir, EF_FILE_MAX_ANY, &data, &len), -EINVAL);
    assert_string_equal(ef_file_strerror(-ENOENT), strerror(ENOENT));
}

static int cleanup(void **state)
{
    (void)state;
    const char *names[] = {"a.txt", "empty", "b.txt", "fifo"};
    char p[256];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        path_of(p, sizeof(p), names[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_regular), cmocka_unit_test(test_past_the_bound),
                                       cmocka_unit_test(test_fifo_device_directory)};
    return cmocka_run_group_tests(tests, NULL, cleanup);
}
