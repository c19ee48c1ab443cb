/*
 * bench_propagation.c - the light measuring side of the propagation benchmark (issue 11): one
 * kept-alive socket writing to the primary, one kept-alive socket per replica, and for each
 * write the time from the primary's acknowledgement until every replica serves it. Nodes are
 * started by bench/propagation.mjs (--client), which then only waits.
 *
 * A replica "serves" write v when it answers an evaluation (POST /evaluate/v1/variant of flag
 * "warm", which propagation.mjs creates while warming up) carrying X-Edgeflag-Min-Version: v (a
 * route that honours it: the replica holds the request until it has applied v) with an
 * X-Edgeflag-Version of at least v: what a feature-flag client sees, answered from memory. The
 * writes and probes are plain HTTP/1.1, written and read here (curl's multi interface cost about a
 * tenth of the machine's CPU in a 10-replica run, beside the nodes it measures; curl stays for the
 * /metrics scrapes before and after). Every time is taken twice: when the answer's last bytes
 * reached this client's socket (the kernel's receive timestamp, SO_TIMESTAMPNS), and when this
 * client read them. Ten replicas and this client share two cores, and the client waits its turn for
 * a core like every node; the first figure leaves that wait of the measuring instrument out, the
 * second keeps it. Prints p50/p99/max of those times, and of the primary's own
 * round trip (commit + publish + HTTP), then the means of the stages the nodes measure themselves
 * (/metrics: edgeflag_store_write_duration_seconds and edgeflag_replication_stage_seconds) for the
 * primary and the first replica, over the measured writes only. It asserts nothing and must never
 * write anywhere but the primary's namespace it is given.
 *
 * Usage: bench_propagation --primary URL --replica URL [--replica URL ...] [--writes N] [--ns NS]
 *        [--label TEXT]
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_REPLICAS 64


/* CLOCK_REALTIME: the clock of the kernel's receive timestamps */
static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* recv() that also gives the kernel's receive time of the bytes read (ms, CLOCK_REALTIME), or
 * now when the kernel gave none. */
static ssize_t recv_at(int fd, char *buf, size_t len, double *at)
{
    union {
        char b[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b)};
    ssize_t got = recvmsg(fd, &m, 0);
    *at = now_ms();
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); got > 0 && c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof(ts));
            *at = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
        }
    return got;
}

/* A probe connection: one kept-alive socket to a replica, one request in flight at a time. */
typedef struct probe {
    int fd;
    char in[65536];
    size_t nin;
    bool busy;
} probe;

static void probe_connect(probe *p, const char *base)
{
    /* http://127.0.0.1:PORT: the nodes propagation.mjs starts listen on loopback */
    unsigned a, b, c, d, port;
    if (sscanf(base, "http://%u.%u.%u.%u:%u", &a, &b, &c, &d, &port) != 5) {
        fprintf(stderr, "bench_propagation: replica URL %s is not http://IPv4:PORT\n", base);
        exit(2);
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(a << 24 | b << 16 | c << 8 | d)};
    p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (p->fd < 0 || setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        setsockopt(p->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) != 0 ||
        connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "bench_propagation: connect %s: %s\n", base, strerror(errno));
        exit(2);
    }
    p->nin = 0;
    p->busy = false;
}

static void probe_send(probe *p, const char *req, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t w = send(p->fd, req + off, len - off, MSG_NOSIGNAL);
        if (w <= 0) {
            fprintf(stderr, "bench_propagation: send: %s\n", strerror(errno));
            exit(1);
        }
        off += (size_t)w;
    }
    p->nin = 0;
    p->busy = true;
}

