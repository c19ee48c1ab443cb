/*
 * cmd_restore_s3.c - `edgeflag restore s3://BUCKET/PREFIX --db PATH [--at SEQ|TIME]
 * [--history H] [--endpoint URL] [--region R] [--access-key K] [--secret-key S]`: rebuilds a store
 * from what `serve --backup` shipped (src/backup/restore.h, docs/backup.md). Settings not given as
 * flags come from AWS's environment variables.
 *
 * Prints one JSON line. It must never change the target when anything is refused.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/restore.h"
#include "base/buf.h"
#include "base/bytes.h"
#include "cli/cli.h"
#include "eval/model.h"

static void usage(FILE *out)
{
    fputs("Usage: edgeflag restore s3://BUCKET[/PREFIX] --db PATH [--at SEQ|TIME] [--history H]\n"
          "                        [--endpoint URL] [--region R] [--access-key K] [--secret-key S]\n"
          "  --at SEQ      the state right after change-log entry SEQ\n"
          "  --at TIME     the last state committed at or before TIME (RFC 3339, e.g.\n"
          "                2026-11-28T10:40:05.250Z)\n"
          "                (default: everything the bucket holds)\n"
          "  --history H   which history to read (default: the one written to last)\n"
          "  --endpoint, --region, --access-key, --secret-key: the object store (default from\n"
          "                AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_REGION / AWS_DEFAULT_REGION,\n"
          "                AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; AWS_SESSION_TOKEN)\n",
          out);
}

/* RFC 3339 with an optional fraction of a second, to ns since the epoch. */
static bool parse_time(const char *s, int64_t *ns)
{
    char buf[64];
    size_t n = strlen(s);
    if (n >= sizeof(buf)) return false;
    const char *dot = strchr(s, '.');
    int64_t frac = 0;
    if (dot) {
        size_t digits = strspn(dot + 1, "0123456789");
        if (digits == 0 || digits > 9) return false;
        for (size_t i = 0; i < 9; i++) frac = frac * 10 + (i < digits ? dot[1 + i] - '0' : 0);
        size_t head = (size_t)(dot - s);
        snprintf(buf, sizeof(buf), "%.*s%s", (int)head, s, dot + 1 + digits);
    } else {
        snprintf(buf, sizeof(buf), "%s", s);
    }
    int64_t secs;
    if (!ef_rfc3339_parse(ef_bytes_of(buf), &secs) || secs < 0 || secs > INT64_MAX / 1000000000 - 1)
        return false;
    *ns = secs * 1000000000 + frac;
    return true;
}

int ef_cmd_restore_s3(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                          {"at", required_argument, NULL, 'a'},
                                          {"history", required_argument, NULL, 'H'},
                                          {"endpoint", required_argument, NULL, 'e'},
                                          {"region", required_argument, NULL, 'r'},
                                          {"access-key", required_argument, NULL, 'k'},
                                          {"secret-key", required_argument, NULL, 's'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    ef_s3_config sc = {0};
    ef_bk_restore_opts o = {0};
    const char *at = NULL;
    optind = 0;
    int c;
    while ((c = getopt_long(argc + 1, argv - 1, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': o.db = optarg; break;
        case 'a': at = optarg; break;
        case 'H': o.history = optarg; break;
        case 'e': sc.endpoint = optarg; break;
        case 'r': sc.region = optarg; break;
        case 'k': sc.access_key = optarg; break;
        case 's': sc.secret_key = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !o.db) {
        usage(stderr);
        return 2;
    }
    sc.url = argv[optind - 1];
    if (at) {
        char *end;
        unsigned long long v = strtoull(at, &end, 10);
        if (at[0] >= '0' && at[0] <= '9' && !*end && v <= INT64_MAX) {
            o.has_seq = true;
            o.at_seq = v;
        } else if (parse_time(at, &o.at_time_ns)) {
            o.has_time = true;
        } else {
            fprintf(stderr, "edgeflag restore: --at %s is neither a seq nor an RFC 3339 time\n", at);
            return 2;
        }
    }
    ef_s3_config_env(&sc);
    /* one pass run by hand: a 503 (SlowDown) or a dropped connection halfway through a
     * restore's hundreds of GETs is tried again rather than failing the whole restore */
    sc.get_retries = 4;
    ef_s3_err se;
    ef_s3 *s3 = ef_s3_new(&sc, &se);
    if (!s3) {
        fprintf(stderr, "edgeflag restore: %s\n", se.message);
        return 2;
    }
    ef_bk_restore_result r;
    char err[1024];
    int status;
    if (ef_bk_restore(s3, &o, &r, &status, err, sizeof(err))) {
        fprintf(stderr, "edgeflag restore: %s\n", err);
        ef_s3_free(s3);
        return status;
    }
    ef_buf b;
    ef_buf_init(&b);
    ef_buf_puts(&b, "{\"db\":");
    ef_json_put_cstr(&b, o.db);
    ef_buf_puts(&b, ",\"source\":");
    ef_json_put_cstr(&b, ef_s3_url(s3));
    ef_buf_puts(&b, ",\"fromHistory\":");
    ef_json_put_cstr(&b, r.source_history);
    ef_buf_printf(&b, ",\"snapshotSeq\":%" PRIu64 ",\"batches\":%" PRIu64 ",\"entries\":%" PRIu64
                      ",\"seq\":%" PRIu64 ",\"history\":",
                  r.snapshot_seq, r.batches, r.entries, r.info.seq);
    ef_json_put_cstr(&b, r.info.id.history);
    ef_buf_puts(&b, ",\"dbId\":");
    ef_json_put_cstr(&b, r.info.id.db_id);
    ef_buf_puts(&b, "}\n");
    int rc = ef_buf_ok(&b) && fwrite(b.data, 1, b.len, stdout) == b.len && fflush(stdout) == 0 ? 0 : 1;
    ef_buf_free(&b);
    ef_s3_free(s3);
    return rc;
}
