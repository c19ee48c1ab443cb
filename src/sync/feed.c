/*
 * feed.c - GET /edgeflag/v1/replication/stream?since=SEQ&history=H: the change log as server-sent
 * events, served by every node that has a store (a primary, and a replica for the replicas chained
 * to it). H is the history the follower's state belongs to (ef_store_identity) and the optional
 * at=FP the fingerprint of its entry at SEQ (ef_store_entry_hash): a follower on another history,
 * ahead of a primary on this one, or holding another entry at SEQ, starts with a reset instead of
 * entries that do not follow from its state (docs/replication.md, "Histories").
 *
 *   id: 12            one committed transaction, the change-log entry verbatim (docs/storage.md)
 *   event: txn
 *   data: {"seq":12,...}
 *
 *   event: reset      a full dump, sent when SEQ is older than the log still holds, and first of
 *                     all for since=0 (a new replica takes the whole state, including rows every
 *                     store creates for itself, like the default namespace); the follower
 *   data: {"seq":N,"versions":{..},"tables":{..}}   replaces its whole state with it atomically
 *
 *   event: heartbeat  at once on connect, then every EF_SYNC_HEARTBEAT_MS:
 *   data: {"seq":sent up to,"head":node seq,"time":unix ns,"history":H,"lagSeconds":lag,"node":NAME}
 *
 * A follower names itself with node=NAME (`serve --name`); the feed names itself in heartbeats.
 * The stream's answer carries X-Edgeflag-Forward-Key, a random key of this stream only: the
 * follower sends it back on the writes it forwards here, which tells them from a client's
 * (ef_feed_is_downstream; docs/audit.md, "Writes through a replica").
 *
 * One feed thread per node (never one per subscriber) reads the store and queues events into each
 * subscriber's buffer; the HTTP server pulls them through fill() while the connection is suspended
 * in between. Subscribers at the same position share one read of the log. A slow subscriber holds
 * at most PENDING_MAX queued bytes; the feed waits for it instead of buffering without bound. A
 * full dump is one shared block (base/shared.h) for every subscriber that needs one at about the
 * same time, and no more than DUMPS_LIVE_MAX of them are held at once.
 *
 * Memory. What the feed holds for its streams must be bounded across all of them, whatever their
 * number: the stream route needs no token without authentication, and a stream that never reads
 * keeps what was queued to it. An attacker review opened 100 such streams on a primary whose log
 * held a 5.7 MB entry: each got its own copy, and the primary went from 26 to 660 MiB (1650 MiB at
 * 250). So:
 *   - an entry of SHARE_MIN (64 KiB) or more is queued as one shared block, built once, to every
 *     stream that needs it (f->big keeps it by seq while a stream holds it, so one asking in a
 *     later round gets the same block); its stream must take it at the dumps' pace;
 *   - the bytes held for all streams together (each one's own queued bytes, including those
 *     handed to its stream and not yet sent, plus the entry blocks alive, each counted once) are
 *     checked against ef_sync_config.feed_budget on every round of the feed thread; past it (plus
 *     the largest entry block alive, so an entry larger than the budget still goes out), the
 *     stream holding the most is ended (enforce_budget), and the next, until the rest fits.
 * A follower that is ended reconnects and resumes from its position: only memory is reclaimed,
 * never an entry. Healthy followers take what is queued as fast as it comes and hold next to
 * nothing, so they are not the ones ended, and sharing keeps a large entry sent to many of them
 * at one copy (a fleet taking a 100 MB import costs 100 MB, not 100 MB each); dumps keep their own
 * bound (DUMPS_LIVE_MAX, the pace).
 *
 * A round (queueing to subscribers) runs under f->round_mu: on the feed thread, or on a primary's
 * writer thread right after its commit (ef_feed_committed), which takes round_mu only with a
 * trylock and otherwise leaves the round to the feed thread. That inline round saves the entry a
 * wake-up of the feed thread on its way to the replicas: on two cores shared by ten replicas, the
 * feed thread waited 0.3 ms on average, and up to 2 ms, for a core (issue 11).
 *
 * Locks: round_mu -> f->mu (subscriber list) -> stream lock (ef_http_stream_wake). fill() runs
 * under the stream lock and takes only sub->mu and kick_mu, which are never held while waking. The
 * feed thread calls the store holding only round_mu, and the writer, who holds the store's writer
 * lock, never waits for round_mu; registry listeners run under that writer lock and take kick_mu.
 * Only a round frees a subscriber (after done() marked it closed), so a round may walk the list
 * without f->mu: other threads only push at the head.
 *
 * A replica's follower loads its upstream's dumps between ef_feed_reset_begin and _end, which hold
 * round_mu: no round reads the store half before and half after the load. A subscriber's history
 * and position were checked against the state this node held then (sub->checked); after a load
 * that check means nothing (a new history, a state behind the old one, another branch), so _end
 * ends every checked stream and each follower reconnects and is checked against the new state.
 * Before, a chained replica whose stream stayed up was sent the new history's entries on top of
 * its old state, and served that mix as in sync for ever (review of the sync code, bug 1).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/cnum.h"
#include "base/json.h"
#include "base/log.h"
#include "sync/sync_int.h"
#include "base/thread.h"

#define PENDING_MAX (8u << 20)
#define BATCH_MAX 512
/* A round reads at most BATCH_MAX entries, and stops past BATCH_BYTES of them (a log of large
 * imports would otherwise be read 512 at a time). */
#define BATCH_BYTES PENDING_MAX
/* An entry this large or larger is queued as one shared block (its event, built once) to every
 * subscriber that needs it, not copied into each one's queue. */
#define SHARE_MIN (64u << 10)
/* Entry blocks the feed remembers by seq while a stream still holds them, so a subscriber asking
 * for the same entry in a later round gets the same block, not another copy. */
#define BIG_CACHE 16
/* Entries the primary's commit listener hands over (issue 11): the last RECENT_MAX, each at most
 * RECENT_ENTRY_MAX bytes (a larger one empties the ring, and the store is read as before). */
#define RECENT_MAX 64
#define RECENT_ENTRY_MAX (256u << 10)
/* Subscribers the writer's thread queues an entry to itself, at most: it holds the store's writer
 * lock meanwhile, and a primary followed by hundreds of embedded replicas (libedgeflag) would make
 * every write wait for all of them. Above this the feed thread does it, as for a big entry. */
#define INLINE_SUBS_MAX 16
/* A dump is built once for every subscriber that needs one in a round, and given to those of the
 * next rounds too while it is at most dump_reuse_ms old (ef_sync_config, 2 s by default) and the
 * log holds every entry after it (a fleet restarting bootstraps from one dump). Streams still
 * sending older dumps keep them alive: while DUMPS_LIVE_MAX distinct dumps are alive, a
 * subscriber that needs another waits (with heartbeats) for one to be sent, instead of each
 * reconnecting follower pinning its own 140 MB (100,000 flags). A follower that takes its dump
 * slower than ef_sync_config.dump_min_rate (after a grace) has its connection closed
 * (ef_http_stream_pace): else two followers trickling their dumps would hold both places, and
 * every bootstrap would wait behind them. */
#define DUMPS_LIVE_MAX 2

/* A shared block queued to a subscriber (a dump, or a large entry's event) and the bytes queued
 * after it. */
typedef struct feed_seg {
    ef_shared *block; /* a reference */
    bool dump;        /* a full dump (else an entry: counted in the budget) */
    ef_buf after;
    struct feed_seg *next;
} feed_seg;

