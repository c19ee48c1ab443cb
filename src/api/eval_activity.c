/*
 * eval_activity.c - per-flag, per-outcome evaluation counts in per-minute buckets (see
 * eval_activity.h). Must never lock, allocate or block on the counting path.
 *
 * The table is open addressing over fixed slots. A slot is claimed once with a compare-and-swap
 * (EMPTY -> WRITING), filled, then published (READY, release); it is never freed, so a reader that
 * saw READY may use its key forever, and a slot number kept in a flag's tally stays valid for the
 * table's life. Two threads inserting the same new key at once may claim two slots: readers add up
 * every slot with the key, so no evaluation is lost or counted twice.
 *
 * The fast path: a result's tally (eval.h) names the slot of its outcome once bound to this table
 * (by the first evaluation that took the slow path, a key lookup), and the evaluation adds 1 to
 * that slot's bucket of the table's current minute. Buckets are plain counts; the bucket of a
 * minute is emptied by the tick that enters it (its old count, from 64 minutes before, joins
 * `retired`, so the metric's total needs no second atomic per evaluation).
 *
 * Every reader walks the claimed slots only, through `claimed` (slot numbers in the order they were
 * claimed), never the whole table: a walk of all 4,096 slots touched a cold cache line per slot
 * and took 1-3 ms, and a replica's report walks them every second.
 */
#include "api/eval_activity.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/json.h"
#include "http/metrics.h"
#include "base/thread.h"

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
    uint64_t buckets[EF_ACT_MINUTES]; /* atomic: the count of minute m is in buckets[m % EF_ACT_MINUTES] */
    char key[KEY_MAX];
} slot;

struct ef_activity {
    unsigned mask;
    uint32_t *claimed;   /* mask + 1 entries: slot index + 1 in claim order; 0: not recorded yet */
    uint32_t nclaimed;   /* atomic: entries of claimed taken */
    uint32_t minute;     /* atomic: the current minute; moved only by tick, under tick_mu */
    uint64_t overflowed; /* atomic */
    slot *slots;
    pthread_mutex_t tick_mu;
    pthread_mutex_t clock_mu; /* the clock thread's stop flag */
    pthread_cond_t clock_cv;
    bool clock_running, clock_stop;
    pthread_t clock;
};

/* The claimed slots: claimed_count() entries, the k-th by claimed_slot(), which is NULL while
 * its claimer has not recorded it yet (it is not READY then either). */
static unsigned claimed_count(const ef_activity *a)
{
    return __atomic_load_n(&a->nclaimed, __ATOMIC_ACQUIRE);
}

static slot *claimed_slot(const ef_activity *a, unsigned k)
{
    uint32_t n = __atomic_load_n(&a->claimed[k], __ATOMIC_ACQUIRE);
    return n ? &a->slots[n - 1] : NULL;
}

ef_activity *ef_activity_new(unsigned slots)
{
    unsigned n = 64;
    while (n < slots && n < (1u << 20)) n <<= 1;
    ef_activity *a = calloc(1, sizeof(*a));
    if (!a) return NULL;
    a->slots = calloc(n, sizeof(slot));
    a->claimed = calloc(n, sizeof(*a->claimed));
    if (!a->slots || !a->claimed) {
        free(a->slots);
        free(a->claimed);
        free(a);
        return NULL;
    }
    a->mask = n - 1;
    a->minute = ef_activity_minute();
    pthread_mutex_init(&a->tick_mu, NULL);
    pthread_mutex_init(&a->clock_mu, NULL);
    ef_cond_init_monotonic(&a->clock_cv);
    return a;
}

void ef_activity_free(ef_activity *a)
{
    if (!a) return;
    if (a->clock_running) {
        pthread_mutex_lock(&a->clock_mu);
        a->clock_stop = true;
        pthread_cond_signal(&a->clock_cv);
        pthread_mutex_unlock(&a->clock_mu);
        pthread_join(a->clock, NULL);
    }
    pthread_cond_destroy(&a->clock_cv);
    pthread_mutex_destroy(&a->clock_mu);
    pthread_mutex_destroy(&a->tick_mu);
    free(a->slots);
    free(a->claimed);
    free(a);
}

