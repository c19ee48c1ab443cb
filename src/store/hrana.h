/*
 * hrana.h - a Hrana-over-HTTP client (the protocol sqld and Turso speak; docs/libsql.md): one
 * pipeline request per call on a kept-alive libcurl connection, requests written with the helpers
 * below, responses read with our JSON reader.
 *
 * Every pipeline this client sends is self-contained (a read, or one write `batch` that carries its
 * own BEGIN/COMMIT/ROLLBACK), so a stream the server forgot (STREAM_EXPIRED, an invalid or reused
 * baton, a restart) is simply reopened and the pipeline sent again. It must never hold a
 * transaction open across calls, never send without a timeout, and never put a value into SQL
 * text: values travel as Hrana arguments only.
 */
#ifndef EF_STORE_HRANA_H
#define EF_STORE_HRANA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/json.h"
#include "store/store.h"

typedef struct ef_hrana ef_hrana;

/* base_url: http(s)://host[:port][/path] (no query). token: Bearer token or NULL. Probes GET /v3
 * (2xx: Hrana 3 at /v3/pipeline, else Hrana 2 at /v2/pipeline); an unreachable server is not an
 * error here (the probe is repeated on the first successful request). */
ef_hrana *ef_hrana_open(const char *base_url, const char *token, int timeout_ms,
                        ef_store_err *err);
/* The same, verifying an https server against the PEM CA certificates in ca_file (NULL: the
 * system's CAs). */
ef_hrana *ef_hrana_open_ca(const char *base_url, const char *token, int timeout_ms,
                           const char *ca_file, ef_store_err *err);
void ef_hrana_close(ef_hrana *h);
/* 2 or 3 once known, 0 while the server has not answered yet. */
int ef_hrana_version(ef_hrana *h);
/* Requests sent and HTTP connections opened so far (connection reuse is observable in tests). */
void ef_hrana_stats(ef_hrana *h, uint64_t *requests, uint64_t *connects);

/* ---- writing a pipeline's requests ---- */

typedef struct ef_hrana_req {
    ef_buf b;
    int nreq;   /* requests written */
    int nsteps; /* steps of the open batch */
    int open;   /* what is open: none, an execute, a batch, a batch step */
    bool first_arg;
} ef_hrana_req;

void ef_hrana_req_init(ef_hrana_req *r);
void ef_hrana_req_free(ef_hrana_req *r);
/* Starts an `execute` request; arguments follow. Returns its request index. */
int ef_hrana_execute(ef_hrana_req *r, const char *sql);
/* Starts a `batch` request. Returns its request index. */
int ef_hrana_batch(ef_hrana_req *r);
/* Adds a step to the open batch. cond is BatchCond JSON (see the ef_hrana_cond_* helpers) or NULL;
 * arguments follow. Returns the step index. */
int ef_hrana_step(ef_hrana_req *r, const char *cond, const char *sql);
void ef_hrana_arg_null(ef_hrana_req *r);
void ef_hrana_arg_int(ef_hrana_req *r, int64_t v);
void ef_hrana_arg_float(ef_hrana_req *r, double v);
void ef_hrana_arg_text(ef_hrana_req *r, ef_bytes v);
void ef_hrana_arg_blob(ef_hrana_req *r, ef_bytes v);
/* A JSON scalar as the store's change-log rows hold it: integral numbers become integers, other
 * numbers floats, booleans 0/1, strings text. */
void ef_hrana_arg_json(ef_hrana_req *r, const ef_json *v);

/* BatchCond JSON into buf (sized by the caller; 96 bytes suffice). */
const char *ef_hrana_cond_ok(char *buf, size_t n, int step);
const char *ef_hrana_cond_not_ok(char *buf, size_t n, int step);
/* ok(a) and not ok(b): "the transaction began and did not commit" (run ROLLBACK). */
const char *ef_hrana_cond_ok_not_ok(char *buf, size_t n, int a, int b);

/* ---- sending and reading ---- */

/* The largest answer read by default; a larger one is cut and fails with EF_HRANA_TOO_LARGE. */
#define EF_HRANA_MAX_ANSWER (64u << 20)
/* Another cap for this client (0: EF_HRANA_MAX_ANSWER); tests lower it to exercise paging. */
void ef_hrana_set_max_answer(ef_hrana *h, size_t bytes);
#define EF_HRANA_TOO_LARGE (-2)

