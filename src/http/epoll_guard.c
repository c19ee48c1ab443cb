/*
 * epoll_guard.c - the process's epoll_wait, mending how libmicrohttpd's event loop calls it.
 *
 * libmicrohttpd's epoll loop (0.9.75, which Debian 12 ships, to 1.0.x) asks epoll_wait for up to
 * 128 events and, when a call fills all 128, calls it again before it handles any of them, with
 * the same timeout. When nothing else is ready by then, that second call sleeps, up to the
 * nearest connection timeout (seconds: --idle-timeout), while the 128 connections it was just told
 * about wait with their requests unread; their clients wait for answers and send nothing that could
 * wake it. A node with 128 or more busy keep-alive connections stalled that way whenever exactly
 * 128 of them were ready together: with wrk at 128 connections, 212,000 requests a second fell to
 * 12,000-75,000, the server idle, every socket holding an unread request.
 *
 * Defined in the executable, this epoll_wait is the one libmicrohttpd's calls reach (the dynamic
 * linker finds an executable's symbols first). It passes every call on unchanged except one: the
 * call that follows, on the same thread and epoll descriptor, a call that filled the caller's whole
 * array does not wait (timeout 0). A caller may always get fewer events than it asked for, and
 * sooner: libmicrohttpd then handles the 128 and waits properly on its next round.
 *
 * It must never change what a call returns, never wait longer than asked, and never keep state
 * beyond one integer per thread.
 */
/* RTLD_NEXT needs _GNU_SOURCE, which the build defines for every file */
#include "http/epoll_guard.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/epoll.h>

typedef int (*epoll_wait_fn)(int, struct epoll_event *, int, int);

/* the epoll_wait this one stands in front of: a sanitizer's interceptor, or the C library's */
static epoll_wait_fn next_epoll_wait;
static pthread_once_t next_once = PTHREAD_ONCE_INIT;

/* per thread: the descriptor whose last call filled the array, -1 when none did */
static _Thread_local int filled_epfd = -1;

static void find_next(void)
{
    next_epoll_wait = (epoll_wait_fn)dlsym(RTLD_NEXT, "epoll_wait");
}

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    pthread_once(&next_once, find_next);
    if (epfd == filled_epfd) timeout = 0;
    /* epoll_pwait without a signal mask is epoll_wait (epoll_wait(2)), should no next one be found */
    int n = next_epoll_wait ? next_epoll_wait(epfd, events, maxevents, timeout)
                            : epoll_pwait(epfd, events, maxevents, timeout, NULL);
    filled_epfd = n > 0 && n == maxevents ? epfd : -1;
    return n;
}

bool ef_epoll_guard_active(void)
{
    /* this file's epoll_wait is the process's only when the executable exports it */
    return dlsym(RTLD_DEFAULT, "epoll_wait") == (void *)epoll_wait;
}
