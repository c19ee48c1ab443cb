/*
 * snapshot_file.h - a Flipt snapshot document file, read, compiled and with its document attached
 * (what `edgeflag eval --snapshot`, `edgeflag serve --snapshot` and the benchmarks load).
 */
#ifndef EF_API_SNAPSHOT_FILE_H
#define EF_API_SNAPSHOT_FILE_H

#include <stddef.h>

#include "eval/eval.h"

/* Returns the compiled snapshot, or NULL with "FILE:LINE:COLUMN: what" (or "FILE: errno text")
 * in err. */
ef_snapshot *ef_snapshot_read_file(const char *path, char *err, size_t errlen);

#endif
