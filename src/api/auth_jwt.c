/*
 * auth_jwt.c - Flipt's `jwt` authentication method over jwt.c and jwks.c: turns a verified token
 * into the identity every method shares (auth_int.h). It must never accept a token whose
 * signature, algorithm or claims were not checked, never wait on the network (jwks.c refreshes in
 * the background) and never log a token.
 */
#include "api/auth_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_in.h"
#include "api/jwt.h"
#include "base/clock.h"
#include "base/log.h"
#include "eval/model.h"

#define MAX_AUDIENCES 32

struct ef_auth_jwt {
    ef_jwks *keys;
    char *issuer, *subject;
    char *aud[MAX_AUDIENCES];
    size_t n_aud;
};

void ef_auth_jwt_free(ef_auth_jwt *j)
{
    if (!j) return;
    ef_jwks_free(j->keys);
    free(j->issuer);
    free(j->subject);
    for (size_t i = 0; i < j->n_aud; i++) free(j->aud[i]);
    free(j);
}

static bool dup_opt(char **dst, const char *src)
{
    if (!src || !*src) return true;
    return (*dst = strdup(src)) != NULL;
}

ef_auth_jwt *ef_auth_jwt_new(const ef_auth_jwt_config *c, char *err, size_t errlen)
{
    ef_auth_jwt *j = calloc(1, sizeof(*j));
    if (!j || !dup_opt(&j->issuer, c->issuer) || !dup_opt(&j->subject, c->subject)) {
        snprintf(err, errlen, "out of memory");
        ef_auth_jwt_free(j);
        return NULL;
    }
    for (const char *p = c->audiences ? c->audiences : ""; *p;) {
        size_t skip = strspn(p, ", \t"), n;
        p += skip;
        if (!*p) break;
        n = strcspn(p, ", \t");
        if (j->n_aud == MAX_AUDIENCES) {
            snprintf(err, errlen, "jwt: more than %d audiences", MAX_AUDIENCES);
            ef_auth_jwt_free(j);
            return NULL;
        }
        if (!(j->aud[j->n_aud] = strndup(p, n))) {
            snprintf(err, errlen, "out of memory");
            ef_auth_jwt_free(j);
            return NULL;
        }
        j->n_aud++;
        p += n;
    }
    if (!(j->keys = ef_jwks_new(&c->keys, err, errlen))) {
        ef_auth_jwt_free(j);
        return NULL;
    }
    return j;
}

bool ef_auth_looks_like_jwt(const char *token)
{
    int dots = 0;
    for (const char *p = token; *p; p++) dots += *p == '.';
    return dots == 2;
}

/* Flipt reads a person's details from the claim "user" ({email, sub, image, name, role}); ID
 * tokens and most providers put name and email at the top level, which is the fallback here. */
static ef_bytes person_claim(const ef_json *claims, const char *name)
{
    const ef_json *user = ef_json_get(claims, "user");
    ef_bytes v = user && user->type == EF_JSON_OBJECT ? ef_jwt_claim_str(user, name) : (ef_bytes){"", 0};
    return v.n ? v : ef_jwt_claim_str(claims, name);
}

bool ef_auth_jwt_check(ef_auth_jwt *j, const char *token, ef_arena *arena, const ef_auth_identity **out)
{
    ef_jwt t;
    char why[160] = "";
    ef_jwt_status st = ef_jwt_parse(token, strlen(token), arena, &t, why, sizeof(why));
    if (st == EF_JWT_OK) st = ef_jwks_verify(j->keys, &t, why, sizeof(why));
    ef_jwt_expect x = {.issuer = j->issuer, .subject = j->subject, .audiences = j->aud, .n_audiences = j->n_aud};
    if (st == EF_JWT_OK) st = ef_jwt_check_claims(&t, &x, ef_clock_wall_ns() / 1000000000LL, why, sizeof(why));
    if (st != EF_JWT_OK) {
        /* debug only: a flood of bad tokens must not become a flood of log lines */
        ef_log(EF_LOG_DEBUG, "unauthenticated", "method", "jwt", "reason", why, NULL);
        return false;
    }
    const ef_json *nsv = ef_json_get(t.claims, "io.flipt.auth.token.namespace");
    if (nsv && nsv->type != EF_JSON_STRING) {
        ef_log(EF_LOG_DEBUG, "unauthenticated", "method", "jwt", "reason",
               "io.flipt.auth.token.namespace is not a string", NULL);
        return false;
    }
    ef_auth_identity *id = ef_arena_calloc(arena, sizeof(*id));
    if (!id) return false;
    id->method = EF_AUTH_JWT;
    id->id = ef_jwt_claim_str(t.claims, "sub");
    id->name = person_claim(t.claims, "name");
    id->email = person_claim(t.claims, "email");
    if (nsv) { /* trimmed, as Flipt trims a token's namespace; empty means every namespace */
        ef_bytes ns = nsv->str;
        while (ns.n && (ns.p[0] == ' ' || ns.p[0] == '\t')) ns.p++, ns.n--;
        while (ns.n && (ns.p[ns.n - 1] == ' ' || ns.p[ns.n - 1] == '\t')) ns.n--;
        id->ns = ns;
    }
    id->claims = t.claims;
    const ef_json *exp = ef_json_get(t.claims, "exp");
    if (exp && exp->type == EF_JSON_NUMBER) id->expires_s = (int64_t)exp->num;
    *out = id;
    return true;
}

