/*
 * auth.c - static bearer tokens (see auth.h). Never logs or echoes a token; never compares one
 * with an early exit; never reads the database on a request; never decides a namespace from
 * anything but the route's declaration (ef_route.ns).
 */
#include "api/auth_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <urcu-bp.h>

#include "api/json_in.h"
#include "api/jwt.h"
#include "api/oidc.h"
#include "api/node.h"
#include "base/clock.h"
#include "base/cnum.h"
#include "base/sha256.h"
#include "base/tsan.h"
#include "eval/model.h"
#include "base/thread.h"

typedef struct token_entry {
    uint8_t hash[32];
    int64_t expires_ns;        /* 0 = never */
    ef_bytes ns;               /* scope; empty = all namespaces; in the table's arena */
    const ef_store_token *row; /* the whole row (for /auth/v1/self); in the table's arena */
    bool session;              /* an OIDC sign-in's session, not a static token */
    ef_bytes name, email, sub; /* sessions: the person's; in the table's arena */
} token_entry;

typedef struct token_table {
    struct rcu_head rcu;
    int *grace; /* the owner's read-section marker (base/tsan.h) */
    size_t n;
    token_entry *e; /* sorted by hash */
    ef_arena rows;  /* the rows as the store listed them: owns every byte the entries point to */
} token_table;

struct ef_auth {
    int grace;        /* TSan only: read sections release it, table reclaims acquire it */
    bool has_boot;    /* a bootstrap token is configured (not when JWT alone is required) */
    uint8_t boot[32];
    ef_auth_jwt *jwt; /* Flipt's jwt method, or NULL */
    ef_oidc *oidc;    /* Flipt's oidc method, or NULL */
    unsigned exclude; /* bit per ef_route_class */
    ef_store *store;
    token_table *table; /* read with acquire inside an RCU read section */
    pthread_mutex_t reload_mu;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    bool stopping;
    bool thread_started;
    pthread_t thread;
};

/* What a method recorded on an accepted request (auth_int.h). */
typedef ef_auth_identity identity;

static const identity bootstrap_identity = {
    .bootstrap = true, .id = {"bootstrap", 9}, .name = {"initial_bootstrap_token", 23}};

static void table_free(token_table *t)
{
    if (!t) return;
    free(t->e);
    ef_arena_free(&t->rows);
    free(t);
}

static void table_reclaim(struct rcu_head *h)
{
    token_table *t = caa_container_of(h, token_table, rcu);
    TSAN_ACQUIRE(t);        /* the reload that retired it (call_rcu's queue) */
    TSAN_ACQUIRE(t->grace); /* every reader that could see it has left */
    table_free(t);
}

static int cmp_entry(const void *a, const void *b)
{
    return memcmp(((const token_entry *)a)->hash, ((const token_entry *)b)->hash, 32);
}

/* Decodes a stored 43-character hash (base64url without padding, as Flipt stores them). */
static bool hash_decode(ef_bytes s, uint8_t out[32])
{
    uint8_t tmp[33];
    size_t n;
    if (s.n != 43 || !ef_b64url_decode(s.p, s.n, tmp, &n) || n != 32) return false;
    memcpy(out, tmp, 32);
    return true;
}

/* An OIDC session row: its metadata names the provider (a key POST /auth/v1/method/token refuses,
 * so only a sign-in makes one). name and email come from the metadata (table's arena). */
static bool session_row(const ef_store_token *t, ef_arena *arena, ef_bytes *name, ef_bytes *email, ef_bytes *sub)
{
    if (!t->metadata.n) return false;
    ef_json_error je;
    const ef_json *m = ef_json_parse(t->metadata.p, t->metadata.n, arena, NULL, &je);
    if (!m || m->type != EF_JSON_OBJECT || !ef_json_get(m, "io.flipt.auth.oidc.provider")) return false;
    *name = ef_jwt_claim_str(m, "io.flipt.auth.oidc.name");
    *email = ef_jwt_claim_str(m, "io.flipt.auth.oidc.email");
    *sub = ef_jwt_claim_str(m, "io.flipt.auth.oidc.sub");
    return true;
}

bool ef_auth_row_is_session(const ef_store_token *t)
{
    ef_arena scratch;
    ef_arena_init(&scratch, 1024);
    ef_bytes nm, em, sub;
    bool session = session_row(t, &scratch, &nm, &em, &sub);
    ef_arena_free(&scratch);
    return session;
}

