/*
 * bench_store.c - figures for the SQLite store: import time and compile time of N flags (default
 * 10,000) in one namespace, latency of single-flag updates (median, p99; each one a durable
 * transaction that also recompiles the namespace), and the memory of the compiled namespace
 * (ef_snapshot_memory and the RSS delta). Prints numbers; asserts nothing about time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "eval/registry.h"
#include "store/store.h"

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kb;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* A namespace document with n flags, each with 2 variants and a rule on one of 10 segments. */
static void build_doc(ef_arena *a, ef_doc *doc, size_t n)
{
    memset(doc, 0, sizeof(*doc));
    doc->nnamespaces = 1;
    doc->namespaces = ef_arena_calloc(a, sizeof(ef_doc_namespace));
    ef_doc_namespace *ns = doc->namespaces;
    ns->key = EF_BYTES_LIT("default");
    ns->nsegments = 10;
    ns->segments = ef_arena_calloc(a, 10 * sizeof(ef_doc_segment));
    for (size_t i = 0; i < 10; i++) {
        char k[32];
        int l = snprintf(k, sizeof(k), "seg%zu", i);
        ef_doc_segment *g = &ns->segments[i];
        g->key = g->name = (ef_bytes){ef_arena_memdup(a, k, (size_t)l), (size_t)l};
        g->nconstraints = 1;
        g->constraints = ef_arena_calloc(a, sizeof(ef_doc_constraint));
        g->constraints[0] = (ef_doc_constraint){.type = EF_DOC_CT_STRING,
                                                .property = EF_BYTES_LIT("plan"),
                                                .op = EF_BYTES_LIT("eq"), .value = g->key};
    }
    ns->nflags = n;
    ns->flags = ef_arena_calloc(a, n * sizeof(ef_doc_flag));
    for (size_t i = 0; i < n; i++) {
        char k[32];
        int l = snprintf(k, sizeof(k), "flag-%zu", i);
        ef_doc_flag *f = &ns->flags[i];
        f->key = f->name = (ef_bytes){ef_arena_memdup(a, k, (size_t)l), (size_t)l};
        f->enabled = true;
        f->nvariants = 2;
        f->variants = ef_arena_calloc(a, 2 * sizeof(ef_doc_variant));
        f->variants[0].key = EF_BYTES_LIT("on");
        f->variants[1].key = EF_BYTES_LIT("off");
        f->nrules = 1;
        f->rules = ef_arena_calloc(a, sizeof(ef_doc_rule));
        f->rules[0].nsegments = 1;
        f->rules[0].segment_keys = &ns->segments[i % 10].key;
        f->rules[0].ndistributions = 2;
        f->rules[0].distributions = ef_arena_calloc(a, 2 * sizeof(ef_doc_distribution));
        f->rules[0].distributions[0] = (ef_doc_distribution){.variant_key = EF_BYTES_LIT("on"),
                                                             .rollout = 50};
        f->rules[0].distributions[1] = (ef_doc_distribution){.variant_key = EF_BYTES_LIT("off"),
                                                             .rollout = 50};
    }
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)atol(argv[1]) : 10000;
    char dir[] = "/tmp/ef_bench_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char path[128];
    snprintf(path, sizeof(path), "%s/bench.db", dir);
    ef_store_err err;
    ef_sqlite_opts o = {0};
    ef_store *s = ef_sqlite_open(path, &o, &err);
    if (!s) {
        fprintf(stderr, "open: %s\n", err.message);
        return 1;
    }
    ef_arena a;
    ef_arena_init(&a, 1 << 20);
    ef_doc doc;
    build_doc(&a, &doc, n);
    int64_t t0 = ef_clock_mono_ns();
    ef_store_import_opts io = {0};
    if (ef_store_import(s, &doc, &io, &err)) {
        fprintf(stderr, "import: %s\n", err.message);
        return 1;
    }
    int64_t t1 = ef_clock_mono_ns();
    printf("import of %zu flags (one transaction): %.1f ms\n", n, (double)(t1 - t0) / 1e6);
    ef_store_close(s);

    /* compile: reopening with a registry loads and publishes every namespace */
    ef_registry *reg = ef_registry_new();
    long rss0 = rss_kb();
    o.registry = reg;
    t0 = ef_clock_mono_ns();
    s = ef_sqlite_open(path, &o, &err);
    t1 = ef_clock_mono_ns();
    if (!s) {
        fprintf(stderr, "open: %s\n", err.message);
        return 1;
    }
    long rss1 = rss_kb();
    ef_registry_read_lock(reg);
    const ef_snapshot *snap = ef_registry_get(reg, EF_BYTES_LIT("default"));
    size_t mem = snap ? ef_snapshot_memory(snap) : 0;
    size_t nf = snap ? ef_snapshot_flag_count(snap) : 0;
    ef_registry_read_unlock(reg);
    printf("load + compile + publish of %zu flags: %.1f ms\n", nf, (double)(t1 - t0) / 1e6);
    printf("compiled namespace: ef_snapshot_memory %.2f MiB, RSS delta %.2f MiB\n",
           (double)mem / 1048576.0, (double)(rss1 - rss0) / 1024.0);

    /* single-flag updates: durable commit + change log + recompile of the namespace */
    enum { UPDATES = 200 };
    int64_t lat[UPDATES];
    for (int i = 0; i < UPDATES; i++) {
        char k[32];
        snprintf(k, sizeof(k), "flag-%d", i % (int)n);
        ef_store_flag_in in = {.key = ef_bytes_of(k), .name = ef_bytes_of(k), .enabled = i % 2};
        ef_doc_flag f;
        ef_arena_reset(&a);
        int64_t s0 = ef_clock_mono_ns();
        if (ef_store_flag_update(s, EF_BYTES_LIT("default"), &in, &a, &f, &err)) {
            fprintf(stderr, "update: %s\n", err.message);
            return 1;
        }
        lat[i] = ef_clock_mono_ns() - s0;
    }
    qsort(lat, UPDATES, sizeof(lat[0]), cmp_i64);
    printf("single-flag update with recompile of %zu flags: median %.2f ms, p99 %.2f ms\n", n,
           (double)lat[UPDATES / 2] / 1e6, (double)lat[UPDATES * 99 / 100] / 1e6);
    ef_store_close(s);

    /* the same without a registry: the durable write alone */
    o.registry = NULL;
    s = ef_sqlite_open(path, &o, &err);
    for (int i = 0; s && i < UPDATES; i++) {
        char k[32];
        snprintf(k, sizeof(k), "flag-%d", i % (int)n);
        ef_store_flag_in in = {.key = ef_bytes_of(k), .name = ef_bytes_of(k), .enabled = i % 2};
        ef_doc_flag f;
        ef_arena_reset(&a);
        int64_t s0 = ef_clock_mono_ns();
        if (ef_store_flag_update(s, EF_BYTES_LIT("default"), &in, &a, &f, &err)) return 1;
        lat[i] = ef_clock_mono_ns() - s0;
    }
    qsort(lat, UPDATES, sizeof(lat[0]), cmp_i64);
    printf("single-flag update, write only (synchronous=FULL): median %.3f ms, p99 %.3f ms\n",
           (double)lat[UPDATES / 2] / 1e6, (double)lat[UPDATES * 99 / 100] / 1e6);
    ef_store_close(s);
    ef_registry_free(reg);
    ef_arena_free(&a);
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
