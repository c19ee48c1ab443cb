/*
 * serve_config.c - settings for `edgeflag serve` (see serve_config.h). Every setting has one
 * name, used as --name on the command line, EDGEFLAG_NAME in the environment and name: in the YAML
 * file. Unknown keys and malformed values are errors, never ignored.
 *
 * Flipt's own config.yml and FLIPT_* variables are read too (docs/configuration.md, "Flipt's
 * config"): a top-level key whose value is a mapping, or `version`, is Flipt's; the keys that mean
 * something here are translated into the settings above, every other Flipt key is logged once as
 * ignored. A valid Flipt config is never refused unless it names a source edgeflag cannot serve
 * (PostgreSQL, MySQL, git, OCI, object storage): serving something else in silence would be worse.
 */
#include "cli/serve_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/file.h"
#include "base/log.h"
#include "http/http.h"

typedef enum { T_STR, T_SIZE, T_UINT, T_BOOL } kind;

typedef struct setting {
    const char *name; /* kebab-case; env is EDGEFLAG_ + upper snake; YAML accepts both spellings */
    kind k;
    size_t offset;
    const char *help;
} setting;

#define S(name, k, field, help) {name, k, offsetof(ef_serve_config, field), help}
static const setting settings[] = {
    S("name", T_STR, name, "this node's name: cluster picture, logs, metrics, X-Edgeflag-Node (default: the host name)"),
    S("listen", T_STR, listen, "HOST:PORT to serve on (default 127.0.0.1:8080)"),
    S("db", T_STR, db, "SQLite path or file: URL (default ./data/edgeflag.db), libsql://HOST[?authToken=T] / http(s)://HOST:PORT, postgres://USER@HOST:PORT/DB or mysql://USER@HOST:PORT/DB"),
    S("db-token", T_STR, db_token, "token for a remote database (libSQL/Turso)"),
    S("db-poll", T_UINT, db_poll_ms, "remote database (libSQL, PostgreSQL, MySQL): ms between looks for other nodes' writes (default 1000)"),
    S("db-ca", T_STR, db_ca, "libSQL over https: PEM CA certificates to verify the server by (default: the system's)"),
    S("db-cache", T_STR, db_cache, "remote database: the local cache file (default ./data/KIND-SERVER.db)"),
    S("dir", T_STR, dir, "serve features.yml files under this directory, read-only"),
    S("snapshot", T_STR, snapshot, "serve one Flipt snapshot document file, read-only"),
    S("auth-token", T_STR, auth_token, "require authentication; accept this bearer token"),
    S("auth-exclude", T_STR, auth_exclude, "route classes left open: management,evaluation,ofrep"),
    S("auth-jwt-jwks-url", T_STR, auth_jwt_jwks_url, "require authentication; accept JWTs signed by a key of this JWKS"),
    S("auth-jwt-public-key-file", T_STR, auth_jwt_public_key_file, "require authentication; accept JWTs signed by this PEM public key"),
    S("auth-jwt-issuer", T_STR, auth_jwt_issuer, "JWTs must have this iss claim"),
    S("auth-jwt-subject", T_STR, auth_jwt_subject, "JWTs must have this sub claim"),
    S("auth-jwt-audiences", T_STR, auth_jwt_audiences, "JWTs must have one of these aud values (comma-separated)"),
    S("auth-jwt-refresh", T_UINT, auth_jwt_refresh, "seconds between refreshes of the JWKS (default 300)"),
    S("auth-jwt-min-refresh", T_UINT, auth_jwt_min_refresh, "seconds at least between two JWKS fetches, also for unknown kids (default 10)"),
    S("auth-oidc-provider", T_STR, auth_oidc_provider, "UI sign-in through this OpenID Connect provider (a name: letters, digits, - and _)"),
    S("auth-oidc-issuer-url", T_STR, auth_oidc_issuer_url, "the provider's issuer URL (discovery at ISSUER/.well-known/openid-configuration)"),
    S("auth-oidc-client-id", T_STR, auth_oidc_client_id, "this server's client id at the provider"),
    S("auth-oidc-client-secret", T_STR, auth_oidc_client_secret, "its client secret (none: a public client, PKCE alone)"),
    S("auth-oidc-redirect-address", T_STR, auth_oidc_redirect_address, "this server as browsers reach it (http(s)://host[:port]); the callback is below it"),
    S("auth-oidc-scopes", T_STR, auth_oidc_scopes, "scopes asked besides openid (default: email profile)"),
    S("auth-oidc-email-matches", T_STR, auth_oidc_email_matches, "only people whose email matches one of these POSIX extended regexes (space-separated) may sign in and act"),
    S("auth-session-token-lifetime", T_UINT, auth_session_token_lifetime, "seconds a signed-in session lasts (default 86400)"),
    S("auth-session-state-lifetime", T_UINT, auth_session_state_lifetime, "seconds between sign-in start and callback (default 600)"),
    S("auth-token-cleanup-interval", T_UINT, auth_token_cleanup_interval, "seconds between deletions of expired static tokens (default 3600)"),
    S("auth-token-cleanup-grace-period", T_UINT, auth_token_cleanup_grace, "seconds past its expiry a static token is deleted (default 1800)"),
    S("auth-oidc-cleanup-interval", T_UINT, auth_oidc_cleanup_interval, "seconds between deletions of expired sign-in sessions (default 3600)"),
    S("auth-oidc-cleanup-grace-period", T_UINT, auth_oidc_cleanup_grace, "seconds past its expiry a sign-in session is deleted (default 1800)"),
    S("auth-session-secure", T_BOOL, auth_session_secure, "Secure session cookies (also set when X-Forwarded-Proto is https)"),
    S("auth-session-domain", T_STR, auth_session_domain, "Domain of the session cookies (default: host-only)"),
    S("upstream", T_STR, upstream, "replica mode: follow this node (URL)"),
    S("upstream-token", T_STR, upstream_token, "token for the upstream node"),
    S("upstream-ca", T_STR, upstream_ca, "replica: PEM CA file the upstream's HTTPS certificate is verified with (default: the system's)"),
    S("upstream-cert", T_STR, upstream_cert, "replica: PEM client certificate presented to the upstream (with upstream-key)"),
    S("upstream-key", T_STR, upstream_key, "replica: PEM private key of upstream-cert"),
    S("tls-cert", T_STR, tls_cert, "serve HTTPS with this PEM certificate chain (with tls-key; reloaded on SIGHUP)"),
    S("tls-key", T_STR, tls_key, "PEM private key of tls-cert (unencrypted)"),
    S("tls-client-ca", T_STR, tls_client_ca, "HTTPS: require client certificates signed by a CA in this PEM file (reloaded on SIGHUP)"),
    S("write-wait", T_UINT, write_wait_ms, "replica: ms a forwarded write waits to be applied here (default 2000)"),
    S("replica-sync", T_UINT, replica_sync_ms, "replica: ms within which applied entries are written and synced to disk, in one batch (default 50)"),
    S("min-version-wait", T_UINT, min_version_wait_ms, "ms a request with X-Edgeflag-Min-Version may wait (default 2000)"),
    S("max-staleness", T_UINT, max_staleness, "seconds of lag after which /ready answers 503 (default: no limit)"),
    S("log-keep-entries", T_SIZE, log_keep_entries, "change-log entries kept for followers (default: all)"),
    S("log-max-age", T_UINT, log_max_age, "seconds change-log entries are kept for followers (default: forever)"),
    S("sync-max-event", T_SIZE, sync_max_event, "replica: largest change-log entry or dump accepted from the upstream, in bytes (default 268435456 per entry, 1073741824 per dump)"),
    S("sync-dump-min-rate", T_SIZE, sync_dump_min_rate, "bytes per second a downstream node must take a full dump at, after 30 s, or its connection is closed (default 1048576)"),
    S("sync-feed-budget", T_SIZE, sync_feed_budget, "bytes queued for all downstream streams together, past which the stream holding the most is ended (default 67108864)"),
    S("backup", T_STR, backup, "continuous backup to s3://BUCKET[/PREFIX] (docs/backup.md)"),
    S("backup-endpoint", T_STR, backup_endpoint, "S3 endpoint URL (default AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS for the region)"),
    S("backup-region", T_STR, backup_region, "S3 region (default AWS_REGION, AWS_DEFAULT_REGION, else us-east-1)"),
    S("backup-access-key", T_STR, backup_access_key, "S3 access key id (default AWS_ACCESS_KEY_ID)"),
    S("backup-secret-key", T_STR, backup_secret_key, "S3 secret key (default AWS_SECRET_ACCESS_KEY)"),
    S("backup-batch-ms", T_UINT, backup_batch_ms, "ms between log batches shipped to the bucket (default 200)"),
    S("backup-snapshot-every", T_SIZE, backup_snapshot_every, "a full snapshot after this many entries (default 10000)"),
    S("backup-snapshot-interval", T_UINT, backup_snapshot_interval, "and at least every this many seconds while there are writes (default 3600)"),
    S("backup-timeout", T_UINT, backup_timeout, "seconds a request to the bucket may go without moving data before it fails and is retried; a transfer also gets 4 s per MiB it carries (default 30)"),
    S("log-level", T_STR, log_level, "debug, info, warn or error (default info)"),
    S("max-body", T_SIZE, max_body, "largest request body in bytes (default 1048576)"),
    S("max-body-total", T_SIZE, max_body_total, "request body bytes held at once over all connections; past it 503 (default 67108864, at least max-body)"),
    S("max-header", T_SIZE, max_header, "largest request header block in bytes (default 4096)"),
    S("idle-timeout", T_UINT, idle_timeout, "seconds before an idle connection is closed (default 30)"),
    S("request-timeout", T_UINT, request_timeout, "seconds for a request's header and body to arrive (default 10)"),
    S("max-connections", T_UINT, max_connections, "open connections at most (default 4096)"),
    S("max-conns-per-ip", T_UINT, max_conns_per_ip, "connections from one client address at most (default 256; behind a proxy, raise it to max-connections)"),
    S("max-waiting", T_UINT, max_waiting, "requests waiting at once for a version or the upstream (default 2048)"),
    S("threads", T_UINT, threads, "HTTP worker threads (default: one per core)"),
    S("max-json-depth", T_UINT, max_json_depth, "deepest JSON nesting accepted (default 64)"),
    S("access-log", T_BOOL, access_log, "log every request (default false)"),
    S("audit-log", T_STR, audit_log, "audit events: append them to this file, one JSON event a line ('-': standard output)"),
    S("audit-webhook-url", T_STR, audit_webhook_url, "audit events: POST each to this URL (Flipt's webhook sink)"),
    S("audit-webhook-secret", T_STR, audit_webhook_secret, "audit events: sign webhook bodies with this secret (x-flipt-webhook-signature)"),
    S("audit-webhook-max-backoff", T_UINT, audit_webhook_max_backoff, "audit events: longest wait between webhook retries in ms (default 15000)"),
    S("audit-webhook-timeout", T_UINT, audit_webhook_timeout, "audit events: ms one webhook attempt may take (default 10000)"),
    S("audit-events", T_STR, audit_events, "audit events to emit: noun:verb pairs, e.g. flag:*,segment:created (default *:*)"),
    S("audit-queue", T_SIZE, audit_queue, "audit events waiting for the sinks at most; more are dropped and counted (default 10000)"),
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static void usage(FILE *out)
{
    fputs("Usage: edgeflag serve [--config FILE] [options]\n\noptions (also EDGEFLAG_<NAME> and the config file):\n", out);
    for (size_t i = 0; i < NSETTINGS; i++)
        fprintf(out, "  --%-16s %s\n", settings[i].name, settings[i].help);
    fputs("  --config FILE      YAML file with the settings above (flags win over env, env over file)\n", out);
}

static const setting *find(const char *name)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *a = settings[i].name, *b = name;
        /* accept kebab-case and snake_case alike */
        while (*a && *b && (*a == *b || (*a == '-' && *b == '_'))) a++, b++;
        if (!*a && !*b) return &settings[i];
    }
    return NULL;
}

