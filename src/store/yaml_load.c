/*
 * yaml_load.c - yaml_parser_load with a depth limit (yaml_load.h).
 *
 * It builds the document with libyaml's own document API, step for step as libyaml 0.2's loader
 * does (a node is added and its anchor registered when its first event arrives, aliases name the
 * anchored node), so the result and the errors are what yaml_parser_load gives. The difference:
 * the nesting is an explicit stack of at most max_depth + 1 open collections instead of C
 * recursion, and the first node deeper than that ends the load. libyaml's scanner looks ahead at
 * most 1024 characters for a simple key, so the input it has read when that happens is bounded
 * too, and the cost of a hostile document no longer grows with its length.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "store/yaml_load.h"

typedef struct anchor {
    char *name;
    int node;
    yaml_mark_t mark;
} anchor;

typedef struct open_coll {
    int node;
    int key; /* a map's key whose value has not started yet; 0 when none */
} open_coll;

typedef struct loader {
    yaml_parser_t *p;
    yaml_document_t *doc;
    unsigned max_depth;
    anchor *anchors;
    size_t nanchors, cap;
    open_coll *open; /* max_depth + 1 entries: a node deeper than that is never opened */
    size_t nopen;
    ef_yaml_cut *cut;
} loader;

enum { STEP_ERROR, STEP_MORE, STEP_DONE };

static int memory_error(loader *l)
{
    l->p->error = YAML_MEMORY_ERROR;
    return STEP_ERROR;
}

static yaml_node_t *node_at(loader *l, int index)
{
    return &l->doc->nodes.start[index - 1];
}

/* libyaml refuses an anchor defined twice in one document, with these words and marks. */
static int register_anchor(loader *l, int node, const yaml_char_t *name)
{
    if (!name) return STEP_MORE;
    yaml_mark_t mark = node_at(l, node)->start_mark;
    for (size_t i = 0; i < l->nanchors; i++)
        if (strcmp(l->anchors[i].name, (const char *)name) == 0) {
            l->p->error = YAML_COMPOSER_ERROR;
            l->p->context = "found duplicate anchor; first occurrence";
            l->p->context_mark = l->anchors[i].mark;
            l->p->problem = "second occurrence";
            l->p->problem_mark = mark;
            return STEP_ERROR;
        }
    if (l->nanchors == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        anchor *v = realloc(l->anchors, cap * sizeof(*v));
        if (!v) return memory_error(l);
        l->anchors = v;
        l->cap = cap;
    }
    char *copy = strdup((const char *)name);
    if (!copy) return memory_error(l);
    l->anchors[l->nanchors++] = (anchor){copy, node, mark};
    return STEP_MORE;
}

/* Puts a new node into the innermost open collection (the first node is the document's root). */
static int attach(loader *l, int node)
{
    if (l->nopen == 0) return STEP_MORE;
    open_coll *top = &l->open[l->nopen - 1];
    int ok;
    if (node_at(l, top->node)->type == YAML_SEQUENCE_NODE) {
        ok = yaml_document_append_sequence_item(l->doc, top->node, node);
    } else if (!top->key) {
        top->key = node;
        ok = 1;
    } else {
        ok = yaml_document_append_mapping_pair(l->doc, top->node, top->key, node);
        top->key = 0;
    }
    return ok ? STEP_MORE : memory_error(l);
}

/* Ends the load at a node nested too deep. A map whose key is still being read gets a null value,
 * so a reader walking the partial document meets that key, and the deep node in it. */
static int cut_here(loader *l, const yaml_event_t *ev)
{
    for (size_t i = 0; i < l->nopen; i++) {
        if (!l->open[i].key) continue;
        int null = yaml_document_add_scalar(l->doc, NULL, (const yaml_char_t *)"", 0, YAML_PLAIN_SCALAR_STYLE);
        if (!null || !yaml_document_append_mapping_pair(l->doc, l->open[i].node, l->open[i].key, null))
            return memory_error(l);
    }
    l->cut->cut = true;
    l->cut->mark = ev->start_mark;
    return STEP_DONE;
}

static const yaml_char_t *tag_of(const yaml_char_t *tag)
{
    return tag && strcmp((const char *)tag, "!") != 0 ? tag : NULL; /* NULL: the default tag */
}