typedef struct feed_sub feed_sub;
struct feed_sub {
    ef_feed *f;
    ef_http_stream *stream; /* under f->mu; NULL until queued and after done() */
    pthread_mutex_t mu;     /* guards pending, segs and the handed_* fields */
    ef_buf pending;         /* SSE bytes queued by the feed thread, drained by fill() */
    feed_seg *segs, *tail;  /* shared blocks queued after pending, each with the bytes after it */
    /* What the last fill() handed to the stream, which holds it until the next fill() (a stream
     * asks again only once it has sent everything it was given): its own bytes, or a block. */
    size_t handed_own;
    size_t handed_block_len;
    bool handed_entry, handed_dump; /* what kind of block it was */
    bool closed;            /* under f->mu: done() ran; the feed thread frees it */
    uint64_t pos;           /* atomic: last seq queued to this subscriber */
    uint64_t since;
    bool bootstrap;         /* a round's (under round_mu): since=0, start with a dump */
    bool dump_wait;         /* a round's (under round_mu): needs a dump none could give it yet
                             * (DUMPS_LIVE_MAX, or the dump failed): heartbeats only */
    bool checked;           /* a round's (under round_mu): its history and position were checked */
    bool ending;            /* under mu: this node's state was replaced (ef_feed_reset_end): the
                             * stream ends at its next fill, with nothing more queued */
    bool evicted;           /* a round's (under round_mu): ended for the budget (enforce_budget) */
    char history[EF_STORE_ID_MAX + 1]; /* the history it is on ("" when it did not say) */
    uint64_t at;            /* fingerprint of its entry at since (ef_store_entry_hash); 0: none */
    int64_t connected_ns;   /* wall clock */
    int64_t last_beat_ns;   /* a round's (under round_mu); 0 until the first heartbeat */
    bool wake;              /* a round's (under round_mu): queued something this round */
    char peer[64];
    char name[EF_NODE_NAME_MAX + 1]; /* node=NAME of the handshake ("" when it did not say) */
    char key[EF_UUID_LEN + 1]; /* X-Edgeflag-Forward-Key of its answer (random, this stream's) */
    feed_sub *next;
};

struct ef_feed {
    ef_sync *s;
    pthread_mutex_t mu; /* the subscriber list */
    feed_sub *subs;
    unsigned nsubs; /* changed under mu, read atomically by the kick functions */
    pthread_mutex_t round_mu; /* held through a round; the buffers below are the round's */
    struct batch *b;
    ef_buf ev;
    pthread_mutex_t kick_mu;
    pthread_cond_t kick_cv;
    bool kicked, stop; /* under kick_mu */
    pthread_t thread;
    bool running;
    int64_t last_trim_ns;
    char history[EF_STORE_ID_MAX + 1]; /* under round_mu: this node's, read every full round */
    bool offered;                      /* under kick_mu: the commit listener added an entry */
    bool sent_all;                     /* under recent_mu: every entry committed so far was queued to every
                                        * subscriber on the writer's thread (ef_feed_committed) */
    /* Entries committed on this node, seqs recent_first..recent_last (0: none), at seq % RECENT_MAX.
     * Filled on the writer's thread before its publish, so the feed need not wait for the store's
     * writer lock (held through the publish) to read them. */
    pthread_mutex_t recent_mu;
    uint64_t recent_first, recent_last;
    ef_buf recent[RECENT_MAX];
    int64_t recent_mono[RECENT_MAX]; /* when each was committed (for feed_wake) */
    /* The last dump built (under round_mu), its seq, history and when it was built; its
     * reference is dropped once it is too old to give out (dump_reuse_ns). */
    ef_shared *dump;
    uint64_t dump_seq;
    int64_t dump_ns;
    char dump_history[EF_STORE_ID_MAX + 1];
    int dumps_live; /* atomic: dumps built and not yet freed (ef_shared_take_counted) */
    /* Under round_mu: the highest position this replica held before a dump took it back on the
     * same history (its upstream was restored from a backup), and that history. A subscriber
     * ahead of this node on that history, at or below it, is on the branch that was undone. */
    uint64_t rewound_from;
    char rewound_history[EF_STORE_ID_MAX + 1];
    uint64_t dumps_built, dumps_reused; /* atomic */
    /* The budget (enforce_budget): bytes of the entry blocks alive (ef_shared_take_tracked), the
     * last total counted, and the streams ended for it (atomic). */
    uint64_t entry_bytes, held_bytes, evicted;
    struct {
        uint64_t seq;
        ef_shared *block; /* a reference, dropped once no stream holds the block (prune_big) */
    } big[BIG_CACHE];     /* under round_mu */
};

/* How long the feed's last dump is given out again. */
static int64_t dump_reuse_ns(const ef_feed *f)
{
    unsigned ms = f->s->cfg.dump_reuse_ms ? f->s->cfg.dump_reuse_ms : EF_SYNC_DUMP_REUSE_MS_DEFAULT;
    return (int64_t)ms * 1000000LL;
}

/* Entries read once per round and shared by every subscriber. */
typedef struct batch {
    ef_buf text;
    size_t n;
    struct {
        uint64_t seq;
        size_t off, len;
    } e[BATCH_MAX];
    ef_shared *blk[BATCH_MAX]; /* entries of SHARE_MIN or more: their block, once one needed it */
} batch;

static int batch_add(void *ctx, const ef_store_change *c)
{
    batch *b = ctx;
    if (b->n == BATCH_MAX || (b->n && b->text.len >= BATCH_BYTES)) return 1;
    b->e[b->n].seq = c->seq;
    b->e[b->n].off = b->text.len;
    b->e[b->n].len = c->entry.n;
    ef_buf_append(&b->text, c->entry.p, c->entry.n);
    b->n++;
    return 0;
}

/* One SSE data field per line of text (entries and dumps are single-line JSON, but a newline
 * inside would otherwise end the event early). */
static void put_data(ef_buf *out, const char *p, size_t n)
{
    for (;;) {
        const char *nl = memchr(p, '\n', n);
        size_t len = nl ? (size_t)(nl - p) : n;
        ef_buf_puts(out, "data: ");
        ef_buf_append(out, p, len);
        ef_buf_putc(out, '\n');
        if (!nl) break;
        p += len + 1;
        n -= len + 1;
    }
    ef_buf_putc(out, '\n');
}

/* Unlinks sub's first queued block and returns it, its reference with it. Caller holds sub->mu. */
static feed_seg *pop_seg(feed_sub *sub)
{
    feed_seg *g = sub->segs;
    if (g) {
        sub->segs = g->next;
        if (!sub->segs) sub->tail = NULL;
    }
    return g;
}

static void free_seg(feed_seg *g)
{
    ef_shared_unref(g->block);
    ef_buf_free(&g->after);
    free(g);
}

static void free_sub(feed_sub *sub)
{
    ef_buf_free(&sub->pending);
    for (feed_seg *g; (g = pop_seg(sub));) free_seg(g);
    pthread_mutex_destroy(&sub->mu);
    free(sub);
}

/* Where bytes queued to sub go now: after its last block when one is queued. Caller holds
 * sub->mu. */
static ef_buf *sub_queue(feed_sub *sub)
{
    return sub->tail ? &sub->tail->after : &sub->pending;
}

/* Queues a reference to block after everything queued to sub. false when memory runs out (the
 * caller ends the stream: what follows cannot be sent without it). Caller holds sub->mu. */
static bool queue_block(feed_sub *sub, ef_shared *block, bool dump)
{
    feed_seg *g = calloc(1, sizeof(*g));
    if (!g) return false;
    g->block = ef_shared_ref(block);
    g->dump = dump;
    ef_buf_init(&g->after);
    if (sub->tail)
        sub->tail->next = g;
    else
        sub->segs = g;
    sub->tail = g;
    return true;
}

/* Whether a full dump is queued to sub. Caller holds sub->mu. */
static bool dump_queued(const feed_sub *sub)
{
    for (const feed_seg *g = sub->segs; g; g = g->next)
        if (g->dump) return true;
    return false;
}

/* Bytes queued to sub and not yet taken by its stream. Caller holds sub->mu. */
static size_t sub_queued(const feed_sub *sub)
{
    size_t n = sub->pending.len;
    for (const feed_seg *g = sub->segs; g; g = g->next) n += g->block->len + g->after.len;
    return n;
}

