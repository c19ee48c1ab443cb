/*
 * test_yaml_load.c - the depth-limited YAML loader (src/store/yaml_load.c): on every document it
 * builds what libyaml's yaml_parser_load builds (nodes, values, styles, tags, marks, aliases) and
 * fails with the same error, and on a deeply nested 1 MB document it stops after a bounded number
 * of events, having scanned only the first few KB, instead of paying libyaml's quadratic scan.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store/yaml_load.h"

static void same_mark(const char *what, yaml_mark_t a, yaml_mark_t b)
{
    if (a.index != b.index || a.line != b.line || a.column != b.column)
        fail_msg("%s: mark %zu:%zu@%zu, libyaml %zu:%zu@%zu", what, a.line, a.column, a.index, b.line,
                 b.column, b.index);
}

static void same_doc(yaml_document_t *a, yaml_document_t *b)
{
    long na = a->nodes.top - a->nodes.start, nb = b->nodes.top - b->nodes.start;
    assert_int_equal(na, nb);
    for (long i = 0; i < na; i++) {
        yaml_node_t *x = &a->nodes.start[i], *y = &b->nodes.start[i];
        assert_int_equal(x->type, y->type);
        assert_string_equal((const char *)x->tag, (const char *)y->tag);
        same_mark("start", x->start_mark, y->start_mark);
        same_mark("end", x->end_mark, y->end_mark);
        if (x->type == YAML_SCALAR_NODE) {
            assert_int_equal(x->data.scalar.length, y->data.scalar.length);
            assert_memory_equal(x->data.scalar.value, y->data.scalar.value, x->data.scalar.length);
            assert_int_equal(x->data.scalar.style, y->data.scalar.style);
        } else if (x->type == YAML_SEQUENCE_NODE) {
            long n = x->data.sequence.items.top - x->data.sequence.items.start;
            assert_int_equal(n, y->data.sequence.items.top - y->data.sequence.items.start);
            assert_memory_equal(x->data.sequence.items.start, y->data.sequence.items.start,
                                n * sizeof(yaml_node_item_t));
            assert_int_equal(x->data.sequence.style, y->data.sequence.style);
        } else {
            long n = x->data.mapping.pairs.top - x->data.mapping.pairs.start;
            assert_int_equal(n, y->data.mapping.pairs.top - y->data.mapping.pairs.start);
            for (long k = 0; k < n; k++) {
                assert_int_equal(x->data.mapping.pairs.start[k].key, y->data.mapping.pairs.start[k].key);
                assert_int_equal(x->data.mapping.pairs.start[k].value, y->data.mapping.pairs.start[k].value);
            }
            assert_int_equal(x->data.mapping.style, y->data.mapping.style);
        }
    }
    same_mark("document start", a->start_mark, b->start_mark);
    same_mark("document end", a->end_mark, b->end_mark);
    assert_int_equal(a->end_implicit, b->end_implicit);
}

/* Loads every document of text both ways, until the end of the stream or the first error. */
static void same_as_libyaml(const char *text)
{
    yaml_parser_t p, q;
    assert_true(yaml_parser_initialize(&p));
    assert_true(yaml_parser_initialize(&q));
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    yaml_parser_set_input_string(&q, (const unsigned char *)text, strlen(text));
    for (int docs = 0;; docs++) {
        yaml_document_t a, b;
        ef_yaml_cut cut;
        int ra = ef_yaml_load(&p, &a, 64, &cut), rb = yaml_parser_load(&q, &b);
        if (ra != rb) fail_msg("%s: document %d: loaded %d, libyaml %d", text, docs, ra, rb);
        assert_false(cut.cut);
        if (!ra) {
            assert_int_equal(p.error, q.error);
            assert_string_equal(p.problem, q.problem);
            assert_string_equal(p.context ? p.context : "", q.context ? q.context : "");
            same_mark("problem", p.problem_mark, q.problem_mark);
            break;
        }
        bool end = yaml_document_get_root_node(&b) == NULL;
        assert_int_equal(yaml_document_get_root_node(&a) == NULL, end);
        if (!end) same_doc(&a, &b);
        yaml_document_delete(&a);
        yaml_document_delete(&b);
        if (end) break;
    }
    yaml_parser_delete(&p);
    yaml_parser_delete(&q);
}

