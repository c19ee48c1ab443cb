/*
 * tls.c - HTTPS for the server (see tls.h): certificate generations swapped on reload, client
 * certificates checked during the handshake, plain HTTP to the HTTPS port answered in plain HTTP.
 *
 * libmicrohttpd creates each connection's GnuTLS session; when the connection starts (before any
 * byte is read) ef_http_tls_attach points the session's receive side at this connection's record
 * and installs the receive function below, which looks at the first bytes once: a TLS record
 * starts with a byte below 0x80 that is not a letter, an HTTP request with a method name, so a
 * client speaking plain HTTP gets a 400 that says so instead of a closed socket. The certificate
 * callback finds the same record through the session's transport pointer, so nothing here relies
 * on libmicrohttpd's private fields.
 *
 * The client CA is part of the generation, not of libmicrohttpd's credentials (which cannot be
 * changed once the daemon runs): a client's certificate is checked against the trust list of the
 * generation its handshake took, so a reload swaps certificate, key and client CA together.
 *
 * Must never: block in a callback (they run on server threads, the socket is non-blocking), free
 * a generation a connection still references, or keep key bytes in freed memory.
 */
#include "http/tls.h"

#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "base/file.h"

#define MAX_CHAIN 16

/* TLS 1.2 and 1.3 only, as Flipt's server (crypto/tls MinVersion 1.2). */
static const char tls_priorities[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";

struct tls_gen {
    gnutls_pcert_st certs[MAX_CHAIN];
    unsigned ncerts;
    gnutls_privkey_t key;
    gnutls_x509_trust_list_t client_ca; /* NULL: client certificates are not asked for */
    char ca_desc[320];
    unsigned refs; /* the tls object's current pointer, plus one per connection that used it */
    char desc[320];
};

struct ef_http_tls {
    char *cert_file, *key_file;
    char *client_ca_file; /* NULL: no client certificates, for the life of t */
    pthread_mutex_t mu;
    struct tls_gen *cur;
};

static void gen_free(struct tls_gen *g)
{
    if (!g) return;
    for (unsigned i = 0; i < g->ncerts; i++) gnutls_pcert_deinit(&g->certs[i]);
    if (g->key) gnutls_privkey_deinit(g->key);
    if (g->client_ca) gnutls_x509_trust_list_deinit(g->client_ca, 1);
    free(g);
}

static void secret_free(char *p, size_t n)
{
    if (!p) return;
    explicit_bzero(p, n);
    free(p);
}

/* Whether the private key belongs to the certificate's public key. */
static bool key_matches(gnutls_privkey_t key, gnutls_pubkey_t cert_pub)
{
    gnutls_pubkey_t pub;
    if (gnutls_pubkey_init(&pub) < 0) return false;
    gnutls_datum_t a = {0}, b = {0};
    bool same = gnutls_pubkey_import_privkey(pub, key, 0, 0) >= 0 &&
                gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &a) >= 0 &&
                gnutls_pubkey_export2(cert_pub, GNUTLS_X509_FMT_DER, &b) >= 0 && a.size == b.size &&
                memcmp(a.data, b.data, a.size) == 0;
    gnutls_free(a.data);
    gnutls_free(b.data);
    gnutls_pubkey_deinit(pub);
    return same;
}

static void describe_cert(struct tls_gen *g)
{
    gnutls_x509_crt_t crt;
    snprintf(g->desc, sizeof(g->desc), "(unreadable subject)");
    if (gnutls_x509_crt_init(&crt) < 0) return;
    gnutls_datum_t dn = {0};
    if (gnutls_x509_crt_import(crt, &g->certs[0].cert, GNUTLS_X509_FMT_DER) >= 0 &&
        gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0) {
        time_t exp = gnutls_x509_crt_get_expiration_time(crt);
        struct tm tm;
        char when[32] = "?";
        if (exp != (time_t)-1 && gmtime_r(&exp, &tm)) strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(g->desc, sizeof(g->desc), "%.*s, expires %s%s", (int)(dn.size > 240 ? 240 : dn.size),
                 (const char *)dn.data, when, exp != (time_t)-1 && exp < time(NULL) ? " (EXPIRED)" : "");
    }
    gnutls_free(dn.data);
    gnutls_x509_crt_deinit(crt);
}

