/*
 * event.c - Flipt's audit event filter and the event of one change-log entry (see audit.h). Pure
 * functions over bytes that come from the store (fuzzed: tests/fuzz/fuzz_audit.c); they must never
 * trust an entry's shape and never put a token hash into an event.
 */
#include <stdio.h>
#include <string.h>

#include "audit/audit.h"
#include "base/clock.h"
#include "store/entry.h"

static const char *const nouns[] = {"constraint", "distribution", "flag", "namespace", "rollout",
                                    "rule", "segment", "token", "variant"};
static const char *const verbs[] = {"created", "deleted", "updated"};
#define NNOUNS (sizeof(nouns) / sizeof(nouns[0]))
#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

static int word_index(const char *const *words, size_t n, ef_bytes w)
{
    for (size_t i = 0; i < n; i++)
        if (ef_bytes_eq(w, ef_bytes_of(words[i]))) return (int)i;
    return -1;
}

int ef_audit_filter_parse(const char *spec, ef_audit_filter *out, char *err, size_t errlen)
{
    out->bits = 0;
    for (const char *p = spec ? spec : "*:*"; *p;) {
        while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        size_t n = strcspn(p, ", \t\n");
        ef_bytes pair = {p, n};
        p += n;
        const char *colon = memchr(pair.p, ':', pair.n);
        if (!colon) {
            snprintf(err, errlen, "invalid event pair: %.*s", (int)(pair.n > 64 ? 64 : pair.n), pair.p);
            return -1;
        }
        ef_bytes noun = {pair.p, (size_t)(colon - pair.p)};
        ef_bytes verb = {colon + 1, pair.n - noun.n - 1};
        /* Flipt splits on every ':' and reads the first two parts */
        const char *c2 = memchr(verb.p, ':', verb.n);
        if (c2) verb.n = (size_t)(c2 - verb.p);
        bool all_n = ef_bytes_eq(noun, EF_BYTES_LIT("*")), all_v = ef_bytes_eq(verb, EF_BYTES_LIT("*"));
        int ni = all_n ? 0 : word_index(nouns, NNOUNS, noun);
        int vi = all_v ? 0 : word_index(verbs, NVERBS, verb);
        if (ni < 0) {
            snprintf(err, errlen, "invalid noun: %.*s", (int)(noun.n > 64 ? 64 : noun.n), noun.p);
            return -1;
        }
        if (vi < 0) {
            snprintf(err, errlen, "invalid verb: %.*s", (int)(verb.n > 64 ? 64 : verb.n), verb.p);
            return -1;
        }
        for (size_t i = all_n ? 0 : (size_t)ni; i < (all_n ? NNOUNS : (size_t)ni + 1); i++)
            for (size_t j = all_v ? 0 : (size_t)vi; j < (all_v ? NVERBS : (size_t)vi + 1); j++) {
                uint32_t bit = 1u << (i * NVERBS + j);
                if (out->bits & bit) {
                    snprintf(err, errlen, "repeated event pair: %s:%s", nouns[i], verbs[j]);
                    return -1;
                }
                out->bits |= bit;
            }
    }
    if (!out->bits) {
        snprintf(err, errlen, "no event pairs exist");
        return -1;
    }
    return 0;
}

bool ef_audit_filter_check(const ef_audit_filter *f, ef_bytes type, ef_bytes action)
{
    int ni = word_index(nouns, NNOUNS, type), vi = word_index(verbs, NVERBS, action);
    return ni >= 0 && vi >= 0 && (f->bits & (1u << (ni * NVERBS + vi)));
}

/* A row as the event's payload: the stored columns, with Flipt's booleans as booleans. */
static void put_payload(ef_buf *out, const ef_json *row)
{
    if (!row || row->type != EF_JSON_OBJECT) {
        ef_buf_puts(out, "null");
        return;
    }
    static const char *const bools[] = {"enabled", "protected", "value"};
    bool first = true;
    ef_buf_putc(out, '{');
    for (const ef_json *c = row->child; c; c = c->next) {
        if (ef_bytes_eq(c->key, EF_BYTES_LIT("hashed_token"))) continue;
        if (!first) ef_buf_putc(out, ',');
        first = false;
        ef_json_put_str(out, c->key);
        ef_buf_putc(out, ':');
        bool is_bool = false;
        for (size_t i = 0; i < 3; i++) is_bool |= ef_bytes_eq(c->key, ef_bytes_of(bools[i]));
        if (is_bool && c->type == EF_JSON_NUMBER && (ef_bytes_eq(c->str, EF_BYTES_LIT("0")) || ef_bytes_eq(c->str, EF_BYTES_LIT("1"))))
            ef_buf_puts(out, c->str.p[0] == '1' ? "true" : "false");
        else
            ef_entry_put_row(out, c);
    }
    ef_buf_putc(out, '}');
}

int ef_audit_event_json(const char *entry, size_t len, const ef_audit_filter *f, const char *history,
                        ef_arena *a, ef_buf *out, char key[EF_AUDIT_KEY_MAX], char *err, size_t errlen)
{
    ef_entry e;
    if (ef_entry_parse(entry, len, a, &e, err, errlen) != 0) return -1;
    if (!e.nchanges || !ef_audit_filter_check(f, e.type, e.action)) return 0;
    snprintf(key, EF_AUDIT_KEY_MAX, "%.64s:%llu", history && *history ? history : "-",
             (unsigned long long)e.seq);
    const ef_entry_change *p = &e.changes[e.principal];
    /* Flipt's timestamp: RFC 3339 to the second */
    char ts[EF_RFC3339_MAX];
    ef_rfc3339_format(e.time_ns - e.time_ns % 1000000000LL, ts);
    ef_buf_puts(out, "{\"version\":\"0.2\",\"type\":");
    ef_json_put_str(out, e.type);
    ef_buf_puts(out, ",\"action\":");
    ef_json_put_str(out, e.action);
    ef_buf_puts(out, ",\"metadata\":{\"actor\":{");
    bool first = true;
    ef_bytes method = ef_entry_str(e.actor, "method");
    ef_json_put_member_opt(out, "authentication", method.n ? method : EF_BYTES_LIT("none"), &first);
    ef_json_put_member_opt(out, "ip", ef_entry_str(e.actor, "ip"), &first);
    ef_json_put_member_opt(out, "email", ef_entry_str(e.actor, "email"), &first);
    ef_json_put_member_opt(out, "name", ef_entry_str(e.actor, "name"), &first);
    ef_buf_puts(out, "},\"edgeflag\":{");
    first = true;
    ef_json_put_member_opt(out, "key", ef_bytes_of(key), &first);
    ef_buf_printf(out, ",\"seq\":%llu", (unsigned long long)e.seq);
    ef_json_put_member_opt(out, "actor_id", ef_entry_str(e.actor, "id"), &first);
    ef_json_put_member_opt(out, "via", e.via, &first);
    ef_buf_puts(out, "}},\"payload\":");
    put_payload(out, p->del ? (p->old ? p->old : p->pk) : p->row);
    ef_buf_printf(out, ",\"timestamp\":\"%s\",\"status\":\"success\"}", ts);
    return 1;
}
