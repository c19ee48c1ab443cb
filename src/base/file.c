/*
 * file.c - file helpers (see file.h).
 *
 * Must never: block on a path that is not a regular file, or read past the caller's bound.
 */
#include "base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ef_file_read(const char *path, size_t max, char **data, size_t *len)
{
    /* O_NONBLOCK: opening a FIFO would otherwise wait for a writer; it fails the type check */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > max) {
        close(fd);
        return -EFBIG;
    }
    /* the size is where reading starts; a file that grows meanwhile is read on to its end,
     * within max */
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        if (n == cap) {
            if (cap > max) { /* read one byte past max: it is longer */
                free(buf);
                close(fd);
                return -EFBIG;
            }
            size_t ncap = cap * 2 < cap ? SIZE_MAX - 1 : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                close(fd);
                return -ENOMEM;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int e = -errno;
            free(buf);
            close(fd);
            return e;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    close(fd);
    if (n > max) {
        free(buf);
        return -EFBIG;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

const char *ef_file_strerror(int rc)
{
    if (rc == -EINVAL) return "not a regular file";
    if (rc == -EFBIG) return "larger than the limit";
    return strerror(-rc);
}
