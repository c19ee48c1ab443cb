/*
 * tally.c - gives a compiled flag the place its evaluations are counted (ef_tally, eval.h): the
 * flag's distinct variant keys, an index for each (kept in the distributions and the default),
 * and counter slots that a counter table fills in when the flag is published.
 *
 * It runs once per compiled flag, never on the evaluation path. It must never read or write a
 * counter: what a slot number means is the counter table's business (api/eval_activity.c).
 */
#include <string.h>

#include "eval/model.h"

/* A flag with more distinct variant keys than this counts the rest on the slow path. */
#define TALLY_MAX_VARIANTS 256

/* The index of key in keys[0..*n), added when new and there is room; EF_TALLY_NO_VARIANT else. */
static uint16_t intern(ef_bytes *keys, uint32_t *n, ef_bytes key)
{
    for (uint32_t i = 0; i < *n; i++)
        if (ef_bytes_eq(keys[i], key)) return (uint16_t)i;
    if (*n == TALLY_MAX_VARIANTS) return EF_TALLY_NO_VARIANT;
    keys[*n] = key;
    return (uint16_t)(*n)++;
}

bool ef_flag_tally_prepare(ef_arena *a, ef_flag *f)
{
    uint32_t most = f->has_default ? 1 : 0;
    for (uint32_t r = 0; r < f->nrules; r++) most += f->rules[r].ndist;
    if (most > TALLY_MAX_VARIANTS) most = TALLY_MAX_VARIANTS;
    ef_bytes *keys = most ? ef_arena_alloc(a, most * sizeof(*keys)) : NULL;
    if (most && !keys) return false;
    uint32_t n = 0;
    f->default_vidx = f->has_default ? intern(keys, &n, f->default_key) : EF_TALLY_NO_VARIANT;
    for (uint32_t r = 0; r < f->nrules; r++) {
        /* the rules are this flag's own, not yet shared with any reader */
        ef_distribution *d = (ef_distribution *)f->rules[r].dist;
        for (uint32_t i = 0; i < f->rules[r].ndist; i++) d[i].vidx = intern(keys, &n, d[i].variant_key);
    }
    ef_tally *t = ef_arena_calloc(a, sizeof(*t) + (EF_TALLY_FIXED + n) * sizeof(t->slot[0]));
    if (!t) return false;
    t->nvariants = n;
    t->variants = keys;
    f->tally = t;
    return true;
}