/* The client CA bundle as the generation's trust list, and its subjects for the log. */
static int client_ca_load(struct tls_gen *g, const char *file, char *err, size_t errlen)
{
    char *pem = NULL;
    size_t len = 0;
    int rc = ef_file_read(file, EF_FILE_MAX_SMALL, &pem, &len);
    if (rc != 0) {
        snprintf(err, errlen, "tls-client-ca %s: %s", file, ef_file_strerror(rc));
        return -1;
    }
    gnutls_x509_crt_t *list = NULL;
    unsigned n = 0;
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned)len};
    rc = gnutls_x509_crt_list_import2(&list, &n, &d, GNUTLS_X509_FMT_PEM, 0);
    free(pem);
    if (rc < 0 || n == 0) {
        snprintf(err, errlen, "tls-client-ca %s: not PEM CA certificates: %s", file,
                 rc < 0 ? gnutls_strerror(rc) : "no certificate");
        if (rc >= 0) gnutls_free(list);
        return -1;
    }
    size_t used = (size_t)snprintf(g->ca_desc, sizeof(g->ca_desc), "%u certificate%s:", n, n == 1 ? "" : "s");
    for (unsigned i = 0; i < n && used < sizeof(g->ca_desc); i++) {
        gnutls_datum_t dn = {0};
        if (gnutls_x509_crt_get_dn3(list[i], &dn, 0) >= 0)
            used += (size_t)snprintf(g->ca_desc + used, sizeof(g->ca_desc) - used, "%s %.*s", i ? ";" : "",
                                     (int)(dn.size > 200 ? 200 : dn.size), (const char *)dn.data);
        gnutls_free(dn.data);
    }
    /* the trust list takes the certificates (freed with it), the array stays ours */
    if ((rc = gnutls_x509_trust_list_init(&g->client_ca, 0)) < 0 ||
        (rc = gnutls_x509_trust_list_add_cas(g->client_ca, list, n, 0)) < 0) {
        if (g->client_ca) gnutls_x509_trust_list_deinit(g->client_ca, 0);
        g->client_ca = NULL;
        for (unsigned i = 0; i < n; i++) gnutls_x509_crt_deinit(list[i]);
        gnutls_free(list);
        snprintf(err, errlen, "tls-client-ca %s: %s", file, gnutls_strerror(rc));
        return -1;
    }
    gnutls_free(list);
    return 0;
}

/* One generation: the certificate chain, its key and (with client_ca_file) the client CA, all
 * read now; NULL with a message naming the file when any of them is wrong. */
