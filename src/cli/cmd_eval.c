/*
 * cmd_eval.c - `edgeflag eval`: evaluation requests as JSON lines on stdin, one response line each
 * on stdout, in order. Answers are the bodies Flipt's HTTP API returns (or its error body), so the
 * engine can be compared with Flipt's without a server. A bad line gets an error line; only an
 * unreadable snapshot stops the run (exit status 2).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/eval_json.h"
#include "api/snapshot_file.h"
#include "base/clock.h"
#include "cli/cli.h"
#include "eval/registry.h"

typedef enum { REQ_VARIANT, REQ_BOOLEAN, REQ_BATCH } req_type;

/* Evaluates one request line into out. */
static void eval_line(ef_registry *reg, ef_bytes default_ns, const char *line, size_t len,
                      ef_arena *arena, ef_buf *out)
{
    ef_json_error jerr;
    ef_json_opts opts = {.max_depth = 64};
    ef_json *root = ef_json_parse(line, len, arena, &opts, &jerr);
    char msg[200];
    if (!root) {
        snprintf(msg, sizeof(msg), "invalid JSON at column %u: %s", jerr.column, jerr.message);
        ef_write_error(out, EF_CODE_INVALID_ARGUMENT, ef_bytes_of(msg));
        return;
    }
    ef_eval_input in;
    if (ef_eval_input_decode(root, arena, &in, msg, sizeof(msg)) != 0) {
        ef_write_error(out, EF_CODE_INVALID_ARGUMENT, ef_bytes_of(msg));
        return;
    }
    req_type type = REQ_VARIANT;
    const ef_json *t = ef_json_get(root, "type");
    if (!ef_json_is_null(t)) {
        if (t->type == EF_JSON_STRING && ef_bytes_eq(t->str, EF_BYTES_LIT("variant")))
            type = REQ_VARIANT;
        else if (t->type == EF_JSON_STRING && ef_bytes_eq(t->str, EF_BYTES_LIT("boolean")))
            type = REQ_BOOLEAN;
        else if (t->type == EF_JSON_STRING && ef_bytes_eq(t->str, EF_BYTES_LIT("batch")))
            type = REQ_BATCH;
        else {
            ef_write_error(out, EF_CODE_INVALID_ARGUMENT,
                           EF_BYTES_LIT("invalid field type: must be \"variant\", \"boolean\" or \"batch\""));
            return;
        }
    }
    ef_bytes ns = in.namespace_key.n ? in.namespace_key : default_ns;
    char rid[EF_UUID_LEN + 1];
    ef_bytes request_id = in.request_id;
    if (type != REQ_BATCH && request_id.n == 0) {
        ef_uuid_v4(rid);
        request_id = (ef_bytes){rid, EF_UUID_LEN};
    }

    int64_t t0 = ef_clock_mono_ns();
    ef_registry_read_lock(reg);
    const ef_snapshot *snap = ef_registry_get(reg, ns);
    const ef_flag *flag = snap ? ef_snapshot_request_flag(snap, &in.req) : NULL;
    ef_variant_result vr;
    ef_boolean_result br;
    ef_eval_status st = EF_EVAL_OK;
    if (!flag) {
        st = EF_EVAL_NOT_FOUND;
    } else if (type == REQ_BATCH) {
        if (ef_flag_get_type(flag) == EF_FLAG_VARIANT)
            ef_eval_variant_flag(flag, &in.req, &vr);
        else
            ef_eval_boolean_flag(flag, &in.req, &br);
    } else if (type == REQ_VARIANT) {
        st = ef_eval_variant(snap, &in.req, &vr);
    } else {
        st = ef_eval_boolean(snap, &in.req, &br);
    }
    ef_eval_timing timing = {.duration_ns = ef_clock_mono_ns() - t0,
                             .timestamp_ns = ef_clock_wall_ns()};
    /* Results point into the snapshot: write them before leaving the read section. */
    if (type == REQ_BATCH) {
        if (!flag)
            ef_write_batch_not_found(out, in.req.flag_key, ns);
        else if (ef_flag_get_type(flag) == EF_FLAG_VARIANT)
            ef_write_batch_variant(out, &vr, request_id, &timing);
        else
            ef_write_batch_boolean(out, &br, request_id, &timing);
    } else if (st != EF_EVAL_OK) {
        ef_write_eval_error(out, st, ns, in.req.flag_key, snap);
    } else if (type == REQ_VARIANT) {
        ef_write_variant_response(out, &vr, request_id, &timing);
    } else {
        ef_write_boolean_response(out, &br, request_id, &timing);
    }
    ef_registry_read_unlock(reg);
}

int ef_cmd_eval(int argc, char **argv)
{
    const char *snapshot_path = NULL, *ns_opt = NULL;
    static const struct option longopts[] = {
        {"snapshot", required_argument, NULL, 's'},
        {"namespace", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* getopt expects argv[0] to be the program name. */
    argv--;
    argc++;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "s:n:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's': snapshot_path = optarg; break;
        case 'n': ns_opt = optarg; break;
        case 'h':
            puts("Usage: edgeflag eval --snapshot FILE [--namespace NS] < requests.jsonl");
            return 0;
        default: return 2;
        }
    }
    if (!snapshot_path || optind != argc) {
        fputs("Usage: edgeflag eval --snapshot FILE [--namespace NS] < requests.jsonl\n", stderr);
        return 2;
    }
    char err[600];
    ef_snapshot *snap = ef_snapshot_read_file(snapshot_path, err, sizeof(err));
    if (!snap) {
        fprintf(stderr, "edgeflag: %s\n", err);
        return 2;
    }
    ef_bytes snap_ns = ef_snapshot_namespace(snap);
    char *default_ns = ns_opt ? strdup(ns_opt) : strndup(snap_ns.p, snap_ns.n);
    ef_bytes def = {default_ns, strlen(default_ns)};
    ef_registry *reg = ef_registry_new();
    if (!reg || !default_ns || ef_registry_publish(reg, snap) != 0) {
        fputs("edgeflag: out of memory\n", stderr);
        return 1;
    }

    ef_arena arena;
    ef_arena_init(&arena, 1 << 16);
    ef_buf out;
    ef_buf_init(&out);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int status = 0;
    while ((n = getline(&line, &cap, stdin)) != -1) {
        size_t len = (size_t)n;
        if (len && line[len - 1] == '\n') len--;
        if (len && line[len - 1] == '\r') len--;
        ef_buf_clear(&out);
        eval_line(reg, def, line, len, &arena, &out);
        ef_buf_putc(&out, '\n');
        ef_arena_reset(&arena);
        if (!ef_buf_ok(&out)) {
            fputs("edgeflag: out of memory\n", stderr);
            status = 1;
            break;
        }
        if (fwrite(out.data, 1, out.len, stdout) != out.len) {
            status = 1;
            break;
        }
    }
    if (fflush(stdout) != 0) status = 1;
    free(line);
    ef_buf_free(&out);
    ef_arena_free(&arena);
    ef_registry_free(reg);
    free(default_ns);
    return status;
}
