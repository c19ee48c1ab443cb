/*
 * bench_eval.c - in-process evaluation speed of the engine (single thread by default).
 *
 * Loads a snapshot document and a JSON-lines request file, decodes every request up front with the
 * server's decoder (ef_eval_input_decode: one request block each, laid out as the HTTP path and
 * libedgeflag produce them; the parse trees are dropped, as a server drops a request's), then evaluates them all, each inside its own registry read section
 * on the namespace's handle (found once, as libedgeflag does). Prints one JSON object:
 * throughput rounds (their mean is the cold mean: every request distinct, back to back), a
 * per-evaluation latency pass (cold: median, p99, mean) and a warm pass (each request timed when
 * evaluated a second time right after itself), with the timer's own cost subtracted. --once runs one pass inside bench_pass() only, for callgrind's instruction counts
 * (valgrind --toggle-collect=bench_pass); --profile N runs N of them and nothing else, for perf.
 *
 * --count also counts each evaluation as the server does (ef_activity_count_*, the flag page's
 * activity, issue 17), to show what that costs the engine: after the first evaluation of each
 * outcome of a flag, one atomic add into the slot its tally names.
 *
 * A benchmark prints figures; it asserts nothing about time.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/eval_activity.h"
#include "api/eval_json.h"
#include "api/snapshot_file.h"
#include "base/clock.h"
#include "base/file.h"
#include "eval/registry_read.h"

typedef struct job {
    ef_eval_request req;
    bool boolean;
} job;

/* A request as a client sends it (the workload line without its "type"), for the served-order pass. */
typedef struct body {
    ef_bytes text;
    bool boolean;
} body;

typedef struct workload {
    ef_registry *reg;
    ef_bytes ns;
    const ef_ns_handle *nsh;
    job *jobs;
    size_t n;
    body *bodies;       /* n of them, in jobs' order */
    ef_arena body_text; /* theirs: apart from the request blocks, which lie one after another */
    ef_activity *activity; /* --count: NULL otherwise */
} workload;

static volatile uint64_t sink;

static inline uint64_t eval_req(const workload *w, const ef_eval_request *req, bool boolean)
{
    uint64_t h = 0;
    ef_registry_enter(w->reg);
    const ef_snapshot *s = ef_ns_snapshot(w->nsh);
    if (boolean) {
        ef_boolean_result r;
        if (ef_eval_boolean(s, req, &r) == EF_EVAL_OK) {
            h = r.enabled + (unsigned)r.reason;
            if (w->activity) ef_activity_count_boolean(w->activity, w->ns, &r);
        }
    } else {
        ef_variant_result r;
        if (ef_eval_variant(s, req, &r) == EF_EVAL_OK) {
            h = r.variant_key.n + (unsigned)r.reason;
            if (w->activity) ef_activity_count_variant(w->activity, w->ns, &r);
        }
    }
    ef_registry_leave(w->reg);
    return h;
}

static inline uint64_t eval_one(const workload *w, const job *j)
{
    return eval_req(w, &j->req, j->boolean);
}

/* Served order: each request decoded from its body right before it is evaluated, as the HTTP
 * path does (the one-pass decoder into the request's own arena), so the engine finds the block it
 * reads in cache, as it does in a server. With evaluate false only the decoding runs: the two
 * passes' difference is the evaluations' cost in that order. */
__attribute__((noinline)) static uint64_t served_pass(const workload *w, ef_arena *a, bool evaluate)
{
    uint64_t h = 0;
    for (size_t i = 0; i < w->n; i++) {
        ef_arena_reset(a);
        ef_eval_input in;
        if (!ef_eval_input_fast(w->bodies[i].text, a, &in)) abort(); /* load checked each body */
        h += in.req.entity_id.n;
        if (evaluate) h += eval_req(w, &in.req, w->bodies[i].boolean);
    }
    return h;
}