static struct tls_gen *gen_load(const char *cert_file, const char *key_file, const char *client_ca_file,
                                char *err, size_t errlen)
{
    char *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0;
    int rc;
    if ((rc = ef_file_read(cert_file, EF_FILE_MAX_SMALL, &cert, &cert_len)) != 0) {
        snprintf(err, errlen, "tls-cert %s: %s", cert_file, ef_file_strerror(rc));
        return NULL;
    }
    if ((rc = ef_file_read(key_file, EF_FILE_MAX_SMALL, &key, &key_len)) != 0) {
        snprintf(err, errlen, "tls-key %s: %s", key_file, ef_file_strerror(rc));
        free(cert);
        return NULL;
    }
    struct tls_gen *g = calloc(1, sizeof(*g));
    if (!g) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    gnutls_datum_t cd = {(unsigned char *)cert, (unsigned)cert_len};
    unsigned n = MAX_CHAIN;
    rc = gnutls_pcert_list_import_x509_raw(g->certs, &n, &cd, GNUTLS_X509_FMT_PEM,
                                           GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
    if (rc < 0 || n == 0) {
        snprintf(err, errlen, "tls-cert %s: not a PEM certificate chain (server certificate first, then "
                 "its issuers; at most %d): %s", cert_file, MAX_CHAIN, rc < 0 ? gnutls_strerror(rc) : "no certificate");
        goto fail;
    }
    g->ncerts = n;
    gnutls_datum_t kd = {(unsigned char *)key, (unsigned)key_len};
    if (gnutls_privkey_init(&g->key) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if ((rc = gnutls_privkey_import_x509_raw(g->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        snprintf(err, errlen, "tls-key %s: not an unencrypted PEM private key: %s", key_file, gnutls_strerror(rc));
        goto fail;
    }
    if (!key_matches(g->key, g->certs[0].pubkey)) {
        snprintf(err, errlen, "tls-key %s is not the key of the certificate in tls-cert %s", key_file, cert_file);
        goto fail;
    }
    if (client_ca_file && client_ca_load(g, client_ca_file, err, errlen) != 0) goto fail;
    describe_cert(g);
    free(cert);
    secret_free(key, key_len);
    return g;
fail:
    gen_free(g);
    free(cert);
    secret_free(key, key_len);
    return NULL;
}

ef_http_tls *ef_http_tls_new(const char *cert_file, const char *key_file, const char *client_ca_file,
                             char *err, size_t errlen)
{
    if (!cert_file || !*cert_file || !key_file || !*key_file) {
        snprintf(err, errlen, "HTTPS needs both tls-cert and tls-key");
        return NULL;
    }
    ef_http_tls *t = calloc(1, sizeof(*t));
    if (!t || !(t->cert_file = strdup(cert_file)) || !(t->key_file = strdup(key_file)) ||
        (client_ca_file && !(t->client_ca_file = strdup(client_ca_file)))) {
        snprintf(err, errlen, "out of memory");
        ef_http_tls_free(t);
        return NULL;
    }
    pthread_mutex_init(&t->mu, NULL);
    if (!(t->cur = gen_load(cert_file, key_file, client_ca_file, err, errlen))) {
        ef_http_tls_free(t);
        return NULL;
    }
    t->cur->refs = 1;
    return t;
}

int ef_http_tls_reload(ef_http_tls *t, char *err, size_t errlen)
{
    struct tls_gen *g = gen_load(t->cert_file, t->key_file, t->client_ca_file, err, errlen);
    if (!g) return -1;
    g->refs = 1;
    pthread_mutex_lock(&t->mu);
    struct tls_gen *old = t->cur;
    t->cur = g;
    bool last = --old->refs == 0;
    pthread_mutex_unlock(&t->mu);
    if (last) gen_free(old);
    return 0;
}

void ef_http_tls_describe(ef_http_tls *t, char *out, size_t cap)
{
    pthread_mutex_lock(&t->mu);
    snprintf(out, cap, "%s", t->cur ? t->cur->desc : "");
    pthread_mutex_unlock(&t->mu);
}

void ef_http_tls_describe_client_ca(ef_http_tls *t, char *out, size_t cap)
{
    pthread_mutex_lock(&t->mu);
    snprintf(out, cap, "%s", t->cur && t->cur->client_ca ? t->cur->ca_desc : "");
    pthread_mutex_unlock(&t->mu);
}

void ef_http_tls_free(ef_http_tls *t)
{
    if (!t) return;
    if (t->cur) gen_free(t->cur);
    if (t->cert_file) pthread_mutex_destroy(&t->mu);
    free(t->cert_file);
    free(t->key_file);
    free(t->client_ca_file);
    free(t);
}

/* ---- per connection -------------------------------------------------------------------------- */

/* The current generation, with one reference for the caller. */
static struct tls_gen *gen_acquire(ef_http_tls *t)
{
    pthread_mutex_lock(&t->mu);
    struct tls_gen *g = t->cur;
    g->refs++;
    pthread_mutex_unlock(&t->mu);
    return g;
}

static void gen_release(ef_http_tls *t, struct tls_gen *g)
{
    pthread_mutex_lock(&t->mu);
    bool last = --g->refs == 0;
    pthread_mutex_unlock(&t->mu);
    if (last) gen_free(g);
}

/* GnuTLS asks for the server's certificate during each handshake: the current generation. */
static int tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                        const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                        unsigned int *pcert_length, gnutls_privkey_t *privkey)
{
    (void)req_ca_dn, (void)nreqs, (void)pk_algos, (void)pk_algos_length;
    void *recv_ptr = NULL, *send_ptr = NULL;
    gnutls_transport_get_ptr2(session, &recv_ptr, &send_ptr);
    /* not attached (both sides still libmicrohttpd's socket number): refuse the handshake */
    if (!recv_ptr || recv_ptr == send_ptr) return -1;
    ef_http_tls_conn *c = recv_ptr;
    ef_http_tls *t = c->t;
    struct tls_gen *g = gen_acquire(t);
    if (c->gen) gen_release(t, c->gen); /* a second handshake on the connection */
    c->gen = g;
    *pcert = g->certs;
    *pcert_length = g->ncerts;
    *privkey = g->key;
    return 0;
}

/* The answer to plain HTTP on the HTTPS port, in plain HTTP (the client cannot read anything
 * else), then the connection ends. What the client sent is read first, so closing the socket
 * does not reset the connection before the answer is read. */
static void refuse_plain_http(int fd)
{
    static const char body[] =
        "{\"code\":3,\"message\":\"this port serves HTTPS: the request was sent in plain HTTP (use https://)\","
        "\"details\":[]}";
    char resp[512];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     sizeof(body) - 1, body);
    char scratch[4096];
    for (int i = 0; i < 16 && recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT) > 0; i++) {
    }
    if (n > 0) (void)!send(fd, resp, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
}

static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
    ef_http_tls_conn *c = ptr;
    if (!c) {
        errno = ENOMEM; /* the server could not record the connection: refuse it */
        return -1;
    }
    ssize_t n = recv(c->fd, buf, len, 0);
    if (n > 0 && !c->sniffed) { /* the connection's first bytes */
        c->sniffed = true;
        unsigned char first = *(unsigned char *)buf;
        if (first >= 'A' && first <= 'Z') { /* a method name: TLS records start with 0x14-0x18 */
            refuse_plain_http(c->fd);
            errno = ECONNRESET;
            return -1;
        }
    }
    return n;
}

/* Used by GnuTLS only when it waits with a timeout; the sockets here are non-blocking. */
static int tls_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
    ef_http_tls_conn *c = ptr;
    if (!c) return -1;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    return poll(&p, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

/* The verification status of the client's chain (DER, client first) against the client CA of
 * generation g; GNUTLS_CERT_INVALID when it cannot be read. */
static unsigned chain_status(const struct tls_gen *g, const gnutls_datum_t *peers, unsigned n)
{
    if (!g || !g->client_ca || n > MAX_CHAIN) return GNUTLS_CERT_INVALID;
    gnutls_x509_crt_t chain[MAX_CHAIN];
    unsigned ok = 0, status = GNUTLS_CERT_INVALID;
    for (; ok < n; ok++) {
        if (gnutls_x509_crt_init(&chain[ok]) < 0) break;
        if (gnutls_x509_crt_import(chain[ok], &peers[ok], GNUTLS_X509_FMT_DER) < 0) {
            gnutls_x509_crt_deinit(chain[ok]);
            break;
        }
    }
    if (ok == n && gnutls_x509_trust_list_verify_crt2(g->client_ca, chain, n, NULL, 0, 0, &status, NULL) < 0)
        status = GNUTLS_CERT_INVALID;
    for (unsigned i = 0; i < ok; i++) gnutls_x509_crt_deinit(chain[i]);
    return status;
}

/* During the handshake, when the client sent a certificate: it must lead to the client CA of
 * the generation this connection's handshake took (no host name: any certificate that CA signed
 * is a client). */
static int verify_client(gnutls_session_t s)
{
    unsigned n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(s, &n);
    if (!peers || n == 0) return 0; /* none: refused in HTTP */
    void *recv_ptr = NULL, *send_ptr = NULL;
    gnutls_transport_get_ptr2(s, &recv_ptr, &send_ptr);
    ef_http_tls_conn *c = recv_ptr != send_ptr ? recv_ptr : NULL;
    /* the server's certificate was sent first, so its generation is known; if not, the current */
    if (c && !c->gen) c->gen = gen_acquire(c->t);
    unsigned status = chain_status(c ? c->gen : NULL, peers, n);
    if (status == 0) return 0;
    gnutls_alert_description_t why = GNUTLS_A_BAD_CERTIFICATE;
    if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA)) why = GNUTLS_A_UNKNOWN_CA;
    else if (status & GNUTLS_CERT_EXPIRED) why = GNUTLS_A_CERTIFICATE_EXPIRED;
    else if (status & GNUTLS_CERT_REVOKED) why = GNUTLS_A_CERTIFICATE_REVOKED;
    /* The client sent its request with its certificate (TLS 1.3): read what has arrived, so the
     * close that follows does not reset the connection before the client reads the alert. */
    char scratch[4096];
    for (int i = 0; c && i < 16 && recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT) > 0; i++) {
    }
    (void)gnutls_alert_send(s, GNUTLS_AL_FATAL, why); /* best effort: the socket may be full */
    if (c) shutdown(c->fd, SHUT_WR);
    return -1;
}

