/*
 * crash_store.c - kill -9 test of the SQLite store (DESIGN.md principle 3).
 *
 * The driver forks a writer child that creates flags as fast as it can and reports each
 * acknowledged write (the call returned 0, i.e. after COMMIT) on a pipe; the driver kills it with
 * SIGKILL after a random delay, at least 50 times. After every kill it reopens the database and
 * checks: every acknowledged write is present, PRAGMA integrity_check says ok, seq and the
 * namespace version never went back, and the change log has no gap (seqs 1..seq, or first..seq
 * after trimming). Every third round the child first imports 1,500 flags in one transaction, which
 * runs under a rollback journal (sqlite_doc.c): they must then be all there or none, all if the
 * import was acknowledged, and the file in WAL mode again once reopened. Exit status 0 on success;
 * any violation prints what and exits 1.
 *
 * Usage: crash_store [ROUNDS] (default 60). It must never skip a check to stay fast.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/doc.h"
#include "store/store.h"

/* Flags in an import round's one import. */
#define IMPORT_FLAGS 1500

/* Every third round imports first: one transaction of IMPORT_FLAGS flags, which runs under a
 * rollback journal rather than the WAL (sqlite_doc.c), so kills land in the middle of one. */
static bool import_round(int round)
{
    return round % 3 == 0;
}

/* The import of an import round, acknowledged as "=import" once it returned 0. */
static void child_import(ef_store *s, int round, int fd)
{
    ef_buf b;
    ef_buf_init(&b);
    ef_buf_puts(&b, "namespace: default\nflags:\n");
    for (int i = 0; i < IMPORT_FLAGS; i++)
        ef_buf_printf(&b, "- key: r%d-i%d\n  name: imported\n  type: BOOLEAN_FLAG_TYPE\n", round, i);
    ef_arena a;
    ef_arena_init(&a, 1 << 16);
    ef_doc doc;
    ef_decl_error derr;
    ef_store_err err;
    if (!ef_buf_ok(&b) || ef_decl_parse("import.yml", b.data, b.len, &a, &doc, &derr) != 0) {
        dprintf(fd, "!import document: %s\n", derr.message);
        _exit(1);
    }
    if (ef_store_import(s, &doc, &(ef_store_import_opts){0}, &err) != 0) {
        dprintf(fd, "!import: %s\n", err.message);
        _exit(1);
    }
    dprintf(fd, "=import\n");
    ef_arena_free(&a);
    ef_buf_free(&b);
}

static void child(const char *path, int round, int fd)
{
    ef_store_err err;
    ef_sqlite_opts o = {0};
    ef_store *s = ef_sqlite_open(path, &o, &err);
    if (!s) {
        dprintf(fd, "!open: %s\n", err.message);
        _exit(1);
    }
    if (import_round(round)) child_import(s, round, fd);
    ef_arena a;
    ef_arena_init(&a, 4096);
    for (int i = 0;; i++) {
        char key[64];
        snprintf(key, sizeof(key), "r%d-f%d", round, i);
        ef_store_flag_in in = {.key = ef_bytes_of(key), .name = ef_bytes_of(key),
                               .type = EF_DOC_BOOLEAN_FLAG};
        ef_doc_flag f;
        if (ef_store_flag_create(s, (ef_bytes){"", 0}, &in, &a, &f, &err) != 0) {
            dprintf(fd, "!write: %s\n", err.message);
            _exit(1);
        }
        /* acknowledged: only now may anyone be told */
        dprintf(fd, "%s\n", key);
        ef_arena_reset(&a);
    }
}

typedef struct check_log {
    uint64_t expect;
    int bad;
} check_log;

static int log_fn(void *ctx, const ef_store_change *c)
{
    check_log *k = ctx;
    if (c->seq != k->expect) {
        fprintf(stderr, "change log gap: got seq %llu, expected %llu\n",
                (unsigned long long)c->seq, (unsigned long long)k->expect);
        k->bad = 1;
        return 1;
    }
    k->expect++;
    return 0;
}

/* An import round's flags are all there or none is, and all when the import was acknowledged.
 * Says what is wrong; returns 0 or 1. */
static int import_whole(ef_store *s, int round, bool acked, ef_arena *a, int *whole, int *none)
{
    int present = 0;
    for (int i = 0; i < IMPORT_FLAGS; i++) {
        char key[64];
        snprintf(key, sizeof(key), "r%d-i%d", round, i);
        ef_doc_flag f;
        ef_store_err err;
        if (ef_store_flag_get(s, (ef_bytes){"", 0}, ef_bytes_of(key), a, &f, &err) == 0) present++;
        ef_arena_reset(a);
    }
    if (present == IMPORT_FLAGS || (present == 0 && !acked)) {
        ++*(present ? whole : none);
        return 0;
    }
    fprintf(stderr, "round %d: %d of the import's %d flags are there (import %s)\n", round, present,
            IMPORT_FLAGS, acked ? "acknowledged" : "not acknowledged");
    return 1;
}