/* What sub holds for the budget (enforce_budget), under sub->mu: *own, the bytes queued to it
 * alone (queued, or handed to its stream and not yet sent); *entries, the entry blocks it refers
 * to (each block shared with others counted in full); *largest, its largest entry block. */
static void sub_holding(const feed_sub *sub, size_t *own, size_t *entries, size_t *largest)
{
    *own = sub->pending.len + sub->handed_own;
    *entries = *largest = 0;
    if (sub->handed_entry) *entries = *largest = sub->handed_block_len;
    for (const feed_seg *g = sub->segs; g; g = g->next) {
        *own += g->after.len;
        if (g->dump) continue; /* dumps have their own bound (DUMPS_LIVE_MAX, the pace) */
        *entries += g->block->len;
        if (g->block->len > *largest) *largest = g->block->len;
    }
}

/* The event of an entry: its id, its type, its text as data lines. */
static void put_entry(ef_buf *out, uint64_t seq, const char *p, size_t n)
{
    ef_buf_printf(out, "id: %" PRIu64 "\nevent: txn\n", seq);
    put_data(out, p, n);
}

/* The shared block of the batch's entry i (one of SHARE_MIN or more), built once for every
 * subscriber: the one a stream still holds from an earlier round (f->big), else a new one, counted
 * in f->entry_bytes until its last reference goes. NULL when memory runs out. Caller holds
 * round_mu. */
static ef_shared *entry_block(ef_feed *f, batch *b, size_t i)
{
    if (b->blk[i]) return b->blk[i];
    uint64_t seq = b->e[i].seq;
    size_t slot = seq % BIG_CACHE;
    if (f->big[slot].block && f->big[slot].seq == seq) return b->blk[i] = ef_shared_ref(f->big[slot].block);
    ef_buf t;
    ef_buf_init(&t);
    put_entry(&t, seq, b->text.data + b->e[i].off, b->e[i].len);
    ef_shared *sh = ef_shared_take_tracked(&t, NULL, &f->entry_bytes);
    ef_buf_free(&t);
    if (!sh) return NULL;
    ef_shared_unref(f->big[slot].block);
    f->big[slot].block = ef_shared_ref(sh);
    f->big[slot].seq = seq;
    return b->blk[i] = sh;
}

/* Drops the batch's references to its entry blocks, and the feed's to those no stream holds any
 * more: a block is kept for the streams that need it, never for one that may come. Caller holds
 * round_mu. */
static void release_blocks(ef_feed *f, batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        ef_shared_unref(b->blk[i]);
        b->blk[i] = NULL;
    }
    for (size_t i = 0; i < BIG_CACHE; i++) {
        ef_shared *sh = f->big[i].block;
        if (sh && __atomic_load_n(&sh->refs, __ATOMIC_ACQUIRE) == 1) {
            ef_shared_unref(sh);
            f->big[i].block = NULL;
        }
    }
}

/* Forgets every entry block the feed remembers (this node's state was replaced: the same seq may
 * be another entry now). Caller holds round_mu. */
static void forget_blocks(ef_feed *f)
{
    for (size_t i = 0; i < BIG_CACHE; i++) {
        ef_shared_unref(f->big[i].block);
        f->big[i].block = NULL;
    }
}

/* Appends ev to sub's queue and then, when sh is given, a reference to that entry block; ev is
 * cleared. false when the block could not be queued (no memory): the entry waits for a later
 * round. */
static bool queue_to(feed_sub *sub, ef_buf *ev, ef_shared *sh)
{
    pthread_mutex_lock(&sub->mu);
    if (ev->len) ef_buf_append(sub_queue(sub), ev->data, ev->len);
    bool ok = !sh || queue_block(sub, sh, false);
    pthread_mutex_unlock(&sub->mu);
    ef_buf_clear(ev);
    return ok;
}

/* Queues to sub the batch's entries after *pos, in order (large ones as shared blocks), moving
 * *pos; returns whether anything was queued. ev is left with what is still to be appended. */
static bool queue_entries(ef_feed *f, feed_sub *sub, batch *b, ef_buf *ev, uint64_t *pos)
{
    bool queued = false;
    for (size_t i = 0; i < b->n; i++) {
        if (b->e[i].seq <= *pos) continue;
        if (b->e[i].seq != *pos + 1) break; /* never skip: a gap waits for the next read */
        if (b->e[i].len >= SHARE_MIN) {
            ef_shared *sh = entry_block(f, b, i);
            if (!sh) break; /* no memory: a later round retries from here */
            bool had = ev->len > 0; /* the entries before it go into the queue either way */
            bool ok = queue_to(sub, ev, sh);
            queued = queued || had || ok;
            if (!ok) break;
        } else {
            put_entry(ev, b->e[i].seq, b->text.data + b->e[i].off, b->e[i].len);
        }
        *pos = b->e[i].seq;
    }
    return queued;
}

static int sub_fill(void *state, ef_buf *out, ef_shared **block)
{
    feed_sub *sub = state;
    pthread_mutex_lock(&sub->mu);
    if (sub->ending) { /* what is queued follows from a state this node no longer holds */
        pthread_mutex_unlock(&sub->mu);
        return -1;
    }
    bool was_full = sub_queued(sub) >= PENDING_MAX;
    bool had = true;
    /* the stream asks only once it has sent all it was given: none of that is held any more */
    sub->handed_own = sub->handed_block_len = 0;
    sub->handed_entry = sub->handed_dump = false;
    feed_seg *g = NULL;
    if (sub->pending.len) {
        sub->handed_own = sub->pending.len;
        ef_buf_take(out, &sub->pending); /* no copy: the writer may be waiting for mu */
        ef_buf_clear_shrink(&sub->pending, EF_BUF_KEEP);
    } else if ((g = pop_seg(sub))) {
        *block = g->block; /* the reference goes to the stream, which sends it next */
        sub->handed_block_len = g->block->len;
        sub->handed_entry = !g->dump;
        sub->handed_dump = g->dump;
        g->block = NULL;
        ef_buf_take(&sub->pending, &g->after); /* pending is empty: they trade */
    } else {
        had = false;
    }
    pthread_mutex_unlock(&sub->mu);
    if (g) free_seg(g);
    if (was_full) ef_feed_kick(sub->f); /* the feed skipped this subscriber while it was full */
    return had ? 1 : 0;
}

static void sub_done(void *state)
{
    feed_sub *sub = state;
    ef_feed *f = sub->f;
    pthread_mutex_lock(&f->mu);
    bool slow = sub->stream && ef_http_stream_too_slow(sub->stream);
    pthread_mutex_unlock(&f->mu);
    pthread_mutex_lock(&sub->mu);
    bool dump = sub->handed_dump;
    pthread_mutex_unlock(&sub->mu);
    /* Logged before it is marked closed: from then on the feed thread may free it at any moment
     * (a use-after-free fuzz_http found when the log came after the unlock). */
    ef_log(slow ? EF_LOG_WARN : EF_LOG_INFO,
           !slow ? "downstream disconnected"
           : dump ? "downstream disconnected: it did not take its dump at sync-dump-min-rate"
                  : "downstream disconnected: it did not take a large entry at sync-dump-min-rate",
           "peer", sub->peer, "downstream", sub->name[0] ? sub->name : "-", NULL);
    pthread_mutex_lock(&f->mu);
    sub->closed = true;
    sub->stream = NULL;
    pthread_mutex_unlock(&f->mu);
    ef_feed_kick(f); /* let the feed thread reap it (f outlives every subscriber) */
}

/* Marks a round due and wakes the thread, except on a replica's feed with no subscriber: nothing
 * waits for its round (its follower raises the version itself), so the flag waits for the thread's
 * next timed round (EF_FEED_ROUND_MS) instead of costing a context switch per applied entry. A new
 * subscriber kicks after it is counted, so it is never left waiting. Caller holds kick_mu. */
