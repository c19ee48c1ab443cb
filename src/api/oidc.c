/*
 * oidc.c - OpenID Connect sign-in for people (see oidc.h). It must never create a session without
 * a matching state cookie, a code the provider exchanged, and an ID token whose signature,
 * issuer, audience, time and nonce were checked; never put a session token anywhere but an
 * HttpOnly cookie; never let a request other than a callback wait on the provider, nor a callback
 * hold a server thread while it does.
 *
 * The code exchange: the callback checks what it can alone (provider, state cookie, code, the
 * address's pace), takes one of MAX_EXCHANGES slots, suspends its request (ef_http_suspend) and
 * hands the slot to the exchange thread. That thread runs every exchange at once on one libcurl
 * multi handle and checks the answer (ID token: signature, claims, nonce; email_matches). A
 * refusal is answered from there and the request resumed with it; a success leaves the session's
 * fields in the slot and resumes the request unanswered, so it is dispatched again and the
 * callback, on a server thread, collects them and writes the session as before. One thread on a
 * multi handle rather than a pool of blocking fetches: waiting is all an exchange does, so one
 * thread waits on all of them, a stop ends a transfer by removing it from the handle (a blocking
 * fetch ends only at its next progress callback), and the store write, the one step that may
 * block, stays on the server thread where the server's stop waits for it.
 *
 * Stopping. The server stops after its grace whether or not suspended requests were answered, and
 * a request it freed must not be answered later: so the composition root drains us between
 * ef_http_server_quiesce and ef_http_server_stop (ef_oidc_drain, through ef_auth_drain), as it
 * drains sync's waits. The drain marks us draining and wakes the thread, which ends every transfer
 * and answers its request 503 (the code may or may not have been redeemed; the state is used up,
 * so the browser signs in again); the drain returns once no request is held. Nothing polls: the
 * thread sleeps in curl_multi_poll until a transfer has something to do (libcurl shortens the
 * wait to its own timers), or a queued exchange, a drain or ef_oidc_free wakes it.
 */
#include "api/oidc.h"

#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "api/auth_int.h"
#include "api/fetch.h"
#include "api/jwks.h"
#include "api/jwt.h"
#include "api/node.h"
#include "base/clock.h"
#include "base/cookie.h"
#include "base/log.h"
#include "base/hash.h"
#include "base/sha256.h"
#include "base/thread.h"

#define STATE_COOKIE "flipt_client_state"
#define TOKEN_COOKIE "flipt_client_token"
/* Code exchanges at once (more get 503, Retry-After: 1). An exchange holds no server thread (see
 * above), so this no longer guards evaluations; it bounds what anyone can make the node ask of
 * the provider at once (a state cookie of one's own and a made-up code start an exchange) and
 * the memory that takes (an answer of up to 1 MiB each). 16: people sign in a few a second at
 * most and an exchange is a round trip, while an attacker needs 16 exchanges in flight, each
 * from an address of its own past the burst, to turn sign-ins away.
 * One client address starts at most one a second after a burst of PACE_BURST (by a hash of the
 * address into PACE_SLOTS: two addresses may share a pace; people behind one proxy share its
 * address): a single attacker looping on made-up codes held the one slot there was all the time,
 * and every real sign-in got 503. A browser's state cookie is used up only once its exchange
 * starts, so a sign-in turned away with 503 succeeds when it retries. */
#define MAX_EXCHANGES 16
#define EXCHANGE_TIMEOUT_MS 5000
/* The longest the exchange thread sleeps. It has no reason of its own to wake: libcurl shortens
 * the wait to its transfers' next timer, and a queued exchange, ef_oidc_drain and ef_oidc_free
 * wake it (curl_multi_wakeup). So an idle node, or one whose exchanges wait on a slow provider,
 * is not woken for nothing; the figure only has to be finite. */
#define WAIT_MS (3600 * 1000)
/* How long a successful exchange waits for its request to come back for the session: a client
 * that left as its request was resumed never does, and its slot is taken back after this. */
#define COLLECT_MS 10000
#define PACE_SLOTS 1024
#define PACE_NS 1000000000LL
#define PACE_BURST 3

typedef struct discovered {
    char *issuer, *authorization_endpoint, *token_endpoint, *jwks_uri;
} discovered;

typedef struct provider {
    char *name, *issuer_url, *client_id, *client_secret, *redirect, *scopes;
    bool pkce;
    discovered *disc; /* set once by the discovery thread (release), read with acquire */
    ef_jwks *keys;    /* set once, with disc */
} provider;

/* One code exchange. Its state goes FREE -> RESERVED (a callback fills it) -> QUEUED (the callback
 * is suspended and handed over) -> RUNNING (the exchange thread's) -> FREE (answered there and
 * resumed) or DONE (resumed unanswered; the request's next dispatch collects the session's
 * fields and frees it). state is under ef_oidc.xmu; the other fields belong to whoever holds the
 * slot in that state: the callback while RESERVED, the exchange thread while RUNNING, the
 * collecting callback under xmu while DONE. */
typedef enum { X_FREE, X_RESERVED, X_QUEUED, X_RUNNING, X_DONE } exchange_state;

typedef struct exchange {
    exchange_state state;
    ef_http_req *req;   /* the suspended callback (QUEUED, RUNNING, DONE) */
    int64_t started_ns; /* ef_http_started_ns(req): with req, which request collects a DONE slot */
    int64_t done_ns;    /* when it turned DONE */
    const provider *p;
    const discovered *d;
    char nonce[44];
    ef_buf form;           /* the token request's body (libcurl reads it during the transfer) */
    ef_buf body;           /* the provider's answer */
    ef_fetch_transfer t;   /* RUNNING: on ef_oidc.multi */
    ef_buf name, metadata; /* DONE: the session's name and metadata (JSON) */
} exchange;

