/*
 * eval_activity.c - per-flag, per-outcome evaluation counts in per-minute buckets (see
 * eval_activity.h). Must never lock, allocate or block on the counting path.
 *
 * The table is open addressing over fixed slots. A slot is claimed once with a compare-and-swap
 * (EMPTY -> WRITING), filled, then published (READY, release); it is never freed, so a reader that
 * saw READY may use its key forever. Two threads inserting the same new key at once may claim two
 * slots: readers add up every slot with the key, so no evaluation is lost or counted twice.
 * A bucket is one 64-bit word, minute << 32 | count: the first count of a new minute replaces the
 * word with a compare-and-swap (and moves the old minute's count to `retired`, so the metric's
 * total never needs a second atomic per evaluation); later ones add 1 to it. The WRITING window
 * of a rotation is a few instructions: a scrape inside it may read one minute's count low.
 */
#include "api/eval_activity.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/json.h"
#include "http/metrics.h"

#define KEY_MAX 184 /* namespace \0 flag \0 variant */
#define PROBES 32

enum { EMPTY = 0, WRITING = 1, READY = 2 };

typedef struct probe probe;
struct probe {
    uint64_t lens, ns, f1, f2, v1, v2;
};

typedef struct slot {
    uint32_t state; /* atomic */
    uint8_t kind;
    uint16_t keylen;
    uint64_t hash;
    struct probe p; /* the key's probe (see make_probe) */
    uint64_t retired; /* atomic: counts of minutes that left the buckets (the total is this + them) */
    uint64_t buckets[EF_ACT_MINUTES]; /* atomic: minute << 32 | count */
    char key[KEY_MAX];
} slot;

struct ef_activity {
    unsigned mask;
    uint64_t overflowed; /* atomic */
    slot *slots;
};

ef_activity *ef_activity_new(unsigned slots)
{
    unsigned n = 64;
    while (n < slots && n < (1u << 20)) n <<= 1;
    ef_activity *a = calloc(1, sizeof(*a));
    if (!a) return NULL;
    a->slots = calloc(n, sizeof(slot));
    if (!a->slots) {
        free(a);
        return NULL;
    }
    a->mask = n - 1;
    return a;
}

void ef_activity_free(ef_activity *a)
{
    if (!a) return;
    free(a->slots);
    free(a);
}

uint32_t ef_activity_minute(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (uint32_t)(ts.tv_sec / 60);
}

/* 8 bytes of p[0..n) from off (off + 8 <= n), or for a shorter part (off 0, n < 8) a word that
 * holds every one of its bytes: two overlapping 4-byte loads, or the 1 to 3 bytes themselves. */
static inline uint64_t load8(const char *p, size_t n, size_t off)
{
    uint64_t v = 0;
    if (off + 8 <= n) {
        memcpy(&v, p + off, 8);
    } else if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        v = (uint64_t)hi << 32 | lo;
    } else if (n > 0) {
        v = (uint64_t)(unsigned char)p[0] | (uint64_t)(unsigned char)p[n / 2] << 8 |
            (uint64_t)(unsigned char)p[n - 1] << 16;
    }
    return v;
}

static inline uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

/* What identifies a key cheaply: its lengths and kind in one word, and the first and last 8 bytes
 * of each part. Equal probes decide equality for parts of at most 8 (namespace) or 16 bytes (flag,
 * variant); longer parts are compared in full. Computing it costs the same whatever the length. */

static inline void make_probe(probe *k, ef_bytes ns, ef_bytes flag, ef_act_kind kind, ef_bytes variant)
{
    k->lens = (uint64_t)kind << 48 | (uint64_t)ns.n << 32 | (uint64_t)flag.n << 16 | variant.n;
    k->ns = load8(ns.p, ns.n, 0);
    k->f1 = load8(flag.p, flag.n, 0);
    k->f2 = flag.n > 8 ? load8(flag.p, flag.n, flag.n - 8) : 0;
    k->v1 = load8(variant.p, variant.n, 0);
    k->v2 = variant.n > 8 ? load8(variant.p, variant.n, variant.n - 8) : 0;
}