static void kick_locked(ef_feed *f)
{
    f->kicked = true;
    if (!f->s->upstream || __atomic_load_n(&f->nsubs, __ATOMIC_RELAXED) > 0)
        pthread_cond_signal(&f->kick_cv);
}

void ef_feed_kick(ef_feed *f)
{
    if (!f) return;
    pthread_mutex_lock(&f->kick_mu);
    kick_locked(f);
    pthread_mutex_unlock(&f->kick_mu);
}

void ef_feed_kick_written(ef_feed *f)
{
    if (!f) return;
    pthread_mutex_lock(&f->recent_mu);
    bool sent = f->sent_all;
    pthread_mutex_unlock(&f->recent_mu);
    /* A replica's publishes are its follower's applies: nothing queues those on the way. */
    if (!sent || f->s->upstream) ef_feed_kick(f);
}

/* A publish follows a commit of this node's own (the commit listener ran first), an applied
 * entry on a replica, or a load: the first needs no round when the writer sent its entry. */
static void on_publish(ef_bytes ns, void *ctx)
{
    (void)ns;
    ef_feed_kick_written(ctx);
}

static void put_heartbeat(ef_feed *f, ef_buf *out, uint64_t pos, uint64_t head)
{
    ef_sync *s = f->s;
    int64_t now = ef_clock_wall_ns();
    pthread_mutex_lock(&s->mu);
    double lag = ef_sync_lag_locked(s, now);
    pthread_mutex_unlock(&s->mu);
    ef_buf_printf(out,
                  "event: heartbeat\ndata: {\"seq\":%" PRIu64 ",\"head\":%" PRIu64
                  ",\"time\":%" PRId64 ",\"history\":\"%s\",\"lagSeconds\":",
                  pos, head, now, f->history);
    ef_json_put_double(out, lag);
    if (s->node->name) ef_buf_printf(out, ",\"node\":\"%s\"", s->node->name); /* a valid name needs no escaping */
    ef_buf_puts(out, "}\n\n");
}

static void maybe_trim(ef_feed *f)
{
    const ef_sync_config *c = &f->s->cfg;
    if (!c->log_keep_entries && !c->log_max_age_s) return;
    int64_t now = ef_clock_mono_ns();
    if (now - f->last_trim_ns < 1000000000LL) return;
    f->last_trim_ns = now;
    ef_store_err err;
    if (ef_store_trim(f->s->node->store, c->log_keep_entries,
                      (int64_t)c->log_max_age_s * 1000000000LL, &err) != 0)
        ef_log(EF_LOG_WARN, "change-log trim failed", "error", err.message, NULL);
}

static int fingerprint_fn(void *ctx, const ef_store_change *c)
{
    *(uint64_t *)ctx = ef_store_entry_hash(c->entry);
    return 0;
}

/* The fingerprint of this node's entry at seq, or 0 when it cannot be read. */
static uint64_t entry_at(ef_store *store, uint64_t seq)
{
    uint64_t fp = 0;
    ef_store_err err;
    if (seq == 0 || ef_store_changes(store, seq - 1, 1, fingerprint_fn, &fp, &err) != 0) return 0;
    return fp;
}

static void deliver(ef_feed *f, feed_sub *head, batch *b, ef_buf *ev, uint64_t seq,
                    bool beats, bool *behind);

/* A round from the entries the commit listener handed over, without calling the store: only when
 * every subscriber is past its handshake and the ring holds everything each one lacks. Returns
 * false to ask for a full round. beats: heartbeats due go out too (not on the writer's thread:
 * they read the sync state's lock, which is no business of a commit). Caller holds round_mu. */
static bool fast_round(ef_feed *f, batch *b, ef_buf *ev, bool beats, bool *behind)
{
    if (!f->history[0]) return false; /* no full round yet */
    pthread_mutex_lock(&f->mu);
    feed_sub *head = f->subs;
    pthread_mutex_unlock(&f->mu);
    pthread_mutex_lock(&f->recent_mu);
    uint64_t first = f->recent_first, last = f->recent_last;
    bool ok = last != 0;
    uint64_t minpos = UINT64_MAX;
    for (feed_sub *sub = head; ok && sub; sub = sub->next) {
        uint64_t pos = __atomic_load_n(&sub->pos, __ATOMIC_ACQUIRE);
        if (!sub->checked || sub->bootstrap || pos + 1 < first) ok = false;
        else if (pos < last && pos < minpos) minpos = pos;
    }
    b->n = 0;
    ef_buf_clear(&b->text);
    int64_t committed = 0;
    if (ok && minpos != UINT64_MAX) {
        committed = f->recent_mono[last % RECENT_MAX];
        for (uint64_t q = minpos + 1; q <= last && b->n < BATCH_MAX; q++) {
            const ef_buf *e = &f->recent[q % RECENT_MAX];
            if (batch_add(b, &(ef_store_change){.seq = q, .entry = {e->data, e->len}})) break;
        }
        ok = ef_buf_ok(&b->text);
    }
    pthread_mutex_unlock(&f->recent_mu);
    if (!ok) return false;
    *behind = false;
    deliver(f, head, b, ev, last, beats, behind);
    if (committed) ef_sync_observe_stage(f->s, "feed_wake", (double)(ef_clock_mono_ns() - committed) / 1e9);
    return true;
}

/* The commit listener (ef_store_on_commit via ef_sync_committed): runs on the writer's thread
 * under the store's writer lock, right after the entry became durable. It copies the entry into
 * the ring and, unless the feed thread is in a round, queues it to every subscriber itself; the
 * feed thread is kicked for whatever that could not do. */
void ef_feed_committed(ef_feed *f, const ef_store_change *c)
{
    if (!f) return;
    pthread_mutex_lock(&f->recent_mu);
    if (c->entry.n > RECENT_ENTRY_MAX || (f->recent_last && c->seq != f->recent_last + 1)) {
        f->recent_first = f->recent_last = 0; /* a gap or a big entry: the store is read instead */
    }
    if (c->entry.n <= RECENT_ENTRY_MAX) {
        ef_buf *e = &f->recent[c->seq % RECENT_MAX];
        ef_buf_clear(e);
        ef_buf_append(e, c->entry.p, c->entry.n);
        if (!ef_buf_ok(e)) {
            ef_buf_free(e);
            ef_buf_init(e);
            f->recent_first = f->recent_last = 0;
        } else {
            f->recent_mono[c->seq % RECENT_MAX] = ef_clock_mono_ns();
            if (!f->recent_last) f->recent_first = c->seq;
            f->recent_last = c->seq;
            if (f->recent_last - f->recent_first + 1 > RECENT_MAX)
                f->recent_first = f->recent_last - RECENT_MAX + 1;
        }
    }
    pthread_mutex_unlock(&f->recent_mu);
    bool sent = false;
    if (__atomic_load_n(&f->nsubs, __ATOMIC_RELAXED) <= INLINE_SUBS_MAX &&
        pthread_mutex_trylock(&f->round_mu) == 0) {
        bool behind = false;
        sent = fast_round(f, f->b, &f->ev, false, &behind) && !behind;
        pthread_mutex_unlock(&f->round_mu);
    }
    pthread_mutex_lock(&f->recent_mu);
    f->sent_all = sent;
    pthread_mutex_unlock(&f->recent_mu);
    if (sent) return; /* nothing left for the feed thread: the publish that follows kicks no round */
    pthread_mutex_lock(&f->kick_mu);
    f->offered = true;
    kick_locked(f);
    pthread_mutex_unlock(&f->kick_mu);
}

/* Wakes the stream of every subscriber a round queued something to (sub->wake) and clears the
 * marks. Caller holds round_mu; f->mu is taken here (a stream that ended has no stream). */
static void wake_marked(ef_feed *f)
{
    pthread_mutex_lock(&f->mu);
    for (feed_sub *sub = f->subs; sub; sub = sub->next) {
        if (sub->wake && !sub->closed && sub->stream) ef_http_stream_wake(sub->stream);
        sub->wake = false;
    }
    pthread_mutex_unlock(&f->mu);
}