/* After a read: 1 when the whole answer is in (status and version set), 0 when more is to come. */
static int probe_answer(probe *p, long *status, uint64_t *version)
{
    p->in[p->nin] = '\0';
    char *end = strstr(p->in, "\r\n\r\n");
    if (!end) return 0;
    size_t head = (size_t)(end - p->in) + 4, clen = 0;
    *status = strtol(p->in + 9, NULL, 10); /* "HTTP/1.1 200" */
    *version = 0;
    for (char *l = strstr(p->in, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n")) {
        if (!strncasecmp(l + 2, "content-length:", 15)) clen = strtoull(l + 17, NULL, 10);
        if (!strncasecmp(l + 2, "x-edgeflag-version:", 19)) *version = strtoull(l + 21, NULL, 10);
    }
    if (p->nin < head + clen) return 0;
    p->busy = false;
    return 1;
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

/* The number after "key" (a series name with its labels and a space) in a /metrics scrape; 0
 * when the scrape lacks it. */
static double series_value(const char *text_, const char *key)
{
    const char *at = text_ ? strstr(text_, key) : NULL;
    return at ? strtod(at + strlen(key), NULL) : 0;
}

/* Mean and p99 bucket of one histogram series (name + label text), in ms, over the observations
 * between two /metrics scrapes (before: taken right before the measured writes, so a replica's
 * first catch-up during the warm-up, seconds at 10,000 flags, is not in its mean). */
static void print_mean(const char *label, const char *node, const char *before, const char *after,
                       const char *series, const char *what)
{
    char k[256];
    /* series is "name{labels}": the text format writes name_sum{labels}. A key cut to fit k
     * would match nothing (its before-value read as 0): refused aloud instead. */
    const char *brace = strchr(series, '{');
    size_t nl = brace ? (size_t)(brace - series) : strlen(series);
    if (nl + strlen(brace ? brace : "") + 16 >= sizeof(k)) {
        printf("%-34s %-22s %-8s series name too long to read: %s\n", label, what, node, series);
        return;
    }
    snprintf(k, sizeof(k), "%.*s_sum%s ", (int)nl, series, brace ? brace : "");
    double sum = series_value(after, k) - series_value(before, k);
    snprintf(k, sizeof(k), "%.*s_count%s ", (int)nl, series, brace ? brace : "");
    double count = series_value(after, k) - series_value(before, k);
    if (count <= 0) return;
    /* p99 from the histogram: the first bucket bound holding 99 % of the observations (the
     * buckets are cumulative, in order). "> last bound" when even the last one does not. */
    double p99 = -1;
    snprintf(k, sizeof(k), "%.*s_bucket%.*s%sle=\"", (int)nl, series,
             brace ? (int)(strlen(brace) - 1) : 1, brace ? brace : "{", brace ? "," : "");
    for (const char *at = strstr(after, k); at && p99 < 0; at = strstr(at + 1, k)) {
        const char *le = at + strlen(k);
        const char *close = strstr(le, "} ");
        if (!close || strncmp(le, "+Inf", 4) == 0) break;
        char bucket[320]; /* this bucket's whole key, to find it in the earlier scrape */
        if ((size_t)(close + 2 - at) >= sizeof(bucket)) break; /* cannot be: k fit in 256 */
        snprintf(bucket, sizeof(bucket), "%.*s", (int)(close + 2 - at), at);
        if (strtod(close + 2, NULL) - series_value(before, bucket) >= 0.99 * count)
            p99 = strtod(le, NULL);
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
    char body[256], wreq[1024];
    static probe w, r[MAX_REPLICAS];
    probe_connect(&w, primary);
    for (size_t i = 0; i < nrep; i++) probe_connect(&r[i], replicas[i]);
    char ev[256];
    int nev = snprintf(ev, sizeof(ev),
                       "{\"namespaceKey\":\"%s\",\"flagKey\":\"warm\",\"entityId\":\"e\",\"context\":{}}", ns);
    /* as the kernel received the answers, and (_read) as this client read them */
    double *ack = calloc((size_t)writes, sizeof(double));
    double *serve = calloc((size_t)writes * nrep, sizeof(double));
    double *all = calloc((size_t)writes, sizeof(double));
    double *ack_read = calloc((size_t)writes, sizeof(double));
    double *whole = calloc((size_t)writes, sizeof(double)); /* sent -> every replica serving */
    double *all_read = calloc((size_t)writes, sizeof(double));
    if (!ack || !serve || !all || !ack_read || !all_read || !whole) return 2;
    size_t ns_serve = 0;
    /* a prefix per run, so a second run against the same primary creates new keys */
    unsigned tag = (unsigned)(time(NULL) % 100000);
    /* the nodes' histograms before the measured writes (print_mean subtracts them) */
    text pm0 = {0}, rm0 = {0};
    scrape(primary, &pm0);
    scrape(replicas[0], &rm0);
    for (long i = 0; i < writes; i++) {
        int nbody = snprintf(body, sizeof(body), "{\"key\":\"cp%u_%ld\",\"name\":\"p\",\"enabled\":true}", tag, i);
        int nw = snprintf(wreq, sizeof(wreq),
                          "POST /api/v1/namespaces/%s/flags HTTP/1.1\r\nHost: primary\r\n"
                          "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                          ns, nbody, body);
        double t_send = now_ms();
        probe_send(&w, wreq, (size_t)nw);
        long wstatus = 0;
        uint64_t wversion = 0;
        double t0 = 0; /* when the acknowledgement's last bytes arrived */
        while (!probe_answer(&w, &wstatus, &wversion)) {
            ssize_t got = recv_at(w.fd, w.in + w.nin, sizeof(w.in) - 1 - w.nin, &t0);
            if (got <= 0) {
                fprintf(stderr, "bench_propagation: write %ld: the primary closed the connection\n", i);
                return 1;
            }
            w.nin += (size_t)got;
        }
        double t0_read = now_ms();
        if (wstatus != 200 || !wversion) {
            fprintf(stderr, "bench_propagation: write %ld: status %ld: %.300s\n", i, wstatus, w.in);
            return 1;
        }
        ack[i] = t0 - t_send;
        ack_read[i] = t0_read - t_send;
        char req[1024];
        int nreq = snprintf(req, sizeof(req),
                            "POST /evaluate/v1/variant HTTP/1.1\r\nHost: replica\r\n"
                            "Content-Type: application/json\r\nX-Edgeflag-Min-Version: %" PRIu64
                            "\r\nContent-Length: %d\r\n\r\n%s",
                            wversion, nev, ev);
        for (size_t k = 0; k < nrep; k++) probe_send(&r[k], req, (size_t)nreq);
        size_t running = nrep;
        double slowest = 0, slowest_read = 0;
        struct pollfd pf[MAX_REPLICAS];
        while (running) {
            size_t np = 0;
            size_t which[MAX_REPLICAS];
            for (size_t k = 0; k < nrep; k++)
                if (r[k].busy) {
                    pf[np] = (struct pollfd){.fd = r[k].fd, .events = POLLIN};
                    which[np++] = k;
                }
            if (poll(pf, np, 30000) <= 0) {
                fprintf(stderr, "bench_propagation: replicas silent for 30 s at version %" PRIu64 "\n",
                        wversion);
                return 1;
            }
            for (size_t j = 0; j < np; j++) {
                if (!(pf[j].revents & (POLLIN | POLLHUP | POLLERR))) continue;
                probe *c = &r[which[j]];
                double at;
                ssize_t got = recv_at(c->fd, c->in + c->nin, sizeof(c->in) - 1 - c->nin, &at);
                if (got <= 0) {
                    fprintf(stderr, "bench_propagation: replica %s closed the connection\n",
                            replicas[which[j]]);
                    return 1;
                }
                c->nin += (size_t)got;
                long status;
                uint64_t version;
                if (!probe_answer(c, &status, &version)) continue;
                double t = at - t0, t_read = now_ms() - t0_read;
                if (status != 200 || version < wversion) {
                    fprintf(stderr, "bench_propagation: a replica did not serve %" PRIu64
                                    " (status %ld, version %" PRIu64 "): %.300s\n",
                            wversion, status, version, c->in);
                    return 1;
                }
                serve[ns_serve++] = t;
                if (t > slowest) slowest = t;
                if (t_read > slowest_read) slowest_read = t_read;
                running--;
            }
        }
        all[i] = slowest;
        all_read[i] = slowest_read;
        whole[i] = ack[i] + slowest;
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
    /* the same two, with this client's own wait for a core in them */
    print_line(label, "primary write, as read", ack_read, (size_t)writes);
    print_line(label, "ack -> every, as read", all_read, (size_t)writes);
    /* the whole way: a primary that acknowledged later would shorten ack -> every replica alone */
    print_line(label, "sent -> every replica", whole, (size_t)writes);
    /* this process's own CPU over the writes, for propagation.mjs's "CPU per write" line */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu_ms = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    printf("%-34s %-22s %.3f ms\n", label, "client CPU per write", cpu_ms / (double)writes);
    /* the breakdown, from the nodes' own histograms over the measured writes */
    text pm = {0}, rm = {0};
    scrape(primary, &pm);
    scrape(replicas[0], &rm);
    if (pm.p) {
        print_mean(label, "primary", pm0.p, pm.p, "edgeflag_store_write_duration_seconds",
                   "commit+publish");
        print_mean(label, "primary", pm0.p, pm.p,
                   "edgeflag_replication_stage_seconds{stage=\"feed_wake\"}", "feed wake-up");
    }
    if (rm.p) {
        print_mean(label, "replica", rm0.p, rm.p,
                   "edgeflag_replication_stage_seconds{stage=\"commit_to_receive\"}",
                   "commit -> received");
        print_mean(label, "replica", rm0.p, rm.p,
                   "edgeflag_replication_stage_seconds{stage=\"replica_apply\"}",
                   "apply+publish");
    }
    free(pm.p);
    free(rm.p);
    free(pm0.p);
    free(rm0.p);
    for (size_t k = 0; k < nrep; k++) close(r[k].fd);
    close(w.fd);
    free(ack);
    free(serve);
    free(all);
    free(ack_read);
    free(whole);
    free(all_read);
    curl_global_cleanup();
    return 0;
}
