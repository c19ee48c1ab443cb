/*
 * edgeflag.h - libedgeflag: evaluate edgeflag (and Flipt) feature flags inside your process.
 *
 * A client holds a replica of one namespace of an edgeflag node: it bootstraps from the node's
 * snapshot endpoint, then follows changes (a push stream, else polling with ETags), and keeps the
 * last state in an optional cache file so a process that starts while the network is down can
 * evaluate at once. Answers come from the same engine as the server's, so they are equal.
 *
 * This is the only public header. Everything is prefixed ef_; types are opaque unless documented;
 * every fallible call returns an error code (0 = EF_OK, negative = error) that ef_strerror turns
 * into text. There is no global state: any number of clients may live in one process. The library
 * must never block an evaluating thread on the network: evaluation takes no lock and allocates
 * nothing (the first evaluation on a new thread registers that thread with the RCU runtime once);
 * it reads the caller's strings and pairs in place, so they must stay unchanged until it returns.
 *
 * Threading: every function may be called from any thread, except that a result must be released
 * on the thread that produced it, and ef_client_close must not race with other calls on the same
 * client. The change callback runs on the client's own background thread.
 *
 * Build: pkg-config --cflags --libs edgeflag (see docs/client.md).
 */
#ifndef EDGEFLAG_H
#define EDGEFLAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define EF_EXTERN __attribute__((visibility("default")))
#else
#define EF_EXTERN
#endif

/* ---- errors ------------------------------------------------------------------------------------ */

typedef enum ef_error {
    EF_OK = 0,
    EF_EINVAL = -1,         /* a required argument is missing or malformed */
    EF_ENOMEM = -2,         /* out of memory */
    EF_ENOTFOUND = -3,      /* no flag with that key in the namespace */
    EF_EWRONGTYPE = -4,     /* variant evaluation of a boolean flag, or the other way round */
    EF_ENOSTATE = -5,       /* no state yet: neither the node nor a valid cache file answered */
    EF_ECONNECT = -6,       /* the node could not be reached (connection refused, DNS, timeout) */
    EF_EHTTP = -7,          /* the node answered with an unexpected HTTP status */
    EF_EAUTH = -8,          /* the node refused the token (401 or 403) */
    EF_EDOCUMENT = -9,      /* the node's snapshot document could not be parsed or compiled */
    EF_ECACHE_MISSING = -10,  /* no cache file at the configured path */
    EF_ECACHE_CORRUPT = -11,  /* cache file truncated, bad magic, or checksum mismatch: ignored */
    EF_ECACHE_VERSION = -12,  /* cache file written by an unknown format version: ignored */
    EF_ECACHE_MISMATCH = -13, /* cache file holds another namespace: ignored */
    EF_EIO = -14,           /* a file could not be read or written */
    EF_ETIMEDOUT = -15,     /* ef_client_wait gave up */
    EF_ETHREAD = -16,       /* the background thread could not be started */
    EF_EPROTOCOL = -17,     /* the node's change stream broke the protocol (an event past its limit,
                               or bytes that end no line for 15 s) */
    EF_ETLS = -18,          /* TLS with the node failed: its certificate was refused (unknown CA, wrong
                               host name, expired) or it refused ours; ef_client_error_text says which */
    EF_EBEHIND = -19,       /* the node answered a state older than the one held, which is kept (a
                               node catching up); taken after three poll intervals of such answers */
} ef_error;

/* A static, human-readable description of an error code (never NULL). */
EF_EXTERN const char *ef_strerror(int err);

/* The library's version, "MAJOR.MINOR.PATCH" (static, never NULL): the same number as the edgeflag
 * server built from the same tree (`edgeflag --version`) and as pkg-config's `--modversion`. The
 * shared object's SONAME is libedgeflag.so.MAJOR. */
EF_EXTERN const char *ef_version(void);

/* ---- opening a client ---------------------------------------------------------------------------- */

typedef struct ef_client ef_client;

/* Runs on the client's background thread after a new state from the node became visible to
 * evaluation (not for the state read from the cache file during ef_client_open). Keep it short;
 * it must not call ef_client_close. version is the node's state version (X-Edgeflag-Version). */
typedef void (*ef_change_cb)(ef_client *client, uint64_t version, void *userdata);

typedef struct ef_client_options {
    const char *url;            /* the node, e.g. "http://127.0.0.1:8080" (required) */
    const char *namespace_key;  /* NULL or "" means "default" */
    const char *token;          /* bearer token, or NULL */
    const char *cache_path;     /* file to persist the last state to, or NULL for none */
    ef_change_cb on_change;     /* NULL for none */
    void *userdata;             /* handed to on_change */
    unsigned timeout_ms;        /* per HTTP request (connect included); 0 means 5000 */
    unsigned poll_interval_ms;  /* polling period when no stream is available; 0 means 10000 */
    bool disable_stream;        /* poll only, never open the push stream */
    /* https:// nodes. The node's certificate and host name are always verified, against the
     * system's CAs or ca_file; a refused node serves nothing (EF_ETLS in the status). */
    const char *ca_file;        /* PEM CA certificates the node's certificate must lead to, or NULL */
    const char *cert_file;      /* PEM client certificate presented to the node (with key_file), or NULL */
    const char *key_file;       /* its unencrypted PEM private key */
    bool insecure;              /* accept any certificate and host name: tests only, never production */
} ef_client_options;