/* Whether sub gets a full dump this round: it needs one from its handshake (since=0, another
 * history, a diverged position), or it is behind the head (seq) by more than the log still holds
 * (first is the log's first entry). */
static bool needs_dump(const feed_sub *sub, uint64_t seq, uint64_t first)
{
    uint64_t pos = __atomic_load_n(&sub->pos, __ATOMIC_ACQUIRE);
    return sub->bootstrap || (pos < seq && pos + 1 < first);
}

/* The last dump built, with a new reference, when a subscriber may start from it: on this
 * history, at most dump_reuse_ns old, followed in the log by every entry since (first is the
 * log's first entry), and at most one batch of them (BATCH_MAX) behind. NULL otherwise. Caller
 * holds round_mu. */
static ef_shared *reusable_dump(ef_feed *f, uint64_t seq, uint64_t first, const char *history, uint64_t *dseq)
{
    if (!f->dump || strcmp(f->dump_history, history) != 0 || f->dump_seq > seq || f->dump_seq + 1 < first ||
        seq - f->dump_seq > BATCH_MAX || ef_clock_mono_ns() - f->dump_ns > dump_reuse_ns(f))
        return NULL;
    *dseq = f->dump_seq;
    __atomic_add_fetch(&f->dumps_reused, 1, __ATOMIC_RELAXED);
    return ef_shared_ref(f->dump);
}

/* Drops the feed's own reference to its last dump once it is too old to give out: a dump of
 * 100,000 flags is 140 MB, not to be kept for a follower that may never come. */
static void drop_old_dump(ef_feed *f)
{
    if (f->dump && ef_clock_mono_ns() - f->dump_ns > dump_reuse_ns(f)) {
        ef_shared_unref(f->dump);
        f->dump = NULL;
    }
}

/* Builds a dump of the store as its SSE event ("event: reset", the dump as one data line), into
 * a block counted in dumps_live. NULL when the dump fails or memory runs out. */
static ef_shared *build_dump(ef_feed *f, ef_buf *ev, uint64_t *dseq)
{
    ef_store_err err;
    /* The dump is written straight into its event (it is one line of JSON) and that buffer
     * becomes the block: for 100,000 flags 140 MB, held once however many followers read it
     * (it was held four times over for one follower once: the dump, its event, the queue, the
     * stream's buffer, then once more for each other follower). */
    ef_buf dump;
    ef_buf_init(&dump);
    ef_buf_puts(&dump, "event: reset\ndata: ");
    size_t at = dump.len;
    *dseq = 0;
    if (ef_store_dump(f->s->node->store, &dump, dseq, &err) != 0) {
        ef_log(EF_LOG_WARN, "feed: dump failed", "error", err.message, NULL);
        ef_buf_free(&dump);
        return NULL;
    }
    if (memchr(dump.data + at, '\n', dump.len - at)) { /* not one line: one field each */
        ef_buf_clear(ev);
        ef_buf_puts(ev, "event: reset\n");
        put_data(ev, dump.data + at, dump.len - at);
        ef_buf_clear(&dump);
        ef_buf_take(&dump, ev); /* trades: ev keeps the other buffer */
    } else {
        ef_buf_puts(&dump, "\n\n");
    }
    ef_shared *sh = ef_shared_take_counted(&dump, &f->dumps_live);
    if (!sh) ef_log(EF_LOG_WARN, "feed: dump failed", "error", "out of memory", NULL);
    ef_buf_free(&dump);
    ef_buf_clear_shrink(ev, EF_BUF_KEEP); /* the event buffer lives as long as the feed */
    return sh;
}

/* Marks the subscribers that need a dump as waiting for one: nothing but heartbeats for them, and
 * the others' entries are not held back (nor the feed spun) on their account. */
static void dump_wait(feed_sub *head, uint64_t seq, uint64_t first)
{
    for (feed_sub *sub = head; sub; sub = sub->next)
        if (needs_dump(sub, seq, first)) sub->dump_wait = true;
}

/* Queues a full dump to every subscriber that needs one (needs_dump): the last one built when it
 * still serves (reusable_dump), else a new one, unless DUMPS_LIVE_MAX dumps are still being
 * sent, in which case they wait for a later round (dump_wait). Caller holds round_mu. */
static void give_dump(ef_feed *f, feed_sub *head, uint64_t seq, uint64_t first, const char *history, ef_buf *ev)
{
    uint64_t dseq = 0;
    ef_shared *sh = reusable_dump(f, seq, first, history, &dseq);
    if (!sh) {
        ef_shared_unref(f->dump); /* it no longer serves: streams sending it keep it alive */
        f->dump = NULL;
        if (__atomic_load_n(&f->dumps_live, __ATOMIC_ACQUIRE) >= DUMPS_LIVE_MAX) {
            dump_wait(head, seq, first); /* a stream will finish one; a timed round tries again */
            return;
        }
        /* A dump of a large store can take seconds to build under load, and a follower drops a
         * link silent for EF_SYNC_HEARTBEAT_DEAD_S: an SSE comment first shows the link alive
         * (else every follower bootstrapping at once times out, reconnects and asks again). */
        bool told = false;
        for (feed_sub *sub = head; sub; sub = sub->next) {
            if (!needs_dump(sub, seq, first)) continue;
            pthread_mutex_lock(&sub->mu);
            ef_buf_puts(sub_queue(sub), ": building a full dump\n\n");
            pthread_mutex_unlock(&sub->mu);
            sub->wake = told = true;
        }
        if (told) wake_marked(f);
        sh = build_dump(f, ev, &dseq);
        if (!sh) { /* logged; they wait for a timed round */
            dump_wait(head, seq, first);
            return;
        }
        f->dump = ef_shared_ref(sh);
        __atomic_add_fetch(&f->dumps_built, 1, __ATOMIC_RELAXED);
        f->dump_seq = dseq;
        f->dump_ns = ef_clock_mono_ns();
        memcpy(f->dump_history, history, sizeof(f->dump_history));
    }
    char sq[24];
    snprintf(sq, sizeof(sq), "%" PRIu64, dseq);
    for (feed_sub *sub = head; sub; sub = sub->next) {
        if (!needs_dump(sub, seq, first)) continue;
        pthread_mutex_lock(&sub->mu);
        bool queued = dump_queued(sub);
        bool ok = !queued && queue_block(sub, sh, true);
        pthread_mutex_unlock(&sub->mu);
        if (!ok) { /* its last dump is still queued (and trimmed past already): its stream takes */
            sub->dump_wait = true; /* that one first, never a copy queued behind it; or no memory */
            continue;
        }
        sub->bootstrap = sub->dump_wait = false;
        __atomic_store_n(&sub->pos, dseq, __ATOMIC_RELEASE);
        sub->wake = true;
        ef_log(EF_LOG_INFO, "sent a full dump downstream (bootstrap or trimmed position)", "peer", sub->peer,
               "seq", sq, NULL);
    }
    ef_shared_unref(sh);
}

/* Whether sub, ahead of this replica on history, is on the branch a dump took this replica back
 * from (rewound_from): this node held those positions, and its upstream has undone them. A
 * subscriber merely ahead of a lagging replica (one that lost its last unsynced batch in a crash)
 * is not: it waits, and its entry at since is compared once this node has one there. Caller holds
 * round_mu. */
static bool rewound_past(const ef_feed *f, const feed_sub *sub, const char *history)
{
    return f->rewound_from && sub->since <= f->rewound_from && strcmp(f->rewound_history, history) == 0;
}

