/*
 * dir.c - the read-only directory backend (see dir.h): finds features files like Flipt's local
 * storage, compiles them into published snapshots, and follows changes with inotify.
 *
 * It must never publish a half-loaded state: a reload parses and compiles everything first and
 * publishes only when all of it succeeded. It never writes into the directory. Threads: the
 * optional watcher thread and any caller of ef_dir_reload; reloads are serialised by reload_mu,
 * and the current state pointer, status and callback are guarded by mu.
 */
#include "store/dir.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "base/clock.h"
#include "base/file.h"
#include "base/json.h"
#include "eval/eval.h"
#include "base/thread.h"
#include "store/yaml_load.h"

#define MAX_WALK_DEPTH 32
#define MAX_GLOBS 64
#define INDEX_MAX_DEPTH 8 /* .flipt.yml is a map of lists of strings */
#define QUIET_NS 100000000LL   /* reload once changes pause this long... */
#define MAX_WAIT_NS 500000000LL /* ...or at the latest this long after the first change */

struct ef_dir_state {
    atomic_uint refs;
    ef_arena arena;
    ef_doc doc;
    uint64_t generation;
    unsigned files;
};

struct ef_dir {
    char *root;
    ef_registry *reg;
    pthread_mutex_t mu;
    pthread_mutex_t reload_mu;
    ef_dir_state *state;
    ef_dir_status status;
    ef_dir_callback cb;
    void *cb_ctx;
    int ifd, stop_fd;
    pthread_t thread;
    bool watching;
};

/* ---- globs ---- */

static bool match_class(const char **pp, const char *pe, char ch)
{
    const char *p = *pp + 1;
    bool neg = p < pe && (*p == '!' || *p == '^');
    if (neg) p++;
    bool hit = false;
    for (bool first = true; p < pe && (first || *p != ']'); first = false, p++) {
        if (p + 2 < pe && p[1] == '-' && p[2] != ']') {
            hit |= ch >= p[0] && ch <= p[2];
            p += 2;
        } else {
            hit |= ch == *p;
        }
    }
    *pp = p < pe ? p + 1 : pe;
    return hit != neg;
}

static bool glob_rec(const char *p, const char *pe, const char *s, const char *se, unsigned depth);

/* {a,b,c}rest: tries each alternative followed by the rest of the pattern. */
static bool match_alts(const char *p, const char *pe, const char *s, const char *se, unsigned depth)
{
    const char *end = p + 1;
    int level = 1;
    while (end < pe && level) {
        if (*end == '{') level++;
        if (*end == '}') level--;
        if (level) end++;
    }
    if (end >= pe) return false; /* unbalanced: nothing matches */
    const char *alt = p + 1;
    for (const char *q = p + 1; q <= end; q++) {
        int l2 = 0;
        for (const char *r = alt; r < q; r++) l2 += *r == '{' ? 1 : *r == '}' ? -1 : 0;
        if ((*q == ',' && l2 == 0) || q == end) {
            size_t alen = (size_t)(q - alt), rlen = (size_t)(pe - end - 1);
            char buf[1024];
            if (alen + rlen < sizeof(buf)) {
                memcpy(buf, alt, alen);
                memcpy(buf + alen, end + 1, rlen);
                if (glob_rec(buf, buf + alen + rlen, s, se, depth + 1)) return true;
            }
            alt = q + 1;
        }
    }
    return false;
}

static bool glob_rec(const char *p, const char *pe, const char *s, const char *se, unsigned depth)
{
    if (depth > 16) return false;
    while (p < pe) {
        if (*p == '*') {
            bool any = p + 1 < pe && p[1] == '*'; /* ** crosses directories */
            const char *rest = p + (any ? 2 : 1);
            for (const char *t = s;; t++) {
                if (glob_rec(rest, pe, t, se, depth + 1)) return true;
                if (t == se || (!any && *t == '/')) return false;
            }
        }
        if (*p == '{') return match_alts(p, pe, s, se, depth);
        if (s == se || *s == '/') {
            if (s == se || *p != '/') return false;
        }
        if (*p == '?') {
            p++, s++;
            continue;
        }
        if (*p == '[') {
            if (!match_class(&p, pe, *s)) return false;
            s++;
            continue;
        }
        if (*p == '\\' && p + 1 < pe) p++;
        if (*p != *s) return false;
        p++, s++;
    }
    return s == se;
}