struct ef_oidc {
    provider *p;
    size_t n;
    unsigned token_lifetime_s, state_lifetime_s;
    bool secure;
    char *domain;
    int64_t paced[PACE_SLOTS]; /* under mu: per address hash, when its pace is next at rest (GCRA) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping; /* written under mu, also read by fetches (atomic) */
    bool thread_started;
    pthread_t thread;
    regex_t *email_re; /* Flipt's email_matches: a session's email must match one (none: any) */
    size_t n_email_re;
    pthread_mutex_t xmu;        /* the exchanges' states, draining, xstop */
    pthread_cond_t xcv;         /* under xmu: an exchange left RESERVED, QUEUED or RUNNING */
    exchange x[MAX_EXCHANGES];
    CURLM *multi;               /* the exchange thread's; curl_multi_wakeup from anywhere */
    bool draining;              /* under xmu: ef_oidc_drain began; no exchange starts after */
    bool xstop;                 /* under xmu: ef_oidc_free */
    bool xthread_started;
    pthread_t xthread;
};

static void *exchange_loop(void *arg);

static void discovered_free(discovered *d)
{
    if (!d) return;
    free(d->issuer);
    free(d->authorization_endpoint);
    free(d->token_endpoint);
    free(d->jwks_uri);
    free(d);
}

void ef_oidc_free(ef_oidc *o)
{
    if (!o) return;
    if (o->thread_started) {
        pthread_mutex_lock(&o->mu);
        __atomic_store_n(&o->stopping, true, __ATOMIC_RELEASE);
        pthread_cond_signal(&o->cv);
        pthread_mutex_unlock(&o->mu);
        pthread_join(o->thread, NULL);
    }
    if (o->xthread_started) {
        pthread_mutex_lock(&o->xmu);
        o->xstop = true;
        pthread_mutex_unlock(&o->xmu);
        curl_multi_wakeup(o->multi);
        pthread_join(o->xthread, NULL);
    }
    for (size_t i = 0; i < MAX_EXCHANGES; i++) {
        ef_buf_free(&o->x[i].form);
        ef_buf_free(&o->x[i].body);
        ef_buf_free(&o->x[i].name);
        ef_buf_free(&o->x[i].metadata);
    }
    if (o->multi) curl_multi_cleanup(o->multi);
    pthread_mutex_destroy(&o->xmu);
    pthread_cond_destroy(&o->xcv);
    for (size_t i = 0; i < o->n; i++) {
        provider *p = &o->p[i];
        ef_jwks_free(p->keys);
        discovered_free(p->disc);
        free(p->name);
        free(p->issuer_url);
        free(p->client_id);
        free(p->client_secret);
        free(p->redirect);
        free(p->scopes);
    }
    free(o->p);
    free(o->domain);
    for (size_t i = 0; i < o->n_email_re; i++) regfree(&o->email_re[i]);
    free(o->email_re);
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
    free(o);
}

/* A string member of the discovery document, copied; NULL when missing. */
static char *disc_str(const ef_json *doc, const char *name)
{
    ef_bytes v = ef_jwt_claim_str(doc, name);
    return v.n && v.n < 2048 && !memchr(v.p, '\0', v.n) ? strndup(v.p, v.n) : NULL;
}

static bool http_url(const char *u)
{
    return u && (!strncmp(u, "https://", 8) || !strncmp(u, "http://", 7));
}

/* Fetches and checks one provider's discovery document; on success publishes it with its keys. */
static int discover(ef_oidc *o, provider *p)
{
    char url[2200], err[256];
    size_t il = strlen(p->issuer_url);
    while (il && p->issuer_url[il - 1] == '/') il--;
    snprintf(url, sizeof(url), "%.*s/.well-known/openid-configuration", (int)il, p->issuer_url);
    ef_buf body;
    ef_buf_init(&body);
    long status = 0;
    ef_fetch_req r = {.url = url, .max_body = 1 << 20, .timeout_ms = 5000, .cancel = &o->stopping};
    int rc = -1;
    discovered *d = NULL;
    ef_arena a;
    ef_arena_init(&a, 4096);
    if (ef_fetch(&r, &body, &status, err, sizeof(err)) != 0 || status != 200) {
        if (status) snprintf(err, sizeof(err), "HTTP status %ld", status);
        ef_log(EF_LOG_WARN, "oidc: cannot fetch the discovery document; retrying", "provider", p->name, "url", url,
               "error", err, NULL);
        goto out;
    }
    ef_json_error je;
    const ef_json *doc = ef_json_parse(body.data ? body.data : "", body.len, &a, NULL, &je);
    if (!doc || doc->type != EF_JSON_OBJECT || !(d = calloc(1, sizeof(*d)))) {
        ef_log(EF_LOG_WARN, "oidc: discovery document is not a JSON object; retrying", "provider", p->name, NULL);
        goto out;
    }
    d->issuer = disc_str(doc, "issuer");
    d->authorization_endpoint = disc_str(doc, "authorization_endpoint");
    d->token_endpoint = disc_str(doc, "token_endpoint");
    d->jwks_uri = disc_str(doc, "jwks_uri");
    if (!d->issuer || !http_url(d->authorization_endpoint) || !http_url(d->token_endpoint) || !http_url(d->jwks_uri)) {
        ef_log(EF_LOG_WARN, "oidc: discovery document lacks issuer or an http(s) endpoint; retrying", "provider",
               p->name, NULL);
        goto out;
    }
    /* OpenID Connect Discovery 1.0 section 4.3: the issuer must be the one configured */
    if (strlen(d->issuer) != il || strncmp(d->issuer, p->issuer_url, il) != 0) {
        ef_log(EF_LOG_WARN, "oidc: discovery document names another issuer; retrying", "provider", p->name,
               "configured", p->issuer_url, "issuer", d->issuer, NULL);
        goto out;
    }
    ef_jwks_config kc = {.url = d->jwks_uri};
    ef_jwks *keys = ef_jwks_new(&kc, err, sizeof(err));
    if (!keys) {
        ef_log(EF_LOG_WARN, "oidc: cannot use the provider's jwks_uri", "provider", p->name, "error", err, NULL);
        goto out;
    }
    __atomic_store_n(&p->keys, keys, __ATOMIC_RELEASE);
    __atomic_store_n(&p->disc, d, __ATOMIC_RELEASE);
    d = NULL;
    ef_log(EF_LOG_INFO, "oidc: provider discovered", "provider", p->name, "issuer", p->issuer_url, NULL);
    rc = 0;
out:
    discovered_free(d);
    ef_arena_free(&a);
    ef_buf_free(&body);
    return rc;
}