/* One pass over every subscriber; *behind is set when someone still lacks entries. */
static void feed_round(ef_feed *f, batch *b, ef_buf *ev, bool *behind)
{
    ef_store *store = f->s->node->store;
    ef_store_err err;
    uint64_t seq, first;
    *behind = false;
    if (ef_store_seq(store, &seq, &first, &err) != 0) {
        ef_log(EF_LOG_WARN, "feed: cannot read the store's position", "error", err.message, NULL);
        return;
    }
    ef_store_identity id;
    if (ef_store_get_identity(store, &id, &err) != 0) {
        ef_log(EF_LOG_WARN, "feed: cannot read the store's history", "error", err.message, NULL);
        return;
    }
    memcpy(f->history, id.history, sizeof(f->history));
    /* Writes that publish no snapshot (tokens, namespace deletes) still move the version. */
    ef_sync_version_raised(f->s, seq);
    maybe_trim(f);

    pthread_mutex_lock(&f->mu);
    for (feed_sub **pp = &f->subs; *pp;) {
        feed_sub *sub = *pp;
        if (sub->closed) {
            *pp = sub->next;
            __atomic_sub_fetch(&f->nsubs, 1, __ATOMIC_RELAXED);
            free_sub(sub);
        } else {
            pp = &sub->next;
        }
    }
    feed_sub *head = f->subs;
    pthread_mutex_unlock(&f->mu);

    /* The handshake (issue 19, item 5): a subscriber on another history, or ahead of a primary
     * on this one (the primary lost entries it had: restored from a backup), would apply our
     * entries on top of a state they do not follow from; it gets a dump instead. A replica that
     * is behind a subscriber on the same history is only lagging: the subscriber waits. */
    for (feed_sub *sub = head; sub; sub = sub->next) {
        if (sub->checked) continue;
        sub->checked = true;
        if (sub->bootstrap) continue; /* since=0: a dump anyway, nothing to warn about */
        const char *why = NULL;
        if (sub->history[0] && id.history[0] && strcmp(sub->history, id.history) != 0)
            why = "downstream is on another history: sending a full dump";
        else if (sub->since > seq && !f->s->upstream)
            why = "downstream is ahead of this primary on its history: sending a full dump";
        else if (sub->since > seq && rewound_past(f, sub, id.history))
            why = "downstream is ahead of this replica on a branch its upstream undid (restored from a "
                  "backup?): sending a full dump";
        else if (sub->since > seq)
            sub->checked = false; /* a lagging replica: check its entry at since once it is here */
        else if (sub->at && sub->since <= seq && sub->since >= first &&
                 entry_at(store, sub->since) != sub->at)
            why = "downstream holds another entry at its position (diverged): sending a full dump";
        /* One before the first entry held, its entry cannot be compared, though the entries it
         * lacks are all here: a node whose log starts with a dump's last entry (a replica that
         * reloaded after its upstream was restored) would otherwise stream that entry onto a
         * downstream still on the old branch. One that could show its entry gets a dump. */
        else if (sub->at && sub->since + 1 == first && sub->since < seq)
            why = "downstream's position is just before this log's first entry and cannot be checked: sending a full dump";
        if (!why) continue;
        sub->bootstrap = true;
        char sq[24], ss[24];
        snprintf(sq, sizeof(sq), "%" PRIu64, seq);
        snprintf(ss, sizeof(ss), "%" PRIu64, sub->since);
        ef_log(EF_LOG_WARN, why, "peer", sub->peer, "history", id.history, "their_history",
               sub->history[0] ? sub->history : "-", "seq", sq, "their_seq", ss, NULL);
    }

    /* Subscribers whose position the log no longer holds get one shared dump. */
    bool need_dump = false;
    for (feed_sub *sub = head; sub; sub = sub->next)
        if (needs_dump(sub, seq, first)) need_dump = true;
    drop_old_dump(f);
    if (need_dump) give_dump(f, head, seq, first, id.history, ev);

    uint64_t minpos = UINT64_MAX;
    for (feed_sub *sub = head; sub; sub = sub->next) {
        uint64_t pos = __atomic_load_n(&sub->pos, __ATOMIC_ACQUIRE);
        if (pos < seq && pos < minpos && !sub->dump_wait) minpos = pos;
    }
    b->n = 0;
    ef_buf_clear(&b->text);
    if (minpos != UINT64_MAX) {
        int rc = ef_store_changes(store, minpos, BATCH_MAX, batch_add, b, &err);
        if (rc < 0) {
            b->n = 0; /* trimmed meanwhile: the next round sends a dump */
            *behind = true;
            if (err.code != EF_STORE_TRIMMED)
                ef_log(EF_LOG_WARN, "feed: cannot read the change log", "error", err.message, NULL);
        }
    }

    deliver(f, head, b, ev, seq, true, behind);
}

void ef_feed_reset_begin(ef_feed *f)
{
    if (f) pthread_mutex_lock(&f->round_mu);
}

/* Remembers a dump that took this node back on its history (rewound_past) and forgets one on a
 * history it left. Caller holds round_mu. */
static void note_rewind(ef_feed *f, const ef_feed_reset *r)
{
    if (strcmp(r->history, f->rewound_history) != 0) f->rewound_from = 0;
    if (r->seq < r->was_seq && strcmp(r->history, r->was_history) == 0) {
        if (r->was_seq > f->rewound_from) f->rewound_from = r->was_seq;
        snprintf(f->rewound_history, sizeof(f->rewound_history), "%s", r->history);
    }
}

/* Ends the stream of every subscriber checked against the state a dump replaced, and forgets what
 * this feed kept of that state (the commit ring, the last dump). Caller holds round_mu. */
static unsigned end_checked_streams(ef_feed *f)
{
    pthread_mutex_lock(&f->recent_mu);
    f->recent_first = f->recent_last = 0;
    pthread_mutex_unlock(&f->recent_mu);
    ef_shared_unref(f->dump); /* streams sending it keep it alive */
    f->dump = NULL;
    forget_blocks(f);
    unsigned n = 0;
    pthread_mutex_lock(&f->mu);
    for (feed_sub *sub = f->subs; sub; sub = sub->next) {
        /* one not checked yet has been sent nothing but heartbeats: its check is still to come,
         * against the new state */
        if (sub->closed || !sub->stream || !sub->checked) continue;
        pthread_mutex_lock(&sub->mu);
        sub->ending = true;
        pthread_mutex_unlock(&sub->mu);
        ef_http_stream_wake(sub->stream);
        n++;
    }
    pthread_mutex_unlock(&f->mu);
    return n;
}

void ef_feed_reset_end(ef_feed *f, const ef_feed_reset *r)
{
    if (!f) return;
    if (r->replaced) {
        note_rewind(f, r);
        unsigned n = end_checked_streams(f);
        if (n) {
            char sn[16], sq[24], was[24];
            snprintf(sn, sizeof(sn), "%u", n);
            snprintf(sq, sizeof(sq), "%" PRIu64, r->seq);
            snprintf(was, sizeof(was), "%" PRIu64, r->was_seq);
            ef_log(EF_LOG_INFO, "loaded a dump: ended every downstream stream, to check each one against the new state",
                   "streams", sn, "seq", sq, "was_seq", was, "history", r->history[0] ? r->history : "-", NULL);
        }
    }
    pthread_mutex_unlock(&f->round_mu);
    ef_feed_kick(f);
}

static void enforce_budget(ef_feed *f, feed_sub *head);

/* Queues the batch's entries (and heartbeats) to every subscriber and wakes those that got some.
 * On the feed thread (beats), the budget is checked afterwards. */
