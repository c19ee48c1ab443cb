/*
 * entry.h - reading a change-log entry (the JSON documented in docs/storage.md) for the consumers
 * above the store: the history API and audit events. One reading of what a write was: its
 * namespaces, its row changes with before and after, and its "audit" object (who asked, what kind
 * of write), with a fallback for entries that have none (imports, entries older than schema 4).
 *
 * Entries come from disk and from an upstream: every field is checked for its type, anything
 * unexpected is a refusal with a message, never a crash.
 */
#ifndef EF_STORE_ENTRY_H
#define EF_STORE_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/bytes.h"
#include "base/json.h"

typedef struct ef_entry_change {
    ef_bytes table;     /* "flags", "variants", ... */
    ef_bytes type;      /* Flipt's audit noun of that table: "flag", "variant", ... ("" unknown) */
    bool del;           /* op "delete" */
    const ef_json *pk;  /* object */
    const ef_json *row; /* the row after (NULL for a delete) */
    const ef_json *old; /* the row before (NULL for an insert, or an entry older than schema 4) */
} ef_entry_change;

typedef struct ef_entry {
    uint64_t seq;
    int64_t time_ns;
    const ef_json *namespaces; /* array of {"key","version"} */
    ef_entry_change *changes;
    size_t nchanges;
    const ef_json *actor; /* the "audit" object's actor, or NULL */
    ef_bytes via;         /* the forwarding replicas ("" none) */
    ef_bytes type, action; /* from "audit", else derived from the first change ("" unknown) */
    ef_bytes ns, flag;     /* from "audit" ("" when the request named none) */
    size_t principal;      /* index of the change the write is about (the first of its type) */
} ef_entry;

/* Parses text (which must outlive *out: strings point into it) with nodes in a. Returns 0, or -1
 * with a message in err. */
int ef_entry_parse(const char *text, size_t len, ef_arena *a, ef_entry *out, char *err, size_t errlen);

/* Whether the entry wrote namespace ns, and its version there (0 when it did not). */
bool ef_entry_in_namespace(const ef_entry *e, ef_bytes ns, uint64_t *version);
/* Whether the entry is about flag `flag` of namespace ns: a flag row with that key, a row whose
 * flag_key is it (variants, rules, rollouts), or a request that named it in its path. */
bool ef_entry_about_flag(const ef_entry *e, ef_bytes ns, ef_bytes flag);

/* A string member of an object ("" when absent or not a string). */
ef_bytes ef_entry_str(const ef_json *obj, const char *name);
/* Writes a row object as JSON, leaving out what must never leave the store (hashed_token). */
void ef_entry_put_row(ef_buf *out, const ef_json *row);

#endif
