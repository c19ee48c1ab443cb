/*
 * yaml_load.h - libyaml's yaml_parser_load with a depth limit, for the YAML that edgeflag reads
 * from files it may not trust (features.yml, a served directory's .flipt.yml).
 *
 * libyaml's scanner is quadratic in flow nesting (`[[[[...` of 200 KB takes 50 s), and
 * yaml_parser_load only returns once the whole document is built, so a reader that checks depth
 * afterwards has already paid. This builds the same yaml_document_t from the parser's events and
 * stops at the first node nested too deep, after a number of events bounded by the limit.
 */
#ifndef EF_STORE_YAML_LOAD_H
#define EF_STORE_YAML_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

typedef struct ef_yaml_cut {
    bool cut;           /* the document was cut short at a node deeper than the limit */
    yaml_mark_t mark;   /* where that node starts */
    size_t events;      /* parser events read by this call (tests bound it) */
} ef_yaml_cut;

/* Loads the next document of p's stream into doc, as yaml_parser_load does: same nodes, marks,
 * anchors and aliases, same errors (p->error, p->problem...), and a document without a root node
 * at the end of the stream. The root has depth 0; when a node has depth > max_depth, it is added
 * (a collection without its items), every open collection is closed with the items read so far,
 * and the call returns at once with cut->cut set: doc holds that partial document, which the
 * caller must refuse, and p must not be used for another document. Returns 1, or 0 on error (doc
 * is then empty). cut may be NULL. */
int ef_yaml_load(yaml_parser_t *p, yaml_document_t *doc, unsigned max_depth, ef_yaml_cut *cut);

#endif
