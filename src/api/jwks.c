/*
 * jwks.c - JWT key sources (see jwks.h). A request must never wait here for the network and never
 * cause more than one fetch per min_refresh_s; a bad or unreachable key set must never replace a
 * good one.
 *
 * A replaced key set is freed by call_rcu after every read section that could see it ended; that
 * ordering is liburcu's, which ThreadSanitizer cannot see, so under EF_TSAN the read section and
 * the reclaim carry the release/acquire annotations of base/tsan.h (as the registry's and auth's).
 */
#include "api/jwks.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <urcu-bp.h>

#include "api/fetch.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/tsan.h"
#include "base/thread.h"

typedef struct published {
    struct rcu_head rcu;
    ef_jwt_keys *keys;
    int *grace; /* the owner's read-section marker (base/tsan.h) */
} published;

struct ef_jwks {
    ef_jwks_config cfg;
    char *url;
    published *cur; /* read with acquire inside an RCU read section; NULL until the first fetch */
    int grace;      /* TSan only: read sections release it, reclaims acquire it */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    bool kicked;   /* a token named an unknown key: fetch as soon as min_refresh_s allows */
    int kick_flag; /* atomic: set once per pending kick, so requests do not all take the mutex */
    bool thread_started;
    pthread_t thread;
    uint64_t fetches; /* atomic */
};

static void published_free(published *p)
{
    if (!p) return;
    ef_jwt_keys_free(p->keys);
    free(p);
}

static void published_reclaim(struct rcu_head *h)
{
    published *p = caa_container_of(h, published, rcu);
    TSAN_ACQUIRE(p);        /* the publish that retired it (call_rcu's queue) */
    TSAN_ACQUIRE(p->grace); /* every reader that could see it has left */
    published_free(p);
}

static void publish(ef_jwks *j, ef_jwt_keys *keys)
{
    published *p = calloc(1, sizeof(*p));
    if (!p) {
        ef_jwt_keys_free(keys);
        return;
    }
    p->keys = keys;
    p->grace = &j->grace;
    published *old = __atomic_exchange_n(&j->cur, p, __ATOMIC_ACQ_REL);
    if (old) {
        TSAN_RELEASE(old);
        call_rcu(&old->rcu, published_reclaim);
    }
}

/* One fetch; publishes on success. */
static int fetch_once(ef_jwks *j)
{
    ef_buf body;
    ef_buf_init(&body);
    long status = 0;
    char err[256];
    ef_fetch_req r = {.url = j->url, .max_body = EF_JWT_MAX_JWKS, .timeout_ms = j->cfg.timeout_ms,
                      .cancel = &j->stopping};
    int rc = -1;
    if (ef_fetch(&r, &body, &status, err, sizeof(err)) != 0) {
        ef_log(EF_LOG_WARN, "jwt: cannot fetch the key set; keeping the last one", "url", j->url, "error", err, NULL);
    } else if (status != 200) {
        char st[16];
        snprintf(st, sizeof(st), "%ld", status);
        ef_log(EF_LOG_WARN, "jwt: key set URL did not answer 200; keeping the last key set", "url", j->url,
               "status", st, NULL);
    } else {
        size_t skipped = 0;
        ef_jwt_keys *ks = ef_jwt_keys_from_jwks(body.data ? body.data : "", body.len, &skipped, err, sizeof(err));
        if (!ks) {
            ef_log(EF_LOG_WARN, "jwt: key set refused; keeping the last one", "url", j->url, "error", err, NULL);
        } else {
            char n[32], sk[32];
            snprintf(n, sizeof(n), "%zu", ef_jwt_keys_count(ks));
            snprintf(sk, sizeof(sk), "%zu", skipped);
            ef_log(skipped ? EF_LOG_INFO : EF_LOG_DEBUG, "jwt: key set fetched", "url", j->url, "keys", n,
                   "skipped", sk, NULL);
            publish(j, ks);
            __atomic_add_fetch(&j->fetches, 1, __ATOMIC_RELAXED);
            rc = 0;
        }
    }
    ef_buf_free(&body);
    return rc;
}