void ef_activity_tick(ef_activity *a, uint32_t minute)
{
    if (!a) return;
    pthread_mutex_lock(&a->tick_mu);
    uint32_t cur = __atomic_load_n(&a->minute, __ATOMIC_RELAXED);
    if (minute > cur) {
        /* empty the bucket of every minute entered (at most all of them), then enter the last */
        uint32_t from = minute - cur > EF_ACT_MINUTES ? minute - (EF_ACT_MINUTES - 1) : cur + 1;
        for (uint32_t m = from; m <= minute && m >= from; m++) {
            unsigned b = m % EF_ACT_MINUTES;
            /* a slot claimed after n was read needs nothing from this tick: its buckets were
             * empty when it was claimed, and what it counts meanwhile races the tick like any
             * evaluation made during it */
            for (unsigned k = 0, n = claimed_count(a); k < n; k++) {
                slot *s = claimed_slot(a, k);
                if (!s) continue;
                uint64_t old = __atomic_exchange_n(&s->buckets[b], 0, __ATOMIC_RELAXED);
                if (old) __atomic_add_fetch(&s->retired, old, __ATOMIC_RELAXED);
            }
        }
        __atomic_store_n(&a->minute, minute, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&a->tick_mu);
}

uint32_t ef_activity_now(const ef_activity *a)
{
    if (!a) return ef_activity_minute();
    return __atomic_load_n(&a->minute, __ATOMIC_ACQUIRE);
}

/* Ticks at each minute boundary of the wall clock: it sleeps on a monotonic clock (at most 60 s,
 * so a wall clock that jumps is caught up within a minute) until a little past the boundary. */
static void *clock_main(void *arg)
{
    ef_thread_name("ef-activity");
    ef_activity *a = arg;
    pthread_mutex_lock(&a->clock_mu);
    while (!a->clock_stop) {
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        int64_t into = (int64_t)(wall.tv_sec % 60) * 1000000000LL + wall.tv_nsec;
        int64_t wait = 60 * 1000000000LL - into + 5000000LL; /* 5 ms past the boundary */
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)(wait / 1000000000LL);
        until.tv_nsec += (long)(wait % 1000000000LL);
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&a->clock_cv, &a->clock_mu, &until);
        if (a->clock_stop) break;
        pthread_mutex_unlock(&a->clock_mu);
        ef_activity_tick(a, ef_activity_minute());
        pthread_mutex_lock(&a->clock_mu);
    }
    pthread_mutex_unlock(&a->clock_mu);
    return NULL;
}

