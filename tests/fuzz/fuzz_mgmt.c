/*
 * fuzz_mgmt.c - libFuzzer target: the JSON body of every route that reads one (management
 * create/update of namespaces, flags, variants, segments, constraints, rules, distributions,
 * rollouts and their order, tokens; evaluation, batch, legacy and OFREP evaluation), sent to the
 * in-process node of tests/fuzz/fuzz_server.h with a real SQLite store behind it.
 *
 * Input: byte 0 picks the route, byte 1 the caller (bit 0: the bootstrap token or a token scoped
 * to namespace ns1; bit 1: namespace "default" in the path or ns1), the rest is the body, sent
 * framed correctly so every input reaches the handler. Placeholders (@VAR@, @RULE@...) in paths
 * and bodies are the base state's ids.
 *
 * Besides fuzz_server.h's invariants (no 500, a refused write changes nothing, integrity after
 * every write): a write with the token scoped to ns1 never changes namespace "default". Must never
 * crash or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fuzz_server.h"

static const struct {
    const char *method, *path; /* "{ns}" is default or ns1 */
} routes[] = {
    {"POST", "/api/v1/namespaces"},
    {"PUT", "/api/v1/namespaces/{ns}"},
    {"POST", "/api/v1/namespaces/{ns}/flags"},
    {"PUT", "/api/v1/namespaces/{ns}/flags/f1"},
    {"PUT", "/api/v1/namespaces/{ns}/flags/b1"},
    {"POST", "/api/v1/namespaces/{ns}/flags/f1/variants"},
    {"PUT", "/api/v1/namespaces/{ns}/flags/f1/variants/@VAR@"},
    {"POST", "/api/v1/namespaces/{ns}/segments"},
    {"PUT", "/api/v1/namespaces/{ns}/segments/s1"},
    {"POST", "/api/v1/namespaces/{ns}/segments/s1/constraints"},
    {"PUT", "/api/v1/namespaces/{ns}/segments/s1/constraints/@CON@"},
    {"POST", "/api/v1/namespaces/{ns}/flags/f1/rules"},
    {"PUT", "/api/v1/namespaces/{ns}/flags/f1/rules/@RULE@"},
    {"PUT", "/api/v1/namespaces/{ns}/flags/f1/rules/order"},
    {"POST", "/api/v1/namespaces/{ns}/flags/f1/rules/@RULE@/distributions"},
    {"PUT", "/api/v1/namespaces/{ns}/flags/f1/rules/@RULE@/distributions/@DIST@"},
    {"POST", "/api/v1/namespaces/{ns}/flags/b1/rollouts"},
    {"PUT", "/api/v1/namespaces/{ns}/flags/b1/rollouts/@ROLL@"},
    {"PUT", "/api/v1/namespaces/{ns}/flags/b1/rollouts/order"},
    {"DELETE", "/api/v1/namespaces/{ns}/flags/f1/rules/@RULE@/distributions/@DIST@"},
    /* the routes whose namespace is in the body (or the query) */
    {"POST", "/api/v1/flags"},
    {"PUT", "/api/v1/flags/f1"},
    {"POST", "/api/v1/flags/f1/variants"},
    {"POST", "/api/v1/segments"},
    {"PUT", "/api/v1/segments/s1"},
    {"POST", "/api/v1/segments/s1/constraints"},
    {"POST", "/api/v1/flags/f1/rules"},
    {"PUT", "/api/v1/flags/f1/rules/order"},
    {"POST", "/api/v1/flags/f1/rules/@RULE@/distributions"},
    {"DELETE", "/api/v1/flags/f1"},
    {"POST", "/auth/v1/method/token"},
    {"POST", "/evaluate/v1/variant"},
    {"POST", "/evaluate/v1/boolean"},
    {"POST", "/evaluate/v1/batch"},
    {"POST", "/api/v1/evaluate"},
    {"POST", "/api/v1/namespaces/{ns}/evaluate"},
    {"POST", "/api/v1/batch-evaluate"},
    {"POST", "/api/v1/namespaces/{ns}/batch-evaluate"},
    {"POST", "/ofrep/v1/evaluate/flags/f1"},
    {"POST", "/ofrep/v1/evaluate/flags"},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fz_server *z;
    static uint64_t base_default;
    if (!z) {
        z = fz_start();
        base_default = fz_ns_version(z, "default");
    }
    if (size < 2 || size > 65536) return 0;
    unsigned r = data[0] % NROUTES;
    bool scoped = data[1] & 1;
    const char *ns = data[1] & 2 ? "ns1" : "default";
    char path[256];
    size_t pl = 0;
    for (const char *p = routes[r].path; *p && pl + 8 < sizeof(path);) {
        if (strncmp(p, "{ns}", 4) == 0) {
            pl += (size_t)snprintf(path + pl, sizeof(path) - pl, "%s", ns);
            p += 4;
        } else {
            path[pl++] = *p++;
        }
    }
    path[pl] = '\0';
    /* the body's placeholders expand first: the Content-Length is the expanded one */
    ef_buf body, req;
    ef_buf_init(&body);
    ef_buf_init(&req);
    fz_expand(z, (const char *)data + 2, size - 2, &body);
    bool ofrep = strncmp(path, "/ofrep", 6) == 0;
    ef_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: fuzz\r\nAuthorization: Bearer %s\r\n%s%s%s"
                  "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                  routes[r].method, path, scoped ? "@TOK@" : FZ_BOOTSTRAP, ofrep ? "X-Flipt-Namespace: " : "",
                  ofrep ? ns : "", ofrep ? "\r\n" : "", body.len);
    ef_buf_append(&req, body.data ? body.data : "", body.len);
    ef_buf_free(&body);
    if (!ef_buf_ok(&req)) fz_die("request", "out of memory");
    /* a token scoped to ns1 never changes namespace "default" */
    z->protect_ns = scoped ? "default" : NULL;
    z->protect_version = base_default;
    fz_send_checked(z, req.data, req.len);
    ef_buf_free(&req);
    return 0;
}
