/*
 * tls.h - HTTPS for the server: libmicrohttpd's TLS (GnuTLS) with a certificate that can be
 * replaced while the server runs, optional client certificates, and a clear answer to plain
 * HTTP sent to the HTTPS port.
 *
 * The certificate chain, its key and the client CA bundle are read from files into a
 * "generation". Every TLS handshake takes the current generation (a GnuTLS certificate callback),
 * so after ef_http_tls_reload a new connection is served with the new certificate and its client
 * checked against the new CA, while an open one carries on with what it started with; a
 * generation is freed when the last connection that used it closes.
 *
 * Must never: serve a key that does not match its certificate, drop the previous certificate or
 * client CA when a reload fails, admit a client on a CA its generation does not hold, or let a
 * connection outlive the generation it handshook with.
 */
#ifndef EF_HTTP_TLS_H
#define EF_HTTP_TLS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ef_http_tls ef_http_tls;

/* Reads cert_file (PEM: the server certificate first, then its intermediates) and key_file (PEM,
 * unencrypted), checks that the key belongs to the certificate; with client_ca_file (PEM, one or
 * more CA certificates) every client must present a certificate signed by one of them, or its
 * handshake fails. Returns NULL with a message naming the file and the reason. */
ef_http_tls *ef_http_tls_new(const char *cert_file, const char *key_file, const char *client_ca_file,
                             char *err, size_t errlen);
/* Reads the same files again (certificate, key and, when t has one, client CA bundle) and makes
 * them, together, what new handshakes use: a client certificate is then checked against the new
 * client CA. On failure of any file (the message names it and why) all three stay as they were.
 * Open connections keep what their handshake took. Thread-safe. Whether client certificates are
 * asked for at all is fixed at ef_http_tls_new. */
int ef_http_tls_reload(ef_http_tls *t, char *err, size_t errlen);
/* The certificate's subject and expiry, for the log: "CN=..., expires 2027-01-01T00:00:00Z". */
void ef_http_tls_describe(ef_http_tls *t, char *out, size_t cap);
/* The client CA bundle in use, for the log: "2 certificates: CN=a; CN=b"; "" without one. */
void ef_http_tls_describe_client_ca(ef_http_tls *t, char *out, size_t cap);
/* Frees t; only after the server that used it has stopped. */
void ef_http_tls_free(ef_http_tls *t);

/* --- for server.c -------------------------------------------------------------------------------- */

struct MHD_Connection;
struct MHD_OptionItem;
struct tls_gen;

/* Per connection, owned by the server's connection record. */
typedef struct ef_http_tls_conn {
    ef_http_tls *t;
    struct tls_gen *gen; /* the generation its handshake used (one reference), or NULL */
    int fd;
    bool sniffed;        /* the first bytes were looked at (TLS, or plain HTTP refused) */
} ef_http_tls_conn;

/* Fills the libmicrohttpd options that make a daemon serve TLS with t (at most 4 items);
 * returns how many. The server adds MHD_USE_TLS to its flags. */
size_t ef_http_tls_mhd_options(ef_http_tls *t, struct MHD_OptionItem *items);
/* Called when a connection starts, before its first byte is read. c may be NULL (the server had
 * no memory for the connection): the handshake is then refused. */
void ef_http_tls_attach(ef_http_tls *t, struct MHD_Connection *conn, int fd, ef_http_tls_conn *c);
/* Whether the connection may send requests: without a client CA always; with one, only when the
 * client presented a certificate (verified during the handshake). The server answers 401 if not. */
bool ef_http_tls_client_ok(const ef_http_tls_conn *c, struct MHD_Connection *conn);
/* Called when the connection closes: drops its generation. */
void ef_http_tls_detach(ef_http_tls_conn *c);

#endif
