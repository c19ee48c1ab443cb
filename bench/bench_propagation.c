/*
 * bench_propagation.c - the light measuring side of the propagation benchmark (issue 11): one
 * keep-alive connection writing to the primary, one keep-alive connection per replica, and for each
 * write the time from the primary's acknowledgement until every replica serves it. Nodes are
 * started by bench/propagation.mjs (--client), which then only waits.
 *
 * A replica "serves" write v when it answers GET /api/v1/namespaces/NS carrying
 * X-Edgeflag-Min-Version: v (a route that honours it: the replica holds the request until it has
 * applied v) with an X-Edgeflag-Version of at least v. Prints p50/p99/max of those times, and of
 * the primary's own round trip (commit + publish + HTTP), then the means of the stages the nodes
 * measure themselves (/metrics: edgeflag_store_write_duration_seconds and
 * edgeflag_replication_stage_seconds) for the primary and the first replica. It asserts nothing and must never
 * write anywhere but the primary's namespace it is given.
 *
 * Usage: bench_propagation --primary URL --replica URL [--replica URL ...] [--writes N] [--ns NS]
 *        [--label TEXT]
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_REPLICAS 64

typedef struct conn {
    CURL *h;
    struct curl_slist *hdrs;
    uint64_t version; /* X-Edgeflag-Version of the last answer */
    char body[256];   /* the start of the last answer, for error messages */
    size_t nbody;
    long status;
    double done_ms;   /* when the last answer completed */
} conn;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
    conn *c = ctx;
    size_t len = size * n;
    static const char name[] = "x-edgeflag-version:";
    if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0)
        c->version = strtoull(p + sizeof(name) - 1, NULL, 10);
    return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    conn *c = ctx;
    size_t len = size * n, room = sizeof(c->body) - 1 - c->nbody;
    size_t k = len < room ? len : room; /* only its start is kept: the headers are what matter */
    memcpy(c->body + c->nbody, p, k);
    c->nbody += k;
    c->body[c->nbody] = '\0';
    return len;
}

static void conn_init(conn *c)
{
    memset(c, 0, sizeof(*c));
    c->h = curl_easy_init();
    if (!c->h) {
        fputs("bench_propagation: curl_easy_init failed\n", stderr);
        exit(2);
    }
    curl_easy_setopt(c->h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c->h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, 30000L);
}

typedef struct text {
    char *p;
    size_t n;
} text;

static size_t on_text(char *p, size_t size, size_t n, void *ctx)
{
    text *t = ctx;
    size_t len = size * n;
    char *q = realloc(t->p, t->n + len + 1);
    if (!q) return 0;
    memcpy(q + t->n, p, len);
    t->n += len;
    q[t->n] = '\0';
    t->p = q;
    return len;
}

/* Means of one histogram series (name + label text) from a /metrics scrape, in ms. */
static void print_mean(const char *label, const char *node, const char *text_, const char *series,
                       const char *what)
{
    char k[256];
    double sum = 0, count = 0;
    /* series is "name{labels}": the text format writes name_sum{labels} */
    const char *brace = strchr(series, '{');
    size_t nl = brace ? (size_t)(brace - series) : strlen(series);
    snprintf(k, sizeof(k), "%.*s_sum%s ", (int)nl, series, brace ? brace : "");
    const char *at = strstr(text_, k);
    if (at) sum = strtod(at + strlen(k), NULL);
    snprintf(k, sizeof(k), "%.*s_count%s ", (int)nl, series, brace ? brace : "");
    at = strstr(text_, k);
    if (at) count = strtod(at + strlen(k), NULL);
    if (count <= 0) return;
    /* p99 from the histogram: the first bucket bound holding 99 % of the observations (the
     * buckets are cumulative, in order). "> last bound" when even the last one does not. */
    double p99 = -1;
    snprintf(k, sizeof(k), "%.*s_bucket%.*s%sle=\"", (int)nl, series,
             brace ? (int)(strlen(brace) - 1) : 1, brace ? brace : "{", brace ? "," : "");
    for (at = strstr(text_, k); at && p99 < 0; at = strstr(at + 1, k)) {
        const char *le = at + strlen(k);
        const char *close = strstr(le, "} ");
        if (!close || strncmp(le, "+Inf", 4) == 0) break;
        if (strtod(close + 2, NULL) >= 0.99 * count) p99 = strtod(le, NULL);
    }
    char tail[48] = "p99 > last bucket";
    if (p99 >= 0) snprintf(tail, sizeof(tail), "p99 <= %.2f ms", p99 * 1e3);
    printf("%-34s %-22s %-8s mean %8.3f ms over %.0f, %s\n", label, what, node, sum / count * 1e3,
           count, tail);
}

static void scrape(const char *base, text *out)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s/metrics", base);
    CURL *h = curl_easy_init();
    if (!h) return;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_text);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_perform(h);
    curl_easy_cleanup(h);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *sorted, size_t n, double p)
{
    size_t i = (size_t)(p / 100.0 * (double)n);
    return sorted[i < n ? i : n - 1];
}

static void print_line(const char *label, const char *what, double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    printf("%-34s %-22s samples %6zu  p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms\n", label, what, n,
           pct(v, n, 50), pct(v, n, 99), n ? v[n - 1] : 0.0);
}