/* Sends the requests; *results is the response's results array (in a, which must outlive it).
 * Transport failures, timeouts and non-2xx answers fail (-1) with EF_STORE_UNAVAILABLE and a
 * message naming the server, the status and the server's own message and code. An answer past
 * EF_HRANA_MAX_ANSWER fails with EF_HRANA_TOO_LARGE: the requests ran, so only reads may be sent
 * again (asking for less). A base_url in the answer is followed only on the configured server's
 * own origin (ef_hrana_same_origin): the bearer token never goes to another host. */
int ef_hrana_send(ef_hrana *h, ef_hrana_req *r, ef_arena *a, const ef_json **results,
                  ef_store_err *err);
/* Parses a pipeline answer body (copied into a): *root is its object, *results its results
 * array, which must hold exactly nreq entries. What ef_hrana_send does with the bytes it got, on
 * its own so it can be fuzzed (tests/fuzz/fuzz_hrana.c). */
int ef_hrana_parse_answer(const char *data, size_t len, int nreq, ef_arena *a,
                          const ef_json **root, const ef_json **results, ef_store_err *err);
/* Whether url (a server's base_url) has the scheme, host and port of base (default ports
 * included, host case-insensitive), carries no user information, query, fragment, space or
 * control byte. */
bool ef_hrana_same_origin(const char *base, ef_bytes url);
/* The `result` of request i (a StmtResult or a BatchResult), or -1 with the server's error. */
int ef_hrana_result(const ef_json *results, int i, const ef_json **result, ef_store_err *err);
/* Step i of a BatchResult: 0 with its StmtResult, 1 when skipped, -1 with the step's error (code
 * copied into code[] when given). */
int ef_hrana_step_result(const ef_json *batch, int i, const ef_json **result, char *code,
                         size_t ncode, ef_store_err *err);

/* ---- values ---- */

typedef enum ef_hrana_type {
    EF_HRANA_NULL,
    EF_HRANA_INTEGER,
    EF_HRANA_FLOAT,
    EF_HRANA_TEXT,
    EF_HRANA_BLOB,
} ef_hrana_type;

typedef struct ef_hrana_value {
    ef_hrana_type type;
    int64_t i;
    double f;
    ef_bytes s; /* text, or blob bytes (decoded, in the arena) */
} ef_hrana_value;

/* Decodes one Value object. Returns -1 when it is malformed (an integer that is not plain decimal
 * digits within int64 included). */
int ef_hrana_value_get(const ef_json *v, ef_arena *a, ef_hrana_value *out);
/* Column c of row r of a StmtResult (NULL when out of range). O(r + c): for one row only; walk
 * many rows with the iterators below. */
const ef_json *ef_hrana_cell(const ef_json *result, size_t r, size_t c);
size_t ef_hrana_nrows(const ef_json *result);
/* The declared type of column c, "" when the server sent none. */
ef_bytes ef_hrana_decltype(const ef_json *result, size_t c);
/* Linear walks: the first row of a StmtResult (the next is row->next), the first cell of a row
 * (the next is cell->next); NULL at the end or when the shape is wrong. */
const ef_json *ef_hrana_first_row(const ef_json *result);
const ef_json *ef_hrana_first_cell(const ef_json *row);
/* The decltypes of the first max columns into out[] ("" when absent); returns the number of
 * columns the server described (at most max). */
size_t ef_hrana_decltypes(const ef_json *result, ef_bytes *out, size_t max);

/* Writes a cell as the JSON scalar the store's rows use, with the type recovered from the column's
 * decltype rather than from how the value happened to travel: BOOLEAN and INTEGER columns become
 * integers (a float 1.0, "true"/"false" or "1" included), DATE/DATETIME/TIMESTAMP columns Unix
 * nanoseconds (RFC 3339 text is parsed), REAL/FLOAT/DOUBLE columns numbers, TEXT strings, blobs
 * unpadded base64 strings. Returns -1 when a value cannot be read as its column's type. */
int ef_hrana_cell_json(ef_buf *out, const ef_json *cell, ef_bytes decltype, ef_arena *a);

#endif