/* Discovers every provider, retrying the ones that fail with backoff (1 s doubling to 60 s). */
static void *discovery_loop(void *arg)
{
    ef_thread_name("ef-oidc");
    ef_oidc *o = arg;
    unsigned backoff = 1;
    pthread_mutex_lock(&o->mu);
    while (!o->stopping) {
        pthread_mutex_unlock(&o->mu);
        bool all = true;
        for (size_t i = 0; i < o->n && !__atomic_load_n(&o->stopping, __ATOMIC_ACQUIRE); i++)
            if (!__atomic_load_n(&o->p[i].disc, __ATOMIC_ACQUIRE) && discover(o, &o->p[i]) != 0) all = false;
        pthread_mutex_lock(&o->mu);
        if (all) break;
        /* on the monotonic clock (cv is made for it): a wall-clock deadline, taken just before
         * the clock stepped back, held the next attempt for as long as the step, and sign-in
         * stayed unavailable meanwhile */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += backoff;
        backoff = backoff >= 32 ? 60 : backoff * 2;
        if (!o->stopping) pthread_cond_timedwait(&o->cv, &o->mu, &ts);
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

static bool dup(char **dst, const char *src)
{
    return !src || (*dst = strdup(src)) != NULL;
}

/* Path segments and cookie values are plain: a provider name may not need escaping anywhere. */
static bool plain_name(const char *s)
{
    if (!s || !*s || strlen(s) > 64) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
            return false;
    return true;
}

/* email_matches: patterns separated by white space (as Flipt splits a list given as one string),
 * each a POSIX extended regular expression. */
static int compile_email_matches(ef_oidc *o, const char *list, char *err, size_t errlen)
{
    size_t most = 0;
    for (const char *q = list; *q; q++) most += !strchr(" \t\n", *q) && (q == list || strchr(" \t\n", q[-1]));
    if (!most) return 0;
    if (!(o->email_re = calloc(most, sizeof(regex_t)))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (const char *q = list; *q;) {
        q += strspn(q, " \t\n");
        size_t n = strcspn(q, " \t\n");
        if (!n) break;
        char pat[1024];
        if (n >= sizeof(pat)) {
            snprintf(err, errlen, "failed compiling string for pattern: %.60s...: longer than %zu bytes", q, sizeof(pat) - 1);
            return -1;
        }
        memcpy(pat, q, n);
        pat[n] = '\0';
        int rc = regcomp(&o->email_re[o->n_email_re], pat, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char why[160];
            regerror(rc, &o->email_re[o->n_email_re], why, sizeof(why));
            regfree(&o->email_re[o->n_email_re]);
            snprintf(err, errlen, "failed compiling string for pattern: %s: %s", pat, why);
            return -1;
        }
        o->n_email_re++;
        q += n;
    }
    return 0;
}

bool ef_oidc_email_allowed(const ef_oidc *o, ef_bytes email)
{
    if (!o || !o->n_email_re) return true;
    char e[512];
    if (!email.n || email.n >= sizeof(e) || memchr(email.p, '\0', email.n)) return false;
    memcpy(e, email.p, email.n);
    e[email.n] = '\0';
    for (size_t i = 0; i < o->n_email_re; i++)
        if (regexec(&o->email_re[i], e, 0, NULL, 0) == 0) return true;
    return false;
}

ef_oidc *ef_oidc_new(const ef_oidc_config *c, char *err, size_t errlen)
{
    ef_oidc *o = calloc(1, sizeof(*o));
    if (!o || !(o->p = calloc(c->n_providers ? c->n_providers : 1, sizeof(provider)))) {
        free(o);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&o->mu, NULL);
    ef_cond_init_monotonic(&o->cv); /* the discovery retries' deadlines */
    pthread_mutex_init(&o->xmu, NULL);
    ef_cond_init_monotonic(&o->xcv); /* ef_oidc_drain's wait is bounded on the monotonic clock */
    for (size_t i = 0; i < MAX_EXCHANGES; i++) {
        ef_buf_init(&o->x[i].form);
        ef_buf_init(&o->x[i].body);
        ef_buf_init(&o->x[i].name);
        ef_buf_init(&o->x[i].metadata);
    }
    o->token_lifetime_s = c->token_lifetime_s ? c->token_lifetime_s : 86400;
    o->state_lifetime_s = c->state_lifetime_s ? c->state_lifetime_s : 600;
    o->secure = c->secure;
    if (c->domain && *c->domain && !dup(&o->domain, c->domain)) goto oom;
    if (c->email_matches && compile_email_matches(o, c->email_matches, err, errlen) != 0) {
        ef_oidc_free(o);
        return NULL;
    }
    for (size_t i = 0; i < c->n_providers; i++) {
        const ef_oidc_provider_config *pc = &c->providers[i];
        const char *missing = !plain_name(pc->name)                                  ? "a name of letters, digits, - and _"
                              : !http_url(pc->issuer_url)                            ? "issuer_url (http:// or https://)"
                              : !pc->client_id || !*pc->client_id                    ? "client_id"
                              : !http_url(pc->redirect_address)                      ? "redirect_address (http:// or https://)"
                              : (!pc->client_secret || !*pc->client_secret) && !pc->use_pkce ? "client_secret (or use_pkce)"
                                                                                     : NULL;
        for (size_t j = 0; !missing && j < i; j++)
            if (!strcmp(c->providers[j].name, pc->name)) missing = "a name no other provider has";
        if (missing) {
            snprintf(err, errlen, "oidc provider \"%s\": needs %s", pc->name ? pc->name : "", missing);
            ef_oidc_free(o);
            return NULL;
        }
        provider *p = &o->p[o->n++];
        p->pkce = pc->use_pkce;
        if (!dup(&p->name, pc->name) || !dup(&p->issuer_url, pc->issuer_url) || !dup(&p->client_id, pc->client_id) ||
            !dup(&p->client_secret, pc->client_secret && *pc->client_secret ? pc->client_secret : NULL) ||
            !dup(&p->redirect, pc->redirect_address) || !dup(&p->scopes, pc->scopes ? pc->scopes : ""))
            goto oom;
        size_t rl = strlen(p->redirect);
        while (rl && p->redirect[rl - 1] == '/') p->redirect[--rl] = '\0';
    }
    if (!o->n) return o;
    if (ef_fetch_init(err, errlen) != 0) {
        ef_oidc_free(o);
        return NULL;
    }
    const char *cannot = "make the code exchanges' libcurl handle";
    if (!(o->multi = curl_multi_init())) goto fail;
    cannot = "start the code exchange thread";
    if (pthread_create(&o->xthread, NULL, exchange_loop, o) != 0) goto fail;
    o->xthread_started = true;
    cannot = "start the discovery thread";
    if (pthread_create(&o->thread, NULL, discovery_loop, o) != 0) goto fail;
    o->thread_started = true;
    return o;
fail:
    snprintf(err, errlen, "oidc: cannot %s", cannot);
    ef_oidc_free(o);
    return NULL;
oom:
    snprintf(err, errlen, "out of memory");
    ef_oidc_free(o);
    return NULL;
}

static const provider *provider_find(const ef_oidc *o, ef_bytes name)
{
    for (size_t i = 0; o && i < o->n; i++)
        if (ef_bytes_eq(name, ef_bytes_of(o->p[i].name))) return &o->p[i];
    return NULL;
}

void ef_oidc_put_method_metadata(const ef_oidc *o, ef_buf *out)
{
    ef_buf_puts(out, "{\"providers\":{");
    for (size_t i = 0; o && i < o->n; i++) {
        ef_buf_printf(out,
                      "%s\"%s\":{\"authorize_url\":\"/auth/v1/method/oidc/%s/authorize\","
                      "\"callback_url\":\"/auth/v1/method/oidc/%s/callback\"}",
                      i ? "," : "", o->p[i].name, o->p[i].name, o->p[i].name);
    }
    ef_buf_puts(out, "}}");
}

/* Cookies get Secure when configured, or when a TLS-terminating proxy says the browser used
 * https (the header can only make a cookie stricter, so it need not be trusted). */
static bool want_secure(const ef_oidc *o, ef_http_req *req)
{
    const char *proto = ef_http_header(req, "X-Forwarded-Proto");
    return o->secure || (proto && !strcasecmp(proto, "https"));
}

static void set_cookie(const ef_oidc *o, ef_http_req *req, const char *name, const char *value, const char *path,
                       long max_age, const char *same_site)
{
    char c[512];
    int n = snprintf(c, sizeof(c), "%s=%s; Path=%s; Max-Age=%ld; HttpOnly; SameSite=%s%s", name, value, path,
                     max_age, same_site, want_secure(o, req) ? "; Secure" : "");
    if (o->domain && n > 0 && (size_t)n < sizeof(c)) snprintf(c + n, sizeof(c) - (size_t)n, "; Domain=%s", o->domain);
    ef_http_add_header(req, "Set-Cookie", c);
}

void ef_oidc_set_session_cookie(const ef_oidc *o, ef_http_req *req, const char *token)
{
    set_cookie(o, req, TOKEN_COOKIE, token ? token : "", "/", token ? (long)o->token_lifetime_s : 0, "Strict");
}

void ef_oidc_csrf_of(const char *token, char out[44])
{
    /* over the token's hash, so the input has a fixed size whatever the cookie held */
    uint8_t h[32];
    char in[14 + 44] = "edgeflag-csrf:";
    ef_sha256(token, strlen(token), h);
    ef_b64url_encode(h, 32, in + 14);
    ef_sha256(in, strlen(in), h);
    ef_b64url_encode(h, 32, out);
}

/* application/x-www-form-urlencoded / query component encoding */
static void put_enc(ef_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
            ch == '_' || ch == '.' || ch == '~')
            ef_buf_putc(b, (char)ch);
        else
            ef_buf_printf(b, "%%%c%c", hex[ch >> 4], hex[ch & 15]);
    }
}

static bool random_b64(char out[44])
{
    uint8_t r[32];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) return false;
    ef_b64url_encode(r, sizeof(r), out);
    return true;
}

