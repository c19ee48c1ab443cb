/*
 * activity_peers.c - the other nodes' evaluation activity (activity_peers.h): decoding a report's
 * "activity" member, keeping it in bounded memory, writing this node's own and its subtree's for
 * the report upward, and reading one flag's per-node counts for the chart.
 *
 * Must never trust a peer past the shape: every row is checked before any is stored, the store
 * never grows past EF_APW_MAX_SERIES series (each a fixed-size value), and a series not updated
 * for the whole window is reused. Not on the evaluation path: a mutex guards the store.
 */
#include "api/activity_peers.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

/* ---- the wire ---- */

static int bad(char *err, size_t errlen, unsigned row, const char *what)
{
    snprintf(err, errlen, "invalid activity[%u]: %s", row, what);
    return -1;
}

static bool get_u32(const ef_json *v, uint32_t *out)
{
    uint64_t u;
    if (!v || v->type != EF_JSON_NUMBER || !ef_json_u64(v, &u) || u > UINT32_MAX) return false;
    *out = (uint32_t)u;
    return true;
}

static int parse_row(ef_arena *arena, const ef_json *e, unsigned i, ef_apw_row *row, char *err, size_t errlen)
{
    if (e->type != EF_JSON_OBJECT) return bad(err, errlen, i, "want an object");
    const ef_json *node = ef_json_get(e, "node"), *ns = ef_json_get(e, "ns"), *flag = ef_json_get(e, "flag"),
                  *counts = ef_json_get(e, "counts");
    if (!node || node->type != EF_JSON_STRING || !ef_node_name_valid(node->str.p, node->str.n))
        return bad(err, errlen, i, "node: want a node name (1 to 63 letters, digits, '.', '_', '-')");
    if (!ns || ns->type != EF_JSON_STRING || !ns->str.n || !flag || flag->type != EF_JSON_STRING || !flag->str.n)
        return bad(err, errlen, i, "ns, flag: want non-empty strings");
    if (ns->str.n + flag->str.n > EF_APW_KEY_MAX || memchr(ns->str.p, 0, ns->str.n) || memchr(flag->str.p, 0, flag->str.n))
        return bad(err, errlen, i, "ns, flag: too long together, or holding a NUL byte");
    if (!counts || counts->type != EF_JSON_ARRAY || counts->len > EF_ACT_MINUTES)
        return bad(err, errlen, i, "counts: want an array of at most 64 [minute, count] pairs");
    memcpy(row->node, node->str.p, node->str.n);
    row->node[node->str.n] = '\0';
    /* copied: a decoded string may point into the body, which the caller may free first */
    char *keys = ef_arena_alloc(arena, ns->str.n + flag->str.n);
    if (!keys) return bad(err, errlen, i, "out of memory");
    memcpy(keys, ns->str.p, ns->str.n);
    memcpy(keys + ns->str.n, flag->str.p, flag->str.n);
    row->ns = (ef_bytes){keys, ns->str.n};
    row->flag = (ef_bytes){keys + ns->str.n, flag->str.n};
    row->n = 0;
    for (const ef_json *c = counts->child; c; c = c->next) {
        if (c->type != EF_JSON_ARRAY || c->len != 2 || !get_u32(c->child, &row->minute[row->n]) ||
            !get_u32(c->child->next, &row->count[row->n]))
            return bad(err, errlen, i, "counts: want [minute, count] pairs of integers from 0 to 4294967295");
        row->n++;
    }
    return 0;
}

int ef_apw_report_from_json(ef_apw_report *r, const ef_json *act, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    ef_arena_init(&r->arena, 4096);
    if (!act || act->type == EF_JSON_NULL) return 0;
    if (act->type != EF_JSON_ARRAY) {
        snprintf(err, errlen, "invalid activity: want an array");
        return -1;
    }
    if (act->len > EF_APW_MAX_ROWS) {
        snprintf(err, errlen, "invalid activity: more than %d rows", EF_APW_MAX_ROWS);
        return -1;
    }
    if (act->len && !(r->rows = ef_arena_alloc(&r->arena, act->len * sizeof(*r->rows)))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    unsigned i = 0;
    for (const ef_json *e = act->child; e; e = e->next, i++)
        if (parse_row(&r->arena, e, i, &r->rows[i], err, errlen) != 0) return -1;
    r->nrows = i;
    return 0;
}

int ef_apw_report_parse(ef_apw_report *r, const char *p, size_t n, char *err, size_t errlen)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_json_error je;
    ef_json_opts jo = {.max_depth = 8};
    const ef_json *root = ef_json_parse(p, n, &a, &jo, &je);
    int rc;
    if (!root) {
        memset(r, 0, sizeof(*r));
        ef_arena_init(&r->arena, 4096);
        snprintf(err, errlen, "invalid report: %s at byte %zu", je.message, je.offset);
        rc = -1;
    } else {
        rc = ef_apw_report_from_json(r, root->type == EF_JSON_OBJECT ? ef_json_get(root, "activity") : NULL, err, errlen);
    }
    ef_arena_free(&a);
    return rc;
}

