/*
 * serve_config.h - `edgeflag serve` settings from flags, EDGEFLAG_* environment variables and an
 * optional YAML file, in that order of precedence (docs/configuration.md lists every setting).
 */
#ifndef EF_CLI_SERVE_CONFIG_H
#define EF_CLI_SERVE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define EF_SERVE_OIDC_MORE 7 /* providers beyond the first, from Flipt's config file */

typedef struct ef_serve_config {
    char *name;          /* the node's name (NULL: the host name); ef_node_name_valid */
    char *listen;        /* HOST:PORT */
    char *db;            /* path or file: URL */
    char *db_token;      /* credentials for a remote database */
    unsigned db_poll_ms; /* libSQL: interval of the look for other nodes' writes (0: 1000) */
    char *db_cache;      /* libSQL: local cache file (NULL: under ./data/) */
    char *db_ca;         /* libSQL over https: CA file (NULL: the system's CAs) */
    char *dir;           /* read-only directory mode */
    char *snapshot;      /* read-only single snapshot document */
    char *auth_token;    /* makes authentication required */
    char *auth_exclude;  /* management,evaluation,ofrep: classes that stay open */
    /* Flipt's jwt method (docs/auth.md): one of the key sources makes authentication required */
    char *auth_jwt_jwks_url;
    char *auth_jwt_public_key_file;
    char *auth_jwt_issuer;
    char *auth_jwt_subject;
    char *auth_jwt_audiences;     /* comma or space separated */
    unsigned auth_jwt_refresh;    /* seconds between JWKS refreshes (0: 300) */
    unsigned auth_jwt_min_refresh; /* seconds at least between two JWKS fetches (0: 10) */
    /* Flipt's oidc method (docs/auth.md): the provider of the auth-oidc-* settings, and further
     * ones from Flipt's config file (authentication.methods.oidc.providers.NAME) */
    char *auth_oidc_provider;
    char *auth_oidc_issuer_url;
    char *auth_oidc_client_id;
    char *auth_oidc_client_secret;
    char *auth_oidc_redirect_address;
    char *auth_oidc_scopes;
    char *auth_oidc_email_matches; /* space-separated POSIX extended regexes */
    struct {
        char *name, *issuer_url, *client_id, *client_secret, *redirect_address, *scopes;
    } auth_oidc_more[EF_SERVE_OIDC_MORE];
    unsigned n_auth_oidc_more;
    unsigned auth_session_token_lifetime; /* seconds (0: 86400) */
    unsigned auth_session_state_lifetime; /* seconds (0: 600) */
    unsigned auth_token_cleanup_interval, auth_token_cleanup_grace; /* seconds (0: 3600, 1800) */
    unsigned auth_oidc_cleanup_interval, auth_oidc_cleanup_grace;   /* seconds (0: 3600, 1800) */
    bool auth_session_secure;
    char *auth_session_domain;
    char *upstream;      /* replica mode: the node to follow */
    char *upstream_token;
    char *upstream_ca;   /* replica: CA file for the upstream's certificate (NULL: the system's) */
    char *upstream_cert; /* replica: client certificate and key presented to the upstream */
    char *upstream_key;
    char *tls_cert;      /* HTTPS: certificate chain and key files (reloaded on SIGHUP) */
    char *tls_key;
    char *tls_client_ca; /* HTTPS: clients must present a certificate this CA signed */
    unsigned write_wait_ms;       /* replica: wait this long for a forwarded write to apply here */
    unsigned replica_sync_ms;     /* replica: applied entries are fsync'd in batches this often (0: 50) */
    unsigned min_version_wait_ms; /* X-Edgeflag-Min-Version: longest wait */
    unsigned max_staleness;       /* seconds; /ready fails beyond it (0: no limit) */
    size_t log_keep_entries;      /* change-log retention by count (0: keep all) */
    unsigned log_max_age;         /* change-log retention by age in seconds (0: keep all) */
    size_t sync_max_event;        /* replica: largest entry or dump from the upstream (0: defaults) */
    size_t sync_dump_min_rate;    /* bytes/s a downstream node takes a dump at, at least (0: default) */
    size_t sync_feed_budget;      /* bytes queued for all downstream streams (0: default) */
    /* continuous backup (docs/backup.md); keys fall back to AWS_* in src/backup/s3.c */
    char *backup;                 /* s3://BUCKET[/PREFIX], or NULL: off */
    char *backup_endpoint;
    char *backup_region;
    char *backup_access_key;
    char *backup_secret_key;
    unsigned backup_batch_ms;
    size_t backup_snapshot_every;
    unsigned backup_snapshot_interval;
    unsigned backup_timeout; /* seconds */
    char *log_level;
    size_t max_body;
    size_t max_body_total;
    size_t max_header;
    unsigned idle_timeout;
    unsigned request_timeout;     /* seconds for a request's header and body to arrive */
    unsigned max_connections;
    unsigned max_conns_per_ip;
    unsigned max_waiting;         /* requests suspended at once (min-version, forwarded writes) */
    unsigned threads;
    unsigned max_json_depth;
    bool access_log;
    /* audit events (Flipt's audit.* keys translate into these; docs/audit.md) */
    char *audit_log;              /* log sink: file appended to, "-" standard output; NULL: off */
    char *audit_webhook_url;      /* webhook sink; NULL: off */
    char *audit_webhook_secret;   /* signing_secret: x-flipt-webhook-signature */
    unsigned audit_webhook_max_backoff; /* ms between attempts at most (0: 15000) */
    unsigned audit_webhook_timeout;     /* ms one attempt may take (0: 10000) */
    char *audit_events;           /* "noun:verb" pairs (NULL: "*:*") */
    size_t audit_queue;           /* entries waiting for the sinks at most (0: 10000) */
    /* CORS (Flipt's cors.* keys; defaults as Flipt's: off, every origin, Flipt's header list) */
    bool cors_enabled;
    char **cors_allowed_origins;  /* NULL-terminated; NULL: ["*"] */
    char **cors_allowed_headers;  /* NULL-terminated; NULL: Flipt's default list */
} ef_serve_config;

/* Fills cfg from argv (after "serve"), the environment and the config file. Returns 0, 1 when
 * help was printed, or -1 after printing a clear error to stderr. */
int ef_serve_config_load(ef_serve_config *cfg, int argc, char **argv);
void ef_serve_config_free(ef_serve_config *cfg);

#endif
