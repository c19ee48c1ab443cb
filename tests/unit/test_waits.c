/*
 * test_waits.c - requests parked until the node reaches a version (src/sync/waits.c): the waits
 * thread completes them when kicked, and a hold (the follower's apply) moves that completion to
 * the thread releasing it, so a waiting request is answered without a hop through another
 * thread. Deadlines stay the waits thread's, hold or not. A wait that names a history is reached
 * only on that history (a forwarded write after the primary moved to another one). Also run under
 * ASan and TSan.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "base/clock.h"
#include "sync/sync_int.h"

typedef struct probe {
    ef_wait w;
    int calls;      /* atomic */
    bool reached;   /* written before calls is raised */
    pthread_t by;
} probe;

static void on_done(ef_wait *x, bool reached)
{
    probe *p = x->ctx;
    p->reached = reached;
    p->by = pthread_self();
    __atomic_add_fetch(&p->calls, 1, __ATOMIC_RELEASE);
}

static void probe_init(probe *p, uint64_t version, int64_t timeout_ms)
{
    *p = (probe){.w = {.version = version,
                       .deadline_ns = ef_clock_mono_ns() + timeout_ms * 1000000LL,
                       .done = on_done}};
    p->w.ctx = p;
}

static int calls(probe *p)
{
    return __atomic_load_n(&p->calls, __ATOMIC_ACQUIRE);
}

/* Until the waits thread has taken every kick so far (at most 5 s). A parked wait is no kick: the
 * thread is woken for one only when it would otherwise be late (ef_waits_add). */
static void settle(ef_waits *w)
{
    for (int i = 0; i < 5000 && ef_waits_kick_pending(w); i++) {
        struct timespec t = {0, 1000000};
        nanosleep(&t, NULL);
    }
    assert_false(ef_waits_kick_pending(w));
}

/* p parked for version with a timeout, with no kick left for the waits thread to take. */
static void park(ef_waits *w, probe *p, uint64_t version, int64_t timeout_ms)
{
    probe_init(p, version, timeout_ms);
    assert_true(ef_waits_add(w, &p->w));
    settle(w);
}

/* Polls for up to ms for p to be completed. */
static bool completed_within(probe *p, int ms)
{
    for (int i = 0; i < ms && calls(p) == 0; i++) {
        struct timespec t = {0, 1000000};
        nanosleep(&t, NULL);
    }
    return calls(p) > 0;
}

