/*
 * epoll_guard.h - whether the process's epoll_wait is epoll_guard.c's (internal to src/http).
 *
 * epoll_guard.c defines epoll_wait itself, to keep libmicrohttpd's event loop from sleeping on
 * requests it was just told about (see there). The server links it in by asking this question at
 * start; a server where the answer is no (an executable that does not export the symbol) would
 * stall as libmicrohttpd does, so it says so.
 */
#ifndef EF_HTTP_EPOLL_GUARD_H
#define EF_HTTP_EPOLL_GUARD_H

#include <stdbool.h>

bool ef_epoll_guard_active(void);

#endif
