/*
 * tls_client.c - outbound TLS settings and failure messages for libcurl handles (see
 * tls_client.h). libcurl verifies the peer's certificate and host name by default; this file
 * keeps it that way, adds the CA and client certificate files, and turns curl's error into a
 * sentence that names the peer.
 *
 * Must never: set CURLOPT_SSL_VERIFYPEER or VERIFYHOST to 0 unless t->insecure.
 */
#include "base/tls_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void ef_tls_client_apply(void *curl, const ef_tls_client *t, char *errbuf)
{
    CURL *c = curl;
    if (errbuf) {
        errbuf[0] = '\0';
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    }
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!t) return;
    if (t->ca_file) curl_easy_setopt(c, CURLOPT_CAINFO, t->ca_file);
    if (t->cert_file) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, t->cert_file);
        curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (t->key_file) {
        curl_easy_setopt(c, CURLOPT_SSLKEY, t->key_file);
        curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (t->insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

static int readable(const char *file, const char *what, const char *opt, char *err, size_t errlen)
{
    if (!file) return 0;
    if (access(file, R_OK) != 0) {
        snprintf(err, errlen, "%s%s %s: %s", what, opt, file, strerror(errno));
        return -1;
    }
    return 0;
}

int ef_tls_client_check(const ef_tls_client *t, const char *what, char *err, size_t errlen)
{
    if (!t) return 0;
    if ((t->cert_file != NULL) != (t->key_file != NULL)) {
        snprintf(err, errlen, "%s: a client certificate needs its key (both or neither)", what);
        return -1;
    }
    if (readable(t->ca_file, what, "-ca", err, errlen) || readable(t->cert_file, what, "-cert", err, errlen) ||
        readable(t->key_file, what, "-key", err, errlen))
        return -1;
    return 0;
}

bool ef_tls_client_failed(int rc)
{
    switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_CLIENTCERT:
        return true;
    default:
        return false;
    }
}

/* What to look at, for the failures people meet (curl's OpenSSL texts). */
static const char *hint(const char *why)
{
    if (strstr(why, "expired")) return "the peer's certificate has expired: renew it";
    if (strstr(why, "not yet valid")) return "the peer's certificate is not valid yet: check the clocks";
    if (strstr(why, "subject name") || strstr(why, "host name") || strstr(why, "hostname"))
        return "the certificate does not name this host: connect by a name it lists, or reissue it";
    if (strstr(why, "local issuer") || strstr(why, "self-signed") || strstr(why, "self signed") ||
        strstr(why, "unable to get issuer"))
        return "the certificate is not signed by a trusted CA: give its CA file";
    if (strstr(why, "wrong version number") || strstr(why, "packet length too long"))
        return "the peer does not speak TLS there: use http://, or its HTTPS port";
    if (strstr(why, "unknown ca") || strstr(why, "bad certificate") || strstr(why, "certificate required") ||
        strstr(why, "alert handshake failure"))
        return "the peer refused this node's client certificate: present one signed by the CA it trusts";
    return NULL;
}

bool ef_tls_client_is_tls(int rc, const char *errbuf)
{
    if (ef_tls_client_failed(rc)) return true;
    return (rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR) && errbuf &&
           (strstr(errbuf, "SSL") || strstr(errbuf, "TLS"));
}

void ef_tls_client_error(int rc, const char *errbuf, const char *peer, char *out, size_t cap)
{
    const char *why = errbuf && *errbuf ? errbuf : curl_easy_strerror((CURLcode)rc);
    bool tls = ef_tls_client_is_tls(rc, why);
    const char *h = tls ? hint(why) : NULL;
    if (tls)
        snprintf(out, cap, "TLS with %s failed: %s%s%s%s", peer, why, h ? " (" : "", h ? h : "", h ? ")" : "");
    else
        snprintf(out, cap, "%s: %s", peer, why);
}