__attribute__((noinline)) void bench_pass(const workload *w);
__attribute__((noinline)) void bench_pass(const workload *w)
{
    uint64_t h = 0;
    for (size_t i = 0; i < w->n; i++) h += eval_one(w, &w->jobs[i]);
    sink += h;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Keeps line's body as a client sends it (the workload's {"type":...,  prefix dropped) as body
 * w->n, checking that the one-pass decoder takes it; scratch is reset for that. */
static int keep_body(workload *w, ef_arena *keep, ef_arena *scratch, const char *line, size_t ll)
{
    static const char pre[] = "{\"type\":\"";
    const char *p = line, *end = line + ll;
    if (ll > sizeof(pre) && memcmp(line, pre, sizeof(pre) - 1) == 0) {
        const char *q = memchr(line + sizeof(pre) - 1, '"', (size_t)(end - line) - (sizeof(pre) - 1));
        if (q && q + 2 < end && q[1] == ',') p = q + 1; /* the ',' becomes the body's '{' */
    }
    char *text = ef_arena_memdup(keep, p, (size_t)(end - p));
    if (!text) return -1;
    text[0] = '{';
    w->bodies[w->n] = (body){{text, (size_t)(end - p)}, w->jobs[w->n].boolean};
    ef_arena_reset(scratch);
    ef_eval_input in;
    int ok = ef_eval_input_fast(w->bodies[w->n].text, scratch, &in);
    if (!ok) fprintf(stderr, "bench_eval: request %zu is not in the shape clients send\n", w->n);
    return ok ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int load(workload *w, const char *snap_path, const char *req_path, ef_arena *keep)
{
    char err[600];
    ef_snapshot *s = ef_snapshot_read_file(snap_path, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "bench_eval: %s\n", err);
        return -1;
    }
    ef_bytes ns = ef_snapshot_namespace(s);
    w->ns = (ef_bytes){ef_arena_memdup(keep, ns.p, ns.n), ns.n};
    w->reg = ef_registry_new();
    ef_registry_publish(w->reg, s);
    if (!(w->nsh = ef_registry_handle(w->reg, w->ns))) {
        fprintf(stderr, "bench_eval: cannot publish the snapshot\n");
        return -1;
    }

    char *data;
    size_t len;
    ef_json_error je;
    if (ef_file_read(req_path, EF_FILE_MAX_ANY, &data, &len) != 0) {
        fprintf(stderr, "bench_eval: cannot read %s\n", req_path);
        return -1;
    }
    size_t cap = 1024;
    w->jobs = malloc(cap * sizeof(job));
    w->bodies = malloc(cap * sizeof(body));
    if (!w->jobs || !w->bodies) return -1;
    ef_arena_init(&w->body_text, 1 << 20);
    w->n = 0;
    /* Each line is parsed in a scratch arena, as a server request is in its own; only the request
     * blocks the decoder builds stay (in keep), one after another: what the engine reads. */
    ef_arena scratch, shape; /* shape: keep_body's check of each body */
    ef_arena_init(&scratch, 1 << 16);
    ef_arena_init(&shape, 4096);
    char *line = data, *end = data + len;
    while (line < end) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(end - line);
        if (ll) {
            ef_arena_reset(&scratch);
            ef_json *v = ef_json_parse(line, ll, &scratch, NULL, &je);
            ef_eval_input in;
            char derr[200];
            if (v && ef_eval_input_decode(v, keep, &in, derr, sizeof(derr)) == 0) {
                const ef_json *t = ef_json_get(v, "type");
                if (w->n == cap) {
                    cap *= 2;
                    job *jb = realloc(w->jobs, cap * sizeof(job));
                    body *bd = jb ? realloc(w->bodies, cap * sizeof(body)) : NULL;
                    if (jb) w->jobs = jb;
                    if (!jb || !bd) return -1;
                    w->bodies = bd;
                }
                w->jobs[w->n].req = in.req;
                w->jobs[w->n].boolean = t && ef_bytes_eq(t->str, EF_BYTES_LIT("boolean"));
                if (keep_body(w, &w->body_text, &shape, line, ll) != 0) return -1;
                w->n++;
            }
        }
        line += ll + 1;
    }
    ef_arena_free(&scratch);
    ef_arena_free(&shape);
    free(data);
    return 0;
}

