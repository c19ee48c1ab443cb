/*
 * auth_cleanup.c - deletes expired authentications, as Flipt's cleanup service does: for each
 * method that stores them (static tokens, OIDC sessions), every interval, the rows of that method
 * whose expiry lies more than the grace period in the past (see auth.h, docs/auth.md).
 *
 * Deletes go through the store like any write, so they enter the change log and reach every
 * replica; only a node whose store takes writes runs this (cmd_serve.c), and deleting a row that
 * another writer removed first is not an error. It must never delete a row without an expiry or
 * one of another method, and never hold a request up: it runs on its own thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/auth_int.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/thread.h"

struct ef_auth_cleanup {
    ef_store *store;
    ef_auth_cleanup_config cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

int ef_auth_cleanup_run(ef_store *store, bool sessions, int64_t expired_before_ns, unsigned *deleted,
                        ef_store_err *err)
{
    *deleted = 0;
    ef_arena a;
    ef_arena_init(&a, 16384);
    ef_store_token *toks;
    size_t n;
    ef_store_page_out po;
    ef_store_page all = {0};
    int rc = ef_store_token_list(store, &all, &a, &toks, &n, &po, err);
    /* who did it, for the change log and audit: this node, not a caller */
    ef_store_attribution who = {.method = EF_BYTES_LIT("none"), .name = EF_BYTES_LIT("edgeflag cleanup"),
                                .type = EF_BYTES_LIT("token"), .action = EF_BYTES_LIT("deleted")};
    ef_store_attribute(&who);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const ef_store_token *t = &toks[i];
        if (!t->expires_ns || t->expires_ns >= expired_before_ns || ef_auth_row_is_session(t) != sessions) continue;
        ef_store_err e;
        if (ef_store_token_delete(store, t->id, &e) == 0)
            (*deleted)++;
        else if (e.code != EF_STORE_NOT_FOUND) { /* NOT_FOUND: another writer was first */
            *err = e;
            rc = -1;
        }
    }
    ef_store_attribute(NULL);
    ef_arena_free(&a);
    return rc;
}

static void run_method(ef_auth_cleanup *c, bool sessions, unsigned grace_s)
{
    unsigned deleted = 0;
    ef_store_err err;
    const char *what = sessions ? "oidc" : "token";
    if (ef_auth_cleanup_run(c->store, sessions, ef_clock_wall_ns() - (int64_t)grace_s * 1000000000, &deleted, &err) != 0)
        ef_log(EF_LOG_WARN, "authentication cleanup failed", "method", what, "error", err.message, NULL);
    else if (deleted) {
        char num[24];
        snprintf(num, sizeof(num), "%u", deleted);
        ef_log(EF_LOG_INFO, "authentication cleanup deleted expired authentications", "method", what,
               "deleted", num, NULL);
    }
}

static void *cleanup_main(void *arg)
{
    ef_thread_name("ef-auth-clean");
    ef_auth_cleanup *c = arg;
    /* as Flipt: a first pass at start, then one per interval */
    int64_t next_token = ef_clock_mono_ns(), next_oidc = next_token;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        int64_t now = ef_clock_mono_ns();
        bool do_token = c->cfg.token_interval_s && now >= next_token;
        bool do_oidc = c->cfg.oidc_interval_s && now >= next_oidc;
        if (do_token || do_oidc) {
            pthread_mutex_unlock(&c->mu);
            if (do_token) {
                run_method(c, false, c->cfg.token_grace_s);
                next_token = now + (int64_t)c->cfg.token_interval_s * 1000000000;
            }
            if (do_oidc) {
                run_method(c, true, c->cfg.oidc_grace_s);
                next_oidc = now + (int64_t)c->cfg.oidc_interval_s * 1000000000;
            }
            pthread_mutex_lock(&c->mu);
            continue;
        }
        int64_t due = INT64_MAX;
        if (c->cfg.token_interval_s && next_token < due) due = next_token;
        if (c->cfg.oidc_interval_s && next_oidc < due) due = next_oidc;
        if (due == INT64_MAX) {
            pthread_cond_wait(&c->cv, &c->mu);
            continue;
        }
        struct timespec ts = {.tv_sec = (time_t)(due / 1000000000LL), .tv_nsec = (long)(due % 1000000000LL)};
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

ef_auth_cleanup *ef_auth_cleanup_start(ef_store *store, const ef_auth_cleanup_config *cfg, char *err, size_t errlen)
{
    ef_auth_cleanup *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->store = store;
    c->cfg = *cfg;
    pthread_mutex_init(&c->mu, NULL);
    ef_cond_init_monotonic(&c->cv); /* ef_clock_mono_ns deadlines */
    int e = pthread_create(&c->thread, NULL, cleanup_main, c);
    if (e != 0) {
        snprintf(err, errlen, "authentication cleanup: %s", strerror(e));
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return NULL;
    }
    return c;
}

void ef_auth_cleanup_stop(ef_auth_cleanup *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
