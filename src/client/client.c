/*
 * client.c - libedgeflag's public API (include/edgeflag.h): open/close, evaluation, status.
 *
 * The evaluation path must never take a lock, allocate, or wait for the network: it enters an RCU
 * read section on the client's registry (liburcu-bp, lock-free), evaluates with the shared engine
 * (src/eval/), and leaves the read section open until ef_result_release so the result's strings
 * stay valid. New states are published into the registry by the background thread (replica.c);
 * the snapshot they replace is freed after every such read section has ended.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/arena.h"
#include "base/clock.h"
#include "base/json.h"
#include "client/client_int.h"
#include "eval/eval.h"
#include "eval/registry_read.h"

/* ef_pair is the engine's ef_kv, spelled for the public header: evaluation reads the caller's
 * array as the engine's pairs and lays it out in one request block (eval/request.h). */
_Static_assert(sizeof(ef_pair) == sizeof(ef_kv), "ef_pair layout");
_Static_assert(offsetof(ef_pair, key) == offsetof(ef_kv, key) + offsetof(ef_bytes, p), "key");
_Static_assert(offsetof(ef_pair, key_len) == offsetof(ef_kv, key) + offsetof(ef_bytes, n), "klen");
_Static_assert(offsetof(ef_pair, value) == offsetof(ef_kv, value) + offsetof(ef_bytes, p), "val");
_Static_assert(offsetof(ef_pair, value_len) == offsetof(ef_kv, value) + offsetof(ef_bytes, n),
               "vlen");
_Static_assert(sizeof(((ef_result *)0)->priv_bits_) == sizeof(((ef_matched_segments *)0)->bits),
               "matched segment bits");
_Static_assert((int)EF_RESULT_MATCH == (int)EF_REASON_MATCH &&
                   (int)EF_RESULT_DEFAULT == (int)EF_REASON_DEFAULT &&
                   (int)EF_RESULT_FLAG_DISABLED == (int)EF_REASON_FLAG_DISABLED,
               "reasons");

/* EF_VERSION comes from project(VERSION) in CMakeLists.txt, the one place the version is set. */
const char *ef_version(void)
{
    return EF_VERSION;
}

const char *ef_strerror(int err)
{
    switch (err) {
    case EF_OK: return "success";
    case EF_EINVAL: return "invalid argument";
    case EF_ENOMEM: return "out of memory";
    case EF_ENOTFOUND: return "flag not found";
    case EF_EWRONGTYPE: return "flag has the other type (variant vs boolean)";
    case EF_ENOSTATE: return "no state yet: the node has not answered and no valid cache file";
    case EF_ECONNECT: return "cannot reach the node";
    case EF_EHTTP: return "unexpected HTTP status from the node";
    case EF_EAUTH: return "the node refused the token";
    case EF_EDOCUMENT: return "invalid snapshot document from the node";
    case EF_ECACHE_MISSING: return "no cache file";
    case EF_ECACHE_CORRUPT: return "cache file corrupt or truncated (ignored)";
    case EF_ECACHE_VERSION: return "cache file has an unknown format version (ignored)";
    case EF_ECACHE_MISMATCH: return "cache file holds another namespace (ignored)";
    case EF_EIO: return "I/O error";
    case EF_ETIMEDOUT: return "timed out";
    case EF_ETHREAD: return "cannot start the background thread";
    case EF_ETLS: return "TLS with the node failed (its certificate was refused, or it refused ours)";
    case EF_EBEHIND: return "the node answered a state older than the one held (kept while the node catches up)";
    case EF_EPROTOCOL:
        return "the node's change stream broke the protocol (a line or event past its limit, or no "
               "line ended for 15 s)";
    default: return "unknown error";
    }
}

const char *ef_result_reason_name(ef_result_reason reason)
{
    return ef_reason_name((ef_reason)reason);
}

/* ---- states ------------------------------------------------------------------------------------ */

