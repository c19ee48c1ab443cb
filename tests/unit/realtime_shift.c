/*
 * realtime_shift.c - an LD_PRELOAD library for tests: clock_gettime(CLOCK_REALTIME[_COARSE]) reads
 * EF_REALTIME_SHIFT_S seconds later than the kernel's wall clock, as a process sees it when the
 * wall clock stepped back by that much after it computed a deadline. A thread that waits for a
 * wall-clock deadline (pthread_cond_timedwait on a condition variable of the default clock) then
 * sleeps that much longer; one that waits on the monotonic clock is not affected.
 * Test support only: never linked into edgeflag.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int (*clock_fn)(clockid_t, struct timespec *);

int clock_gettime(clockid_t id, struct timespec *ts)
{
    static clock_fn real; /* atomic: the first callers may race to set it, to the same value */
    clock_fn f = __atomic_load_n(&real, __ATOMIC_ACQUIRE);
    if (!f) {
        void *sym = dlsym(RTLD_NEXT, "clock_gettime");
        memcpy(&f, &sym, sizeof(f)); /* ISO C has no cast from an object pointer to a function's */
        __atomic_store_n(&real, f, __ATOMIC_RELEASE);
    }
    int rc = f(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
        const char *shift = getenv("EF_REALTIME_SHIFT_S");
        if (shift) ts->tv_sec += (time_t)atol(shift);
    }
    return rc;
}
