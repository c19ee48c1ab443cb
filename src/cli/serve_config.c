/*
 * serve_config.c - settings for `edgeflag serve` (see serve_config.h). Every setting has one
 * name, used as --name on the command line, EDGEFLAG_NAME in the environment and name: in the YAML
 * file. Unknown keys and malformed values are errors, never ignored.
 */
#include "cli/serve_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef enum { T_STR, T_SIZE, T_UINT, T_BOOL } kind;

typedef struct setting {
    const char *name; /* kebab-case; env is EDGEFLAG_ + upper snake; YAML accepts both spellings */
    kind k;
    size_t offset;
    const char *help;
} setting;

#define S(name, k, field, help) {name, k, offsetof(ef_serve_config, field), help}
static const setting settings[] = {
    S("listen", T_STR, listen, "HOST:PORT to serve on (default 127.0.0.1:8080)"),
    S("db", T_STR, db, "SQLite path or file: URL (default ./data/edgeflag.db), or libsql://HOST[?authToken=T] / http(s)://HOST:PORT"),
    S("db-token", T_STR, db_token, "token for a remote database (libSQL/Turso)"),
    S("db-poll", T_UINT, db_poll_ms, "libSQL: ms between looks for other nodes' writes (default 1000)"),
    S("db-cache", T_STR, db_cache, "libSQL: the local cache file (default ./data/libsql-SERVER.db)"),
    S("dir", T_STR, dir, "serve features.yml files under this directory, read-only"),
    S("snapshot", T_STR, snapshot, "serve one Flipt snapshot document file, read-only"),
    S("auth-token", T_STR, auth_token, "require authentication; accept this bearer token"),
    S("auth-exclude", T_STR, auth_exclude, "route classes left open: management,evaluation,ofrep"),
    S("upstream", T_STR, upstream, "replica mode: follow this node (URL)"),
    S("upstream-token", T_STR, upstream_token, "token for the upstream node"),
    S("write-wait", T_UINT, write_wait_ms, "replica: ms a forwarded write waits to be applied here (default 2000)"),
    S("min-version-wait", T_UINT, min_version_wait_ms, "ms a request with X-Edgeflag-Min-Version may wait (default 2000)"),
    S("max-staleness", T_UINT, max_staleness, "seconds of lag after which /ready answers 503 (default: no limit)"),
    S("log-keep-entries", T_SIZE, log_keep_entries, "change-log entries kept for followers (default: all)"),
    S("log-max-age", T_UINT, log_max_age, "seconds change-log entries are kept for followers (default: forever)"),
    S("sync-max-event", T_SIZE, sync_max_event, "replica: largest change-log entry or dump accepted from the upstream, in bytes (default 268435456 per entry, 1073741824 per dump)"),
    S("log-level", T_STR, log_level, "debug, info, warn or error (default info)"),
    S("max-body", T_SIZE, max_body, "largest request body in bytes (default 1048576)"),
    S("max-header", T_SIZE, max_header, "largest request header block in bytes (default 4096)"),
    S("idle-timeout", T_UINT, idle_timeout, "seconds before an idle connection is closed (default 30)"),
    S("request-timeout", T_UINT, request_timeout, "seconds for a request's header and body to arrive (default 10)"),
    S("max-connections", T_UINT, max_connections, "open connections at most (default 4096)"),
    S("max-conns-per-ip", T_UINT, max_conns_per_ip, "connections from one client address at most (default 256; behind a proxy, raise it to max-connections)"),
    S("max-waiting", T_UINT, max_waiting, "requests waiting at once for a version or the upstream (default 2048)"),
    S("threads", T_UINT, threads, "HTTP worker threads (default: one per core)"),
    S("max-json-depth", T_UINT, max_json_depth, "deepest JSON nesting accepted (default 64)"),
    S("access-log", T_BOOL, access_log, "log every request (default false)"),
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static void usage(FILE *out)
{
    fputs("usage: edgeflag serve [--config FILE] [options]\n\noptions (also EDGEFLAG_<NAME> and the config file):\n", out);
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

static int load_file(ef_serve_config *cfg, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "edgeflag: config %s: %s\n", path, strerror(errno));
        return -1;
    }
    yaml_parser_t p;
    yaml_document_t doc;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
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
    fclose(f);
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
    if (config_path && load_file(cfg, config_path) != 0) return -1;
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
    if (!cfg->max_header) cfg->max_header = 4096;
    if (!cfg->idle_timeout) cfg->idle_timeout = 30;
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
    strv_free(&cfg->cors_allowed_origins);
    strv_free(&cfg->cors_allowed_headers);
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].k == T_STR) {
            char **p = (char **)((char *)cfg + settings[i].offset);
            free(*p);
            *p = NULL;
        }
}
