/* Times micro/tokenizer.c on the host (built by benchmarks/micro.py).
 * stdin: records (uint32 little-endian length, bytes); argv[1]: passes over all of them.
 * stdout: "<best seconds per pass> <checksum of the ids>". */
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c99 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    size_t cap = 1 << 20, used = 0, n = 0, i, at;
    unsigned char *buf = malloc(cap), len4[4];
    int32_t ids[RK_MAXLEN];
    long passes = argc > 1 ? atol(argv[1]) : 3, p;
    unsigned long sum = 0;
    double best = 1e30;
    while (buf && fread(len4, 1, 4, stdin) == 4) { /* keep the length prefixes: the records are walked below */
        size_t len = len4[0] | (size_t)len4[1] << 8 | (size_t)len4[2] << 16 | (size_t)len4[3] << 24;
        while (used + 4 + len > cap)
            buf = realloc(buf, cap *= 2);
        if (!buf || fread(buf + used + 4, 1, len, stdin) != len)
            return 2;
        for (i = 0; i < 4; i++)
            buf[used + i] = len4[i];
        used += 4 + len;
        n++;
    }
    for (p = 0; p < passes; p++) {
        double start = now(), took;
        for (at = 0; at < used;) {
            size_t len = buf[at] | (size_t)buf[at + 1] << 8 | (size_t)buf[at + 2] << 16 | (size_t)buf[at + 3] << 24;
            rk_tokenize(buf + at + 4, len, ids, RK_MAXLEN);
            sum += (unsigned long)ids[1] + (unsigned long)ids[RK_MAXLEN - 1];
            at += 4 + len;
        }
        took = now() - start;
        best = took < best ? took : best;
    }
    printf("%.6f %lu %zu\n", best, sum, n);
    return 0;
}
