/*
 * test_client_close_resolving.c - ef_client_close while the node's host name is still being
 * resolved. edgeflag.h promises that close stops the background thread promptly, even
 * mid-request; a name server that does not answer is the commonest way for a request to sit
 * there (getaddrinfo waits for its timeouts, seconds each, on libcurl's resolver thread).
 *
 * This executable defines getaddrinfo, which wins over libc's for libcurl too: for the host
 * "stalled-dns.test" it blocks until the test lets it go (at most 10 s), as a silent name server
 * would; every other name goes to libc's. The old client's close waited for that lookup to end
 * (libcurl joins its resolver thread when a transfer that is resolving is removed): 10 s.
 */
#include <dlfcn.h>
#include <netdb.h>
#include <pthread.h>

#include "edgeflag.h"
#include "helper.h"

#define STALLED "stalled-dns.test"

static int release;  /* atomic: the stalled lookups may return */
static int stalled;  /* atomic: lookups of STALLED begun */

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    if (node && strcmp(node, STALLED) == 0) {
        __atomic_fetch_add(&stalled, 1, __ATOMIC_RELEASE);
        for (int i = 0; i < 1000 && !__atomic_load_n(&release, __ATOMIC_ACQUIRE); i++) {
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL);
        }
        return EAI_AGAIN;
    }
    int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **) =
        (int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **))dlsym(
            RTLD_NEXT, "getaddrinfo");
    CHECK(real != NULL);
    return real(node, service, hints, res);
}

int main(void)
{
    ef_client_options o = {.url = "http://" STALLED ":8080", .timeout_ms = 30000};
    ef_client *c;
    CHECK_EQ_INT(ef_client_open(&o, &c), EF_OK);
    int64_t until = ef_clock_mono_ns() + 5000 * (int64_t)1000000;
    while (__atomic_load_n(&stalled, __ATOMIC_ACQUIRE) == 0) { /* the fetch is resolving */
        CHECK(ef_clock_mono_ns() < until);
        sleep_ms(5);
    }
    sleep_ms(100);
    int64_t t0 = ef_clock_mono_ns();
    ef_client_close(c);
    double took = (ef_clock_mono_ns() - t0) / 1e6;
    __atomic_store_n(&release, 1, __ATOMIC_RELEASE);
    printf("close while resolving: %.0f ms\n", took);
    CHECK(took < 1000);
    sleep_ms(100); /* the abandoned lookup returns and its thread cleans up after itself */
    printf("test_client_close_resolving: ok\n");
    return 0;
}
