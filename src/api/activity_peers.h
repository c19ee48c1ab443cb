/*
 * activity_peers.h - evaluation activity of the other nodes this node can see, so a flag's chart
 * can show each node and their sum (docs/ui.md). Replicas send it upward inside their cluster
 * report (POST /edgeflag/v1/cluster/report, member "activity"): their own per-flag counts per
 * minute and those their own replicas sent them, so a primary holds its whole tree's.
 *
 * Wire form (the report's "activity" member):
 *   [{"node":"lhr","ns":"default","flag":"color","counts":[[minute,count],..]},..]
 * minute: Unix time / 60; count: that node's evaluations of the flag in that minute (all outcomes),
 * an absolute value, so a report repeated or lost changes nothing lasting. Minutes with no
 * evaluations are left out.
 *
 * It must never let a peer cost more than fixed bounds: a report has at most EF_APW_MAX_ROWS rows
 * of at most EF_ACT_MINUTES minutes; the store keeps at most EF_APW_MAX_SERIES (node, namespace,
 * flag) series and drops rows past it; names are checked like --name, keys like a key's length.
 * A malformed report is refused whole (nothing stored).
 */
#ifndef EF_API_ACTIVITY_PEERS_H
#define EF_API_ACTIVITY_PEERS_H

#include <stdbool.h>
#include <stdint.h>

#include "api/eval_activity.h"
#include "api/node.h"
#include "base/arena.h"
#include "base/buf.h"
#include "base/json.h"

#define EF_APW_MAX_ROWS 1024    /* rows in one report */
#define EF_APW_MAX_SERIES 2048  /* (node, namespace, flag) series a node keeps */
#define EF_APW_KEY_MAX 181      /* namespace + flag bytes (as the activity table's keys) */
#define EF_APW_MAX_BYTES (256 * 1024) /* of the array a node writes (the receiver's body limit is 1 MiB) */

typedef struct ef_apw_row {
    char node[EF_NODE_NAME_MAX + 1];
    ef_bytes ns, flag; /* in the report's arena */
    unsigned n;
    uint32_t minute[EF_ACT_MINUTES];
    uint32_t count[EF_ACT_MINUTES];
} ef_apw_row;

typedef struct ef_apw_report {
    ef_arena arena; /* owns rows and their keys */
    unsigned nrows;
    ef_apw_row *rows;
} ef_apw_report;

/* Decodes the "activity" member of the JSON document p[0..n) (absent: no rows). Returns 0, or -1
 * with a message naming the fault. Free with ef_apw_report_free either way. */
int ef_apw_report_parse(ef_apw_report *r, const char *p, size_t n, char *err, size_t errlen);
/* The same from the member itself (NULL: absent), in a tree the caller parsed and keeps. */
int ef_apw_report_from_json(ef_apw_report *r, const ef_json *act, char *err, size_t errlen);
void ef_apw_report_free(ef_apw_report *r);

typedef struct ef_activity_peers ef_activity_peers;

ef_activity_peers *ef_activity_peers_new(void);
void ef_activity_peers_free(ef_activity_peers *p);

/* Stores the rows of r whose node is allowed(name, ctx) and is not self, and whose minutes fall in
 * the EF_ACT_MINUTES minutes ending with now_minute + 1 (a little clock skew); others are skipped.
 * Returns the number of rows dropped because the store was full. */
unsigned ef_activity_peers_apply(ef_activity_peers *p, const ef_apw_report *r, const char *self,
                                 bool (*allowed)(const char *node, void *ctx), void *ctx, uint32_t now_minute);

/* Writes the wire array: this node's own per-flag counts (from a, as node self) and the stored
 * series of other nodes, for the last `minutes` minutes ending with now_minute, at most
 * EF_APW_MAX_ROWS rows and EF_APW_MAX_BYTES bytes (rows past them are left out, own ones first). */
void ef_activity_peers_write(ef_activity_peers *p, ef_activity *a, const char *self, unsigned minutes,
                             uint32_t now_minute, ef_buf *out);

/* Calls fn for each other node's counts of (ns, flag) over the last `minutes` minutes ending with
 * now_minute (oldest first; zero where the node sent nothing), nodes in name order. */
void ef_activity_peers_flag(ef_activity_peers *p, ef_bytes ns, ef_bytes flag, unsigned minutes, uint32_t now_minute,
                            void (*fn)(const char *node, const uint64_t *counts, void *ctx), void *ctx);

/* The "activity" member of cluster reports, in the shape of sync's ef_report_member: the
 * composition root (cli/cmd_serve.c) hands these to the reporter with the node as ctx, so sync
 * never calls up into api. write appends this node's and its subtree's counts (the whole window
 * when full, else the last two minutes); check decodes a received member whole (NULL: absent)
 * into *checked, or returns -1 with a message; apply keeps its rows for the nodes in_view(name,
 * view) accepts other than this one; discard frees what check made (NULL is fine). */
void ef_activity_report_write(void *ctx, bool full, ef_buf *body);
int ef_activity_report_check(void *ctx, const ef_json *member, void **checked, char *err, size_t errlen);
void ef_activity_report_apply(void *ctx, void *checked, bool (*in_view)(const char *node, void *view), void *view);
void ef_activity_report_discard(void *checked);

#endif