int ef_client_apply(ef_client *c, const char *doc, size_t len, uint64_t version, const char *etag,
                    ef_state_source source, int64_t saved_wall_ns)
{
    ef_arena a;
    ef_arena_init(&a, len + 4096 < (1u << 20) ? len + 4096 : (1u << 20));
    ef_json_error je;
    const ef_json *tree = ef_json_parse(doc, len, &a, NULL, &je);
    ef_compile_error ce;
    ef_snapshot *s = tree ? ef_snapshot_compile(tree, &ce) : NULL;
    ef_arena_free(&a);
    if (!s) return EF_EDOCUMENT;
    if (!ef_bytes_eq(ef_snapshot_namespace(s), c->ns)) {
        ef_snapshot_free(s);
        return EF_EDOCUMENT;
    }
    ef_snapshot_set_version(s, version);
    size_t flags = ef_snapshot_flag_count(s);
    if (ef_registry_publish(c->reg, s) != 0) return EF_ENOMEM; /* s was freed */
    pthread_mutex_lock(&c->mu);
    c->version = version;
    snprintf(c->etag, sizeof(c->etag), "%s", etag ? etag : "");
    c->source = source;
    c->confirmed_mono_ns = ef_clock_mono_ns();
    c->saved_wall_ns = saved_wall_ns;
    c->flag_count = flags;
    c->updates++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return EF_OK;
}

/* Loads the cache file at open; records why it was not used otherwise. */
static void load_cache(ef_client *c)
{
    ef_cache_entry e;
    int rc = ef_cache_read(c->cache_path, &e);
    if (rc == EF_OK) {
        rc = ef_client_apply(c, e.doc, e.doc_len, e.version, e.etag, EF_SOURCE_CACHE, e.saved_ns);
        /* the checksum held, so a document that does not compile for this namespace was written
         * for another one (or by another program): never trusted */
        if (rc == EF_EDOCUMENT) rc = EF_ECACHE_MISMATCH;
        ef_cache_entry_free(&e);
    }
    c->cache_status = rc;
}

/* ---- open / close ------------------------------------------------------------------------------ */

static char *dup_or_null(const char *s, int *err)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *err = EF_ENOMEM;
    return d;
}

static void client_free(ef_client *c)
{
    ef_replica_free(c->replica);
    if (c->reg) ef_registry_free(c->reg);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c->ns_buf);
    free(c->url);
    free(c->token);
    free(c->cache_path);
    for (int i = 0; i < 3; i++) free(c->tls_files[i]);
    free(c);
}

int ef_client_open(const ef_client_options *o, ef_client **out)
{
    if (!o || !out || !o->url || !o->url[0]) return EF_EINVAL;
    *out = NULL;
    ef_client *c = calloc(1, sizeof(*c));
    if (!c) return EF_ENOMEM;
    pthread_mutex_init(&c->mu, NULL);
    ef_cond_init_monotonic(&c->cv);
    int err = EF_OK;
    c->ns_buf = dup_or_null(o->namespace_key && o->namespace_key[0] ? o->namespace_key : "default",
                            &err);
    c->url = dup_or_null(o->url, &err);
    c->token = dup_or_null(o->token && o->token[0] ? o->token : NULL, &err);
    c->cache_path = dup_or_null(o->cache_path && o->cache_path[0] ? o->cache_path : NULL, &err);
    const char *files[3] = {o->ca_file, o->cert_file, o->key_file};
    for (int i = 0; i < 3; i++) c->tls_files[i] = dup_or_null(files[i] && files[i][0] ? files[i] : NULL, &err);
    c->reg = ef_registry_new();
    if (err != EF_OK || !c->reg) {
        client_free(c);
        return EF_ENOMEM;
    }
    c->tls = (ef_tls_client){c->tls_files[0], c->tls_files[1], c->tls_files[2], o->insecure};
    if ((c->tls.cert_file != NULL) != (c->tls.key_file != NULL)) {
        client_free(c);
        return EF_EINVAL;
    }
    char terr[300];
    if (ef_tls_client_check(&c->tls, "client", terr, sizeof(terr)) != 0) { /* a file cannot be read */
        client_free(c);
        return EF_EIO;
    }
    size_t ul = strlen(c->url);
    while (ul > 0 && c->url[ul - 1] == '/') c->url[--ul] = '\0';
    c->ns = ef_bytes_of(c->ns_buf);
    c->on_change = o->on_change;
    c->userdata = o->userdata;
    c->timeout_ms = o->timeout_ms ? o->timeout_ms : 5000;
    c->poll_ms = o->poll_interval_ms ? o->poll_interval_ms : 10000;
    c->disable_stream = o->disable_stream;
    c->last_error = EF_OK;
    c->cache_status = EF_OK;
    if (c->cache_path) load_cache(c);
    if ((err = ef_replica_new(c, &c->replica)) != EF_OK) {
        client_free(c);
        return err;
    }
    if (pthread_create(&c->thread, NULL, ef_replica_main, c) != 0) {
        client_free(c);
        return EF_ETHREAD;
    }
    c->thread_started = true;
    *out = c;
    return EF_OK;
}