/* Opens a client: reads the cache file if one is configured (a valid one makes the client ready
 * at once), then starts the background thread that fetches from the node. Returns EF_OK and sets
 * *out, or an error (EF_EINVAL, EF_ENOMEM, EF_ETHREAD; EF_EIO when ca_file, cert_file or key_file
 * cannot be read; EF_EINVAL for a cert_file without key_file or the other way round). A missing or unreachable node is not an
 * error here: ef_client_status tells. */
EF_EXTERN int ef_client_open(const ef_client_options *opts, ef_client **out);

/* Waits up to timeout_ms for the client to have a state at least as new as min_version (0: any
 * state). Returns EF_OK or EF_ETIMEDOUT. */
EF_EXTERN int ef_client_wait(ef_client *c, uint64_t min_version, unsigned timeout_ms);

/* Stops the background thread (promptly, even mid-request) and frees everything. No result of
 * this client may be unreleased, and no other call on it may be running or follow. NULL is fine. */
EF_EXTERN void ef_client_close(ef_client *c);

/* ---- evaluation ---------------------------------------------------------------------------------- */

/* One context entry. Lengths are explicit (values may contain NUL); ef_pair_of fills them from
 * C strings. */
typedef struct ef_pair {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
} ef_pair;

typedef enum ef_result_reason {
    EF_RESULT_UNKNOWN = 0,
    EF_RESULT_FLAG_DISABLED = 1,
    EF_RESULT_MATCH = 2,
    EF_RESULT_DEFAULT = 3,
} ef_result_reason;

/* An evaluation's answer. Strings point into the client's current state and stay valid until
 * ef_result_release, which must be called on the same thread once the result is no longer needed
 * (it ends the read section that keeps the state alive; hold it briefly). Strings are not
 * NUL-terminated in general; use the lengths. */
typedef struct ef_result {
    bool match;                /* variant flags: a rule matched */
    bool enabled;              /* boolean flags: the flag's value */
    ef_result_reason reason;
    const char *variant_key;   /* variant flags; empty when no variant */
    size_t variant_key_len;
    const char *attachment;    /* variant flags; the variant's JSON attachment, empty when none */
    size_t attachment_len;
    size_t segment_count;      /* segments that matched; keys via ef_result_segment */
    /* private: the client's read section and the matched segments */
    void *priv_[3];
    uint64_t priv_bits_[4];
} ef_result;

/* Evaluates a variant flag for an entity and a context (ctx may be NULL when ctx_len is 0).
 * EF_OK fills *out; then ef_result_release(out) is due. Any other code leaves nothing to release
 * (EF_ENOTFOUND, EF_EWRONGTYPE, EF_ENOSTATE, EF_EINVAL; EF_ENOMEM for over 2^32 pairs). Takes no
 * lock and allocates nothing (see above). */
EF_EXTERN int ef_client_variant(ef_client *c, const char *flag_key, const char *entity_id,
                                const ef_pair *ctx, size_t ctx_len, ef_result *out);
/* The same for a boolean flag: out->enabled is the answer. */
EF_EXTERN int ef_client_boolean(ef_client *c, const char *flag_key, const char *entity_id,
                                const ef_pair *ctx, size_t ctx_len, ef_result *out);
/* The key of the i-th matched segment (0 <= i < segment_count); *len receives its length. */
EF_EXTERN const char *ef_result_segment(const ef_result *r, size_t i, size_t *len);
/* Ends the result's lifetime. Safe to call twice, and on a zeroed result. */
EF_EXTERN void ef_result_release(ef_result *r);
/* "MATCH_EVALUATION_REASON", ... as Flipt spells reasons. */
EF_EXTERN const char *ef_result_reason_name(ef_result_reason reason);

static inline ef_pair ef_pair_of(const char *key, const char *value)
{
    size_t kn = 0, vn = 0;
    while (key[kn]) kn++;
    while (value[vn]) vn++;
    ef_pair p = {key, kn, value, vn};
    return p;
}

/* ---- status ---------------------------------------------------------------------------------- */

typedef enum ef_state_source {
    EF_SOURCE_NONE = 0,  /* nothing to evaluate yet */
    EF_SOURCE_CACHE = 1, /* the state came from the cache file and was not confirmed by the node */
    EF_SOURCE_NODE = 2,  /* the state came from (or was confirmed by) the node */
} ef_state_source;

typedef struct ef_status {
    uint64_t version;        /* the current state's version (0 if none or unknown) */
    int64_t age_ms;          /* since the node last confirmed the state (for a cache state: since
                                it was saved); -1 when there is no state */
    bool connected;          /* the last exchange with the node succeeded (and the stream, if in
                                use, is open) */
    bool streaming;          /* changes arrive by push (false: polling) */
    ef_state_source source;
    size_t flag_count;       /* flags in the current state */
    int last_error;          /* the last failed exchange with the node (EF_OK if none) */
    int cache_status;        /* how the cache file was found at open: EF_OK (used),
                                EF_ECACHE_MISSING, EF_ECACHE_CORRUPT, ... (EF_OK when no cache) */
    uint64_t updates;        /* states published since open */
} ef_status;

EF_EXTERN int ef_client_status(ef_client *c, ef_status *out);
/* The last failed exchange with the node in words, naming the node and the reason (for EF_ETLS:
 * "TLS with https://node:8443 failed: SSL certificate problem: certificate has expired (...)"),
 * NUL-terminated in buf (cut to cap). "" when nothing failed. Returns EF_OK or EF_EINVAL. */
EF_EXTERN int ef_client_error_text(ef_client *c, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