void ef_apw_report_free(ef_apw_report *r)
{
    ef_arena_free(&r->arena);
    memset(r, 0, sizeof(*r));
}

/* ---- the store ---- */

#define HEADS 4096 /* hash chains (a power of two) */

typedef struct series {
    char node[EF_NODE_NAME_MAX + 1];
    uint8_t nsl, fl;
    char key[EF_APW_KEY_MAX]; /* namespace then flag, without separators */
    int32_t next;             /* the next series in its chain, -1 at the end */
    uint32_t newest;          /* the newest minute stored */
    uint32_t minute[EF_ACT_MINUTES]; /* count[i] is that of minute[i] when minute[i] % 64 == i */
    uint32_t count[EF_ACT_MINUTES];
} series;

struct ef_activity_peers {
    pthread_mutex_t mu;
    unsigned n;          /* series in use (each never freed, reused when stale) */
    int32_t heads[HEADS];
    series *all[EF_APW_MAX_SERIES]; /* allocated as needed, up to the bound */
};

ef_activity_peers *ef_activity_peers_new(void)
{
    ef_activity_peers *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    pthread_mutex_init(&p->mu, NULL);
    for (unsigned i = 0; i < HEADS; i++) p->heads[i] = -1;
    return p;
}

void ef_activity_peers_free(ef_activity_peers *p)
{
    if (!p) return;
    for (unsigned i = 0; i < p->n; i++) free(p->all[i]);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static unsigned hash_key(const char *node, ef_bytes ns, ef_bytes flag)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *c = node; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (size_t i = 0; i < ns.n; i++) h = (h ^ (unsigned char)ns.p[i]) * 1099511628211ull;
    h = (h ^ 0xfe) * 1099511628211ull;
    for (size_t i = 0; i < flag.n; i++) h = (h ^ (unsigned char)flag.p[i]) * 1099511628211ull;
    return (unsigned)(h ^ (h >> 32)) & (HEADS - 1);
}

static bool series_is(const series *s, const char *node, ef_bytes ns, ef_bytes flag)
{
    return s->nsl == ns.n && s->fl == flag.n && !strcmp(s->node, node) && !memcmp(s->key, ns.p, ns.n) &&
           !memcmp(s->key + ns.n, flag.p, flag.n);
}

/* Whether s holds nothing inside the window ending with now. */
static bool stale(const series *s, uint32_t now)
{
    return s->newest + EF_ACT_MINUTES <= now;
}

static void unlink_series(ef_activity_peers *p, int32_t idx)
{
    series *s = p->all[idx];
    unsigned h = hash_key(s->node, (ef_bytes){s->key, s->nsl}, (ef_bytes){s->key + s->nsl, s->fl});
    for (int32_t *at = &p->heads[h]; *at >= 0; at = &p->all[*at]->next)
        if (*at == idx) {
            *at = s->next;
            return;
        }
}

/* The series of (node, ns, flag), made when new; NULL when the store is full of live series.
 * *full: set once a search for a stale series found none, so the rest of a report does not
 * search again (one report costs at most one scan of the store). */