static void deliver(ef_feed *f, feed_sub *head, batch *b, ef_buf *ev, uint64_t seq,
                    bool beats, bool *behind)
{
    int64_t now = ef_clock_mono_ns();
    for (feed_sub *sub = head; sub; sub = sub->next) {
        uint64_t pos = __atomic_load_n(&sub->pos, __ATOMIC_ACQUIRE);
        pthread_mutex_lock(&sub->mu);
        bool full = sub_queued(sub) >= PENDING_MAX;
        pthread_mutex_unlock(&sub->mu);
        ef_buf_clear(ev);
        bool queued = false;
        if (!full && !sub->dump_wait) /* one waiting for its dump gets heartbeats only */
            queued = queue_entries(f, sub, b, ev, &pos);
        if (beats && (!sub->last_beat_ns || now - sub->last_beat_ns >= EF_SYNC_HEARTBEAT_MS * 1000000LL)) {
            put_heartbeat(f, ev, pos, seq);
            sub->last_beat_ns = now;
        }
        if (ev->len) {
            queue_to(sub, ev, NULL);
            queued = true;
        }
        if (queued) {
            __atomic_store_n(&sub->pos, pos, __ATOMIC_RELEASE);
            sub->wake = true;
        }
        if (pos < seq && !sub->dump_wait) *behind = true;
    }
    release_blocks(f, b);
    wake_marked(f);
    if (beats) enforce_budget(f, head);
}

/* A stream's holding, for ranking the streams the budget ends. */
typedef struct holding {
    feed_sub *sub;
    size_t held; /* its own bytes and the entry blocks it refers to */
} holding;

static int by_held_desc(const void *a, const void *b)
{
    size_t x = ((const holding *)a)->held, y = ((const holding *)b)->held;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Ends sub's stream for the budget and says so. Caller holds round_mu. */
static void evict(ef_feed *f, feed_sub *sub, size_t held, uint64_t budget)
{
    sub->evicted = true;
    pthread_mutex_lock(&f->mu);
    if (!sub->closed && sub->stream) ef_http_stream_abort(sub->stream);
    pthread_mutex_unlock(&f->mu);
    __atomic_add_fetch(&f->evicted, 1, __ATOMIC_RELAXED);
    char h[24], lim[24];
    snprintf(h, sizeof(h), "%zu", held);
    snprintf(lim, sizeof(lim), "%" PRIu64, budget);
    ef_log(EF_LOG_WARN, "downstream ended: the feed holds more than sync-feed-budget for its streams, "
           "and this one held the most (it reconnects and resumes from its position)",
           "peer", sub->peer, "downstream", sub->name[0] ? sub->name : "-", "held_bytes", h,
           "budget", lim, NULL);
}

/* The budget of the bytes queued for downstream streams (ef_sync_config.feed_budget): each
 * stream's own bytes (queued or handed to its stream and not yet sent), plus the entry blocks
 * alive, each counted once however many streams share it. Past the budget, plus the largest entry
 * block alive (an entry larger than the budget is still sent), the stream holding the most (its
 * own bytes and the entry blocks it refers to) is ended, and the next, until the rest fits: a
 * follower reconnects and resumes from its position, so only memory is lost, never an entry.
 * Healthy followers take what is queued as fast as it comes and hold next to nothing; followers
 * that never read hold what they were given, and without this each could hold PENDING_MAX and
 * more. Streams already ended are left out (their memory goes once the server shuts their
 * connection down). Caller holds round_mu; takes each sub->mu, then f->mu to end a stream. */
static void enforce_budget(ef_feed *f, feed_sub *head)
{
    uint64_t budget = __atomic_load_n(&f->s->cfg.feed_budget, __ATOMIC_RELAXED);
    if (!budget) budget = EF_SYNC_FEED_BUDGET_DEFAULT;
    uint64_t own_total = 0, gone_entries = 0;
    size_t largest = 0, n = 0;
    for (feed_sub *sub = head; sub; sub = sub->next) n++;
    /* one pass reads every holding; the streams to end are then taken in order of holding, not by
     * a fresh scan per stream ended (thousands of streams that never read, from anyone when
     * authentication is off, would make that quadratic on the feed thread) */
    holding *rank = n ? malloc(n * sizeof(*rank)) : NULL;
    size_t nrank = 0;
    for (feed_sub *sub = head; sub; sub = sub->next) {
        size_t own, entries, big;
        pthread_mutex_lock(&sub->mu);
        sub_holding(sub, &own, &entries, &big);
        pthread_mutex_unlock(&sub->mu);
        if (sub->evicted) {
            gone_entries += entries;
        } else {
            own_total += own;
            if (rank && own + entries) rank[nrank++] = (holding){sub, own + entries};
        }
        if (big > largest) largest = big;
    }
    uint64_t live = __atomic_load_n(&f->entry_bytes, __ATOMIC_ACQUIRE);
    uint64_t total = own_total + (live > gone_entries ? live - gone_entries : 0);
    __atomic_store_n(&f->held_bytes, total, __ATOMIC_RELAXED);
    if (total > budget + largest && nrank) {
        qsort(rank, nrank, sizeof(*rank), by_held_desc);
        for (size_t i = 0; i < nrank && total > budget + largest; i++) {
            evict(f, rank[i].sub, rank[i].held, budget);
            total = total > rank[i].held ? total - rank[i].held : 0;
        }
    }
    free(rank); /* out of memory: nothing is ended this round; the next one tries again */
}

static void *feed_main(void *arg)
{
    ef_thread_name("ef-feed");
    ef_feed *f = arg;
    bool behind = false;
    for (;;) {
        pthread_mutex_lock(&f->kick_mu);
        if (!behind && !f->kicked && !f->stop) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_nsec += EF_FEED_ROUND_MS * 1000000L;
            if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
            while (!f->kicked && !f->stop &&
                   pthread_cond_timedwait(&f->kick_cv, &f->kick_mu, &until) != ETIMEDOUT) {
            }
        }
        bool stop = f->stop, offered = f->offered;
        f->kicked = false;
        f->offered = false;
        pthread_mutex_unlock(&f->kick_mu);
        if (stop) break;
        /* A commit's entry the writer could not queue goes out at once; the publish that follows
         * kicks a full round (handshakes, dumps, the version). When the writer did queue it, no
         * round is kicked: new subscribers kick their own, and the timed round trims and beats. */
        pthread_mutex_lock(&f->round_mu);
        if (!offered || !fast_round(f, f->b, &f->ev, true, &behind)) feed_round(f, f->b, &f->ev, &behind);
        pthread_mutex_unlock(&f->round_mu);
    }
    return NULL;
}

static void on_stream(ef_http_req *req, void *ctx)
{
    ef_feed *f = ctx;
    const char *q = ef_http_query(req, "since");
    uint64_t since = 0;
    if (q && *q && !ef_parse_u64(q, &since)) {
        ef_http_bad_request(req, "invalid since '%s': want a change-log position (0 or more)", q);
        return;
    }
    const char *hist = ef_http_query(req, "history");
    if (hist && (!*hist || strlen(hist) > EF_STORE_ID_MAX ||
                 strspn(hist, "0123456789abcdef") != strlen(hist))) {
        ef_http_bad_request(req, "invalid history: want 1 to %d lower-case hex digits",
                            EF_STORE_ID_MAX);
        return;
    }
    const char *at = ef_http_query(req, "at");
    uint64_t at_fp = 0;
    if (at) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(at, &end, 16);
        if (errno || *end || !*at || strlen(at) > 16 || at[0] == '-' || at[0] == '+' ||
            at[0] == ' ') {
            ef_http_bad_request(req, "invalid at '%s': want the 16 hex digits of an entry fingerprint",
                                at);
            return;
        }
        at_fp = v;
    }
    const char *name = ef_http_query(req, "node");
    if (name && !ef_node_name_valid(name, strlen(name))) {
        ef_http_bad_request(req, "invalid node: want 1 to %d letters, digits, '.', '_' or '-'",
                            EF_NODE_NAME_MAX);
        return;
    }
    feed_sub *sub = calloc(1, sizeof(*sub));
    if (!sub) {
        ef_http_error(req, 500, 13, "out of memory");
        return;
    }
    if (name) snprintf(sub->name, sizeof(sub->name), "%s", name);
    if (hist) snprintf(sub->history, sizeof(sub->history), "%s", hist);
    sub->at = at_fp;
    sub->f = f;
    sub->since = since;
    sub->pos = since;
    sub->bootstrap = since == 0;
    sub->connected_ns = ef_clock_wall_ns();
    snprintf(sub->peer, sizeof(sub->peer), "%s", ef_http_peer(req));
    ef_uuid_v4(sub->key);
    ef_http_add_header(req, EF_FORWARD_KEY_HEADER, sub->key);
    ef_buf_init(&sub->pending);
    /* bytes at once: the follower's liveness watchdog runs from the answer on, and the feed's
     * first round may be busy building a dump for others */
    ef_buf_puts(&sub->pending, ": connected\n\n");
    pthread_mutex_init(&sub->mu, NULL);
    static const ef_http_stream_ops ops = {.fill = sub_fill, .done = sub_done};
    ef_http_stream *st = ef_http_reply_stream(req, 200, "text/event-stream", &ops, sub);
    if (!st) { /* nothing was queued, so done() never runs */
        free_sub(sub);
        return;
    }
    /* atomic: tests change them on a running node */
    uint64_t rate = __atomic_load_n(&f->s->cfg.dump_min_rate, __ATOMIC_RELAXED);
    unsigned grace = __atomic_load_n(&f->s->cfg.dump_grace_s, __ATOMIC_RELAXED);
    ef_http_stream_pace(st, rate ? rate : EF_SYNC_DUMP_MIN_RATE_DEFAULT, grace ? grace : EF_SYNC_DUMP_GRACE_S_DEFAULT);
    pthread_mutex_lock(&f->mu);
    sub->stream = st;
    sub->next = f->subs;
    f->subs = sub;
    __atomic_add_fetch(&f->nsubs, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&f->mu);
    char sq[24];
    snprintf(sq, sizeof(sq), "%" PRIu64, since);
    ef_log(EF_LOG_INFO, "downstream connected", "peer", sub->peer, "downstream", sub->name[0] ? sub->name : "-",
           "since", sq, NULL);
    ef_feed_kick(f);
    pthread_mutex_lock(&f->s->mu);
    ef_sync_status_changed_locked(f->s);
    pthread_mutex_unlock(&f->s->mu);
}