bool ef_dir_glob_match(const char *pattern, const char *path)
{
    return glob_rec(pattern, pattern + strlen(pattern), path, path + strlen(path), 0);
}

/* ---- the index file ---- */

typedef struct globs {
    char *inc[MAX_GLOBS], *exc[MAX_GLOBS];
    unsigned ninc, nexc;
} globs;

static void globs_free(globs *g)
{
    for (unsigned i = 0; i < g->ninc; i++) free(g->inc[i]);
    for (unsigned i = 0; i < g->nexc; i++) free(g->exc[i]);
    g->ninc = g->nexc = 0;
}

static int set_err(ef_decl_error *err, const char *file, unsigned line, unsigned col,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int set_err(ef_decl_error *err, const char *file, unsigned line, unsigned col,
                   const char *fmt, ...)
{
    memset(err, 0, sizeof(*err));
    snprintf(err->file, sizeof(err->file), "%s", file);
    err->line = line;
    err->column = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return -1;
}

static int node_err(ef_decl_error *err, const char *file, const yaml_node_t *n, const char *msg)
{
    return set_err(err, file, (unsigned)n->start_mark.line + 1, (unsigned)n->start_mark.column + 1,
                   "%s", msg);
}

static int read_glob_list(yaml_document_t *doc, yaml_node_t *seq, const char *file, char **out,
                          unsigned *n, ef_decl_error *err)
{
    if (seq->type != YAML_SEQUENCE_NODE) return node_err(err, file, seq, "expected a list of globs");
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        yaml_node_t *g = yaml_document_get_node(doc, *it);
        if (!g || g->type != YAML_SCALAR_NODE || g->data.scalar.length == 0)
            return node_err(err, file, g ? g : seq, "a glob must be a non-empty string");
        if (*n == MAX_GLOBS) return node_err(err, file, g, "too many globs");
        out[*n] = strndup((const char *)g->data.scalar.value, g->data.scalar.length);
        if (!out[*n]) return set_err(err, file, 0, 0, "out of memory");
        (*n)++;
    }
    return 0;
}

