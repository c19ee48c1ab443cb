/*
 * dir.h - the read-only directory backend: serves the Flipt features files under a directory, as
 * Flipt's `local` storage does, and follows edits to them.
 *
 * Which files: those named by the `.flipt.yml` index at the root (`include`/`exclude` globs with
 * `*`, `**`, `?`, `[...]`, `{a,b}`), or by default every `**features.yml`, `**features.yaml`,
 * `**.features.yml`, `**.features.yaml`. All of them are parsed (ef_decl_parse_file), merged (a
 * namespace may be defined by one document only), the namespace `default` is added when no file
 * names it, and every namespace is compiled into a snapshot and published into an ef_registry.
 *
 * A reload is all or nothing: when any file is invalid the previous state stays published and the
 * status reports the error (file, line, column) until a later reload succeeds. The watcher
 * (inotify, recursive, new subdirectories included) reloads within about half a second of the last
 * change. Writes are not part of this backend: callers refuse them.
 */
#ifndef EF_STORE_DIR_H
#define EF_STORE_DIR_H

#include <stdbool.h>
#include <stdint.h>

#include "eval/registry.h"
#include "store/doc.h"
#include "store/store.h"

typedef struct ef_dir ef_dir;
typedef struct ef_dir_state ef_dir_state;

typedef struct ef_dir_status {
    uint64_t generation;   /* successful loads so far (1 after ef_dir_open) */
    uint64_t failures;     /* failed reloads so far */
    int64_t loaded_ns;     /* wall time of the last successful load */
    bool failing;          /* the last reload failed; the state is the last good one */
    ef_decl_error error;   /* the last failure (kept after a later success, for the record) */
    unsigned files;        /* features files in the current state */
    unsigned namespaces;   /* namespaces in the current state */
} ef_dir_status;

/* Called after every reload, successful or not, on the thread that reloaded. */
typedef void (*ef_dir_callback)(const ef_dir_status *status, void *ctx);

/* Loads the directory and publishes its namespaces into reg (which must outlive the ef_dir).
 * Returns 0, or -1 with *err naming the first problem (and nothing published). */
int ef_dir_open(const char *path, ef_registry *reg, ef_dir **out, ef_decl_error *err);
/* Re-reads everything now. Returns 0, or -1 if the files are invalid (previous state kept). */
int ef_dir_reload(ef_dir *d);
void ef_dir_set_callback(ef_dir *d, ef_dir_callback cb, void *ctx);
/* Starts the inotify watcher thread. Returns 0 or -errno. */
int ef_dir_start_watch(ef_dir *d);
void ef_dir_get_status(ef_dir *d, ef_dir_status *out);
/* Stops the watcher, removes the namespaces it published and frees everything. States still
 * acquired stay valid until released. */
void ef_dir_close(ef_dir *d);

/* The current documents, for listing flags and segments. Valid until ef_dir_release, even across
 * reloads; acquire and release are cheap (a mutex and a reference count). */
ef_dir_state *ef_dir_acquire(ef_dir *d);
void ef_dir_release(ef_dir_state *s);
const ef_doc *ef_dir_state_doc(const ef_dir_state *s);
/* NULL when the namespace does not exist. */
const ef_doc_namespace *ef_dir_state_namespace(const ef_dir_state *s, ef_bytes key);
uint64_t ef_dir_state_generation(const ef_dir_state *s);

/* The management API's reads through the store interface (dir_store.c): fills *out with a view
 * whose ns/flag/segment/rule/rollout get and list answer from the current state as Flipt's local
 * storage does. It owns nothing (ef_store_close is a no-op) and lives as long as d. Only those
 * ten operations are set: every other entry of its ops table is NULL, so a caller must refuse
 * writes itself, with ef_dir_store_refuse (Flipt's read-only error: 500, "modification is not
 * allowed in read-only mode"). Returns -1 from ef_dir_store_refuse. */
void ef_dir_store_view(ef_dir *d, ef_store *out);
int ef_dir_store_refuse(ef_store_err *err);

/* gobwas/glob-style match of a '/'-separated relative path (exposed for tests). */
bool ef_dir_glob_match(const char *pattern, const char *path);

#endif
