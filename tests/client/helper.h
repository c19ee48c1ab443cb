/*
 * helper.h - what the client library's tests share: a CHECK that names the failing line, a real
 * edgeflag server started as a child process, and HTTP calls to its management API.
 *
 * Tests must never pass by doing nothing: every CHECK exits the process with status 1 on failure,
 * and a server that does not start fails the test (it is not skipped).
 */
#ifndef EF_TEST_CLIENT_HELPER_H
#define EF_TEST_CLIENT_HELPER_H

#include <curl/curl.h>
#include <errno.h>
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/json.h"

#define CHECK(cond)                                                                               \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);            \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

#define CHECK_EQ_INT(got, want)                                                                   \
    do {                                                                                          \
        long long g_ = (long long)(got), w_ = (long long)(want);                                  \
        if (g_ != w_) {                                                                           \
            fprintf(stderr, "%s:%d: %s is %lld, want %lld\n", __FILE__, __LINE__, #got, g_, w_);  \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

#define CHECK_STRN(p, n, want)                                                                    \
    do {                                                                                          \
        const char *w_ = (want);                                                                  \
        if ((n) != strlen(w_) || memcmp((p), w_, (n)) != 0) {                                     \
            fprintf(stderr, "%s:%d: got \"%.*s\", want \"%s\"\n", __FILE__, __LINE__, (int)(n),   \
                    (p), w_);                                                                     \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

extern char **environ;

typedef struct test_server {
    pid_t pid;
    char url[128];
    char dir[64];
} test_server;

/* A listening socket on a free loopback port for a test's fake node, its URL written to url;
 * accept() on it wakes up every 100 ms, so the fake's thread can see its stop flag. */
static inline int fake_listen(int backlog, char *url, size_t url_n)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    socklen_t al = sizeof(a);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    CHECK(listen(fd, backlog) == 0);
    struct timeval tv = {0, 100000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    snprintf(url, url_n, "http://127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    return fd;
}

/* The servers started and not stopped yet: a failing CHECK exits the test at once, and a server
 * left running held ctest until its timeout (300 s), so they are killed at exit. */
static pid_t helper_children[16];

static inline void helper_kill_children(void)
{
    for (size_t i = 0; i < sizeof(helper_children) / sizeof(helper_children[0]); i++) {
        if (helper_children[i] <= 0) continue;
        kill(helper_children[i], SIGKILL);
        waitpid(helper_children[i], NULL, 0);
        helper_children[i] = 0;
    }
}

static inline void helper_track_child(pid_t pid, pid_t gone)
{
    static int registered;
    if (!registered && atexit(helper_kill_children) == 0) registered = 1;
    for (size_t i = 0; i < sizeof(helper_children) / sizeof(helper_children[0]); i++) {
        if (helper_children[i] == gone) {
            helper_children[i] = pid;
            return;
        }
    }
}

/* Starts `BIN serve --listen 127.0.0.1:0 ARGS...` and waits for its "listening on URL" line. */
static inline void server_start(test_server *s, const char *bin, const char *const *args)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    const char *argv[16] = {bin, "serve", "--listen", "127.0.0.1:0"};
    int n = 4;
    for (int i = 0; args && args[i]; i++) argv[n++] = args[i];
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    CHECK(posix_spawn(&s->pid, bin, &fa, NULL, (char *const *)argv, environ) == 0);
    helper_track_child(s->pid, 0);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    char out[512];
    size_t len = 0;
    s->url[0] = '\0';
    while (len < sizeof(out) - 1) {
        ssize_t r = read(fds[0], out + len, sizeof(out) - 1 - len);
        if (r <= 0) break;
        len += (size_t)r;
        out[len] = '\0';
        const char *m = strstr(out, "listening on ");
        const char *nl = m ? strchr(m, '\n') : NULL;
        if (nl) {
            m += strlen("listening on ");
            snprintf(s->url, sizeof(s->url), "%.*s", (int)(nl - m), m);
            break;
        }
    }
    close(fds[0]);
    if (!s->url[0]) {
        fprintf(stderr, "server %s did not start\n", bin);
        exit(1);
    }
}

static inline void server_stop(test_server *s)
{
    if (s->pid <= 0) return;
    kill(s->pid, SIGTERM);
    int st;
    waitpid(s->pid, &st, 0);
    helper_track_child(0, s->pid);
    s->pid = 0;
}

/* A fresh temporary directory for this test's files, removed with everything in it when the
 * process exits (a failed CHECK included) unless EF_KEEP_TMP=1; only the one made here, never a
 * path given. */
static char temp_dir_made[64];

static inline int temp_dir_remove_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)st, (void)type, (void)f;
    remove(path);
    return 0;
}

static inline void temp_dir_remove(void)
{
    const char *keep = getenv("EF_KEEP_TMP");
    if (keep && strcmp(keep, "1") == 0) {
        fprintf(stderr, "kept %s\n", temp_dir_made);
        return;
    }
    nftw(temp_dir_made, temp_dir_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void temp_dir(char *out, size_t n)
{
    snprintf(out, n, "/tmp/ef-client-test-XXXXXX");
    CHECK(mkdtemp(out) != NULL);
    CHECK(!temp_dir_made[0] && strlen(out) < sizeof(temp_dir_made)); /* one per test process */
    strcpy(temp_dir_made, out);
    atexit(temp_dir_remove);
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    ef_buf_append(ud, p, size * n);
    return size * n;
}

/* One HTTP call with a JSON body; returns the status and the body in *out (NUL-terminated). */
static inline long http_call(const char *method, const char *url, const char *body,
                             const char *token, ef_buf *out)
{
    CURL *e = curl_easy_init();
    CHECK(e != NULL);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char auth[256];
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    ef_buf_clear(out);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    if (body) curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    long code = 0;
    if (curl_easy_perform(e) == CURLE_OK) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    ef_buf_putc(out, '\0');
    out->len--;
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return code;
}

/* Calls the API and checks the status; returns the string member `field` of the JSON answer
 * (copied into out_field) when asked. */
static inline void api(const char *base, const char *method, const char *path, const char *body,
                       long want, const char *field, char *out_field, size_t out_n)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", base, path);
    ef_buf out;
    ef_buf_init(&out);
    long code = http_call(method, url, body, NULL, &out);
    if (code != want) {
        fprintf(stderr, "%s %s -> %ld (want %ld): %s\n", method, path, code, want,
                out.data ? out.data : "");
        exit(1);
    }
    if (field) {
        ef_arena a;
        ef_arena_init(&a, 4096);
        ef_json_error je;
        const ef_json *v = ef_json_parse(out.data, out.len, &a, NULL, &je);
        const ef_json *f = v ? ef_json_get(v, field) : NULL;
        CHECK(f && f->type == EF_JSON_STRING);
        snprintf(out_field, out_n, "%.*s", (int)f->str.n, f->str.p);
        ef_arena_free(&a);
    }
    ef_buf_free(&out);
}

static inline void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#endif
