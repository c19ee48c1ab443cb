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

void ef_store_attribution_json(ef_buf *out)
{
    const ef_store_attribution *a = current;
    if (!a) return;
    bool first = true;
    ef_buf_puts(out, ",\"audit\":{\"actor\":{");
    ef_json_put_member_opt(out, "method", a->method, &first);
    ef_json_put_member_opt(out, "id", a->id, &first);
    ef_json_put_member_opt(out, "name", a->name, &first);
    ef_json_put_member_opt(out, "email", a->email, &first);
    ef_json_put_member_opt(out, "ip", a->ip, &first);
    ef_buf_putc(out, '}');
    first = false;
    ef_json_put_member_opt(out, "via", a->via, &first);
    ef_json_put_member_opt(out, "type", a->type, &first);
    ef_json_put_member_opt(out, "action", a->action, &first);
    ef_json_put_member_opt(out, "namespace", a->ns, &first);
    ef_json_put_member_opt(out, "flag", a->flag, &first);
    ef_buf_putc(out, '}');
}
