/*
 * fetch.c - bounded libcurl requests for authentication (see fetch.h). It must never follow a
 * redirect (a JWKS or a token endpoint that moves is a configuration error, not a hint), never
 * accept an unbounded body, and never log a secret it sends.
 */
#include "api/fetch.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>

/* libcurl's process-wide initialisation is the one piece of shared state (as in client/replica.c):
 * curl_global_init is not thread-safe, so it runs once. */
/* libcurl calls this several times a second during a transfer: a shutdown need not wait for a
 * peer that never answers. */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    const bool *cancel = ud;
    return __atomic_load_n(cancel, __ATOMIC_ACQUIRE) ? 1 : 0;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int ef_fetch_init(char *err, size_t errlen)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc == CURLE_OK) return 0;
    snprintf(err, errlen, "libcurl could not be initialised");
    return -1;
}

int ef_fetch_begin(ef_fetch_transfer *t, const ef_fetch_req *r, ef_buf *out, char *err, size_t errlen)
{
    ef_buf_clear(out);
    *t = (ef_fetch_transfer){.sink = {.out = out, .max = r->max_body}};
    if (ef_fetch_init(err, errlen) != 0) return -1;
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    t->easy = c;
    curl_easy_setopt(c, CURLOPT_URL, r->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ef_buf_sink_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t->sink);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "edgeflag");
    t->headers = curl_slist_append(NULL, "Accept: application/json");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, t->headers);
    if (r->form) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->form);
    }
    if (r->basic_user) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, r->basic_user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, r->basic_pass ? r->basic_pass : "");
    }
    return 0;
}

int ef_fetch_end(ef_fetch_transfer *t, CURLcode rc, long *status, char *err, size_t errlen)
{
    int ret = 0;
    *status = 0;
    if (t->sink.over) {
        snprintf(err, errlen, "answer larger than %zu bytes", t->sink.max);
        ret = -1;
    } else if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s", curl_easy_strerror(rc));
        ret = -1;
    } else {
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, status);
    }
    curl_slist_free_all(t->headers);
    curl_easy_cleanup(t->easy);
    t->headers = NULL;
    t->easy = NULL;
    return ret;
}

int ef_fetch(const ef_fetch_req *r, ef_buf *out, long *status, char *err, size_t errlen)
{
    ef_fetch_transfer t;
    *status = 0;
    if (ef_fetch_begin(&t, r, out, err, errlen) != 0) return -1;
    if (r->cancel) {
        curl_easy_setopt(t.easy, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(t.easy, CURLOPT_XFERINFODATA, (void *)r->cancel);
        curl_easy_setopt(t.easy, CURLOPT_NOPROGRESS, 0L);
    }
    return ef_fetch_end(&t, curl_easy_perform(t.easy), status, err, errlen);
}