static void callback_url(const provider *p, char *out, size_t cap)
{
    snprintf(out, cap, "%s/auth/v1/method/oidc/%s/callback", p->redirect, p->name);
}

static const provider *provider_of(ef_http_req *req, ef_node *node, const discovered **d)
{
    ef_oidc *o = node->auth ? ef_auth_oidc(node->auth) : NULL;
    ef_bytes name = ef_http_param(req, "provider");
    const provider *p = provider_find(o, name);
    if (!p) {
        ef_http_not_found(req, "requested provider \"%.*s\": provider not found", (int)(name.n > 64 ? 64 : name.n), name.p);
        return NULL;
    }
    if (!(*d = __atomic_load_n(&p->disc, __ATOMIC_ACQUIRE))) {
        ef_http_error(req, 503, 14, "provider \"%s\": its discovery document has not been fetched yet", p->name);
        return NULL;
    }
    return p;
}

/* GET /auth/v1/method/oidc/{provider}/authorize */
void ef_oidc_on_authorize(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    const discovered *d;
    const provider *p = provider_of(req, node, &d);
    if (!p) return;
    ef_oidc *o = ef_auth_oidc(node->auth);
    char state[44], nonce[44], verifier[44], challenge[44], cb[2200];
    if (!random_b64(state) || !random_b64(nonce) || !random_b64(verifier)) {
        ef_http_error(req, 500, 13, "no randomness available");
        return;
    }
    uint8_t h[32];
    ef_sha256(verifier, strlen(verifier), h);
    ef_b64url_encode(h, 32, challenge);
    callback_url(p, cb, sizeof(cb));
    ef_buf u;
    ef_buf_init(&u);
    ef_buf_puts(&u, d->authorization_endpoint);
    ef_buf_puts(&u, strchr(d->authorization_endpoint, '?') ? "&" : "?");
    ef_buf_puts(&u, "response_type=code&client_id=");
    put_enc(&u, p->client_id);
    ef_buf_puts(&u, "&redirect_uri=");
    put_enc(&u, cb);
    ef_buf_puts(&u, "&scope=openid");
    for (const char *s = p->scopes; *s;) { /* extra scopes, space separated in the URL */
        size_t skip = strspn(s, ", "), n;
        s += skip;
        if (!*s) break;
        n = strcspn(s, ", ");
        char one[128];
        snprintf(one, sizeof(one), "%.*s", (int)(n < sizeof(one) ? n : sizeof(one) - 1), s);
        if (strcmp(one, "openid") != 0) {
            ef_buf_puts(&u, "+");
            put_enc(&u, one);
        }
        s += n;
    }
    ef_buf_printf(&u, "&state=%s&nonce=%s", state, nonce);
    if (p->pkce) ef_buf_printf(&u, "&code_challenge=%s&code_challenge_method=S256", challenge);
    /* the browser keeps what the callback must check: state, nonce and the PKCE verifier */
    char cookie[200], path[160];
    snprintf(cookie, sizeof(cookie), "v1.%s.%s.%s", state, nonce, p->pkce ? verifier : "-");
    snprintf(path, sizeof(path), "/auth/v1/method/oidc/%s/callback", p->name);
    set_cookie(o, req, STATE_COOKIE, cookie, path, (long)o->state_lifetime_s, "Lax");
    ef_buf *out = ef_http_out(req);
    ef_buf_puts(out, "{\"authorizeUrl\":");
    ef_json_put_str(out, (ef_bytes){u.data ? u.data : "", u.len});
    ef_buf_putc(out, '}');
    ef_buf_free(&u);
    ef_http_reply(req, 200);
}

