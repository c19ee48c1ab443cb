/*
 * cmd_serve.c - `edgeflag serve`: builds a node (snapshot registry, store or read-only source,
 * metrics, authentication), starts the HTTP server, and shuts down cleanly on SIGTERM/SIGINT:
 * stop accepting, let in-flight requests finish, close the database.
 *
 * Signals are blocked in every thread and taken synchronously here with sigwait, so no handler
 * runs in the middle of a request. SIGHUP reloads the HTTPS certificate, key and client CA
 * together (http/tls.h): new connections get the new ones, open ones carry on.
 *
 * `edgeflag routes [--json] [serve options]` runs the same composition up to the route table and
 * prints it instead of listening, so what it shows is the table `serve` would route by (the
 * route-table tests are generated from it). It never starts replication or opens a port.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/attribution.h"
#include "audit/audit.h"
#include "api/auth.h"
#include "api/activity_peers.h"
#include "api/eval_activity.h"
#include "api/node.h"
#include "api/snapshot_file.h"
#include "backup/shipper.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/tls_client.h"
#include "cli/cli.h"
#include "cli/serve_config.h"
#include "http/tls.h"
#include "store/dir.h"
#include "store/open.h"
#include "sync/sync.h"

/* The read-only --snapshot source: one Flipt snapshot document, compiled and published once. */
static int publish_snapshot_file(ef_registry *reg, const char *path)
{
    char err[600];
    ef_snapshot *snap = ef_snapshot_read_file(path, err, sizeof(err));
    if (!snap) {
        fprintf(stderr, "edgeflag: %s\n", err);
        return -1;
    }
    if (ef_registry_publish(reg, snap) != 0) {
        fputs("edgeflag: out of memory\n", stderr);
        return -1;
    }
    return 0;
}

/* Directory mode: every reload is an event; a failed one keeps serving the last good state. */
static void on_dir_reload(const ef_dir_status *st, void *ctx)
{
    (void)ctx;
    char gen[32], ns[32], pos[600];
    snprintf(gen, sizeof(gen), "%llu", (unsigned long long)st->generation);
    snprintf(ns, sizeof(ns), "%u", st->namespaces);
    if (st->failing) {
        snprintf(pos, sizeof(pos), "%s:%u:%u", st->error.file, st->error.line, st->error.column);
        ef_log(EF_LOG_ERROR, "reload failed; serving the last good state", "at", pos, "error",
               st->error.message, "generation", gen, NULL);
    } else {
        ef_log(EF_LOG_INFO, "reloaded", "generation", gen, "namespaces", ns, NULL);
    }
}

static bool split_listen(const char *listen, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = strrchr(listen, ':');
    if (!colon) return false;
    size_t hl = (size_t)(colon - listen);
    if (listen[0] == '[' && hl >= 2 && listen[hl - 1] == ']') { /* [::1]:8080 */
        listen++;
        hl -= 2;
    }
    if (hl == 0 || hl >= hostlen) return false;
    memcpy(host, listen, hl);
    host[hl] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || p < 0 || p > 65535) return false;
    *port = (uint16_t)p;
    return true;
}

/* This boot of the machine, recorded by the store to tell a process restart (the page cache kept
 * every write) from a machine restart (unsynced writes may be gone). EDGEFLAG_BOOT_ID stands in
 * for it in tests, which cannot restart the machine. NULL when unknown. */
static const char *boot_id(char *buf, size_t len)
{
    const char *env = getenv("EDGEFLAG_BOOT_ID");
    if (env && *env) {
        snprintf(buf, len, "%s", env);
        return buf;
    }
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!f) return NULL;
    bool ok = fgets(buf, (int)len, f) != NULL;
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    return ok && *buf ? buf : NULL;
}

/* Everything that hears of this node's own commits (ef_store_on_commit has one listener): the
 * replication feed, audit events when a sink is configured, and the backup's lag. */
typedef struct commit_fanout {
    void *sync;
    ef_audit *audit;
    ef_shipper *backup;
} commit_fanout;