int ef_auth_reload(ef_auth *a)
{
    if (!a->store) return 0;
    pthread_mutex_lock(&a->reload_mu);
    ef_store_token *toks;
    size_t n;
    ef_store_page_out po;
    ef_store_page page = {0};
    ef_store_err err;
    int rc = -1;
    token_table *t = calloc(1, sizeof(*t));
    if (!t) goto out;
    ef_arena_init(&t->rows, 4096);
    t->grace = &a->grace;
    if (ef_store_token_list(a->store, &page, &t->rows, &toks, &n, &po, &err) != 0) goto out;
    if (!(t->e = calloc(n ? n : 1, sizeof(token_entry)))) goto out;
    for (size_t i = 0; i < n; i++) {
        token_entry *e = &t->e[t->n];
        if (!hash_decode(toks[i].hashed, e->hash)) continue;
        e->expires_ns = toks[i].expires_ns;
        e->ns = toks[i].namespace_key;
        e->row = &toks[i];
        e->session = session_row(&toks[i], &t->rows, &e->name, &e->email, &e->sub);
        if (!e->session) e->name = toks[i].name;
        t->n++;
    }
    qsort(t->e, t->n, sizeof(token_entry), cmp_entry);
    token_table *old = __atomic_exchange_n(&a->table, t, __ATOMIC_ACQ_REL);
    t = NULL;
    if (old) {
        TSAN_RELEASE(old);
        call_rcu(&old->rcu, table_reclaim);
    }
    rc = 0;
out:
    table_free(t);
    pthread_mutex_unlock(&a->reload_mu);
    return rc;
}

/* Picks up tokens created or revoked on other nodes (they arrive through replication). */
static void *reload_loop(void *p)
{
    ef_thread_name("ef-auth-reload");
    ef_auth *a = p;
    pthread_mutex_lock(&a->stop_mu);
    while (!a->stopping) {
        /* on the monotonic clock (stop_cv is made for it): a wall-clock deadline, computed just
         * before the clock stepped back, held the reload for the length of the step, and a token
         * revoked on another node kept working here meanwhile */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&a->stop_cv, &a->stop_mu, &ts);
        if (a->stopping) break;
        pthread_mutex_unlock(&a->stop_mu);
        ef_auth_reload(a);
        pthread_mutex_lock(&a->stop_mu);
    }
    pthread_mutex_unlock(&a->stop_mu);
    return NULL;
}

ef_auth *ef_auth_new(const char *token, const char *exclude, ef_store *store, char *err, size_t errlen)
{
    if (token && !*token) {
        snprintf(err, errlen, "authentication needs a non-empty token");
        return NULL;
    }
    ef_auth *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (token) {
        a->has_boot = true;
        ef_sha256(token, strlen(token), a->boot);
    }
    a->store = store;
    pthread_mutex_init(&a->reload_mu, NULL);
    pthread_mutex_init(&a->stop_mu, NULL);
    ef_cond_init_monotonic(&a->stop_cv); /* reload_loop's deadlines */
    const char *p = exclude ? exclude : "";
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 10 && !strncmp(p, "management", n))
            a->exclude |= 1u << EF_ROUTE_MANAGEMENT;
        else if (n == 10 && !strncmp(p, "evaluation", n))
            a->exclude |= 1u << EF_ROUTE_EVALUATION;
        else if (n == 5 && !strncmp(p, "ofrep", n))
            a->exclude |= 1u << EF_ROUTE_OFREP;
        else if (n) {
            snprintf(err, errlen, "unknown authentication exclude '%.*s' (management, evaluation, ofrep)", (int)n, p);
            ef_auth_free(a);
            return NULL;
        }
        p += n + (comma ? 1 : 0);
    }
    if (store) {
        if (ef_auth_reload(a) != 0) {
            snprintf(err, errlen, "cannot load tokens from the store");
            ef_auth_free(a);
            return NULL;
        }
        a->thread_started = pthread_create(&a->thread, NULL, reload_loop, a) == 0;
    }
    return a;
}

void ef_auth_drain(ef_auth *a, unsigned wait_ms)
{
    if (a) ef_oidc_drain(a->oidc, wait_ms); /* the only method that suspends requests */
}

void ef_auth_free(ef_auth *a)
{
    if (!a) return;
    if (a->thread_started) {
        pthread_mutex_lock(&a->stop_mu);
        a->stopping = true;
        pthread_cond_signal(&a->stop_cv);
        pthread_mutex_unlock(&a->stop_mu);
        pthread_join(a->thread, NULL);
    }
    ef_auth_jwt_free(a->jwt);
    ef_oidc_free(a->oidc);
    rcu_barrier();
    table_free(a->table);
    pthread_mutex_destroy(&a->reload_mu);
    pthread_mutex_destroy(&a->stop_mu);
    pthread_cond_destroy(&a->stop_cv);
    free(a);
}

