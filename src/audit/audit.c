/*
 * audit.c - the audit delivery thread (see audit.h): a bounded queue of committed entries, each
 * turned into Flipt's event and handed to the log sink and the webhook sink, the webhook retried
 * with exponential backoff until it takes the event.
 *
 * It must never block a write (the commit listener only copies under a mutex held for a pointer
 * push), never grow without bound (queue_max; overflow is dropped, counted and logged), never lose
 * an event to a receiver that is merely down (retried until 2xx or a refusal), and never make a
 * call without a timeout. The signing secret is never logged.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>

#include "audit/audit.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/sha256.h"
#include "base/thread.h"

#define AUDIT_BACKOFF_FIRST_MS 100
#define AUDIT_QUEUE_DEFAULT 10000
#define AUDIT_QUEUE_BYTES ((size_t)64 << 20) /* entries can be large (a forced namespace delete) */

typedef struct item {
    struct item *next;
    uint64_t seq;
    size_t len;
    char text[]; /* the entry */
} item;

struct ef_audit {
    ef_audit_filter filter;
    char *history;
    char *log_path;
    FILE *log; /* the log sink's file (or stdout), or NULL */
    char *url, *secret;
    unsigned max_backoff_ms, timeout_ms;
    size_t queue_max;
    ef_metric_family *events; /* edgeflag_audit_events_total{sink,result} */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* queue not empty, or stopping */
    item *head, *tail;
    size_t queued;
    size_t queued_bytes;
    uint64_t dropped_unlogged; /* drops not yet reported in the log (rate-limited) */
    int64_t drop_logged_ns;
    bool stopping, started;
    int64_t deadline_ns; /* when stopping: monotonic time after which what is left is dropped */
    pthread_t thread;
    CURL *curl; /* the thread's own */
    char *cursor_path;   /* where the last handled seq is kept across restarts, or NULL */
    uint64_t handled;    /* last seq whose event was handled (delivered, refused or filtered) */
    uint64_t saved;      /* the seq the cursor file holds */
    int64_t saved_ns;    /* when it was written (monotonic) */
};

/* The cursor file: "<history> <seq>\n", replaced whole (write, fsync, rename), so a restart
 * resumes after the last event every sink took and a crash at worst sends a few again (their
 * idempotency keys say so). */
static void cursor_save(ef_audit *a, bool force)
{
    if (!a->cursor_path || a->handled == a->saved) return;
    int64_t now = ef_clock_mono_ns();
    if (!force && now - a->saved_ns < 200000000LL) return; /* at most five writes a second */
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", a->cursor_path);
    FILE *f = fopen(tmp, "we");
    if (!f) return;
    fprintf(f, "%s %llu\n", a->history, (unsigned long long)a->handled);
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, a->cursor_path) == 0) {
        a->saved = a->handled;
        a->saved_ns = now;
    }
}

static void count(ef_audit *a, const char *sink, const char *result, uint64_t n)
{
    if (!a->events || !n) return;
    ef_bytes l[2] = {ef_bytes_of(sink), ef_bytes_of(result)};
    ef_counter_add(a->events, l, n);
}

