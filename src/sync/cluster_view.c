/*
 * cluster_view.c - the wire form of a cluster view (see cluster_view.h): written for a report or an
 * answer, read from a peer. Reading is bounded by the view's fixed arrays and checks every member;
 * it never allocates outside its arena and never writes past a field.
 */
#include "sync/cluster_view.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/arena.h"
#include "base/json.h"

static const char *const state_names[] = {"live", "reconnecting", "stale", "offline"};

const char *ef_cv_state_name(ef_cv_state s)
{
    return (unsigned)s < 4 ? state_names[s] : "offline";
}

ef_cv_node *ef_cv_find(ef_cluster_view *v, const char *name)
{
    for (unsigned i = 0; i < v->nnodes; i++)
        if (!strcmp(v->nodes[i].name, name)) return &v->nodes[i];
    return NULL;
}

void ef_cv_write_json(const ef_cluster_view *v, ef_buf *out)
{
    ef_buf_puts(out, "{\"nodes\":[");
    for (unsigned i = 0; i < v->nnodes; i++) {
        const ef_cv_node *n = &v->nodes[i];
        ef_buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
        ef_json_put_cstr(out, n->name);
        ef_buf_puts(out, ",\"parent\":");
        ef_json_put_cstr(out, n->parent);
        ef_buf_puts(out, ",\"role\":");
        ef_json_put_cstr(out, n->role);
        ef_buf_puts(out, ",\"build\":");
        ef_json_put_cstr(out, n->build);
        ef_buf_printf(out, ",\"version\":%" PRIu64 ",\"lagMs\":", n->version);
        ef_json_put_double(out, n->lag_ms);
        ef_buf_printf(out, ",\"state\":\"%s\",\"ageMs\":", ef_cv_state_name(n->state));
        ef_json_put_double(out, n->age_ms);
        ef_buf_puts(out, ",\"applied\":[");
        for (unsigned j = 0; j < n->napplied; j++) {
            ef_buf_printf(out, "%s[%" PRIu64 ",", j ? "," : "", n->applied[j].seq);
            ef_json_put_double(out, n->applied[j].ms);
            ef_buf_putc(out, ']');
        }
        ef_buf_puts(out, "]}");
    }
    ef_buf_puts(out, "],\"writes\":[");
    for (unsigned i = 0; i < v->nwrites; i++) {
        const ef_cv_write *w = &v->writes[i];
        ef_buf_printf(out, "%s{\"seq\":%" PRIu64 ",\"committedAt\":%" PRId64 ",\"namespace\":",
                      i ? "," : "", w->seq, w->committed_ns);
        ef_json_put_cstr(out, w->ns);
        ef_buf_puts(out, ",\"what\":");
        ef_json_put_cstr(out, w->what);
        ef_buf_putc(out, '}');
    }
    ef_buf_puts(out, "]}");
}

/* ---- reading ---- */

typedef struct rd {
    char *err;
    size_t errlen;
} rd;

static int bad(rd *r, const char *what, unsigned i)
{
    snprintf(r->err, r->errlen, "invalid cluster view: %s (item %u)", what, i);
    return -1;
}

/* A string member into out[cap]: absent is "", anything but a string that fits is an error.
 * printable: bytes 0x20..0x7e only (it is shown to people and put in logs). */
static bool get_text(const ef_json *obj, const char *name, char *out, size_t cap)
{
    const ef_json *v = ef_json_get(obj, name);
    out[0] = '\0';
    if (!v) return true;
    if (v->type != EF_JSON_STRING || v->str.n >= cap) return false;
    for (size_t i = 0; i < v->str.n; i++)
        if ((unsigned char)v->str.p[i] < 0x20 || (unsigned char)v->str.p[i] > 0x7e) return false;
    memcpy(out, v->str.p, v->str.n);
    out[v->str.n] = '\0';
    return true;
}

static bool get_ms(const ef_json *obj, const char *name, double *out)
{
    const ef_json *v = ef_json_get(obj, name);
    *out = 0;
    if (!v) return true;
    if (v->type != EF_JSON_NUMBER || !isfinite(v->num) || v->num < -1e12 || v->num > 1e12) return false;
    *out = v->num;
    return true;
}