static inline uint64_t hash_probe(const probe *k)
{
    uint64_t h = mix(k->lens ^ k->ns, k->f1);
    h = mix(h, k->f2);
    if (k->v1) h = mix(h, k->v1 ^ k->v2 * 31);
    return h;
}

static inline bool key_is(const slot *s, const probe *k, ef_bytes ns, ef_bytes flag, ef_bytes variant)
{
    if (s->p.lens != k->lens || s->p.f1 != k->f1 || s->p.f2 != k->f2 || s->p.ns != k->ns ||
        s->p.v1 != k->v1 || s->p.v2 != k->v2)
        return false;
    return (ns.n <= 8 || !memcmp(s->key, ns.p, ns.n)) &&
           (flag.n <= 16 || !memcmp(s->key + ns.n + 1, flag.p, flag.n)) &&
           (variant.n <= 16 || !memcmp(s->key + ns.n + flag.n + 2, variant.p, variant.n));
}

static void bump(slot *s, uint32_t minute)
{
    uint64_t *b = &s->buckets[minute % EF_ACT_MINUTES];
    uint64_t w = __atomic_load_n(b, __ATOMIC_RELAXED);
    for (;;) {
        if ((uint32_t)(w >> 32) == minute) {
            __atomic_add_fetch(b, 1, __ATOMIC_RELAXED);
            return;
        }
        if ((uint32_t)(w >> 32) > minute) return; /* a count from a clock that went back: dropped */
        uint64_t nw = (uint64_t)minute << 32 | 1;
        if (__atomic_compare_exchange_n(b, &w, nw, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            /* the minute this bucket held leaves the window: its count joins the total */
            __atomic_add_fetch(&s->retired, (uint32_t)w, __ATOMIC_RELAXED);
            return;
        }
    }
}

void ef_activity_count_at(ef_activity *a, ef_bytes ns, ef_bytes flag, ef_act_kind kind, ef_bytes variant,
                          uint32_t minute)
{
    if (!a) return;
    if (kind != EF_ACT_VARIANT) variant = (ef_bytes){"", 0};
    size_t n = ns.n + 1 + flag.n + 1 + variant.n;
    if (n > KEY_MAX) {
        __atomic_add_fetch(&a->overflowed, 1, __ATOMIC_RELAXED);
        return;
    }
    probe k;
    make_probe(&k, ns, flag, kind, variant);
    uint64_t h = hash_probe(&k);
    for (unsigned p = 0; p < PROBES; p++) {
        slot *s = &a->slots[(h + p) & a->mask];
        uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        if (st == READY) {
            if (s->hash == h && key_is(s, &k, ns, flag, variant)) {
                bump(s, minute);
                return;
            }
            continue;
        }
        if (st == EMPTY) {
            uint32_t want = EMPTY;
            if (__atomic_compare_exchange_n(&s->state, &want, WRITING, false, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED)) {
                s->hash = h;
                s->p = k;
                s->kind = (uint8_t)kind;
                s->keylen = (uint16_t)n;
                memcpy(s->key, ns.p, ns.n);
                s->key[ns.n] = '\0';
                memcpy(s->key + ns.n + 1, flag.p, flag.n);
                s->key[ns.n + 1 + flag.n] = '\0';
                if (variant.n) memcpy(s->key + ns.n + 2 + flag.n, variant.p, variant.n);
                __atomic_store_n(&s->state, READY, __ATOMIC_RELEASE);
                bump(s, minute);
                return;
            }
        }
        /* WRITING (another thread is filling it, maybe with this key): look further */
    }
    __atomic_add_fetch(&a->overflowed, 1, __ATOMIC_RELAXED);
}

void ef_activity_count(ef_activity *a, ef_bytes ns, ef_bytes flag, ef_act_kind kind, ef_bytes variant)
{
    if (a) ef_activity_count_at(a, ns, flag, kind, variant, ef_activity_minute());
}

void ef_activity_count_variant(ef_activity *a, ef_bytes ns, const ef_variant_result *r)
{
    /* a default variant counts as that variant; a disabled flag or no match as such */
    ef_act_kind k = r->variant_key.n ? EF_ACT_VARIANT
                    : r->reason == EF_REASON_FLAG_DISABLED ? EF_ACT_DISABLED
                                                           : EF_ACT_NO_MATCH;
    ef_activity_count(a, ns, r->flag_key, k, r->variant_key);
}

void ef_activity_count_boolean(ef_activity *a, ef_bytes ns, const ef_boolean_result *r)
{
    ef_activity_count(a, ns, r->flag_key, r->enabled ? EF_ACT_ENABLED : EF_ACT_DISABLED, (ef_bytes){"", 0});
}

/* ---- reading (not on the evaluation path) ---- */

static const char *const kind_names[] = {"variant", "enabled", "disabled", "no match", "error"};

/* Whether ready slot s belongs to (ns, flag). */
static bool slot_is(const slot *s, ef_bytes ns, ef_bytes flag)
{
    return s->keylen >= ns.n + flag.n + 2 && !memcmp(s->key, ns.p, ns.n) && s->key[ns.n] == '\0' &&
           !memcmp(s->key + ns.n + 1, flag.p, flag.n) && s->key[ns.n + 1 + flag.n] == '\0';
}

static ef_bytes slot_variant(const slot *s, ef_bytes ns, ef_bytes flag)
{
    size_t off = ns.n + flag.n + 2;
    return (ef_bytes){s->key + off, s->keylen - off};
}

static bool same_key(const slot *a, const slot *b)
{
    return a->hash == b->hash && a->kind == b->kind && a->keylen == b->keylen && !memcmp(a->key, b->key, a->keylen);
}

/* Calls fn for every slot holding the same key as slot i (duplicates are within its probe window),
 * or returns false without calling it when i is not the first of them. */
static bool each_copy(const ef_activity *a, unsigned i, void (*fn)(const slot *, void *), void *ctx)
{
    const slot *s = &a->slots[i];
    bool seen_self = false;
    for (unsigned p = 0; p < PROBES; p++) {
        unsigned j = (unsigned)((s->hash + p) & a->mask);
        const slot *o = &a->slots[j];
        if (__atomic_load_n(&o->state, __ATOMIC_ACQUIRE) != READY || !same_key(o, s)) continue;
        if (j == i) seen_self = true;
        else if (!seen_self) return false; /* an earlier copy reports the key */
    }
    for (unsigned p = 0; p < PROBES; p++) {
        unsigned j = (unsigned)((s->hash + p) & a->mask);
        const slot *o = &a->slots[j];
        if (__atomic_load_n(&o->state, __ATOMIC_ACQUIRE) == READY && same_key(o, s)) fn(o, ctx);
    }
    return true;
}

/* Adds s's counts for the minutes ending with now (oldest first) into counts. */
static uint64_t read_counts(const slot *s, unsigned minutes, uint32_t now, uint64_t *counts)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < minutes; i++) {
        uint32_t m = now - (minutes - 1 - i);
        uint64_t w = __atomic_load_n(&s->buckets[m % EF_ACT_MINUTES], __ATOMIC_RELAXED);
        if ((uint32_t)(w >> 32) != m) continue;
        counts[i] += (uint32_t)w;
        sum += (uint32_t)w;
    }
    return sum;
}

