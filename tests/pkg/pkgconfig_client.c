/*
 * pkgconfig_client.c - the smallest application of an installed libedgeflag: tests/pkg/install.sh
 * compiles it with `pkg-config --cflags --libs edgeflag` against the installed tree (shared and
 * static) and runs it against an installed server. It prints the library's version, then the
 * answer of one boolean flag; any failure exits 1 with the library's error text. It must never
 * include anything but the installed public header.
 *
 * usage: pkgconfig_client URL FLAG
 */
#include <edgeflag.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: pkgconfig_client URL FLAG\n");
        return 2;
    }
    printf("version %s\n", ef_version());
    ef_client_options o = {.url = argv[1], .timeout_ms = 2000};
    ef_client *c = NULL;
    int rc = ef_client_open(&o, &c);
    if (rc == EF_OK) rc = ef_client_wait(c, 0, 5000);
    ef_result r;
    if (rc == EF_OK) rc = ef_client_boolean(c, argv[2], "user-1", NULL, 0, &r);
    if (rc != EF_OK) {
        fprintf(stderr, "pkgconfig_client: %s\n", ef_strerror(rc));
        ef_client_close(c);
        return 1;
    }
    printf("%s enabled=%d reason=%s\n", argv[2], r.enabled, ef_result_reason_name(r.reason));
    ef_result_release(&r);
    ef_client_close(c);
    return 0;
}
