/*
 * snapshot_http.c - GET /internal/v1/evaluation/snapshot/namespace/{key}: the document Flipt's
 * client SDKs fetch and evaluate locally.
 *
 * The body is the very document the namespace's published snapshot was compiled from, so an SDK
 * evaluates exactly what this node evaluates. The ETag is derived from that document's hash (equal
 * on every node holding the same state); If-None-Match with it gets 304. Like Flipt, the
 * X-Flipt-Accept-Server-Version header selects older shapes: absent means 1.37.1; below 1.38.0
 * ENTITY_ID constraints are sent as UNKNOWN, below 1.47.0 defaultVariant is left out.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_in.h"
#include "api/node.h"

/* One version number: digits only (no sign, no space), *out clamped to cap so that bigger numbers
 * still compare as bigger; false when there are no digits or the number passes 64 bits, which
 * Flipt's semver cannot parse either. */
static bool version_part(const char **h, unsigned cap, unsigned *out)
{
    const char *p = *h;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*p)) return false;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v > cap ? cap : (unsigned)v;
    *h = p;
    return true;
}

/* "1.47.0", "v1.47", "1.38.0-rc1" -> 14700 / 14700 / 13800; unparsable -> the default. Only the
 * order matters (below 1.38.0, below 1.47.0): each part is clamped before it is packed, so a
 * large major is still newer. Packing them unclamped wrapped: "429497.0.0" came out as 2704 and
 * got the 1.37 shape. */
static unsigned parse_version(const char *h, unsigned dflt)
{
    if (!h) return dflt;
    if (*h == 'v' || *h == 'V') h++;
    unsigned maj, min = 0, pat = 0;
    if (!version_part(&h, 9999, &maj)) return dflt;
    if (*h == '.') {
        h++;
        if (!version_part(&h, 99, &min)) return dflt;
        if (*h == '.') {
            h++;
            if (!version_part(&h, 99, &pat)) {
                if (isdigit((unsigned char)*h)) return dflt; /* past 64 bits */
                pat = 0;
            }
        }
    }
    return maj * 10000 + min * 100 + pat;
}

/* Writes the document with the older shape's changes applied. */
static void write_downgraded(ef_buf *out, const ef_json *v, bool drop_default, bool entity_unknown)
{
    switch (v->type) {
    case EF_JSON_OBJECT: {
        ef_buf_putc(out, '{');
        bool first = true;
        for (const ef_json *c = v->child; c; c = c->next) {
            if (drop_default && ef_bytes_eq(c->key, EF_BYTES_LIT("defaultVariant"))) continue;
            if (!first) ef_buf_putc(out, ',');
            first = false;
            ef_json_put_str(out, c->key);
            ef_buf_putc(out, ':');
            if (entity_unknown && ef_bytes_eq(c->key, EF_BYTES_LIT("type")) && c->type == EF_JSON_STRING &&
                ef_bytes_eq(c->str, EF_BYTES_LIT("ENTITY_ID_CONSTRAINT_COMPARISON_TYPE")))
                ef_buf_puts(out, "\"UNKNOWN_CONSTRAINT_COMPARISON_TYPE\"");
            else
                write_downgraded(out, c, drop_default, entity_unknown);
        }
        ef_buf_putc(out, '}');
        break;
    }
    case EF_JSON_ARRAY:
        ef_buf_putc(out, '[');
        for (const ef_json *c = v->child; c; c = c->next) {
            if (c != v->child) ef_buf_putc(out, ',');
            write_downgraded(out, c, drop_default, entity_unknown);
        }
        ef_buf_putc(out, ']');
        break;
    default: ef_jin_write_compact(out, v); break;
    }
}

static void on_snapshot(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    ef_bytes ns = ef_http_param(req, "key");
    unsigned accept = parse_version(ef_http_header(req, "X-Flipt-Accept-Server-Version"), 13701);
    bool drop_default = accept < 14700, entity_unknown = accept < 13800;
    ef_buf *out = ef_http_out(req);
    char etag[48] = "";
    char version[32] = "0";
    ef_registry_read_lock(node->registry);
    const ef_snapshot *snap = ef_registry_get(node->registry, ns);
    bool have = snap && ef_snapshot_has_document(snap);
    if (snap) snprintf(version, sizeof(version), "%llu", (unsigned long long)ef_snapshot_version(snap));
    if (have) {
        snprintf(etag, sizeof(etag), "%016llx%s", (unsigned long long)ef_snapshot_document_hash(snap),
                 entity_unknown ? "-137" : drop_default ? "-146" : "");
        const char *inm = ef_http_header(req, "If-None-Match");
        if (inm && strcmp(inm, etag) == 0) {
            ef_registry_read_unlock(node->registry);
            ef_http_add_header(req, "ETag", etag);
            ef_http_add_header(req, "X-Edgeflag-Version", version);
            ef_http_reply(req, 304);
            return;
        }
        /* an assembled snapshot's document is written from its flag pieces, never cached */
        if (!drop_default && !entity_unknown) {
            ef_snapshot_write_document(snap, out);
        } else {
            /* rewrite a copy: the tree must not point into the snapshot after the read section
             * ends, so the rewrite happens inside it */
            ef_buf tmp;
            ef_buf_init(&tmp);
            ef_json_error je;
            const ef_json *tree = ef_snapshot_write_document(snap, &tmp) == 0
                                      ? ef_json_parse(tmp.data, tmp.len, ef_http_arena(req), NULL, &je)
                                      : NULL;
            if (tree) write_downgraded(out, tree, drop_default, entity_unknown);
            ef_buf_free(&tmp);
        }
    }
    ef_registry_read_unlock(node->registry);
    if (!have) {
        /* an unknown namespace is an empty one, as Flipt's SQL backends answer */
        ef_buf_puts(out, "{\"namespace\":{\"key\":");
        ef_json_put_str(out, ns);
        ef_buf_puts(out, "},\"flags\":[]}");
    } else {
        ef_http_add_header(req, "ETag", etag);
    }
    ef_http_add_header(req, "X-Edgeflag-Version", version);
    ef_http_reply(req, 200);
}

int ef_api_register_snapshot(ef_router *r, ef_node *node)
{
    return ef_router_add_route(r, &(ef_route){.methods = EF_GET,
                                              .pattern = "/internal/v1/evaluation/snapshot/namespace/{key}",
                                              .fn = on_snapshot, .ctx = node, .cls = EF_ROUTE_EVALUATION,
                                              .ns = EF_NS_PATH, .ns_param = "key", .flags = EF_RF_STATE});
}