static series *find_or_make(ef_activity_peers *p, const char *node, ef_bytes ns, ef_bytes flag, uint32_t now,
                            bool *full)
{
    unsigned h = hash_key(node, ns, flag);
    for (int32_t i = p->heads[h]; i >= 0; i = p->all[i]->next)
        if (series_is(p->all[i], node, ns, flag)) return p->all[i];
    int32_t idx = -1;
    if (p->n < EF_APW_MAX_SERIES) {
        series *s = malloc(sizeof(*s));
        if (!s) return NULL;
        idx = (int32_t)p->n++;
        p->all[idx] = s;
    } else {
        for (unsigned i = *full ? p->n : 0; i < p->n && idx < 0; i++)
            if (stale(p->all[i], now)) idx = (int32_t)i;
        if (idx < 0) {
            *full = true;
            return NULL;
        }
        unlink_series(p, idx);
    }
    series *s = p->all[idx];
    memset(s, 0, sizeof(*s));
    snprintf(s->node, sizeof(s->node), "%s", node);
    s->nsl = (uint8_t)ns.n;
    s->fl = (uint8_t)flag.n;
    memcpy(s->key, ns.p, ns.n);
    memcpy(s->key + ns.n, flag.p, flag.n);
    s->next = p->heads[h];
    p->heads[h] = idx;
    return s;
}

unsigned ef_activity_peers_apply(ef_activity_peers *p, const ef_apw_report *r, const char *self,
                                 bool (*allowed)(const char *node, void *ctx), void *ctx, uint32_t now_minute)
{
    unsigned dropped = 0;
    bool full = false;
    if (!p) return 0;
    pthread_mutex_lock(&p->mu);
    for (unsigned i = 0; i < r->nrows; i++) {
        const ef_apw_row *row = &r->rows[i];
        if (!strcmp(row->node, self) || (allowed && !allowed(row->node, ctx))) continue;
        series *s = NULL;
        for (unsigned k = 0; k < row->n; k++) {
            uint32_t m = row->minute[k];
            /* the window, and a minute ahead for a peer whose clock is a little fast */
            if (m + EF_ACT_MINUTES <= now_minute || m > now_minute + 1) continue;
            if (!s && !(s = find_or_make(p, row->node, row->ns, row->flag, now_minute, &full))) {
                dropped++;
                break;
            }
            unsigned b = m % EF_ACT_MINUTES;
            if (s->minute[b] > m) continue; /* the bucket already holds a newer minute */
            s->minute[b] = m;
            s->count[b] = row->count[k];
            if (m > s->newest) s->newest = m;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return dropped;
}

/* Adds s's counts of the minutes ending with now into counts (oldest first); returns their sum. */
static uint64_t series_counts(const series *s, unsigned minutes, uint32_t now, uint64_t *counts)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < minutes; i++) {
        uint32_t m = now - (minutes - 1 - i);
        unsigned b = m % EF_ACT_MINUTES;
        if (s->minute[b] != m) continue;
        counts[i] += s->count[b];
        sum += s->count[b];
    }
    return sum;
}

/* ---- writing the report's rows ---- */

typedef struct writer {
    ef_buf *out;
    const char *node;
    unsigned minutes, rows;
    uint32_t now;
    size_t start; /* out->len before the array */
} writer;

/* The most one row can take: its keys escaped (6 bytes a byte at worst) and 64 pairs. */
#define ROW_MAX (96 + EF_NODE_NAME_MAX + 6 * EF_APW_KEY_MAX + EF_ACT_MINUTES * 24)

static void put_row(writer *w, const char *node, ef_bytes ns, ef_bytes flag, const uint64_t *counts)
{
    /* bounded in rows and in bytes, so the report stays well inside the receiver's --max-body */
    if (w->rows >= EF_APW_MAX_ROWS || w->out->len - w->start + ROW_MAX > EF_APW_MAX_BYTES) return;
    ef_buf_puts(w->out, w->rows++ ? ",{\"node\":" : "{\"node\":");
    ef_json_put_cstr(w->out, node);
    ef_buf_puts(w->out, ",\"ns\":");
    ef_json_put_str(w->out, ns);
    ef_buf_puts(w->out, ",\"flag\":");
    ef_json_put_str(w->out, flag);
    ef_buf_puts(w->out, ",\"counts\":[");
    bool first = true;
    for (unsigned i = 0; i < w->minutes; i++) {
        if (!counts[i]) continue;
        uint64_t c = counts[i] > UINT32_MAX ? UINT32_MAX : counts[i];
        ef_buf_printf(w->out, "%s[%" PRIu32 ",%" PRIu64 "]", first ? "" : ",", w->now - (w->minutes - 1 - i), c);
        first = false;
    }
    ef_buf_puts(w->out, "]}");
}

static void put_own(ef_bytes ns, ef_bytes flag, const uint64_t *counts, void *ctx)
{
    writer *w = ctx;
    put_row(w, w->node, ns, flag, counts);
}