/* The file's journal mode as a connection of its own reads it ("" when it cannot). */
static void journal_mode(const char *path, char *out, size_t cap)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    out[0] = '\0';
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Read-write, as the store's own reopen is: a writer killed in the middle of a transaction leaves
 * a WAL that the next connection must recover, and a read-only one cannot (it fails with
 * SQLITE_READONLY_RECOVERY or CANTOPEN, which is not corruption). Says what failed. */
static int integrity_ok(const char *path)
{
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        fprintf(stderr, "integrity check: cannot open %s: %s\n", path, db ? sqlite3_errmsg(db) : "no memory");
        sqlite3_close(db);
        return 0;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW &&
             strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
    if (!ok)
        fprintf(stderr, "integrity check: %s\n",
                st && sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ok;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 60;
    char dir[] = "/tmp/ef_crash_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[128];
    snprintf(path, sizeof(path), "%s/crash.db", dir);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    uint64_t last_seq = 0, last_version = 0, total_acked = 0;
    int imports_whole = 0, imports_none = 0;
    int failed = 0;
    for (int round = 0; round < rounds && !failed; round++) {
        int p[2];
        if (pipe(p) != 0) return 1;
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            child(path, round, p[1]);
        }
        close(p[1]);
        /* kill somewhere between "still opening" and "many commits in" */
        usleep((useconds_t)(rand() % (import_round(round) ? 150000 : 40000) + 1000));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        /* read every acknowledgement the child managed to send */
        size_t cap = 1 << 16, len = 0;
        char *buf = malloc(cap);
        ssize_t r;
        while ((r = read(p[0], buf + len, cap - len - 1)) > 0) {
            len += (size_t)r;
            if (len + 1 == cap) buf = realloc(buf, cap *= 2);
        }
        close(p[0]);
        buf[len] = '\0';

        /* killed before the file existed: nothing can have been acknowledged yet */
        bool never_created = access(path, F_OK) != 0 && len == 0;
        if (!never_created && !integrity_ok(path)) {
            fprintf(stderr, "round %d: integrity_check failed\n", round);
            failed = 1;
        }
        ef_store_err err;
        ef_sqlite_opts o = {0};
        ef_store *s = ef_sqlite_open(path, &o, &err);
        if (!s) {
            fprintf(stderr, "round %d: reopen: %s\n", round, err.message);
            free(buf);
            failed = 1;
            break;
        }
        ef_arena a;
        ef_arena_init(&a, 4096);
        size_t acked = 0;
        if (import_round(round) && import_whole(s, round, strncmp(buf, "=import\n", 8) == 0, &a,
                                                &imports_whole, &imports_none))
            failed = 1;
        for (char *line = buf, *nl; !failed && (nl = strchr(line, '\n')); line = nl + 1) {
            *nl = '\0';
            if (line[0] == '=') { /* the import, checked above; one write of the log */
                acked++;
                continue;
            }
            if (line[0] == '!') {
                fprintf(stderr, "round %d: child: %s\n", round, line + 1);
                failed = 1;
                break;
            }
            ef_doc_flag f;
            if (ef_store_flag_get(s, (ef_bytes){"", 0}, ef_bytes_of(line), &a, &f, &err) != 0) {
                fprintf(stderr, "round %d: acknowledged flag %s lost: %s\n", round, line,
                        err.message);
                failed = 1;
            }
            acked++;
            ef_arena_reset(&a);
        }
        total_acked += acked;
        uint64_t seq, first, version;
        if (ef_store_seq(s, &seq, &first, &err) ||
            ef_store_ns_version(s, (ef_bytes){"default", 7}, &version, &err)) {
            fprintf(stderr, "round %d: %s\n", round, err.message);
            failed = 1;
        } else if (seq < last_seq || version < last_version || seq < total_acked) {
            fprintf(stderr, "round %d: went back: seq %llu (was %llu), version %llu (was %llu)\n",
                    round, (unsigned long long)seq, (unsigned long long)last_seq,
                    (unsigned long long)version, (unsigned long long)last_version);
            failed = 1;
        } else {
            check_log k = {first, 0};
            if (ef_store_changes(s, first - 1, 0, log_fn, &k, &err) && !k.bad) {
                fprintf(stderr, "round %d: change log: %s\n", round, err.message);
                failed = 1;
            }
            if (k.bad || k.expect != seq + 1) {
                fprintf(stderr, "round %d: change log ends at %llu, seq is %llu\n", round,
                        (unsigned long long)k.expect - 1, (unsigned long long)seq);
                failed = 1;
            }
        }
        last_seq = seq;
        last_version = version;
        ef_arena_free(&a);
        ef_store_close(s);
        free(buf);
        /* the store's open returns a file an import left in rollback-journal mode to WAL */
        char mode[16];
        journal_mode(path, mode, sizeof(mode));
        if (!failed && strcmp(mode, "wal") != 0) {
            fprintf(stderr, "round %d: journal mode after reopen is '%s', not wal\n", round, mode);
            failed = 1;
        }
    }
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", dir);
    if (!failed)
        printf("crash_store: %d kills, %llu acknowledged writes, all present; log contiguous to "
               "seq %llu; imports killed: %d left whole, %d left nothing\n",
               rounds, (unsigned long long)total_acked, (unsigned long long)last_seq,
               imports_whole, imports_none);
    return failed;
}