/* A throughput thread lives for all the rounds, as a server's or an application's thread does: a
 * thread made for each round started on whichever core was free, often the one whose caches had
 * not held the snapshot, and paid its creation and liburcu registration inside the timed pass
 * (2 threads read 167 ns per evaluation that way, 102 ns now; 1 thread moved less than this
 * host's noise). Rounds start together at a barrier; each thread times its own passes. */
typedef struct thread_arg {
    const workload *w;
    int rounds;
    pthread_barrier_t *start;
    int64_t *ns; /* rounds entries: this thread's time for each pass */
} thread_arg;

static void *thread_main(void *p)
{
    thread_arg *a = p;
    bench_pass(a->w); /* this thread's own warm-up: its core's caches hold the snapshot */
    for (int r = 0; r < a->rounds; r++) {
        pthread_barrier_wait(a->start);
        int64_t t0 = ef_clock_mono_ns();
        bench_pass(a->w);
        a->ns[r] = ef_clock_mono_ns() - t0;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *snap = NULL, *reqs = NULL;
    int rounds = 15, threads = 1;
    bool once = false, count = false;
    int profile = 0; /* --profile N: N passes of bench_pass alone, for a sampling profiler */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--snapshot") && i + 1 < argc) snap = argv[++i];
        else if (!strcmp(argv[i], "--requests") && i + 1 < argc) reqs = argv[++i];
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--once")) once = true;
        else if (!strcmp(argv[i], "--profile") && i + 1 < argc) profile = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--count")) count = true;
        else {
            fprintf(stderr, "usage: bench_eval --snapshot F --requests F [--rounds N] [--threads T] [--once] [--count] [--profile N]\n");
            return 2;
        }
    }
    if (!snap || !reqs || rounds < 1 || threads < 1) return 2;
    ef_arena keep;
    ef_arena_init(&keep, 1 << 20);
    workload w;
    if (load(&w, snap, reqs, &keep) != 0) return 1;
    w.activity = count ? ef_activity_new(4096) : NULL;
    if (once || profile > 0) {
        for (int i = 0; i < (once ? 1 : profile); i++) bench_pass(&w);
        printf("{\"requests\":%zu}\n", w.n);
        return 0;
    }
    bench_pass(&w); /* warm-up */

    /* throughput: every thread runs `rounds` passes, each round started together; a round's rate
     * is all its evaluations over its slowest thread's time */
    double *rates = malloc((size_t)rounds * sizeof(double));
    int nt = threads > 64 ? 64 : threads;
    pthread_t th[64];
    thread_arg ta[64];
    pthread_barrier_t start;
    int64_t *ns = calloc((size_t)nt * (size_t)rounds, sizeof(int64_t));
    if (!rates || !ns || pthread_barrier_init(&start, NULL, (unsigned)nt) != 0) return 1;
    for (int t = 0; t < nt; t++) {
        ta[t] = (thread_arg){&w, rounds, &start, ns + (size_t)t * (size_t)rounds};
        if (pthread_create(&th[t], NULL, thread_main, &ta[t]) != 0) return 1;
    }
    for (int t = 0; t < nt; t++) pthread_join(th[t], NULL);
    pthread_barrier_destroy(&start);
    for (int r = 0; r < rounds; r++) {
        int64_t slowest = 1;
        for (int t = 0; t < nt; t++)
            if (ta[t].ns[r] > slowest) slowest = ta[t].ns[r];
        rates[r] = (double)w.n * nt / ((double)slowest / 1e9);
    }
    free(ns);
    double sorted_rates[256];
    int nr = rounds > 256 ? 256 : rounds;
    memcpy(sorted_rates, rates, (size_t)nr * sizeof(double));
    for (int i = 1; i < nr; i++)
        for (int j = i; j > 0 && sorted_rates[j - 1] > sorted_rates[j]; j--) {
            double t = sorted_rates[j];
            sorted_rates[j] = sorted_rates[j - 1];
            sorted_rates[j - 1] = t;
        }
    double median_rate = sorted_rates[nr / 2];

    /* latency: time each evaluation alone, minus the median cost of an empty timed section */
    int64_t *lat = malloc(w.n * sizeof(int64_t));
    int64_t *empty = malloc(w.n * sizeof(int64_t));
    for (size_t i = 0; i < w.n; i++) {
        int64_t a = ef_clock_mono_ns();
        int64_t b = ef_clock_mono_ns();
        empty[i] = b - a;
    }
    uint64_t h = 0;
    for (size_t i = 0; i < w.n; i++) {
        int64_t a = ef_clock_mono_ns();
        h += eval_one(&w, &w.jobs[i]);
        int64_t b = ef_clock_mono_ns();
        lat[i] = b - a;
    }
    sink += h;
    /* warm: each request evaluated again right after itself (its block and the flag in cache) */
    int64_t *warm = malloc(w.n * sizeof(int64_t));
    for (size_t i = 0; i < w.n; i++) {
        h += eval_one(&w, &w.jobs[i]);
        int64_t a = ef_clock_mono_ns();
        h += eval_one(&w, &w.jobs[i]);
        int64_t b = ef_clock_mono_ns();
        warm[i] = b - a;
    }
    sink += h;
    /* served order: decode-only and decode-and-evaluate passes interleaved, medians subtracted */
    ef_arena req_arena;
    ef_arena_init(&req_arena, 1 << 14);
    double *dec = malloc((size_t)rounds * sizeof(double)), *both = malloc((size_t)rounds * sizeof(double));
    sink += served_pass(&w, &req_arena, true);
    for (int r = 0; r < rounds; r++) {
        int64_t t0 = ef_clock_mono_ns();
        sink += served_pass(&w, &req_arena, false);
        int64_t t1 = ef_clock_mono_ns();
        sink += served_pass(&w, &req_arena, true);
        int64_t t2 = ef_clock_mono_ns();
        dec[r] = (double)(t1 - t0) / (double)w.n;
        both[r] = (double)(t2 - t1) / (double)w.n;
    }
    qsort(dec, (size_t)rounds, sizeof(double), cmp_double);
    qsort(both, (size_t)rounds, sizeof(double), cmp_double);
    double decode_ns = dec[rounds / 2], served_ns = both[rounds / 2] - decode_ns;
    free(dec);
    free(both);
    ef_arena_free(&req_arena);

    double lat_sum = 0, warm_sum = 0;
    for (size_t i = 0; i < w.n; i++) lat_sum += (double)lat[i], warm_sum += (double)warm[i];
    qsort(warm, w.n, sizeof(int64_t), cmp_i64);
    qsort(lat, w.n, sizeof(int64_t), cmp_i64);
    qsort(empty, w.n, sizeof(int64_t), cmp_i64);
    int64_t overhead = empty[w.n / 2];
    ef_registry_read_lock(w.reg);
    size_t snap_bytes = ef_snapshot_memory(ef_registry_get(w.reg, w.ns));
    ef_registry_read_unlock(w.reg);
    printf("{\"counting\":%s,\"requests\":%zu,\"threads\":%d,\"rounds\":%d,\"evals_per_sec\":%.0f,"
           "\"ns_per_eval_mean\":%.1f,\"ns_per_eval_median\":%lld,\"ns_per_eval_p99\":%lld,"
           "\"cold_timed_mean\":%.1f,\"warm_median\":%lld,\"warm_mean\":%.1f,"
           "\"timer_overhead_ns\":%lld,\"snapshot_bytes\":%zu,\"served_decode_ns\":%.1f,"
           "\"served_eval_ns\":%.1f,\"runs\":[",
           count ? "true" : "false", w.n, threads, rounds, median_rate, 1e9 / (median_rate / threads),
           (long long)(lat[w.n / 2] - overhead), (long long)(lat[w.n * 99 / 100] - overhead),
           lat_sum / (double)w.n - (double)overhead, (long long)(warm[w.n / 2] - overhead),
           warm_sum / (double)w.n - (double)overhead, (long long)overhead, snap_bytes, decode_ns,
           served_ns);
    for (int r = 0; r < rounds; r++) printf("%s%.0f", r ? "," : "", rates[r]);
    printf("]}\n");
    free(lat);
    free(warm);
    free(empty);
    free(rates);
    free(w.jobs);
    free(w.bodies);
    ef_arena_free(&w.body_text);
    ef_registry_free(w.reg);
    ef_arena_free(&keep);
    return 0;
}
