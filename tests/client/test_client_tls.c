/*
 * test_client_tls.c - libedgeflag against a real node serving HTTPS (`edgeflag serve --tls-cert`),
 * with a throwaway PKI made by openssl at test time (tests/compat/pki.mjs, run with node):
 *   - with ca_file the client bootstraps, streams and evaluates;
 *   - refused, with EF_ETLS and a text naming the node and the reason, and nothing to evaluate:
 *     the system's CAs only (unknown CA), a node whose certificate names another host, an expired
 *     certificate, a client certificate from another CA where the node requires one;
 *   - insecure (named explicitly) accepts the unknown CA;
 *   - a client certificate from the node's client CA is admitted; none gets the node's 401;
 *   - bad options: a certificate without its key (EF_EINVAL), an unreadable CA file (EF_EIO).
 * argv: edgeflag binary, node, tests/compat/pki.mjs. Every expectation is a CHECK; nothing skips.
 */
#include "edgeflag.h"
#include "helper.h"

static const char *bin;
static char pki[256], db[128], dir[64];

static void pki_file(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", pki, name);
}

/* Starts the HTTPS node on the prepared database with the named certificate (+ extra args). */
static void start_https(test_server *s, const char *cert, bool client_ca)
{
    char c[320], k[320], ca[320];
    snprintf(c, sizeof(c), "%s/%s.pem", pki, cert);
    snprintf(k, sizeof(k), "%s/%s.key", pki, cert);
    pki_file(ca, sizeof(ca), "ca.pem");
    const char *args[] = {"--db", db, "--tls-cert", c, "--tls-key", k, client_ca ? "--tls-client-ca" : NULL, ca, NULL};
    server_start(s, bin, args);
    CHECK(strncmp(s->url, "https://127.0.0.1:", 18) == 0);
}

/* The node by the name its certificates carry. */
static void by_name(char *out, size_t n, const test_server *s)
{
    snprintf(out, n, "https://localhost:%s", strrchr(s->url, ':') + 1);
}

static ef_client *open_client(const char *url, const char *ca, const char *cert, const char *key, bool insecure)
{
    ef_client_options o = {.url = url, .timeout_ms = 5000, .ca_file = ca, .cert_file = cert,
                           .key_file = key, .insecure = insecure};
    ef_client *c = NULL;
    CHECK_EQ_INT(ef_client_open(&o, &c), EF_OK);
    return c;
}

static void expect_works(ef_client *c)
{
    CHECK_EQ_INT(ef_client_wait(c, 0, 10000), EF_OK);
    ef_result r;
    CHECK_EQ_INT(ef_client_boolean(c, "tls-flag", "u1", NULL, 0, &r), EF_OK);
    CHECK(r.enabled);
    ef_result_release(&r);
    char text[600];
    CHECK_EQ_INT(ef_client_error_text(c, text, sizeof(text)), EF_OK);
    CHECK(text[0] == '\0');
    ef_client_close(c);
}

/* Refused: the status says err, the text names the node and contains each of the words. */
static void expect_refused(ef_client *c, const char *url, int err, const char *const *words)
{
    ef_status st;
    int64_t end = ef_clock_mono_ns() + 20000000000LL;
    do {
        sleep_ms(20);
        CHECK_EQ_INT(ef_client_status(c, &st), EF_OK);
        /* on a loaded machine an attempt may time out first (EF_ECONNECT): the client retries */
    } while (st.last_error != err && ef_clock_mono_ns() < end);
    CHECK_EQ_INT(st.last_error, err);
    CHECK(!st.connected);
    CHECK_EQ_INT(st.source, EF_SOURCE_NONE);
    ef_result r;
    CHECK_EQ_INT(ef_client_boolean(c, "tls-flag", "u1", NULL, 0, &r), EF_ENOSTATE);
    char text[600];
    CHECK_EQ_INT(ef_client_error_text(c, text, sizeof(text)), EF_OK);
    fprintf(stderr, "refused as expected: %s\n", text);
    CHECK(strstr(text, url) != NULL);
    for (int i = 0; words[i]; i++) {
        if (!strstr(text, words[i])) {
            fprintf(stderr, "missing \"%s\" in \"%s\"\n", words[i], text);
            exit(1);
        }
    }
    ef_client_close(c);
}

