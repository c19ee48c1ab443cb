/*
 * client_eval.c - test helper for parity.mjs: evaluates JSON-lines requests through libedgeflag.
 *
 * usage: client_eval --url URL [--namespace NS] < requests.jsonl > answers.jsonl
 * Each input line is {"type":"variant"|"boolean","flagKey":..,"entityId":..,"context":{..}}; each
 * output line is the library's answer in the fields /evaluate/v1 uses (match, reason, variantKey,
 * variantAttachment, segmentKeys / enabled, reason, segmentKeys) or {"error":"notfound"|
 * "wrongtype"|"invalid"}. It waits for the client's first state from the node, and fails (exit 1)
 * if there is none, so a comparison can never pass on an empty client.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/json.h"
#include "edgeflag.h"

static void put_segments(ef_buf *o, const ef_result *r)
{
    ef_buf_puts(o, ",\"segmentKeys\":[");
    for (size_t i = 0; i < r->segment_count; i++) {
        size_t n;
        const char *k = ef_result_segment(r, i, &n);
        if (i) ef_buf_putc(o, ',');
        ef_json_put_str(o, (ef_bytes){k, n});
    }
    ef_buf_putc(o, ']');
}

static const char *error_name(int rc)
{
    return rc == EF_ENOTFOUND ? "notfound" : rc == EF_EWRONGTYPE ? "wrongtype" : "invalid";
}

/* The request's strings as C strings (the API takes NUL-terminated keys); NULL if one holds NUL. */
static char *cstr(ef_arena *a, const ef_json *v)
{
    if (!v || v->type != EF_JSON_STRING || memchr(v->str.p, 0, v->str.n)) return NULL;
    return ef_arena_memdup(a, v->str.p, v->str.n);
}

static void eval_line(ef_client *c, const char *line, size_t len, ef_buf *o)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_json_error je;
    const ef_json *v = ef_json_parse(line, len, &a, NULL, &je);
    const ef_json *type = v ? ef_json_get(v, "type") : NULL;
    const ef_json *ctx = v ? ef_json_get(v, "context") : NULL;
    char *flag = v ? cstr(&a, ef_json_get(v, "flagKey")) : NULL;
    const ef_json *ent = v ? ef_json_get(v, "entityId") : NULL;
    char *entity = ent ? cstr(&a, ent) : ef_arena_memdup(&a, "", 0);
    ef_pair pairs[256];
    size_t n = 0;
    bool ok = v && type && type->type == EF_JSON_STRING && flag && entity;
    for (const ef_json *m = ctx && ctx->type == EF_JSON_OBJECT ? ctx->child : NULL; ok && m; m = m->next) {
        if (m->type == EF_JSON_NULL) continue;
        if (m->type != EF_JSON_STRING || n == 256) ok = false;
        else pairs[n++] = (ef_pair){m->key.p, m->key.n, m->str.p, m->str.n};
    }
    ef_result r;
    int rc = EF_EINVAL;
    bool boolean = ok && ef_bytes_eq(type->str, EF_BYTES_LIT("boolean"));
    if (ok) rc = boolean ? ef_client_boolean(c, flag, entity, pairs, n, &r)
                         : ef_client_variant(c, flag, entity, pairs, n, &r);
    if (rc != EF_OK) {
        ef_buf_printf(o, "{\"error\":\"%s\"}\n", error_name(rc));
    } else if (boolean) {
        ef_buf_printf(o, "{\"enabled\":%s,\"reason\":\"%s\"", r.enabled ? "true" : "false",
                      ef_result_reason_name(r.reason));
        put_segments(o, &r);
        ef_buf_puts(o, "}\n");
    } else {
        ef_buf_printf(o, "{\"match\":%s,\"reason\":\"%s\",\"variantKey\":", r.match ? "true" : "false",
                      ef_result_reason_name(r.reason));
        ef_json_put_str(o, (ef_bytes){r.variant_key, r.variant_key_len});
        ef_buf_puts(o, ",\"variantAttachment\":");
        ef_json_put_str(o, (ef_bytes){r.attachment, r.attachment_len});
        put_segments(o, &r);
        ef_buf_puts(o, "}\n");
    }
    if (rc == EF_OK) ef_result_release(&r);
    ef_arena_free(&a);
}

int main(int argc, char **argv)
{
    ef_client_options opts = {0};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--url")) opts.url = argv[i + 1];
        else if (!strcmp(argv[i], "--namespace")) opts.namespace_key = argv[i + 1];
    }
    ef_client *c;
    int rc = ef_client_open(&opts, &c);
    if (rc != EF_OK || (rc = ef_client_wait(c, 0, 20000)) != EF_OK) {
        fprintf(stderr, "client_eval: %s\n", ef_strerror(rc));
        return 1;
    }
    ef_buf in, out;
    ef_buf_init(&in);
    ef_buf_init(&out);
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), stdin)) > 0) ef_buf_append(&in, chunk, got);
    for (size_t start = 0; start < in.len;) {
        const char *nl = memchr(in.data + start, '\n', in.len - start);
        size_t len = nl ? (size_t)(nl - in.data) - start : in.len - start;
        if (len) eval_line(c, in.data + start, len, &out);
        start += len + 1;
    }
    int status = ef_buf_ok(&out) && fwrite(out.data, 1, out.len, stdout) == out.len ? 0 : 1;
    ef_buf_free(&in);
    ef_buf_free(&out);
    ef_client_close(c);
    return status;
}
