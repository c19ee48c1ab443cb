/*
 * file.h - whole-file reads and atomic writes.
 */
#ifndef EF_BASE_FILE_H
#define EF_BASE_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Bounds for ef_file_read's max: a small file a user names (PEM certificates, keys and CA
 * bundles, a configuration file); a document (no bound but the file's own length). */
#define EF_FILE_MAX_SMALL ((size_t)4 << 20)
#define EF_FILE_MAX_ANY SIZE_MAX

/* Reads a whole regular file into a malloc'd, NUL-terminated buffer. Returns 0, or -errno:
 * -EINVAL for anything that is not a regular file (a FIFO, a device, a directory: it is opened
 * without waiting for a writer and never read, so a FIFO or /dev/zero in its place cannot hold the
 * caller or fill its memory), -EFBIG for one longer than max bytes. ef_file_strerror says which. */
int ef_file_read(const char *path, size_t max, char **data, size_t *len);
/* The text for an ef_file_read result ("not a regular file", "larger than the limit", else
 * strerror's). */
const char *ef_file_strerror(int rc);

#endif
