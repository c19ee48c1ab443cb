/*
 * fuzz_cluster_view.c - libFuzzer target: the cluster view a replica reports upstream and an
 * upstream answers with (src/sync/cluster_view.c, POST /edgeflag/v1/cluster/report). Must never
 * crash or read out of bounds; an accepted view stays within its bounds, holds only valid names
 * and printable text, and written out again it reads back to the same view.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sync/cluster_view.h"

static void check(const ef_cluster_view *v)
{
    if (v->nnodes > EF_CV_MAX_NODES || v->nwrites > EF_CV_MAX_WRITES) abort();
    for (unsigned i = 0; i < v->nnodes; i++) {
        const ef_cv_node *n = &v->nodes[i];
        if (!ef_node_name_valid(n->name, strlen(n->name)) || n->napplied > EF_CV_MAX_APPLIED) abort();
        if (n->parent[0] && !ef_node_name_valid(n->parent, strlen(n->parent))) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ef_cluster_view v, again;
    char err[300];
    if (ef_cv_parse((const char *)data, size, &v, err, sizeof(err)) != 0) {
        if (!err[0]) abort(); /* a refusal always says why */
        return 0;
    }
    check(&v);
    ef_buf out;
    ef_buf_init(&out);
    ef_cv_write_json(&v, &out);
    if (!ef_buf_ok(&out)) abort();
    if (ef_cv_parse(out.data, out.len, &again, err, sizeof(err)) != 0) abort();
    if (again.nnodes != v.nnodes || again.nwrites != v.nwrites) abort();
    for (unsigned i = 0; i < v.nnodes; i++)
        if (strcmp(again.nodes[i].name, v.nodes[i].name) || again.nodes[i].version != v.nodes[i].version ||
            again.nodes[i].napplied != v.nodes[i].napplied)
            abort();
    ef_buf_free(&out);
    return 0;
}