static int assign(ef_serve_config *cfg, const setting *s, const char *value, const char *origin)
{
    void *field = (char *)cfg + s->offset;
    char *end;
    switch (s->k) {
    case T_STR: {
        char **p = field;
        free(*p);
        *p = strdup(value);
        return *p ? 0 : -1;
    }
    case T_SIZE:
    case T_UINT: {
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-' || (s->k == T_UINT && v > 1000000)) {
            fprintf(stderr, "edgeflag: %s: invalid value '%s' for %s (want a whole number)\n", origin, value, s->name);
            return -1;
        }
        if (s->k == T_SIZE)
            *(size_t *)field = (size_t)v;
        else
            *(unsigned *)field = (unsigned)v;
        return 0;
    }
    case T_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes"))
            *(bool *)field = true;
        else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no"))
            *(bool *)field = false;
        else {
            fprintf(stderr, "edgeflag: %s: invalid value '%s' for %s (want true or false)\n", origin, value, s->name);
            return -1;
        }
        return 0;
    }
    return -1;
}


/* ---- Flipt's config.yml and FLIPT_* --------------------------------------------------------- */

/* The Flipt keys that mean something here (dotted, as Flipt's config.yml nests them). */
enum {
    FK_VERSION,
    FK_SERVER_HOST,
    FK_SERVER_HTTP_PORT,
    FK_SERVER_PROTOCOL,
    FK_SERVER_HTTPS_PORT,
    FK_SERVER_CERT_FILE,
    FK_SERVER_CERT_KEY,
    FK_DB_URL,
    FK_STORAGE_TYPE,
    FK_STORAGE_LOCAL_PATH,
    FK_AUTH_REQUIRED,
    FK_AUTH_TOKEN_ENABLED,
    FK_AUTH_BOOTSTRAP_TOKEN,
    FK_AUTH_EXCLUDE_MANAGEMENT,
    FK_AUTH_EXCLUDE_EVALUATION,
    FK_AUTH_EXCLUDE_OFREP,
    FK_AUTH_JWT_ENABLED,
    FK_AUTH_JWT_JWKS_URL,
    FK_AUTH_JWT_PUBLIC_KEY_FILE,
    FK_AUTH_JWT_ISSUER,
    FK_AUTH_JWT_SUBJECT,
    FK_AUTH_JWT_AUDIENCES,
    FK_AUTH_OIDC_ENABLED,
    FK_AUTH_OIDC_ISSUER_URL,
    FK_AUTH_OIDC_CLIENT_ID,
    FK_AUTH_OIDC_CLIENT_SECRET,
    FK_AUTH_OIDC_REDIRECT_ADDRESS,
    FK_AUTH_OIDC_SCOPES,
    FK_AUTH_OIDC_USE_PKCE,
    FK_AUTH_OIDC_NONCE,
    FK_AUTH_SESSION_DOMAIN,
    FK_AUTH_SESSION_SECURE,
    FK_AUTH_SESSION_TOKEN_LIFETIME,
    FK_AUTH_SESSION_STATE_LIFETIME,
    FK_AUTH_SESSION_CSRF_KEY,
    FK_AUTH_OIDC_EMAIL_MATCHES,
    FK_AUTH_TOKEN_CLEANUP_INTERVAL,
    FK_AUTH_TOKEN_CLEANUP_GRACE,
    FK_AUTH_OIDC_CLEANUP_INTERVAL,
    FK_AUTH_OIDC_CLEANUP_GRACE,
    FK_CORS_ENABLED,
    FK_CORS_ALLOWED_ORIGINS,
    FK_CORS_ALLOWED_HEADERS,
    FK_LOG_LEVEL,
    FK_AUDIT_LOG_ENABLED,
    FK_AUDIT_LOG_FILE,
    FK_AUDIT_LOG_ENCODING,
    FK_AUDIT_WEBHOOK_ENABLED,
    FK_AUDIT_WEBHOOK_URL,
    FK_AUDIT_WEBHOOK_SECRET,
    FK_AUDIT_WEBHOOK_BACKOFF,
    FK_AUDIT_KAFKA_ENABLED,
    FK_AUDIT_BUFFER_CAPACITY,
    FK_AUDIT_BUFFER_FLUSH_PERIOD,
    FK_AUDIT_EVENTS,
    FK_N
};
static const char *const flipt_keys[FK_N] = {
    "version",
    "server.host",
    "server.http_port",
    "server.protocol",
    "server.https_port",
    "server.cert_file",
    "server.cert_key",
    "db.url",
    "storage.type",
    "storage.local.path",
    "authentication.required",
    "authentication.methods.token.enabled",
    "authentication.methods.token.bootstrap.token",
    "authentication.exclude.management",
    "authentication.exclude.evaluation",
    "authentication.exclude.ofrep",
    "authentication.methods.jwt.enabled",
    "authentication.methods.jwt.jwks_url",
    "authentication.methods.jwt.public_key_file",
    "authentication.methods.jwt.validate_claims.issuer",
    "authentication.methods.jwt.validate_claims.subject",
    "authentication.methods.jwt.validate_claims.audiences",
    "authentication.methods.oidc.enabled",
    /* providers.NAME.*: one provider, its name kept in flipt_vals.oidc_name */
    "authentication.methods.oidc.providers.*.issuer_url",
    "authentication.methods.oidc.providers.*.client_id",
    "authentication.methods.oidc.providers.*.client_secret",
    "authentication.methods.oidc.providers.*.redirect_address",
    "authentication.methods.oidc.providers.*.scopes",
    "authentication.methods.oidc.providers.*.use_pkce",
    "authentication.methods.oidc.providers.*.nonce",
    "authentication.session.domain",
    "authentication.session.secure",
    "authentication.session.token_lifetime",
    "authentication.session.state_lifetime",
    "authentication.session.csrf.key",
    "authentication.methods.oidc.email_matches",
    "authentication.methods.token.cleanup.interval",
    "authentication.methods.token.cleanup.grace_period",
    "authentication.methods.oidc.cleanup.interval",
    "authentication.methods.oidc.cleanup.grace_period",
    "cors.enabled",
    "cors.allowed_origins",
    "cors.allowed_headers",
    "log.level",
    "audit.sinks.log.enabled",
    "audit.sinks.log.file",
    "audit.sinks.log.encoding",
    "audit.sinks.webhook.enabled",
    "audit.sinks.webhook.url",
    "audit.sinks.webhook.signing_secret",
    "audit.sinks.webhook.max_backoff_duration",
    "audit.sinks.kafka.enabled",
    "audit.buffer.capacity",
    "audit.buffer.flush_period",
    "audit.events",
};

