/*
 * fuzz_server.h - the in-process node that fuzz_http and fuzz_mgmt send their inputs to: composed
 * as `edgeflag serve` composes it (registry, metrics, SQLite store, static-token auth, the sync
 * hooks and every route family), listening on loopback, with a fixed base state that every input
 * starts from. Header-only (static functions) because each fuzz target is one executable.
 *
 * libmicrohttpd has no seam for a synthetic request, so an input travels over a real socket: the
 * harness connects, sends the bytes, half-closes and reads the answer. That is the real request
 * parser, percent-decoding, router, auth decision, sync hooks and handlers, at a few thousand
 * inputs a second.
 *
 * Invariants checked after every input (a violation aborts, which libFuzzer reports as a crash):
 *   - an answer, if any, is an HTTP/1.x status line, never a 500;
 *   - an answer that is not 2xx changed nothing (the store's seq is the base's);
 *   - every 64 inputs, and after every write, SQLite's integrity and foreign-key checks pass.
 * After any input that changed the store, the base state is loaded back (one dump load), so each
 * input sees the same state and a crash reproduces from its file alone.
 *
 * Inputs may name the base state's generated ids with placeholders, replaced before sending:
 * @VAR@ (variant a of flag f1), @CON@ (constraint of segment s1), @RULE@, @DIST@ (rule of f1 and
 * its distribution), @ROLL@ (rollout of flag b1), @TOK@ / @TOKID@ (a token scoped to namespace
 * ns1 and its id). The bootstrap token is "fuzz-bootstrap".
 *
 * FUZZ_SLOW=1 prints every input that took over 100 ms (what keeps exec/s down); FUZZ_SLOW=N over N ms.
 *
 * It must never write outside its temporary database in /dev/shm (or $TMPDIR), and never leave
 * a server thread running past the process.
 */
#ifndef EF_FUZZ_SERVER_H
#define EF_FUZZ_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/auth.h"
#include "api/node.h"
#include "base/buf.h"
#include "base/json.h"
#include "base/clock.h"
#include "base/log.h"
#include "store/open.h"
#include "sync/sync.h"

#define FZ_BOOTSTRAP "fuzz-bootstrap"
#define FZ_MAX_ANSWER (1u << 20)

typedef struct fz_server {
    ef_node node;
    ef_router *router;
    ef_http_server *srv;
    uint16_t port;
    char db[256];
    ef_buf base;       /* the base state's dump */
    uint64_t base_seq;
    sqlite3 *check;    /* a second connection, for the integrity checks */
    unsigned inputs;
    const char *protect_ns;    /* set by a target: this namespace's version must stay... */
    uint64_t protect_version;  /* ...this one through the next input */
    struct {
        const char *name;
        char value[160];
    } ph[7];
} fz_server;

static void fz_die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_server: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

/* Sends raw bytes on a fresh connection, half-closes, and reads the answer (up to cap bytes)
 * until the server closes or is quiet for quiet_ms after the first bytes (a stream never
 * closes). Returns the bytes read (0: the server closed without answering). */
static size_t fz_exchange(uint16_t port, const char *req, size_t len, char *ans, size_t cap,
                          int first_ms, int quiet_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fz_die("socket", strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* libFuzzer's -timeout ticks with SIGALRM: every call here may see EINTR */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (errno != EINTR) fz_die("connect", strerror(errno));
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int e = 0;
        socklen_t el = sizeof(e);
        while (poll(&p, 1, 5000) < 0 && errno == EINTR) {}
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 || e != 0) fz_die("connect", strerror(e));
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break; /* the server may close early (a 413, a bad request line): fine */
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    size_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, got ? quiet_ms : first_ms);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break; /* quiet: a stream, or a request the server still waits on */
        ssize_t n = recv(fd, ans + got, cap - 1 - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
        if (got + 1 >= cap) break;
    }
    ans[got] = '\0';
    close(fd);
    return got;
}

/* The status of the first answer in buf (0 if none). */
static int fz_status(const char *buf, size_t n)
{
    if (n < 12 || memcmp(buf, "HTTP/1.", 7) != 0) return 0;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9') return 0;
        st = st * 10 + (buf[i] - '0');
    }
    return st;
}