static int parse_node(rd *r, const ef_json *o, ef_cv_node *n, unsigned i)
{
    memset(n, 0, sizeof(*n));
    if (o->type != EF_JSON_OBJECT) return bad(r, "a node is not an object", i);
    if (!get_text(o, "name", n->name, sizeof(n->name)) || !ef_node_name_valid(n->name, strlen(n->name)))
        return bad(r, "node name: want 1 to 63 letters, digits, '.', '_' or '-'", i);
    if (!get_text(o, "parent", n->parent, sizeof(n->parent)) ||
        (n->parent[0] && !ef_node_name_valid(n->parent, strlen(n->parent))))
        return bad(r, "node parent: want a node name or \"\"", i);
    if (!get_text(o, "role", n->role, sizeof(n->role))) return bad(r, "node role: want a short string", i);
    if (!get_text(o, "build", n->build, sizeof(n->build))) return bad(r, "node build: want a short string", i);
    const ef_json *ver = ef_json_get(o, "version");
    if (ver && !ef_json_u64(ver, &n->version)) return bad(r, "node version: want a whole number", i);
    if (!get_ms(o, "lagMs", &n->lag_ms) || !get_ms(o, "ageMs", &n->age_ms))
        return bad(r, "node lagMs/ageMs: want a finite number", i);
    char st[16];
    if (!get_text(o, "state", st, sizeof(st))) return bad(r, "node state: want a state name", i);
    n->state = EF_CV_OFFLINE;
    for (unsigned k = 0; k < 4; k++)
        if (!strcmp(st, state_names[k])) n->state = (ef_cv_state)k;
    if (st[0] && n->state == EF_CV_OFFLINE && strcmp(st, "offline"))
        return bad(r, "node state: want live, reconnecting, stale or offline", i);
    const ef_json *ap = ef_json_get(o, "applied");
    if (ap) {
        if (ap->type != EF_JSON_ARRAY) return bad(r, "node applied: want an array", i);
        if (ap->len > EF_CV_MAX_APPLIED) return bad(r, "node applied: more than 32 entries", i);
        for (const ef_json *e = ap->child; e; e = e->next) {
            ef_cv_apply *a = &n->applied[n->napplied];
            if (e->type != EF_JSON_ARRAY || e->len != 2 || !ef_json_u64(e->child, &a->seq) ||
                e->child->next->type != EF_JSON_NUMBER || !isfinite(e->child->next->num) ||
                e->child->next->num < -1e12 || e->child->next->num > 1e12)
                return bad(r, "node applied: want [seq, ms] pairs", i);
            a->ms = e->child->next->num;
            n->napplied++;
        }
    }
    return 0;
}

static int parse_write(rd *r, const ef_json *o, ef_cv_write *w, unsigned i)
{
    memset(w, 0, sizeof(*w));
    if (o->type != EF_JSON_OBJECT) return bad(r, "a write is not an object", i);
    const ef_json *seq = ef_json_get(o, "seq");
    const ef_json *at = ef_json_get(o, "committedAt");
    if (!seq || !ef_json_u64(seq, &w->seq) || !w->seq) return bad(r, "write seq: want a position", i);
    if (!at || !ef_json_i64(at, &w->committed_ns) || w->committed_ns < 0)
        return bad(r, "write committedAt: want Unix nanoseconds", i);
    if (!get_text(o, "namespace", w->ns, sizeof(w->ns)) || !get_text(o, "what", w->what, sizeof(w->what)))
        return bad(r, "write namespace/what: want short strings", i);
    return 0;
}

int ef_cv_from_json(const ef_json *root, ef_cluster_view *v, char *err, size_t errlen)
{
    rd r = {err, errlen};
    memset(v, 0, sizeof(*v));
    int rc = 0;
    if (root->type != EF_JSON_OBJECT) {
        rc = bad(&r, "want a JSON object", 0);
        goto out;
    }
    const ef_json *nodes = ef_json_get(root, "nodes");
    const ef_json *writes = ef_json_get(root, "writes");
    if (!nodes || nodes->type != EF_JSON_ARRAY) {
        rc = bad(&r, "nodes: want an array", 0);
        goto out;
    }
    if (nodes->len > EF_CV_MAX_NODES) {
        rc = bad(&r, "nodes: more than 64", 0);
        goto out;
    }
    for (const ef_json *e = nodes->child; e && rc == 0; e = e->next) {
        rc = parse_node(&r, e, &v->nodes[v->nnodes], v->nnodes);
        if (rc == 0 && ef_cv_find(v, v->nodes[v->nnodes].name)) rc = bad(&r, "a node name repeats", v->nnodes);
        if (rc == 0) v->nnodes++;
    }
    if (rc == 0 && writes) {
        if (writes->type != EF_JSON_ARRAY || writes->len > EF_CV_MAX_WRITES) {
            rc = bad(&r, "writes: want an array of at most 16", 0);
            goto out;
        }
        for (const ef_json *e = writes->child; e && rc == 0; e = e->next) {
            rc = parse_write(&r, e, &v->writes[v->nwrites], v->nwrites);
            if (rc == 0) v->nwrites++;
        }
    }
out:
    if (rc != 0) memset(v, 0, sizeof(*v));
    return rc;
}

const ef_json *ef_cv_json_parse(const char *p, size_t n, ef_arena *a, char *err, size_t errlen)
{
    ef_json_error je;
    ef_json_opts jo = {.max_depth = 8};
    const ef_json *root = ef_json_parse(p, n, a, &jo, &je);
    if (!root) snprintf(err, errlen, "invalid cluster view: %s at byte %zu", je.message, je.offset);
    return root;
}

int ef_cv_parse(const char *p, size_t n, ef_cluster_view *v, char *err, size_t errlen)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    const ef_json *root = ef_cv_json_parse(p, n, &a, err, errlen);
    int rc = root ? ef_cv_from_json(root, v, err, errlen) : -1;
    if (!root) memset(v, 0, sizeof(*v));
    ef_arena_free(&a);
    return rc;
}
