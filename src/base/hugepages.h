/*
 * hugepages.h - where malloc's memory comes from: transparent huge pages, asked for once at
 * start-up, and how much freed memory it keeps instead of giving it back.
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

/* How much memory malloc keeps for reuse rather than giving back to the kernel (and faulting in
 * again, 4 KiB at a time outside the advised heap): allocations below mmap_bytes come from the
 * heap rather than mappings of their own, and a heap keeps up to twice that free at its top
 * (glibc's own ratio). glibc's defaults, 128 KiB for both, are made for short programs: a
 * long-running server's threads each allocate from an arena of their own, and a write's publish
 * freed more than 128 KiB at a time, so the arena was trimmed and faulted in again on every write
 * (on the benchmark VM about 7 faults a write on the primary and 3 on a replica's follower, at
 * about 11 us each). A server wants a few MiB (a whole snapshot document still gets, and gives
 * back, a mapping of its own); a one-shot import, whose memory goes back at exit, more. A
 * threshold GLIBC_TUNABLES or MALLOC_*_THRESHOLD_ sets wins. Call it before the work it is for. */
void ef_malloc_thresholds(size_t mmap_bytes);
#define EF_MALLOC_SERVE_THRESHOLD ((size_t)4 << 20)
#define EF_MALLOC_IMPORT_THRESHOLD ((size_t)64 << 20)

#endif
