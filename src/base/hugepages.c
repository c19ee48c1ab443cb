/*
 * hugepages.c - the one re-execution that gives glibc's malloc transparent huge pages (see
 * hugepages.h). It must never change what the program does, only where its memory comes from:
 * every doubt (an unreadable setting, a failed exec) leaves the process running as it is.
 *
 * Measured (bench/bench_store, 10,000 flags, import and load each in a fresh process, on the
 * benchmark VM where a 4 KiB page fault costs about 11 us): load + compile 11,243 -> ~5,000 page
 * faults with huge pages alone (107-147 ms), ~400-800 with the threshold (47-53 ms).
 */
#include "base/hugepages.h"

#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TUNABLE "glibc.malloc.hugetlb"
#define MARK "EDGEFLAG_MALLOC_REEXECUTED" /* never a loop, whatever glibc does with the tunable */

bool ef_hugepages_on(void)
{
    const char *t = getenv("GLIBC_TUNABLES");
    return t && strstr(t, TUNABLE "=1") != NULL;
}

/* The kernel's setting: "always [madvise] never" with the chosen one in brackets. */
static bool kernel_allows(void)
{
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return false;
    char line[128] = "";
    bool ok = fgets(line, sizeof(line), f) && !strstr(line, "[never]");
    fclose(f);
    return ok;
}

void ef_hugepages_reexec(char **argv)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
    const char *off = getenv("EDGEFLAG_MALLOC_HUGEPAGES");
    if ((off && strcmp(off, "0") == 0) || getenv(MARK)) return; /* MARK: executed once already */
    const char *t = getenv("GLIBC_TUNABLES");
    if (t && strstr(t, TUNABLE)) return;          /* decided by whoever started us (or by us) */
    const char *pre = getenv("LD_PRELOAD");
    if (pre && strstr(pre, "vgpreload")) return;  /* valgrind: an exec would escape its tool */
    if (!kernel_allows()) return;
    char *v = malloc((t ? strlen(t) + 1 : 0) + sizeof(TUNABLE "=1"));
    if (!v) return;
    sprintf(v, "%s%s" TUNABLE "=1", t ? t : "", t ? ":" : "");
    /* the binary's own path, not /proc/self/exe: the kernel names a process after the file it
     * executes, and pgrep, ps and the thread names would say "exe" */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0 && (size_t)n < sizeof(self) - 1) {
        self[n] = '\0';
        if (!strstr(self, " (deleted)") && setenv("GLIBC_TUNABLES", v, 1) == 0 &&
            setenv(MARK, "1", 1) == 0)
            execv(self, argv);
    }
    /* the exec failed (no /proc, a removed binary): run on, and say nothing was asked for */
    if (t)
        setenv("GLIBC_TUNABLES", t, 1);
    else
        unsetenv("GLIBC_TUNABLES");
    unsetenv(MARK);
    free(v);
#else
    (void)argv;
#endif
}

/* A threshold the caller set, in the tunables or glibc's older variables. */
static bool set_by_caller(const char *tunable, const char *var)
{
    const char *t = getenv("GLIBC_TUNABLES");
    return (t && strstr(t, tunable)) || getenv(var);
}

void ef_malloc_thresholds(size_t mmap_bytes)
{
#if defined(__GLIBC__)
    if (mmap_bytes > INT_MAX / 2) mmap_bytes = INT_MAX / 2; /* mallopt takes an int */
    /* Either setting also ends glibc's own adjustment of the other, hence both. */
    if (!set_by_caller("glibc.malloc.mmap_threshold", "MALLOC_MMAP_THRESHOLD_"))
        mallopt(M_MMAP_THRESHOLD, (int)mmap_bytes);
    if (!set_by_caller("glibc.malloc.trim_threshold", "MALLOC_TRIM_THRESHOLD_"))
        mallopt(M_TRIM_THRESHOLD, (int)(2 * mmap_bytes));
#else
    (void)mmap_bytes;
#endif
}