static int on_commit(void *ctx, const ef_store_change *c)
{
    commit_fanout *f = ctx;
    ef_sync_committed(f->sync, c);
    if (f->audit) ef_audit_committed(f->audit, c);
    ef_shipper_committed(f->backup, c->seq, c->time_ns);
    return 0;
}

/* --name, or the host name made valid (other bytes become '-', cut at EF_NODE_NAME_MAX). */
static bool node_name(const char *given, char out[EF_NODE_NAME_MAX + 1])
{
    if (given) {
        if (!ef_node_name_valid(given, strlen(given))) {
            fprintf(stderr, "edgeflag: invalid name '%s': want 1 to %d letters, digits, '.', '_' or '-'\n",
                    given, EF_NODE_NAME_MAX);
            return false;
        }
        snprintf(out, EF_NODE_NAME_MAX + 1, "%s", given);
        return true;
    }
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) != 0 || !host[0]) snprintf(host, sizeof(host), "edgeflag");
    size_t n = 0;
    for (; host[n] && n < EF_NODE_NAME_MAX; n++)
        out[n] = ef_node_name_valid(&host[n], 1) ? host[n] : '-';
    out[n] = '\0';
    return true;
}

static void backup_ready(void *ctx, ef_buf *out, bool *degraded)
{
    ef_shipper_ready_json(ctx, out, degraded);
}

/* Authentication, from the header block alone: a request with a body is admitted before any of
 * it is read (http.h), so no one without a credential makes the node hold a body. */
static bool admit_request(ef_http_req *req, void *app)
{
    ef_node *node = app;
    return node->auth && !ef_auth_allow(node->auth, req);
}

/* A stream lives as long as the credential it was admitted with: revoked or expired, it ends. */
static bool stream_still_allowed(const ef_http_req *req, void *app)
{
    ef_node *node = app;
    return !node->auth || ef_auth_still_valid(node->auth, req);
}

static bool before_request(ef_http_req *req, void *app)
{
    ef_node *node = app;
    ef_store_attribute(NULL); /* nothing from an earlier request on this thread (one suspended) */
    if (ef_sync_before(node->sync, req)) return true; /* min-version waits; replica write forwarding */
    /* A write this node makes itself records who asked for it (its change-log entry's "audit"):
     * the store reads it on this thread until finish_request clears it. */
    const ef_route *r = ef_http_route(req);
    if (node->store && r && (r->flags & EF_RF_WRITE)) {
        ef_store_attribution *a = ef_arena_alloc(ef_http_arena(req), sizeof(*a));
        if (!a) {
            ef_http_error(req, 500, 13, "out of memory");
            return true;
        }
        ef_api_attribution(req, ef_sync_from_downstream(node->sync, req), a);
        ef_store_attribute(a);
    }
    return false;
}

/* Every response says which state it reflects (evaluation handlers set the snapshot's own). */
static void finish_request(ef_http_req *req, void *app)
{
    ef_node *node = app;
    ef_store_attribute(NULL); /* the request's attribution ends with its handler */
    ef_sync_finish(node->sync, req); /* a primary's write: the version includes it; wake the feed */
    /* A token or session written here, or through here (a replica answers a forwarded write once
     * it applied it), acts on this node from the answer on, not from its next poll of the store:
     * a revoked token must not go on working where its revocation was acknowledged. */
    const ef_route *r = ef_http_route(req);
    if (node->auth && r && r->cls == EF_ROUTE_AUTH && (r->flags & EF_RF_WRITE)) ef_auth_reload(node->auth);
    /* a replica that may be behind what it served before a machine restart says so on every answer */
    if (ef_sync_recovering(node->sync)) ef_http_add_header_static(req, "X-Edgeflag-Recovering", "true");
    if (node->name) ef_http_add_header_static(req, "X-Edgeflag-Node", node->name); /* lives as long as the server */
    if (ef_http_has_header(req, "X-Edgeflag-Version")) return;
    char v[24];
    ef_u64_dec(ef_node_version(node), v); /* every answer: not snprintf */
    ef_http_add_header(req, "X-Edgeflag-Version", v);
}

