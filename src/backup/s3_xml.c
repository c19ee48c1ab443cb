/*
 * s3_xml.c - reads the two XML answers the S3 client needs: ListObjectsV2 (ListBucketResult) and
 * error answers (<Error><Code>…<Message>…). Not a general XML parser: it finds elements by their
 * exact tags in order and decodes the five predefined entities and numeric character references,
 * which is all S3 puts in these answers.
 *
 * The answer comes from the network: every scan is bounded by len, a value longer than its buffer
 * or with a bad reference is an error (never truncated into another key), and nothing is
 * allocated. Fuzzed by tests/fuzz/fuzz_backup.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/s3.h"

static const char *find(const char *p, const char *end, const char *s)
{
    size_t n = strlen(s);
    if (p >= end || (size_t)(end - p) < n) return NULL;
    return memmem(p, (size_t)(end - p), s, n);
}

/* The content of the next <tag>…</tag> in [*p, end) (not nested), *p moved past it. */
static bool elem(const char **p, const char *end, const char *tag, ef_bytes *out)
{
    char open[64], close[64];
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    const char *a = find(*p, end, open);
    if (!a) return false;
    a += strlen(open);
    const char *b = find(a, end, close);
    if (!b) return false;
    *out = (ef_bytes){a, (size_t)(b - a)};
    *p = b + strlen(close);
    return true;
}

static size_t put_utf8(unsigned long cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes XML text into out (NUL-terminated). False when it does not fit or a reference is bad. */
static bool decode(ef_bytes in, char *out, size_t cap, size_t *outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < in.n;) {
        char c = in.p[i];
        char tmp[4];
        size_t tn = 1;
        if (c == '<') return false; /* markup inside a value: not an answer this reads */
        if (c != '&') {
            tmp[0] = c;
            i++;
        } else {
            const char *semi = memchr(in.p + i, ';', in.n - i < 12 ? in.n - i : 12);
            if (!semi) return false;
            ef_bytes ent = {in.p + i + 1, (size_t)(semi - (in.p + i + 1))};
            if (ef_bytes_eq(ent, EF_BYTES_LIT("amp")))
                tmp[0] = '&';
            else if (ef_bytes_eq(ent, EF_BYTES_LIT("lt")))
                tmp[0] = '<';
            else if (ef_bytes_eq(ent, EF_BYTES_LIT("gt")))
                tmp[0] = '>';
            else if (ef_bytes_eq(ent, EF_BYTES_LIT("quot")))
                tmp[0] = '"';
            else if (ef_bytes_eq(ent, EF_BYTES_LIT("apos")))
                tmp[0] = '\'';
            else if (ent.n >= 2 && ent.p[0] == '#') {
                bool hexa = ent.p[1] == 'x' || ent.p[1] == 'X';
                size_t k = hexa ? 2 : 1;
                if (k >= ent.n) return false;
                unsigned long cp = 0;
                for (; k < ent.n; k++) {
                    char d = ent.p[k];
                    int v = d >= '0' && d <= '9'                 ? d - '0'
                            : hexa && d >= 'a' && d <= 'f' ? d - 'a' + 10
                            : hexa && d >= 'A' && d <= 'F' ? d - 'A' + 10
                                                           : -1;
                    if (v < 0) return false;
                    cp = cp * (hexa ? 16 : 10) + (unsigned long)v;
                    if (cp > 0x10ffff) return false;
                }
                if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff)) return false;
                tn = put_utf8(cp, tmp);
            } else {
                return false;
            }
            i += ent.n + 2;
        }
        if (o + tn >= cap) return false;
        memcpy(out + o, tmp, tn);
        o += tn;
    }
    out[o] = '\0';
    if (outlen) *outlen = o;
    return true;
}

int ef_s3_xml_list(const char *xml, size_t len, ef_s3_key_fn fn, void *ctx, ef_s3_list_page *page,
                   char *err, size_t errlen)
{
    const char *p = xml, *end = xml + len;
    memset(page, 0, sizeof(*page));
    const char *root = find(p, end, "<ListBucketResult");
    if (!root) {
        snprintf(err, errlen, "the listing is not a ListBucketResult");
        return -1;
    }
    p = root;
    /* The document must end: an answer delimited by the connection closing (no Content-Length,
     * no chunking) reaches us without a transfer error when the connection is cut, and a listing
     * cut short would read as a complete one without its last names (the newest history, the
     * newest batches: restore would silently pick an older state). Nothing past the end is read. */
    const char *close = find(p, end, "</ListBucketResult>");
    if (!close) {
        snprintf(err, errlen, "the listing is cut short (no </ListBucketResult>)");
        return -1;
    }
    end = close;
    ef_bytes v;
    const char *q = p;
    if (elem(&q, end, "IsTruncated", &v)) page->truncated = ef_bytes_eq(v, EF_BYTES_LIT("true"));
    q = p;
    if (elem(&q, end, "NextContinuationToken", &v) &&
        !decode(v, page->next_token, sizeof(page->next_token), NULL)) {
        snprintf(err, errlen, "the listing has a bad NextContinuationToken");
        return -1;
    }
    if (page->truncated && !page->next_token[0]) {
        snprintf(err, errlen, "the listing is truncated but has no NextContinuationToken");
        return -1;
    }
    ef_bytes c;
    while (elem(&p, end, "Contents", &c)) {
        const char *cp = c.p, *ce = c.p + c.n;
        ef_bytes k, sz;
        char key[1025];
        size_t kn;
        if (!elem(&cp, ce, "Key", &k) || !decode(k, key, sizeof(key), &kn) || kn == 0) {
            snprintf(err, errlen, "the listing has an entry without a usable Key");
            return -1;
        }
        uint64_t size = 0;
        cp = c.p;
        if (elem(&cp, ce, "Size", &sz)) {
            if (sz.n == 0 || sz.n > 19) {
                snprintf(err, errlen, "the listing has a bad Size");
                return -1;
            }
            for (size_t i = 0; i < sz.n; i++) {
                if (sz.p[i] < '0' || sz.p[i] > '9') {
                    snprintf(err, errlen, "the listing has a bad Size");
                    return -1;
                }
                size = size * 10 + (uint64_t)(sz.p[i] - '0');
            }
        }
        int rc = fn ? fn(ctx, (ef_bytes){key, kn}, size) : 0;
        if (rc) return rc;
    }
    return 0;
}

void ef_s3_xml_error(const char *xml, size_t len, char *code, size_t codelen, char *msg,
                     size_t msglen)
{
    const char *p = xml, *end = xml + len;
    ef_bytes v;
    if (codelen) code[0] = '\0';
    if (msglen) msg[0] = '\0';
    const char *q = p;
    if (codelen && elem(&q, end, "Code", &v) && !decode(v, code, codelen, NULL)) code[0] = '\0';
    q = p;
    if (msglen && elem(&q, end, "Message", &v) && !decode(v, msg, msglen, NULL)) {
        /* a long message is cut (decoding never makes text longer), before any reference the cut
         * would split; a bad one is dropped */
        if (v.n >= msglen) {
            v.n = msglen - 1;
            const char *amp = memrchr(v.p, '&', v.n);
            if (amp && (size_t)(v.p + v.n - amp) < 12 && !memchr(amp, ';', (size_t)(v.p + v.n - amp)))
                v.n = (size_t)(amp - v.p);
        }
        if (!decode(v, msg, msglen, NULL)) msg[0] = '\0';
    }
}