/* Values gathered from the file, then FLIPT_* (which wins, as in Flipt), before translation.
 * Lists are kept as one string of space-separated items: Flipt splits list strings the same way
 * (strings.Fields), so a sequence and a string mean the same. */
typedef struct flipt_vals {
    char *v[FK_N];
    char origin[FK_N][160];
    char oidc_name[65]; /* the first OIDC provider named under authentication.methods.oidc.providers */
    /* the others: their names and fields (issuer_url .. scopes, as FK_AUTH_OIDC_ISSUER_URL + i) */
    struct {
        char name[65];
        char *v[5];
        char origin[160];
    } oidc_more[EF_SERVE_OIDC_MORE];
    unsigned n_oidc_more;
    int oidc_slot; /* set by flipt_oidc_key for the next flipt_set: 0 the first provider, i + 1 oidc_more[i] */
    bool any;
} flipt_vals;

static int flipt_key_index(const char *dotted);

#define OIDC_PROVIDERS "authentication.methods.oidc.providers."

/* authentication.methods.oidc.providers.NAME.FIELD -> the key index of providers.*.FIELD, with
 * fv->oidc_slot saying which provider NAME is (the first named is slot 0, the rest get their own
 * slots, at most EF_SERVE_OIDC_MORE of them). -1 when not such a key, -2 on error (printed). */
static int flipt_oidc_key(flipt_vals *fv, const char *path, const char *origin)
{
    size_t pl = strlen(OIDC_PROVIDERS);
    fv->oidc_slot = 0;
    if (strncmp(path, OIDC_PROVIDERS, pl) != 0) return -1;
    const char *name = path + pl, *dot = strchr(name, '.');
    if (!dot || dot == name || (size_t)(dot - name) >= sizeof(fv->oidc_name)) return -1;
    size_t nl = (size_t)(dot - name);
    if (!fv->oidc_name[0] || (strlen(fv->oidc_name) == nl && !strncmp(fv->oidc_name, name, nl))) {
        memcpy(fv->oidc_name, name, nl);
        fv->oidc_name[nl] = '\0';
    } else {
        unsigned i = 0;
        while (i < fv->n_oidc_more && !(strlen(fv->oidc_more[i].name) == nl && !strncmp(fv->oidc_more[i].name, name, nl))) i++;
        if (i == fv->n_oidc_more) {
            if (i == EF_SERVE_OIDC_MORE) {
                fprintf(stderr, "edgeflag: %s: more than %d OIDC providers are configured\n", origin, EF_SERVE_OIDC_MORE + 1);
                return -2;
            }
            memcpy(fv->oidc_more[i].name, name, nl);
            fv->oidc_more[i].name[nl] = '\0';
            snprintf(fv->oidc_more[i].origin, sizeof(fv->oidc_more[i].origin), "%s", origin);
            fv->n_oidc_more++;
        }
        fv->oidc_slot = (int)i + 1;
    }
    char key[256];
    snprintf(key, sizeof(key), OIDC_PROVIDERS "*%s", dot);
    return flipt_key_index(key);
}

static void flipt_vals_free(flipt_vals *fv)
{
    for (int i = 0; i < FK_N; i++) free(fv->v[i]);
    for (unsigned i = 0; i < fv->n_oidc_more; i++)
        for (int j = 0; j < 5; j++) free(fv->oidc_more[i].v[j]);
}

static int flipt_key_index(const char *dotted)
{
    for (int i = 0; i < FK_N; i++)
        if (!strcmp(flipt_keys[i], dotted)) return i;
    return -1;
}

/* Flipt substitutes a whole-value "${NAME}" with that environment variable. */
static const char *flipt_envsubst(const char *v, char *name, size_t cap)
{
    size_t n = strlen(v);
    if (n < 4 || v[0] != '$' || v[1] != '{' || v[n - 1] != '}' || n - 3 >= cap) return v;
    for (size_t i = 2; i < n - 1; i++) {
        char c = v[i];
        bool ok = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 2 && c >= '0' && c <= '9');
        if (!ok) return v;
    }
    memcpy(name, v + 2, n - 3);
    name[n - 3] = '\0';
    const char *e = getenv(name);
    return e ? e : "";
}

