/*
 * waits.c - requests that wait for this node to reach a version, without holding a thread.
 *
 * X-Edgeflag-Min-Version reads and a replica's forwarded writes (read-your-write) wait until the
 * node has applied a version. Such a request is suspended (ef_http_suspend) and parked here; one
 * thread completes parked requests when the version rises (ef_waits_kick, called wherever the
 * node's status changes) or when their deadline passes. Completing means calling the wait's done()
 * outside the lock, which answers or resumes the request.
 *
 * A forwarded write's wait also names the history its version is on (the primary says it): a
 * version only counts on that history, so a replica still on its old one after its primary was
 * restarted on a fresh database does not take its old, higher numbers for the write's.
 *
 * Must never: block a server thread, call done() twice or with the lock held, or leave a request
 * suspended at shutdown (ef_waits_drain completes every one of them).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "sync/sync_int.h"
#include "base/thread.h"

/* Waits ef_waits_release completes on its caller's thread; more are handed to the waits thread. */
#define RELEASE_INLINE_MAX 64

struct ef_waits {
    ef_node *node;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ef_wait *head;   /* parked waits, unordered: completing walks them all, and there are few */
    unsigned n;
    bool kicked;     /* the version may have risen since the thread last looked */
    unsigned holds;  /* ef_waits_hold: kicks are left to ef_waits_release's caller */
    bool held_kick;  /* a kick came while held */
    bool draining;   /* complete everything now, take nothing new */
    bool stop;
    bool started;
    int64_t sleeps_until; /* when the sleeping thread looks again by itself; 0 while it is awake */
    char history[EF_STORE_ID_MAX + 1]; /* the node's history ("" unknown: ef_waits_set_history) */
    pthread_t thread;
};

ef_waits *ef_waits_new(ef_node *node)
{
    ef_waits *w = calloc(1, sizeof(*w));
    if (!w) return NULL;
    w->node = node;
    pthread_mutex_init(&w->mu, NULL);
    ef_cond_init_monotonic(&w->cv);
    return w;
}

/* Whether x is reached at version v on the node's history. Caller holds mu. */
static bool reached_locked(const ef_waits *w, const ef_wait *x, uint64_t v)
{
    if (v < x->version) return false;
    return !x->history[0] || (w->history[0] && strcmp(x->history, w->history) == 0);
}

/* Unlinks the waits that are due (version reached, deadline passed, or draining) into *due, at
 * most max of them, and returns the earliest deadline of the rest (0: none); *more (if given)
 * says whether due ones were left for lack of room. Caller holds mu. */
static int64_t take_due_locked(ef_waits *w, ef_wait **due, int64_t now, size_t max, bool *more)
{
    uint64_t v = ef_node_version(w->node);
    int64_t next = 0;
    size_t taken = 0;
    if (more) *more = false;
    ef_wait **pp = &w->head;
    while (*pp) {
        ef_wait *x = *pp;
        bool reached = reached_locked(w, x, v);
        if (reached || w->draining || x->deadline_ns <= now) {
            if (taken == max) {
                if (more) *more = true;
                break;
            }
            taken++;
            *pp = x->next;
            x->reached = reached;
            x->next = *due;
            *due = x;
            w->n--;
            continue;
        }
        if (!next || x->deadline_ns < next) next = x->deadline_ns;
        pp = &x->next;
    }
    return next;
}

static void complete(ef_wait *due)
{
    while (due) {
        ef_wait *next = due->next; /* done() may free the wait */
        due->done(due, due->reached);
        due = next;
    }
}

