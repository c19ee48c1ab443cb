/*
 * main.c - the edgeflag program: dispatches to a subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "base/hugepages.h"
#include "cli/cli.h"
#include "store/store.h"

static void usage(FILE *out)
{
    fputs("edgeflag " EF_VERSION " - a Flipt-compatible feature-flag server built for the edge\n"
          "\n"
          "Usage: edgeflag <command> [options]\n"
          "\n"
          "commands:\n"
          "  serve [--listen HOST:PORT] [--db PATH | --dir PATH | --snapshot FILE] [...]\n"
          "        serve Flipt's HTTP APIs (see `edgeflag serve --help`)\n"
          "  eval --snapshot FILE [--namespace NS]\n"
          "        evaluate JSON-lines requests from stdin against a Flipt snapshot document\n"
          "  import [--db PATH] [--drop] [--skip-existing] FILE...\n"
          "        import Flipt declarative files into a store, all or nothing\n"
          "  export [--db PATH] [--namespace NS | --all-namespaces] [-o FILE]\n"
          "        export a store as a Flipt declarative document\n"
          "  validate FILE...\n"
          "        check Flipt declarative files\n"
          "  routes [--json] [serve options]\n"
          "        print the route table serve would use: methods, pattern, auth class, namespace\n"
          "        source, write/state/stream\n"
          "  backup --db PATH -o FILE\n"
          "        an online copy of a store (a running server may hold it), with its seq and history\n"
          "  restore FILE --db PATH\n"
          "        replace a store no server holds with a backup, under a new history\n"
          "  version, --version   print the version\n"
          "  help, --help         print this help\n"
          "\n"
          "Each command has its own --help and man page (edgeflag-serve(1), ...).\n",
          out);
}

int main(int argc, char **argv)
{
    /* the two commands that hold or build a whole state in memory: before anything else exists */
    if (argc >= 2 && (strcmp(argv[1], "serve") == 0 || strcmp(argv[1], "import") == 0)) {
        ef_hugepages_reexec(argv);
        /* a server keeps what it frees for reuse, up to a few MiB; an import's memory goes at exit */
        ef_malloc_thresholds(strcmp(argv[1], "serve") == 0 ? EF_MALLOC_SERVE_THRESHOLD
                                                             : EF_MALLOC_IMPORT_THRESHOLD);
    }
    ef_store_process_init();
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "eval") == 0) return ef_cmd_eval(argc - 2, argv + 2);
    /* further subcommands (one line each) */
    if (strcmp(cmd, "serve") == 0) return ef_cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "validate") == 0) return ef_cmd_validate(argc - 2, argv + 2);
    if (strcmp(cmd, "import") == 0) return ef_cmd_import(argc - 2, argv + 2);
    if (strcmp(cmd, "export") == 0) return ef_cmd_export(argc - 2, argv + 2);
    if (strcmp(cmd, "backup") == 0) return ef_cmd_backup(argc - 2, argv + 2);
    if (strcmp(cmd, "restore") == 0) return ef_cmd_restore(argc - 2, argv + 2);
    if (strcmp(cmd, "routes") == 0) return ef_cmd_routes(argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        puts("edgeflag " EF_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "edgeflag: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
