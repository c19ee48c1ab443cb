/*
 * test_malloc_keep.c - a server thread's freed memory stays with it (ef_malloc_thresholds).
 *
 * The bug: glibc trims a heap whose free top passes 128 KiB, so a worker thread that built and
 * freed a publish's worth of memory for every write gave it back to the kernel and faulted it in
 * again on the next write (7-10 page faults a write on a primary of 10,000 flags, ~11 us each on
 * the benchmark VM). The test does what a write does, in a thread of its own: allocates 1 MiB in
 * 64 KiB pieces, touches it, frees it all, and counts the thread's minor faults over the rounds
 * after the first. Transparent huge pages are turned off for the process (prctl), so a fault is
 * one 4 KiB page whatever the kernel's setting. Built for the plain build only: the sanitizers
 * replace malloc, and mallopt does not reach theirs.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "base/hugepages.h"

enum { PIECES = 16, PIECE = 64 * 1024, ROUNDS = 20 };

static void one_write(void)
{
    char *p[PIECES];
    for (int i = 0; i < PIECES; i++) {
        p[i] = malloc(PIECE);
        assert_non_null(p[i]);
        memset(p[i], i + 1, PIECE);
    }
    for (int i = 0; i < PIECES; i++) free(p[i]);
}

static long thread_faults(void)
{
    struct rusage ru;
    assert_int_equal(getrusage(RUSAGE_THREAD, &ru), 0);
    return ru.ru_minflt;
}

/* Faults over ROUNDS writes after a first one, in a new thread (its own arena, as a worker's). */
static void *rounds(void *arg)
{
    one_write();
    long before = thread_faults();
    for (int r = 0; r < ROUNDS; r++) one_write();
    *(long *)arg = thread_faults() - before;
    return NULL;
}

static long faults_in_a_thread(void)
{
    long faults = -1;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, rounds, &faults), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    return faults;
}

static void test_freed_memory_is_kept(void **state)
{
    (void)state;
    assert_int_equal(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0), 0);
    /* glibc's defaults first: the test must see the bug it is for (1 MiB is 256 pages) */
    long before = faults_in_a_thread();
    printf("glibc's defaults: %ld page faults over %d writes\n", before, ROUNDS);
    assert_true(before >= ROUNDS * 100);
    ef_malloc_thresholds(EF_MALLOC_SERVE_THRESHOLD);
    long after = faults_in_a_thread();
    printf("ef_malloc_thresholds: %ld page faults over %d writes\n", after, ROUNDS);
    assert_true(after <= ROUNDS); /* none, give or take the odd page of the thread's own */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_freed_memory_is_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