static void deadline_after(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* Fetches at start, then every refresh_s, on a kick (not sooner than min_refresh_s after the
 * previous fetch) and, after a failure, again with backoff (1 s doubling up to refresh_s). */
static void *refresh_loop(void *arg)
{
    ef_thread_name("ef-jwks");
    ef_jwks *j = arg;
    int64_t last = 0; /* mono ns of the last attempt; 0: none yet */
    int64_t backoff_ms = 0;
    pthread_mutex_lock(&j->mu);
    while (!j->stopping) {
        int64_t now = ef_clock_mono_ns();
        int64_t min_gap = (int64_t)j->cfg.min_refresh_s * 1000000000LL;
        int64_t wait_ms;
        if (!last)
            wait_ms = 0;
        else if (backoff_ms)
            wait_ms = (last + backoff_ms * 1000000LL - now) / 1000000;
        else
            wait_ms = (last + (int64_t)j->cfg.refresh_s * 1000000000LL - now) / 1000000;
        if (j->kicked) {
            int64_t kick_ms = (last + min_gap - now) / 1000000;
            if (kick_ms < wait_ms) wait_ms = kick_ms;
        }
        if (wait_ms > 0) {
            struct timespec ts;
            deadline_after(&ts, wait_ms);
            pthread_cond_timedwait(&j->cv, &j->mu, &ts);
            continue; /* recompute: woken by a kick, a stop, or the time */
        }
        j->kicked = false;
        __atomic_store_n(&j->kick_flag, 0, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&j->mu);
        last = ef_clock_mono_ns();
        if (fetch_once(j) == 0) {
            backoff_ms = 0;
        } else {
            backoff_ms = backoff_ms ? backoff_ms * 2 : 1000;
            if (backoff_ms > (int64_t)j->cfg.refresh_s * 1000) backoff_ms = (int64_t)j->cfg.refresh_s * 1000;
            if (backoff_ms < (int64_t)j->cfg.min_refresh_s * 1000) backoff_ms = (int64_t)j->cfg.min_refresh_s * 1000;
        }
        pthread_mutex_lock(&j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

ef_jwks *ef_jwks_new(const ef_jwks_config *c, char *err, size_t errlen)
{
    bool has_url = c->url && *c->url, has_file = c->pem_file && *c->pem_file;
    if (has_url == has_file) {
        snprintf(err, errlen, "jwt: one of jwks_url or public_key_file is required%s",
                 has_url ? " (not both)" : "");
        return NULL;
    }
    if (has_url && strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0) {
        snprintf(err, errlen, "jwt: jwks_url must be an http:// or https:// URL");
        return NULL;
    }
    ef_jwks *j = calloc(1, sizeof(*j));
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    j->cfg = *c;
    if (!j->cfg.refresh_s) j->cfg.refresh_s = 300;
    if (!j->cfg.min_refresh_s) j->cfg.min_refresh_s = 10;
    if (!j->cfg.timeout_ms) j->cfg.timeout_ms = 5000;
    j->cfg.url = j->cfg.pem_file = NULL; /* not kept: the caller owns them */
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_t *cv = &j->cv;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    if (has_file) {
        char *pem = NULL, ferr[256];
        size_t pl = 0;
        int frc = ef_file_read(c->pem_file, EF_FILE_MAX_SMALL, &pem, &pl);
        if (frc != 0) {
            snprintf(err, errlen, "jwt: public_key_file %s: %s", c->pem_file, ef_file_strerror(frc));
            ef_jwks_free(j);
            return NULL;
        }
        ef_jwt_keys *ks = ef_jwt_keys_from_pem(pem, pl, ferr, sizeof(ferr));
        free(pem);
        if (!ks) {
            snprintf(err, errlen, "jwt: public_key_file %s: %s", c->pem_file, ferr);
            ef_jwks_free(j);
            return NULL;
        }
        publish(j, ks);
        return j;
    }
    if (!(j->url = strdup(c->url)) || pthread_create(&j->thread, NULL, refresh_loop, j) != 0) {
        snprintf(err, errlen, "jwt: cannot start the key set refresher");
        ef_jwks_free(j);
        return NULL;
    }
    j->thread_started = true;
    return j;
}

void ef_jwks_free(ef_jwks *j)
{
    if (!j) return;
    if (j->thread_started) {
        pthread_mutex_lock(&j->mu);
        __atomic_store_n(&j->stopping, true, __ATOMIC_RELEASE); /* also read by a fetch under way */
        pthread_cond_signal(&j->cv);
        pthread_mutex_unlock(&j->mu);
        pthread_join(j->thread, NULL);
    }
    rcu_barrier();
    published_free(j->cur);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->url);
    free(j);
}

static void kick(ef_jwks *j)
{
    if (!j->thread_started) return;
    if (__atomic_exchange_n(&j->kick_flag, 1, __ATOMIC_ACQ_REL)) return; /* already asked */
    pthread_mutex_lock(&j->mu);
    j->kicked = true;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

ef_jwt_status ef_jwks_verify(ef_jwks *j, const ef_jwt *t, char *err, size_t errlen)
{
    rcu_read_lock();
    published *p = __atomic_load_n(&j->cur, __ATOMIC_ACQUIRE);
    ef_jwt_status st = ef_jwt_verify(t, p ? p->keys : NULL, err, errlen);
    TSAN_RELEASE(&j->grace);
    rcu_read_unlock();
    if (st == EF_JWT_UNKNOWN_KEY) kick(j);
    return st;
}

uint64_t ef_jwks_fetches(const ef_jwks *j)
{
    return __atomic_load_n(&j->fetches, __ATOMIC_RELAXED);
}