/* A setup request with the bootstrap token; returns the status, the body in body. */
static int fz_setup_call(fz_server *z, const char *method, const char *path, const char *json,
                         char *ans, size_t cap, const char **body)
{
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: fuzz\r\nAuthorization: Bearer " FZ_BOOTSTRAP
                     "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, strlen(json), json);
    size_t got = fz_exchange(z->port, req, (size_t)n, ans, cap, 5000, 200);
    const char *b = strstr(ans, "\r\n\r\n");
    *body = b ? b + 4 : "";
    return fz_status(ans, got);
}

/* Creates one base entity and keeps the string field `field` of its answer as placeholder i. */
static void fz_seed(fz_server *z, int i, const char *name, const char *method, const char *path,
                    const char *json, const char *field)
{
    char ans[8192];
    const char *body;
    int st = fz_setup_call(z, method, path, json, ans, sizeof(ans), &body);
    if (st != 200) {
        fprintf(stderr, "fuzz_server: setup %s %s -> %d %s\n", method, path, st, body);
        abort();
    }
    if (!field) return;
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_json_error je;
    const ef_json *v = ef_json_parse(body, strlen(body), &a, NULL, &je);
    const ef_json *f = v ? ef_json_get(v, field) : NULL;
    if (!f || f->type != EF_JSON_STRING || f->str.n >= sizeof(z->ph[i].value)) fz_die("setup field", field);
    z->ph[i].name = name;
    memcpy(z->ph[i].value, f->str.p, f->str.n);
    z->ph[i].value[f->str.n] = '\0';
    ef_arena_free(&a);
}

static bool fz_before(ef_http_req *req, void *app)
{
    ef_node *node = app;
    if (node->auth && !ef_auth_allow(node->auth, req)) return true;
    return ef_sync_before(node->sync, req);
}

static void fz_finish(ef_http_req *req, void *app)
{
    ef_node *node = app;
    ef_sync_finish(node->sync, req);
}

