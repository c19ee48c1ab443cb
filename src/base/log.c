/*
 * log.c - logfmt lines (see log.h). The level threshold and the node name are the process-wide
 * state: logging is a process concern, both are set before threads start (a test may move the
 * threshold later to see a warning: it is read atomically).
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"

static ef_log_level threshold = EF_LOG_INFO;
static char node_name[64]; /* "" : no node= field */

void ef_log_set_node(const char *name)
{
    snprintf(node_name, sizeof(node_name), "%s", name ? name : "");
}

void ef_log_set_level(ef_log_level level)
{
    __atomic_store_n(&threshold, level, __ATOMIC_RELAXED);
}

int ef_log_parse_level(const char *name, ef_log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (ef_log_level)i;
            return 0;
        }
    return -1;
}

static void put_value(ef_buf *b, const char *v)
{
    bool quote = *v == '\0' || strpbrk(v, " =\"\\\n\t") != NULL;
    if (!quote) {
        ef_buf_puts(b, v);
        return;
    }
    ef_json_put_cstr(b, v); /* JSON string escaping is a valid logfmt quoting */
}

void ef_log(ef_log_level level, const char *msg, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (level < __atomic_load_n(&threshold, __ATOMIC_RELAXED)) return;
    char ts[EF_RFC3339_MAX];
    ef_rfc3339_format(ef_clock_wall_ns() / 1000000 * 1000000, ts);
    ef_buf b;
    ef_buf_init(&b);
    ef_buf_printf(&b, "time=%s level=%s msg=", ts, names[level]);
    put_value(&b, msg);
    if (node_name[0]) {
        ef_buf_puts(&b, " node=");
        put_value(&b, node_name);
    }
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k) break;
        const char *v = va_arg(ap, const char *);
        ef_buf_putc(&b, ' ');
        ef_buf_puts(&b, k);
        ef_buf_putc(&b, '=');
        put_value(&b, v ? v : "");
    }
    va_end(ap);
    ef_buf_putc(&b, '\n');
    if (ef_buf_ok(&b)) {
        ssize_t w = write(STDERR_FILENO, b.data, b.len);
        (void)w;
    }
    ef_buf_free(&b);
}
