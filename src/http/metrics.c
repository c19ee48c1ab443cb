/*
 * metrics.c - lock-free labelled metrics and their text exposition (see metrics.h).
 * Never blocks an updater; never frees a label set while the process runs; never lets two threads
 * write one lane cell (below).
 */
#include "http/metrics.h"

#include "base/hash.h"

#include <pthread.h>
#include <sys/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 8
#define MAX_BOUNDS 24

/* ---- lanes: a thread's own cells ----
 * An update used to be a locked add on the series: about 20 cycles that also drain the CPU's store
 * buffer, ten of them per evaluation request (1.3 % of its CPU on one worker, measured), and with
 * several workers each add pulled the counter's cache line from the core that counted last. Now a
 * thread that counts holds a lane (process-wide, at most LANES threads at a time): in every
 * ef_metrics, a lane has cells for every series, written by that one thread with a plain load and
 * store, and a scrape adds the lanes to the series' shared fields. A thread that finds every lane
 * held, or a series whose cells could not be had, counts in the shared fields with atomic adds, as
 * before. A lane is let go when its thread exits (a pthread key's destructor) and taken up by the
 * next thread with the counts it holds: the release and the acquire that pass it on order the old
 * thread's writes before the new one's. */
#define LANES 16
#define PAGE_SHIFT 12 /* a lane's cells come in pages of 4,096 (32 KiB), made when first written */
#define PAGE_CELLS (1u << PAGE_SHIFT)
#define MAX_PAGES 1024 /* 4 M cells per ef_metrics: edgeflag's families need about 100,000 */
#define NO_CELLS UINT32_MAX

typedef struct lane {
    uint64_t *pages[MAX_PAGES]; /* atomic: written by the lane's thread, read by scrapes */
} lane;

typedef struct ef_metric_series series;
struct ef_metric_series {
    uint64_t hash;
    char *key;   /* label values, each as len(4 bytes) + bytes */
    size_t keylen;
    ef_metrics *m;       /* whose lanes hold its cells */
    uint32_t cell;       /* its first cell in every lane (NO_CELLS: it counts in the fields below only) */
    /* the shared fields, added to atomically by threads without a lane */
    uint64_t count;      /* counter value (a histogram's count is the sum of its buckets) */
    uint64_t sum_ns;     /* histogram sum in nanoseconds */
    uint64_t buckets[];  /* histogram buckets (cumulative at write time) */
};
/* A series' cells in a lane: a counter's count; a histogram's buckets (nbounds + 1) then its sum. */

struct ef_metric_family {
    ef_metrics *m;
    char *name, *help;
    bool histogram;
    unsigned nlabels;
    char *labels[MAX_LABELS];
    unsigned nbounds;
    double bounds[MAX_BOUNDS];
    /* the bounds in nanoseconds, and the sum's nanounits a nanosecond makes, for
     * ef_series_observe_ns: integer compares, no division per observation */
    uint64_t bounds_ns[MAX_BOUNDS];
    uint64_t sum_per_ns;
    unsigned mask;
    unsigned used; /* approximate, for the overflow decision */
    uint64_t seed; /* keys the label hash: label values come from requests */
    series **slots;
    series *other; /* label set "_other" when the table is full */
    ef_metric_family *next;
};

typedef struct collector {
    ef_metrics_collector fn;
    void *ctx;
    struct collector *next;
} collector;

struct ef_metrics {
    pthread_mutex_t mu; /* registration and scrape only, never updates */
    ef_metric_family *families, **tail;
    collector *collectors, **ctail;
    lane *lanes[LANES]; /* atomic: made by the lane's thread when it first counts here */
    uint32_t ncells;    /* atomic: cells handed out to series, in every lane */
};

/* The process's lanes (see above): which are held, and the key whose destructor lets one go. */
static pthread_once_t lane_once = PTHREAD_ONCE_INIT;
static pthread_key_t lane_key;
static bool lane_key_made;
static uint32_t lanes_held; /* atomic: bit i set while a thread holds lane i */
static _Thread_local int thread_lane = -1; /* -1: not asked yet; LANES: none, shared fields */

static void lane_let_go(void *held)
{
    unsigned i = (unsigned)(uintptr_t)held - 1;
    thread_lane = LANES; /* counted after this (another key's destructor): the shared fields */
    __atomic_and_fetch(&lanes_held, ~(1u << i), __ATOMIC_RELEASE);
}