void ef_client_close(ef_client *c)
{
    if (!c) return;
    if (c->thread_started) {
        ef_replica_stop(c->replica);
        pthread_join(c->thread, NULL);
    }
    client_free(c);
}

int ef_client_wait(ef_client *c, uint64_t min_version, unsigned timeout_ms)
{
    if (!c) return EF_EINVAL;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int rc = EF_OK;
    pthread_mutex_lock(&c->mu);
    while (c->source == EF_SOURCE_NONE || c->version < min_version) {
        if (pthread_cond_timedwait(&c->cv, &c->mu, &until) != 0) {
            rc = (c->source != EF_SOURCE_NONE && c->version >= min_version) ? EF_OK : EF_ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int ef_client_error_text(ef_client *c, char *buf, size_t cap)
{
    if (!c || !buf || !cap) return EF_EINVAL;
    pthread_mutex_lock(&c->mu);
    snprintf(buf, cap, "%s", c->last_error == EF_OK ? "" : c->error_text);
    pthread_mutex_unlock(&c->mu);
    return EF_OK;
}

int ef_client_status(ef_client *c, ef_status *out)
{
    if (!c || !out) return EF_EINVAL;
    int64_t mono = ef_clock_mono_ns(), wall = ef_clock_wall_ns();
    pthread_mutex_lock(&c->mu);
    out->version = c->version;
    out->source = c->source;
    out->age_ms = c->source == EF_SOURCE_NODE    ? (mono - c->confirmed_mono_ns) / 1000000
                  : c->source == EF_SOURCE_CACHE ? (wall - c->saved_wall_ns) / 1000000
                                                 : -1;
    if (out->age_ms < -1) out->age_ms = 0; /* a cache file saved by a clock set ahead */
    out->connected = c->connected;
    out->streaming = c->streaming;
    out->flag_count = c->flag_count;
    out->last_error = c->last_error;
    out->cache_status = c->cache_status;
    out->updates = c->updates;
    pthread_mutex_unlock(&c->mu);
    return EF_OK;
}

/* ---- evaluation -------------------------------------------------------------------------------- */

static inline void keep_segments(ef_result *out, const ef_matched_segments *m)
{
    out->segment_count = ef_matched_count(m);
    out->priv_[1] = (void *)m->segs;
    out->priv_[2] = (void *)(uintptr_t)m->n;
    memcpy(out->priv_bits_, m->bits, sizeof(out->priv_bits_));
}

/* The request borrows the application's strings and pairs for the call (ef_request_borrow):
 * nothing is copied or hashed but the flag key, and a property lookup scans the pairs. An
 * application is the only one who can see them, so there are no hostile colliding keys to guard
 * against, and they stay put until the call returns. */
typedef struct lib_request {
    ef_eval_request req;
    ef_context head;
} lib_request;

static inline int request_of(lib_request *lr, const char *flag_key, const char *entity_id,
                             const ef_pair *ctx, size_t ctx_len)
{
    if (ctx_len > UINT32_MAX) return EF_ENOMEM;
    ef_request_borrow(&lr->req, &lr->head, ef_bytes_of(flag_key), ef_bytes_of(entity_id ? entity_id : ""),
                      (const ef_kv *)(const void *)ctx, ctx_len);
    return EF_OK;
}

/* Enters the read section and finds the snapshot; on success the section stays open. */
static inline int begin(ef_client *c, const char *flag_key, const char *entity_id,
                        const ef_pair *ctx, size_t ctx_len, lib_request *lr,
                        const ef_snapshot **snap)
{
    if (!c || !flag_key || (ctx_len && !ctx)) return EF_EINVAL;
    int rc = request_of(lr, flag_key, entity_id, ctx, ctx_len);
    if (rc != EF_OK) return rc;
    /* the namespace is looked up until it has a handle, then never again */
    const ef_ns_handle *h = __atomic_load_n(&c->nsh, __ATOMIC_ACQUIRE);
    if (!h && (h = ef_registry_handle(c->reg, c->ns))) __atomic_store_n(&c->nsh, h, __ATOMIC_RELEASE);
    ef_registry_enter(c->reg);
    *snap = h ? ef_ns_snapshot(h) : NULL;
    if (!*snap) {
        ef_registry_leave(c->reg);
        return EF_ENOSTATE;
    }
    return EF_OK;
}

static inline int eval_status(ef_client *c, ef_eval_status st)
{
    if (st == EF_EVAL_OK) return EF_OK;
    ef_registry_leave(c->reg);
    return st == EF_EVAL_NOT_FOUND ? EF_ENOTFOUND : EF_EWRONGTYPE;
}

int ef_client_variant(ef_client *c, const char *flag_key, const char *entity_id,
                      const ef_pair *ctx, size_t ctx_len, ef_result *out)
{
    if (!out) return EF_EINVAL;
    out->priv_[0] = NULL;
    lib_request lr;
    const ef_snapshot *s;
    int rc = begin(c, flag_key, entity_id, ctx, ctx_len, &lr, &s);
    if (rc != EF_OK) return rc;
    ef_variant_result r;
    ef_eval_status st = ef_eval_variant(s, &lr.req, &r); /* results point into the snapshot */
    if ((rc = eval_status(c, st)) != EF_OK) return rc;
    out->match = r.match;
    out->enabled = false;
    out->reason = (ef_result_reason)r.reason;
    out->variant_key = r.variant_key.p;
    out->variant_key_len = r.variant_key.n;
    out->attachment = r.has_attachment ? r.attachment.p : "";
    out->attachment_len = r.has_attachment ? r.attachment.n : 0;
    keep_segments(out, &r.segments);
    out->priv_[0] = c->reg;
    return EF_OK;
}

int ef_client_boolean(ef_client *c, const char *flag_key, const char *entity_id,
                      const ef_pair *ctx, size_t ctx_len, ef_result *out)
{
    if (!out) return EF_EINVAL;
    out->priv_[0] = NULL;
    lib_request lr;
    const ef_snapshot *s;
    int rc = begin(c, flag_key, entity_id, ctx, ctx_len, &lr, &s);
    if (rc != EF_OK) return rc;
    ef_boolean_result r;
    ef_eval_status st = ef_eval_boolean(s, &lr.req, &r); /* results point into the snapshot */
    if ((rc = eval_status(c, st)) != EF_OK) return rc;
    out->match = false;
    out->enabled = r.enabled;
    out->reason = (ef_result_reason)r.reason;
    out->variant_key = "";
    out->variant_key_len = 0;
    out->attachment = "";
    out->attachment_len = 0;
    keep_segments(out, &r.segments);
    out->priv_[0] = c->reg;
    return EF_OK;
}

const char *ef_result_segment(const ef_result *r, size_t i, size_t *len)
{
    if (!r || !r->priv_[0] || i >= r->segment_count) {
        if (len) *len = 0;
        return NULL;
    }
    ef_matched_segments m;
    m.segs = r->priv_[1];
    m.n = (uint32_t)(uintptr_t)r->priv_[2];
    memcpy(m.bits, r->priv_bits_, sizeof(m.bits));
    int idx = ef_matched_next(&m, 0);
    for (size_t k = 0; k < i && idx >= 0; k++) idx = ef_matched_next(&m, idx + 1);
    ef_bytes key = ef_matched_key(&m, idx);
    if (len) *len = key.n;
    return key.p;
}

void ef_result_release(ef_result *r)
{
    if (!r || !r->priv_[0]) return;
    ef_registry *reg = r->priv_[0];
    r->priv_[0] = NULL;
    ef_registry_leave(reg);
}
