/*
 * audit.h - Flipt's audit events (version 0.2: type, action, metadata.actor, payload, timestamp,
 * status), produced from the change-log entries this node commits and delivered to Flipt's sinks:
 * a log file (one event per line) and a webhook signed as Flipt signs it
 * (x-flipt-webhook-signature: hex HMAC-SHA256 of the body under signing_secret). docs/audit.md is
 * the user's view.
 *
 * Delivery runs on its own thread from a bounded queue: a write only copies its entry into the
 * queue (ef_audit_committed, the store's commit listener), never waits for a sink; when the queue
 * is full the entry is dropped, counted and logged. The webhook is retried with exponential
 * backoff (capped at max_backoff_ms) until it answers 2xx, so a receiver that is down gets every
 * event once it is back, in order; each event carries an idempotency key (history:seq) in the
 * Idempotency-Key header and in metadata.edgeflag.key, so delivery is at least once with a key
 * that makes it exactly once for a receiver that keeps keys. Only the node that commits a write
 * produces its event (a replica forwards writes; it never commits them), so there is one event
 * per write. With a cursor file (the last handled seq, ef_audit_resume), events queued at a stop
 * or crash are sent after the restart, from the change log.
 */
#ifndef EF_AUDIT_AUDIT_H
#define EF_AUDIT_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/bytes.h"
#include "http/metrics.h"
#include "store/store.h"

/* Which events are emitted (Flipt's audit.events): "noun:verb" pairs, nouns constraint,
 * distribution, flag, namespace, rollout, rule, segment, token, variant or *, verbs created,
 * updated, deleted or *. */
typedef struct ef_audit_filter {
    uint32_t bits; /* one per noun x verb */
} ef_audit_filter;

/* Parses pairs separated by commas or white space. Errors as Flipt's checker words them ("invalid
 * event pair: x", "invalid noun: x", "invalid verb: x", "repeated event pair: x", "no event pairs
 * exist"). */
int ef_audit_filter_parse(const char *spec, ef_audit_filter *out, char *err, size_t errlen);
bool ef_audit_filter_check(const ef_audit_filter *f, ef_bytes type, ef_bytes action);

/* The event of one change-log entry, as Flipt's JSON, into out. Returns 1 (written), 0 (the filter
 * leaves it out, or the entry is no write an event describes) or -1 (unreadable entry: err).
 * history names the store's history: the idempotency key is "<history>:<seq>" (written to key,
 * which holds EF_AUDIT_KEY_MAX bytes). */
#define EF_AUDIT_KEY_MAX 96
int ef_audit_event_json(const char *entry, size_t len, const ef_audit_filter *f, const char *history,
                        ef_arena *a, ef_buf *out, char key[EF_AUDIT_KEY_MAX], char *err, size_t errlen);

typedef struct ef_audit_config {
    const char *events;         /* audit.events; NULL: "*:*" */
    const char *log_file;       /* log sink: a file appended to, "-" standard output; NULL: off */
    const char *webhook_url;    /* webhook sink (http or https); NULL: off */
    const char *webhook_secret; /* signing_secret; NULL or "": bodies are not signed */
    unsigned max_backoff_ms;    /* longest wait between webhook attempts (0: 15000) */
    unsigned timeout_ms;        /* one webhook attempt at most (0: 10000) */
    size_t queue_max;           /* entries waiting at most (0: 10000) */
    const char *history;        /* the store's history id (idempotency keys) */
    /* Where the last handled seq is kept, so a restart resends the events of writes committed but
     * not yet delivered (the change log holds them); NULL: events queued at a stop or crash are
     * lost. */
    const char *cursor_path;
} ef_audit_config;

typedef struct ef_audit ef_audit;

/* NULL with a message when the configuration is wrong (filter, log file, URL). metrics may be NULL. */
ef_audit *ef_audit_new(const ef_audit_config *cfg, ef_metrics *metrics, char *err, size_t errlen);
/* Before the commit listener is installed and any write can happen: queues the entries after the
 * cursor (cursor_path) that the store still holds, so the events a stop or a crash left undelivered
 * are sent now; without a cursor of this history, starts at the store's current seq. */
int ef_audit_resume(ef_audit *a, ef_store *store, char *err, size_t errlen);
int ef_audit_start(ef_audit *a);
/* The store's commit listener (ef_store_on_commit): copies the entry into the queue, or drops it
 * when the queue is full. Never blocks on a sink. Always returns 0. */
int ef_audit_committed(void *audit, const ef_store_change *c);
/* Delivers what is queued for up to grace_ms more, then stops the thread (what is left is counted
 * as dropped and logged). */
void ef_audit_stop(ef_audit *a, unsigned grace_ms);
void ef_audit_free(ef_audit *a);

#endif
