/*
 * format.c - object names, log batches and snapshot manifests of continuous backup (format.h).
 *
 * The readers take bytes from a bucket that anyone with write access to it (or a broken disk
 * under it) may have changed: they never read past len, never trust a length or a count before
 * checking it against what is there, and check the recorded SHA-256 before handing out anything.
 */
#include "backup/format.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/arena.h"
#include "base/json.h"
#include "base/sha256.h"

void ef_bk_hex(const uint8_t *in, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static bool hex_decode(ef_bytes s, uint8_t *out, size_t n)
{
    if (s.n != 2 * n) return false;
    for (size_t i = 0; i < 2 * n; i++) {
        char c = s.p[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0) return false;
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(v << 4);
        else
            out[i / 2] |= (uint8_t)v;
    }
    return true;
}

bool ef_bk_history_valid(ef_bytes h)
{
    if (h.n == 0 || h.n > EF_BK_HISTORY_MAX) return false;
    for (size_t i = 0; i < h.n; i++) {
        char c = h.p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

/* ---- names ---- */

void ef_bk_name_format(const ef_bk_name *n, char *out, size_t cap)
{
    int w = -1;
    if (n->kind == EF_BK_SNAP_DB || n->kind == EF_BK_SNAP_MANIFEST)
        w = snprintf(out, cap, "%s/snap/%020" PRIu64 "-%020" PRId64 ".%s", n->history, n->seq,
                     n->time_ns, n->kind == EF_BK_SNAP_DB ? "db" : "json");
    else if (n->kind == EF_BK_BATCH)
        w = snprintf(out, cap, "%s/log/%020" PRIu64 "-%020" PRIu64 "-%020" PRId64 ".batch",
                     n->history, n->seq, n->last, n->time_ns);
    if (w < 0 || (size_t)w >= cap) {
        if (cap) out[0] = '\0';
    }
}

/* Exactly 20 decimal digits at *p (advanced past them). */
static bool num20(const char **p, const char *end, uint64_t *v)
{
    if (end - *p < 20) return false;
    uint64_t x = 0;
    for (int i = 0; i < 20; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') return false;
        if (x > (UINT64_MAX - 9) / 10) return false;
        x = x * 10 + (uint64_t)(c - '0');
    }
    *p += 20;
    *v = x;
    return true;
}

static bool lit(const char **p, const char *end, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(end - *p) < n || memcmp(*p, s, n) != 0) return false;
    *p += n;
    return true;
}

bool ef_bk_name_parse(ef_bytes rel, ef_bk_name *out)
{
    memset(out, 0, sizeof(*out));
    const char *p = rel.p, *end = rel.p + rel.n;
    const char *slash = rel.n ? memchr(p, '/', rel.n) : NULL;
    if (!slash || !ef_bk_history_valid((ef_bytes){p, (size_t)(slash - p)})) return false;
    ef_bk_name n = {0};
    memcpy(n.history, p, (size_t)(slash - p));
    p = slash;
    uint64_t a, b, t;
    if (lit(&p, end, "/snap/")) {
        if (!num20(&p, end, &a) || !lit(&p, end, "-") || !num20(&p, end, &t) || t > INT64_MAX)
            return false;
        /* the whole rest, not a prefix: "….db.json" is neither name (a lit() that matched
         * ".db" had moved p on, and ".json" then matched what followed) */
        ef_bytes rest = {p, (size_t)(end - p)};
        if (ef_bytes_eq(rest, EF_BYTES_LIT(".db")))
            n.kind = EF_BK_SNAP_DB;
        else if (ef_bytes_eq(rest, EF_BYTES_LIT(".json")))
            n.kind = EF_BK_SNAP_MANIFEST;
        else
            return false;
        n.seq = a;
        n.time_ns = (int64_t)t;
    } else if (lit(&p, end, "/log/")) {
        if (!num20(&p, end, &a) || !lit(&p, end, "-") || !num20(&p, end, &b) || !lit(&p, end, "-") ||
            !num20(&p, end, &t) || !lit(&p, end, ".batch") || p != end || t > INT64_MAX || a == 0 ||
            b < a)
            return false;
        n.kind = EF_BK_BATCH;
        n.seq = a;
        n.last = b;
        n.time_ns = (int64_t)t;
    } else {
        return false;
    }
    *out = n;
    return true;
}

/* ---- batches ---- */

void ef_bk_batch_write(ef_buf *out, const char *history, const ef_bk_entry *e, size_t n)
{
    ef_buf body;
    ef_buf_init(&body);
    for (size_t i = 0; i < n; i++) {
        ef_buf_printf(&body, "%" PRIu64 " %" PRId64 " %zu\n", e[i].seq, e[i].time_ns, e[i].entry.n);
        ef_buf_append(&body, e[i].entry.p, e[i].entry.n);
        ef_buf_putc(&body, '\n');
    }
    uint8_t h[32];
    char hex[65];
    ef_sha256(body.data ? body.data : "", body.len, h);
    ef_bk_hex(h, 32, hex);
    ef_buf_printf(out, EF_BK_BATCH_MAGIC " history=%s first=%" PRIu64 " last=%" PRIu64
                       " count=%zu sha256=%s\n",
                  history, n ? e[0].seq : 0, n ? e[n - 1].seq : 0, n, hex);
    if (!ef_buf_ok(&body)) out->failed = true;
    ef_buf_append(out, body.data, body.len);
    ef_buf_free(&body);
}

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -1;
}

/* A decimal number of at most 19 digits (so it fits int64) ending at a given byte. */
static bool dec(const char **p, const char *end, char stop, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    while (*p < end && **p >= '0' && **p <= '9' && *p - s < 19) x = x * 10 + (uint64_t)(*(*p)++ - '0');
    if (*p == s || *p >= end || **p != stop) return false;
    (*p)++;
    *v = x;
    return true;
}

/* `name=VALUE` followed by stop; VALUE is returned as bytes. */
static bool field(const char **p, const char *end, const char *name, char stop, ef_bytes *v)
{
    if (!lit(p, end, name) || !lit(p, end, "=")) return false;
    const char *s = *p;
    while (*p < end && **p != stop && **p != ' ' && **p != '\n') (*p)++;
    if (*p >= end || **p != stop || *p == s) return false;
    *v = (ef_bytes){s, (size_t)(*p - s)};
    (*p)++;
    return true;
}

static bool field_num(const char **p, const char *end, const char *name, char stop, uint64_t *v)
{
    ef_bytes b;
    if (!field(p, end, name, stop, &b)) return false;
    const char *q = b.p;
    const char *qe = b.p + b.n;
    uint64_t x = 0;
    if (b.n > 19) return false;
    for (; q < qe; q++) {
        if (*q < '0' || *q > '9') return false;
        x = x * 10 + (uint64_t)(*q - '0');
    }
    *v = x;
    return true;
}

int ef_bk_batch_read(const char *data, size_t len, ef_bk_batch_head *head, ef_bk_entry_fn fn,
                     void *ctx, char *err, size_t errlen)
{
    const char *p = data, *end = data + len;
    memset(head, 0, sizeof(*head));
    ef_bytes hist, sha;
    if (!lit(&p, end, EF_BK_BATCH_MAGIC " ") || !field(&p, end, "history", ' ', &hist) ||
        !ef_bk_history_valid(hist) || !field_num(&p, end, "first", ' ', &head->first) ||
        !field_num(&p, end, "last", ' ', &head->last) ||
        !field_num(&p, end, "count", ' ', &head->count) || !field(&p, end, "sha256", '\n', &sha))
        return fail(err, errlen, "not an edgeflag backup batch (bad header line)");
    memcpy(head->history, hist.p, hist.n);
    head->history[hist.n] = '\0';
    uint8_t want[32], got[32];
    if (!hex_decode(sha, want, 32)) return fail(err, errlen, "batch header has a bad sha256");
    if (head->count == 0 || head->first == 0 || head->last < head->first ||
        head->last - head->first + 1 != head->count)
        return fail(err, errlen, "batch header's first, last and count disagree");
    ef_sha256(p, (size_t)(end - p), got);
    if (memcmp(want, got, 32) != 0)
        return fail(err, errlen, "batch body does not match its sha256 (corrupt or cut short)");
    /* Two passes: check every entry's framing first, so a bad batch hands out nothing. */
    for (int pass = 0; pass < 2; pass++) {
        const char *q = p;
        uint64_t expect = head->first;
        for (uint64_t i = 0; i < head->count; i++, expect++) {
            uint64_t seq, t, n;
            if (!dec(&q, end, ' ', &seq) || !dec(&q, end, ' ', &t) || !dec(&q, end, '\n', &n))
                return fail(err, errlen, "batch entry has a bad framing line");
            if (seq != expect) return fail(err, errlen, "batch entries are not consecutive");
            if (t > INT64_MAX) return fail(err, errlen, "batch entry has a bad time");
            if (n > EF_BK_ENTRY_MAX || n >= (uint64_t)(end - q) || q[n] != '\n')
                return fail(err, errlen, "batch entry length runs past the batch");
            if (pass == 1) {
                ef_bk_entry e = {seq, (int64_t)t, {q, (size_t)n}};
                int rc = fn ? fn(ctx, &e) : 0;
                if (rc) return rc;
            }
            q += n + 1;
        }
        if (q != end) return fail(err, errlen, "batch has bytes after its last entry");
    }
    return 0;
}

/* ---- manifests ---- */

void ef_bk_manifest_write(ef_buf *out, const ef_bk_manifest *m)
{
    char hex[65];
    ef_bk_hex(m->sha256, 32, hex);
    ef_buf_puts(out, "{\"format\":\"" EF_BK_MANIFEST_FORMAT "\",\"history\":");
    ef_json_put_cstr(out, m->history);
    ef_buf_puts(out, ",\"dbId\":");
    ef_json_put_cstr(out, m->db_id);
    ef_buf_printf(out, ",\"seq\":%" PRIu64 ",\"time\":%" PRId64 ",\"bytes\":%" PRIu64
                       ",\"schema\":%d,\"sha256\":\"%s\"}\n",
                  m->seq, m->time_ns, m->bytes, m->schema, hex);
}

int ef_bk_manifest_read(const char *data, size_t len, ef_bk_manifest *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof(*m));
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_json_error je;
    ef_json_opts jo = {.max_depth = 4};
    int rc = -1;
    if (len > 65536) {
        fail(err, errlen, "snapshot manifest is larger than 64 KiB");
        goto out;
    }
    const ef_json *root = ef_json_parse(data, len, &a, &jo, &je);
    const ef_json *f = root ? ef_json_get(root, "format") : NULL;
    if (!root || root->type != EF_JSON_OBJECT || !f || f->type != EF_JSON_STRING ||
        !ef_bytes_eq(f->str, EF_BYTES_LIT(EF_BK_MANIFEST_FORMAT))) {
        fail(err, errlen, "not an edgeflag snapshot manifest (format " EF_BK_MANIFEST_FORMAT ")");
        goto out;
    }
    const ef_json *h = ef_json_get(root, "history"), *d = ef_json_get(root, "dbId");
    const ef_json *sha = ef_json_get(root, "sha256");
    int64_t t = 0, schema = 0;
    if (!h || h->type != EF_JSON_STRING || !ef_bk_history_valid(h->str) || !d ||
        d->type != EF_JSON_STRING || !ef_bk_history_valid(d->str) ||
        !ef_json_u64(ef_json_get(root, "seq"), &m->seq) || m->seq > INT64_MAX ||
        !ef_json_i64(ef_json_get(root, "time"), &t) || t < 0 ||
        !ef_json_u64(ef_json_get(root, "bytes"), &m->bytes) ||
        !ef_json_i64(ef_json_get(root, "schema"), &schema) || schema < 1 || schema > 1000 || !sha ||
        sha->type != EF_JSON_STRING || !hex_decode(sha->str, m->sha256, 32)) {
        fail(err, errlen, "snapshot manifest lacks history, dbId, seq, time, bytes, schema or sha256");
        goto out;
    }
    memcpy(m->history, h->str.p, h->str.n);
    memcpy(m->db_id, d->str.p, d->str.n);
    m->time_ns = t;
    m->schema = (int)schema;
    rc = 0;
out:
    ef_arena_free(&a);
    return rc;
}
