/*
 * tree.c - the cluster picture a node holds (docs/replication.md, "The cluster picture"): the
 * reports of the replicas that follow it (each with its own subtree), the writes it applied and
 * when, the primary's recent writes, and on a replica the whole view its upstream answered with.
 * From these it builds the view it reports upstream (itself and below), the view it answers with
 * (everything it can see) and the public document (nodes, states, lag, per-write timelines).
 *
 * A child is offline when its last report is older than EF_SYNC_HEARTBEAT_DEAD_S (it reports every
 * second), and so is everything it reported below it. Reports are bounded (ef_cv_parse) and at most
 * EF_CV_MAX_NODES children are kept; a child silent for TREE_FORGET_S is forgotten.
 *
 * Locks: t->mu guards everything here and is held only to copy; it is never held while taking
 * ef_sync.mu (the status is read before it is taken).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/json.h"
#include "sync/sync_int.h"

#define TREE_FORGET_S 600

typedef struct child {
    ef_cluster_view *view; /* owned; NULL: free slot */
    int64_t received_mono;
} child;

struct ef_cluster_tree {
    ef_sync *s;
    pthread_mutex_t mu;
    child children[EF_CV_MAX_NODES];
    ef_cv_apply applied[EF_CV_MAX_APPLIED]; /* ring: this node's own applies */
    unsigned napplied, applied_next;
    ef_cv_write writes[EF_CV_MAX_WRITES]; /* ring: a primary's own commits */
    unsigned nwrites, writes_next;
    ef_cluster_view *upstream; /* a replica: its upstream's answer (owned; NULL: none yet) */
    int64_t upstream_mono;
};

ef_cluster_tree *ef_tree_new(ef_sync *s)
{
    ef_cluster_tree *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->s = s;
    pthread_mutex_init(&t->mu, NULL);
    return t;
}

