/*
 * client_int.h - the inside of an ef_client, shared by client.c (the public API, evaluation,
 * status) and replica.c (the background thread that follows the node).
 *
 * Ownership: the client owns every field. Evaluation reads only `reg` and `ns` (lock-free); the
 * status fields are guarded by `mu`; the transfer state lives in replica.c, on the background
 * thread alone. Nothing here is global, and nothing here may leak into the public header: the
 * layout can change without breaking applications.
 */
#ifndef EF_CLIENT_CLIENT_INT_H
#define EF_CLIENT_CLIENT_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/bytes.h"
#include "base/tls_client.h"
#include "client/cache.h"
#include "edgeflag.h"
#include "eval/registry.h"

typedef struct ef_replica ef_replica;

struct ef_client {
    /* immutable after open */
    ef_registry *reg;  /* holds the one namespace's current snapshot; evaluation reads it */
    ef_bytes ns;       /* points into ns_buf */
    const ef_ns_handle *nsh; /* ns's handle in reg once it has one (atomic: any evaluating thread
                              * may set it, always to the same value) */
    char *ns_buf;
    char *url;         /* without a trailing slash */
    char *token;
    char *cache_path;
    ef_change_cb on_change;
    void *userdata;
    unsigned timeout_ms;
    unsigned poll_ms;
    bool disable_stream;
    ef_tls_client tls;  /* points into tls_files */
    char *tls_files[3]; /* CA, client certificate, key (owned copies) */

    /* status, under mu; cv is broadcast on every new state (ef_client_wait) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t version;
    char etag[EF_CACHE_MAX_ETAG + 1];
    ef_state_source source;
    int64_t confirmed_mono_ns; /* source NODE: when the node last confirmed the state */
    int64_t saved_wall_ns;     /* source CACHE: when the cache file was written */
    size_t flag_count;
    bool connected;
    bool streaming;
    int last_error;
    char error_text[600]; /* last_error in words, naming the node ("" when none) */
    int cache_status;
    uint64_t updates;

    /* the background thread */
    ef_replica *replica;
    pthread_t thread;
    bool thread_started;
};

/* Compiles a snapshot document for the client's namespace and publishes it for evaluation, then
 * updates the status (source, version, etag, times). Returns EF_OK, EF_EDOCUMENT (not a snapshot
 * of this namespace) or EF_ENOMEM; on error the current state is kept. */
int ef_client_apply(ef_client *c, const char *doc, size_t len, uint64_t version, const char *etag,
                    ef_state_source source, int64_t saved_wall_ns);

/* replica.c: creates the transfer state (curl handles), runs the loop, wakes it for close. */
int ef_replica_new(ef_client *c, ef_replica **out);
void *ef_replica_main(void *client);
void ef_replica_stop(ef_replica *r); /* thread-safe: asks the loop to return promptly */
void ef_replica_free(ef_replica *r);

#endif