/* Finds a live created token by hash; call inside an RCU read section. */
static const token_entry *table_find(token_table *t, const uint8_t h[32])
{
    if (!t) return NULL;
    token_entry key;
    memcpy(key.hash, h, 32);
    const token_entry *e = bsearch(&key, t->e, t->n, sizeof(token_entry), cmp_entry);
    if (!e || !ef_ct_equal(e->hash, h, 32)) return NULL;
    if (e->expires_ns != 0 && e->expires_ns <= ef_clock_wall_ns()) return NULL;
    return e;
}

/* A copy in arena ({NULL, 0} when memory ran out; empty bytes stay empty without allocating). */
static ef_bytes arena_copy(ef_arena *arena, ef_bytes b)
{
    if (!b.n) return (ef_bytes){"", 0};
    char *c = ef_arena_memdup(arena, b.p, b.n);
    return (ef_bytes){c, c ? b.n : 0};
}

/* Checks a token: true when it is valid now. With out, also records its identity there
 * (allocated in arena; the bootstrap token's is static); false if memory ran out. */
static bool check(ef_auth *a, const char *token, ef_arena *arena, const identity **out)
{
    uint8_t h[32];
    ef_sha256(token, strlen(token), h);
    if (a->has_boot && ef_ct_equal(h, a->boot, 32)) {
        if (out) *out = &bootstrap_identity;
        return true;
    }
    bool ok = false;
    rcu_read_lock();
    const token_entry *e = table_find(__atomic_load_n(&a->table, __ATOMIC_ACQUIRE), h);
    /* a session whose email email_matches no longer admits acts no more (as Flipt) */
    if (e && e->session && !ef_oidc_email_allowed(ef_auth_oidc(a), e->email)) e = NULL;
    if (e && !out) {
        ok = true;
    } else if (e) { /* copied: the table may be freed once the read section ends */
        identity *id = ef_arena_calloc(arena, sizeof(*id));
        ef_bytes row_id = arena_copy(arena, e->row->id), ns = arena_copy(arena, e->ns);
        ef_bytes name = arena_copy(arena, e->name), email = arena_copy(arena, e->email);
        ef_bytes sub = arena_copy(arena, e->sub);
        if (id && row_id.p && ns.p && name.p && email.p && sub.p) {
            /* a session's actor is the person (their subject), a token's is the token */
            *id = (identity){.method = e->session ? EF_AUTH_OIDC : EF_AUTH_TOKEN,
                             .id = e->session ? sub : row_id, .row_id = row_id,
                             .name = name, .email = email, .ns = ns};
            memcpy(id->hash, h, 32);
            *out = id;
            ok = true;
        }
    }
    TSAN_RELEASE(&a->grace);
    rcu_read_unlock();
    return ok;
}

bool ef_auth_token_valid(ef_auth *a, const char *token)
{
    if (a->jwt && ef_auth_looks_like_jwt(token)) {
        ef_arena arena;
        ef_arena_init(&arena, 4096);
        const identity *id;
        bool ok = ef_auth_jwt_check(a->jwt, token, &arena, &id);
        ef_arena_free(&arena);
        return ok;
    }
    return check(a, token, NULL, NULL);
}

ef_oidc *ef_auth_oidc(ef_auth *a)
{
    return a->oidc;
}

int ef_auth_enable_oidc(ef_auth *a, const ef_oidc_config *c, char *err, size_t errlen)
{
    if (a->oidc) {
        snprintf(err, errlen, "oidc: already enabled");
        return -1;
    }
    if (!a->store) {
        snprintf(err, errlen, "oidc: sessions need a database (--db), not a read-only source");
        return -1;
    }
    return (a->oidc = ef_oidc_new(c, err, errlen)) ? 0 : -1;
}

int ef_auth_enable_jwt(ef_auth *a, const ef_auth_jwt_config *c, char *err, size_t errlen)
{
    if (a->jwt) {
        snprintf(err, errlen, "jwt: already enabled");
        return -1;
    }
    return (a->jwt = ef_auth_jwt_new(c, err, errlen)) ? 0 : -1;
}

/* The credential of an Authorization header: `Bearer X` is a static token, or a JWT when X has a
 * JWT's shape and the jwt method is on; `JWT X` is a JWT (Flipt's scheme). Scheme names are
 * case-insensitive (RFC 9110). Returns false when the request carries none it may use. */
