/*
 * attribution.c - who made the write the calling thread is about to make (ef_store_attribute) and
 * the "audit" object every backend writes into that write's change-log entry.
 *
 * The attribution is per thread, set and cleared by the HTTP layer around one write request; it
 * must never outlive that request (the strings are the request's), never be read by another thread,
 * and never decide anything in the store: it is recorded, not trusted.
 */
#include "store/store.h"

static _Thread_local const ef_store_attribution *current;

void ef_store_attribute(const ef_store_attribution *a)
{
    current = a;
}

const ef_store_attribution *ef_store_attribution_current(void)
{
    return current;
}

static void put_field(ef_buf *out, const char *name, ef_bytes v, bool *first)
{
    if (!v.n) return;
    ef_buf_printf(out, "%s\"%s\":", *first ? "" : ",", name);
    ef_json_put_str(out, v);
    *first = false;
}

void ef_store_attribution_json(ef_buf *out)
{
    const ef_store_attribution *a = current;
    if (!a) return;
    bool first = true;
    ef_buf_puts(out, ",\"audit\":{\"actor\":{");
    put_field(out, "method", a->method, &first);
    put_field(out, "id", a->id, &first);
    put_field(out, "name", a->name, &first);
    put_field(out, "email", a->email, &first);
    put_field(out, "ip", a->ip, &first);
    ef_buf_putc(out, '}');
    first = false;
    put_field(out, "via", a->via, &first);
    put_field(out, "type", a->type, &first);
    put_field(out, "action", a->action, &first);
    put_field(out, "namespace", a->ns, &first);
    put_field(out, "flag", a->flag, &first);
    ef_buf_putc(out, '}');
}
