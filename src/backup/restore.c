/*
 * restore.c - `edgeflag restore s3://…` (restore.h): snapshot + log batches from a bucket, rebuilt
 * in a scratch file next to the target, then installed through ef_sqlite_restore.
 *
 * The scratch store applies entries through the same code a replica uses (ef_store_apply_changes),
 * which refuses an entry that does not follow the previous seq, so a restored store is exactly the
 * primary's state at the point reached. Nothing the bucket says is believed unchecked; the target
 * is only touched by the final ef_sqlite_restore.
 */
#include "backup/restore.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup/format.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/sha256.h"

#define SNAPSHOT_MAX ((size_t)1 << 30)
#define BATCH_MAX ((size_t)1 << 30)
#define NAMES_MAX ((size_t)10 << 20) /* objects of ours under one prefix */

typedef struct names {
    ef_bk_name *v;
    size_t n, cap;
    bool oom, too_many;
} names;

static int on_obj(void *ctx, ef_bytes rel, uint64_t size)
{
    (void)size;
    names *l = ctx;
    ef_bk_name n;
    if (!ef_bk_name_parse(rel, &n)) return 0; /* not ours: other tools may share the prefix */
    if (l->n >= NAMES_MAX) { /* a bucket that lists without end is not believed */
        l->too_many = true;
        return 1;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        ef_bk_name *v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            l->oom = true;
            return 1;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = n;
    return 0;
}

static int cmp_first(const void *a, const void *b)
{
    const ef_bk_name *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq ? 1 : x->last < y->last ? -1 : x->last > y->last;
}

typedef struct apply_ctx {
    ef_store *st;
    const ef_bk_restore_opts *o;
    uint64_t cur;
    bool done;
    uint64_t entries;
    char *err;
    size_t errlen;
} apply_ctx;

static int on_entry(void *ctx, const ef_bk_entry *e)
{
    apply_ctx *a = ctx;
    if (e->seq <= a->cur) return 0; /* batches may overlap after a retry: already applied */
    if ((a->o->has_seq && e->seq > a->o->at_seq) || (a->o->has_time && e->time_ns > a->o->at_time_ns)) {
        a->done = true;
        return 1;
    }
    ef_store_err se;
    if (ef_store_apply_changes(a->st, e->entry.p, e->entry.n, &se)) {
        snprintf(a->err, a->errlen, "entry %" PRIu64 " cannot be applied: %s", e->seq, se.message);
        return -1;
    }
    a->cur = e->seq;
    a->entries++;
    if (a->o->has_seq && a->cur == a->o->at_seq) {
        a->done = true;
        return 1;
    }
    return 0;
}

int ef_bk_restore(ef_s3 *s3, const ef_bk_restore_opts *o, ef_bk_restore_result *res, int *status,
                  char *err, size_t errlen)
{
    memset(res, 0, sizeof(*res));
    *status = 1;
    names l = {0};
    ef_buf body;
    ef_buf_init(&body);
    char tmp[4200] = "";
    ef_store *st = NULL;
    int rc = -1;
    ef_s3_err se;
    int lr = ef_s3_list(s3, "", on_obj, &l, &se);
    if (l.oom || l.too_many) { /* on_obj stopped the listing */
        if (l.oom)
            snprintf(err, errlen, "out of memory");
        else
            snprintf(err, errlen, "%s lists more than %zu backup objects", ef_s3_url(s3), NAMES_MAX);
        goto out;
    }
    if (lr) {
        snprintf(err, errlen, "%s", se.message);
        goto out;
    }
    /* which history: the one asked for, else the one written to last */
    const char *hist = o->history;
    if (!hist) {
        int64_t best = -1;
        for (size_t i = 0; i < l.n; i++)
            if (l.v[i].time_ns > best) best = l.v[i].time_ns, hist = l.v[i].history;
    }
    if (!hist) {
        snprintf(err, errlen, "%s holds no edgeflag backup", ef_s3_url(s3));
        *status = 2;
        goto out;
    }
    snprintf(res->source_history, sizeof(res->source_history), "%s", hist);
    /* the snapshot: the latest at or before the point, with its manifest */
    const ef_bk_name *snap = NULL;
    for (size_t i = 0; i < l.n; i++) {
        const ef_bk_name *n = &l.v[i];
        if (n->kind != EF_BK_SNAP_MANIFEST || strcmp(n->history, res->source_history) != 0) continue;
        if (o->has_seq && n->seq > o->at_seq) continue;
        if (o->has_time && n->time_ns > o->at_time_ns) continue;
        if (!snap || n->seq > snap->seq) snap = n;
    }
    if (!snap) {
        snprintf(err, errlen, "%s has no snapshot of history %s at or before the point asked for",
                 ef_s3_url(s3), res->source_history);
        *status = 2;
        goto out;
    }
    char key[256];
    ef_bk_name_format(snap, key, sizeof(key));
    char e2[300];
    ef_bk_manifest m;
    if (ef_s3_get(s3, key, 65536, &body, &se)) {
        snprintf(err, errlen, "%s", se.message);
        goto out;
    }
    if (ef_bk_manifest_read(body.data, body.len, &m, e2, sizeof(e2)) || m.seq != snap->seq ||
        strcmp(m.history, snap->history) != 0) {
        snprintf(err, errlen, "%s%s: %s", ef_s3_prefix(s3), key,
                 e2[0] && m.seq == 0 ? e2 : "the manifest does not match its name");
        goto out;
    }
    ef_bk_name dbn = *snap;
    dbn.kind = EF_BK_SNAP_DB;
    ef_bk_name_format(&dbn, key, sizeof(key));
    if (ef_s3_get(s3, key, m.bytes < SNAPSHOT_MAX ? (size_t)m.bytes + 1 : SNAPSHOT_MAX, &body, &se)) {
        snprintf(err, errlen, "%s", se.message);
        goto out;
    }
    uint8_t h[32];
    ef_sha256(body.data ? body.data : "", body.len, h);
    if (body.len != m.bytes || memcmp(h, m.sha256, 32) != 0) {
        snprintf(err, errlen, "%s%s is corrupt: %zu bytes, its manifest says %" PRIu64
                 " bytes and another SHA-256", ef_s3_prefix(s3), key, body.len, m.bytes);
        goto out;
    }
    snprintf(tmp, sizeof(tmp), "%s.s3restore-%ld", o->db, (long)getpid());
    ef_sqlite_remove_files(tmp);
    FILE *f = fopen(tmp, "wb");
    if (!f || fwrite(body.data, 1, body.len, f) != body.len || fclose(f) != 0) {
        if (f) fclose(f);
        snprintf(err, errlen, "cannot write the scratch file %s", tmp);
        goto out;
    }
    ef_backup_info bi;
    ef_store_err ste;
    if (ef_sqlite_backup_check(tmp, &bi, &ste) || bi.seq != m.seq || strcmp(bi.id.history, m.history) != 0) {
        snprintf(err, errlen, "snapshot %s%s: %s", ef_s3_prefix(s3), key,
                 bi.seq != m.seq ? "it does not hold the seq and history its manifest names" : ste.message);
        goto out;
    }
    res->snapshot_seq = m.seq;
    ef_sqlite_opts so = {.no_lock = true, .no_create_dirs = true};
    if (!(st = ef_sqlite_open(tmp, &so, &ste))) {
        snprintf(err, errlen, "snapshot %s: %s", key, ste.message);
        goto out;
    }
    /* the log after the snapshot, in order, with no gap */
    qsort(l.v, l.n, sizeof(*l.v), cmp_first);
    apply_ctx a = {st, o, m.seq, false, 0, err, errlen};
    err[0] = '\0';
    for (size_t i = 0; i < l.n && !a.done; i++) {
        const ef_bk_name *n = &l.v[i];
        if (n->kind != EF_BK_BATCH || strcmp(n->history, res->source_history) != 0 || n->last <= a.cur)
            continue;
        if (n->seq > a.cur + 1) break; /* a gap: reported below if the point lies past it */
        ef_bk_name_format(n, key, sizeof(key));
        if (ef_s3_get(s3, key, BATCH_MAX, &body, &se)) {
            snprintf(err, errlen, "%s", se.message);
            goto out;
        }
        ef_bk_batch_head bh;
        int r = ef_bk_batch_read(body.data ? body.data : "", body.len, &bh, on_entry, &a, e2, sizeof(e2));
        if (r == -1 && !err[0]) {
            bool newest = true;
            for (size_t j = 0; j < l.n; j++)
                if (l.v[j].kind == EF_BK_BATCH && strcmp(l.v[j].history, res->source_history) == 0 &&
                    l.v[j].last > n->last)
                    newest = false;
            snprintf(err, errlen, "batch %s%s is corrupt: %s%s%" PRIu64 "%s", ef_s3_prefix(s3), key, e2,
                     newest ? "; it is the newest batch (an upload cut short on a server that keeps "
                              "partial objects?): restore up to seq "
                            : " (the store is restorable up to seq ",
                     a.cur,
                     newest ? " with --at, or start the server that shipped it: it ships that batch again"
                            : " with --at)");
            goto out;
        }
        if (r < 0) goto out;
        if (bh.first != n->seq || bh.last != n->last || strcmp(bh.history, n->history) != 0) {
            snprintf(err, errlen, "batch %s%s: its header does not match its name", ef_s3_prefix(s3), key);
            goto out;
        }
        res->batches++;
    }
    res->entries = a.entries;
    if (o->has_seq && a.cur != o->at_seq) {
        snprintf(err, errlen, "%s holds history %s only up to seq %" PRIu64 " without a gap; seq %"
                 PRIu64 " cannot be restored", ef_s3_url(s3), res->source_history, a.cur, o->at_seq);
        *status = 2;
        goto out;
    }
    if (!a.done) { /* the point was not reached: nothing shipped may be left behind a gap */
        for (size_t i = 0; i < l.n; i++)
            if (l.v[i].kind == EF_BK_BATCH && strcmp(l.v[i].history, res->source_history) == 0 &&
                l.v[i].last > a.cur) {
                snprintf(err, errlen, "%s: history %s has batches after seq %" PRIu64
                         " but not the entry after it (a gap in the log); restore with --at %" PRIu64
                         " to accept that point", ef_s3_url(s3), res->source_history, a.cur, a.cur);
                *status = 2;
                goto out;
            }
    }
    ef_store_close(st);
    st = NULL;
    ef_store_err re;
    if (ef_sqlite_restore(tmp, o->db, &res->info, &re)) {
        snprintf(err, errlen, "%s", re.message);
        *status = re.code == EF_STORE_INVALID ? 2 : 1;
        goto out;
    }
    rc = 0;
    *status = 0;
out:
    if (st) ef_store_close(st);
    if (tmp[0]) ef_sqlite_remove_files(tmp);
    free(l.v);
    ef_buf_free(&body);
    return rc;
}