/* A browser session: the flipt_client_token cookie (only when the oidc method is on, and only an
 * OIDC session's token: a static token is never taken from a cookie). A write (any method but
 * GET/HEAD/OPTIONS) must carry the session's CSRF token in X-CSRF-Token: a page of another site
 * can make the browser send the cookie, it cannot read the token. Returns 1 accepted, 0 no
 * session, -1 refused for CSRF (answered 403). */
static int cookie_session(ef_auth *a, ef_http_req *req, const identity **out)
{
    char t[128];
    if (!a->oidc || !ef_oidc_cookie(req, "flipt_client_token", t, sizeof(t)) || !*t) return 0;
    const identity *id = NULL;
    if (!check(a, t, ef_http_arena(req), &id) || id->method != EF_AUTH_OIDC) return 0;
    ef_http_method m = ef_http_method_of(req);
    if (m != EF_GET && m != EF_HEAD && m != EF_OPTIONS) {
        char want[44];
        ef_oidc_csrf_of(t, want);
        const char *got = ef_http_header(req, "X-CSRF-Token");
        if (!got || strlen(got) != 43 || !ef_ct_equal((const uint8_t *)got, (const uint8_t *)want, 43)) {
            ef_http_error(req, 403, 7, "CSRF token missing or invalid: send X-CSRF-Token as GET /auth/v1/self gave it");
            return -1;
        }
    }
    identity *c = ef_arena_alloc(ef_http_arena(req), sizeof(*c));
    if (!c) return 0;
    *c = *id;
    c->via_cookie = true;
    *out = c;
    return 1;
}

static bool authenticate(ef_auth *a, ef_http_req *req, const identity **id)
{
    const char *h = ef_http_header(req, "Authorization");
    if (!h) return false;
    bool jwt_scheme = strncasecmp(h, "JWT ", 4) == 0;
    if (!jwt_scheme && strncasecmp(h, "Bearer ", 7) != 0) return false;
    const char *t = h + (jwt_scheme ? 4 : 7);
    while (*t == ' ') t++;
    if (!*t) return false;
    if (jwt_scheme || (a->jwt && ef_auth_looks_like_jwt(t)))
        return a->jwt && ef_auth_jwt_check(a->jwt, t, ef_http_arena(req), id);
    return check(a, t, ef_http_arena(req), id);
}

/* Flipt answers a request outside a token's scope exactly as one without a valid token
 * (Unauthenticated), so a scoped token cannot even learn which namespaces exist. */
static void refuse(ef_http_req *req)
{
    ef_http_error(req, 401, 16, "request was not authenticated");
}

bool ef_auth_namespace_allowed(ef_http_req *req, ef_bytes ns)
{
    const identity *id = ef_http_user(req);
    if (!id || id->ns.n == 0 || ef_bytes_eq(id->ns, ef_api_namespace(ns))) return true;
    refuse(req);
    return false;
}

ef_bytes ef_auth_token_id(const ef_http_req *req)
{
    const identity *id = ef_http_user(req);
    return id ? id->id : (ef_bytes){"", 0};
}

void ef_auth_actor(const ef_http_req *req, ef_actor *out)
{
    const identity *id = ef_http_user(req);
    if (!id) {
        *out = (ef_actor){.method = "none", .id = {"", 0}, .name = EF_BYTES_LIT("anonymous"),
                          .email = {"", 0}};
        return;
    }
    static const char *const methods[] = {[EF_AUTH_TOKEN] = "token", [EF_AUTH_JWT] = "jwt", [EF_AUTH_OIDC] = "oidc"};
    *out = (ef_actor){.method = methods[id->method], .id = id->id, .name = id->name, .email = id->email};
}

bool ef_auth_still_valid(ef_auth *a, const ef_http_req *req)
{
    const identity *id = ef_http_user(req);
    if (!id || id->bootstrap) return true; /* an open route, or the configured token */
    if (id->method == EF_AUTH_JWT) return !id->expires_s || ef_clock_wall_ns() / 1000000000 < id->expires_s;
    rcu_read_lock();
    const token_entry *e = table_find(__atomic_load_n(&a->table, __ATOMIC_ACQUIRE), id->hash);
    if (e && e->session && !ef_oidc_email_allowed(ef_auth_oidc(a), e->email)) e = NULL;
    bool ok = e != NULL;
    TSAN_RELEASE(&a->grace);
    rcu_read_unlock();
    return ok;
}

