/*
 * bench_store.c - figures for the SQLite store, for each flag count given (default 10 and 10,000
 * flags in one namespace): import time, load + compile + publish time, one-flag update latency
 * acknowledged and published (median, p99; a durable transaction plus what it republishes), the
 * same update without a registry (the durable write alone), and the RSS after W writes (default
 * 1,000; --writes W) next to the compiled snapshot's size (ef_snapshot_memory). Each count has
 * a fresh database, all open at once, and their timed writes interleaved in rounds; --namespaces N imports N namespaces of that many flags (writes go to
 * "default"). --apply instead measures a replica's cost per entry (apply + publish of one-flag
 * updates, run_apply). Prints numbers; asserts nothing about time.
 */
#include <stdbool.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/hugepages.h"
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

/* CPU time of the process: next to the wall time, a figure that a busy machine disturbs less. */
static int64_t cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Minor page faults so far: a phase's count says how much of its time went to the kernel
 * handing out fresh memory (runs of the same phase differ by that as much as by CPU speed). */
static long minflt(void)
{
    struct rusage u;
    return getrusage(RUSAGE_SELF, &u) == 0 ? u.ru_minflt : 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* A namespace with n flags, each with 2 variants and a rule on one of 10 segments. */
static void build_ns(ef_arena *a, ef_doc_namespace *ns, ef_bytes key, size_t n)
{
    ns->key = key;
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

/* nns namespaces of n flags: "default", then ns1, ns2, ... */
static void build_doc(ef_arena *a, ef_doc *doc, size_t n, size_t nns)
{
    memset(doc, 0, sizeof(*doc));
    doc->nnamespaces = nns;
    doc->namespaces = ef_arena_calloc(a, nns * sizeof(ef_doc_namespace));
    for (size_t i = 0; i < nns; i++) {
        char k[32];
        int l = i ? snprintf(k, sizeof(k), "ns%zu", i) : snprintf(k, sizeof(k), "default");
        build_ns(a, &doc->namespaces[i], (ef_bytes){ef_arena_memdup(a, k, (size_t)l), (size_t)l}, n);
    }
}

static double ms(int64_t ns)
{
    return (double)ns / 1e6;
}

/* Opens the store at path, or says why not. */
static ef_store *open_db(const char *path, const ef_sqlite_opts *o)
{
    ef_store_err err;
    ef_store *s = ef_sqlite_open(path, o, &err);
    if (!s) fprintf(stderr, "open %s: %s\n", path, err.message);
    return s;
}

/* A fresh directory dir (a mkdtemp template) and, without a registry, the store dir/file there
 * (its path in path). */
static ef_store *fresh_db(char *dir, const char *file, char *path, size_t cap)
{
    if (!mkdtemp(dir)) return NULL;
    snprintf(path, cap, "%s/%s", dir, file);
    ef_sqlite_opts o = {0};
    return open_db(path, &o);
}

static int remove_dir(const char *dir)
{
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}

/* Write i of a run: flag (i * 7919 mod n) renamed to itself and enabled or disabled; *ns is the
 * time the store call took. */
static int update_one(ef_store *s, size_t n, int i, ef_arena *a, int64_t *ns, ef_store_err *err)
{
    char k[32];
    snprintf(k, sizeof(k), "flag-%zu", (size_t)i * 7919 % n);
    ef_store_flag_in in = {.key = ef_bytes_of(k), .name = ef_bytes_of(k), .enabled = i % 2};
    ef_doc_flag f;
    ef_arena_reset(a);
    int64_t t0 = ef_clock_mono_ns();
    int rc = ef_store_flag_update(s, EF_BYTES_LIT("default"), &in, a, &f, err);
    *ns = ef_clock_mono_ns() - t0;
    if (rc) fprintf(stderr, "update: %s\n", err->message);
    return rc;
}

/* The import into a new database at path, in a process of its own as `edgeflag import` runs:
 * the loading process below then starts from memory an import never touched, as a server does
 * (in one process the import's freed pages, given back to the kernel, were faulted in again by
 * the load, 4 KiB at a time). Its figures are its own (CPU, page faults). Returns 0 or 1. */
static int import_child(const char *path, size_t n, size_t nns)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        ef_malloc_thresholds(EF_MALLOC_IMPORT_THRESHOLD); /* as `edgeflag import` */
        ef_sqlite_opts o = {0};
        ef_store *s = open_db(path, &o);
        ef_arena a;
        ef_arena_init(&a, 1 << 20);
        ef_doc doc;
        build_doc(&a, &doc, n, nns);
        ef_store_err err;
        int64_t t0 = ef_clock_mono_ns(), c0 = cpu_ns();
        long f0 = minflt();
        ef_store_import_opts io = {0};
        if (!s || ef_store_import(s, &doc, &io, &err)) {
            if (s) fprintf(stderr, "import: %s\n", err.message);
            _exit(1);
        }
        int64_t t1 = ef_clock_mono_ns(), c1 = cpu_ns();
        if (nns > 1)
            printf("[%zu namespaces x %zu flags] import (one transaction, no registry): %.1f ms (CPU "
                   "%.1f ms, %ld page faults)\n", nns, n, ms(t1 - t0), ms(c1 - c0), minflt() - f0);
        else
            printf("[%zu flags] import (one transaction, no registry): %.1f ms (CPU %.1f ms, %ld page "
                   "faults)\n", n, ms(t1 - t0), ms(c1 - c0), minflt() - f0);
        ef_store_close(s);
        fflush(stdout);
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) return 1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

/* Flag counts one run takes (more on the command line are ignored). */
#define MAX_COUNTS 8

/* One flag count's database, open with its registry from setup to finish. */
typedef struct bench_db {
    size_t n, nns;
    char dir[32], path[128];
    ef_registry *reg;
    ef_store *s;
    ef_arena a;
    long rss0;          /* before its load */
    int64_t *lat;       /* one per timed write */
    int nlat;
} bench_db;

/* A fresh database, the import (its own process), then open (full load), with their figures.
 * Returns 0 or 1. */
static int db_setup(bench_db *db, size_t n, size_t nns, int writes)
{
    memset(db, 0, sizeof(*db));
    db->n = n;
    db->nns = nns;
    ef_store_err err;
    ef_sqlite_opts o = {0};
    snprintf(db->dir, sizeof(db->dir), "/tmp/ef_bench_XXXXXX");
    if (!mkdtemp(db->dir)) return 1;
    snprintf(db->path, sizeof(db->path), "%s/bench.db", db->dir);
    if (import_child(db->path, n, nns)) return 1;
    ef_arena_init(&db->a, 1 << 20);
    if (!(db->lat = calloc((size_t)writes, sizeof(*db->lat)))) return 1;

    /* opening with a registry loads, compiles and publishes every namespace */
    db->reg = ef_registry_new();
    db->rss0 = rss_kb();
    o.registry = db->reg;
    int64_t t0 = ef_clock_mono_ns(), c0 = cpu_ns(), t1, c1;
    long f0 = minflt();
    db->s = ef_sqlite_open(db->path, &o, &err);
    t1 = ef_clock_mono_ns();
    c1 = cpu_ns();
    long faults = minflt() - f0;
    if (!db->s) {
        fprintf(stderr, "open: %s\n", err.message);
        return 1;
    }
    long rss1 = rss_kb();
    ef_registry_read_lock(db->reg);
    const ef_snapshot *snap = ef_registry_get(db->reg, EF_BYTES_LIT("default"));
    size_t mem = snap ? ef_snapshot_memory(snap) : 0;
    size_t nf = snap ? ef_snapshot_flag_count(snap) : 0;
    ef_registry_read_unlock(db->reg);
    if (nns > 1)
        printf("[%zu namespaces x %zu flags] load + compile + publish: %.1f ms (CPU %.1f ms, %ld page "
               "faults; %u namespaces published)\n", nns, nf, ms(t1 - t0), ms(c1 - c0), faults,
               ef_registry_count(db->reg));
    else
        printf("[%zu flags] load + compile + publish: %.1f ms (CPU %.1f ms, %ld page faults)\n", nf,
               ms(t1 - t0), ms(c1 - c0), faults);
    printf("[%zu flags] compiled snapshot: ef_snapshot_memory %.2f MiB, RSS delta %.2f MiB\n", n,
           (double)mem / 1048576.0, (double)(rss1 - db->rss0) / 1024.0);
    return 0;
}

/* count more one-flag updates, acknowledged (durable commit) and published, timed into db->lat. */
static int db_writes(bench_db *db, int count)
{
    ef_store_err err;
    for (int i = 0; i < count; i++, db->nlat++)
        if (update_one(db->s, db->n, db->nlat, &db->a, &db->lat[db->nlat], &err)) return 1;
    return 0;
}

/* The p50 of the timed writes from..to-1 (sorts that slice). */
static double p50_of(int64_t *lat, int from, int to)
{
    qsort(lat + from, (size_t)(to - from), sizeof(lat[0]), cmp_i64);
    return ms(lat[from + (to - from) / 2]);
}

/* The update figures, RSS after the writes (with_rss: only for the database set up last, whose
 * baseline came after the others' loads; the others' writes in between add their few pages), the
 * write-only figure (the durable write alone, no registry), then the database is removed.
 * Returns 0 or 1. */
static int db_finish(bench_db *db, bool with_rss, double *upd_p50)
{
    ef_store_err err;
    int writes = db->nlat;
    long rss2 = rss_kb();
    ef_registry_read_lock(db->reg);
    const ef_snapshot *snap = ef_registry_get(db->reg, EF_BYTES_LIT("default"));
    size_t mem = snap ? ef_snapshot_memory(snap) : 0;
    ef_registry_read_unlock(db->reg);
    *upd_p50 = p50_of(db->lat, 0, writes);
    printf("[%zu flags] one-flag update, acknowledged + published (%d writes): p50 %.3f ms, "
           "p99 %.3f ms\n",
           db->n, writes, *upd_p50, ms(db->lat[(size_t)writes * 99 / 100]));
    if (with_rss)
        printf("[%zu flags] after %d writes: RSS %.2f MiB (delta since before the load %.2f MiB), "
               "compiled snapshot %.2f MiB, ratio RSS delta / snapshot %.2f\n",
               db->n, writes, (double)rss2 / 1024.0, (double)(rss2 - db->rss0) / 1024.0,
               (double)mem / 1048576.0, mem ? (double)(rss2 - db->rss0) * 1024.0 / (double)mem : 0.0);
    ef_store_close(db->s);

    ef_sqlite_opts o = {0};
    ef_store *s = ef_sqlite_open(db->path, &o, &err);
    int wo = writes < 200 ? writes : 200;
    for (int i = 0; s && i < wo; i++)
        if (update_one(s, db->n, i, &db->a, &db->lat[i], &err)) return 1;
    qsort(db->lat, (size_t)wo, sizeof(db->lat[0]), cmp_i64);
    printf("[%zu flags] one-flag update, write only (synchronous=FULL): p50 %.3f ms, p99 %.3f ms\n",
           db->n, ms(db->lat[wo / 2]), ms(db->lat[(size_t)wo * 99 / 100]));
    if (s) ef_store_close(s);
    free(db->lat);
    ef_registry_free(db->reg);
    ef_arena_free(&db->a);
    return remove_dir(db->dir);
}

/* The entry of the write just made (ef_store_changes callback): copied into ctx's buffer. */
static int last_entry(void *ctx, const ef_store_change *c)
{
    ef_buf *b = ctx;
    ef_buf_clear(b);
    ef_buf_append(b, c->entry.p, c->entry.n);
    return 0;
}

/* A replica's cost per entry: a store opened as a follower (registry, batched durability) loads a
 * dump of the primary's n flags, then applies the entries of W one-flag updates one at a time, as
 * the follower thread does: parse, rows, log, recompile the touched flag, commit, publish. */
static int run_apply(size_t n, int writes)
{
    char dir[] = "/tmp/ef_bench_XXXXXX", pp[128], rp[128];
    ef_store_err err;
    ef_store *p = fresh_db(dir, "p.db", pp, sizeof(pp));
    if (!p) return 1;
    snprintf(rp, sizeof(rp), "%s/r.db", dir);
    ef_arena a;
    ef_arena_init(&a, 1 << 20);
    ef_doc doc;
    build_doc(&a, &doc, n, 1);
    ef_store_import_opts io = {0};
    ef_buf dump, entry;
    ef_buf_init(&dump);
    ef_buf_init(&entry);
    uint64_t at;
    if (ef_store_import(p, &doc, &io, &err) || ef_store_dump(p, &dump, &at, &err)) {
        fprintf(stderr, "import/dump: %s\n", err.message);
        return 1;
    }
    ef_registry *reg = ef_registry_new();
    ef_sqlite_opts ro = {.registry = reg, .sync_ms = 100, .follower = true}; /* as serve --upstream */
    ef_store *r = ef_sqlite_open(rp, &ro, &err);
    if (!r || ef_store_load_dump(r, dump.data, dump.len, &err)) {
        fprintf(stderr, "replica: %s\n", err.message);
        return 1;
    }
    int64_t *lat = calloc((size_t)writes, sizeof(*lat));
    if (!lat) return 1;
    int64_t cpu = 0;
    for (int i = 0; i < writes; i++) {
        int64_t took;
        if (update_one(p, n, i, &a, &took, &err)) return 1;
        if (ef_store_changes(p, at + (uint64_t)i, 1, last_entry, &entry, &err)) {
            fprintf(stderr, "changes: %s\n", err.message);
            return 1;
        }
        int64_t s0 = ef_clock_mono_ns(), c0 = cpu_ns();
        if (ef_store_apply_changes(r, entry.data, entry.len, &err)) {
            fprintf(stderr, "apply: %s\n", err.message);
            return 1;
        }
        lat[i] = ef_clock_mono_ns() - s0;
        cpu += cpu_ns() - c0;
    }
    qsort(lat, (size_t)writes, sizeof(lat[0]), cmp_i64);
    printf("[%zu flags] replica apply + publish of a one-flag update (%d entries): p50 %.3f ms, "
           "p99 %.3f ms (CPU %.3f ms per entry)\n",
           n, writes, ms(lat[writes / 2]), ms(lat[(size_t)writes * 99 / 100]),
           ms(cpu) / writes);
    free(lat);
    ef_store_close(r);
    ef_store_close(p);
    ef_registry_free(reg);
    ef_buf_free(&dump);
    ef_buf_free(&entry);
    ef_arena_free(&a);
    return remove_dir(dir);
}

/* What a page fault costs on this machine right now, so every figure below can be read against
 * it: 16 MiB of fresh anonymous memory touched a page at a time, in 4 KiB pages and advised for
 * huge pages (on a VM a fault can cost 10-50 times what it does on bare metal). */
static void print_fault_cost(void)
{
    size_t len = 16u << 20;
    double us[2] = {0, 0};
    for (int huge = 0; huge < 2; huge++) {
        char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return;
        if (huge) (void)madvise(m, len, MADV_HUGEPAGE);
        int64_t t0 = ef_clock_mono_ns();
        for (size_t i = 0; i < len; i += 4096) m[i] = 1;
        us[huge] = (double)(ef_clock_mono_ns() - t0) / 1e3 / (double)(len / 4096);
        munmap(m, len);
    }
    printf("page faults here: %.2f us per 4 KiB page; advised for huge pages %.2f us per 4 KiB\n",
           us[0], us[1]);
}

int main(int argc, char **argv)
{
    ef_hugepages_reexec(argv); /* as `edgeflag serve` and `edgeflag import` do */
    ef_malloc_thresholds(EF_MALLOC_SERVE_THRESHOLD); /* the loading process: as serve */
    ef_store_process_init();   /* as the edgeflag command does */
    printf("malloc: transparent huge pages %s (EDGEFLAG_MALLOC_HUGEPAGES=0 runs without); imports"
           " in a process of their own, as `edgeflag import`\n",
           ef_hugepages_on() ? "asked for" : "not asked for");
    print_fault_cost();
    int writes = 1000;
    size_t nns = 1;
    bool apply = false;
    size_t counts[MAX_COUNTS];
    int nc = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--writes") == 0 && i + 1 < argc)
            writes = atoi(argv[++i]);
        else if (strcmp(argv[i], "--apply") == 0)
            apply = true;
        else if (strcmp(argv[i], "--namespaces") == 0 && i + 1 < argc)
            nns = (size_t)atol(argv[++i]);
        else if (nc < MAX_COUNTS)
            counts[nc++] = (size_t)atol(argv[i]);
    }
    if (writes < 1) writes = 1;
    if (nc == 0) {
        counts[nc++] = 10;
        counts[nc++] = 10000;
    }
    if (apply) {
        for (int i = 0; i < nc; i++)
            if (counts[i] == 0 || run_apply(counts[i], writes)) return 1;
        return 0;
    }
    /* Every count's database is set up first; then their writes go in rounds, each round
     * ROUND_WRITES writes to each database in turn, so a slow spell of the disk (fsync here varies
     * 2-3x from one minute to the next) falls on all of them alike, and the ratio compares like
     * with like. In one run after another, the 10-flag and 10,000-flag figures of one make bench
     * differed 2.59x where reruns gave 1.02-1.12x. */
    bench_db dbs[MAX_COUNTS];
    for (int i = 0; i < nc; i++)
        if (counts[i] == 0 || nns == 0 || db_setup(&dbs[i], counts[i], nns, writes)) return 1;
    enum { ROUND_WRITES = 50 };
    int rounds = 0;
    double rmin = 1e9, rmax = 0;
    for (int done = 0; done < writes; done += ROUND_WRITES, rounds++) {
        int k = writes - done < ROUND_WRITES ? writes - done : ROUND_WRITES;
        double first_p50 = 0;
        for (int i = 0; i < nc; i++) {
            if (db_writes(&dbs[i], k)) return 1;
            double p = p50_of(dbs[i].lat, done, done + k);
            if (i == 0) first_p50 = p;
            if (i == nc - 1 && nc > 1 && first_p50 > 0) {
                double r = p / first_p50;
                if (r < rmin) rmin = r;
                if (r > rmax) rmax = r;
            }
        }
    }
    double first = 0, p50;
    for (int i = 0; i < nc; i++) {
        if (db_finish(&dbs[i], i == nc - 1, &p50)) return 1;
        if (i == 0)
            first = p50;
        else if (first > 0)
            printf("ratio of one-flag update p50, %zu flags / %zu flags: %.2fx (writes interleaved in "
                   "%d rounds of %d; per round, %zu / %zu flags: %.2fx to %.2fx)\n",
                   counts[i], counts[0], p50 / first, rounds, (int)ROUND_WRITES, counts[nc - 1],
                   counts[0], rmin, rmax);
    }
    return 0;
}
