/*
 * fuzz_audit.c - libFuzzer target: reading change-log entries (src/store/entry.c) into history
 * matches and Flipt audit events (src/audit/event.c), and the audit.events filter. Entries come
 * from disk and from an upstream. Must never crash or read out of bounds; an event it writes must
 * be valid JSON and never carry a token hash; a filter it accepts must accept something.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "base/json.h"
#include "store/entry.h"

/* Whether a member named exactly hashed_token is anywhere in v. */
static int has_hash(const ef_json *v)
{
    for (const ef_json *c = v->child; c; c = c->next) {
        if (c->key.n == 12 && !memcmp(c->key.p, "hashed_token", 12)) return 1;
        if (has_hash(c)) return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char err[160];
    ef_audit_filter f;
    if (ef_audit_filter_parse(text, &f, err, sizeof(err)) == 0 && f.bits == 0) abort();
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_entry e;
    if (ef_entry_parse(text, size, &a, &e, err, sizeof(err)) == 0) {
        (void)ef_entry_about_flag(&e, EF_BYTES_LIT("default"), EF_BYTES_LIT("f"));
        uint64_t v;
        (void)ef_entry_in_namespace(&e, EF_BYTES_LIT("default"), &v);
        if (e.nchanges && e.principal >= e.nchanges) abort();
    }
    ef_audit_filter all;
    if (ef_audit_filter_parse("*:*", &all, err, sizeof(err)) != 0) abort();
    ef_buf out;
    ef_buf_init(&out);
    char key[EF_AUDIT_KEY_MAX];
    if (ef_audit_event_json(text, size, &all, "h", &a, &out, key, err, sizeof(err)) == 1 && ef_buf_ok(&out)) {
        ef_json_error je;
        const ef_json *ev = ef_json_parse(out.data, out.len, &a, NULL, &je);
        if (!ev || has_hash(ev)) abort();
    }
    ef_buf_free(&out);
    ef_arena_free(&a);
    free(text);
    return 0;
}