bool ef_auth_allow(ef_auth *a, ef_http_req *req)
{
    const ef_route *r = ef_http_route(req);
    if (!r || r->cls == EF_ROUTE_OPEN) return true;
    if (a->exclude & (1u << r->cls)) return true;
    const identity *id = NULL;
    if (!ef_http_header(req, "Authorization")) {
        if (cookie_session(a, req, &id) < 0) return false; /* answered: CSRF */
    } else if (!authenticate(a, req, &id)) {
        id = NULL;
    }
    if (!id) {
        refuse(req);
        return false;
    }
    ef_http_set_user(req, id);
    if (id->ns.n == 0) return true;
    /* A scoped token: the namespace comes from where the route says, nowhere else. */
    switch (r->ns) {
    case EF_NS_PATH:
        return ef_auth_namespace_allowed(req, ef_http_param(req, r->ns_param));
    case EF_NS_HEADER: {
        const char *ns = ef_http_header(req, "X-Flipt-Namespace");
        return ef_auth_namespace_allowed(req, ns ? ef_bytes_of(ns) : (ef_bytes){"", 0});
    }
    case EF_NS_BODY:
        return true; /* only the handler can read it: it calls ef_auth_namespace_allowed */
    case EF_NS_NONE:
        break;
    }
    /* Routes about no single namespace (listing or creating namespaces, tokens, /auth/v1/self,
     * meta, cluster, the replication feed): Flipt refuses scoped tokens on them. */
    refuse(req);
    return false;
}

/* ---- /auth/v1 routes ---------------------------------------------------------------------- */

static void put_authentication(ef_buf *out, const ef_store_token *t)
{
    char ts[EF_RFC3339_MAX];
    ef_arena scratch;
    ef_arena_init(&scratch, 1024);
    ef_bytes nm, em, sub;
    bool session = session_row(t, &scratch, &nm, &em, &sub);
    ef_arena_free(&scratch);
    ef_buf_puts(out, "{\"id\":");
    ef_json_put_str(out, t->id);
    ef_buf_puts(out, session ? ",\"method\":\"METHOD_OIDC\",\"expiresAt\":" : ",\"method\":\"METHOD_TOKEN\",\"expiresAt\":");
    if (t->expires_ns) {
        ef_rfc3339_format(t->expires_ns, ts);
        ef_buf_printf(out, "\"%s\"", ts);
    } else {
        ef_buf_puts(out, "null");
    }
    ef_rfc3339_format(t->created_ns, ts);
    ef_buf_printf(out, ",\"createdAt\":\"%s\"", ts);
    ef_rfc3339_format(t->updated_ns, ts);
    if (session) { /* Flipt's OIDC metadata, as the sign-in stored it */
        ef_buf_printf(out, ",\"updatedAt\":\"%s\",\"metadata\":", ts);
        ef_buf_append(out, t->metadata.p, t->metadata.n);
        ef_buf_putc(out, '}');
        return;
    }
    ef_buf_printf(out, ",\"updatedAt\":\"%s\",\"metadata\":{\"io.flipt.auth.token.name\":", ts);
    ef_json_put_str(out, t->name);
    ef_buf_puts(out, ",\"io.flipt.auth.token.description\":");
    ef_json_put_str(out, t->description);
    if (t->namespace_key.n) {
        ef_buf_puts(out, ",\"io.flipt.auth.token.namespace\":");
        ef_json_put_str(out, t->namespace_key);
    }
    ef_buf_puts(out, "}}");
}

static bool need_store(ef_http_req *req, ef_node *node)
{
    if (node->store) return true;
    ef_http_error(req, 500, 12, "not implemented: tokens need a database");
    return false;
}

/* An expiresAt field (RFC 3339, to the second) as nanoseconds; answers 400 and returns false when
 * it is not one or lies outside what an int64 of nanoseconds holds. */
static bool expires_parse(ef_http_req *req, ef_bytes expires, int64_t *out)
{
    int64_t secs;
    int32_t nanos;
    /* RFC 3339 with its offset applied (strptime and timegm once ignored "+02:00"); a 'T' between
     * date and time, as protobuf's JSON (Go's time.RFC3339) requires, not chrono's ' ' or 't'.
     * The fraction is kept, as Flipt's Timestamp keeps it: dropped, a token asked to expire in
     * one second could be refused as already expired. */
    if (expires.n <= 10 || expires.p[10] != 'T' || !ef_rfc3339_parse_ns(expires, &secs, &nanos)) {
        ef_http_bad_request(req, "invalid field expiresAt: not an RFC 3339 time");
        return false;
    }
    if (secs >= INT64_MAX / 1000000000LL || secs < INT64_MIN / 1000000000LL) { /* UB past it */
        ef_http_bad_request(req, "invalid field expiresAt: outside 1678-2262, the times this server can hold");
        return false;
    }
    *out = secs * 1000000000LL + nanos;
    return true;
}