static int parse_index(const char *file, const char *data, size_t len, globs *g, ef_decl_error *err)
{
    yaml_parser_t p;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&p)) return set_err(err, file, 0, 0, "out of memory");
    /* libyaml asserts on a NULL input even when the length is 0 (found by fuzzing) */
    yaml_parser_set_input_string(&p, (const unsigned char *)(data ? data : ""), data ? len : 0);
    int rc = 0;
    ef_yaml_cut cut; /* a bounded load: libyaml is quadratic in nesting (yaml_load.h) */
    if (!ef_yaml_load(&p, &doc, INDEX_MAX_DEPTH, &cut)) {
        rc = set_err(err, file, (unsigned)p.problem_mark.line + 1, (unsigned)p.problem_mark.column + 1,
                     "invalid YAML: %s", p.problem ? p.problem : "syntax error");
        yaml_parser_delete(&p);
        return rc;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (cut.cut)
        rc = set_err(err, file, (unsigned)cut.mark.line + 1, (unsigned)cut.mark.column + 1,
                     "nesting deeper than %d levels", INDEX_MAX_DEPTH);
    if (root && !rc && root->type != YAML_MAPPING_NODE) rc = node_err(err, file, root, "index must be a map");
    for (yaml_node_pair_t *pr = root && !rc ? root->data.mapping.pairs.start : NULL;
         pr && pr < root->data.mapping.pairs.top && !rc; pr++) {
        yaml_node_t *k = yaml_document_get_node(&doc, pr->key);
        yaml_node_t *v = yaml_document_get_node(&doc, pr->value);
        const char *key = k && k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
        if (strcmp(key, "include") == 0)
            rc = read_glob_list(&doc, v, file, g->inc, &g->ninc, err);
        else if (strcmp(key, "exclude") == 0)
            rc = read_glob_list(&doc, v, file, g->exc, &g->nexc, err);
        else if (strcmp(key, "version") == 0) {
            if (v->type != YAML_SCALAR_NODE || strcmp((const char *)v->data.scalar.value, "1.0") != 0)
                rc = node_err(err, file, v, "unsupported index version (want \"1.0\")");
        } else {
            rc = node_err(err, file, k, "unknown field in .flipt.yml (want version, include, exclude)");
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    return rc;
}

static int load_globs(const char *root, globs *g, ef_decl_error *err)
{
    static const char *const defaults[] = {"**features.yml", "**features.yaml", "**.features.yml",
                                           "**.features.yaml"};
    char path[4096];
    snprintf(path, sizeof(path), "%s/.flipt.yml", root);
    char *data;
    size_t len;
    int rc = ef_file_read(path, EF_FILE_MAX_ANY, &data, &len);
    if (rc == 0) {
        rc = parse_index(path, data, len, g, err);
        free(data);
        if (rc) globs_free(g);
        if (rc || g->ninc) return rc;
    } else if (rc != -ENOENT) {
        return set_err(err, path, 0, 0, "cannot read: %s", ef_file_strerror(rc));
    }
    for (unsigned i = 0; i < 4; i++) {
        g->inc[g->ninc] = strdup(defaults[i]);
        if (!g->inc[g->ninc]) return set_err(err, root, 0, 0, "out of memory");
        g->ninc++;
    }
    return 0;
}

static bool selected(const globs *g, const char *rel)
{
    bool in = false;
    for (unsigned i = 0; i < g->ninc && !in; i++) in = ef_dir_glob_match(g->inc[i], rel);
    for (unsigned i = 0; i < g->nexc && in; i++) in = !ef_dir_glob_match(g->exc[i], rel);
    return in;
}

/* ---- walking ---- */

typedef struct pathlist {
    char **v;
    size_t n, cap;
} pathlist;

static void paths_free(pathlist *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int paths_push(pathlist *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **nv = realloc(l->v, cap * sizeof(*nv));
        if (!nv) return -ENOMEM;
        l->v = nv;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s))) return -ENOMEM;
    l->n++;
    return 0;
}

/* Collects regular files (rel paths) and, when dirs is given, directories (full paths).
 * Symlinked directories are not followed, so a link loop cannot trap the walk. */
static int walk(const char *root, const char *rel, unsigned depth, pathlist *files, pathlist *dirs)
{
    char full[4096];
    snprintf(full, sizeof(full), "%s%s%s", root, rel[0] ? "/" : "", rel);
    if (dirs && paths_push(dirs, full)) return -ENOMEM;
    if (depth > MAX_WALK_DEPTH) return 0;
    DIR *d = opendir(full);
    if (!d) return depth == 0 ? -errno : 0; /* a subdirectory may vanish while we walk */
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char crel[4096], cfull[8192];
        snprintf(crel, sizeof(crel), "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        snprintf(cfull, sizeof(cfull), "%s/%s", root, crel);
        struct stat st;
        if (lstat(cfull, &st) != 0) continue;
        if (S_ISDIR(st.st_mode))
            rc = walk(root, crel, depth + 1, files, dirs);
        else if (files && (S_ISREG(st.st_mode) || (S_ISLNK(st.st_mode) && stat(cfull, &st) == 0 &&
                                                    S_ISREG(st.st_mode))))
            rc = paths_push(files, crel);
    }
    closedir(d);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- identities ---- */

/* Files carry no ids or timestamps; the management API shows both (Flipt's local storage makes
 * random UUIDs and the load time on every load). Ids here are UUID-shaped digests of where the
 * entity sits (namespace, owner, kind, key or position), so a rule keeps its id across reloads as
 * long as the file keeps it where it is: a GET by id between two reloads still finds it. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001b3ull;
    return h;
}

static ef_bytes make_id(ef_arena *a, ef_bytes ns, ef_bytes owner, const char *kind, ef_bytes key, size_t idx)
{
    uint64_t h[2];
    for (int k = 0; k < 2; k++) {
        uint64_t x = fnv(0xcbf29ce484222325ull ^ (uint64_t)k * 0x9e3779b97f4a7c15ull, ns.p, ns.n);
        x = fnv(x, "\0", 1);
        x = fnv(x, owner.p, owner.n);
        x = fnv(x, "\0", 1);
        x = fnv(x, kind, strlen(kind));
        x = fnv(x, "\0", 1);
        x = fnv(x, key.p, key.n);
        x = fnv(x, &idx, sizeof(idx));
        h[k] = x;
    }
    char *o = ef_arena_alloc(a, 37);
    if (!o) return (ef_bytes){"", 0};
    /* version 4 / variant 1 bits, so clients that parse UUIDs accept it */
    snprintf(o, 37, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(h[0] >> 32), (unsigned)(h[0] >> 16) & 0xffff,
             (unsigned)h[0] & 0xfff, (unsigned)(0x8000 | ((h[1] >> 48) & 0x3fff)),
             (unsigned long long)(h[1] & 0xffffffffffffull));
    return (ef_bytes){o, 36};
}