int ef_activity_start_clock(ef_activity *a)
{
    if (a->clock_running) return 0;
    if (pthread_create(&a->clock, NULL, clock_main, a) != 0) return -1;
    a->clock_running = true;
    return 0;
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

/* The slot index takes the low bits, and a multiply carries a word's high bytes (a little-endian
 * load of a key's last characters) only upward: the finish folds every bit into them
 * (MurmurHash3's 64-bit finalizer), or keys that differ at their end ("checkout-v1", "-v2") share
 * a run of slots and overflow it. Only first evaluations and errors hash here. */
static inline uint64_t hash_probe(const probe *k)
{
    uint64_t h = mix(k->lens ^ k->ns, k->f1);
    h = mix(h, k->f2);
    if (k->v1) h = mix(h, k->v1 ^ k->v2 * 31);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
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

static inline void bump(ef_activity *a, slot *s)
{
    uint32_t m = __atomic_load_n(&a->minute, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->buckets[m % EF_ACT_MINUTES], 1, __ATOMIC_RELAXED);
}

/* The number (index + 1) of the slot holding the key, claimed if new; 0 when the table is full. */
static uint32_t find_slot(ef_activity *a, ef_bytes ns, ef_bytes flag, ef_act_kind kind, ef_bytes variant)
{
    size_t n = ns.n + 1 + flag.n + 1 + variant.n;
    if (n > KEY_MAX) return 0;
    probe k;
    make_probe(&k, ns, flag, kind, variant);
    uint64_t h = hash_probe(&k);
    for (unsigned p = 0; p < PROBES; p++) {
        unsigned i = (unsigned)((h + p) & a->mask);
        slot *s = &a->slots[i];
        uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        if (st == READY) {
            if (s->hash == h && key_is(s, &k, ns, flag, variant)) return i + 1;
            continue;
        }
        if (st == EMPTY) {
            uint32_t want = EMPTY;
            if (__atomic_compare_exchange_n(&s->state, &want, WRITING, false, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED)) {
                /* recorded before it is READY, so no walk misses a slot that counts */
                uint32_t at = __atomic_fetch_add(&a->nclaimed, 1, __ATOMIC_ACQ_REL);
                __atomic_store_n(&a->claimed[at], i + 1, __ATOMIC_RELEASE);
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
                return i + 1;
            }
        }
        /* WRITING (another thread is filling it, maybe with this key): look further */
    }
    return 0;
}

/* The slow path: looks the key up and, when the result came with its flag's tally (t, outcome
 * index i), keeps the slot there so the flag's next evaluations with this outcome take the fast
 * path. A tally already bound to another table stays with it (this table counts it slowly). */
static void count_slow(ef_activity *a, ef_bytes ns, ef_bytes flag, ef_act_kind kind, ef_bytes variant,
                       const ef_tally *t, unsigned i)
{
    uint32_t n = find_slot(a, ns, flag, kind, variant);
    if (!n) {
        __atomic_add_fetch(&a->overflowed, 1, __ATOMIC_RELAXED);
        return;
    }
    bump(a, &a->slots[n - 1]);
    if (!t || i >= EF_TALLY_FIXED + t->nvariants) return;
    ef_tally *w = (ef_tally *)t; /* only owner and slot[] change, atomically (eval.h) */
    void *none = NULL;
    if (__atomic_compare_exchange_n(&w->owner, &none, a, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) ||
        none == a)
        __atomic_store_n(&w->slot[i], n, __ATOMIC_RELAXED);
}

/* The fast path: one atomic add when t is bound to this table for outcome i; false otherwise.
 * Kept apart from the slow path so that the common case sets up nothing for it. */
static inline bool count_fast(ef_activity *a, const ef_tally *t, unsigned i)
{
    if (!t || __atomic_load_n(&t->owner, __ATOMIC_ACQUIRE) != a || i >= EF_TALLY_FIXED + t->nvariants)
        return false;
    uint32_t n = __atomic_load_n(&t->slot[i], __ATOMIC_RELAXED);
    if (!n) return false;
    bump(a, &a->slots[n - 1]);
    return true;
}

void ef_activity_count(ef_activity *a, ef_bytes ns, ef_bytes flag, ef_act_kind kind, ef_bytes variant)
{
    if (!a) return;
    if (kind != EF_ACT_VARIANT) variant = (ef_bytes){"", 0};
    count_slow(a, ns, flag, kind, variant, NULL, 0);
}

/* The tally index of a variant result's outcome: a default variant counts as that variant; a
 * disabled flag or no match as such. */
static inline unsigned variant_outcome(const ef_variant_result *r)
{
    return r->variant_key.n ? EF_TALLY_FIXED + r->variant_index : r->reason == EF_REASON_FLAG_DISABLED ? 1 : 2;
}

__attribute__((noinline)) static void variant_slow(ef_activity *a, ef_bytes ns, const ef_variant_result *r)
{
    unsigned i = variant_outcome(r);
    ef_act_kind k = i >= EF_TALLY_FIXED ? EF_ACT_VARIANT : i == 1 ? EF_ACT_DISABLED : EF_ACT_NO_MATCH;
    count_slow(a, ns, r->flag_key, k, k == EF_ACT_VARIANT ? r->variant_key : (ef_bytes){"", 0}, r->tally, i);
}

__attribute__((noinline)) static void boolean_slow(ef_activity *a, ef_bytes ns, const ef_boolean_result *r)
{
    count_slow(a, ns, r->flag_key, r->enabled ? EF_ACT_ENABLED : EF_ACT_DISABLED, (ef_bytes){"", 0}, r->tally,
               r->enabled ? 0 : 1);
}

void ef_activity_count_variant(ef_activity *a, ef_bytes ns, const ef_variant_result *r)
{
    if (a && !count_fast(a, r->tally, variant_outcome(r))) variant_slow(a, ns, r);
}

void ef_activity_count_boolean(ef_activity *a, ef_bytes ns, const ef_boolean_result *r)
{
    if (a && !count_fast(a, r->tally, r->enabled ? 0 : 1)) boolean_slow(a, ns, r);
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

/* Adds s's counts for the minutes ending with now (oldest first, minutes <= EF_ACT_MINUTES, so
 * every one is still in its bucket) into counts. */
static uint64_t read_counts(const slot *s, unsigned minutes, uint32_t now, uint64_t *counts)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < minutes; i++) {
        uint32_t m = now - (minutes - 1 - i);
        uint64_t c = __atomic_load_n(&s->buckets[m % EF_ACT_MINUTES], __ATOMIC_RELAXED);
        counts[i] += c;
        sum += c;
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
    for (unsigned i = 0; i < EF_ACT_MINUTES; i++) t += __atomic_load_n(&s->buckets[i], __ATOMIC_RELAXED);
    *(uint64_t *)ctx += t;
}

uint64_t ef_activity_flag_counts(ef_activity *a, ef_bytes ns, ef_bytes flag, unsigned minutes, uint64_t *counts)
{
    memset(counts, 0, sizeof(*counts) * minutes);
    if (!a) return 0;
    uint32_t now = ef_activity_now(a);
    uint64_t total = 0;
    for (unsigned k = 0, n = claimed_count(a); k < n; k++) {
        const slot *s = claimed_slot(a, k);
        if (s && __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == READY && slot_is(s, ns, flag))
            total += read_counts(s, minutes, now, counts);
    }
    return total;
}

/* A slot's namespace and flag. */
static void slot_names(const slot *s, ef_bytes *ns, ef_bytes *flag)
{
    size_t nsl = strnlen(s->key, s->keylen);
    *ns = (ef_bytes){s->key, nsl};
    *flag = (ef_bytes){s->key + nsl + 1, strnlen(s->key + nsl + 1, s->keylen - nsl - 1)};
}

static int bytes_cmp(ef_bytes a, ef_bytes b)
{
    int c = memcmp(a.p, b.p, a.n < b.n ? a.n : b.n);
    return c ? c : (a.n > b.n) - (a.n < b.n);
}

static int by_flag(const void *x, const void *y)
{
    const slot *a = *(const slot *const *)x, *b = *(const slot *const *)y;
    ef_bytes an, af, bn, bf;
    slot_names(a, &an, &af);
    slot_names(b, &bn, &bf);
    int c = bytes_cmp(an, bn);
    return c ? c : bytes_cmp(af, bf);
}

int ef_activity_each_flag(ef_activity *a, unsigned minutes,
                          void (*fn)(ef_bytes ns, ef_bytes flag, const uint64_t *counts, void *ctx), void *ctx)
{
    if (!a) return 0;
    if (minutes < 1) minutes = 1;
    if (minutes > EF_ACT_MINUTES) minutes = EF_ACT_MINUTES;
    unsigned nclaimed = claimed_count(a);
    if (!nclaimed) return 0;
    const slot **list = malloc(sizeof(*list) * nclaimed);
    if (!list) return -1;
    size_t n = 0;
    for (unsigned k = 0; k < nclaimed; k++) {
        const slot *s = claimed_slot(a, k);
        if (s && __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == READY) list[n++] = s;
    }
    qsort(list, n, sizeof(*list), by_flag);
    uint32_t now = ef_activity_now(a);
    for (size_t i = 0; i < n;) {
        ef_bytes ns, flag;
        slot_names(list[i], &ns, &flag);
        uint64_t counts[EF_ACT_MINUTES] = {0}, total = 0;
        for (; i < n; i++) {
            ef_bytes ns2, flag2;
            slot_names(list[i], &ns2, &flag2);
            if (!ef_bytes_eq(ns, ns2) || !ef_bytes_eq(flag, flag2)) break;
            total += read_counts(list[i], minutes, now, counts);
        }
        if (total) fn(ns, flag, counts, ctx);
    }
    free(list);
    return 0;
}

void ef_activity_flag_json(ef_activity *a, ef_bytes ns, ef_bytes flag, unsigned minutes, ef_buf *out)
{
    uint32_t now_minute = a ? ef_activity_now(a) : ef_activity_minute();
    if (minutes < 1) minutes = 1;
    if (minutes > EF_ACT_MINUTES) minutes = EF_ACT_MINUTES;
    char start[EF_RFC3339_MAX];
    ef_rfc3339_format((int64_t)(now_minute - (minutes - 1)) * 60 * 1000000000LL, start);
    ef_buf_printf(out, "{\"minutes\":%u,\"start\":\"%s\",\"series\":[", minutes, start);
    uint64_t total = 0;
    bool first = true;
    /* one series per outcome, in the order they first occurred; duplicate slots of one key (see
     * the top) are merged */
    for (unsigned k = 0, n = a ? claimed_count(a) : 0; k < n; k++) {
        const slot *s = claimed_slot(a, k);
        if (!s || __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != READY || !slot_is(s, ns, flag)) continue;
        struct acc c = {minutes, now_minute, {0}, 0};
        if (!each_copy(a, (unsigned)(s - a->slots), add_counts, &c) || !c.sum) continue;
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
    for (unsigned k = 0, n = claimed_count(a); k < n; k++) {
        const slot *s = claimed_slot(a, k);
        uint64_t total = 0;
        if (!s || __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != READY ||
            !each_copy(a, (unsigned)(s - a->slots), add_total, &total))
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