void ef_tree_free(ef_cluster_tree *t)
{
    if (!t) return;
    for (unsigned i = 0; i < EF_CV_MAX_NODES; i++) free(t->children[i].view);
    free(t->upstream);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static void push_apply(ef_cluster_tree *t, uint64_t seq, double ms)
{
    t->applied[t->applied_next] = (ef_cv_apply){seq, ms};
    t->applied_next = (t->applied_next + 1) % EF_CV_MAX_APPLIED;
    if (t->napplied < EF_CV_MAX_APPLIED) t->napplied++;
}

/* A short unescaped string after key within p[0..n), into out[cap] ("" when absent). Keys and
 * namespace keys are [-_,A-Za-z0-9]+ in Flipt, so a scan is exact for them. */
static void scan_text(const char *p, size_t n, const char *key, char *out, size_t cap)
{
    out[0] = '\0';
    const char *k = memmem(p, n, key, strlen(key));
    if (!k) return;
    k += strlen(key);
    size_t i = 0;
    while (k + i < p + n && k[i] != '"' && k[i] != '\\' && i + 1 < cap && (unsigned char)k[i] >= 0x20) {
        out[i] = k[i];
        i++;
    }
    out[i] = '\0';
}

void ef_tree_committed(ef_cluster_tree *t, const ef_store_change *c)
{
    ef_cv_write w = {.seq = c->seq, .committed_ns = c->time_ns};
    size_t n = c->entry.n < 4096 ? c->entry.n : 4096; /* the head names what changed */
    scan_text(c->entry.p, n, "\"namespaces\":[{\"key\":\"", w.ns, sizeof(w.ns));
    char table[24], key[EF_CV_TEXT_MAX + 1];
    scan_text(c->entry.p, n, "\"table\":\"", table, sizeof(table));
    const char *pk = memmem(c->entry.p, n, "\"pk\":{", 6);
    key[0] = '\0';
    if (pk) {
        size_t rest = n - (size_t)(pk - c->entry.p);
        const char *close = memchr(pk, '}', rest);
        size_t span = close ? (size_t)(close - pk) : rest;
        scan_text(pk, span, "\"key\":\"", key, sizeof(key));
        if (!key[0]) scan_text(pk, span, "\"id\":\"", key, sizeof(key));
    }
    snprintf(w.what, sizeof(w.what), "%s%s%.*s", table, key[0] ? "/" : "",
             (int)(sizeof(w.what) - 1), key);
    pthread_mutex_lock(&t->mu);
    t->writes[t->writes_next] = w;
    t->writes_next = (t->writes_next + 1) % EF_CV_MAX_WRITES;
    if (t->nwrites < EF_CV_MAX_WRITES) t->nwrites++;
    push_apply(t, c->seq, 0); /* the primary holds it at its commit */
    pthread_mutex_unlock(&t->mu);
}

void ef_tree_applied(ef_cluster_tree *t, uint64_t seq, int64_t committed_ns, int64_t applied_ns)
{
    double ms = committed_ns > 0 ? (double)(applied_ns - committed_ns) / 1e6 : -1;
    if (ms < 0) return; /* an entry without its commit time (older primary): nothing to draw */
    pthread_mutex_lock(&t->mu);
    push_apply(t, seq, ms);
    pthread_mutex_unlock(&t->mu);
}

/* The status fields the self node needs, read under ef_sync.mu before t->mu is taken. */
typedef struct self_info {
    bool connected;
    double lag_s;
    char parent[EF_NODE_NAME_MAX + 1];
} self_info;

static void read_self(ef_sync *s, self_info *si)
{
    pthread_mutex_lock(&s->mu);
    si->connected = s->replica ? s->st.connected : true;
    si->lag_s = ef_sync_lag_locked(s, ef_clock_wall_ns());
    memcpy(si->parent, s->st.upstream_name, sizeof(si->parent));
    pthread_mutex_unlock(&s->mu);
}

static bool add_node(ef_cluster_view *v, const ef_cv_node *n)
{
    if (v->nnodes == EF_CV_MAX_NODES || ef_cv_find(v, n->name)) return false;
    v->nodes[v->nnodes++] = *n;
    return true;
}

/* Adds the nodes of a view received age_ms ago: older by that much, and offline when the view is
 * older than the heartbeat window (its sender went silent). Caller holds t->mu. */
static void add_aged(ef_cluster_view *v, const ef_cluster_view *from, double age_ms)
{
    bool dead = age_ms > EF_SYNC_HEARTBEAT_DEAD_S * 1000.0;
    for (unsigned i = 0; i < from->nnodes; i++) {
        ef_cv_node n = from->nodes[i];
        n.age_ms += age_ms;
        if (dead) n.state = EF_CV_OFFLINE;
        add_node(v, &n);
    }
}

/* Caller holds t->mu. Self, then each child's subtree with its age and offline state applied. */
static void build_below(ef_cluster_tree *t, const self_info *si, ef_cluster_view *v, int64_t now_mono)
{
    ef_sync *s = t->s;
    ef_cv_node self = {0};
    snprintf(self.name, sizeof(self.name), "%s", s->node->name ? s->node->name : "edgeflag");
    snprintf(self.parent, sizeof(self.parent), "%s", s->replica ? si->parent : "");
    snprintf(self.role, sizeof(self.role), "%s", s->node->role ? s->node->role : "primary");
    snprintf(self.build, sizeof(self.build), "%s", EF_VERSION);
    self.version = ef_node_version(s->node);
    self.lag_ms = si->lag_s * 1000;
    self.state = !si->connected ? EF_CV_RECONNECTING
                 : s->cfg.max_staleness_s && si->lag_s > s->cfg.max_staleness_s ? EF_CV_STALE
                                                                                : EF_CV_LIVE;
    for (unsigned i = 0; i < t->napplied; i++) {
        unsigned k = (t->applied_next + EF_CV_MAX_APPLIED - t->napplied + i) % EF_CV_MAX_APPLIED;
        self.applied[self.napplied++] = t->applied[k];
    }
    add_node(v, &self);
    for (unsigned c = 0; c < EF_CV_MAX_NODES; c++) {
        const child *ch = &t->children[c];
        if (ch->view) add_aged(v, ch->view, (double)(now_mono - ch->received_mono) / 1e6);
    }
}

static void put_writes(ef_cluster_tree *t, ef_cluster_view *v)
{
    v->nwrites = 0;
    for (unsigned i = 0; i < t->nwrites; i++)
        v->writes[v->nwrites++] = t->writes[(t->writes_next + EF_CV_MAX_WRITES - t->nwrites + i) % EF_CV_MAX_WRITES];
}

void ef_tree_build(ef_cluster_tree *t, ef_cluster_view *v, bool everything)
{
    self_info si;
    read_self(t->s, &si);
    memset(v, 0, sizeof(*v));
    int64_t now = ef_clock_mono_ns();
    pthread_mutex_lock(&t->mu);
    build_below(t, &si, v, now);
    if (!everything) {
        pthread_mutex_unlock(&t->mu);
        return;
    }
    if (t->s->replica && t->upstream) {
        /* above and beside this node: the upstream's answer, aged; where this node knows better
         * (itself and below) its own entries were added first and win */
        add_aged(v, t->upstream, (double)(now - t->upstream_mono) / 1e6);
        v->nwrites = t->upstream->nwrites;
        memcpy(v->writes, t->upstream->writes, sizeof(v->writes[0]) * v->nwrites);
    } else {
        put_writes(t, v);
    }
    pthread_mutex_unlock(&t->mu);
}

/* Whether name appears in v. */
static bool names(const ef_cluster_view *v, const char *name)
{
    for (unsigned i = 0; i < v->nnodes; i++)
        if (!strcmp(v->nodes[i].name, name)) return true;
    return false;
}

int ef_tree_report(ef_cluster_tree *t, ef_cluster_view *in, char *err, size_t errlen)
{
    if (in->nnodes == 0) {
        snprintf(err, errlen, "invalid cluster report: no nodes (the first is the reporting node)");
        return -1;
    }
    const char *self = t->s->node->name ? t->s->node->name : "edgeflag";
    if (names(in, self)) {
        snprintf(err, errlen, "invalid cluster report: it names this node (%s): two nodes share a name, or "
                 "the replication tree has a loop", self);
        return -1;
    }
    /* the reporter hangs below this node whatever it believes its upstream is called */
    snprintf(in->nodes[0].parent, sizeof(in->nodes[0].parent), "%s", self);
    in->nwrites = 0; /* writes come from the primary, downwards only */
    ef_cluster_view *copy = malloc(sizeof(*copy));
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *copy = *in;
    int64_t now = ef_clock_mono_ns();
    pthread_mutex_lock(&t->mu);
    child *slot = NULL, *free_slot = NULL, *oldest = NULL;
    for (unsigned c = 0; c < EF_CV_MAX_NODES; c++) {
        child *ch = &t->children[c];
        if (!ch->view) {
            if (!free_slot) free_slot = ch;
            continue;
        }
        if (now - ch->received_mono > (int64_t)TREE_FORGET_S * 1000000000LL) {
            free(ch->view); /* silent for long: forgotten */
            ch->view = NULL;
            if (!free_slot) free_slot = ch;
            continue;
        }
        if (!strcmp(ch->view->nodes[0].name, in->nodes[0].name)) slot = ch;
        if (!oldest || ch->received_mono < oldest->received_mono) oldest = ch;
    }
    if (!slot) slot = free_slot;
    if (!slot && oldest && now - oldest->received_mono > EF_SYNC_HEARTBEAT_DEAD_S * 1000000000LL)
        slot = oldest; /* full: an offline child makes room for a live one */
    if (!slot) {
        pthread_mutex_unlock(&t->mu);
        free(copy);
        snprintf(err, errlen, "too many replicas report to this node (at most %d)", EF_CV_MAX_NODES);
        return -2;
    }
    free(slot->view);
    slot->view = copy;
    slot->received_mono = now;
    pthread_mutex_unlock(&t->mu);
    return 0;
}

void ef_tree_upstream_view(ef_cluster_tree *t, const ef_cluster_view *v)
{
    ef_cluster_view *copy = malloc(sizeof(*copy));
    if (!copy) return;
    *copy = *v;
    pthread_mutex_lock(&t->mu);
    free(t->upstream);
    t->upstream = copy;
    t->upstream_mono = ef_clock_mono_ns();
    pthread_mutex_unlock(&t->mu);
}

/* The applied time of seq on n, or a negative number. */
static double applied_ms(const ef_cv_node *n, uint64_t seq)
{
    for (unsigned j = 0; j < n->napplied; j++)
        if (n->applied[j].seq == seq) return n->applied[j].ms;
    return -1;
}

void ef_tree_put_json(ef_cluster_tree *t, ef_buf *out)
{
    ef_cluster_view *v = malloc(sizeof(*v));
    if (!v) {
        ef_buf_puts(out, "\"nodes\":[],\"writes\":[]");
        return;
    }
    ef_tree_build(t, v, true);
    uint64_t head = 0;
    for (unsigned i = 0; i < v->nnodes; i++)
        if (!v->nodes[i].parent[0] && v->nodes[i].version > head) head = v->nodes[i].version;
    for (unsigned i = 0; i < v->nnodes; i++)
        if (v->nodes[i].version > head) head = v->nodes[i].version;
    ef_buf_puts(out, "\"nodes\":[");
    for (unsigned i = 0; i < v->nnodes; i++) {
        const ef_cv_node *n = &v->nodes[i];
        ef_buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
        ef_json_put_cstr(out, n->name);
        ef_buf_puts(out, ",\"parent\":");
        if (n->parent[0])
            ef_json_put_cstr(out, n->parent);
        else
            ef_buf_puts(out, "null");
        ef_buf_puts(out, ",\"role\":");
        ef_json_put_cstr(out, n->role);
        ef_buf_puts(out, ",\"build\":");
        ef_json_put_cstr(out, n->build);
        ef_buf_printf(out, ",\"version\":%" PRIu64 ",\"lagVersions\":%" PRIu64 ",\"lagMs\":", n->version,
                      head > n->version ? head - n->version : 0);
        ef_json_put_double(out, n->lag_ms);
        ef_buf_printf(out, ",\"state\":\"%s\",\"ageMs\":", ef_cv_state_name(n->state));
        ef_json_put_double(out, n->age_ms);
        ef_buf_printf(out, ",\"self\":%s}", i == 0 ? "true" : "false");
    }
    ef_buf_puts(out, "],\"writes\":[");
    for (unsigned w = v->nwrites; w-- > 0;) { /* newest first */
        const ef_cv_write *wr = &v->writes[w];
        char at[EF_RFC3339_MAX];
        ef_rfc3339_format(wr->committed_ns, at);
        ef_buf_printf(out, "%s{\"seq\":%" PRIu64 ",\"committedAt\":\"%s\",\"namespace\":",
                      w + 1 == v->nwrites ? "" : ",", wr->seq, at);
        ef_json_put_cstr(out, wr->ns);
        ef_buf_puts(out, ",\"what\":");
        ef_json_put_cstr(out, wr->what);
        ef_buf_puts(out, ",\"applied\":[");
        bool first = true;
        for (unsigned i = 0; i < v->nnodes; i++) {
            double ms = applied_ms(&v->nodes[i], wr->seq);
            if (ms < 0) continue;
            ef_buf_puts(out, first ? "{\"node\":" : ",{\"node\":");
            ef_json_put_cstr(out, v->nodes[i].name);
            ef_buf_puts(out, ",\"ms\":");
            ef_json_put_double(out, ms);
            ef_buf_putc(out, '}');
            first = false;
        }
        ef_buf_puts(out, "]}");
    }
    ef_buf_putc(out, ']');
    free(v);
}