ef_audit *ef_audit_new(const ef_audit_config *cfg, ef_metrics *metrics, char *err, size_t errlen)
{
    ef_audit *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    ef_cond_init_monotonic(&a->cv);
    char ferr[160];
    if (ef_audit_filter_parse(cfg->events, &a->filter, ferr, sizeof(ferr)) != 0) {
        snprintf(err, errlen, "audit.events: %s", ferr);
        goto fail;
    }
    a->max_backoff_ms = cfg->max_backoff_ms ? cfg->max_backoff_ms : 15000;
    a->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 10000;
    a->queue_max = cfg->queue_max ? cfg->queue_max : AUDIT_QUEUE_DEFAULT;
    a->history = strdup(cfg->history ? cfg->history : "");
    if (!a->history) goto oom;
    if (cfg->cursor_path && !(a->cursor_path = strdup(cfg->cursor_path))) goto oom;
    if (cfg->log_file && *cfg->log_file) {
        if (!strcmp(cfg->log_file, "-")) {
            a->log = stdout;
        } else if (!(a->log = fopen(cfg->log_file, "ae"))) {
            snprintf(err, errlen, "audit log sink: cannot open %s for appending", cfg->log_file);
            goto fail;
        } else if (!(a->log_path = strdup(cfg->log_file))) {
            goto oom;
        }
    }
    if (cfg->webhook_url && *cfg->webhook_url) {
        if (strncmp(cfg->webhook_url, "http://", 7) && strncmp(cfg->webhook_url, "https://", 8)) {
            snprintf(err, errlen, "audit webhook url must be http:// or https://");
            goto fail;
        }
        if (!(a->url = strdup(cfg->webhook_url)) ||
            !(a->secret = strdup(cfg->webhook_secret ? cfg->webhook_secret : "")) || !(a->curl = curl_easy_init()))
            goto oom;
    }
    if (metrics) {
        static const char *const labels[] = {"sink", "result"};
        a->events = ef_metrics_counter(metrics, "edgeflag_audit_events_total",
                                       "Audit events by sink and result: delivered; failed (a webhook attempt "
                                       "that will be retried, or refused for good); dropped (sink queue: the "
                                       "queue was full or the server stopped first)",
                                       2, labels, 16);
        if (!a->events) goto oom;
    }
    return a;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    ef_audit_free(a);
    return NULL;
}

int ef_audit_committed(void *audit, const ef_store_change *c)
{
    ef_audit *a = audit;
    /* copied before the lock: a large entry never holds up the delivery thread's lock */
    item *it = malloc(sizeof(item) + c->entry.n + 1);
    if (it) {
        it->next = NULL;
        it->seq = c->seq;
        it->len = c->entry.n;
        memcpy(it->text, c->entry.p, c->entry.n);
        it->text[c->entry.n] = '\0';
    }
    pthread_mutex_lock(&a->mu);
    bool take = it && a->queued < a->queue_max && a->queued_bytes + c->entry.n <= AUDIT_QUEUE_BYTES && !a->stopping;
    if (take) {
        a->queued_bytes += c->entry.n;
        if (a->tail)
            a->tail->next = it;
        else
            a->head = it;
        a->tail = it;
        a->queued++;
        pthread_cond_signal(&a->cv);
    } else {
        a->dropped_unlogged++;
    }
    pthread_mutex_unlock(&a->mu);
    if (!take) {
        free(it);
        count(a, "queue", "dropped", 1);
    }
    return 0;
}

/* Logs drops at most once a second (a full queue under a write storm must not flood the log). */
static void report_drops(ef_audit *a, bool force)
{
    pthread_mutex_lock(&a->mu);
    uint64_t n = a->dropped_unlogged;
    int64_t now = ef_clock_mono_ns();
    bool due = n && (force || now - a->drop_logged_ns >= 1000000000LL);
    if (due) {
        a->dropped_unlogged = 0;
        a->drop_logged_ns = now;
    }
    pthread_mutex_unlock(&a->mu);
    if (!due) return;
    char s[32];
    snprintf(s, sizeof(s), "%llu", (unsigned long long)n);
    ef_log(EF_LOG_WARN, "audit queue full: events dropped", "dropped", s, NULL);
}

static size_t discard_body(char *p, size_t size, size_t nmemb, void *ud)
{
    (void)p;
    (void)ud;
    return size * nmemb;
}

/* One POST of the event. 1 delivered, 0 retry later, -1 refused for good (a 4xx other than 408
 * and 429: sending the same body again will not change the answer). */
