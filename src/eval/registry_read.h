/*
 * registry_read.h - the registry's read section, inlined for the evaluation paths.
 *
 * ef_registry_enter/leave are ef_registry_read_lock/unlock without the calls: liburcu-bp's
 * read-side fast path (urcu/static/urcu-bp.h; its lock and unlock are under ten lines each and
 * documented by liburcu as meant for inlining into any code, matching the library as long as its
 * soname is unchanged). A separate header because urcu's static header brings system headers
 * (unistd.h) that have no business in every file that names the registry.
 *
 * The thread-local reader pointer uses the TLS model the compiler picks for the output:
 * initial-exec in an executable, general-dynamic in libedgeflag.so, so the library can still be
 * loaded with dlopen. Never force initial-exec here. ThreadSanitizer builds call the annotated
 * functions in registry.c instead, and so do the ASan/UBSan and fuzz builds (EF_URCU_CALLS):
 * liburcu declares its reader struct 128-byte aligned yet allocates it unaligned, which UBSan
 * reports inside liburcu's inline code.
 */
#ifndef EF_EVAL_REGISTRY_READ_H
#define EF_EVAL_REGISTRY_READ_H

#include "eval/registry.h"

#if defined(EF_TSAN) || defined(EF_URCU_CALLS)
static inline void ef_registry_enter(ef_registry *r)
{
    ef_registry_read_lock(r);
}

static inline void ef_registry_leave(ef_registry *r)
{
    ef_registry_read_unlock(r);
}
#else
#include <urcu/static/urcu-bp.h>

static inline void ef_registry_enter(ef_registry *r)
{
    (void)r;
    _urcu_bp_read_lock();
}

static inline void ef_registry_leave(ef_registry *r)
{
    (void)r;
    _urcu_bp_read_unlock();
}
#endif

#endif
