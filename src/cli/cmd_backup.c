/*
 * cmd_backup.c - `edgeflag backup --db PATH -o FILE` (an online copy of a store, even one a server
 * is running on) and `edgeflag restore FILE --db PATH` (replaces a store that no server holds with a
 * backup, under a new history). docs/backup.md is the user's view. Restoring from an object store
 * (s3://) is dispatched to cmd_restore_s3.c.
 *
 * Each prints one JSON line describing what it copied. It must never restore over a store a server
 * holds, nor change anything when the input is refused.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"
#include "cli/cli.h"
#include "store/backup.h"
#include "store/store.h"

static void put_info(ef_buf *b, const ef_backup_info *i)
{
    ef_buf_printf(b, "\"seq\":%" PRIu64 ",\"time\":%lld,\"history\":", i->seq, (long long)i->time_ns);
    ef_json_put_cstr(b, i->id.history);
    ef_buf_puts(b, ",\"dbId\":");
    ef_json_put_cstr(b, i->id.db_id);
    ef_buf_printf(b, ",\"schema\":%d,\"bytes\":%" PRIu64, i->schema_version, i->bytes);
}

static int print_line(ef_buf *b)
{
    ef_buf_puts(b, "}\n");
    int ok = ef_buf_ok(b) && fwrite(b->data, 1, b->len, stdout) == b->len && fflush(stdout) == 0;
    ef_buf_free(b);
    return ok ? 0 : 1;
}

static void backup_usage(FILE *out)
{
    fputs("Usage: edgeflag backup --db PATH|file:URI -o FILE\n"
          "  --db PATH   the store to copy (it may be in use by a running server)\n"
          "  -o FILE     where to write the copy (replaced atomically)\n"
          "prints {\"file\":..,\"seq\":..,\"time\":..,\"history\":..,\"dbId\":..,\"schema\":..,\"bytes\":..}\n",
          out);
}

int ef_cmd_backup(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                          {"output", required_argument, NULL, 'o'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    const char *db = NULL, *out = NULL;
    optind = 0;
    int c;
    while ((c = getopt_long(argc + 1, argv - 1, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'o': out = optarg; break;
        case 'h': backup_usage(stdout); return 0;
        default: backup_usage(stderr); return 2;
        }
    }
    if (optind - 1 < argc || !db || !out) {
        backup_usage(stderr);
        return 2;
    }
    ef_backup_info info;
    ef_store_err err;
    if (ef_sqlite_backup(db, out, &info, &err)) {
        fprintf(stderr, "edgeflag backup: %s\n", err.message);
        return err.code == EF_STORE_INVALID ? 2 : 1;
    }
    ef_buf b;
    ef_buf_init(&b);
    ef_buf_puts(&b, "{\"file\":");
    ef_json_put_cstr(&b, out);
    ef_buf_putc(&b, ',');
    put_info(&b, &info);
    return print_line(&b);
}

static void restore_usage(FILE *out)
{
    fputs("Usage: edgeflag restore FILE --db PATH\n"
          "       edgeflag restore s3://BUCKET[/PREFIX] --db PATH [--at SEQ|TIME] [...]\n"
          "                        (see `edgeflag restore s3:// --help`)\n"
          "  FILE        a file written by `edgeflag backup`\n"
          "  --db PATH   the store to replace (created when missing); no server may hold it\n"
          "The restored store starts a new history: replicas that followed the old one reload it.\n",
          out);
}

int ef_cmd_restore(int argc, char **argv)
{
    if (argc >= 1 && strncmp(argv[0], "s3://", 5) == 0) return ef_cmd_restore_s3(argc, argv);
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    const char *db = NULL;
    optind = 0;
    int c;
    while ((c = getopt_long(argc + 1, argv - 1, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'h': restore_usage(stdout); return 0;
        default: restore_usage(stderr); return 2;
        }
    }
    if (optind != argc || !db) { /* exactly one operand: the backup */
        restore_usage(stderr);
        return 2;
    }
    const char *file = argv[optind - 1];
    ef_backup_info info;
    ef_store_err err;
    if (ef_sqlite_restore(file, db, &info, &err)) {
        fprintf(stderr, "edgeflag restore: %s\n", err.message);
        return err.code == EF_STORE_INVALID ? 2 : 1;
    }
    ef_buf b;
    ef_buf_init(&b);
    ef_buf_puts(&b, "{\"db\":");
    ef_json_put_cstr(&b, db);
    ef_buf_puts(&b, ",\"fromHistory\":");
    ef_json_put_cstr(&b, info.from_history);
    ef_buf_putc(&b, ',');
    put_info(&b, &info);
    return print_line(&b);
}