/* POST /auth/v1/method/token {name, description, expiresAt, namespaceKey, metadata} */
static void on_create_token(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    if (!need_store(req, node)) return;
    const ef_json *body = ef_api_body_json(req);
    if (!body) return;
    ef_store_token in = {0};
    ef_bytes expires = {"", 0};
    ef_jin_err je;
    bool present;
    if (!ef_jin_str(body, "name", &in.name, &present, &je) ||
        !ef_jin_str(body, "description", &in.description, &present, &je) ||
        !ef_jin_str(body, "expiresAt", &expires, &present, &je) ||
        !ef_jin_str(body, "namespaceKey", &in.namespace_key, &present, &je)) {
        ef_http_bad_request(req, "%s", je.message);
        return;
    }
    const ef_json *md = ef_jin_field(body, "metadata");
    ef_buf mdb;
    ef_buf_init(&mdb);
    if (!ef_json_is_null(md)) {
        if (md->type != EF_JSON_OBJECT) {
            ef_http_bad_request(req, "invalid field metadata: must be an object");
            return;
        }
        for (const ef_json *k = md->child; k; k = k->next)
            if (ef_bytes_has_prefix(k->key, EF_BYTES_LIT("io.flipt.auth.oidc."))) {
                ef_http_bad_request(req, "invalid field metadata: io.flipt.auth.oidc.* keys are set by OIDC sign-in only");
                return;
            }
        ef_jin_write_compact(&mdb, md);
        char *c = ef_arena_memdup(ef_http_arena(req), mdb.data ? mdb.data : "", mdb.len);
        in.metadata = (ef_bytes){c, mdb.len};
        ef_buf_free(&mdb);
    }
    if (expires.n) {
        if (!expires_parse(req, expires, &in.expires_ns)) return;
        if (in.expires_ns <= ef_clock_wall_ns()) {
            ef_http_bad_request(req, "invalid field expiresAt: must be in the future");
            return;
        }
    }
    uint8_t raw[32], h[32];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        ef_http_error(req, 500, 13, "no randomness available");
        return;
    }
    char token[48], hashed[48];
    ef_b64url_encode(raw, sizeof(raw), token);
    ef_sha256(token, strlen(token), h);
    ef_b64url_encode(h, sizeof(h), hashed);
    in.hashed = ef_bytes_of(hashed);
    ef_store_token out;
    ef_store_err err;
    if (ef_store_token_create(node->store, &in, ef_http_arena(req), &out, &err) != 0) {
        ef_api_store_error(req, &err);
        return;
    }
    ef_buf *o = ef_http_out(req);
    ef_buf_puts(o, "{\"clientToken\":");
    ef_json_put_cstr(o, token);
    ef_buf_puts(o, ",\"authentication\":");
    put_authentication(o, &out);
    ef_buf_putc(o, '}');
    ef_http_reply(req, 200);
}

static void on_list_tokens(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    if (!need_store(req, node)) return;
    ef_store_page page = {0};
    const char *l = ef_http_query(req, "limit");
    const char *pt = ef_http_query(req, "pageToken");
    uint64_t lim = 0;
    if (l && *l && (!ef_parse_u64(l, &lim) || lim > INT32_MAX)) {
        ef_http_bad_request(req, "invalid value for query parameter limit: \"%.64s\" is not a 32-bit integer", l);
        return;
    }
    page.limit = (int32_t)lim;
    if (pt) page.page_token = ef_bytes_of(pt);
    ef_store_token *toks;
    size_t n;
    ef_store_page_out po = {0};
    ef_store_err err;
    if (ef_store_token_list(node->store, &page, ef_http_arena(req), &toks, &n, &po, &err) != 0) {
        ef_api_store_error(req, &err);
        return;
    }
    ef_buf *o = ef_http_out(req);
    ef_buf_puts(o, "{\"authentications\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) ef_buf_putc(o, ',');
        put_authentication(o, &toks[i]);
    }
    ef_buf_puts(o, "],\"nextPageToken\":");
    ef_json_put_str(o, po.next_page_token);
    ef_buf_putc(o, '}');
    ef_http_reply(req, 200);
}

