/*
 * tsan.h - ThreadSanitizer annotations for orderings TSan cannot see.
 *
 * liburcu orders a grace period with membarrier and futexes inside an uninstrumented library, so
 * TSan sees no happens-before from a read section's end, or from the thread that retired an
 * object, to the call_rcu callback that frees it. Code that frees RCU-protected memory describes
 * that ordering with these: TSAN_RELEASE(obj) before call_rcu and at the end of each read section
 * (on a per-structure "grace" address), TSAN_ACQUIRE of both in the callback. Outside EF_TSAN
 * builds they compile to nothing. They must never be used to hide a real race.
 */
#ifndef EF_BASE_TSAN_H
#define EF_BASE_TSAN_H

#ifdef EF_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define TSAN_ACQUIRE(a) __tsan_acquire((void *)(a))
#define TSAN_RELEASE(a) __tsan_release((void *)(a))
#else
#define TSAN_ACQUIRE(a) ((void)(a))
#define TSAN_RELEASE(a) ((void)(a))
#endif

#endif