bool ef_oidc_cookie(ef_http_req *req, const char *name, char *out, size_t cap)
{
    return ef_cookie_get(ef_http_header(req, "Cookie"), name, out, cap);
}

static void refuse_callback(ef_http_req *req, const char *why)
{
    ef_log(EF_LOG_INFO, "oidc: sign-in refused", "reason", why, NULL);
    ef_http_error(req, 401, 16, "%s", why);
}

/* Flipt's metadata of an OIDC authentication, from the verified ID token's claims. */
static void put_session_metadata(ef_buf *m, const provider *p, const ef_json *claims)
{
    ef_buf_puts(m, "{\"io.flipt.auth.oidc.provider\":");
    ef_json_put_cstr(m, p->name);
    static const char *const fields[][3] = {
        {"email", "io.flipt.auth.oidc.email", "io.flipt.auth.email"},
        {"name", "io.flipt.auth.oidc.name", "io.flipt.auth.name"},
        {"picture", "io.flipt.auth.oidc.picture", "io.flipt.auth.picture"},
        {"profile", "io.flipt.auth.oidc.profile", NULL},
        {"sub", "io.flipt.auth.oidc.sub", NULL},
        {"preferred_username", "io.flipt.auth.oidc.preferred_username", NULL},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        ef_bytes v = ef_jwt_claim_str(claims, fields[i][0]);
        if (!v.n || v.n > 512) continue;
        for (int k = 1; k < 3 && fields[i][k]; k++) {
            ef_buf_printf(m, ",\"%s\":", fields[i][k]);
            ef_json_put_str(m, v);
        }
    }
    const ef_json *ev = ef_json_get(claims, "email_verified");
    if (ev && (ev->type == EF_JSON_TRUE || ev->type == EF_JSON_FALSE))
        ef_buf_printf(m, ",\"io.flipt.auth.oidc.email_verified\":\"%s\"", ev->type == EF_JSON_TRUE ? "true" : "false");
    ef_buf_putc(m, '}');
}

/* The token request's body, into x->form (from the callback, while x is RESERVED). */
static void put_form(exchange *x, const char *code, const char *verifier)
{
    const provider *p = x->p;
    char cb[2200];
    callback_url(p, cb, sizeof(cb));
    ef_buf *form = &x->form;
    ef_buf_clear(form);
    ef_buf_puts(form, "grant_type=authorization_code&code=");
    put_enc(form, code);
    ef_buf_puts(form, "&redirect_uri=");
    put_enc(form, cb);
    if (p->pkce) ef_buf_printf(form, "&code_verifier=%s", verifier);
    if (!p->client_secret) { /* a public client names itself in the body */
        ef_buf_puts(form, "&client_id=");
        put_enc(form, p->client_id);
    }
    ef_buf_putc(form, '\0');
}

/* The provider's answer to x's token request (frc, status, err: as ef_fetch_end gave them, the
 * body in x->body), checked; on success *claims are the ID token's verified claims (in arena).
 * Returns why the sign-in is refused, or NULL. */
static const char *check_answer(const exchange *x, int frc, long status, const char *err, ef_arena *arena,
                                const ef_json **claims)
{
    const provider *p = x->p;
    const discovered *d = x->d;
    if (frc != 0) {
        ef_log(EF_LOG_WARN, "oidc: token endpoint unreachable", "provider", p->name, "error", err, NULL);
        return "the provider's token endpoint could not be reached";
    }
    ef_json_error je;
    const ef_json *tok = ef_json_parse(x->body.data ? x->body.data : "", x->body.len, arena, NULL, &je);
    if (status != 200 || !tok || tok->type != EF_JSON_OBJECT)
        return "the provider refused the authorization code (expired, used already, or not issued to this client)";
    ef_bytes idt = ef_jwt_claim_str(tok, "id_token");
    if (!idt.n) return "the provider's answer has no id_token";
    /* the token outlives body: copy it into the arena */
    char *idc = ef_arena_memdup(arena, idt.p, idt.n);
    ef_jwt t;
    char verr[160];
    ef_jwt_status st = idc ? ef_jwt_parse(idc, idt.n, arena, &t, verr, sizeof(verr)) : EF_JWT_MALFORMED;
    if (st == EF_JWT_OK) st = ef_jwks_verify(__atomic_load_n(&p->keys, __ATOMIC_ACQUIRE), &t, verr, sizeof(verr));
    char *aud[] = {p->client_id};
    ef_jwt_expect ex = {.issuer = d->issuer, .audiences = aud, .n_audiences = 1};
    if (st == EF_JWT_OK) st = ef_jwt_check_claims(&t, &ex, ef_clock_wall_ns() / 1000000000LL, verr, sizeof(verr));
    if (st != EF_JWT_OK) {
        ef_log(EF_LOG_WARN, "oidc: ID token refused", "provider", p->name, "reason", verr, NULL);
        return "the provider's ID token did not verify";
    }
    /* OpenID Connect Core 3.1.3.7: with several audiences, azp names who the token is for */
    ef_bytes azp = ef_jwt_claim_str(t.claims, "azp");
    const ef_json *audv = ef_json_get(t.claims, "aud");
    if ((azp.n || (audv && audv->type == EF_JSON_ARRAY && audv->len > 1)) && !ef_bytes_eq(azp, ef_bytes_of(p->client_id)))
        return "the ID token was issued to another client (azp)";
    ef_bytes tn = ef_jwt_claim_str(t.claims, "nonce"), sub = ef_jwt_claim_str(t.claims, "sub");
    if (tn.n != strlen(x->nonce) || !ef_ct_equal((const uint8_t *)tn.p, (const uint8_t *)x->nonce, tn.n))
        return "the ID token's nonce does not match this sign-in";
    if (!sub.n) return "the ID token has no subject";
    *claims = t.claims;
    return NULL;
}