static int webhook_post(ef_audit *a, const ef_buf *body, const char *key)
{
    CURL *c = a->curl;
    curl_easy_reset(c);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char line[200];
    snprintf(line, sizeof(line), "Idempotency-Key: %s", key);
    h = curl_slist_append(h, line);
    h = curl_slist_append(h, "Expect:");
    if (a->secret[0]) {
        uint8_t mac[32];
        if (ef_hmac_sha256(a->secret, strlen(a->secret), body->data, body->len, mac) != 0) {
            curl_slist_free_all(h);
            return 0;
        }
        char hex[65];
        for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", mac[i]);
        snprintf(line, sizeof(line), "x-flipt-webhook-signature: %s", hex);
        h = curl_slist_append(h, line);
    }
    curl_easy_setopt(c, CURLOPT_URL, a->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(a->timeout_ms < 2000 ? a->timeout_ms : 2000));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)a->timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "edgeflag-audit/" EF_VERSION);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    if (rc == CURLE_OK && status >= 200 && status < 300) return 1;
    char st[32];
    snprintf(st, sizeof(st), "%ld", status);
    if (rc == CURLE_OK && status >= 400 && status < 500 && status != 408 && status != 429) {
        ef_log(EF_LOG_ERROR, "audit webhook refused an event for good", "key", key, "status", st, NULL);
        return -1;
    }
    ef_log(EF_LOG_WARN, "audit webhook delivery failed; will retry", "key", key, "status", st, "error",
           rc == CURLE_OK ? "-" : curl_easy_strerror(rc), NULL);
    return 0;
}

