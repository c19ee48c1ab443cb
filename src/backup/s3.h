/*
 * s3.h - a small client for S3-compatible object stores: PUT, GET and ListObjectsV2 of one bucket,
 * path-style URLs, AWS Signature V4 signed by libcurl (CURLOPT_AWS_SIGV4). Used by continuous
 * backup (shipper.h) and `edgeflag restore s3://…`.
 *
 * Every request has a timeout; an answer is read up to a bound given by the caller; an error
 * answer is reported with its HTTP status and the S3 error code and message. One ef_s3 is used by
 * one thread at a time (it keeps one keep-alive connection). It never logs a secret.
 */
#ifndef EF_BACKUP_S3_H
#define EF_BACKUP_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/bytes.h"

typedef struct ef_s3_config {
    const char *url;        /* s3://BUCKET[/PREFIX] */
    const char *endpoint;   /* http(s)://HOST[:PORT]; NULL: https://s3.REGION.amazonaws.com */
    const char *region;     /* NULL: us-east-1 */
    const char *access_key; /* NULL or "": unsigned requests */
    const char *secret_key;
    const char *session_token; /* NULL: none (sent as x-amz-security-token) */
    /* A request that moves no data (under 1 KiB/s) this long fails; one that moves may take this
     * long plus 4 s per MiB it may carry (a PUT's body, a GET's bound). 0: 30000 */
    unsigned timeout_ms;
    /* How many more times a GET (an object, a listing page) is tried when it failed in passing:
     * no answer (a connection refused or cut, a timeout) or HTTP 500, 502, 503 (S3's SlowDown),
     * 504. 250 ms apart, doubling up to 4 s. 0: never; the shipper retries whole rounds instead,
     * a restore (one pass, run by hand) its requests. */
    unsigned get_retries;
} ef_s3_config;

/* Fills what the caller left NULL from the environment, under AWS's names: AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION (else AWS_DEFAULT_REGION),
 * AWS_ENDPOINT_URL_S3 (else AWS_ENDPOINT_URL). The strings stay the environment's. */
void ef_s3_config_env(ef_s3_config *c);

typedef struct ef_s3_err {
    long status;      /* HTTP status, 0 when there was no answer */
    char message[600];
} ef_s3_err;

typedef struct ef_s3 ef_s3;

/* Checks the URL and settings (no request is made). NULL with err filled when they are bad. */
ef_s3 *ef_s3_new(const ef_s3_config *c, ef_s3_err *err);
void ef_s3_free(ef_s3 *s);
/* Makes the requests of s give up, as an error, once cancelled(ctx) returns true: one in flight
 * too (libcurl's progress callback asks, about once a second while it waits, more often while
 * bytes move) and a listing between its pages. A bucket that answers slowly, never, or with pages
 * that never end must not hold up its owner's shutdown. cancelled runs on the thread using s. */
void ef_s3_set_cancel(ef_s3 *s, bool (*cancelled)(void *ctx), void *ctx);
/* "s3://bucket/prefix" as configured, for messages; the prefix ("" or ending in '/'). */
const char *ef_s3_url(const ef_s3 *s);
const char *ef_s3_prefix(const ef_s3 *s);

/* key is relative to the prefix. Returns 0, or -1 with err. */
int ef_s3_put(ef_s3 *s, const char *key, const void *data, size_t len, ef_s3_err *err);
/* Reads the object into out (cleared first); an object over max bytes is an error. */
int ef_s3_get(ef_s3 *s, const char *key, size_t max, ef_buf *out, ef_s3_err *err);
/* Calls fn for every object whose name starts with prefix + under, in name order, with its name
 * relative to the prefix (valid during the call). A non-zero return from fn stops the listing and
 * is returned. A server that lists a name again or out of name order (a looping listing) is an
 * error. */
typedef int (*ef_s3_key_fn)(void *ctx, ef_bytes rel, uint64_t size);
int ef_s3_list(ef_s3 *s, const char *under, ef_s3_key_fn fn, void *ctx, ef_s3_err *err);

/* ---- ListObjectsV2 and error answers (s3_xml.c; fuzzed) ---- */
typedef struct ef_s3_list_page {
    bool truncated;
    char next_token[1025]; /* NextContinuationToken, decoded; "" when absent */
} ef_s3_list_page;
/* Calls fn for each <Contents> with its decoded <Key> (full name) and <Size>. Returns 0, a
 * non-zero value from fn, or -1 with err when the answer is not a ListBucketResult. */
int ef_s3_xml_list(const char *xml, size_t len, ef_s3_key_fn fn, void *ctx, ef_s3_list_page *page,
                   char *err, size_t errlen);
/* The <Code> and <Message> of an S3 error answer, decoded ("" when absent). */
void ef_s3_xml_error(const char *xml, size_t len, char *code, size_t codelen, char *msg,
                     size_t msglen);

#endif