static void fill_meta(ef_doc_meta *m, ef_arena *a, ef_bytes ns, ef_bytes owner, const char *kind, ef_bytes key,
                      size_t idx, int64_t now)
{
    if (kind) m->id = make_id(a, ns, owner, kind, key, idx);
    m->created_ns = m->updated_ns = now;
}

static void state_fill_ids(ef_dir_state *s, int64_t now)
{
    ef_arena *a = &s->arena;
    static const ef_bytes none = {"", 0};
    for (size_t i = 0; i < s->doc.nnamespaces; i++) {
        ef_doc_namespace *ns = &s->doc.namespaces[i];
        fill_meta(&ns->meta, a, ns->key, none, NULL, none, 0, now);
        for (size_t j = 0; j < ns->nsegments; j++) {
            ef_doc_segment *sg = &ns->segments[j];
            fill_meta(&sg->meta, a, ns->key, none, NULL, none, 0, now);
            for (size_t c = 0; c < sg->nconstraints; c++)
                fill_meta(&sg->constraints[c].meta, a, ns->key, sg->key, "constraint", none, c, now);
        }
        for (size_t j = 0; j < ns->nflags; j++) {
            ef_doc_flag *f = &ns->flags[j];
            fill_meta(&f->meta, a, ns->key, none, NULL, none, 0, now);
            for (size_t v = 0; v < f->nvariants; v++)
                fill_meta(&f->variants[v].meta, a, ns->key, f->key, "variant", f->variants[v].key, 0, now);
            for (size_t r = 0; r < f->nrules; r++) {
                ef_doc_rule *ru = &f->rules[r];
                fill_meta(&ru->meta, a, ns->key, f->key, "rule", none, r, now);
                for (size_t d = 0; d < ru->ndistributions; d++) {
                    ef_doc_distribution *di = &ru->distributions[d];
                    fill_meta(&di->meta, a, ns->key, ru->meta.id, "distribution", di->variant_key, d, now);
                    for (size_t v = 0; v < f->nvariants && !di->variant_id.n; v++)
                        if (ef_bytes_eq(f->variants[v].key, di->variant_key)) di->variant_id = f->variants[v].meta.id;
                }
            }
            for (size_t r = 0; r < f->nrollouts; r++)
                fill_meta(&f->rollouts[r].meta, a, ns->key, f->key, "rollout", none, r, now);
        }
    }
}

/* ---- states ---- */

static void state_release(ef_dir_state *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1) return;
    ef_arena_free(&s->arena);
    free(s);
}

