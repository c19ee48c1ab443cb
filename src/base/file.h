/*
 * file.h - whole-file reads and atomic writes.
 */
#ifndef EF_BASE_FILE_H
#define EF_BASE_FILE_H

#include <stddef.h>

/* Reads a whole file into a malloc'd, NUL-terminated buffer. Returns 0, or -errno. */
int ef_file_read(const char *path, char **data, size_t *len);

#endif
