/*
 * reporter.c - a replica's reports to its upstream, and every node's report route.
 *
 * A replica POSTs {upstream}/edgeflag/v1/cluster/report every REPORT_EVERY_MS, and soon after it
 * applied a write or heard from a replica below it (REPORT_SOON_MS later at most, so a write's
 * timeline fills within milliseconds per hop; REPORT_BUSY_MS apart while writes keep coming): the
 * body is the view of itself and its subtree (cluster_view.h), and the evaluation activity of
 * itself and its subtree per flag and minute (member "activity", written and read by the
 * ef_report_member the composition root gives, which is api/activity_peers.h: the last minutes, the
 * whole window on the first report, after a failed one and every ACT_FULL_EVERY of them; about once
 * a second, so the reports kicked by writes stay small); the answer is the upstream's whole view,
 * which this node then shows too. One thread, one kept-alive connection, bounded by timeouts; a
 * failure is logged once per outage and never holds up replication (the follower does not wait for
 * it).
 *
 * The route (EF_ROUTE_INTERNAL, like the replication stream) answers the reporter. It never
 * writes to the store, so a replica does not forward it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

#include "base/arena.h"
#include "base/clock.h"
#include "base/json.h"
#include "base/log.h"
#include "base/tls_client.h"
#include "sync/sync_int.h"
#include "base/thread.h"

#define REPORT_EVERY_MS 1000
#define REPORT_SOON_MS 20
/* Between reports kicked back to back: under a stream of writes every replica reporting each 20 ms
 * made the primary answer 50 whole views a second per replica (about a seventh of a 10-replica
 * cluster's CPU, with the replicas' side). */
#define REPORT_BUSY_MS 100
#define REPORT_TIMEOUT_MS 2000
#define ANSWER_MAX (1u << 20)
#define ACT_FULL_EVERY 30 /* activity reports between two with the whole window (heals what a receiver missed) */
#define ACT_EVERY_MS 900 /* activity goes in one report a second: a little under the period, so
                           * every periodic report carries it and those kicked between them do not */

struct ef_reporter {
    ef_sync *s;
    pthread_t thread;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, kicked; /* under mu */
    ef_buf answer;     /* reporter thread only */
    char curl_err[CURL_ERROR_SIZE]; /* libcurl's account of a failed report */
    bool failing;      /* reporter thread only: the last report failed (log once) */
    bool sent_full;    /* reporter thread only: a report with the whole activity window went through */
    bool full_pending; /* reporter thread only: the report in flight has the whole window */
    unsigned act_reports; /* reporter thread only: reports sent with activity */
    int64_t act_last_ns;  /* reporter thread only: when the last one was (monotonic) */
};

void ef_reporter_kick(ef_reporter *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    /* Already kicked: the thread's wait is already aimed at REPORT_SOON_MS, and waking it for
     * every write of a burst costs a context switch each (it recomputes the same deadline). */
    if (!r->kicked) {
        r->kicked = true;
        pthread_cond_signal(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
}

static size_t on_answer(char *p, size_t size, size_t nmemb, void *ud)
{
    ef_reporter *r = ud;
    size_t n = size * nmemb;
    if (r->answer.len + n > ANSWER_MAX) return 0; /* a peer that sends too much is cut off */
    ef_buf_append(&r->answer, p, n);
    return n;
}

/* One report; returns 0 or -1 with why. */
static int report_once(ef_reporter *r, CURL *c, struct curl_slist *hdrs, ef_cluster_view *v, ef_buf *body,
                       char *why, size_t whylen)
{
    ef_sync *s = r->s;
    ef_tree_build(s->tree, v, false);
    ef_buf_clear(body);
    ef_cv_write_json(v, body);
    /* the activity rides in the same object (its closing brace makes room for one more member),
     * at most once every ACT_EVERY_MS: a report kicked by each applied write leaves it out */
    int64_t now = ef_clock_mono_ns();
    bool full = !r->sent_full || r->failing || r->act_reports % ACT_FULL_EVERY == 0;
    r->full_pending = false;
    const ef_report_member *act = &s->cfg.activity;
    if (act->write && (full || now - r->act_last_ns >= ACT_EVERY_MS * 1000000LL) && body->len &&
        body->data[body->len - 1] == '}') {
        body->len--;
        ef_buf_puts(body, ",\"activity\":");
        act->write(act->ctx, full, body);
        ef_buf_putc(body, '}');
        r->full_pending = full;
        r->act_last_ns = now;
        r->act_reports++;
    }
    if (!ef_buf_ok(body)) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    ef_buf_clear(&r->answer);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body->len);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        ef_tls_client_error((int)rc, r->curl_err, s->upstream, why, whylen);
        return -1;
    }
    if (status != 200) {
        snprintf(why, whylen, "upstream answered %ld: %.*s", status,
                 (int)(r->answer.len < 300 ? r->answer.len : 300), r->answer.data ? r->answer.data : "");
        return -1;
    }
    if (r->full_pending) r->sent_full = true;
    if (ef_cv_parse(r->answer.data ? r->answer.data : "", r->answer.len, v, why, whylen) != 0) return -1;
    ef_tree_upstream_view(s->tree, v);
    pthread_mutex_lock(&s->mu);
    ef_sync_status_changed_locked(s);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static void *reporter_main(void *arg)
{
    ef_thread_name("ef-reporter");
    ef_reporter *r = arg;
    ef_sync *s = r->s;
    char url[2100], auth[1100];
    snprintf(url, sizeof(url), "%s/edgeflag/v1/cluster/report", s->upstream);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (s->upstream_token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", s->upstream_token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    CURL *c = curl_easy_init();
    ef_cluster_view *v = malloc(sizeof(*v));
    ef_buf body;
    ef_buf_init(&body);
    if (!c || !hdrs || !v) {
        ef_log(EF_LOG_ERROR, "cluster reports: out of memory; this replica will not report upstream", NULL);
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    ef_tls_client_apply(c, &s->cfg.upstream_tls, r->curl_err); /* the follower's TLS settings */
    curl_easy_setopt(c, CURLOPT_USERAGENT, "edgeflag-replica/" EF_VERSION);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)REPORT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_answer);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    int64_t last = 0;
    bool last_kicked = false; /* the last report went because of a kick */
    for (;;) {
        pthread_mutex_lock(&r->mu);
        int64_t now = ef_clock_mono_ns();
        /* the next report: at the period, or when kicked REPORT_SOON_MS after the last one (at
         * once after a quiet spell), REPORT_BUSY_MS when the last one was kicked too */
        for (;;) {
            if (r->stop) break;
            int64_t soon = last_kicked ? REPORT_BUSY_MS : REPORT_SOON_MS;
            int64_t due = last + (r->kicked ? soon : REPORT_EVERY_MS) * 1000000LL;
            now = ef_clock_mono_ns();
            if (now >= due) break;
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            int64_t wait = due - now;
            until.tv_sec += wait / 1000000000LL;
            until.tv_nsec += wait % 1000000000LL;
            if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&r->cv, &r->mu, &until);
        }
        bool stop = r->stop;
        last_kicked = r->kicked;
        r->kicked = false;
        pthread_mutex_unlock(&r->mu);
        if (stop) break;
        last = ef_clock_mono_ns();
        char why[400];
        if (report_once(r, c, hdrs, v, &body, why, sizeof(why)) != 0) {
            if (!r->failing)
                ef_log(EF_LOG_WARN, "cluster report to upstream failed (the picture above this node is "
                       "stale until it works again)", "upstream", s->upstream, "error", why, NULL);
            r->failing = true;
        } else if (r->failing) {
            ef_log(EF_LOG_INFO, "cluster reports to upstream work again", "upstream", s->upstream, NULL);
            r->failing = false;
        }
    }
out:
    ef_buf_free(&body);
    free(v);
    if (c) curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    return NULL;
}