static int flipt_set(flipt_vals *fv, int k, const char *value, const char *origin)
{
    char name[128];
    value = flipt_envsubst(value, name, sizeof(name));
    char *c = strdup(value);
    if (!c) return -1;
    int slot = fv->oidc_slot;
    fv->oidc_slot = 0;
    if (slot > 0) { /* a field of a further OIDC provider (flipt_oidc_key) */
        if (k >= FK_AUTH_OIDC_ISSUER_URL && k <= FK_AUTH_OIDC_SCOPES) {
            char **f = &fv->oidc_more[slot - 1].v[k - FK_AUTH_OIDC_ISSUER_URL];
            free(*f);
            *f = c;
        } else {
            free(c); /* use_pkce, nonce: as for the first provider, read and not needed */
        }
        fv->any = true;
        return 0;
    }
    free(fv->v[k]);
    fv->v[k] = c;
    snprintf(fv->origin[k], sizeof(fv->origin[k]), "%s", origin);
    fv->any = true;
    return 0;
}

static void flipt_ignored(const char *key, const char *origin)
{
    ef_log(EF_LOG_WARN, "Flipt setting does not apply to edgeflag, ignored", "key", key, "source", origin, NULL);
}

/* Walks one Flipt section: known leaves are kept, every other leaf is logged once as ignored. */
static int flipt_walk(flipt_vals *fv, yaml_document_t *doc, yaml_node_t *n, char *path, size_t len,
                      size_t cap, const char *file)
{
    char origin[160];
    snprintf(origin, sizeof(origin), "config %s:%zu:%zu", file, n->start_mark.line + 1, n->start_mark.column + 1);
    if (n->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
            yaml_node_t *k = yaml_document_get_node(doc, pr->key);
            yaml_node_t *v = yaml_document_get_node(doc, pr->value);
            if (!k || !v || k->type != YAML_SCALAR_NODE) {
                fprintf(stderr, "edgeflag: %s: keys must be names\n", origin);
                return -1;
            }
            size_t kl = k->data.scalar.length;
            if (len + 1 + kl >= cap) {
                fprintf(stderr, "edgeflag: %s: key path too long\n", origin);
                return -1;
            }
            size_t nl = len;
            if (nl) path[nl++] = '.';
            /* Flipt's keys are case-insensitive (viper lower-cases them) */
            for (size_t i = 0; i < kl; i++) {
                char c = (char)k->data.scalar.value[i];
                path[nl + i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
            }
            path[nl + kl] = '\0';
            if (flipt_walk(fv, doc, v, path, nl + kl, cap, file) != 0) return -1;
            path[len] = '\0';
        }
        return 0;
    }
    int k = flipt_oidc_key(fv, path, origin);
    if (k == -2) return -1;
    if (k < 0) k = flipt_key_index(path);
    if (n->type == YAML_SEQUENCE_NODE) {
        if (!strcmp(path, "audit.sinks.webhook.templates")) {
            /* refusing beats running without the audit trail the file asks for */
            fprintf(stderr, "edgeflag: %s: audit.sinks.webhook.templates are not supported by edgeflag; use "
                            "audit.sinks.webhook.url (docs/audit.md)\n", origin);
            return -1;
        }
        if (k != FK_CORS_ALLOWED_ORIGINS && k != FK_CORS_ALLOWED_HEADERS && k != FK_AUTH_JWT_AUDIENCES &&
            k != FK_AUDIT_EVENTS && k != FK_AUTH_OIDC_SCOPES) {
            flipt_ignored(path, origin);
            return 0;
        }
        char joined[4096];
        size_t jl = 0;
        joined[0] = '\0';
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            yaml_node_t *e = yaml_document_get_node(doc, *it);
            if (!e || e->type != YAML_SCALAR_NODE) {
                fprintf(stderr, "edgeflag: %s: %s must be a list of strings\n", origin, path);
                return -1;
            }
            int w = snprintf(joined + jl, sizeof(joined) - jl, "%s%s", jl ? " " : "", (const char *)e->data.scalar.value);
            if (w < 0 || (size_t)w >= sizeof(joined) - jl) {
                fprintf(stderr, "edgeflag: %s: %s is too long\n", origin, path);
                return -1;
            }
            jl += (size_t)w;
        }
        return flipt_set(fv, k, joined, origin);
    }
    if (k < 0) {
        flipt_ignored(path, origin);
        return 0;
    }
    return flipt_set(fv, k, (const char *)n->data.scalar.value, origin);
}

/* FLIPT_<PATH> with '.' as '_', upper case, as Flipt's viper binds them. Variables that name no
 * key applied here are logged once as ignored. */
static int flipt_load_env(flipt_vals *fv)
{
    extern char **environ;
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "FLIPT_", 6) != 0) continue;
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        size_t nl = (size_t)(eq - *e);
        int k = -1;
        for (int i = 0; i < FK_N && k < 0; i++) {
            const char *a = flipt_keys[i], *b = *e + 6;
            size_t j = 0;
            for (; a[j] && b + j < eq; j++) {
                char want = a[j] == '.' ? '_' : (char)(a[j] >= 'a' && a[j] <= 'z' ? a[j] - 32 : a[j]);
                if (b[j] != want) break;
            }
            if (!a[j] && b + j == eq) k = i;
        }
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)(nl > 100 ? 100 : nl), *e);
        if (k < 0) {
            flipt_ignored(name, "environment");
            continue;
        }
        if (flipt_set(fv, k, eq + 1, name) != 0) return -1;
    }
    return 0;
}

static int flipt_bool(const flipt_vals *fv, int k, bool *out)
{
    const char *v = fv->v[k];
    if (!v) return 0;
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "t")) *out = true;
    else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "f") || !*v) *out = false;
    else {
        fprintf(stderr, "edgeflag: %s: invalid value '%s' for %s (want true or false)\n", fv->origin[k], v, flipt_keys[k]);
        return -1;
    }
    return 0;
}