/* Whether the client address may start an exchange now, noting it: the generic cell rate
 * algorithm, one a second with bursts of PACE_BURST. */
static bool pace_allows(ef_oidc *o, const char *peer)
{
    const char *port = strrchr(peer, ':'); /* "ip:port" or "[v6]:port": the port changes per connection */
    size_t n = port ? (size_t)(port - peer) : strlen(peer);
    uint64_t h = ef_hash_bytes(peer, n);
    int64_t now = ef_clock_mono_ns();
    pthread_mutex_lock(&o->mu);
    int64_t *rest = &o->paced[h % PACE_SLOTS];
    int64_t from = *rest > now ? *rest : now;
    bool ok = from - now <= (PACE_BURST - 1) * PACE_NS;
    if (ok) *rest = from + PACE_NS;
    pthread_mutex_unlock(&o->mu);
    return ok;
}

static void busy(ef_http_req *req)
{
    ef_http_add_header(req, "Retry-After", "1");
    ef_http_error(req, 503, 14, "too many sign-ins at once; try again");
}

static void refuse_stopping(ef_http_req *req)
{
    ef_log(EF_LOG_INFO, "oidc: sign-in ended: the server is stopping", NULL);
    ef_http_add_header(req, "Retry-After", "1");
    ef_http_error(req, 503, 14, "the server is stopping; sign in again");
}

/* ---- the code exchanges ----------------------------------------------------------------------- */

/* A free exchange, RESERVED for the caller, or NULL when MAX_EXCHANGES are under way or (*draining
 * set) the node is stopping. */
static exchange *exchange_reserve(ef_oidc *o, bool *draining)
{
    int64_t now = ef_clock_mono_ns();
    exchange *got = NULL;
    pthread_mutex_lock(&o->xmu);
    *draining = o->draining || o->xstop;
    for (size_t i = 0; !got && !*draining && i < MAX_EXCHANGES; i++) {
        exchange *x = &o->x[i];
        if (x->state == X_DONE && now - x->done_ns > (int64_t)COLLECT_MS * 1000000LL) {
            x->state = X_FREE; /* never collected: its client left as it was resumed */
            ef_buf_free(&x->name);
            ef_buf_free(&x->metadata);
        }
        if (x->state == X_FREE) {
            x->state = X_RESERVED;
            got = x;
        }
    }
    pthread_mutex_unlock(&o->xmu);
    return got;
}

/* Frees an exchange its holder (RESERVED or RUNNING) is done with; its request is not touched. */
static void exchange_release(ef_oidc *o, exchange *x)
{
    ef_buf_free(&x->form);
    ef_buf_free(&x->body); /* up to 1 MiB: not kept between exchanges */
    x->req = NULL;
    pthread_mutex_lock(&o->xmu);
    x->state = X_FREE;
    pthread_cond_broadcast(&o->xcv);
    pthread_mutex_unlock(&o->xmu);
}

/* Starts x's token request on the multi handle; false with err (nothing started) when it cannot. */
static bool exchange_start(ef_oidc *o, exchange *x, char *err, size_t errlen)
{
    const provider *p = x->p;
    ef_fetch_req r = {.url = x->d->token_endpoint, .form = x->form.data, .basic_user = p->client_secret ? p->client_id : NULL,
                      .basic_pass = p->client_secret, .max_body = 1 << 20, .timeout_ms = EXCHANGE_TIMEOUT_MS};
    if (!ef_buf_ok(&x->form)) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    if (ef_fetch_begin(&x->t, &r, &x->body, err, errlen) != 0) return false;
    curl_easy_setopt(x->t.easy, CURLOPT_PRIVATE, (char *)x);
    if (curl_multi_add_handle(o->multi, x->t.easy) == CURLM_OK) return true;
    long status;
    ef_fetch_end(&x->t, CURLE_FAILED_INIT, &status, err, errlen);
    snprintf(err, errlen, "cannot add the transfer to libcurl's multi handle");
    return false;
}

/* A RUNNING exchange whose transfer ended (started: with rc) or could not start (why in err): the
 * answer is checked, and the request answered and resumed (a refusal), or resumed to collect the
 * session (DONE). */