bool ef_http_tls_client_ok(const ef_http_tls_conn *c, struct MHD_Connection *conn)
{
    if (!c || !c->t || !c->t->client_ca_file) return true;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session) return false;
    /* A resumed session would skip verify_client, and its certificate may come from a CA a
     * reload has since removed. libmicrohttpd enables no session cache nor tickets, so this does
     * not happen; if a version did, such a connection is refused rather than trusted. */
    if (gnutls_session_is_resumed((gnutls_session_t)ci->tls_session)) return false;
    unsigned n = 0;
    /* verified during the handshake when present (verify_client) */
    return gnutls_certificate_get_peers((gnutls_session_t)ci->tls_session, &n) != NULL && n > 0;
}

size_t ef_http_tls_mhd_options(ef_http_tls *t, struct MHD_OptionItem *items)
{
    size_t n = 0;
    items[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)tls_retrieve};
    items[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)tls_priorities};
    /* no MHD_OPTION_HTTPS_MEM_TRUST: the client CA lives in the generation (verify_client), so
     * the CertificateRequest names no CA and a client sends the certificate it has */
    return n;
}

void ef_http_tls_attach(ef_http_tls *t, struct MHD_Connection *conn, int fd, ef_http_tls_conn *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session) return;
    gnutls_session_t s = (gnutls_session_t)ci->tls_session;
    if (c) *c = (ef_http_tls_conn){.t = t, .fd = fd};
    /* the send side stays libmicrohttpd's (the socket as an int, GnuTLS's own send) */
    gnutls_transport_set_ptr2(s, c, (gnutls_transport_ptr_t)(intptr_t)fd);
    gnutls_transport_set_pull_function(s, tls_pull);
    gnutls_transport_set_pull_timeout_function(s, tls_pull_timeout);
    if (t->client_ca_file) {
        /* a certificate the client CA did not sign fails the handshake with an alert that says
         * so; none at all is refused by ef_http_tls_client_ok with an HTTP answer, which the
         * client can read (libmicrohttpd sends no alert when a handshake fails) */
        gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
        gnutls_session_set_verify_function(s, verify_client);
    }
}

void ef_http_tls_detach(ef_http_tls_conn *c)
{
    if (c && c->gen) {
        gen_release(c->t, c->gen);
        c->gen = NULL;
    }
}