/* Splits on white space as Go's strings.Fields. NULL-terminated, owned by the caller. */
static char **fields_split(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p;) {
        while (*p == ' ' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        n++;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n') p++;
    }
    char **v = calloc(n + 1, sizeof(*v));
    if (!v) return NULL;
    size_t i = 0;
    for (const char *p = s; *p;) {
        while (*p == ' ' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        const char *b = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n') p++;
        if (!(v[i++] = strndup(b, (size_t)(p - b)))) {
            for (size_t j = 0; j < i; j++) free(v[j]);
            free(v);
            return NULL;
        }
    }
    return v;
}

static int set_str(char **field, const char *v)
{
    if (*field) return 0; /* an edgeflag setting of the same meaning wins */
    *field = strdup(v);
    return *field ? 0 : -1;
}

/* Flipt's bootstrap token when authentication is required without one: Flipt creates a random
 * token and logs it; so does edgeflag (a static token lives as long as the process). */
static int random_token(char *out, size_t cap)
{
    unsigned char b[24];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t r = read(fd, b, sizeof(b));
    close(fd);
    if (r != (ssize_t)sizeof(b) || cap < 2 * sizeof(b) + 1) return -1;
    for (size_t i = 0; i < sizeof(b); i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

/* A Go duration ("15s", "1m30s", "500ms", "2h") in milliseconds; false when it is not one. */
static bool go_duration_ms(const char *s, uint64_t *out)
{
    static const struct { const char *unit; double ms; } units[] = {
        {"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 6e4}, {"h", 3.6e6}};
    double total = 0;
    const char *p = s;
    if (!*p) return false;
    if (!strcmp(p, "0")) {
        *out = 0;
        return true;
    }
    while (*p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || v < 0 || *p == '-' || *p == '+' || *p == ' ') return false;
        p = end;
        size_t best = 0;
        int u = -1;
        for (int i = 0; i < 7; i++) {
            size_t n = strlen(units[i].unit);
            if (!strncmp(p, units[i].unit, n) && n > best) best = n, u = i;
        }
        if (u < 0) return false;
        p += best;
        total += v * units[u].ms;
        if (total > 1e12) return false;
    }
    *out = (uint64_t)(total + 0.5);
    return true;
}

/* audit.*: Flipt's sinks as edgeflag's audit-* settings; its buffer checked as Flipt checks it. */
static int flipt_apply_audit(ef_serve_config *cfg, const flipt_vals *fv)
{
    const char *const *v = (const char *const *)fv->v;
    bool log_on = false, hook_on = false, kafka_on = false;
    if (flipt_bool(fv, FK_AUDIT_LOG_ENABLED, &log_on) || flipt_bool(fv, FK_AUDIT_WEBHOOK_ENABLED, &hook_on) ||
        flipt_bool(fv, FK_AUDIT_KAFKA_ENABLED, &kafka_on))
        return -1;
    if (kafka_on) {
        fprintf(stderr, "edgeflag: %s: the kafka audit sink is not supported by edgeflag (log and webhook are; "
                        "docs/audit.md)\n", fv->origin[FK_AUDIT_KAFKA_ENABLED]);
        return -1;
    }
    if (log_on && set_str(&cfg->audit_log, v[FK_AUDIT_LOG_FILE] && *v[FK_AUDIT_LOG_FILE] ? v[FK_AUDIT_LOG_FILE] : "-"))
        return -1;
    if (log_on && v[FK_AUDIT_LOG_ENCODING] && strcmp(v[FK_AUDIT_LOG_ENCODING], "json") != 0)
        ef_log(EF_LOG_WARN, "Flipt setting does not apply to edgeflag (the audit log is always JSON lines), ignored",
               "key", "audit.sinks.log.encoding", "source", fv->origin[FK_AUDIT_LOG_ENCODING], NULL);
    if (hook_on) {
        if (!v[FK_AUDIT_WEBHOOK_URL] || !*v[FK_AUDIT_WEBHOOK_URL]) {
            fprintf(stderr, "edgeflag: %s: url or template(s) not provided\n",
                    fv->origin[FK_AUDIT_WEBHOOK_ENABLED]);
            return -1;
        }
        if (set_str(&cfg->audit_webhook_url, v[FK_AUDIT_WEBHOOK_URL])) return -1;
        if (v[FK_AUDIT_WEBHOOK_SECRET] && set_str(&cfg->audit_webhook_secret, v[FK_AUDIT_WEBHOOK_SECRET])) return -1;
        if (v[FK_AUDIT_WEBHOOK_BACKOFF] && !cfg->audit_webhook_max_backoff) {
            uint64_t ms;
            if (!go_duration_ms(v[FK_AUDIT_WEBHOOK_BACKOFF], &ms) || ms > 1000000) {
                fprintf(stderr, "edgeflag: %s: invalid value '%s' for audit.sinks.webhook.max_backoff_duration (want a "
                                "duration such as 15s, at most 1000s)\n",
                        fv->origin[FK_AUDIT_WEBHOOK_BACKOFF], v[FK_AUDIT_WEBHOOK_BACKOFF]);
                return -1;
            }
            cfg->audit_webhook_max_backoff = (unsigned)ms;
        }
    }
    if (v[FK_AUDIT_EVENTS] && set_str(&cfg->audit_events, v[FK_AUDIT_EVENTS])) return -1;
    if (v[FK_AUDIT_BUFFER_CAPACITY]) {
        char *end;
        long c = strtol(v[FK_AUDIT_BUFFER_CAPACITY], &end, 10);
        if (*end || end == v[FK_AUDIT_BUFFER_CAPACITY] || c < 2 || c > 10) {
            fprintf(stderr, "edgeflag: %s: buffer capacity below 2 or above 10\n", fv->origin[FK_AUDIT_BUFFER_CAPACITY]);
            return -1;
        }
    }
    if (v[FK_AUDIT_BUFFER_FLUSH_PERIOD]) {
        uint64_t ms;
        if (!go_duration_ms(v[FK_AUDIT_BUFFER_FLUSH_PERIOD], &ms) || ms < 120000 || ms > 300000) {
            fprintf(stderr, "edgeflag: %s: flush period below 2 minutes or greater than 5 minutes\n",
                    fv->origin[FK_AUDIT_BUFFER_FLUSH_PERIOD]);
            return -1;
        }
    }
    return 0;
}

/* A session lifetime (Go duration) in whole seconds, 1 s to 1,000,000 s. */
static int flipt_lifetime(const flipt_vals *fv, int k, unsigned *out)
{
    uint64_t ms;
    if (!fv->v[k]) return 0;
    if (!go_duration_ms(fv->v[k], &ms) || ms < 1000 || ms > 1000000000ull) {
        fprintf(stderr, "edgeflag: %s: invalid value '%s' for %s (a duration from 1s to 277h)\n", fv->origin[k],
                fv->v[k], flipt_keys[k]);
        return -1;
    }
    if (!*out) *out = (unsigned)(ms / 1000);
    return 0;
}

/* A cleanup schedule's duration (Go duration) in whole seconds: positive, as Flipt requires. */
static int flipt_cleanup(const flipt_vals *fv, int k, unsigned *out)
{
    uint64_t ms;
    if (!fv->v[k]) return 0;
    if (!go_duration_ms(fv->v[k], &ms) || ms < 1000 || ms > 1000000000ull) {
        fprintf(stderr, "edgeflag: %s: field \"%s\": positive non-zero duration required (1s to 277h, got '%s')\n",
                fv->origin[k], flipt_keys[k], fv->v[k]);
        return -1;
    }
    if (!*out) *out = (unsigned)(ms / 1000);
    return 0;
}

/* Flipt's oidc method and session settings (docs/auth.md): one provider. */
static int flipt_apply_oidc(ef_serve_config *cfg, const flipt_vals *fv, bool required)
{
    const char *const *v = (const char *const *)fv->v;
    bool enabled = false, secure = false;
    if (flipt_bool(fv, FK_AUTH_OIDC_ENABLED, &enabled) || flipt_bool(fv, FK_AUTH_SESSION_SECURE, &secure)) return -1;
    if (!enabled || !required) {
        if (enabled) ef_log(EF_LOG_INFO, "authentication is not required: the oidc method is not used", NULL);
        return 0;
    }
    if (!fv->oidc_name[0]) {
        fprintf(stderr, "edgeflag: %s: authentication.methods.oidc: no provider under providers\n",
                fv->origin[FK_AUTH_OIDC_ENABLED]);
        return -1;
    }
    static const struct { int k; size_t off; } keys[] = {
        {FK_AUTH_OIDC_ISSUER_URL, offsetof(ef_serve_config, auth_oidc_issuer_url)},
        {FK_AUTH_OIDC_CLIENT_ID, offsetof(ef_serve_config, auth_oidc_client_id)},
        {FK_AUTH_OIDC_CLIENT_SECRET, offsetof(ef_serve_config, auth_oidc_client_secret)},
        {FK_AUTH_OIDC_REDIRECT_ADDRESS, offsetof(ef_serve_config, auth_oidc_redirect_address)},
        {FK_AUTH_OIDC_SCOPES, offsetof(ef_serve_config, auth_oidc_scopes)},
        {FK_AUTH_OIDC_EMAIL_MATCHES, offsetof(ef_serve_config, auth_oidc_email_matches)},
    };
    if (set_str(&cfg->auth_oidc_provider, fv->oidc_name) != 0) return -1;
    for (unsigned i = 0; i < fv->n_oidc_more; i++) { /* the config file's further providers */
        __typeof__(cfg->auth_oidc_more[0]) *m = &cfg->auth_oidc_more[cfg->n_auth_oidc_more];
        char **dst[5] = {&m->issuer_url, &m->client_id, &m->client_secret, &m->redirect_address, &m->scopes};
        for (int j = 0; j < 5; j++)
            if (fv->oidc_more[i].v[j] && fv->oidc_more[i].v[j][0] && !(*dst[j] = strdup(fv->oidc_more[i].v[j]))) return -1;
        if (!(m->name = strdup(fv->oidc_more[i].name))) return -1;
        cfg->n_auth_oidc_more++;
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (v[keys[i].k] && v[keys[i].k][0] && set_str((char **)((char *)cfg + keys[i].off), v[keys[i].k]) != 0)
            return -1;
    if (v[FK_AUTH_OIDC_NONCE])
        ef_log(EF_LOG_INFO, "oidc: nonce is ignored: edgeflag makes a random nonce per sign-in", NULL);
    if (v[FK_AUTH_SESSION_CSRF_KEY])
        ef_log(EF_LOG_INFO, "session.csrf.key is ignored: edgeflag derives each session's CSRF token from it", NULL);
    if (v[FK_AUTH_SESSION_DOMAIN] && v[FK_AUTH_SESSION_DOMAIN][0]) {
        /* as Flipt: scheme and port stripped; "localhost" means host-only cookies */
        const char *d = v[FK_AUTH_SESSION_DOMAIN], *sep = strstr(d, "://");
        if (sep) d = sep + 3;
        char host[256];
        snprintf(host, sizeof(host), "%.*s", (int)strcspn(d, ":/"), d);
        if (host[0] && strcmp(host, "localhost") != 0 && set_str(&cfg->auth_session_domain, host) != 0) return -1;
    }
    if (secure) cfg->auth_session_secure = true;
    if (flipt_lifetime(fv, FK_AUTH_SESSION_TOKEN_LIFETIME, &cfg->auth_session_token_lifetime) ||
        flipt_lifetime(fv, FK_AUTH_SESSION_STATE_LIFETIME, &cfg->auth_session_state_lifetime))
        return -1;
    return 0;
}

/* Translates the gathered Flipt values into settings left unset by edgeflag's own keys. */
static int flipt_apply(ef_serve_config *cfg, const flipt_vals *fv)
{
    const char *const *v = (const char *const *)fv->v;
    if (v[FK_VERSION] && strcmp(v[FK_VERSION], "1.0") != 0) {
        fprintf(stderr, "edgeflag: %s: invalid version: %s (Flipt's config version is 1.0)\n", fv->origin[FK_VERSION], v[FK_VERSION]);
        return -1;
    }
    /* server.protocol https serves TLS on server.https_port (443) with cert_file and cert_key,
     * as Flipt does; anything but "https" is http, as Flipt's decoder reads it */
    bool https = v[FK_SERVER_PROTOCOL] && !strcasecmp(v[FK_SERVER_PROTOCOL], "https");
    if (v[FK_SERVER_PROTOCOL] && !https && strcasecmp(v[FK_SERVER_PROTOCOL], "http") != 0)
        ef_log(EF_LOG_WARN, "server.protocol is neither http nor https: serving http, as Flipt would",
               "source", fv->origin[FK_SERVER_PROTOCOL], NULL);
    if (https) {
        static const int need[2] = {FK_SERVER_CERT_FILE, FK_SERVER_CERT_KEY};
        char **dst[2] = {&cfg->tls_cert, &cfg->tls_key};
        for (int i = 0; i < 2; i++) {
            if (*dst[i]) continue; /* --tls-cert / --tls-key win */
            if (!v[need[i]] || !*v[need[i]]) {
                fprintf(stderr, "edgeflag: %s: field \"%s\": non-empty value is required (server.protocol is https)\n",
                        fv->origin[FK_SERVER_PROTOCOL], flipt_keys[need[i]]);
                return -1;
            }
            if (set_str(dst[i], v[need[i]]) != 0) return -1;
        }
    } else {
        if (v[FK_SERVER_CERT_FILE]) flipt_ignored("server.cert_file (server.protocol is not https)", fv->origin[FK_SERVER_CERT_FILE]);
        if (v[FK_SERVER_CERT_KEY]) flipt_ignored("server.cert_key (server.protocol is not https)", fv->origin[FK_SERVER_CERT_KEY]);
    }
    int port_key = https ? FK_SERVER_HTTPS_PORT : FK_SERVER_HTTP_PORT;
    if (v[FK_SERVER_HOST] || v[port_key] || https) {
        /* the part not given takes Flipt's default, as it would in Flipt */
        const char *host = v[FK_SERVER_HOST] ? v[FK_SERVER_HOST] : "0.0.0.0";
        const char *port = v[port_key] ? v[port_key] : https ? "443" : "8080";
        char *end;
        errno = 0;
        unsigned long p = strtoul(port, &end, 10);
        if (!*port || *end || errno || p > 65535 || port[0] == '-' || port[0] == '+' || port[0] == ' ') {
            fprintf(stderr, "edgeflag: %s: invalid value '%s' for %s (want a port number)\n",
                    fv->origin[port_key], port, flipt_keys[port_key]);
            return -1;
        }
        char listen[300];
        bool v6 = strchr(host, ':') != NULL && host[0] != '[';
        snprintf(listen, sizeof(listen), v6 ? "[%s]:%lu" : "%s:%lu", host, p);
        if (set_str(&cfg->listen, listen) != 0) return -1;
    }
    const char *stype = v[FK_STORAGE_TYPE] ? v[FK_STORAGE_TYPE] : "database";
    if (!strcmp(stype, "local")) {
        /* Flipt's default local path is the working directory */
        if (!cfg->snapshot && !cfg->upstream &&
            set_str(&cfg->dir, v[FK_STORAGE_LOCAL_PATH] ? v[FK_STORAGE_LOCAL_PATH] : ".") != 0)
            return -1;
        if (v[FK_DB_URL]) flipt_ignored("db.url", fv->origin[FK_DB_URL]);
    } else if (!strcmp(stype, "database")) {
        if (v[FK_STORAGE_LOCAL_PATH]) flipt_ignored("storage.local.path", fv->origin[FK_STORAGE_LOCAL_PATH]);
        const char *u = v[FK_DB_URL];
        if (u && !cfg->db && !cfg->dir && !cfg->snapshot && !cfg->upstream) {
            char buf[4096];
            const char *db = NULL;
            if (!strncmp(u, "file:", 5) || !strncmp(u, "libsql://", 9) || !strncmp(u, "http://", 7) ||
                !strncmp(u, "https://", 8) || !strncmp(u, "postgres://", 11) ||
                !strncmp(u, "postgresql://", 13) || !strncmp(u, "cockroach://", 12) ||
                !strncmp(u, "mysql://", 8))
                db = u;
            else if (!strncmp(u, "sqlite3:", 8) || !strncmp(u, "sqlite:", 7)) {
                /* sqlite:PATH and sqlite:///PATH name a file, as dburl reads them */
                const char *path = u + (u[6] == ':' ? 7 : 8);
                if (!strncmp(path, "//", 2)) path += 2;
                snprintf(buf, sizeof(buf), "file:%s", path);
                db = buf;
            } else {
                fprintf(stderr,
                        "edgeflag: %s: db.url '%.*s...': edgeflag stores flags in SQLite, libSQL, PostgreSQL or "
                        "MySQL only (file:, sqlite:, libsql://, http(s)://, postgres(ql)://, "
                        "cockroach://, mysql://); "
                        "move the data with `flipt export` and "
                        "`edgeflag import`\n",
                        fv->origin[FK_DB_URL], (int)strcspn(u, ":"), u);
                return -1;
            }
            if (set_str(&cfg->db, db) != 0) return -1;
        }
    } else {
        fprintf(stderr,
                "edgeflag: %s: storage.type '%s' is not supported by edgeflag (database or local); "
                "see docs/api.md\n",
                fv->origin[FK_STORAGE_TYPE][0] ? fv->origin[FK_STORAGE_TYPE] : "config", stype);
        return -1;
    }
    bool required = false, token_enabled = false, jwt_enabled = false;
    if (flipt_bool(fv, FK_AUTH_REQUIRED, &required) || flipt_bool(fv, FK_AUTH_TOKEN_ENABLED, &token_enabled) ||
        flipt_bool(fv, FK_AUTH_JWT_ENABLED, &jwt_enabled))
        return -1;
    if (jwt_enabled && required) {
        static const struct { int k; size_t off; } jwt_keys[] = {
            {FK_AUTH_JWT_JWKS_URL, offsetof(ef_serve_config, auth_jwt_jwks_url)},
            {FK_AUTH_JWT_PUBLIC_KEY_FILE, offsetof(ef_serve_config, auth_jwt_public_key_file)},
            {FK_AUTH_JWT_ISSUER, offsetof(ef_serve_config, auth_jwt_issuer)},
            {FK_AUTH_JWT_SUBJECT, offsetof(ef_serve_config, auth_jwt_subject)},
            {FK_AUTH_JWT_AUDIENCES, offsetof(ef_serve_config, auth_jwt_audiences)},
        };
        for (size_t i = 0; i < sizeof(jwt_keys) / sizeof(jwt_keys[0]); i++)
            if (v[jwt_keys[i].k] && v[jwt_keys[i].k][0] &&
                set_str((char **)((char *)cfg + jwt_keys[i].off), v[jwt_keys[i].k]) != 0)
                return -1;
        if (!v[FK_AUTH_JWT_JWKS_URL] && !v[FK_AUTH_JWT_PUBLIC_KEY_FILE]) {
            fprintf(stderr, "edgeflag: %s: authentication.methods.jwt: one of jwks_url or public_key_file is required\n",
                    fv->origin[FK_AUTH_JWT_ENABLED]);
            return -1;
        }
    } else if (jwt_enabled) {
        ef_log(EF_LOG_INFO, "authentication is not required: the jwt method is not used", NULL);
    }
    if (flipt_apply_oidc(cfg, fv, required) != 0) return -1;
    if (flipt_cleanup(fv, FK_AUTH_TOKEN_CLEANUP_INTERVAL, &cfg->auth_token_cleanup_interval) ||
        flipt_cleanup(fv, FK_AUTH_TOKEN_CLEANUP_GRACE, &cfg->auth_token_cleanup_grace) ||
        flipt_cleanup(fv, FK_AUTH_OIDC_CLEANUP_INTERVAL, &cfg->auth_oidc_cleanup_interval) ||
        flipt_cleanup(fv, FK_AUTH_OIDC_CLEANUP_GRACE, &cfg->auth_oidc_cleanup_grace))
        return -1;
    /* JWT or OIDC alone: Flipt makes no bootstrap token when its token method is off */
    if (required && !cfg->auth_token && (token_enabled || (!jwt_enabled && !cfg->auth_oidc_provider))) {
        if (v[FK_AUTH_BOOTSTRAP_TOKEN] && v[FK_AUTH_BOOTSTRAP_TOKEN][0]) {
            if (set_str(&cfg->auth_token, v[FK_AUTH_BOOTSTRAP_TOKEN]) != 0) return -1;
        } else {
            char tok[64];
            if (random_token(tok, sizeof(tok)) != 0 || set_str(&cfg->auth_token, tok) != 0) return -1;
            ef_log(EF_LOG_WARN, "authentication required without a bootstrap token: created one for this process",
                   "client_token", tok, NULL);
        }
        if (!token_enabled)
            ef_log(EF_LOG_WARN, "authentication.required without the token method: edgeflag accepts tokens anyway", NULL);
    } else if (!required && v[FK_AUTH_BOOTSTRAP_TOKEN]) {
        ef_log(EF_LOG_INFO, "authentication is not required: the bootstrap token is not needed", NULL);
    }
    static const struct { int k; const char *cls; } excl[] = {
        {FK_AUTH_EXCLUDE_MANAGEMENT, "management"},
        {FK_AUTH_EXCLUDE_EVALUATION, "evaluation"},
        {FK_AUTH_EXCLUDE_OFREP, "ofrep"},
    };
    char list[64] = "";
    for (size_t i = 0; i < sizeof(excl) / sizeof(excl[0]); i++) {
        bool on = false;
        if (flipt_bool(fv, excl[i].k, &on) != 0) return -1;
        if (on) snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", list[0] ? "," : "", excl[i].cls);
    }
    if (list[0] && set_str(&cfg->auth_exclude, list) != 0) return -1;
    if (flipt_bool(fv, FK_CORS_ENABLED, &cfg->cors_enabled) != 0) return -1;
    if (v[FK_CORS_ALLOWED_ORIGINS] && !(cfg->cors_allowed_origins = fields_split(v[FK_CORS_ALLOWED_ORIGINS])))
        return -1;
    if (v[FK_CORS_ALLOWED_HEADERS] && !(cfg->cors_allowed_headers = fields_split(v[FK_CORS_ALLOWED_HEADERS])))
        return -1;
    if (v[FK_LOG_LEVEL] && !cfg->log_level) {
        /* Flipt's levels are upper case and include FATAL and PANIC, which mean error here */
        char lvl[16];
        size_t i = 0;
        for (; v[FK_LOG_LEVEL][i] && i + 1 < sizeof(lvl); i++) {
            char c = v[FK_LOG_LEVEL][i];
            lvl[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
        }
        lvl[i] = '\0';
        if (!strcmp(lvl, "fatal") || !strcmp(lvl, "panic") || !strcmp(lvl, "dpanic")) strcpy(lvl, "error");
        if (!strcmp(lvl, "warning")) strcpy(lvl, "warn");
        ef_log_level parsed;
        if (ef_log_parse_level(lvl, &parsed) != 0) {
            fprintf(stderr, "edgeflag: %s: invalid value '%s' for log.level (DEBUG, INFO, WARN, ERROR)\n",
                    fv->origin[FK_LOG_LEVEL], v[FK_LOG_LEVEL]);
            return -1;
        }
        if (set_str(&cfg->log_level, lvl) != 0) return -1;
    }
    return flipt_apply_audit(cfg, fv);
}

static int load_file(ef_serve_config *cfg, flipt_vals *fv, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    int frc = ef_file_read(path, EF_FILE_MAX_SMALL, &text, &len);
    if (frc != 0) {
        fprintf(stderr, "edgeflag: config %s: %s\n", path, ef_file_strerror(frc));
        return -1;
    }
    yaml_parser_t p;
    yaml_document_t doc;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int rc = -1;
    if (!yaml_parser_load(&p, &doc)) {
        fprintf(stderr, "edgeflag: config %s:%zu:%zu: %s\n", path, p.problem_mark.line + 1,
                p.problem_mark.column + 1, p.problem ? p.problem : "invalid YAML");
        goto out_parser;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) { /* an empty file sets nothing */
        rc = 0;
        goto out_doc;
    }
    if (root->type != YAML_MAPPING_NODE) {
        fprintf(stderr, "edgeflag: config %s:%zu:%zu: expected a mapping of settings\n", path,
                root->start_mark.line + 1, root->start_mark.column + 1);
        goto out_doc;
    }
    for (yaml_node_pair_t *pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(&doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(&doc, pair->value);
        if (k && k->type == YAML_SCALAR_NODE && v && v->type != YAML_SCALAR_NODE) {
            /* a section: Flipt's config.yml */
            char kp[512];
            snprintf(kp, sizeof(kp), "%s", (const char *)k->data.scalar.value);
            for (char *c = kp; *c; c++)
                if (*c >= 'A' && *c <= 'Z') *c = (char)(*c + 32);
            if (flipt_walk(fv, &doc, v, kp, strlen(kp), sizeof(kp), path) != 0) goto out_doc;
            continue;
        }
        if (k && k->type == YAML_SCALAR_NODE && v && !strcmp((const char *)k->data.scalar.value, "version")) {
            char origin[160];
            snprintf(origin, sizeof(origin), "config %s:%zu:%zu", path, v->start_mark.line + 1, v->start_mark.column + 1);
            if (flipt_set(fv, FK_VERSION, (const char *)v->data.scalar.value, origin) != 0) goto out_doc;
            continue;
        }
        if (!k || !v || k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE) {
            fprintf(stderr, "edgeflag: config %s:%zu:%zu: settings are name: value pairs\n", path,
                    k ? k->start_mark.line + 1 : 0, k ? k->start_mark.column + 1 : 0);
            goto out_doc;
        }
        const char *name = (const char *)k->data.scalar.value;
        const setting *s = find(name);
        char origin[512];
        snprintf(origin, sizeof(origin), "config %s:%zu:%zu", path, v->start_mark.line + 1, v->start_mark.column + 1);
        if (!s) {
            fprintf(stderr, "edgeflag: config %s:%zu:%zu: unknown setting '%s'\n", path, k->start_mark.line + 1,
                    k->start_mark.column + 1, name);
            goto out_doc;
        }
        if (assign(cfg, s, (const char *)v->data.scalar.value, origin) != 0) goto out_doc;
    }
    rc = 0;
out_doc:
    yaml_document_delete(&doc);
out_parser:
    yaml_parser_delete(&p);
    free(text);
    return rc;
}

static int load_env(ef_serve_config *cfg)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        char env[64] = "EDGEFLAG_";
        size_t n = strlen(env);
        for (const char *p = settings[i].name; *p && n + 1 < sizeof(env); p++)
            env[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        env[n] = '\0';
        const char *v = getenv(env);
        if (v && assign(cfg, &settings[i], v, env) != 0) return -1;
    }
    return 0;
}

int ef_serve_config_load(ef_serve_config *cfg, int argc, char **argv)
{
    memset(cfg, 0, sizeof(*cfg));
    const char *config_path = getenv("EDGEFLAG_CONFIG");
    /* first pass: --config and --help only */
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) {
                fputs("edgeflag: --config needs a file\n", stderr);
                return -1;
            }
            config_path = argv[++i];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            config_path = argv[i] + 9;
        }
    }
    /* Flipt's file and FLIPT_* first, so every edgeflag setting (file, environment, flag) wins */
    flipt_vals fv = {0};
    int frc = config_path ? load_file(cfg, &fv, config_path) : 0;
    if (frc == 0) frc = flipt_load_env(&fv);
    if (frc == 0 && fv.any) frc = flipt_apply(cfg, &fv);
    flipt_vals_free(&fv);
    if (frc != 0) return -1;
    if (load_env(cfg) != 0) return -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--config")) {
            i++;
            continue;
        }
        if (!strncmp(a, "--config=", 9)) continue;
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "edgeflag: serve: unexpected argument '%s'\n", a);
            usage(stderr);
            return -1;
        }
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (nl >= sizeof(name)) nl = sizeof(name) - 1;
        memcpy(name, a + 2, nl);
        name[nl] = '\0';
        const setting *s = find(name);
        if (!s) {
            fprintf(stderr, "edgeflag: serve: unknown option '--%s'\n", name);
            usage(stderr);
            return -1;
        }
        const char *value;
        if (eq)
            value = eq + 1;
        else if (s->k == T_BOOL)
            value = "true";
        else if (i + 1 < argc)
            value = argv[++i];
        else {
            fprintf(stderr, "edgeflag: serve: --%s needs a value\n", name);
            return -1;
        }
        if (assign(cfg, s, value, "command line") != 0) return -1;
    }
    if (!cfg->listen) cfg->listen = strdup("127.0.0.1:8080");
    if (!cfg->max_body) cfg->max_body = 1 << 20;
    if (!cfg->max_body_total) cfg->max_body_total = (size_t)64 << 20;
    if (cfg->max_body_total < cfg->max_body) {
        fputs("edgeflag: serve: --max-body-total must be at least --max-body\n", stderr);
        return -1;
    }
    if (!cfg->max_header) cfg->max_header = EF_HTTP_MAX_HEADER_DEFAULT;
    if (!cfg->idle_timeout) cfg->idle_timeout = 30;
    if (!cfg->backup_timeout) cfg->backup_timeout = 30;
    if (!cfg->request_timeout) cfg->request_timeout = 10;
    if (!cfg->max_connections) cfg->max_connections = 4096;
    if (!cfg->max_conns_per_ip) cfg->max_conns_per_ip = 256;
    if (!cfg->max_waiting) cfg->max_waiting = 2048;
    if (!cfg->max_json_depth) cfg->max_json_depth = 64;
    int sources = (cfg->dir != NULL) + (cfg->snapshot != NULL) + (cfg->upstream != NULL);
    if (sources > 1) {
        fputs("edgeflag: serve: --dir, --snapshot and --upstream exclude each other\n", stderr);
        return -1;
    }
    if ((cfg->tls_cert != NULL) != (cfg->tls_key != NULL)) {
        fputs("edgeflag: serve: --tls-cert and --tls-key go together\n", stderr);
        return -1;
    }
    if (cfg->tls_client_ca && !cfg->tls_cert) {
        fputs("edgeflag: serve: --tls-client-ca needs HTTPS (--tls-cert and --tls-key)\n", stderr);
        return -1;
    }
    if ((cfg->upstream_cert != NULL) != (cfg->upstream_key != NULL)) {
        fputs("edgeflag: serve: --upstream-cert and --upstream-key go together\n", stderr);
        return -1;
    }
    if ((cfg->upstream_ca || cfg->upstream_cert) && !cfg->upstream) {
        fputs("edgeflag: serve: --upstream-ca, --upstream-cert and --upstream-key need --upstream\n", stderr);
        return -1;
    }
    if ((cfg->upstream_ca || cfg->upstream_cert) && strncmp(cfg->upstream, "https://", 8) != 0) {
        fputs("edgeflag: serve: --upstream-ca, --upstream-cert and --upstream-key need an https:// upstream\n", stderr);
        return -1;
    }
    return 0;
}

static void strv_free(char ***v)
{
    if (!*v) return;
    for (char **p = *v; *p; p++) free(*p);
    free(*v);
    *v = NULL;
}

void ef_serve_config_free(ef_serve_config *cfg)
{
    for (unsigned i = 0; i < cfg->n_auth_oidc_more; i++) {
        free(cfg->auth_oidc_more[i].name);
        free(cfg->auth_oidc_more[i].issuer_url);
        free(cfg->auth_oidc_more[i].client_id);
        free(cfg->auth_oidc_more[i].client_secret);
        free(cfg->auth_oidc_more[i].redirect_address);
        free(cfg->auth_oidc_more[i].scopes);
    }
    cfg->n_auth_oidc_more = 0;
    strv_free(&cfg->cors_allowed_origins);
    strv_free(&cfg->cors_allowed_headers);
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].k == T_STR) {
            char **p = (char **)((char *)cfg + settings[i].offset);
            free(*p);
            *p = NULL;
        }
}
