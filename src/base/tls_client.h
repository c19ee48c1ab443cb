/*
 * tls_client.h - how every outbound HTTPS connection of edgeflag is verified: the replica's
 * stream and forwarded writes, libedgeflag, the libSQL client. One place, so they all verify the
 * peer's certificate and host name by default, take a private CA and a client certificate the same
 * way, and describe a refused peer the same way.
 *
 * The only part of base that links libcurl (its own object library, ef_tls_client in CMake).
 * Must never: turn verification off unless `insecure` was set by name.
 */
#ifndef EF_BASE_TLS_CLIENT_H
#define EF_BASE_TLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ef_tls_client {
    const char *ca_file;   /* PEM CA certificates the peer's chain must lead to; NULL: the system's */
    const char *cert_file; /* PEM client certificate (and chain) presented to the peer, or NULL */
    const char *key_file;  /* its PEM private key (required with cert_file) */
    bool insecure;         /* accept any certificate and host name: only when named explicitly */
} ef_tls_client;

/* Sets the TLS options of one libcurl easy handle (CURL *) from t (NULL: defaults), and its error
 * buffer (errbuf: at least CURL_ERROR_SIZE bytes, cleared) so ef_tls_client_error can say why. */
void ef_tls_client_apply(void *curl, const ef_tls_client *t, char *errbuf);
/* Checks that the files t names exist and can be read, before the first connection, so a wrong
 * path is an error at start and not a retry loop. Returns 0, or -1 with a message naming the
 * option and the file. */
int ef_tls_client_check(const ef_tls_client *t, const char *what, char *err, size_t errlen);
/* A transfer to peer (a URL or host) failed with curl code rc: writes a message that names the
 * peer and the reason; TLS failures say so ("TLS with https://x:1 failed: certificate has
 * expired"), with what to check. errbuf is the handle's error buffer (may be NULL or ""). */
void ef_tls_client_error(int rc, const char *errbuf, const char *peer, char *out, size_t cap);
/* Whether rc is a failure of the TLS layer (certificate, handshake, key files) before any request
 * was sent. */
bool ef_tls_client_failed(int rc);
/* The same, or a TLS alert read after the handshake (a client certificate refused under TLS 1.3
 * is only seen then): whether to report the failure as TLS. */
bool ef_tls_client_is_tls(int rc, const char *errbuf);

#endif