int main(int argc, char **argv)
{
    const char *primary = NULL, *ns = "default", *label = "propagation";
    const char *replicas[MAX_REPLICAS];
    size_t nrep = 0;
    long writes = 1000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--primary")) primary = argv[i + 1];
        else if (!strcmp(argv[i], "--replica") && nrep < MAX_REPLICAS) replicas[nrep++] = argv[i + 1];
        else if (!strcmp(argv[i], "--writes")) writes = strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--ns")) ns = argv[i + 1];
        else if (!strcmp(argv[i], "--label")) label = argv[i + 1];
        else {
            fprintf(stderr, "bench_propagation: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!primary || !nrep || writes <= 0) {
        fputs("usage: bench_propagation --primary URL --replica URL... [--writes N] [--ns NS]\n",
              stderr);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char url[1024], body[256];
    conn w;
    conn_init(&w);
    struct curl_slist *jh = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(w.h, CURLOPT_HTTPHEADER, jh);
    conn r[MAX_REPLICAS];
    CURLM *m = curl_multi_init();
    for (size_t i = 0; i < nrep; i++) {
        conn_init(&r[i]);
        snprintf(url, sizeof(url), "%s/api/v1/namespaces/%s", replicas[i], ns);
        curl_easy_setopt(r[i].h, CURLOPT_URL, url);
        curl_easy_setopt(r[i].h, CURLOPT_PRIVATE, &r[i]);
    }
    double *ack = calloc((size_t)writes, sizeof(double));
    double *serve = calloc((size_t)writes * nrep, sizeof(double));
    double *all = calloc((size_t)writes, sizeof(double));
    if (!ack || !serve || !all) return 2;
    size_t ns_serve = 0;
    /* a prefix per run, so a second run against the same primary creates new keys */
    unsigned tag = (unsigned)(time(NULL) % 100000);
    for (long i = 0; i < writes; i++) {
        snprintf(url, sizeof(url), "%s/api/v1/namespaces/%s/flags", primary, ns);
        snprintf(body, sizeof(body), "{\"key\":\"cp%u_%ld\",\"name\":\"p\",\"enabled\":true}", tag, i);
        curl_easy_setopt(w.h, CURLOPT_URL, url);
        curl_easy_setopt(w.h, CURLOPT_POSTFIELDS, body);
        w.version = 0;
        w.nbody = 0;
        double t_send = now_ms();
        CURLcode cc = curl_easy_perform(w.h);
        double t0 = now_ms();
        curl_easy_getinfo(w.h, CURLINFO_RESPONSE_CODE, &w.status);
        if (cc != CURLE_OK || w.status != 200 || !w.version) {
            fprintf(stderr, "bench_propagation: write %ld: %s, status %ld: %s\n", i,
                    curl_easy_strerror(cc), w.status, w.body);
            return 1;
        }
        ack[i] = t0 - t_send;
        char mv[64];
        snprintf(mv, sizeof(mv), "X-Edgeflag-Min-Version: %" PRIu64, w.version);
        for (size_t k = 0; k < nrep; k++) {
            curl_slist_free_all(r[k].hdrs);
            r[k].hdrs = curl_slist_append(NULL, mv);
            curl_easy_setopt(r[k].h, CURLOPT_HTTPHEADER, r[k].hdrs);
            r[k].version = 0;
            r[k].nbody = 0;
            curl_multi_add_handle(m, r[k].h);
        }
        int running = (int)nrep;
        double slowest = 0;
        while (running) {
            curl_multi_perform(m, &running);
            CURLMsg *msg;
            int left;
            while ((msg = curl_multi_info_read(m, &left))) {
                if (msg->msg != CURLMSG_DONE) continue;
                double t = now_ms() - t0;
                conn *c;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
                curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &c->status);
                if (msg->data.result != CURLE_OK || c->status != 200 || c->version < w.version) {
                    fprintf(stderr, "bench_propagation: a replica did not serve %" PRIu64
                                    " (status %ld, version %" PRIu64 "): %s\n",
                            w.version, c->status, c->version, c->body);
                    return 1;
                }
                serve[ns_serve++] = t;
                if (t > slowest) slowest = t;
                curl_multi_remove_handle(m, msg->easy_handle);
            }
            if (running) curl_multi_poll(m, NULL, 0, 100, NULL);
        }
        all[i] = slowest;
    }
    /* where the slowest write was (before the sort): a first write waiting on replicas still
     * loading is not the same finding as one in the middle of the run */
    size_t slowest = 0;
    for (size_t i = 1; i < (size_t)writes; i++)
        if (all[i] > all[slowest]) slowest = i;
    if (writes > 0)
        printf("%-34s %-22s write %zu of %ld\n", label, "slowest to every replica", slowest + 1,
               writes);
    print_line(label, "primary write (ack)", ack, (size_t)writes);
    print_line(label, "ack -> each replica", serve, ns_serve);
    print_line(label, "ack -> every replica", all, (size_t)writes);
    /* the breakdown, from the nodes' own histograms (means over the run and the warm-up) */
    text pm = {0}, rm = {0};
    scrape(primary, &pm);
    scrape(replicas[0], &rm);
    if (pm.p) {
        print_mean(label, "primary", pm.p, "edgeflag_store_write_duration_seconds",
                   "commit+publish");
        print_mean(label, "primary", pm.p, "edgeflag_replication_stage_seconds{stage=\"feed_wake\"}",
                   "feed wake-up");
    }
    if (rm.p) {
        print_mean(label, "replica", rm.p,
                   "edgeflag_replication_stage_seconds{stage=\"commit_to_receive\"}",
                   "commit -> received");
        print_mean(label, "replica", rm.p,
                   "edgeflag_replication_stage_seconds{stage=\"replica_apply\"}",
                   "apply+publish");
    }
    free(pm.p);
    free(rm.p);
    for (size_t k = 0; k < nrep; k++) {
        curl_slist_free_all(r[k].hdrs);
        curl_easy_cleanup(r[k].h);
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(jh);
    curl_easy_cleanup(w.h);
    free(ack);
    free(serve);
    free(all);
    curl_global_cleanup();
    return 0;
}
