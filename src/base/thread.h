/*
 * thread.h - names a thread, so `ps -L`, `top -H`, perf and gdb tell edgeflag's threads apart.
 * Linux keeps 15 bytes of a name; longer ones are cut. Never fails in a way the caller must handle.
 */
#ifndef EF_BASE_THREAD_H
#define EF_BASE_THREAD_H

#include <sys/prctl.h>

static inline void ef_thread_name(const char *name)
{
    (void)prctl(PR_SET_NAME, name, 0, 0, 0);
}

#endif
