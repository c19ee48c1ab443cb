/*
 * bench_mhd_floor.c - libmicrohttpd alone, doing what edgeflag's server asks of it for one
 * evaluation and nothing else: the floor under edgeflag's HTTP figures (issue 18).
 *
 * It starts a daemon with the flags and the connection memory pool src/http/server.c gives its
 * own (ef_http_mhd_flags, ef_http_mhd_pool_size for the default --max-header; one polling
 * thread), takes a request's body as edgeflag does (every chunk accepted), and answers
 * every request with a fixed body of the given length, not copied, carrying the four headers an
 * evaluation answer carries (Content-Type, X-Edgeflag-Version, X-Edgeflag-Node, Vary) unless
 * --bare, which adds only Content-Type. bench/http_bench.mjs runs it in its interleaved rounds
 * next to nginx and edgeflag: what this reaches is what libmicrohttpd leaves for edgeflag's own
 * work, whatever that work costs.
 *
 * --spin-ns N adds N nanoseconds of pure computation to every request (a multiply chain,
 * calibrated at start, touching no memory): a stand-in for a server's own work, to measure how
 * the ratio to nginx falls as that work grows (http_bench.mjs --floor-spin). It is a lower bound
 * for real work of the same length, which also misses caches.
 *
 * A benchmark: it must never be used to serve anything, prints its URL and asserts nothing.
 *
 * Usage: bench_mhd_floor --body-bytes N [--bare] [--max-header BYTES] [--spin-ns N]
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/http.h"

typedef struct floor_cfg {
    const char *body;
    size_t body_len;
    bool bare;
    uint64_t spin_iters; /* --spin-ns, in iterations of spin() */
} floor_cfg;

/* n dependent multiply-adds: a fixed length of computation the compiler cannot drop */
static uint64_t spin(uint64_t n)
{
    uint64_t x = 1;
    for (uint64_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        __asm__ volatile("" : "+r"(x));
    }
    return x;
}

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* iterations of spin() in ns nanoseconds on this core: the fastest of a few timed runs */
static uint64_t spin_calibrate(uint64_t ns)
{
    const uint64_t n = 20000000;
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = now_ns();
        spin(n);
        double dt = now_ns() - t0;
        if (best == 0 || dt < best) best = dt;
    }
    return (uint64_t)((double)ns * (double)n / best + 0.5);
}

static int marker; /* a request in progress: its first call has been seen */

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    (void)url, (void)method, (void)version, (void)upload;
    const floor_cfg *cfg = cls;
    if (*con_cls == NULL) {
        *con_cls = &marker;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    *con_cls = NULL;
    if (cfg->spin_iters) spin(cfg->spin_iters);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(cfg->body_len, (void *)cfg->body, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (!cfg->bare) {
        MHD_add_response_header(r, "X-Edgeflag-Version", "0");
        MHD_add_response_header(r, "X-Edgeflag-Node", "vm");
        MHD_add_response_header(r, "Vary", "Accept-Encoding");
    }
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv)
{
    floor_cfg cfg = {0};
    size_t max_header = EF_HTTP_MAX_HEADER_DEFAULT;
    unsigned long spin_ns = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--body-bytes") && i + 1 < argc) cfg.body_len = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--max-header") && i + 1 < argc) max_header = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--spin-ns") && i + 1 < argc) spin_ns = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--bare")) cfg.bare = true;
        else {
            fprintf(stderr, "usage: bench_mhd_floor --body-bytes N [--bare] [--max-header BYTES] [--spin-ns N]\n");
            return 2;
        }
    }
    if (cfg.body_len == 0 || cfg.body_len > (1u << 20)) {
        fprintf(stderr, "bench_mhd_floor: --body-bytes between 1 and 1048576\n");
        return 2;
    }
    if (spin_ns > 1000000) {
        fprintf(stderr, "bench_mhd_floor: --spin-ns at most 1000000\n");
        return 2;
    }
    if (spin_ns) cfg.spin_iters = spin_calibrate(spin_ns);
    char *body = malloc(cfg.body_len);
    if (!body) return 1;
    memset(body, 'x', cfg.body_len);
    cfg.body = body;
    /* SIGTERM/SIGINT blocked before libmicrohttpd's thread exists, so that thread inherits the
     * mask and main alone takes them in sigwait: with a handler and pause(), a signal delivered
     * to the daemon's thread left main paused for ever (seen under valgrind) */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    size_t pool = ef_http_mhd_pool_size(max_header);
    unsigned flags = ef_http_mhd_flags();
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct MHD_Daemon *d = MHD_start_daemon(flags, 0, NULL, NULL, on_access, &cfg, MHD_OPTION_SOCK_ADDR,
                                            (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_TIMEOUT, 60u,
                                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "bench_mhd_floor: libmicrohttpd did not start\n");
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("listening on http://127.0.0.1:%u\n", info ? (unsigned)info->port : 0u);
    fflush(stdout);
    int sig = 0;
    sigwait(&stop_signals, &sig);
    MHD_stop_daemon(d);
    free(body);
    return 0;
}