static void on_get_token(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    if (!need_store(req, node)) return;
    ef_bytes id = ef_http_param(req, "id");
    ef_store_page page = {0};
    ef_store_token *toks;
    size_t n;
    ef_store_page_out po;
    ef_store_err err;
    if (ef_store_token_list(node->store, &page, ef_http_arena(req), &toks, &n, &po, &err) != 0) {
        ef_api_store_error(req, &err);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (ef_bytes_eq(toks[i].id, id)) {
            put_authentication(ef_http_out(req), &toks[i]);
            ef_http_reply(req, 200);
            return;
        }
    ef_http_not_found(req, "authentication \"%.*s\" not found", (int)id.n, id.p);
}

static void on_delete_token(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    if (!need_store(req, node)) return;
    ef_store_err err;
    if (ef_store_token_delete(node->store, ef_http_param(req, "id"), &err) != 0) {
        ef_api_store_error(req, &err);
        return;
    }
    ef_buf_puts(ef_http_out(req), "{}");
    ef_http_reply(req, 200);
}

static void on_methods(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    bool token = node->auth && node->auth->has_boot, jwt = node->auth && node->auth->jwt;
    ef_oidc *oidc = node->auth ? node->auth->oidc : NULL;
    ef_buf *out = ef_http_out(req);
    ef_buf_printf(out,
                  "{\"methods\":[{\"method\":\"METHOD_TOKEN\",\"enabled\":%s,\"sessionCompatible\":false,"
                  "\"metadata\":null},{\"method\":\"METHOD_OIDC\",\"enabled\":%s,\"sessionCompatible\":true,"
                  "\"metadata\":",
                  token ? "true" : "false", oidc ? "true" : "false");
    if (oidc)
        ef_oidc_put_method_metadata(oidc, out);
    else
        ef_buf_puts(out, "null");
    ef_buf_printf(out, "},{\"method\":\"METHOD_JWT\",\"enabled\":%s,\"sessionCompatible\":false,\"metadata\":null}]}",
                  jwt ? "true" : "false");
    ef_http_reply(req, 200);
}

/* GET /auth/v1/self: the authentication of the calling token, as GET /auth/v1/tokens/{id} shows
 * it. Without a valid token (or with authentication off) there is no caller: 401, as Flipt. */
static void on_self(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    const identity *id = ef_http_user(req);
    if (!node->auth || !id) {
        refuse(req);
        return;
    }
    if (id->method == EF_AUTH_JWT) {
        ef_auth_jwt_put_self(ef_http_out(req), id);
        ef_http_reply(req, 200);
        return;
    }
    if (id->bootstrap) {
        /* The configured token has no row: a fixed identity, named as Flipt names its own. */
        ef_store_token boot = {
            .id = id->id,
            .name = EF_BYTES_LIT("initial_bootstrap_token"),
            .description = EF_BYTES_LIT("Initial token created when bootstrapping authentication"),
            .created_ns = node->started_ns,
            .updated_ns = node->started_ns,
        };
        put_authentication(ef_http_out(req), &boot);
        ef_http_reply(req, 200);
        return;
    }
    bool found = false;
    rcu_read_lock();
    const token_entry *e = table_find(__atomic_load_n(&node->auth->table, __ATOMIC_ACQUIRE), id->hash);
    if (e) { /* written while the row is pinned; revoked since the check: no longer anyone */
        put_authentication(ef_http_out(req), e->row);
        found = true;
    }
    TSAN_RELEASE(&node->auth->grace);
    rcu_read_unlock();
    if (!found) {
        refuse(req);
        return;
    }
    if (id->via_cookie) { /* the page learns its session's CSRF token here (it cannot read the cookie) */
        char t[128], csrf[44];
        if (ef_oidc_cookie(req, "flipt_client_token", t, sizeof(t))) {
            ef_oidc_csrf_of(t, csrf);
            ef_http_add_header(req, "X-CSRF-Token", csrf);
        }
        ef_http_add_header(req, "Cache-Control", "no-store");
    }
    ef_http_reply(req, 200);
}

/* The body's expiresAt (now when absent); false after answering 400. */
static bool read_expiry(ef_http_req *req, int64_t *at)
{
    const ef_json *body = ef_api_body_json(req);
    if (!body) return false;
    ef_bytes expires = {"", 0};
    ef_jin_err je;
    bool present;
    if (!ef_jin_str(body, "expiresAt", &expires, &present, &je)) {
        ef_http_bad_request(req, "%s", je.message);
        return false;
    }
    *at = ef_clock_wall_ns();
    return !expires.n || expires_parse(req, expires, at);
}

/* Expires stored token id at `at` and answers {}. */
static void expire_token(ef_http_req *req, ef_node *node, ef_bytes id, int64_t at)
{
    if (!need_store(req, node)) return;
    ef_store_err err;
    if (ef_store_token_expire(node->store, id, at, &err) != 0) {
        ef_api_store_error(req, &err);
        return;
    }
    ef_buf_puts(ef_http_out(req), "{}");
    ef_http_reply(req, 200);
}

/* PUT /auth/v1/self/expire {expiresAt?}: expires the calling token, now or at expiresAt (Flipt's
 * ExpireAuthenticationSelf). The configured bootstrap token has no row to expire: it lives in the
 * server's configuration, so it is refused with a clear error rather than pretending. */
static void on_self_expire(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    const identity *id = ef_http_user(req);
    if (!node->auth || !id) {
        refuse(req);
        return;
    }
    int64_t at;
    if (!read_expiry(req, &at)) return;
    if (id->method == EF_AUTH_JWT) {
        ef_http_error(req, 400, 9, "a JWT is not stored here: it expires at its exp claim");
        return;
    }
    if (id->bootstrap) {
        ef_http_error(req, 400, 9,
                      "the bootstrap token is configured (--auth-token), not stored: it cannot be expired");
        return;
    }
    /* a browser signing out: its cookie goes too (sent with the answer, whatever the store says) */
    if (id->via_cookie && node->auth->oidc) ef_oidc_set_session_cookie(node->auth->oidc, req, NULL);
    expire_token(req, node, id->row_id.n ? id->row_id : id->id, at);
}

/* PUT /auth/v1/tokens/{id}/expire {expiresAt?}: expires another token, now or at expiresAt (an
 * edgeflag route for the web UI's tokens page; Flipt v1 expires only the caller's own). The row
 * stays listed with its expiresAt, unlike DELETE. */
static void on_token_expire(ef_http_req *req, void *ctx)
{
    int64_t at;
    if (read_expiry(req, &at)) expire_token(req, ctx, ef_http_param(req, "id"), at);
}

int ef_api_register_auth(ef_router *r, ef_node *node)
{
    /* Tokens are about every namespace (EF_NS_NONE): a scoped token may use none of these, as
     * Flipt's authentication service refuses scoped tokens. Token rows replicate like any other:
     * creating and revoking are writes, reading them reads the node's state. */
#define AUTH_ROUTE(m, p, f, fl)                                                                    \
    (&(ef_route){.methods = (m), .pattern = (p), .fn = (f), .ctx = node, .cls = EF_ROUTE_AUTH,     \
                 .flags = (fl)})
    int rc = 0;
    rc |= ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/auth/v1/method",
                                             .fn = on_methods, .ctx = node, .cls = EF_ROUTE_OPEN});
    rc |= ef_router_add_route(r, AUTH_ROUTE(EF_GET, "/auth/v1/self", on_self, 0));
    /* OIDC sign-in: open (the caller has no credential yet); the callback writes the session */
    rc |= ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/auth/v1/method/oidc/{provider}/authorize",
                                             .fn = ef_oidc_on_authorize, .ctx = node, .cls = EF_ROUTE_OPEN});
    rc |= ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/auth/v1/method/oidc/{provider}/callback",
                                             .fn = ef_oidc_on_callback, .ctx = node, .cls = EF_ROUTE_OPEN});
    rc |= ef_router_add_route(r, AUTH_ROUTE(EF_PUT, "/auth/v1/self/expire", on_self_expire, EF_RF_WRITE));
    rc |= ef_router_add_route(r, AUTH_ROUTE(EF_POST, "/auth/v1/method/token", on_create_token, EF_RF_WRITE));
    rc |= ef_router_add_route(r, AUTH_ROUTE(EF_GET, "/auth/v1/tokens", on_list_tokens, EF_RF_STATE));
    rc |= ef_router_add_route(r, AUTH_ROUTE(EF_GET, "/auth/v1/tokens/{id}", on_get_token, EF_RF_STATE));
    rc |= ef_router_add_route(r, AUTH_ROUTE(EF_DELETE, "/auth/v1/tokens/{id}", on_delete_token, EF_RF_WRITE));
    rc |= ef_router_add_route(r, AUTH_ROUTE(EF_PUT, "/auth/v1/tokens/{id}/expire", on_token_expire, EF_RF_WRITE));
    rc |= ef_router_add_route(r, AUTH_ROUTE(EF_GET, "/auth/v1/authentications", on_list_tokens, EF_RF_STATE));
    rc |= ef_router_add_route(r, AUTH_ROUTE(EF_GET, "/auth/v1/authentications/{id}", on_get_token, EF_RF_STATE));
    rc |= ef_router_add_route(r, AUTH_ROUTE(EF_DELETE, "/auth/v1/authentications/{id}", on_delete_token,
                                            EF_RF_WRITE));
#undef AUTH_ROUTE
    return rc;
}