/* Parses every selected file into a new state; fails on the first invalid one. */
static ef_dir_state *state_load(const char *root, ef_decl_error *err)
{
    ef_dir_state *s = calloc(1, sizeof(*s));
    if (!s) {
        set_err(err, root, 0, 0, "out of memory");
        return NULL;
    }
    atomic_init(&s->refs, 1);
    ef_arena_init(&s->arena, 1 << 16);
    globs g = {0};
    pathlist files = {0};
    int rc = load_globs(root, &g, err);
    if (!rc && (rc = walk(root, "", 0, &files, NULL)) != 0)
        rc = set_err(err, root, 0, 0, "cannot read directory: %s", strerror(-rc));
    if (!rc) qsort(files.v, files.n, sizeof(*files.v), cmp_str);
    for (size_t i = 0; i < files.n && !rc; i++) {
        if (!selected(&g, files.v[i])) continue;
        char full[8192];
        snprintf(full, sizeof(full), "%s/%s", root, files.v[i]);
        ef_doc more;
        rc = ef_decl_parse_file(full, &s->arena, &more, err);
        if (!rc) rc = ef_decl_merge(&s->doc, &more, &s->arena, err);
        s->files++;
    }
    if (!rc) {
        bool has_default = false;
        for (size_t i = 0; i < s->doc.nnamespaces; i++)
            has_default |= ef_bytes_eq(s->doc.namespaces[i].key, EF_BYTES_LIT("default"));
        if (!has_default) { /* Flipt: the default namespace always exists */
            ef_doc_namespace *ns = ef_arena_calloc(&s->arena, sizeof(*ns));
            ef_doc extra = {.nnamespaces = 1, .namespaces = ns};
            if (!ns) rc = set_err(err, root, 0, 0, "out of memory");
            else {
                ns->key = EF_BYTES_LIT("default");
                ns->name = EF_BYTES_LIT("Default"); /* Flipt's ext.DefaultNamespace */
                ns->protected_ = true;
                rc = ef_decl_merge(&s->doc, &extra, &s->arena, err);
            }
        }
    }
    if (!rc) state_fill_ids(s, ef_clock_wall_ns());
    globs_free(&g);
    paths_free(&files);
    if (rc) {
        state_release(s);
        return NULL;
    }
    return s;
}

/* Compiles one namespace the way the snapshot endpoint will serve it. */
static ef_snapshot *compile_ns(const ef_doc_namespace *ns, ef_buf *buf, ef_decl_error *err)
{
    ef_buf_clear(buf);
    int rc = ef_doc_write_snapshot(ns, NULL, buf);
    const char *file = ns->pos.file ? ns->pos.file : "";
    if (rc) {
        set_err(err, file, ns->pos.line, ns->pos.column, "namespace \"%.*s\": cannot build snapshot (%s)",
                (int)ns->key.n, ns->key.p, strerror(-rc));
        return NULL;
    }
    ef_arena a;
    ef_arena_init(&a, 1 << 16);
    ef_json_error jerr;
    ef_json *j = ef_json_parse(buf->data, buf->len, &a, NULL, &jerr);
    ef_compile_error cerr;
    ef_snapshot *snap = j ? ef_snapshot_compile(j, &cerr) : NULL;
    ef_arena_free(&a);
    if (!snap) {
        set_err(err, file, ns->pos.line, ns->pos.column, "namespace \"%.*s\": %s", (int)ns->key.n,
                ns->key.p, j ? cerr.message : jerr.message);
        return NULL;
    }
    if (ef_snapshot_attach_document(snap, buf->data, buf->len) != 0) {
        ef_snapshot_free(snap);
        set_err(err, file, 0, 0, "out of memory");
        return NULL;
    }
    return snap;
}