static void exchange_done(ef_oidc *o, exchange *x, bool started, CURLcode rc, char *err, size_t errlen)
{
    long status = 0;
    int frc = started ? ef_fetch_end(&x->t, rc, &status, err, errlen) : -1;
    ef_arena a;
    ef_arena_init(&a, 4096);
    const ef_json *claims = NULL;
    const char *why = check_answer(x, frc, status, err, &a, &claims);
    /* Flipt's email_matches: Flipt refuses such a session's every request; edgeflag does too
     * (auth.c) and makes none in the first place */
    if (!why && !ef_oidc_email_allowed(o, ef_jwt_claim_str(claims, "email"))) why = "email is not allowed";
    ef_http_req *req = x->req;
    if (why) {
        ef_arena_free(&a);
        refuse_callback(req, why);
        ef_http_resume(req);
        exchange_release(o, x);
        return;
    }
    ef_bytes email = ef_jwt_claim_str(claims, "email"), sub = ef_jwt_claim_str(claims, "sub");
    ef_bytes name = email.n && email.n <= 256 ? email : (sub.n > 256 ? (ef_bytes){sub.p, 256} : sub);
    ef_buf_clear(&x->name);
    ef_buf_clear(&x->metadata);
    ef_buf_append(&x->name, name.p, name.n);
    put_session_metadata(&x->metadata, x->p, claims);
    ef_arena_free(&a);
    if (!ef_buf_ok(&x->name) || !ef_buf_ok(&x->metadata)) {
        ef_http_error(req, 500, 13, "out of memory");
        ef_http_resume(req);
        exchange_release(o, x);
        return;
    }
    ef_buf_free(&x->form);
    ef_buf_free(&x->body);
    pthread_mutex_lock(&o->xmu);
    x->state = X_DONE;
    x->done_ns = ef_clock_mono_ns();
    pthread_cond_broadcast(&o->xcv);
    pthread_mutex_unlock(&o->xmu);
    ef_http_resume(req); /* unanswered: dispatched again, and the callback collects x */
}

/* Ends x's transfer before its answer came: off the multi handle, its handle freed. */
static void transfer_abort(ef_oidc *o, exchange *x)
{
    long status;
    char err[256];
    curl_multi_remove_handle(o->multi, x->t.easy);
    ef_fetch_end(&x->t, CURLE_ABORTED_BY_CALLBACK, &status, err, sizeof(err));
}

/* A RUNNING exchange ended by ef_oidc_drain: the code may have been redeemed or not, and the
 * state is used up either way (the answer clears it), so the browser signs in again. */
static void exchange_cancel(ef_oidc *o, exchange *x, bool started)
{
    if (started) transfer_abort(o, x);
    ef_http_req *req = x->req;
    refuse_stopping(req);
    ef_http_resume(req);
    exchange_release(o, x);
}

static void *exchange_loop(void *arg)
{
    ef_thread_name("ef-oidc-code");
    ef_oidc *o = arg;
    exchange *running[MAX_EXCHANGES]; /* this thread's: the exchanges on the multi handle */
    size_t n = 0;
    for (;;) {
        exchange *queued[MAX_EXCHANGES];
        size_t nq = 0;
        pthread_mutex_lock(&o->xmu);
        bool stop = o->xstop, draining = o->draining;
        for (size_t i = 0; !stop && i < MAX_EXCHANGES; i++) {
            if (o->x[i].state != X_QUEUED) continue;
            o->x[i].state = X_RUNNING;
            queued[nq++] = &o->x[i];
        }
        pthread_mutex_unlock(&o->xmu);
        if (stop) break;
        for (size_t i = 0; i < nq; i++) {
            char err[256];
            /* queued after the drain began: a callback suspended before the server quiesced */
            if (draining)
                exchange_cancel(o, queued[i], false);
            else if (exchange_start(o, queued[i], err, sizeof(err)))
                running[n++] = queued[i];
            else
                exchange_done(o, queued[i], false, CURLE_FAILED_INIT, err, sizeof(err));
        }
        int still = 0;
        curl_multi_perform(o->multi, &still);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(o->multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            CURL *e = m->easy_handle;
            CURLcode rc = m->data.result;
            exchange *x = NULL;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
            curl_multi_remove_handle(o->multi, e);
            for (size_t i = 0; i < n; i++)
                if (running[i] == x) running[i] = running[--n];
            char err[256];
            exchange_done(o, x, true, rc, err, sizeof(err));
        }
        /* the ones that finished above were answered by their outcome; the rest end here. A drain
         * sets draining and then wakes us, so this pass sees it at the latest */
        if (draining)
            while (n) exchange_cancel(o, running[--n], true);
        curl_multi_poll(o->multi, NULL, 0, WAIT_MS, NULL);
    }
    /* ef_oidc_free runs after the server stopped and ef_oidc_drain before that, so no exchange is
     * left unless the drain gave up waiting; one left would hold a request the server freed: end
     * its transfer, touch nothing of it */
    for (size_t i = 0; i < n; i++) {
        transfer_abort(o, running[i]);
        exchange_release(o, running[i]);
    }
    return NULL;
}

void ef_oidc_drain(ef_oidc *o, unsigned wait_ms)
{
    if (!o || !o->xthread_started) return;
    int64_t deadline = ef_clock_mono_ns() + (int64_t)wait_ms * 1000000LL;
    struct timespec ts = {.tv_sec = deadline / 1000000000LL, .tv_nsec = deadline % 1000000000LL};
    pthread_mutex_lock(&o->xmu);
    o->draining = true;
    pthread_mutex_unlock(&o->xmu);
    curl_multi_wakeup(o->multi);
    /* RESERVED counts too: a callback holding a slot either releases it (its request could not be
     * suspended: the server is quiescing) or queues it, and the thread answers that one next */
    size_t held = 0;
    pthread_mutex_lock(&o->xmu);
    for (;;) {
        held = 0;
        for (size_t i = 0; i < MAX_EXCHANGES; i++)
            held += o->x[i].state == X_RESERVED || o->x[i].state == X_QUEUED || o->x[i].state == X_RUNNING;
        if (!held || pthread_cond_timedwait(&o->xcv, &o->xmu, &ts) != 0) break; /* ETIMEDOUT */
    }
    pthread_mutex_unlock(&o->xmu);
    if (held) {
        char nb[16];
        snprintf(nb, sizeof(nb), "%zu", held);
        ef_log(EF_LOG_WARN, "oidc: sign-ins still in exchange as the server stops", "exchanges", nb, NULL);
    }
}

/* The session's fields a DONE exchange holds for req, copied into req's arena and the exchange
 * freed; false when none does (the exchange was taken back after COLLECT_MS) or out of memory. */