static void test_same_as_libyaml(void **state)
{
    static const char *const texts[] = {
        "",
        "# only a comment\n",
        "---\n",
        "a: 1\n",
        "version: \"1.4\"\nnamespace: {key: x, name: 'X'}\nflags:\n  - key: f\n    name: F\n"
        "    metadata: {a: [1, 2.5, true, null, ~], \"b\": |\n      text\n    }\n",
        "--- a\n--- [b, c]\n...\n--- {d: e}\n",
        "%YAML 1.1\n%TAG !e! tag:example.com,2000:\n--- !e!thing\n!!str 12: !local [x]\n",
        "a: &x [1, {b: c}]\nb: *x\nc: &y d\ne: [*y, *x]\n",
        "a: &x [*x]\n",
        "? [complex, key]\n: value\n? {k: v}\n",
        "- - - - deep block\n    - x\n- >\n  folded\n",
        "a: \"\\0\\x80\\u263A\"\nb: 'it''s'\n",
        "a: &x 1\nb: &x 2\n",        /* duplicate anchor */
        "a: *nope\n",               /* undefined alias */
        "a: [1, 2\nb: 3\n",         /* syntax error */
        "a: 1\n--- [\n",            /* syntax error in the second document */
        "a: 1\n---\nb: *nope\n",    /* anchors do not cross documents */
        "a: b: c\n",
        "\t- tab\n",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) same_as_libyaml(texts[i]);
}

/* prefix, then n copies of open, then n copies of close. */
static char *nested(const char *prefix, const char *open, const char *close, size_t n, size_t *len)
{
    size_t lp = strlen(prefix), lo = strlen(open), lc = strlen(close);
    *len = lp + n * (lo + lc);
    char *s = malloc(*len + 1);
    assert_non_null(s);
    memcpy(s, prefix, lp);
    for (size_t i = 0; i < n; i++) memcpy(s + lp + i * lo, open, lo);
    for (size_t i = 0; i < n; i++) memcpy(s + lp + n * lo + i * lc, close, lc);
    s[*len] = '\0';
    return s;
}

/* A 1 MB document nested 250,000 deep: yaml_parser_load takes minutes on it (libyaml's scanner is
 * quadratic in flow nesting). The bounded load stops at depth 65 having read under 200 events
 * and scanned under 4 KB: neither number depends on the document's length. */
static void check_cut(const char *prefix, const char *open, const char *close, size_t n,
                      size_t want_line, size_t want_column)
{
    size_t len;
    char *s = nested(prefix, open, close, n, &len);
    assert_true(len >= 1000000);
    yaml_parser_t p;
    assert_true(yaml_parser_initialize(&p));
    yaml_parser_set_input_string(&p, (const unsigned char *)s, len);
    yaml_document_t doc;
    ef_yaml_cut cut;
    assert_int_equal(ef_yaml_load(&p, &doc, 64, &cut), 1);
    assert_true(cut.cut);
    assert_int_equal(cut.mark.line, want_line);
    assert_int_equal(cut.mark.column, want_column);
    if (cut.events >= 200) fail_msg("%zu events before the cut", cut.events);
    if (p.mark.index >= 4096) fail_msg("scanned %zu bytes before the cut", p.mark.index);
    /* the partial document holds the deep node, 65 levels below the root: a reader meets it */
    yaml_node_t *node = yaml_document_get_root_node(&doc);
    int depth = 0;
    while (node->start_mark.index != cut.mark.index) {
        int next = 0;
        if (node->type == YAML_SEQUENCE_NODE) {
            assert_true(node->data.sequence.items.top > node->data.sequence.items.start);
            next = node->data.sequence.items.top[-1];
        } else {
            assert_int_equal(node->type, YAML_MAPPING_NODE);
            assert_true(node->data.mapping.pairs.top > node->data.mapping.pairs.start);
            yaml_node_pair_t last = node->data.mapping.pairs.top[-1];
            yaml_node_t *key = yaml_document_get_node(&doc, last.key);
            next = key->type != YAML_SCALAR_NODE || key->start_mark.index == cut.mark.index
                       ? last.key : last.value;
        }
        node = yaml_document_get_node(&doc, next);
        depth++;
    }
    assert_int_equal(depth, 65);
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    free(s);
}

static void test_deep_flow_is_cut(void **state)
{
    check_cut("a: ", "[", "]", 500000, 0, 3 + 64);
    check_cut("", "[", "]", 500000, 0, 65); /* the root is depth 0 */
    check_cut("", "{a: ", "}", 200000, 0, 64 * 4 + 1); /* the key `a` of depth 64's map */
    check_cut("? ", "[", "]", 500000, 0, 2 + 64); /* inside a key: the map gets a null value */
}

/* Nesting up to the limit loads whole, as libyaml loads it. */
static void test_limit_is_inclusive(void **state)
{
    size_t len;
    char *s = nested("", "[", "]", 65, &len); /* depths 0..64 */
    same_as_libyaml(s);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_libyaml),
        cmocka_unit_test(test_deep_flow_is_cut),
        cmocka_unit_test(test_limit_is_inclusive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
