/*
 * fuzz_activity_report.c - libFuzzer target: the "activity" member of a cluster report
 * (src/api/activity_peers.c, POST /edgeflag/v1/cluster/report), which any replica can send. Must
 * never crash, read out of bounds or grow past its bounds; an accepted report, stored and written
 * out again, reads back; a refusal always says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/activity_peers.h"

static void sum_counts(const char *node, const uint64_t *counts, void *ctx)
{
    (void)node;
    for (unsigned i = 0; i < EF_ACT_MINUTES; i++) *(uint64_t *)ctx += counts[i];
}

static bool allow_all(const char *node, void *ctx)
{
    (void)ctx;
    return strcmp(node, "denied") != 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ef_apw_report r;
    char err[300] = "";
    if (ef_apw_report_parse(&r, (const char *)data, size, err, sizeof(err)) != 0) {
        if (!err[0]) abort();
        ef_apw_report_free(&r);
        return 0;
    }
    if (r.nrows > EF_APW_MAX_ROWS) abort();
    for (unsigned i = 0; i < r.nrows; i++) {
        const ef_apw_row *row = &r.rows[i];
        if (!ef_node_name_valid(row->node, strlen(row->node)) || row->n > EF_ACT_MINUTES ||
            row->ns.n + row->flag.n > EF_APW_KEY_MAX || !row->ns.n || !row->flag.n)
            abort();
    }
    /* a fixed "now" near the minutes a fuzzer is likely to write, and one far away */
    ef_activity_peers *p = ef_activity_peers_new();
    if (!p) abort();
    uint32_t now = r.nrows && r.rows[0].n ? r.rows[0].minute[0] : 1000;
    ef_activity_peers_apply(p, &r, "self", allow_all, NULL, now);
    ef_activity_peers_apply(p, &r, "self", allow_all, NULL, now + 30);
    ef_buf out;
    ef_buf_init(&out);
    ef_buf_puts(&out, "{\"activity\":");
    ef_activity_peers_write(p, NULL, "self", EF_ACT_MINUTES, now + 30, &out);
    ef_buf_putc(&out, '}');
    if (!ef_buf_ok(&out)) abort();
    ef_apw_report again;
    if (ef_apw_report_parse(&again, out.data, out.len, err, sizeof(err)) != 0) abort();
    for (unsigned i = 0; i < again.nrows; i++)
        if (!strcmp(again.rows[i].node, "self") || !strcmp(again.rows[i].node, "denied")) abort();
    ef_apw_report_free(&again);
    if (r.nrows) {
        uint64_t sum = 0;
        ef_activity_peers_flag(p, r.rows[0].ns, r.rows[0].flag, EF_ACT_MINUTES, now, sum_counts, &sum);
    }
    ef_buf_free(&out);
    ef_activity_peers_free(p);
    ef_apw_report_free(&r);
    return 0;
}