static bool exchange_collect(ef_oidc *o, ef_http_req *req, ef_bytes *name, ef_bytes *metadata)
{
    bool got = false;
    int64_t t0 = ef_http_started_ns(req);
    ef_arena *a = ef_http_arena(req);
    pthread_mutex_lock(&o->xmu);
    for (size_t i = 0; i < MAX_EXCHANGES; i++) {
        exchange *x = &o->x[i];
        if (x->state != X_DONE || x->req != req || x->started_ns != t0) continue;
        /* exchange_done filled both (a subject at least, and a JSON object) */
        *name = (ef_bytes){ef_arena_memdup(a, x->name.data, x->name.len), x->name.len};
        *metadata = (ef_bytes){ef_arena_memdup(a, x->metadata.data, x->metadata.len), x->metadata.len};
        got = name->p && metadata->p;
        ef_buf_free(&x->name);
        ef_buf_free(&x->metadata);
        x->req = NULL;
        x->state = X_FREE;
        break;
    }
    pthread_mutex_unlock(&o->xmu);
    return got;
}

/* The session of a sign-in whose exchange succeeded: a stored token row, its secret only in the
 * cookie. */
static void create_session(ef_http_req *req, ef_node *node, ef_oidc *o, const provider *p, ef_bytes name,
                           ef_bytes metadata)
{
    char token[44], hashed[44];
    uint8_t h[32];
    if (!random_b64(token)) {
        ef_http_error(req, 500, 13, "no randomness available");
        return;
    }
    ef_sha256(token, strlen(token), h);
    ef_b64url_encode(h, 32, hashed);
    char desc[128];
    snprintf(desc, sizeof(desc), "OIDC session (provider %s)", p->name);
    ef_store_token in = {
        .name = name,
        .description = ef_bytes_of(desc),
        .hashed = ef_bytes_of(hashed),
        .metadata = metadata,
        .expires_ns = ef_clock_wall_ns() + (int64_t)o->token_lifetime_s * 1000000000LL,
    };
    ef_store_token out;
    ef_store_err serr;
    if (ef_store_token_create(node->store, &in, ef_http_arena(req), &out, &serr) != 0) {
        ef_api_store_error(req, &serr);
        return;
    }
    ef_auth_reload(node->auth);
    char sid[96];
    snprintf(sid, sizeof(sid), "%.*s", (int)(out.id.n > 80 ? 80 : out.id.n), out.id.p ? out.id.p : "");
    ef_log(EF_LOG_INFO, "oidc: signed in", "provider", p->name, "session", sid, NULL);
    ef_oidc_set_session_cookie(o, req, token);
    ef_http_add_header(req, "Location", "/");
    ef_http_reply(req, 302);
}

/* GET /auth/v1/method/oidc/{provider}/callback?code=...&state=... */
void ef_oidc_on_callback(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    const discovered *d;
    const provider *p = provider_of(req, node, &d);
    if (!p) return;
    ef_oidc *o = ef_auth_oidc(node->auth);
    if (ef_http_resumes(req) > 0) { /* back from a successful exchange (nothing else suspends it) */
        ef_bytes name, metadata;
        if (!exchange_collect(o, req, &name, &metadata)) {
            ef_http_error(req, 503, 14, "the sign-in was not completed in time; sign in again");
            return;
        }
        create_session(req, node, o, p, name, metadata);
        return;
    }
    const char *perr = ef_http_query(req, "error");
    if (perr && *perr) {
        refuse_callback(req, "the provider did not sign the user in");
        return;
    }
    char cookie[256];
    const char *qstate = ef_http_query(req, "state"), *code = ef_http_query(req, "code");
    if (!ef_oidc_cookie(req, STATE_COOKIE, cookie, sizeof(cookie))) {
        refuse_callback(req, "missing state parameter");
        return;
    }
    /* v1.STATE.NONCE.VERIFIER, each 43 characters (VERIFIER "-" without PKCE) */
    char *f[4] = {cookie, NULL, NULL, NULL};
    for (int i = 1; i < 4; i++) {
        char *dot = f[i - 1] ? strchr(f[i - 1], '.') : NULL;
        if (dot) *dot = '\0';
        f[i] = dot ? dot + 1 : NULL;
    }
    if (strcmp(f[0], "v1") != 0 || !f[3] || strlen(f[1]) != 43 || strlen(f[2]) != 43 || !qstate ||
        strlen(qstate) != 43 || !ef_ct_equal((const uint8_t *)qstate, (const uint8_t *)f[1], 43)) {
        refuse_callback(req, "unexpected state parameter");
        return;
    }
    char path[160];
    snprintf(path, sizeof(path), "/auth/v1/method/oidc/%s/callback", p->name);
    if (!code || !*code || strlen(code) > 2048) {
        set_cookie(o, req, STATE_COOKIE, "", path, 0, "Lax");
        refuse_callback(req, "missing code parameter");
        return;
    }
    if (!node->store) {
        ef_http_error(req, 500, 12, "not implemented: sessions need a database");
        return;
    }
    if (!pace_allows(o, ef_http_peer(req))) {
        busy(req);
        return;
    }
    bool draining;
    exchange *x = exchange_reserve(o, &draining);
    if (!x) {
        /* not queued once the drain began: it has answered what it found and may have returned */
        if (draining)
            refuse_stopping(req);
        else
            busy(req);
        return;
    }
    x->p = p;
    x->d = d;
    memcpy(x->nonce, f[2], sizeof(x->nonce)); /* 43 characters and the NUL */
    put_form(x, code, f[3]);
    if (!ef_http_suspend(req)) { /* max-waiting requests are suspended, or the server is stopping */
        exchange_release(o, x);
        /* why the server would not suspend it: asked once here, never polled */
        if (ef_http_stopping(req))
            refuse_stopping(req);
        else
            busy(req);
        return;
    }
    /* the state was this browser's: used up by the exchange, whatever it answers (req is still
     * this thread's until x is queued) */
    set_cookie(o, req, STATE_COOKIE, "", path, 0, "Lax");
    x->req = req;
    x->started_ns = ef_http_started_ns(req);
    pthread_mutex_lock(&o->xmu);
    x->state = X_QUEUED;
    pthread_mutex_unlock(&o->xmu);
    curl_multi_wakeup(o->multi);
}
