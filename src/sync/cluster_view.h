/*
 * cluster_view.h - the cluster as one node sees it: the nodes of the replication tree (name, role,
 * version, lag, connection state, the writes each one applied and how long after the primary's
 * commit) and the recent writes. Replicas send theirs to their upstream
 * (POST /edgeflag/v1/cluster/report) and get the upstream's back, so every node can draw the whole
 * tree and each write's propagation (docs/replication.md, "The cluster picture").
 *
 * A view is a fixed-size value (no pointers, no allocation inside): decoding bytes from a peer can
 * only fill it up to its bounds, and anything past them is an error, never a truncation that
 * looks complete. It must never trust a peer beyond the shape: names are checked like --name,
 * numbers must be finite and in range.
 */
#ifndef EF_SYNC_CLUSTER_VIEW_H
#define EF_SYNC_CLUSTER_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/node.h"
#include "base/arena.h"
#include "base/buf.h"
#include "base/json.h"

#define EF_CV_MAX_NODES 64   /* nodes in one view (a report or an answer) */
#define EF_CV_MAX_APPLIED 32 /* per node: the last writes it applied */
#define EF_CV_MAX_WRITES 16  /* the primary's last writes */
#define EF_CV_ROLE_MAX 15
#define EF_CV_TEXT_MAX 47    /* a write's namespace and what it changed; a version string */

typedef enum ef_cv_state {
    EF_CV_LIVE = 0,     /* following its upstream, within --max-staleness */
    EF_CV_RECONNECTING, /* running, but its stream from the upstream is down */
    EF_CV_STALE,        /* connected, lag past its --max-staleness */
    EF_CV_OFFLINE,      /* not heard from within the heartbeat window */
} ef_cv_state;

typedef struct ef_cv_apply {
    uint64_t seq;
    double ms; /* its apply time minus the primary's commit time (wall clocks: includes skew) */
} ef_cv_apply;

typedef struct ef_cv_node {
    char name[EF_NODE_NAME_MAX + 1];
    char parent[EF_NODE_NAME_MAX + 1]; /* "" for the root (the primary) */
    char role[EF_CV_ROLE_MAX + 1];
    char build[EF_CV_TEXT_MAX + 1];    /* its edgeflag version */
    uint64_t version;                  /* change-log position its state reflects */
    double lag_ms;                     /* its own replication lag */
    ef_cv_state state;
    double age_ms;                     /* how old this information was when the view was made */
    unsigned napplied;
    ef_cv_apply applied[EF_CV_MAX_APPLIED]; /* oldest first */
} ef_cv_node;

typedef struct ef_cv_write {
    uint64_t seq;
    int64_t committed_ns;              /* the primary's wall clock at COMMIT */
    char ns[EF_CV_TEXT_MAX + 1];       /* the namespace it wrote */
    char what[EF_CV_TEXT_MAX + 1];     /* "flags/color": the first row it changed */
} ef_cv_write;

typedef struct ef_cluster_view {
    unsigned nnodes;
    ef_cv_node nodes[EF_CV_MAX_NODES];
    unsigned nwrites;
    ef_cv_write writes[EF_CV_MAX_WRITES]; /* oldest first */
} ef_cluster_view;

const char *ef_cv_state_name(ef_cv_state s);

/* The wire form (report bodies and answers):
 *   {"nodes":[{"name","parent","role","build","version","lagMs","state","ageMs",
 *              "applied":[[seq,ms],..]},..],
 *    "writes":[{"seq","committedAt"(unix ns),"namespace","what"},..]}
 * Unknown members are ignored (a newer peer may send more). */
void ef_cv_write_json(const ef_cluster_view *v, ef_buf *out);
/* Decodes p[0..n) into *v. Returns 0, or -1 with a message naming the member at fault (and *v
 * must not be used). */
int ef_cv_parse(const char *p, size_t n, ef_cluster_view *v, char *err, size_t errlen);
/* The two halves of ef_cv_parse, for a caller that reads other members of the same document (a
 * report's "activity"): the JSON tree in a (bounded as ef_cv_parse bounds it; NULL with a message
 * in err), and the view from that tree. */
const ef_json *ef_cv_json_parse(const char *p, size_t n, ef_arena *a, char *err, size_t errlen);
int ef_cv_from_json(const ef_json *root, ef_cluster_view *v, char *err, size_t errlen);

/* The node named name, or NULL. */
ef_cv_node *ef_cv_find(ef_cluster_view *v, const char *name);

#endif
