/*
 * client_example.c - a small program that embeds libedgeflag: it opens a client for a node,
 * evaluates a variant flag and a boolean flag for an entity, prints the answers and the client's
 * status, and reports every change the node pushes until it has seen the requested number.
 *
 * Build it against an installed libedgeflag with pkg-config (see examples/README.md):
 *   cc -o client_example client_example.c $(pkg-config --cflags --libs edgeflag)
 * It must never be more than an example: no retries or policy of its own beyond what it shows.
 *
 * usage: client_example URL FLAG [BOOLEAN_FLAG] [--namespace NS] [--token T] [--cache FILE]
 *                       [--changes N]
 */
#include <edgeflag.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct seen {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned changes;
} seen;

/* Runs on the client's thread: only note the change; evaluation happens on ours. */
static void on_change(ef_client *c, uint64_t version, void *userdata)
{
    (void)c;
    seen *s = userdata;
    pthread_mutex_lock(&s->mu);
    s->changes++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    printf("change: version %llu\n", (unsigned long long)version);
    fflush(stdout);
}

static void show(ef_client *c, const char *flag, const char *bool_flag)
{
    ef_pair ctx[] = {ef_pair_of("country", "NZ"), ef_pair_of("plan", "pro")};
    ef_result r;
    int rc = ef_client_variant(c, flag, "user-42", ctx, 2, &r);
    if (rc == EF_OK) {
        printf("%s: match=%d reason=%s variant=%.*s attachment=%.*s segments=", flag, r.match,
               ef_result_reason_name(r.reason), (int)r.variant_key_len, r.variant_key,
               (int)r.attachment_len, r.attachment);
        for (size_t i = 0; i < r.segment_count; i++) {
            size_t n;
            const char *k = ef_result_segment(&r, i, &n);
            printf("%s%.*s", i ? "," : "", (int)n, k);
        }
        printf("\n");
        ef_result_release(&r); /* the strings above are valid until here */
    } else {
        printf("%s: %s\n", flag, ef_strerror(rc));
    }
    if (bool_flag) {
        rc = ef_client_boolean(c, bool_flag, "user-42", ctx, 2, &r);
        if (rc == EF_OK) {
            printf("%s: enabled=%d reason=%s\n", bool_flag, r.enabled,
                   ef_result_reason_name(r.reason));
            ef_result_release(&r);
        } else {
            printf("%s: %s\n", bool_flag, ef_strerror(rc));
        }
    }
    ef_status st;
    ef_client_status(c, &st);
    printf("status: version=%llu age_ms=%lld connected=%d streaming=%d source=%d flags=%zu "
           "last_error=\"%s\" cache=\"%s\"\n",
           (unsigned long long)st.version, (long long)st.age_ms, st.connected, st.streaming,
           (int)st.source, st.flag_count, ef_strerror(st.last_error), ef_strerror(st.cache_status));
    fflush(stdout);
}

int main(int argc, char **argv)
{
    ef_client_options o = {0};
    const char *flag = NULL, *bool_flag = NULL;
    unsigned want = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--namespace") && i + 1 < argc) o.namespace_key = argv[++i];
        else if (!strcmp(argv[i], "--token") && i + 1 < argc) o.token = argv[++i];
        else if (!strcmp(argv[i], "--cache") && i + 1 < argc) o.cache_path = argv[++i];
        else if (!strcmp(argv[i], "--changes") && i + 1 < argc) want = (unsigned)atoi(argv[++i]);
        else if (!o.url) o.url = argv[i];
        else if (!flag) flag = argv[i];
        else if (!bool_flag) bool_flag = argv[i];
    }
    if (!o.url || !flag) {
        fprintf(stderr, "usage: client_example URL FLAG [BOOLEAN_FLAG] [--namespace NS] "
                        "[--token T] [--cache FILE] [--changes N]\n");
        return 2;
    }
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    o.on_change = on_change;
    o.userdata = &s;
    ef_client *c;
    int rc = ef_client_open(&o, &c);
    if (rc != EF_OK) {
        fprintf(stderr, "client_example: %s\n", ef_strerror(rc));
        return 1;
    }
    /* a cache file makes the client ready at once; otherwise give the node a moment */
    if (ef_client_wait(c, 0, 3000) != EF_OK) printf("no state yet\n");
    show(c, flag, bool_flag);
    pthread_mutex_lock(&s.mu);
    while (s.changes < want) {
        unsigned before = s.changes;
        pthread_cond_wait(&s.cv, &s.mu);
        if (s.changes != before) {
            pthread_mutex_unlock(&s.mu);
            show(c, flag, bool_flag);
            pthread_mutex_lock(&s.mu);
        }
    }
    pthread_mutex_unlock(&s.mu);
    ef_client_close(c);
    return 0;
}
