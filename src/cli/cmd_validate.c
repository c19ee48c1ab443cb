/*
 * cmd_validate.c - `edgeflag validate FILE...`: checks Flipt declarative files (features.yml,
 * YAML streams, JSON) with exactly the rules import and the directory backend apply, and prints one
 * `FILE:LINE:COLUMN: message` line per invalid file on stderr, so editors and CI can jump to it.
 *
 * It only reads the files; it never writes, imports or talks to a server. Exit status: 0 all valid,
 * 1 some invalid (or unreadable), 2 bad usage.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "store/doc.h"

static void validate_usage(FILE *out)
{
    fputs("Usage: edgeflag validate FILE...\n"
          "  checks Flipt features files (YAML 1.0-1.4 or JSON); prints FILE:LINE:COLUMN: message\n"
          "  per invalid file on stderr; exit 0 if all are valid, 1 if any is not\n",
          out);
}

static bool validate_one(const char *path, bool quiet)
{
    ef_arena a;
    ef_arena_init(&a, 1 << 16);
    ef_doc doc;
    ef_decl_error err;
    bool ok = ef_decl_parse_file(path, &a, &doc, &err) == 0;
    if (!ok && err.line)
        fprintf(stderr, "%s:%u:%u: %s\n", err.file[0] ? err.file : path, err.line, err.column,
                err.message);
    else if (!ok)
        fprintf(stderr, "%s: %s\n", err.file[0] ? err.file : path, err.message);
    else if (!quiet) {
        size_t flags = 0, segments = 0;
        for (size_t i = 0; i < doc.nnamespaces; i++) {
            flags += doc.namespaces[i].nflags;
            segments += doc.namespaces[i].nsegments;
        }
        printf("%s: ok (%zu namespace%s, %zu flags, %zu segments)\n", path, doc.nnamespaces,
               doc.nnamespaces == 1 ? "" : "s", flags, segments);
    }
    ef_arena_free(&a);
    return ok;
}

int ef_cmd_validate(int argc, char **argv)
{
    bool quiet = false;
    int first = 0;
    for (; first < argc && argv[first][0] == '-' && argv[first][1] != '\0'; first++) {
        if (strcmp(argv[first], "--") == 0) {
            first++;
            break;
        }
        if (strcmp(argv[first], "-q") == 0 || strcmp(argv[first], "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(argv[first], "-h") == 0 || strcmp(argv[first], "--help") == 0) {
            validate_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "edgeflag validate: unknown option '%s'\n", argv[first]);
            validate_usage(stderr);
            return 2;
        }
    }
    if (first >= argc) {
        validate_usage(stderr);
        return 2;
    }
    int status = 0;
    for (int i = first; i < argc; i++)
        if (!validate_one(argv[i], quiet)) status = 1;
    return status;
}
