/*
 * cmd_import.c - `edgeflag import [--db PATH] [--drop] [--skip-existing] FILE...`: loads Flipt
 * declarative files (features.yml, any version 1.0-1.4, or JSON) into the SQLite store.
 *
 * Atomic: every file is parsed and merged first, then everything is written in ONE transaction, so
 * any error (a parse error with its file:line:column, a duplicate, an invalid constraint) imports
 * nothing. This command must never leave a half-imported database.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "store/doc.h"
#include "store/open.h"
#include "store/store.h"

static void import_usage(FILE *out)
{
    fputs("Usage: edgeflag import [--db PATH|file:URI] [--drop] [--skip-existing] FILE...\n"
          "  --db PATH          database (default " EF_SQLITE_DEFAULT_PATH ")\n"
          "  --drop             delete all existing flags, segments and namespaces first\n"
          "  --skip-existing    leave flags and segments that already exist untouched\n",
          out);
}

int ef_cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                          {"drop", no_argument, NULL, 'D'},
                                          {"skip-existing", no_argument, NULL, 's'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    const char *db = EF_SQLITE_DEFAULT_PATH;
    ef_store_import_opts io = {0};
    optind = 0;
    int c;
    /* argv[0] is the first option: getopt skips argv[0], so shift by one */
    while ((c = getopt_long(argc + 1, argv - 1, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'D': io.drop = true; break;
        case 's': io.skip_existing = true; break;
        case 'h': import_usage(stdout); return 0;
        default: import_usage(stderr); return 2;
        }
    }
    int first = optind - 1;
    if (first >= argc) {
        fputs("edgeflag import: no input files\n", stderr);
        import_usage(stderr);
        return 2;
    }
    ef_arena a;
    ef_arena_init(&a, 1 << 16);
    ef_doc all = {0};
    ef_decl_error derr;
    int rc = 0;
    for (int i = first; i < argc && rc == 0; i++) {
        ef_doc one;
        if (ef_decl_parse_file(argv[i], &a, &one, &derr) != 0 ||
            ef_decl_merge(&all, &one, &a, &derr) != 0) {
            if (derr.line)
                fprintf(stderr, "edgeflag import: %s:%u:%u: %s\n", derr.file, derr.line,
                        derr.column, derr.message);
            else
                fprintf(stderr, "edgeflag import: %s: %s\n", derr.file[0] ? derr.file : argv[i],
                        derr.message);
            rc = 2;
        }
    }
    if (rc == 0) {
        ef_store_err err;
        ef_store_open_opts so = {.token = getenv("EDGEFLAG_DB_TOKEN")};
        ef_store *s = ef_store_open(db, &so, &err);
        if (!s) {
            fprintf(stderr, "edgeflag import: %s\n", err.message);
            rc = 1;
        } else {
            if (ef_store_import(s, &all, &io, &err) != 0) {
                fprintf(stderr, "edgeflag import: %s (nothing was imported)\n", err.message);
                rc = err.code == EF_STORE_INVALID || err.code == EF_STORE_NOT_UNIQUE ||
                             err.code == EF_STORE_NOT_FOUND
                         ? 2
                         : 1;
            } else {
                size_t nflags = 0, nsegs = 0;
                for (size_t i = 0; i < all.nnamespaces; i++) {
                    nflags += all.namespaces[i].nflags;
                    nsegs += all.namespaces[i].nsegments;
                }
                char shown[1024];
                fprintf(stderr, "edgeflag import: %zu namespace(s), %zu flag(s), %zu segment(s) into %s\n",
                        all.nnamespaces, nflags, nsegs, ef_store_url_redact(db, shown, sizeof(shown)));
            }
            ef_store_close(s);
        }
    }
    ef_arena_free(&a);
    return rc;
}