static int state_publish(ef_dir *d, ef_dir_state *s, const ef_dir_state *old, ef_decl_error *err)
{
    size_t n = s->doc.nnamespaces;
    ef_snapshot **snaps = calloc(n ? n : 1, sizeof(*snaps));
    if (!snaps) return set_err(err, d->root, 0, 0, "out of memory");
    ef_buf buf;
    ef_buf_init(&buf);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        snaps[i] = compile_ns(&s->doc.namespaces[i], &buf, err);
        if (!snaps[i]) rc = -1;
        else ef_snapshot_set_version(snaps[i], s->generation);
    }
    ef_buf_free(&buf);
    ef_registry_hold(d->reg); /* the generation is announced once all its namespaces are visible */
    for (size_t i = 0; i < n; i++) {
        if (rc) {
            ef_snapshot_free(snaps[i]);
        } else if (ef_registry_publish(d->reg, snaps[i]) != 0) {
            rc = set_err(err, d->root, 0, 0, "out of memory publishing namespaces");
        }
    }
    free(snaps);
    for (size_t i = 0; rc == 0 && old && i < old->doc.nnamespaces; i++) {
        ef_bytes key = old->doc.namespaces[i].key;
        if (!ef_dir_state_namespace(s, key)) ef_registry_remove(d->reg, key);
    }
    ef_registry_release(d->reg);
    return rc;
}

int ef_dir_reload(ef_dir *d)
{
    pthread_mutex_lock(&d->reload_mu);
    ef_decl_error err;
    pthread_mutex_lock(&d->mu);
    ef_dir_state *old = d->state;
    uint64_t gen = d->status.generation + 1;
    pthread_mutex_unlock(&d->mu);
    ef_dir_state *s = state_load(d->root, &err);
    int rc = s ? 0 : -1;
    if (s) {
        s->generation = gen;
        rc = state_publish(d, s, old, &err);
    }
    pthread_mutex_lock(&d->mu);
    if (rc == 0) {
        d->state = s;
        d->status.generation = gen;
        d->status.loaded_ns = ef_clock_wall_ns();
        d->status.failing = false;
        d->status.files = s->files;
        d->status.namespaces = (unsigned)s->doc.nnamespaces;
    } else {
        d->status.failures++;
        d->status.failing = true;
        d->status.error = err;
    }
    ef_dir_status st = d->status;
    ef_dir_callback cb = d->cb;
    void *ctx = d->cb_ctx;
    pthread_mutex_unlock(&d->mu);
    if (rc == 0)
        state_release(old);
    else
        state_release(s);
    if (cb) cb(&st, ctx);
    pthread_mutex_unlock(&d->reload_mu);
    return rc;
}

int ef_dir_open(const char *path, ef_registry *reg, ef_dir **out, ef_decl_error *err)
{
    *out = NULL;
    ef_dir *d = calloc(1, sizeof(*d));
    if (!d || !(d->root = strdup(path))) {
        free(d);
        return set_err(err, path, 0, 0, "out of memory");
    }
    size_t n = strlen(d->root);
    while (n > 1 && d->root[n - 1] == '/') d->root[--n] = '\0';
    d->reg = reg;
    d->ifd = d->stop_fd = -1;
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->reload_mu, NULL);
    if (ef_dir_reload(d) != 0) {
        *err = d->status.error;
        ef_dir_close(d);
        return -1;
    }
    *out = d;
    return 0;
}

void ef_dir_set_callback(ef_dir *d, ef_dir_callback cb, void *ctx)
{
    pthread_mutex_lock(&d->mu);
    d->cb = cb;
    d->cb_ctx = ctx;
    pthread_mutex_unlock(&d->mu);
}

void ef_dir_get_status(ef_dir *d, ef_dir_status *out)
{
    pthread_mutex_lock(&d->mu);
    *out = d->status;
    pthread_mutex_unlock(&d->mu);
}

ef_dir_state *ef_dir_acquire(ef_dir *d)
{
    pthread_mutex_lock(&d->mu);
    ef_dir_state *s = d->state;
    if (s) atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&d->mu);
    return s;
}

void ef_dir_release(ef_dir_state *s)
{
    state_release(s);
}

const ef_doc *ef_dir_state_doc(const ef_dir_state *s)
{
    return &s->doc;
}