static void lane_key_make(void)
{
    lane_key_made = pthread_key_create(&lane_key, lane_let_go) == 0;
}

static int lane_take(void)
{
    pthread_once(&lane_once, lane_key_make);
    int got = LANES;
    uint32_t held = __atomic_load_n(&lanes_held, __ATOMIC_RELAXED);
    while (lane_key_made && (~held & ((1u << LANES) - 1))) {
        unsigned i = (unsigned)__builtin_ctz(~held);
        if (!__atomic_compare_exchange_n(&lanes_held, &held, held | (1u << i), false,
                                         __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            continue; /* held was reloaded */
        if (pthread_setspecific(lane_key, (void *)(uintptr_t)(i + 1)) == 0) got = (int)i;
        else __atomic_and_fetch(&lanes_held, ~(1u << i), __ATOMIC_RELEASE);
        break;
    }
    thread_lane = got;
    return got;
}

/* lane_cells when the thread has no lane yet, or its lane no table or page for s yet. */
static __attribute__((noinline)) uint64_t *lane_cells_slow(series *s)
{
    int l = thread_lane;
    if (l < 0) l = lane_take();
    if (l >= LANES || s->cell == NO_CELLS) return NULL;
    ef_metrics *m = s->m;
    lane *ln = __atomic_load_n(&m->lanes[l], __ATOMIC_RELAXED); /* only this thread stores it */
    if (!ln) {
        if (!(ln = calloc(1, sizeof(*ln)))) return NULL;
        __atomic_store_n(&m->lanes[l], ln, __ATOMIC_RELEASE);
    }
    uint64_t *pg = __atomic_load_n(&ln->pages[s->cell >> PAGE_SHIFT], __ATOMIC_RELAXED);
    if (!pg) {
        if (!(pg = calloc(PAGE_CELLS, sizeof(uint64_t)))) return NULL;
        __atomic_store_n(&ln->pages[s->cell >> PAGE_SHIFT], pg, __ATOMIC_RELEASE);
    }
    return pg + (s->cell & (PAGE_CELLS - 1));
}

/* The cells of s in the calling thread's lane, made if need be; NULL: count in the shared fields.
 * Inline up to the first thing missing: every update starts here. */
static inline uint64_t *lane_cells(series *s)
{
    int l = thread_lane;
    if (__builtin_expect((unsigned)l < LANES && s->cell != NO_CELLS, 1)) {
        const lane *ln = __atomic_load_n(&s->m->lanes[l], __ATOMIC_RELAXED);
        uint64_t *pg = ln ? __atomic_load_n(&ln->pages[s->cell >> PAGE_SHIFT], __ATOMIC_RELAXED) : NULL;
        if (__builtin_expect(pg != NULL, 1)) return pg + (s->cell & (PAGE_CELLS - 1));
    }
    return lane_cells_slow(s);
}

/* One thread writes a lane cell: no locked add, and relaxed atomics so that a scrape's read is
 * never torn (and a race detector sees no race). */
static inline void cell_add(uint64_t *c, uint64_t n)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/* n cells for a new series, all on one page; NO_CELLS when the lanes are full. */
static uint32_t cells_take(ef_metrics *m, unsigned n)
{
    uint32_t at = __atomic_load_n(&m->ncells, __ATOMIC_RELAXED);
    for (;;) {
        uint32_t start = at;
        if ((start & (PAGE_CELLS - 1)) + n > PAGE_CELLS) start = (start | (PAGE_CELLS - 1)) + 1;
        if ((uint64_t)start + n > (uint64_t)MAX_PAGES * PAGE_CELLS) return NO_CELLS;
        if (__atomic_compare_exchange_n(&m->ncells, &at, start + n, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
            return start;
    }
}

/* Cell i of s summed over the lanes, for a scrape. */
static uint64_t lanes_sum(const series *s, unsigned i)
{
    uint64_t sum = 0;
    if (s->cell == NO_CELLS) return 0;
    for (unsigned l = 0; l < LANES; l++) {
        const lane *ln = __atomic_load_n(&s->m->lanes[l], __ATOMIC_ACQUIRE);
        const uint64_t *pg = ln ? __atomic_load_n(&ln->pages[s->cell >> PAGE_SHIFT], __ATOMIC_ACQUIRE) : NULL;
        if (pg) sum += __atomic_load_n(&pg[(s->cell & (PAGE_CELLS - 1)) + i], __ATOMIC_RELAXED);
    }
    return sum;
}

ef_metrics *ef_metrics_new(void)
{
    ef_metrics *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->tail = &m->families;
    m->ctail = &m->collectors;
    return m;
}

static void family_free(ef_metric_family *f)
{
    for (unsigned i = 0; i <= f->mask; i++) {
        if (f->slots[i]) {
            free(f->slots[i]->key);
            free(f->slots[i]);
        }
    }
    if (f->other) {
        free(f->other->key);
        free(f->other);
    }
    for (unsigned i = 0; i < f->nlabels; i++) free(f->labels[i]);
    free(f->slots);
    free(f->name);
    free(f->help);
    free(f);
}

void ef_metrics_free(ef_metrics *m)
{
    if (!m) return;
    for (ef_metric_family *f = m->families, *n; f; f = n) {
        n = f->next;
        family_free(f);
    }
    for (collector *c = m->collectors, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    for (unsigned l = 0; l < LANES; l++) {
        if (!m->lanes[l]) continue;
        for (unsigned p = 0; p < MAX_PAGES; p++) free(m->lanes[l]->pages[p]);
        free(m->lanes[l]);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static ef_metric_family *family_new(ef_metrics *m, const char *name, const char *help,
                                    unsigned nlabels, const char *const *label_names,
                                    unsigned capacity, bool histogram, const double *bounds,
                                    unsigned nbounds)
{
    if (nlabels > MAX_LABELS || nbounds > MAX_BOUNDS) return NULL;
    for (unsigned i = 0; i < nbounds; i++)
        if (!(bounds[i] >= 0)) return NULL; /* durations: a negative (or NaN) bound is a mistake */
    ef_metric_family *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    unsigned cap = 16;
    while (cap < capacity * 2) cap *= 2;
    f->slots = calloc(cap, sizeof(series *));
    f->name = strdup(name);
    f->help = strdup(help);
    if (!f->slots || !f->name || !f->help) {
        free(f->slots);
        free(f->name);
        free(f->help);
        free(f);
        return NULL;
    }
    f->m = m;
    f->mask = cap - 1;
    if (getrandom(&f->seed, sizeof(f->seed), GRND_NONBLOCK) != (ssize_t)sizeof(f->seed))
        f->seed = (uint64_t)(uintptr_t)f ^ 0x9e3779b97f4a7c15ull; /* no entropy yet: still per process */
    f->histogram = histogram;
    f->nlabels = nlabels;
    for (unsigned i = 0; i < nlabels; i++) f->labels[i] = strdup(label_names[i]);
    f->nbounds = nbounds;
    for (unsigned i = 0; i < nbounds; i++) f->bounds[i] = bounds[i];
    ef_metrics_histogram_unit_ns(f, 1000000000);
    pthread_mutex_lock(&m->mu);
    *m->tail = f;
    m->tail = &f->next;
    pthread_mutex_unlock(&m->mu);
    return f;
}

void ef_metrics_histogram_unit_ns(ef_metric_family *f, uint64_t ns_per_unit)
{
    /* the sum is kept in billionths of the unit: exact only for a unit that divides a second */
    if (!f || !ns_per_unit || 1000000000 % ns_per_unit != 0) return;
    f->sum_per_ns = 1000000000 / ns_per_unit;
    for (unsigned i = 0; i < f->nbounds; i++) {
        double b = f->bounds[i] * (double)ns_per_unit;
        f->bounds_ns[i] = b >= 1.8e19 ? UINT64_MAX : (uint64_t)(b + 0.5); /* b >= 0 */
    }
}

ef_metric_family *ef_metrics_counter(ef_metrics *m, const char *name, const char *help,
                                     unsigned nlabels, const char *const *label_names,
                                     unsigned capacity)
{
    return family_new(m, name, help, nlabels, label_names, capacity, false, NULL, 0);
}

ef_metric_family *ef_metrics_histogram(ef_metrics *m, const char *name, const char *help,
                                       unsigned nlabels, const char *const *label_names,
                                       unsigned capacity, const double *bounds, unsigned nbounds)
{
    return family_new(m, name, help, nlabels, label_names, capacity, true, bounds, nbounds);
}

static inline uint64_t mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 32);
}

/* Eight bytes at a time (updates hash every evaluation's labels several times); each value's
 * length goes in first, so ("ab","c") and ("a","bc") differ. Keyed by the family's seed, so
 * request-chosen label values cannot be picked to collide. */
static uint64_t hash_values(uint64_t seed, const ef_bytes *values, unsigned n)
{
    uint64_t h = seed;
    for (unsigned i = 0; i < n; i++) {
        const char *p = values[i].p;
        size_t len = values[i].n;
        h = mix(h, len);
        for (; len >= 8; p += 8, len -= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            h = mix(h, w);
        }
        if (len) {
            uint64_t w = 0;
            memcpy(&w, p, len);
            h = mix(h, w);
        }
    }
    return h;
}

static size_t key_len(const ef_bytes *values, unsigned n)
{
    size_t len = 0;
    for (unsigned i = 0; i < n; i++) len += 4 + values[i].n;
    return len;
}

/* Whether s's label values are values[0..n), the first `from` of them taken as equal (only
 * stepped over). */
static bool key_eq_from(const series *s, const ef_bytes *values, unsigned n, unsigned from)
{
    const char *p = s->key, *end = s->key + s->keylen;
    for (unsigned i = 0; i < n; i++) {
        if (end - p < 4) return false;
        uint32_t len;
        memcpy(&len, p, 4);
        p += 4;
        /* the inline compare: labels are a few bytes, and an evaluation compares seven of them
         * (its result series' labels); seven calls into memcmp were ~300 instructions */
        if ((size_t)(end - p) < len ||
            (i >= from && (len != values[i].n || !ef_mem_eq(p, values[i].p, len))))
            return false;
        p += len;
    }
    return p == end;
}

static bool key_eq(const series *s, const ef_bytes *values, unsigned n)
{
    return key_eq_from(s, values, n, 0);
}

static series *series_new(const ef_metric_family *f, const ef_bytes *values, uint64_t h)
{
    size_t nb = f->histogram ? f->nbounds + 1 : 0;
    series *s = calloc(1, sizeof(*s) + nb * sizeof(uint64_t));
    if (!s) return NULL;
    s->hash = h;
    s->m = f->m;
    s->cell = cells_take(f->m, f->histogram ? f->nbounds + 2 : 1);
    s->keylen = key_len(values, f->nlabels);
    s->key = malloc(s->keylen ? s->keylen : 1);
    if (!s->key) {
        free(s);
        return NULL;
    }
    char *p = s->key;
    for (unsigned i = 0; i < f->nlabels; i++) {
        uint32_t len = (uint32_t)values[i].n;
        memcpy(p, &len, 4);
        memcpy(p + 4, values[i].p, values[i].n);
        p += 4 + values[i].n;
    }
    return s;
}

static series *other_series(ef_metric_family *f)
{
    series *o = __atomic_load_n(&f->other, __ATOMIC_ACQUIRE);
    if (o) return o;
    ef_bytes vals[MAX_LABELS];
    for (unsigned i = 0; i < f->nlabels; i++) vals[i] = EF_BYTES_LIT("_other");
    series *s = series_new(f, vals, 0);
    if (!s) return NULL;
    series *expected = NULL;
    if (!__atomic_compare_exchange_n(&f->other, &expected, s, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        free(s->key);
        free(s);
        return expected;
    }
    return s;
}

static series *find_or_add(ef_metric_family *f, const ef_bytes *values)
{
    uint64_t h = hash_values(f->seed, values, f->nlabels);
    unsigned i = (unsigned)h & f->mask;
    for (unsigned probes = 0; probes <= f->mask; probes++, i = (i + 1) & f->mask) {
        series *s = __atomic_load_n(&f->slots[i], __ATOMIC_ACQUIRE);
        if (!s) {
            if (__atomic_load_n(&f->used, __ATOMIC_RELAXED) * 2 > f->mask) return other_series(f);
            series *n = series_new(f, values, h);
            if (!n) return other_series(f);
            series *expected = NULL;
            if (__atomic_compare_exchange_n(&f->slots[i], &expected, n, false, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) {
                __atomic_add_fetch(&f->used, 1, __ATOMIC_RELAXED);
                return n;
            }
            free(n->key);
            free(n);
            s = expected;
        }
        if (s->hash == h && key_eq(s, values, f->nlabels)) return s;
    }
    return other_series(f);
}

void ef_counter_add(ef_metric_family *f, const ef_bytes *values, uint64_t n)
{
    if (!f) return;
    series *s = find_or_add(f, values);
    if (s) ef_series_add(s, n);
}

ef_metric_series *ef_metric_series_of(ef_metric_family *f, const ef_bytes *values)
{
    return f ? find_or_add(f, values) : NULL;
}

ef_metric_series *ef_metric_series_slot(ef_metric_family *f, ef_metric_series **slot,
                                        const ef_bytes *values)
{
    ef_metric_series *s = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (s || !f) return s;
    s = find_or_add(f, values);
    if (s) __atomic_store_n(slot, s, __ATOMIC_RELEASE);
    return s;
}

bool ef_metric_series_is(const ef_metric_family *f, const ef_metric_series *s,
                         const ef_bytes *values)
{
    return ef_metric_series_is_from(f, s, values, 0);
}

bool ef_metric_series_is_from(const ef_metric_family *f, const ef_metric_series *s,
                              const ef_bytes *values, unsigned from)
{
    return f && s && s != __atomic_load_n(&f->other, __ATOMIC_ACQUIRE) &&
           key_eq_from(s, values, f->nlabels, from);
}

void ef_series_add(ef_metric_series *s, uint64_t n)
{
    uint64_t *c = lane_cells(s);
    if (c) cell_add(c, n);
    else __atomic_add_fetch(&s->count, n, __ATOMIC_RELAXED);
}

void ef_histogram_observe(ef_metric_family *f, const ef_bytes *values, double seconds)
{
    if (!f) return;
    series *s = find_or_add(f, values);
    if (s) ef_series_observe(f, s, seconds);
}

/* One observation in bucket b, sum_ns added to the sum: in the thread's lane, else shared. */
static inline void add_observation(const ef_metric_family *f, series *s, unsigned b, uint64_t sum_ns)
{
    uint64_t *c = lane_cells(s);
    if (c) {
        cell_add(&c[b], 1);
        cell_add(&c[f->nbounds + 1], sum_ns);
        return;
    }
    __atomic_add_fetch(&s->buckets[b], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->sum_ns, sum_ns, __ATOMIC_RELAXED);
}

void ef_series_observe(const ef_metric_family *f, ef_metric_series *s, double seconds)
{
    unsigned b = 0;
    while (b < f->nbounds && seconds > f->bounds[b]) b++;
    /* no count of its own: the scrape sums the buckets (one add fewer per observation, three
     * per evaluation request, and _count can never disagree with +Inf) */
    /* past 2^64 nanounits (584 years) the sum saturates: a double that large has no uint64_t */
    double nano = seconds > 0 ? seconds * 1e9 : 0;
    add_observation(f, s, b, nano < 1.8e19 ? (uint64_t)nano : UINT64_MAX);
}

void ef_series_observe_ns(const ef_metric_family *f, ef_metric_series *s, int64_t ns)
{
    uint64_t v = ns > 0 ? (uint64_t)ns : 0;
    unsigned b = 0;
    while (b < f->nbounds && v > f->bounds_ns[b]) b++;
    /* the sum in billionths of the family's unit (sum_ns), as ef_series_observe keeps it */
    add_observation(f, s, b, v <= UINT64_MAX / f->sum_per_ns ? v * f->sum_per_ns : UINT64_MAX);
}

int ef_metrics_add_collector(ef_metrics *m, ef_metrics_collector fn, void *ctx)
{
    collector *c = calloc(1, sizeof(*c));
    if (!c) return -1;
    c->fn = fn;
    c->ctx = ctx;
    pthread_mutex_lock(&m->mu);
    *m->ctail = c;
    m->ctail = &c->next;
    pthread_mutex_unlock(&m->mu);
    return 0;
}

/* Label values can be request bytes (an unknown flag key decoded from %FF, a raw header), and
 * Prometheus refuses the whole scrape when one value is not UTF-8: each byte that does not start a
 * valid sequence is written as U+FFFD, the JSON writer's rule (ef_utf8_seq), so one request cannot
 * take monitoring down for the life of the process. */
void ef_metrics_put_label_value(ef_buf *out, ef_bytes v)
{
    for (size_t i = 0; i < v.n; i++) {
        char c = v.p[i];
        if ((unsigned char)c >= 0x80) {
            size_t k = ef_utf8_seq((const unsigned char *)v.p + i, v.n - i);
            if (k) {
                ef_buf_append(out, v.p + i, k);
                i += k - 1;
            } else {
                ef_buf_puts(out, "\xEF\xBF\xBD");
            }
        } else if (c == '\\')
            ef_buf_puts(out, "\\\\");
        else if (c == '"')
            ef_buf_puts(out, "\\\"");
        else if (c == '\n')
            ef_buf_puts(out, "\\n");
        else if (c == '\0')
            ef_buf_puts(out, "\\\\0"); /* not representable: shown escaped */
        else
            ef_buf_putc(out, c);
    }
}

static void put_labels(ef_buf *out, const ef_metric_family *f, const series *s, const char *extra_name,
                       const char *extra_value)
{
    if (f->nlabels == 0 && !extra_name) return;
    ef_buf_putc(out, '{');
    const char *p = s->key;
    for (unsigned i = 0; i < f->nlabels; i++) {
        uint32_t len;
        memcpy(&len, p, 4);
        if (i) ef_buf_putc(out, ',');
        ef_buf_puts(out, f->labels[i]);
        ef_buf_puts(out, "=\"");
        ef_metrics_put_label_value(out, (ef_bytes){p + 4, len});
        ef_buf_putc(out, '"');
        p += 4 + len;
    }
    if (extra_name) {
        if (f->nlabels) ef_buf_putc(out, ',');
        ef_buf_printf(out, "%s=\"%s\"", extra_name, extra_value);
    }
    ef_buf_putc(out, '}');
}

static void write_series(ef_buf *out, const ef_metric_family *f, const series *s)
{
    if (!f->histogram) {
        ef_buf_puts(out, f->name);
        put_labels(out, f, s, NULL, NULL);
        ef_buf_printf(out, " %llu\n",
                      (unsigned long long)(__atomic_load_n(&s->count, __ATOMIC_RELAXED) + lanes_sum(s, 0)));
        return;
    }
    uint64_t cum = 0;
    char le[32];
    for (unsigned b = 0; b <= f->nbounds; b++) {
        cum += __atomic_load_n(&s->buckets[b], __ATOMIC_RELAXED) + lanes_sum(s, b);
        if (b < f->nbounds)
            snprintf(le, sizeof(le), "%g", f->bounds[b]);
        else
            snprintf(le, sizeof(le), "+Inf");
        ef_buf_printf(out, "%s_bucket", f->name);
        put_labels(out, f, s, "le", le);
        ef_buf_printf(out, " %llu\n", (unsigned long long)cum);
    }
    ef_buf_printf(out, "%s_sum", f->name);
    put_labels(out, f, s, NULL, NULL);
    ef_buf_printf(out, " %.9f\n",
                  (double)(__atomic_load_n(&s->sum_ns, __ATOMIC_RELAXED) + lanes_sum(s, f->nbounds + 1)) / 1e9);
    ef_buf_printf(out, "%s_count", f->name);
    put_labels(out, f, s, NULL, NULL);
    /* the count is the sum of the buckets read above, so _count and +Inf always agree */
    ef_buf_printf(out, " %llu\n", (unsigned long long)cum);
}

void ef_metrics_write(ef_metrics *m, ef_buf *out)
{
    pthread_mutex_lock(&m->mu);
    for (ef_metric_family *f = m->families; f; f = f->next) {
        ef_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                      f->histogram ? "histogram" : "counter");
        for (unsigned i = 0; i <= f->mask; i++) {
            series *s = __atomic_load_n(&f->slots[i], __ATOMIC_ACQUIRE);
            if (s) write_series(out, f, s);
        }
        series *o = __atomic_load_n(&f->other, __ATOMIC_ACQUIRE);
        if (o) write_series(out, f, o);
    }
    for (collector *c = m->collectors; c; c = c->next) c->fn(out, c->ctx);
    pthread_mutex_unlock(&m->mu);
}