ef_reporter *ef_reporter_new(ef_sync *s)
{
    ef_reporter *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->s = s;
    pthread_mutex_init(&r->mu, NULL);
    ef_cond_init_monotonic(&r->cv);
    ef_buf_init(&r->answer);
    return r;
}

int ef_reporter_start(ef_reporter *r)
{
    if (pthread_create(&r->thread, NULL, reporter_main, r) != 0) return -1;
    r->running = true;
    return 0;
}

void ef_reporter_stop(ef_reporter *r)
{
    if (!r || !r->running) return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    r->running = false;
}

void ef_reporter_free(ef_reporter *r)
{
    if (!r) return;
    ef_reporter_stop(r);
    ef_buf_free(&r->answer);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static bool in_view(const char *node, void *ctx)
{
    return ef_cv_find(ctx, node) != NULL;
}

/* POST /edgeflag/v1/cluster/report: a replica's view of itself and below; the answer is this
 * node's whole view. */
static void on_report(ef_http_req *req, void *ctx)
{
    ef_sync *s = ctx;
    ef_bytes body = ef_http_body(req);
    ef_cluster_view *v = malloc(sizeof(*v));
    if (!v) {
        ef_http_error(req, 500, 13, "out of memory");
        return;
    }
    char err[300];
    /* one parse: the view and the activity are both members of the same document */
    ef_arena a;
    ef_arena_init(&a, 4096);
    const ef_json *root = ef_cv_json_parse(body.p ? body.p : "", body.n, &a, err, sizeof(err));
    int rc = root ? ef_cv_from_json(root, v, err, sizeof(err)) : -1;
    /* the activity is checked whole before anything of the report is kept */
    const ef_report_member *am = &s->cfg.activity;
    void *act = NULL;
    if (rc == 0 && am->check) rc = am->check(am->ctx, ef_json_get(root, "activity"), &act, err, sizeof(err));
    if (rc == 0) rc = ef_tree_report(s->tree, v, err, sizeof(err));
    /* only for nodes the report draws (the sender and its subtree), never for this node */
    if (rc == 0 && am->apply) am->apply(am->ctx, act, in_view, v);
    if (am->discard) am->discard(act);
    ef_arena_free(&a);
    if (rc != 0) {
        free(v);
        if (rc == -2)
            ef_http_error(req, 503, 14, "%s", err);
        else
            ef_http_bad_request(req, "%s", err);
        return;
    }
    pthread_mutex_lock(&s->mu);
    ef_sync_status_changed_locked(s);
    pthread_mutex_unlock(&s->mu);
    ef_reporter_kick(s->reporter); /* a chained replica's news goes further up soon */
    ef_tree_build(s->tree, v, true);
    ef_cv_write_json(v, ef_http_out(req));
    free(v);
    ef_http_reply(req, 200);
}

int ef_reporter_register(ef_router *r, ef_sync *s)
{
    return ef_router_add_route(r, &(ef_route){.methods = EF_POST, .pattern = "/edgeflag/v1/cluster/report",
                                              .fn = on_report, .ctx = s, .cls = EF_ROUTE_INTERNAL});
}