/* A node's first event: scalar, alias, or the start of a collection. */
static int add_node(loader *l, const yaml_event_t *ev)
{
    int node = 0;
    const yaml_char_t *name = NULL;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        for (size_t i = 0; i < l->nanchors && !node; i++)
            if (strcmp(l->anchors[i].name, (const char *)ev->data.alias.anchor) == 0)
                node = l->anchors[i].node;
        if (!node) {
            l->p->error = YAML_COMPOSER_ERROR;
            l->p->problem = "found undefined alias";
            l->p->problem_mark = ev->start_mark;
            return STEP_ERROR;
        }
        break;
    case YAML_SCALAR_EVENT:
        if (ev->data.scalar.length > INT_MAX) return memory_error(l);
        node = yaml_document_add_scalar(l->doc, tag_of(ev->data.scalar.tag),
                                        ev->data.scalar.value, (int)ev->data.scalar.length,
                                        ev->data.scalar.style);
        name = ev->data.scalar.anchor;
        break;
    case YAML_SEQUENCE_START_EVENT:
        node = yaml_document_add_sequence(l->doc, tag_of(ev->data.sequence_start.tag),
                                          ev->data.sequence_start.style);
        name = ev->data.sequence_start.anchor;
        break;
    case YAML_MAPPING_START_EVENT:
        node = yaml_document_add_mapping(l->doc, tag_of(ev->data.mapping_start.tag),
                                         ev->data.mapping_start.style);
        name = ev->data.mapping_start.anchor;
        break;
    default: return STEP_ERROR; /* the parser gives nothing else here */
    }
    if (!node) return memory_error(l);
    if (ev->type != YAML_ALIAS_EVENT) {
        node_at(l, node)->start_mark = ev->start_mark;
        node_at(l, node)->end_mark = ev->end_mark;
    }
    if (register_anchor(l, node, name) == STEP_ERROR || attach(l, node) == STEP_ERROR)
        return STEP_ERROR;
    if (l->nopen > l->max_depth) return cut_here(l, ev);
    if (ev->type == YAML_SEQUENCE_START_EVENT || ev->type == YAML_MAPPING_START_EVENT)
        l->open[l->nopen++] = (open_coll){node, 0};
    return STEP_MORE;
}

static int step(loader *l, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_END_EVENT:
        l->doc->end_implicit = ev->data.document_end.implicit;
        l->doc->end_mark = ev->end_mark;
        return STEP_DONE;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (l->nopen == 0) return STEP_ERROR; /* the parser balances them */
        node_at(l, l->open[--l->nopen].node)->end_mark = ev->end_mark;
        return STEP_MORE;
    default: return add_node(l, ev);
    }
}

/* Reads events up to the document's end (or a cut); the DOCUMENT-START event is already read. */
static int load_nodes(loader *l)
{
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(l->p, &ev)) return 0;
        l->cut->events++;
        int rc = step(l, &ev);
        yaml_event_delete(&ev);
        if (rc == STEP_ERROR) {
            if (l->p->error == YAML_NO_ERROR) l->p->error = YAML_COMPOSER_ERROR;
            return 0;
        }
        if (rc == STEP_DONE) return 1;
    }
}

/* The next event is the end of the stream, or the start of a document (read into *ev). */
static int next_document(yaml_parser_t *p, yaml_event_t *ev, ef_yaml_cut *cut, bool *end)
{
    *end = true;
    if (!p->stream_start_produced) {
        if (!yaml_parser_parse(p, ev)) return 0;
        cut->events++;
        yaml_event_delete(ev); /* STREAM-START */
    }
    if (p->stream_end_produced) return 1;
    if (!yaml_parser_parse(p, ev)) return 0;
    cut->events++;
    *end = ev->type == YAML_STREAM_END_EVENT;
    if (*end) yaml_event_delete(ev);
    return 1;
}

int ef_yaml_load(yaml_parser_t *p, yaml_document_t *doc, unsigned max_depth, ef_yaml_cut *cut)
{
    ef_yaml_cut local;
    if (!cut) cut = &local;
    memset(cut, 0, sizeof(*cut));
    memset(doc, 0, sizeof(*doc));
    yaml_event_t ev;
    bool end;
    if (!next_document(p, &ev, cut, &end)) return 0;
    bool start_implicit = !end && ev.data.document_start.implicit;
    yaml_mark_t start_mark = ev.start_mark;
    if (!end) yaml_event_delete(&ev);
    if (!yaml_document_initialize(doc, NULL, NULL, NULL, start_implicit, 1)) {
        p->error = YAML_MEMORY_ERROR;
        return 0;
    }
    if (end) return 1; /* no root node: the end of the stream */
    doc->start_mark = start_mark;
    loader l = {.p = p, .doc = doc, .max_depth = max_depth, .cut = cut};
    l.open = malloc(((size_t)max_depth + 1) * sizeof(*l.open));
    int ok = l.open ? load_nodes(&l) : (p->error = YAML_MEMORY_ERROR, 0);
    for (size_t i = 0; i < l.nanchors; i++) free(l.anchors[i].name);
    free(l.anchors);
    free(l.open);
    if (!ok) yaml_document_delete(doc);
    return ok;
}