static void put_meta(ef_buf *out, bool *first, const char *key, ef_bytes v)
{
    if (!*first) ef_buf_putc(out, ',');
    *first = false;
    ef_json_put_cstr(out, key);
    ef_buf_putc(out, ':');
    ef_json_put_str(out, v);
}

/* A claim's value as Flipt prints it into metadata (fmt "%v"): strings as they are, other JSON as
 * its compact text. */
static ef_bytes claim_text(const ef_json *v, ef_buf *tmp)
{
    if (v->type == EF_JSON_STRING) return v->str;
    if (v->type == EF_JSON_NUMBER) return v->str;
    if (v->type == EF_JSON_TRUE) return EF_BYTES_LIT("true");
    if (v->type == EF_JSON_FALSE) return EF_BYTES_LIT("false");
    if (v->type == EF_JSON_NULL) return EF_BYTES_LIT("<nil>");
    ef_buf_clear(tmp);
    ef_jin_write_compact(tmp, v);
    return (ef_bytes){tmp->data ? tmp->data : "", tmp->len};
}

void ef_auth_jwt_put_self(ef_buf *out, const ef_auth_identity *id)
{
    char ts[EF_RFC3339_MAX];
    ef_buf_puts(out, "{\"id\":\"\",\"method\":\"METHOD_JWT\",\"expiresAt\":");
    if (id->expires_s > 0 && id->expires_s < 253402300800LL) {
        ef_rfc3339_format(id->expires_s * 1000000000LL, ts);
        ef_buf_printf(out, "\"%s\"", ts);
    } else {
        ef_buf_puts(out, "null");
    }
    ef_buf_puts(out, ",\"createdAt\":null,\"updatedAt\":null,\"metadata\":{");
    bool first = true;
    ef_buf tmp;
    ef_buf_init(&tmp);
    /* Flipt's metadata: io.flipt.auth.* claims as they are, iss as io.flipt.auth.jwt.issuer, and
     * the fields of the "user" claim as io.flipt.auth.jwt.{email,sub,picture,name,role} */
    for (const ef_json *c = id->claims ? id->claims->child : NULL; c; c = c->next) {
        if (ef_bytes_has_prefix(c->key, EF_BYTES_LIT("io.flipt.auth"))) {
            char key[256];
            snprintf(key, sizeof(key), "%.*s", (int)(c->key.n > 200 ? 200 : c->key.n), c->key.p);
            put_meta(out, &first, key, claim_text(c, &tmp));
        } else if (ef_bytes_eq(c->key, EF_BYTES_LIT("iss")) && c->type == EF_JSON_STRING) {
            put_meta(out, &first, "io.flipt.auth.jwt.issuer", c->str);
        } else if (ef_bytes_eq(c->key, EF_BYTES_LIT("user")) && c->type == EF_JSON_OBJECT) {
            static const char *const map[][2] = {
                {"email", "io.flipt.auth.jwt.email"}, {"sub", "io.flipt.auth.jwt.sub"},
                {"image", "io.flipt.auth.jwt.picture"}, {"name", "io.flipt.auth.jwt.name"},
                {"role", "io.flipt.auth.jwt.role"},
            };
            for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
                const ef_json *v = ef_json_get(c, map[i][0]);
                if (v) put_meta(out, &first, map[i][1], claim_text(v, &tmp));
            }
        }
    }
    ef_buf_free(&tmp);
    ef_buf_puts(out, "}}");
}