/* Waits ms, or less when stopping past the deadline. Returns false when the thread must give up. */
static bool backoff_wait(ef_audit *a, unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t until = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec + (int64_t)ms * 1000000LL;
    pthread_mutex_lock(&a->mu);
    bool go_on = true;
    for (;;) {
        if (a->stopping && ef_clock_mono_ns() >= a->deadline_ns) {
            go_on = false;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
        if (now >= until) break;
        int64_t wake = until;
        if (a->stopping && a->deadline_ns < wake) wake = a->deadline_ns;
        struct timespec w = {.tv_sec = (time_t)(wake / 1000000000LL), .tv_nsec = (long)(wake % 1000000000LL)};
        pthread_cond_timedwait(&a->cv, &a->mu, &w);
    }
    pthread_mutex_unlock(&a->mu);
    return go_on;
}

/* Delivers one entry's event to every sink. False when the thread is out of time (stopping). */
static bool deliver(ef_audit *a, const item *it, ef_arena *scratch, ef_buf *body)
{
    ef_arena_reset(scratch);
    ef_buf_clear(body);
    char key[EF_AUDIT_KEY_MAX], err[160];
    int rc = ef_audit_event_json(it->text, it->len, &a->filter, a->history, scratch, body, key, err, sizeof(err));
    if (rc < 0) {
        ef_log(EF_LOG_ERROR, "audit: unreadable change-log entry, no event", "error", err, NULL);
        return true;
    }
    if (rc == 0 || !ef_buf_ok(body)) return true; /* filtered out (or no memory: nothing to send) */
    if (a->log) {
        fwrite(body->data, 1, body->len, a->log);
        fputc('\n', a->log);
        bool ok = fflush(a->log) == 0 && !ferror(a->log);
        count(a, "log", ok ? "delivered" : "failed", 1);
    }
    if (!a->url) return true;
    unsigned wait = AUDIT_BACKOFF_FIRST_MS;
    for (;;) {
        int r = webhook_post(a, body, key);
        if (r > 0) {
            count(a, "webhook", "delivered", 1);
            return true;
        }
        count(a, "webhook", "failed", 1);
        report_drops(a, false); /* the queue fills behind a receiver that is down */
        if (r < 0) return true;
        if (!backoff_wait(a, wait)) return false;
        wait = wait >= a->max_backoff_ms / 2 ? a->max_backoff_ms : wait * 2;
    }
}

static void *audit_main(void *p)
{
    ef_thread_name("ef-audit");
    ef_audit *a = p;
    ef_arena scratch;
    ef_arena_init(&scratch, 16384);
    ef_buf body;
    ef_buf_init(&body);
    for (;;) {
        pthread_mutex_lock(&a->mu);
        while (!a->head && !a->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += 1; /* wakes to report drops */
            pthread_cond_timedwait(&a->cv, &a->mu, &ts);
            if (!a->head && a->dropped_unlogged) break;
        }
        item *it = a->head;
        bool out_of_time = a->stopping && (!it || ef_clock_mono_ns() >= a->deadline_ns);
        pthread_mutex_unlock(&a->mu);
        report_drops(a, false);
        if (out_of_time) break;
        if (!it) continue;
        if (!deliver(a, it, &scratch, &body)) break;
        a->handled = it->seq;
        pthread_mutex_lock(&a->mu); /* only this thread removes: it is still the head */
        a->head = it->next;
        if (!a->head) a->tail = NULL;
        a->queued--;
        a->queued_bytes -= it->len;
        bool idle = !a->head;
        pthread_mutex_unlock(&a->mu);
        free(it);
        cursor_save(a, false);
        if (idle) cursor_save(a, true);
    }
    cursor_save(a, true);
    ef_buf_free(&body);
    ef_arena_free(&scratch);
    return NULL;
}

typedef struct resume_ctx {
    ef_audit *a;
    uint64_t last;
} resume_ctx;

static int resume_one(void *ctx, const ef_store_change *c)
{
    resume_ctx *r = ctx;
    ef_audit_committed(r->a, c);
    r->last = c->seq;
    return 0;
}

int ef_audit_resume(ef_audit *a, ef_store *store, char *err, size_t errlen)
{
    uint64_t seq, first;
    ef_store_err se;
    if (ef_store_seq(store, &seq, &first, &se) != 0) {
        snprintf(err, errlen, "audit: %s", se.message);
        return -1;
    }
    uint64_t from = seq; /* without a cursor of this history: only writes from now on */
    FILE *f = a->cursor_path ? fopen(a->cursor_path, "re") : NULL;
    if (f) {
        char hist[EF_STORE_ID_MAX + 2];
        unsigned long long at;
        if (fscanf(f, "%65s %llu", hist, &at) == 2 && !strcmp(hist, a->history) && at <= seq) from = at;
        fclose(f);
    }
    a->handled = a->saved = from;
    if (from < seq) {
        if (from + 1 < first) { /* trimmed from the change log before they were sent */
            count(a, "queue", "dropped", first - 1 - from);
            pthread_mutex_lock(&a->mu);
            a->dropped_unlogged += first - 1 - from;
            pthread_mutex_unlock(&a->mu);
            from = first - 1;
        }
        resume_ctx r = {a, from};
        if (ef_store_changes(store, from, 0, resume_one, &r, &se) != 0) {
            snprintf(err, errlen, "audit: resuming after seq %llu: %s", (unsigned long long)from, se.message);
            return -1;
        }
        char n[32];
        snprintf(n, sizeof(n), "%llu", (unsigned long long)(r.last - from));
        if (r.last > from) ef_log(EF_LOG_INFO, "audit: resending the events of writes not yet delivered", "writes", n, NULL);
    }
    cursor_save(a, true);
    return 0;
}

int ef_audit_start(ef_audit *a)
{
    if (pthread_create(&a->thread, NULL, audit_main, a) != 0) return -1;
    a->started = true;
    return 0;
}

void ef_audit_stop(ef_audit *a, unsigned grace_ms)
{
    if (!a) return;
    pthread_mutex_lock(&a->mu);
    if (!a->stopping) {
        a->stopping = true;
        a->deadline_ns = ef_clock_mono_ns() + (int64_t)grace_ms * 1000000LL;
    }
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    if (a->started) pthread_join(a->thread, NULL);
    a->started = false;
    /* what the grace period did not deliver */
    uint64_t left = 0;
    while (a->head) {
        item *it = a->head;
        a->head = it->next;
        free(it);
        left++;
    }
    a->tail = NULL;
    a->queued = 0;
    a->queued_bytes = 0;
    if (left) {
        count(a, "queue", "dropped", left);
        a->dropped_unlogged += left;
    }
    report_drops(a, true);
}

void ef_audit_free(ef_audit *a)
{
    if (!a) return;
    ef_audit_stop(a, 0);
    if (a->log && a->log != stdout) fclose(a->log);
    if (a->curl) curl_easy_cleanup(a->curl);
    free(a->history);
    free(a->cursor_path);
    free(a->log_path);
    free(a->url);
    free(a->secret);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
}
