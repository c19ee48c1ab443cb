/*
 * fetch.h - one bounded outbound HTTP request with libcurl, for authentication's own needs: a
 * JWKS, an OpenID provider's discovery document, its token endpoint. Blocking: call it from a
 * background thread or from a request that is itself about signing in, never from evaluation.
 * Every call has a total time limit and a body size limit, follows no redirect and speaks only
 * http and https.
 */
#ifndef EF_API_FETCH_H
#define EF_API_FETCH_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#include "base/buf.h"

typedef struct ef_fetch_req {
    const char *url;
    const char *form;        /* NULL: GET; else POST with this application/x-www-form-urlencoded body */
    const char *basic_user;  /* HTTP basic authentication (client_secret_basic), or NULL */
    const char *basic_pass;
    size_t max_body;         /* bytes; a longer answer is an error */
    unsigned timeout_ms;
    const bool *cancel;      /* when it turns true (another thread), the request ends at once; or NULL */
} ef_fetch_req;

/* 0 with the HTTP status in *status and the body in out (cleared first); -1 with a message in err
 * when no answer arrived or it was too large. Thread-safe (one easy handle per call). */
int ef_fetch(const ef_fetch_req *r, ef_buf *out, long *status, char *err, size_t errlen);

/* libcurl's process-wide initialisation, once (ef_fetch and ef_fetch_begin run it): 0, or -1 with
 * err. Call it before making a multi handle of one's own. */
int ef_fetch_init(char *err, size_t errlen);

/* The same request run by a curl multi handle of the caller's, so that one thread waits on many
 * (the OIDC code exchanges). ef_fetch_begin sets t->easy up as ef_fetch would (r->cancel aside:
 * the caller ends a transfer by removing it from its multi handle); r's strings, out and t must
 * stay where they are until ef_fetch_end. Returns 0, or -1 with err (nothing to end then).
 * ef_fetch_end frees the handle, once it is off the multi handle, and returns what ef_fetch
 * would have, given the transfer's CURLMSG_DONE result (any rc for one removed before its end). */
typedef struct ef_fetch_transfer {
    CURL *easy;
    struct curl_slist *headers;
    ef_buf_sink sink;
} ef_fetch_transfer;
int ef_fetch_begin(ef_fetch_transfer *t, const ef_fetch_req *r, ef_buf *out, char *err, size_t errlen);
int ef_fetch_end(ef_fetch_transfer *t, CURLcode rc, long *status, char *err, size_t errlen);

#endif