static void after_request(ef_http_req *req, int status, size_t bytes, void *app)
{
    ef_node *node = app;
    const ef_route *r = ef_http_route(req);
    int64_t ns = ef_http_finished_ns(req) - ef_http_started_ns(req);
    ef_node_count_response(node, r, ef_http_method_of(req), ef_http_method_name(req), status, ns);
    if (r && status >= 400) ef_counter_add(node->m.flipt_server_errors, NULL, 1); /* Flipt's name */
    if (node->access_log) {
        char st[16], dur[32], sz[32];
        snprintf(st, sizeof(st), "%d", status);
        snprintf(dur, sizeof(dur), "%.3fms", (double)ns / 1e6);
        snprintf(sz, sizeof(sz), "%zu", bytes);
        ef_bytes tok = ef_auth_token_id(req); /* which token acted ("" when none did); a NUL-ended copy */
        ef_log(EF_LOG_INFO, "request", "method", ef_http_method_name(req), "path", ef_http_path(req),
               "status", st, "bytes", sz, "duration", dur, "peer", ef_http_peer(req), "token",
               tok.n ? tok.p : "-", NULL);
    }
}

/* What `edgeflag routes` prints, from the router serve built. */
static void print_routes(const ef_router *router, bool json)
{
    ef_buf out;
    ef_buf_init(&out);
    if (json) {
        ef_router_write_json(router, &out);
    } else {
        static const char *const names[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"};
        for (unsigned i = 0; i < ef_router_count(router); i++) {
            const ef_route *r = ef_router_route(router, i);
            char methods[64] = "";
            for (unsigned b = 0; b < 7; b++)
                if (r->methods & (1u << b)) {
                    if (methods[0]) strcat(methods, ",");
                    strcat(methods, names[b]);
                }
            ef_buf_printf(&out, "%-14s %-66s %-10s %s%s%s%s%s%s%s\n", methods, r->pattern,
                          ef_route_class_name(r->cls), ef_route_ns_name(r->ns), r->ns_param ? ":" : "",
                          r->ns_param ? r->ns_param : "", r->flags & EF_RF_NS_EMPTY ? " (empty: default)" : "",
                          r->flags & EF_RF_WRITE ? " write" : "", r->flags & EF_RF_STATE ? " state" : "",
                          r->flags & EF_RF_STREAM ? " stream" : "");
        }
    }
    fwrite(out.data ? out.data : "", 1, out.len, stdout);
    fflush(stdout);
    ef_buf_free(&out);
}

static int run(int argc, char **argv, bool routes_only, bool routes_json)
{
    ef_serve_config cfg;
    char boot[64];
    bool may_have_lost = false;
    int rc = ef_serve_config_load(&cfg, argc, argv);
    if (rc != 0) {
        ef_serve_config_free(&cfg);
        return rc > 0 ? 0 : 2;
    }
    if (routes_only && !cfg.db && !cfg.dir && !cfg.snapshot) {
        /* the table depends on the source; never create the default database just to list it */
        fputs("edgeflag: routes: name the source the server uses (--db, --dir or --snapshot)\n", stderr);
        ef_serve_config_free(&cfg);
        return 2;
    }
    if (cfg.log_level) {
        ef_log_level lvl;
        if (ef_log_parse_level(cfg.log_level, &lvl) != 0) {
            fprintf(stderr, "edgeflag: invalid log-level '%s' (debug, info, warn, error)\n", cfg.log_level);
            ef_serve_config_free(&cfg);
            return 2;
        }
        ef_log_set_level(lvl);
    }
    char name[EF_NODE_NAME_MAX + 1];
    if (!node_name(cfg.name, name)) {
        ef_serve_config_free(&cfg);
        return 2;
    }
    ef_log_set_node(name);
    char host[256];
    uint16_t port;
    if (!split_listen(cfg.listen, host, sizeof(host), &port)) {
        fprintf(stderr, "edgeflag: invalid listen address '%s' (want HOST:PORT)\n", cfg.listen);
        ef_serve_config_free(&cfg);
        return 2;
    }

    /* Block the shutdown signals before any thread starts, so every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    ef_node node = {.started_ns = ef_clock_wall_ns(), .access_log = cfg.access_log, .name = name};
    node.registry = ef_registry_new();
    node.metrics = ef_metrics_new();
    node.activity = ef_activity_new(4096); /* ~2.4 MiB: 4096 flag x outcome series of 64 minutes */
    node.activity_peers = ef_activity_peers_new(); /* at most 2048 series of ~600 bytes */
    ef_router *router = ef_router_new();
    ef_http_server *srv = NULL;
    commit_fanout fanout = {0};
    ef_http_tls *tls = NULL;
    ef_shipper *shipper = NULL;
    ef_auth_cleanup *cleanup = NULL;
    int status = 1;
    char err[512];
    if (!node.registry || !node.metrics || !node.activity || !node.activity_peers || !router || ef_node_metrics_init(&node) != 0 ||
        ef_activity_start_clock(node.activity) != 0) {
        fputs("edgeflag: out of memory\n", stderr);
        goto out;
    }
    if (ef_node_track_versions(&node) != 0) {
        fputs("edgeflag: cannot track versions\n", stderr);
        goto out;
    }
    const char *source;
    if (cfg.dir) {
        node.role = "directory";
        source = cfg.dir;
        ef_decl_error de;
        if (ef_dir_open(cfg.dir, node.registry, &node.dir, &de) != 0) {
            fprintf(stderr, "edgeflag: %s%s%u:%u: %s\n", de.file, de.file[0] ? ":" : "", de.line,
                    de.column, de.message);
            status = 2;
            goto out;
        }
        ef_dir_set_callback(node.dir, on_dir_reload, NULL);
        int werr = ef_dir_start_watch(node.dir);
        if (werr != 0) {
            fprintf(stderr, "edgeflag: cannot watch %s: %s\n", cfg.dir, strerror(-werr));
            goto out;
        }
    } else if (cfg.snapshot) {
        node.role = "snapshot";
        source = cfg.snapshot;
        if (publish_snapshot_file(node.registry, cfg.snapshot) != 0) {
            status = 2;
            goto out;
        }
    } else {
        node.role = "primary";
        source = cfg.db ? cfg.db : EF_SQLITE_DEFAULT_PATH;
        ef_tls_client dbtls = {.ca_file = cfg.db_ca};
        if (cfg.db_ca && ef_tls_client_check(&dbtls, "--db-ca", err, sizeof(err)) != 0) {
            fprintf(stderr, "edgeflag: %s\n", err);
            status = 2;
            goto out;
        }
        ef_store_open_opts so = {.registry = node.registry, .token = cfg.db_token,
                                 .poll_ms = cfg.db_poll_ms, .cache_path = cfg.db_cache,
                                 .ca_file = cfg.db_ca,
                                 .boot_id = boot_id(boot, sizeof(boot)),
                                 .may_have_lost = &may_have_lost};
        /* a replica's entries are durable on its primary: its own file is synced in batches */
        if (cfg.upstream) so.sync_ms = cfg.replica_sync_ms ? cfg.replica_sync_ms : 50;
        so.follower = cfg.upstream != NULL; /* takes its upstream's entries, no writes of its own */
        ef_store_err se;
        if (!(node.store = ef_store_open(source, &so, &se))) {
            char shown[1024];
            if (strstr(se.message, source)) /* the message names the database already */
                fprintf(stderr, "edgeflag: %s\n", se.message);
            else
                fprintf(stderr, "edgeflag: database %s: %s\n",
                        ef_store_url_redact(source, shown, sizeof(shown)), se.message);
            goto out;
        }
    }
    if (node.store && !cfg.name) {
        /* Nodes on one host (a primary and its replica on two ports, a test) must not share the
         * default name: the cluster picture refuses a report naming its receiver. The database's
         * id tells them apart and stays the same across restarts. */
        ef_store_identity id;
        ef_store_err se;
        size_t n = strlen(name);
        if (ef_store_get_identity(node.store, &id, &se) == 0 && id.db_id[0]) {
            if (n > EF_NODE_NAME_MAX - 7) n = EF_NODE_NAME_MAX - 7;
            snprintf(name + n, EF_NODE_NAME_MAX + 1 - n, "-%.6s", id.db_id);
            ef_log_set_node(name);
        }
    }
    if (node.store) { /* namespaces were published before the listener could see a seq */
        uint64_t seq, first;
        ef_store_err se;
        if (ef_store_seq(node.store, &seq, &first, &se) == 0) ef_node_raise_version(&node, seq);
    }
    bool jwt = cfg.auth_jwt_jwks_url || cfg.auth_jwt_public_key_file;
    bool oidc = cfg.auth_oidc_provider != NULL;
    if ((cfg.auth_token || jwt || oidc) &&
        !(node.auth = ef_auth_new(cfg.auth_token, cfg.auth_exclude, node.store, err, sizeof(err)))) {
        fprintf(stderr, "edgeflag: %s\n", err);
        status = 2;
        goto out;
    }
    if (jwt) { /* Flipt's jwt method: keys from a JWKS URL (fetched in the background) or a file */
        ef_auth_jwt_config jc = {
            .keys = {.url = cfg.auth_jwt_jwks_url, .pem_file = cfg.auth_jwt_public_key_file,
                     .refresh_s = cfg.auth_jwt_refresh, .min_refresh_s = cfg.auth_jwt_min_refresh},
            .issuer = cfg.auth_jwt_issuer,
            .subject = cfg.auth_jwt_subject,
            .audiences = cfg.auth_jwt_audiences,
        };
        if (ef_auth_enable_jwt(node.auth, &jc, err, sizeof(err)) != 0) {
            fprintf(stderr, "edgeflag: %s\n", err);
            status = 2;
            goto out;
        }
    }
    if (oidc) { /* Flipt's oidc method: people sign in to the UI; sessions live in the store */
        ef_oidc_provider_config pc[1 + EF_SERVE_OIDC_MORE];
        pc[0] = (ef_oidc_provider_config){
            .name = cfg.auth_oidc_provider,
            .issuer_url = cfg.auth_oidc_issuer_url,
            .client_id = cfg.auth_oidc_client_id,
            .client_secret = cfg.auth_oidc_client_secret,
            .redirect_address = cfg.auth_oidc_redirect_address,
            .scopes = cfg.auth_oidc_scopes ? cfg.auth_oidc_scopes : "email profile",
            .use_pkce = true,
        };
        for (unsigned i = 0; i < cfg.n_auth_oidc_more; i++) /* further providers from Flipt's config */
            pc[1 + i] = (ef_oidc_provider_config){
                .name = cfg.auth_oidc_more[i].name,
                .issuer_url = cfg.auth_oidc_more[i].issuer_url,
                .client_id = cfg.auth_oidc_more[i].client_id,
                .client_secret = cfg.auth_oidc_more[i].client_secret,
                .redirect_address = cfg.auth_oidc_more[i].redirect_address,
                .scopes = cfg.auth_oidc_more[i].scopes ? cfg.auth_oidc_more[i].scopes : "email profile",
                .use_pkce = true,
            };
        ef_oidc_config oc = {
            .providers = pc,
            .n_providers = 1 + cfg.n_auth_oidc_more,
            .token_lifetime_s = cfg.auth_session_token_lifetime,
            .state_lifetime_s = cfg.auth_session_state_lifetime,
            .secure = cfg.auth_session_secure || cfg.tls_cert, /* served over HTTPS: Secure cookies */
            .domain = cfg.auth_session_domain,
            .email_matches = cfg.auth_oidc_email_matches,
        };
        if (ef_auth_enable_oidc(node.auth, &oc, err, sizeof(err)) != 0) {
            fprintf(stderr, "edgeflag: %s\n", err);
            status = 2;
            goto out;
        }
    }
    /* further node services start here (one block each) */
    { /* replication (src/sync): the feed on every store; follower and forwarding on a replica */
        if (cfg.upstream) node.role = "replica";
        ef_sync_config sc = {.upstream = cfg.upstream,
                             .upstream_token = cfg.upstream_token,
                             .upstream_tls = {.ca_file = cfg.upstream_ca,
                                              .cert_file = cfg.upstream_cert,
                                              .key_file = cfg.upstream_key},
                             .write_wait_ms = cfg.write_wait_ms ? cfg.write_wait_ms : 2000,
                             .min_version_wait_ms = cfg.min_version_wait_ms ? cfg.min_version_wait_ms : 2000,
                             .max_staleness_s = cfg.max_staleness,
                             .log_keep_entries = cfg.log_keep_entries,
                             .log_max_age_s = cfg.log_max_age,
                             .max_event_bytes = cfg.sync_max_event,
                             .dump_min_rate = cfg.sync_dump_min_rate,
                             .feed_budget = cfg.sync_feed_budget,
                             .recovering = may_have_lost,
                             /* cluster reports carry the evaluation activity up the tree */
                             .activity = {.ctx = &node,
                                          .write = ef_activity_report_write,
                                          .check = ef_activity_report_check,
                                          .apply = ef_activity_report_apply,
                                          .discard = ef_activity_report_discard}};
        if (may_have_lost && cfg.upstream)
            ef_log(EF_LOG_WARN, "the previous run stopped while this replica had entries not yet "
                   "written or synced: reporting itself recovering until it has caught up with its "
                   "upstream", NULL);
        if (!(node.sync = ef_sync_new(&node, &sc, err, sizeof(err))) ||
            (!routes_only && ef_sync_start(node.sync, err, sizeof(err)) != 0)) {
            fprintf(stderr, "edgeflag: %s\n", err);
            status = 2;
            goto out;
        }
    }
    { /* audit events (src/audit): made from this node's own commits, so a replica (which forwards
       * its writes) makes none and every write has exactly one event, on the node that commits it */
        bool sinks = (cfg.audit_log && *cfg.audit_log) || (cfg.audit_webhook_url && *cfg.audit_webhook_url);
        if (sinks && (!node.store || cfg.upstream)) {
            ef_log(EF_LOG_WARN, "audit sinks ignored: this node commits no writes (its upstream or the "
                                "database's writer sends their events)", "role", node.role, NULL);
        } else if (sinks && !routes_only) {
            ef_store_identity id;
            ef_store_err se;
            if (ef_store_get_identity(node.store, &id, &se) != 0) id.history[0] = '\0';
            /* next to a local database file: where delivery resumes after a restart */
            char cursor[4096];
            const char *file = ef_store_file_path(node.store);
            if (file) snprintf(cursor, sizeof(cursor), "%s.audit", file);
            ef_audit_config ac = {.events = cfg.audit_events,
                                  .cursor_path = file ? cursor : NULL,
                                  .log_file = cfg.audit_log,
                                  .webhook_url = cfg.audit_webhook_url,
                                  .webhook_secret = cfg.audit_webhook_secret,
                                  .max_backoff_ms = cfg.audit_webhook_max_backoff,
                                  .timeout_ms = cfg.audit_webhook_timeout,
                                  .queue_max = cfg.audit_queue,
                                  .history = id.history};
            err[0] = '\0';
            if (!(fanout.audit = ef_audit_new(&ac, node.metrics, err, sizeof(err))) ||
                ef_audit_resume(fanout.audit, node.store, err, sizeof(err)) != 0 ||
                ef_audit_start(fanout.audit) != 0) {
                fprintf(stderr, "edgeflag: %s\n", err[0] ? err : "cannot start the audit thread");
                status = 2;
                goto out;
            }
        }
        /* a primary's feed sends an entry at its commit, not after the publish (issue 11) */
        fanout.sync = node.sync;
        if (node.store && !cfg.upstream) ef_store_on_commit(node.store, on_commit, &fanout);
    }
    if (cfg.backup) { /* continuous backup (src/backup): its own thread reads the committed log */
        ef_shipper_config bc = {.s3 = {.url = cfg.backup,
                                       .endpoint = cfg.backup_endpoint,
                                       .region = cfg.backup_region,
                                       .access_key = cfg.backup_access_key,
                                       .secret_key = cfg.backup_secret_key,
                                       .timeout_ms = cfg.backup_timeout * 1000u},
                                .db_path = node.store ? ef_store_file_path(node.store) : NULL,
                                .batch_ms = cfg.backup_batch_ms,
                                .snapshot_every = cfg.backup_snapshot_every,
                                .snapshot_interval_s = cfg.backup_snapshot_interval};
        ef_s3_config_env(&bc.s3);
        if (!(shipper = ef_shipper_new(node.store, &bc, err, sizeof(err))) ||
            ef_shipper_metrics(shipper, node.metrics) != 0) {
            fprintf(stderr, "edgeflag: --backup: %s\n", shipper ? "out of memory" : err);
            status = 2;
            goto out;
        }
        node.ready_extra = backup_ready;
        node.ready_extra_ctx = shipper;
        fanout.backup = shipper; /* before any write: the HTTP server and the cleanup start below */
        if (!routes_only && ef_shipper_start(shipper, err, sizeof(err)) != 0) {
            fprintf(stderr, "edgeflag: --backup: %s\n", err);
            goto out;
        }
    }
    if (node.auth && node.store && !cfg.upstream && !routes_only) {
        /* Flipt's cleanup of expired authentications, where the store takes writes (a replica
         * gets the deletions through replication); on by default for the methods in use */
        ef_auth_cleanup_config cc = {
            .token_interval_s = cfg.auth_token_cleanup_interval ? cfg.auth_token_cleanup_interval : 3600,
            .token_grace_s = cfg.auth_token_cleanup_grace ? cfg.auth_token_cleanup_grace : 1800,
            .oidc_interval_s = !oidc ? 0 : cfg.auth_oidc_cleanup_interval ? cfg.auth_oidc_cleanup_interval : 3600,
            .oidc_grace_s = cfg.auth_oidc_cleanup_grace ? cfg.auth_oidc_cleanup_grace : 1800,
        };
        if (!(cleanup = ef_auth_cleanup_start(node.store, &cc, err, sizeof(err)))) {
            fprintf(stderr, "edgeflag: %s\n", err);
            status = 2;
            goto out;
        }
    }
    if (ef_api_register(router, &node) != 0 || ef_node_http_metrics_init(&node, ef_router_count(router)) != 0) {
        fputs("edgeflag: cannot register routes\n", stderr);
        goto out;
    }
    if (routes_only) {
        print_routes(router, routes_json);
        status = 0;
        goto out;
    }
    if (cfg.tls_cert && !(tls = ef_http_tls_new(cfg.tls_cert, cfg.tls_key, cfg.tls_client_ca, err, sizeof(err)))) {
        fprintf(stderr, "edgeflag: %s\n", err);
        status = 2;
        goto out;
    }
    ef_http_config hc = {.host = host,
                         .tls = tls,
                         .port = port,
                         .threads = cfg.threads,
                         .max_body = cfg.max_body,
                         .max_body_total = cfg.max_body_total,
                         .max_header = cfg.max_header,
                         .idle_timeout_s = cfg.idle_timeout,
                         .request_timeout_s = cfg.request_timeout,
                         .max_connections = cfg.max_connections,
                         .max_per_ip = cfg.max_conns_per_ip,
                         .max_waiting = cfg.max_waiting,
                         .max_json_depth = cfg.max_json_depth,
                         .cors_enabled = cfg.cors_enabled,
                         .cors_origins = (const char *const *)cfg.cors_allowed_origins,
                         .cors_headers = (const char *const *)cfg.cors_allowed_headers,
                         .app = &node,
                         .admit = admit_request,
                         .before = before_request,
                         .still_allowed = stream_still_allowed,
                         .finish = finish_request,
                         .after = after_request};
    /* what /meta/config and /meta/info report (nothing secret); set before any request */
    node.settings = (ef_node_settings){.host = host,
                                       .port = port, /* as configured, like Flipt's */
                                       .log_level = cfg.log_level,
                                       .auth_exclude = cfg.auth_exclude,
                                       .dir = cfg.dir,
                                       .cors_enabled = cfg.cors_enabled,
                                       .cors_origins = hc.cors_origins,
                                       .cors_headers = hc.cors_headers};
    if (!(srv = ef_http_server_start(&hc, router, err, sizeof(err)))) {
        fprintf(stderr, "edgeflag: %s\n", err);
        goto out;
    }
    char url[320];
    snprintf(url, sizeof(url), "%s://%s%s%s:%u", tls ? "https" : "http", strchr(host, ':') ? "[" : "", host,
             strchr(host, ':') ? "]" : "", (unsigned)ef_http_server_port(srv));
    printf("listening on %s\n", url);
    fflush(stdout);
    char ui[340], metrics[340];
    snprintf(ui, sizeof(ui), "%s/", url);
    snprintf(metrics, sizeof(metrics), "%s/metrics", url);
    char shown[1024]; /* a database URL's password never goes to the log */
    ef_log(EF_LOG_INFO, "serving", "name", name, "url", url, "ui", ui, "metrics", metrics, "role", node.role,
           "source", ef_store_url_redact(source, shown, sizeof(shown)), "auth",
           node.auth ? "required" : "off", NULL);
    if (tls) {
        char cert[320], cas[320];
        ef_http_tls_describe(tls, cert, sizeof(cert));
        ef_http_tls_describe_client_ca(tls, cas, sizeof(cas));
        ef_log(EF_LOG_INFO, "HTTPS certificate", "file", cfg.tls_cert, "certificate", cert, "client_certificates",
               cfg.tls_client_ca ? "required" : "not asked", cfg.tls_client_ca ? "client_ca" : NULL, cas, NULL);
    }

    int sig = 0;
    for (;;) {
        sigwait(&sigs, &sig);
        if (sig != SIGHUP) break;
        if (!tls) {
            ef_log(EF_LOG_INFO, "SIGHUP: nothing to reload (no HTTPS certificate)", NULL);
            continue;
        }
        char cert[320], cas[320];
        if (ef_http_tls_reload(tls, err, sizeof(err)) != 0) {
            ef_log(EF_LOG_ERROR, "certificate reload failed; serving the previous one", "error", err, NULL);
        } else {
            ef_http_tls_describe(tls, cert, sizeof(cert));
            ef_http_tls_describe_client_ca(tls, cas, sizeof(cas));
            /* without a client CA the NULL key ends the fields before client_ca */
            ef_log(EF_LOG_INFO, "certificate reloaded", "file", cfg.tls_cert, "certificate", cert,
                   cfg.tls_client_ca ? "client_ca" : NULL, cas, NULL);
        }
    }
    ef_log(EF_LOG_INFO, "shutting down", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM", NULL);
    status = 0;
out:
    if (srv) { /* stop accepting; answer the suspended requests; let the rest finish */
        ef_http_server_quiesce(srv);
        /* sign-ins first: their answer is immediate (503, sign in again), while sync's drain may
         * give forwarded writes their grace, which the sign-ins need not wait out */
        ef_auth_drain(node.auth, 3000);
        ef_sync_drain(node.sync, 3000);
        ef_http_server_stop(srv, 5000);
    }
    ef_http_tls_free(tls); /* after the server: its connections held its certificates */
    ef_node_close(&node); /* route families' threads and memory: no request can reach them now */
    /* further node services stop here (one block each) */
    ef_auth_cleanup_stop(cleanup); /* its deletions are writes: before the commit listeners go */
    if (node.store) ef_store_on_commit(node.store, NULL, NULL); /* it points at the sync and audit */
    ef_audit_stop(fanout.audit, 3000); /* what is queued gets 3 s more to reach the sinks */
    ef_audit_free(fanout.audit);
    ef_sync_free(node.sync); /* before the store closes: the follower writes to it */
    ef_shipper_stop(shipper, 3000); /* ships what is committed, for up to 3 s, then stops */
    ef_shipper_free(shipper);       /* before the store closes: it reads the log */
    if (node.dir) ef_dir_close(node.dir);
    ef_auth_free(node.auth); /* its reload thread reads the store */
    if (node.store) ef_store_close(node.store);
    ef_router_free(router);
    ef_registry_free(node.registry);
    ef_metrics_free(node.metrics);
    ef_activity_free(node.activity);
    ef_activity_peers_free(node.activity_peers);
    ef_serve_config_free(&cfg);
    if (status == 0 && !routes_only) ef_log(EF_LOG_INFO, "stopped", NULL);
    return status;
}

int ef_cmd_serve(int argc, char **argv)
{
    return run(argc, argv, false, false);
}

int ef_cmd_routes(int argc, char **argv)
{
    bool json = argc > 0 && strcmp(argv[0], "--json") == 0;
    return run(argc - json, argv + json, true, json);
}