struct acc {
    unsigned minutes;
    uint32_t now;
    uint64_t counts[EF_ACT_MINUTES];
    uint64_t sum;
};

static void add_counts(const slot *s, void *ctx)
{
    struct acc *c = ctx;
    c->sum += read_counts(s, c->minutes, c->now, c->counts);
}

static void add_total(const slot *s, void *ctx)
{
    uint64_t t = __atomic_load_n(&s->retired, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < EF_ACT_MINUTES; i++) t += (uint32_t)__atomic_load_n(&s->buckets[i], __ATOMIC_RELAXED);
    *(uint64_t *)ctx += t;
}

void ef_activity_flag_sum(ef_activity *a, ef_bytes ns, ef_bytes flag, unsigned minutes, uint32_t now_minute,
                          uint64_t *counts)
{
    memset(counts, 0, sizeof(*counts) * minutes);
    if (!a) return;
    for (unsigned i = 0; i <= a->mask; i++) {
        const slot *s = &a->slots[i];
        if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == READY && slot_is(s, ns, flag))
            read_counts(s, minutes, now_minute, counts);
    }
}

void ef_activity_flag_json(ef_activity *a, ef_bytes ns, ef_bytes flag, unsigned minutes, uint32_t now_minute,
                           ef_buf *out)
{
    if (minutes < 1) minutes = 1;
    if (minutes > EF_ACT_MINUTES) minutes = EF_ACT_MINUTES;
    char start[EF_RFC3339_MAX];
    ef_rfc3339_format((int64_t)(now_minute - (minutes - 1)) * 60 * 1000000000LL, start);
    ef_buf_printf(out, "{\"minutes\":%u,\"start\":\"%s\",\"series\":[", minutes, start);
    uint64_t total = 0;
    bool first = true;
    /* one series per outcome; duplicate slots of one key (see the top) are merged */
    for (unsigned i = 0; a && i <= a->mask; i++) {
        const slot *s = &a->slots[i];
        if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != READY || !slot_is(s, ns, flag)) continue;
        struct acc c = {minutes, now_minute, {0}, 0};
        if (!each_copy(a, i, add_counts, &c) || !c.sum) continue;
        total += c.sum;
        ef_bytes variant = slot_variant(s, ns, flag);
        ef_buf_puts(out, first ? "{\"outcome\":" : ",{\"outcome\":");
        if (s->kind == EF_ACT_VARIANT)
            ef_json_put_str(out, variant);
        else
            ef_json_put_cstr(out, kind_names[s->kind]);
        ef_buf_printf(out, ",\"kind\":\"%s\",\"counts\":[", kind_names[s->kind < 5 ? s->kind : 4]);
        for (unsigned m = 0; m < minutes; m++) ef_buf_printf(out, "%s%" PRIu64, m ? "," : "", c.counts[m]);
        ef_buf_printf(out, "],\"total\":%" PRIu64 "}", c.sum);
        first = false;
    }
    ef_buf_printf(out, "],\"total\":%" PRIu64 "}", total);
}