void ef_activity_peers_write(ef_activity_peers *p, ef_activity *a, const char *self, unsigned minutes,
                             uint32_t now_minute, ef_buf *out)
{
    if (minutes < 1) minutes = 1;
    if (minutes > EF_ACT_MINUTES) minutes = EF_ACT_MINUTES;
    writer w = {out, self, minutes, 0, now_minute, out->len};
    ef_buf_putc(out, '[');
    ef_activity_each_flag(a, minutes, put_own, &w); /* out of memory: this node's rows are left out */
    if (p) {
        pthread_mutex_lock(&p->mu);
        for (unsigned i = 0; i < p->n; i++) {
            const series *s = p->all[i];
            uint64_t counts[EF_ACT_MINUTES] = {0};
            if (stale(s, now_minute) || !series_counts(s, minutes, now_minute, counts)) continue;
            put_row(&w, s->node, (ef_bytes){s->key, s->nsl}, (ef_bytes){s->key + s->nsl, s->fl}, counts);
        }
        pthread_mutex_unlock(&p->mu);
    }
    ef_buf_putc(out, ']');
}

/* ---- reading one flag ---- */

static int by_node(const void *x, const void *y)
{
    return strcmp((*(const series *const *)x)->node, (*(const series *const *)y)->node);
}

void ef_activity_peers_flag(ef_activity_peers *p, ef_bytes ns, ef_bytes flag, unsigned minutes, uint32_t now_minute,
                            void (*fn)(const char *node, const uint64_t *counts, void *ctx), void *ctx)
{
    if (!p) return;
    if (minutes < 1) minutes = 1;
    if (minutes > EF_ACT_MINUTES) minutes = EF_ACT_MINUTES;
    pthread_mutex_lock(&p->mu);
    /* one series per node for a flag, so at most as many as nodes (bounded by the store) */
    const series **found = malloc(sizeof(*found) * (p->n ? p->n : 1));
    unsigned nf = 0;
    for (unsigned i = 0; found && i < p->n; i++) {
        const series *s = p->all[i];
        if (!stale(s, now_minute) && s->nsl == ns.n && s->fl == flag.n && !memcmp(s->key, ns.p, ns.n) &&
            !memcmp(s->key + ns.n, flag.p, flag.n))
            found[nf++] = s;
    }
    if (found) qsort(found, nf, sizeof(*found), by_node);
    for (unsigned i = 0; i < nf; i++) {
        uint64_t counts[EF_ACT_MINUTES] = {0};
        series_counts(found[i], minutes, now_minute, counts);
        fn(found[i]->node, counts, ctx);
    }
    pthread_mutex_unlock(&p->mu);
    free(found);
}

/* ---- the "activity" member of cluster reports (ef_report_member in sync/sync.h) ---- */

#define RECENT_MINUTES 2 /* in a report that is not full: the current minute and the one before */

static const char *self_name(const ef_node *node)
{
    return node->name ? node->name : "edgeflag";
}

void ef_activity_report_write(void *ctx, bool full, ef_buf *body)
{
    ef_node *node = ctx;
    ef_activity_tick(node->activity, ef_activity_minute());
    ef_activity_peers_write(node->activity_peers, node->activity, self_name(node),
                            full ? EF_ACT_MINUTES : RECENT_MINUTES, ef_activity_now(node->activity), body);
}

int ef_activity_report_check(void *ctx, const ef_json *member, void **checked, char *err, size_t errlen)
{
    (void)ctx;
    ef_apw_report *r = malloc(sizeof(*r));
    *checked = NULL;
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (ef_apw_report_from_json(r, member, err, errlen) != 0) {
        ef_apw_report_free(r);
        free(r);
        return -1;
    }
    *checked = r;
    return 0;
}

void ef_activity_report_apply(void *ctx, void *checked, bool (*in_view)(const char *node, void *view), void *view)
{
    ef_node *node = ctx;
    ef_activity_tick(node->activity, ef_activity_minute());
    /* rows past the store's bound are dropped (counted in the store, not logged per report) */
    ef_activity_peers_apply(node->activity_peers, checked, self_name(node), in_view, view,
                            ef_activity_now(node->activity));
}

void ef_activity_report_discard(void *checked)
{
    if (!checked) return;
    ef_apw_report_free(checked);
    free(checked);
}
