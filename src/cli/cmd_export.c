/*
 * cmd_export.c - `edgeflag export [--db PATH] [--namespace NS | --all-namespaces] [-o FILE]`:
 * writes the SQLite store's state as Flipt declarative YAML (version 1.4), one document per
 * namespace, in a stable order so exports can be diffed and re-imported unchanged.
 *
 * Read-only: it must never change the database (it only runs migrations on a fresh file).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "store/doc.h"
#include "store/open.h"
#include "store/store.h"

static void export_usage(FILE *out)
{
    fputs("Usage: edgeflag export [--db PATH|file:URI] [--namespace NS | --all-namespaces] "
          "[-o FILE]\n"
          "  --db PATH            database (default " EF_SQLITE_DEFAULT_PATH ")\n"
          "  --namespace NS       namespace to export (default \"default\")\n"
          "  --all-namespaces     export every namespace\n"
          "  -o FILE              write to FILE instead of standard output\n",
          out);
}

int ef_cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                          {"namespace", required_argument, NULL, 'n'},
                                          {"all-namespaces", no_argument, NULL, 'A'},
                                          {"output", required_argument, NULL, 'o'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    const char *db = EF_SQLITE_DEFAULT_PATH, *ns = "default", *outpath = NULL;
    bool all = false, ns_given = false;
    optind = 0;
    int c;
    while ((c = getopt_long(argc + 1, argv - 1, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'n': ns = optarg, ns_given = true; break;
        case 'A': all = true; break;
        case 'o': outpath = optarg; break;
        case 'h': export_usage(stdout); return 0;
        default: export_usage(stderr); return 2;
        }
    }
    if (optind - 1 < argc || (all && ns_given)) {
        export_usage(stderr);
        return 2;
    }
    ef_store_err err;
    ef_store_open_opts so = {.token = getenv("EDGEFLAG_DB_TOKEN"), .reader = true};
    ef_store *s = ef_store_open(db, &so, &err);
    if (!s) {
        fprintf(stderr, "edgeflag export: %s\n", err.message);
        return 1;
    }
    ef_arena a;
    ef_arena_init(&a, 1 << 16);
    ef_doc doc;
    ef_buf out;
    ef_buf_init(&out);
    int rc = 0;
    if (ef_store_export(s, all ? (ef_bytes){"", 0} : ef_bytes_of(ns), &a, &doc, &err) != 0) {
        fprintf(stderr, "edgeflag export: %s\n", err.message);
        rc = err.code == EF_STORE_NOT_FOUND ? 2 : 1;
    } else if (ef_decl_write_yaml(&doc, &out) != 0 || !ef_buf_ok(&out)) {
        fputs("edgeflag export: cannot write YAML\n", stderr);
        rc = 1;
    } else {
        FILE *f = outpath ? fopen(outpath, "w") : stdout;
        if (!f || fwrite(out.data, 1, out.len, f) != out.len || (outpath && fclose(f) != 0) ||
            (!outpath && fflush(f) != 0)) {
            fprintf(stderr, "edgeflag export: cannot write %s\n", outpath ? outpath : "stdout");
            rc = 1;
        }
    }
    ef_buf_free(&out);
    ef_arena_free(&a);
    ef_store_close(s);
    return rc;
}
