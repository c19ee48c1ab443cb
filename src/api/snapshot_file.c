/*
 * snapshot_file.c - loading a snapshot document file (see snapshot_file.h). Every problem is
 * reported with the file and the position in it; nothing is published here.
 */
#include "api/snapshot_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"

ef_snapshot *ef_snapshot_read_file(const char *path, char *err, size_t errlen)
{
    char *data;
    size_t len;
    int rc = ef_file_read(path, EF_FILE_MAX_ANY, &data, &len);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", path, ef_file_strerror(rc));
        return NULL;
    }
    ef_arena a;
    ef_arena_init(&a, 1 << 16);
    ef_json_error je;
    ef_json *doc = ef_json_parse(data, len, &a, NULL, &je);
    ef_compile_error ce;
    ef_snapshot *snap = NULL;
    if (!doc) {
        snprintf(err, errlen, "%s:%u:%u: invalid JSON: %s", path, je.line, je.column, je.message);
    } else if (!(snap = ef_snapshot_compile(doc, &ce))) {
        unsigned line, col;
        ef_json_position(data, len, ce.offset, &line, &col);
        snprintf(err, errlen, "%s:%u:%u: invalid snapshot: %s", path, line, col, ce.message);
    } else if (ef_snapshot_attach_document(snap, data, len) != 0) {
        ef_snapshot_free(snap);
        snap = NULL;
        snprintf(err, errlen, "%s: out of memory", path);
    }
    ef_arena_free(&a);
    free(data);
    return snap;
}