ef_feed *ef_feed_new(ef_sync *s)
{
    ef_feed *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    f->s = s;
    f->b = calloc(1, sizeof(*f->b)); /* blk[] starts empty */
    if (!f->b) {
        free(f);
        return NULL;
    }
    ef_buf_init(&f->b->text);
    ef_buf_init(&f->ev);
    pthread_mutex_init(&f->mu, NULL);
    pthread_mutex_init(&f->round_mu, NULL);
    pthread_mutex_init(&f->kick_mu, NULL);
    pthread_mutex_init(&f->recent_mu, NULL);
    for (size_t i = 0; i < RECENT_MAX; i++) ef_buf_init(&f->recent[i]);
    ef_cond_init_monotonic(&f->kick_cv);
    return f;
}

int ef_feed_start(ef_feed *f)
{
    if (ef_registry_listen(f->s->node->registry, on_publish, f) != 0) return -1;
    if (pthread_create(&f->thread, NULL, feed_main, f) != 0) {
        ef_registry_unlisten(f->s->node->registry, on_publish, f);
        return -1;
    }
    f->running = true;
    return 0;
}

void ef_feed_stop(ef_feed *f)
{
    if (!f || !f->running) return;
    ef_registry_unlisten(f->s->node->registry, on_publish, f);
    pthread_mutex_lock(&f->kick_mu);
    f->stop = true;
    pthread_cond_signal(&f->kick_cv);
    pthread_mutex_unlock(&f->kick_mu);
    pthread_join(f->thread, NULL);
    f->running = false;
}

void ef_feed_free(ef_feed *f)
{
    if (!f) return;
    ef_feed_stop(f);
    /* the HTTP server is stopped: every done() has run or never will */
    for (feed_sub *sub = f->subs, *next; sub; sub = next) {
        next = sub->next;
        free_sub(sub);
    }
    ef_shared_unref(f->dump);
    forget_blocks(f);
    for (size_t i = 0; i < RECENT_MAX; i++) ef_buf_free(&f->recent[i]);
    ef_buf_free(&f->b->text);
    free(f->b);
    ef_buf_free(&f->ev);
    pthread_mutex_destroy(&f->round_mu);
    pthread_mutex_destroy(&f->recent_mu);
    pthread_cond_destroy(&f->kick_cv);
    pthread_mutex_destroy(&f->kick_mu);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

int ef_feed_register(ef_router *r, ef_feed *f)
{
    return ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/edgeflag/v1/replication/stream",
                                              .fn = on_stream, .ctx = f, .cls = EF_ROUTE_INTERNAL,
                                              .flags = EF_RF_STREAM});
}

void ef_feed_get_dumps(ef_feed *f, ef_feed_dumps *out)
{
    *out = (ef_feed_dumps){0};
    if (!f) return;
    out->built = __atomic_load_n(&f->dumps_built, __ATOMIC_RELAXED);
    out->reused = __atomic_load_n(&f->dumps_reused, __ATOMIC_RELAXED);
    out->live = __atomic_load_n(&f->dumps_live, __ATOMIC_RELAXED);
}

void ef_feed_get_memory(ef_feed *f, ef_feed_memory *out)
{
    *out = (ef_feed_memory){0};
    if (!f) return;
    out->held_bytes = __atomic_load_n(&f->held_bytes, __ATOMIC_RELAXED);
    out->entry_bytes = __atomic_load_n(&f->entry_bytes, __ATOMIC_RELAXED);
    out->evicted = __atomic_load_n(&f->evicted, __ATOMIC_RELAXED);
}

void ef_feed_downstream_json(ef_feed *f, ef_buf *out)
{
    ef_buf_putc(out, '[');
    if (f) {
        pthread_mutex_lock(&f->mu);
        bool first = true;
        for (feed_sub *sub = f->subs; sub; sub = sub->next) {
            if (sub->closed) continue;
            char at[EF_RFC3339_MAX];
            ef_rfc3339_format(sub->connected_ns, at);
            ef_buf_puts(out, first ? "{\"peer\":" : ",{\"peer\":");
            ef_json_put_cstr(out, sub->peer);
            ef_buf_puts(out, ",\"name\":");
            if (sub->name[0])
                ef_json_put_cstr(out, sub->name);
            else
                ef_buf_puts(out, "null");
            ef_buf_printf(out, ",\"since\":%" PRIu64 ",\"position\":%" PRIu64 ",\"connectedAt\":\"%s\"}",
                          sub->since, __atomic_load_n(&sub->pos, __ATOMIC_ACQUIRE), at);
            first = false;
        }
        pthread_mutex_unlock(&f->mu);
    }
    ef_buf_putc(out, ']');
}

/* The address of a peer "host:port" or "[v6]:port": everything before the last ':'. */
static size_t peer_host_len(const char *peer)
{
    const char *colon = strrchr(peer, ':');
    return colon ? (size_t)(colon - peer) : strlen(peer);
}

/* Equal keys, in a time that does not depend on where they differ. */
static bool same_key(const char *a, const char *b)
{
    size_t n = strlen(a);
    if (n != strlen(b)) return false;
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++) d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

bool ef_feed_is_downstream(ef_feed *f, const char *key, const char *peer)
{
    if (!f || !key || !*key || !peer) return false;
    size_t hn = peer_host_len(peer);
    bool found = false;
    pthread_mutex_lock(&f->mu);
    for (feed_sub *sub = f->subs; sub && !found; sub = sub->next)
        found = !sub->closed && same_key(sub->key, key) && peer_host_len(sub->peer) == hn &&
                strncmp(sub->peer, peer, hn) == 0;
    pthread_mutex_unlock(&f->mu);
    return found;
}

unsigned ef_feed_subscribers(ef_feed *f)
{
    if (!f) return 0;
    pthread_mutex_lock(&f->mu);
    unsigned n = 0;
    for (feed_sub *sub = f->subs; sub; sub = sub->next) n += !sub->closed;
    pthread_mutex_unlock(&f->mu);
    return n;
}