static void fz_check_integrity(fz_server *z)
{
    sqlite3_stmt *st;
    const char *sql[] = {"PRAGMA quick_check", "PRAGMA foreign_key_check"};
    for (int i = 0; i < 2; i++) {
        if (sqlite3_prepare_v2(z->check, sql[i], -1, &st, NULL) != SQLITE_OK)
            fz_die("integrity check", sqlite3_errmsg(z->check));
        int rc = sqlite3_step(st);
        if (i == 0 && (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0))
            fz_die("PRAGMA quick_check", rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : "no row");
        if (i == 1 && rc == SQLITE_ROW)
            fz_die("PRAGMA foreign_key_check: a dangling reference in table",
                   (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
}

static uint64_t fz_seq(fz_server *z)
{
    uint64_t seq, first;
    ef_store_err err;
    if (ef_store_seq(z->node.store, &seq, &first, &err) != 0) fz_die("store seq", err.message);
    return seq;
}

static uint64_t fz_ns_version(fz_server *z, const char *ns)
{
    uint64_t v = 0;
    ef_store_err err;
    if (ef_store_ns_version(z->node.store, ef_bytes_of(ns), &v, &err) != 0) fz_die("ns version", err.message);
    return v;
}

/* The database files go when the process ends (libFuzzer exits through exit()). */
static char fz_db_path[256];
/* libmicrohttpd's inactivity timeout for the node's connections: 1 s, so that a fuzz input
 * leaving a connection open costs little; a test whose followers must stay connected while they
 * read nothing sets more before fz_start. */
static int fz_idle_timeout_s = 1;
/* How long the node's feed gives a dump it built to the next followers (0: the default, 2 s). */
static unsigned fz_dump_reuse_ms = 0;
static void fz_unlink_db(void)
{
    static const char *const sfx[] = {"", "-wal", "-shm", ".lock"};
    char p[300];
    for (int i = 0; i < 4 && fz_db_path[0]; i++) {
        snprintf(p, sizeof(p), "%s%s", fz_db_path, sfx[i]);
        unlink(p);
    }
}

static fz_server *fz_start(void)
{
    static fz_server z;
    signal(SIGPIPE, SIG_IGN);
    ef_log_set_level(EF_LOG_ERROR);
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    snprintf(z.db, sizeof(z.db), "%s/edgeflag-fuzz-%d.db", tmp, (int)getpid());
    unlink(z.db);
    snprintf(fz_db_path, sizeof(fz_db_path), "%s", z.db);
    atexit(fz_unlink_db);
    z.node.registry = ef_registry_new();
    z.node.metrics = ef_metrics_new();
    z.node.role = "primary";
    z.router = ef_router_new();
    if (!z.node.registry || !z.node.metrics || !z.router || ef_node_metrics_init(&z.node) != 0 ||
        ef_node_track_versions(&z.node) != 0)
        fz_die("node", "out of memory");
    ef_store_open_opts so = {.registry = z.node.registry};
    ef_store_err se;
    if (!(z.node.store = ef_store_open(z.db, &so, &se))) fz_die("store", se.message);
    char err[512];
    if (!(z.node.auth = ef_auth_new(FZ_BOOTSTRAP, NULL, z.node.store, err, sizeof(err)))) fz_die("auth", err);
    /* waits end quickly: an input asking for a future version costs 5 ms, not 2 s */
    ef_sync_config sc = {.write_wait_ms = 5, .min_version_wait_ms = 5, .dump_reuse_ms = fz_dump_reuse_ms};
    if (!(z.node.sync = ef_sync_new(&z.node, &sc, err, sizeof(err))) || ef_sync_start(z.node.sync, err, sizeof(err)))
        fz_die("sync", err);
    /* as serve does on a primary: the feed hears of each commit from the writer's thread */
    if (ef_store_on_commit(z.node.store, ef_sync_committed, z.node.sync) != 0) fz_die("commit listener", NULL);
    if (ef_api_register(z.router, &z.node) != 0) fz_die("routes", NULL);
    ef_http_config hc = {.host = "127.0.0.1", .threads = 2, .max_body = 1 << 20, .max_header = 4096,
                         .idle_timeout_s = fz_idle_timeout_s, .request_timeout_s = 1, .max_connections = 4000,
                         .max_per_ip = 4000, .max_waiting = 64, .max_json_depth = 64, .app = &z.node,
                         .before = fz_before, .finish = fz_finish};
    if (!(z.srv = ef_http_server_start(&hc, z.router, err, sizeof(err)))) fz_die("server", err);
    z.port = ef_http_server_port(z.srv);

    fz_seed(&z, 0, NULL, "POST", "/api/v1/namespaces", "{\"key\":\"ns1\",\"name\":\"ns1\"}", NULL);
    fz_seed(&z, 0, NULL, "POST", "/api/v1/namespaces/default/flags",
            "{\"key\":\"f1\",\"name\":\"f1\",\"type\":\"VARIANT_FLAG_TYPE\",\"enabled\":true}", NULL);
    fz_seed(&z, 0, "@VAR@", "POST", "/api/v1/namespaces/default/flags/f1/variants",
            "{\"key\":\"a\",\"name\":\"a\",\"attachment\":\"{\\\"x\\\":1}\"}", "id");
    fz_seed(&z, 6, NULL, "POST", "/api/v1/namespaces/default/flags/f1/variants", "{\"key\":\"b\"}", NULL);
    fz_seed(&z, 6, NULL, "POST", "/api/v1/namespaces/default/flags",
            "{\"key\":\"b1\",\"name\":\"b1\",\"type\":\"BOOLEAN_FLAG_TYPE\",\"enabled\":true}", NULL);
    fz_seed(&z, 6, NULL, "POST", "/api/v1/namespaces/default/segments",
            "{\"key\":\"s1\",\"name\":\"s1\",\"matchType\":\"ALL_MATCH_TYPE\"}", NULL);
    fz_seed(&z, 1, "@CON@", "POST", "/api/v1/namespaces/default/segments/s1/constraints",
            "{\"type\":\"STRING_COMPARISON_TYPE\",\"property\":\"country\",\"operator\":\"eq\",\"value\":\"de\"}", "id");
    fz_seed(&z, 2, "@RULE@", "POST", "/api/v1/namespaces/default/flags/f1/rules",
            "{\"segmentKey\":\"s1\",\"rank\":1}", "id");
    char path[512], json[512];
    snprintf(path, sizeof(path), "/api/v1/namespaces/default/flags/f1/rules/%s/distributions", z.ph[2].value);
    snprintf(json, sizeof(json), "{\"variantId\":\"%s\",\"rollout\":100}", z.ph[0].value);
    fz_seed(&z, 3, "@DIST@", "POST", path, json, "id");
    fz_seed(&z, 4, "@ROLL@", "POST", "/api/v1/namespaces/default/flags/b1/rollouts",
            "{\"rank\":1,\"threshold\":{\"percentage\":50,\"value\":true}}", "id");
    { /* a token scoped to ns1: its secret and its id */
        char ans[8192];
        const char *body;
        int st = fz_setup_call(&z, "POST", "/auth/v1/method/token",
                               "{\"name\":\"scoped\",\"description\":\"fuzz\",\"namespaceKey\":\"ns1\"}",
                               ans, sizeof(ans), &body);
        ef_arena a;
        ef_arena_init(&a, 4096);
        ef_json_error je;
        const ef_json *v = st == 200 ? ef_json_parse(body, strlen(body), &a, NULL, &je) : NULL;
        const ef_json *tok = v ? ef_json_get(v, "clientToken") : NULL;
        const ef_json *au = v ? ef_json_get(v, "authentication") : NULL;
        const ef_json *id = au ? ef_json_get(au, "id") : NULL;
        if (!tok || tok->type != EF_JSON_STRING || tok->str.n >= sizeof(z.ph[5].value) || !id ||
            id->type != EF_JSON_STRING || id->str.n >= sizeof(z.ph[6].value))
            fz_die("setup: token", body);
        z.ph[5].name = "@TOK@";
        memcpy(z.ph[5].value, tok->str.p, tok->str.n);
        z.ph[6].name = "@TOKID@";
        memcpy(z.ph[6].value, id->str.p, id->str.n);
        ef_arena_free(&a);
    }
    ef_buf_init(&z.base);
    if (ef_store_dump(z.node.store, &z.base, &z.base_seq, &se) != 0 || !ef_buf_ok(&z.base)) fz_die("dump", se.message);
    if (sqlite3_open_v2(z.db, &z.check, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) fz_die("check db", z.db);
    sqlite3_busy_timeout(z.check, 5000);
    return &z;
}

/* Replaces the placeholders in an input (into out, which the caller frees). */
static void fz_expand(const fz_server *z, const char *in, size_t n, ef_buf *out)
{
    size_t i = 0;
    while (i < n) {
        bool hit = false;
        if (in[i] == '@')
            for (int k = 0; k < 7; k++) {
                const char *name = z->ph[k].name;
                size_t l = name ? strlen(name) : 0;
                if (l && n - i >= l && memcmp(in + i, name, l) == 0) {
                    ef_buf_puts(out, z->ph[k].value);
                    i += l;
                    hit = true;
                    break;
                }
            }
        if (!hit) ef_buf_putc(out, in[i++]);
    }
}

/* Whether the bytes hold at least one whole request: headers ended by a blank line, then as many
 * body bytes as its Content-Length says, or a chunked body's last chunk. libmicrohttpd waits for
 * the rest of an unfinished request until the request deadline even after the client closed its
 * side (a slow client bounded by --request-timeout, not a finding), so an unfinished one is only
 * given a few milliseconds for an early error instead of a second. */
static bool fz_complete(const char *p, size_t n)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    size_t skip = 4;
    const char *lf = memmem(p, n, "\n\n", 2);
    if (!end || (lf && lf < end)) {
        end = lf;
        skip = 2;
    }
    if (!end) return false;
    size_t body = n - (size_t)(end + skip - p);
    for (const char *h = p; h < end; h++) {
        if (*h != '\n') continue;
        if ((size_t)(end - h) > 16 && strncasecmp(h + 1, "Content-Length:", 15) == 0)
            return strtoull(h + 16, NULL, 10) <= body;
        if ((size_t)(end - h) > 19 && strncasecmp(h + 1, "Transfer-Encoding:", 18) == 0) {
            const char *v = h + 19;
            while (v < end && *v == ' ') v++;
            if ((size_t)(end - v) < 7 || strncasecmp(v, "chunked", 7) != 0 || (v[7] != '\r' && v[7] != '\n'))
                return false; /* an encoding it cannot read: waits for the close that never counts */
            return memmem(end, n - (size_t)(end - p), "\n0\r\n\r\n", 6) || memmem(end, n - (size_t)(end - p), "\n0\n\n", 4);
        }
    }
    return true;
}

/* Sends one request (placeholders expanded), checks the answer and the store, and restores the
 * base state if the request changed it. Returns the status (0: no answer). */
static int fz_send_checked(fz_server *z, const char *data, size_t size)
{
    ef_buf req;
    ef_buf_init(&req);
    fz_expand(z, data, size, &req);
    /* a trailing CR would leave libmicrohttpd waiting for its LF (see fz_complete): give it one */
    if (req.len && req.data[req.len - 1] == '\r') ef_buf_putc(&req, '\n');
    if (!ef_buf_ok(&req)) fz_die("expand", "out of memory");
    static char ans[FZ_MAX_ANSWER];
    bool complete = req.len && fz_complete(req.data, req.len);
    /* Pipelined requests: the exchange stops reading 10 ms after the last byte it got, so the answer
     * of a later write (a commit's fsync on a loaded machine) can be missed while the write happened.
     * Whether a refusal changed the store is only judged for a lone request. */
    size_t nreq = 0;
    for (const char *p = req.data; req.len && (p = memmem(p, req.len - (size_t)(p - req.data), " HTTP/", 6)); p += 6)
        nreq++;
    int64_t t0 = ef_clock_mono_ns();
    size_t got = fz_exchange(z->port, req.data ? req.data : "", req.len, ans, sizeof(ans), complete ? 5000 : 5, 10);
    static long slow_ms = -1;
    if (slow_ms < 0) slow_ms = getenv("FUZZ_SLOW") ? (atol(getenv("FUZZ_SLOW")) > 1 ? atol(getenv("FUZZ_SLOW")) : 100) : 0;
    if (slow_ms && ef_clock_mono_ns() - t0 > slow_ms * 1000000) {
        fprintf(stderr, "SLOW %lldms: ", (long long)((ef_clock_mono_ns() - t0) / 1000000));
        for (size_t i = 0; i < req.len; i++) fprintf(stderr, (unsigned char)req.data[i] >= 32 && (unsigned char)req.data[i] < 127 ? "%c" : "\\x%02x", (unsigned char)req.data[i]);
        fprintf(stderr, "\n");
    }
    ef_buf_free(&req);
    int st = fz_status(ans, got);
    if (got && !st) {
        fprintf(stderr, "fuzz_server: not an HTTP answer: %.200s\n", ans);
        abort();
    }
    if (st == 500) {
        fprintf(stderr, "fuzz_server: a 500 answer:\n%.2000s\n", ans);
        abort();
    }
    /* Pipelined requests each answer; a 500 among them is as bad as the first. */
    for (const char *p = ans; got > 1 && (p = memmem(p + 1, got - 1 - (size_t)(p - ans), "\r\nHTTP/1.1 500", 14));) {
        fprintf(stderr, "fuzz_server: a 500 answer among pipelined ones:\n%.2000s\n", ans);
        abort();
    }
    uint64_t seq = fz_seq(z);
    bool changed = seq != z->base_seq;
    /* A write that was refused must change nothing. Pipelined requests may mix a success and a
     * refusal, so only a lone request with a lone answer is held to it. */
    if (changed && st >= 400 && nreq <= 1 && !memmem(ans + 1, got - 1, "HTTP/1.", 7)) { /* st: got >= 12 */
        fprintf(stderr, "fuzz_server: a refused request changed the store (seq %llu -> %llu):\n%.2000s\n",
                (unsigned long long)z->base_seq, (unsigned long long)seq, ans);
        abort();
    }
    if (changed && z->protect_ns && fz_ns_version(z, z->protect_ns) != z->protect_version) {
        fprintf(stderr, "fuzz_server: namespace %s changed by a caller scoped elsewhere:\n%.2000s\n",
                z->protect_ns, ans);
        abort();
    }
    if (changed || ++z->inputs % 64 == 0) fz_check_integrity(z);
    if (changed) {
        ef_store_err err;
        if (ef_store_load_dump(z->node.store, z->base.data, z->base.len, &err) != 0) fz_die("restore", err.message);
        if (z->node.auth) ef_auth_reload(z->node.auth);
    }
    return st;
}

#endif