static void *waits_main(void *arg)
{
    ef_thread_name("ef-waits");
    ef_waits *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        ef_wait *due = NULL;
        w->kicked = false;
        int64_t next = take_due_locked(w, &due, ef_clock_mono_ns(), SIZE_MAX, NULL);
        if (due) {
            pthread_mutex_unlock(&w->mu);
            complete(due);
            pthread_mutex_lock(&w->mu);
            continue;
        }
        if (w->kicked || w->stop) continue;
        /* a version raised without a kick is still seen within a second */
        int64_t until = ef_clock_mono_ns() + 1000000000LL;
        if (next && next < until) until = next;
        struct timespec t = {(time_t)(until / 1000000000LL), (long)(until % 1000000000LL)};
        w->sleeps_until = until;
        pthread_cond_timedwait(&w->cv, &w->mu, &t);
        w->sleeps_until = 0;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int ef_waits_start(ef_waits *w)
{
    pthread_mutex_lock(&w->mu); /* the thread reads the flags next to it under the lock */
    w->started = true;
    pthread_mutex_unlock(&w->mu);
    if (pthread_create(&w->thread, NULL, waits_main, w) == 0) return 0;
    pthread_mutex_lock(&w->mu);
    w->started = false;
    pthread_mutex_unlock(&w->mu);
    return -1;
}

bool ef_waits_add(ef_waits *w, ef_wait *x)
{
    pthread_mutex_lock(&w->mu);
    if (w->draining || !w->started) {
        pthread_mutex_unlock(&w->mu);
        return false;
    }
    x->next = w->head;
    w->head = x;
    w->n++;
    /* Woken only when the thread would otherwise be late: the version was reached before the
     * wait was parked, or the deadline comes before the sleeping thread looks again (an awake
     * thread looks again before it sleeps). Waking it for every parked request cost a replica a
     * context switch per probe of each write. */
    if (reached_locked(w, x, ef_node_version(w->node)) || (w->sleeps_until && x->deadline_ns < w->sleeps_until)) {
        w->kicked = true;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return true;
}

void ef_waits_set_history(ef_waits *w, const char *history)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    snprintf(w->history, sizeof(w->history), "%s", history ? history : "");
    pthread_mutex_unlock(&w->mu);
    ef_waits_kick(w);
}

bool ef_waits_reached(ef_waits *w, uint64_t version, const char *history)
{
    ef_wait x = {.version = version};
    if (history) snprintf(x.history, sizeof(x.history), "%s", history);
    pthread_mutex_lock(&w->mu);
    /* the version is read under the lock: the follower lowers it before it names a new history */
    bool r = reached_locked(w, &x, ef_node_version(w->node));
    pthread_mutex_unlock(&w->mu);
    return r;
}

void ef_waits_kick(ef_waits *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    if (w->holds) {
        w->held_kick = true; /* ef_waits_release completes them on its own thread */
    } else if (w->n) {
        w->kicked = true;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
}

void ef_waits_hold(ef_waits *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->holds++;
    pthread_mutex_unlock(&w->mu);
}

void ef_waits_release(ef_waits *w)
{
    if (!w) return;
    ef_wait *due = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->holds) w->holds--;
    if (!w->holds && w->held_kick) {
        w->held_kick = false;
        /* A bounded share, so a crowd of waits (max-waiting, 2,048 by default) parked for the next
         * version cannot hold the caller (the follower) up: the rest go to the waits thread, which
         * also keeps the deadlines. */
        bool more;
        (void)take_due_locked(w, &due, ef_clock_mono_ns(), RELEASE_INLINE_MAX, &more);
        if (more) {
            w->kicked = true;
            pthread_cond_signal(&w->cv);
        }
    }
    pthread_mutex_unlock(&w->mu);
    complete(due);
}

bool ef_waits_kick_pending(ef_waits *w)
{
    pthread_mutex_lock(&w->mu);
    bool k = w->kicked;
    pthread_mutex_unlock(&w->mu);
    return k;
}

unsigned ef_waits_count(ef_waits *w)
{
    pthread_mutex_lock(&w->mu);
    unsigned n = w->n;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void ef_waits_drain(ef_waits *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->draining = true;
    ef_wait *due = NULL;
    take_due_locked(w, &due, ef_clock_mono_ns(), SIZE_MAX, NULL);
    pthread_mutex_unlock(&w->mu);
    complete(due);
}

void ef_waits_free(ef_waits *w)
{
    if (!w) return;
    ef_waits_drain(w);
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    bool started = w->started;
    pthread_mutex_unlock(&w->mu);
    if (started) pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