const ef_doc_namespace *ef_dir_state_namespace(const ef_dir_state *s, ef_bytes key)
{
    for (size_t i = 0; i < s->doc.nnamespaces; i++)
        if (ef_bytes_eq(s->doc.namespaces[i].key, key)) return &s->doc.namespaces[i];
    return NULL;
}

uint64_t ef_dir_state_generation(const ef_dir_state *s)
{
    return s->generation;
}

/* ---- watching ---- */

#define WATCH_MASK                                                                              \
    (IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | \
     IN_DELETE_SELF | IN_ONLYDIR)

/* Watches every directory (inotify is not recursive); re-adding a watched one is harmless. */
static void watch_tree(ef_dir *d)
{
    pathlist dirs = {0};
    walk(d->root, "", 0, NULL, &dirs);
    for (size_t i = 0; i < dirs.n; i++) inotify_add_watch(d->ifd, dirs.v[i], WATCH_MASK);
    paths_free(&dirs);
}

/* Drains pending inotify events; returns true if any arrived. */
static bool drain_events(ef_dir *d, bool *new_dir)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool any = false;
    for (;;) {
        ssize_t n = read(d->ifd, buf, sizeof(buf));
        if (n <= 0) return any;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO))) *new_dir = true;
            if (ev->mask & IN_Q_OVERFLOW) *new_dir = true;
            if (!(ev->mask & IN_IGNORED)) any = true;
            p += sizeof(*ev) + ev->len;
        }
    }
}

static void *watch_main(void *arg)
{
    ef_thread_name("ef-dir-watch");
    ef_dir *d = arg;
    int64_t first = 0, last = 0;
    for (;;) {
        int timeout = -1;
        if (first) {
            int64_t now = ef_clock_mono_ns();
            int64_t due = last + QUIET_NS < first + MAX_WAIT_NS ? last + QUIET_NS : first + MAX_WAIT_NS;
            timeout = due > now ? (int)((due - now) / 1000000) + 1 : 0;
        }
        struct pollfd fds[2] = {{d->ifd, POLLIN, 0}, {d->stop_fd, POLLIN, 0}};
        int n = poll(fds, 2, timeout);
        if (n < 0 && errno != EINTR) break;
        if (fds[1].revents) break;
        if (n > 0 && fds[0].revents) {
            bool new_dir = false;
            if (drain_events(d, &new_dir)) {
                last = ef_clock_mono_ns();
                if (!first) first = last;
            }
            if (new_dir) watch_tree(d); /* before files inside it are written, ideally */
            continue;
        }
        if (first) {
            int64_t now = ef_clock_mono_ns();
            if (now - last >= QUIET_NS || now - first >= MAX_WAIT_NS) {
                first = last = 0;
                watch_tree(d); /* also catches directories created and filled between events */
                ef_dir_reload(d);
            }
        }
    }
    return NULL;
}

int ef_dir_start_watch(ef_dir *d)
{
    if (d->watching) return 0;
    d->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (d->ifd < 0) return -errno;
    d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->stop_fd < 0) {
        int e = errno;
        close(d->ifd);
        d->ifd = -1;
        return -e;
    }
    watch_tree(d);
    int rc = pthread_create(&d->thread, NULL, watch_main, d);
    if (rc != 0) {
        close(d->ifd);
        close(d->stop_fd);
        d->ifd = d->stop_fd = -1;
        return -rc;
    }
    d->watching = true;
    return 0;
}

void ef_dir_close(ef_dir *d)
{
    if (!d) return;
    if (d->watching) {
        uint64_t one = 1;
        if (write(d->stop_fd, &one, sizeof(one)) != sizeof(one)) { /* the fd cannot be full */
        }
        pthread_join(d->thread, NULL);
    }
    if (d->ifd >= 0) close(d->ifd);
    if (d->stop_fd >= 0) close(d->stop_fd);
    if (d->state) {
        for (size_t i = 0; i < d->state->doc.nnamespaces; i++)
            ef_registry_remove(d->reg, d->state->doc.namespaces[i].key);
        state_release(d->state);
    }
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->reload_mu);
    free(d->root);
    free(d);
}