static void test_hold_completes_on_the_releasing_thread(void **state)
{
    (void)state;
    ef_node node = {0};
    ef_waits *w = ef_waits_new(&node);
    assert_non_null(w);
    assert_int_equal(ef_waits_start(w), 0);

    /* held: the version rises and is kicked, nobody completes the wait until the release */
    probe a;
    park(w, &a, 5, 60000);
    ef_waits_hold(w);
    ef_node_raise_version(&node, 5);
    ef_waits_kick(w);
    assert_int_equal(calls(&a), 0);
    ef_waits_release(w);
    assert_int_equal(calls(&a), 1);
    assert_true(a.reached);
    assert_true(pthread_equal(a.by, pthread_self()));
    assert_int_equal(ef_waits_count(w), 0);

    /* nested holds: the outer release completes */
    probe b;
    park(w, &b, 6, 60000);
    ef_waits_hold(w);
    ef_waits_hold(w);
    ef_node_raise_version(&node, 6);
    ef_waits_kick(w);
    ef_waits_release(w);
    assert_int_equal(calls(&b), 0);
    ef_waits_release(w);
    assert_int_equal(calls(&b), 1);
    assert_true(pthread_equal(b.by, pthread_self()));

    /* a release with nothing kicked completes nothing (the wait's version is not reached) */
    probe c;
    park(w, &c, 9, 60000);
    ef_waits_hold(w);
    ef_waits_release(w);
    assert_int_equal(calls(&c), 0);

    /* not held: the waits thread completes it */
    ef_node_raise_version(&node, 9);
    ef_waits_kick(w);
    assert_true(completed_within(&c, 5000));
    assert_true(c.reached);
    assert_false(pthread_equal(c.by, pthread_self()));

    /* a deadline passes during a hold: the waits thread still answers it, not reached */
    probe d;
    probe_init(&d, 100, 50);
    assert_true(ef_waits_add(w, &d.w));
    ef_waits_hold(w);
    assert_true(completed_within(&d, 5000));
    assert_false(d.reached);
    assert_false(pthread_equal(d.by, pthread_self()));
    ef_waits_release(w);
    assert_int_equal(calls(&d), 1); /* once */

    /* parked without waking the sleeping thread (its deadline is after the thread's next look,
     * a second at most): still answered, at its deadline, not reached */
    probe f;
    probe_init(&f, 1000, 1300);
    assert_true(ef_waits_add(w, &f.w));
    assert_true(completed_within(&f, 5000));
    assert_false(f.reached);

    /* parked after its version was reached (no kick will come): answered at once, reached */
    probe g;
    probe_init(&g, 9, 60000);
    assert_true(ef_waits_add(w, &g.w));
    assert_true(completed_within(&g, 5000));
    assert_true(g.reached);

    /* a crowd reached at once: the releasing thread completes a bounded share (64), the waits
     * thread the rest, each exactly once */
    enum { CROWD = 150 };
    probe *crowd = calloc(CROWD, sizeof(*crowd));
    assert_non_null(crowd);
    for (int i = 0; i < CROWD; i++) {
        probe_init(&crowd[i], 150, 60000);
        assert_true(ef_waits_add(w, &crowd[i].w));
    }
    settle(w);
    ef_waits_hold(w);
    ef_node_raise_version(&node, 150);
    ef_waits_kick(w);
    ef_waits_release(w);
    int here = 0;
    for (int i = 0; i < CROWD; i++) {
        assert_true(completed_within(&crowd[i], 5000));
        assert_int_equal(calls(&crowd[i]), 1);
        assert_true(crowd[i].reached);
        if (pthread_equal(crowd[i].by, pthread_self())) here++;
    }
    assert_int_equal(here, 64);
    free(crowd);

    /* what is left at the end is completed by the drain, not reached */
    probe e;
    probe_init(&e, 200, 60000);
    assert_true(ef_waits_add(w, &e.w));
    ef_waits_free(w);
    assert_int_equal(calls(&e), 1);
    assert_false(e.reached);
}

/* A forwarded write's wait names the history of its version: higher numbers of another history, or
 * of none known (a dump loading), do not reach it; the version on its history does. */
static void test_a_wait_on_a_history_counts_only_there(void **state)
{
    (void)state;
    ef_node node = {0};
    ef_waits *w = ef_waits_new(&node);
    assert_non_null(w);
    assert_int_equal(ef_waits_start(w), 0);
    ef_waits_set_history(w, "aaaa");
    ef_node_raise_version(&node, 5);
    assert_true(ef_waits_reached(w, 5, "aaaa"));
    assert_true(ef_waits_reached(w, 5, NULL));
    assert_false(ef_waits_reached(w, 1, "bbbb")); /* the old history's 5 is not the new one's 1 */

    probe p;
    probe_init(&p, 1, 60000);
    strcpy(p.w.history, "bbbb");
    assert_true(ef_waits_add(w, &p.w));
    settle(w);
    ef_waits_set_history(w, NULL); /* a dump loading: no history yet */
    ef_node_set_version(&node, 1);
    ef_waits_kick(w);
    settle(w);
    assert_int_equal(calls(&p), 0);
    ef_waits_set_history(w, "bbbb"); /* its dump loaded: reached */
    assert_true(completed_within(&p, 5000));
    assert_true(p.reached);
    assert_false(ef_waits_reached(w, 1, "aaaa"));

    /* one that names no history is compared by version alone, as before */
    probe q;
    probe_init(&q, 1, 60000);
    assert_true(ef_waits_add(w, &q.w));
    assert_true(completed_within(&q, 5000));
    assert_true(q.reached);
    ef_waits_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hold_completes_on_the_releasing_thread),
        cmocka_unit_test(test_a_wait_on_a_history_counts_only_there),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