void ef_activity_metrics(ef_activity *a, const char *node, ef_buf *out)
{
    if (!a) return;
    ef_buf_puts(out, "# HELP edgeflag_flag_evaluations_total Evaluations per flag and outcome (variant key, "
                     "enabled, disabled, no match, error) on this node.\n"
                     "# TYPE edgeflag_flag_evaluations_total counter\n");
    for (unsigned i = 0; i <= a->mask; i++) {
        const slot *s = &a->slots[i];
        uint64_t total = 0;
        if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != READY || !each_copy(a, i, add_total, &total))
            continue;
        size_t nsl = strlen(s->key);
        size_t fl = strnlen(s->key + nsl + 1, s->keylen - nsl - 1);
        ef_bytes ns = {s->key, nsl}, flag = {s->key + nsl + 1, fl};
        ef_buf_puts(out, "edgeflag_flag_evaluations_total{node=\"");
        ef_metrics_put_label_value(out, ef_bytes_of(node));
        ef_buf_puts(out, "\",namespace=\"");
        ef_metrics_put_label_value(out, ns);
        ef_buf_puts(out, "\",flag=\"");
        ef_metrics_put_label_value(out, flag);
        ef_buf_puts(out, "\",outcome=\"");
        if (s->kind == EF_ACT_VARIANT)
            ef_metrics_put_label_value(out, slot_variant(s, ns, flag));
        else
            ef_buf_puts(out, kind_names[s->kind < 5 ? s->kind : 4]);
        ef_buf_printf(out, "\"} %" PRIu64 "\n", total);
    }
    ef_buf_printf(out,
                  "# HELP edgeflag_flag_evaluations_overflowed_total Evaluations not counted per flag (the "
                  "activity table was full or the key too long).\n"
                  "# TYPE edgeflag_flag_evaluations_overflowed_total counter\n"
                  "edgeflag_flag_evaluations_overflowed_total{node=\"");
    ef_metrics_put_label_value(out, ef_bytes_of(node));
    ef_buf_printf(out, "\"} %" PRIu64 "\n", __atomic_load_n(&a->overflowed, __ATOMIC_RELAXED));
}