int main(int argc, char **argv)
{
    CHECK(argc == 4);
    bin = argv[1];
    temp_dir(dir, sizeof(dir));
    snprintf(db, sizeof(db), "%s/edgeflag.db", dir);
    char cmd[1024], pki_dir[96];
    snprintf(pki_dir, sizeof(pki_dir), "%s/pki", dir); /* inside dir: removed with it */
    CHECK(mkdir(pki_dir, 0700) == 0);
    snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s'", argv[2], argv[3], pki_dir);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    CHECK(fgets(pki, sizeof(pki), p) != NULL);
    CHECK(pclose(p) == 0);
    pki[strcspn(pki, "\n")] = '\0';
    char ca[320], other_ca[320], cert[320], key[320], ocert[320], okey[320];
    pki_file(ca, sizeof(ca), "ca.pem");
    pki_file(other_ca, sizeof(other_ca), "other-ca.pem");
    pki_file(cert, sizeof(cert), "client.pem");
    pki_file(key, sizeof(key), "client.key");
    pki_file(ocert, sizeof(ocert), "client-other.pem");
    pki_file(okey, sizeof(okey), "client-other.key");

    /* the data, written over plain HTTP into the database the HTTPS node then serves */
    test_server s;
    const char *plain[] = {"--db", db, NULL};
    server_start(&s, bin, plain);
    api(s.url, "POST", "/api/v1/flags", "{\"key\":\"tls-flag\",\"name\":\"t\",\"type\":\"BOOLEAN_FLAG_TYPE\",\"enabled\":true}",
        200, NULL, NULL, 0);
    server_stop(&s);

    char url[128];
    start_https(&s, "server", false);
    by_name(url, sizeof(url), &s);
    expect_works(open_client(url, ca, NULL, NULL, false));
    expect_refused(open_client(url, NULL, NULL, NULL, false), url, EF_ETLS,
                   (const char *const[]){"TLS with", "unable to get local issuer certificate", "not signed by a trusted CA", NULL});
    expect_refused(open_client(url, other_ca, NULL, NULL, false), url, EF_ETLS, (const char *const[]){"TLS with", NULL});
    expect_works(open_client(url, NULL, NULL, NULL, true)); /* insecure, named: accepted */
    server_stop(&s);

    start_https(&s, "wronghost", false);
    by_name(url, sizeof(url), &s);
    expect_refused(open_client(url, ca, NULL, NULL, false), url, EF_ETLS,
                   (const char *const[]){"no alternative certificate subject name matches target host name 'localhost'", "does not name this host", NULL});
    server_stop(&s);

    start_https(&s, "expired", false);
    by_name(url, sizeof(url), &s);
    expect_refused(open_client(url, ca, NULL, NULL, false), url, EF_ETLS,
                   (const char *const[]){"certificate has expired", "renew it", NULL});
    server_stop(&s);

    start_https(&s, "server", true); /* clients must present a certificate from the CA */
    by_name(url, sizeof(url), &s);
    expect_works(open_client(url, ca, cert, key, false));
    expect_refused(open_client(url, ca, ocert, okey, false), url, EF_ETLS,
                   (const char *const[]){"unknown ca", "refused this node's client certificate", NULL});
    expect_refused(open_client(url, ca, NULL, NULL, false), url, EF_EAUTH, (const char *const[]){"answered 401", NULL});
    server_stop(&s);

    /* bad options: refused at open, nothing started */
    ef_client_options o = {.url = url, .ca_file = ca, .cert_file = cert};
    ef_client *c = NULL;
    CHECK_EQ_INT(ef_client_open(&o, &c), EF_EINVAL);
    CHECK(c == NULL);
    char missing[340];
    snprintf(missing, sizeof(missing), "%s/none.pem", pki);
    o = (ef_client_options){.url = url, .ca_file = missing};
    CHECK_EQ_INT(ef_client_open(&o, &c), EF_EIO);
    CHECK(c == NULL);
    CHECK(strcmp(ef_strerror(EF_ETLS), "TLS with the node failed (its certificate was refused, or it refused ours)") == 0);
    fprintf(stderr, "test_client_tls: ok\n");
    return 0;
}
