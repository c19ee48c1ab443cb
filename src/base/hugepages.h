/*
 * hugepages.h - asks glibc's malloc for transparent huge pages, once, at start-up.
 *
 * A server's memory is mostly touched once and kept: the compiled flags, SQLite's page cache, an
 * import's change-log entry. With 4 KiB pages every page is a fault of its own; with 2 MiB pages
 * one fault covers 512 of them. glibc reads its tunables only when a process starts, so the
 * process is executed again with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 added (glibc 2.35 and
 * later: malloc then marks the memory it gets from the kernel with MADV_HUGEPAGE; it needs the
 * kernel's transparent_hugepage setting at "madvise" or "always").
 */
#ifndef EF_BASE_HUGEPAGES_H
#define EF_BASE_HUGEPAGES_H

#include <stdbool.h>
#include <stddef.h>

/* Re-executes the program (its binary's path, as /proc/self/exe names it, with argv and the
 * environment plus the tunable; same pid) unless that cannot help or someone decided already:
 * EDGEFLAG_MALLOC_HUGEPAGES=0, a GLIBC_TUNABLES
 * naming glibc.malloc.hugetlb, a kernel with transparent huge pages off, not glibc or older than
 * 2.35, or a run under valgrind (whose tools would lose the process at an exec). Call it first in
 * main, before any thread, file or lock exists. Returns only when nothing was executed (also when
 * the exec failed: the program runs on as it is). */
void ef_hugepages_reexec(char **argv);

/* Whether this process's malloc was asked for huge pages (the tunable is in its environment). */
bool ef_hugepages_on(void);

/* With huge pages on, serves allocations below bytes from the heap, which malloc advises, rather
 * than with mappings of their own, which it advises only from 2 MiB and which are rarely aligned:
 * glibc's threshold starts at 128 KiB and rises only once such a mapping is freed, so a start-up
 * load's 1 MiB arena chunks all came in 4 KiB pages. A long-running server wants a few MiB (a
 * whole snapshot document still gets, and gives back, a mapping of its own); a one-shot import,
 * whose memory goes back at exit, more. Nothing when huge pages are off or GLIBC_TUNABLES sets
 * glibc.malloc.mmap_threshold (the caller's own wins). Call it before the work it is for. */
void ef_hugepages_threshold(size_t bytes);
#define EF_HUGEPAGES_SERVE_THRESHOLD ((size_t)4 << 20)
#define EF_HUGEPAGES_IMPORT_THRESHOLD ((size_t)64 << 20)

#endif
