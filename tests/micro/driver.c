/* Test driver for micro/tokenizer.c (built by tests/micro/conftest.py).
 *
 *   driver ids MAXLEN CHUNK  stdin: records (uint32 little-endian length, bytes);
 *                            stdout: MAXLEN int32 ids per record. CHUNK 0 tokenizes each
 *                            record at once, CHUNK k > 0 feeds it k bytes at a time.
 *   driver fuzz SECONDS SEED random byte strings fed in random pieces for SECONDS; each in its
 *                            own exact-size heap block (ASan sees any read past its end);
 *                            checks the ids; prints the number of strings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer.h"

static int read_u32(unsigned long *v)
{
    unsigned char b[4];
    if (fread(b, 1, 4, stdin) != 4)
        return 0;
    *v = b[0] | (unsigned long)b[1] << 8 | (unsigned long)b[2] << 16 | (unsigned long)b[3] << 24;
    return 1;
}

static size_t tokenize(const uint8_t *text, size_t len, int32_t *ids, size_t maxlen, size_t chunk)
{
    rk_tokenizer t;
    size_t at = 0;
    if (!chunk)
        return rk_tokenize(text, len, ids, maxlen);
    rk_begin(&t, ids, maxlen);
    for (; at < len; at += chunk)
        rk_feed(&t, text + at, len - at < chunk ? len - at : chunk);
    return rk_end(&t);
}

static int ids_mode(size_t maxlen, size_t chunk)
{
    unsigned long len;
    int32_t *ids = malloc(maxlen * sizeof *ids);
    while (read_u32(&len)) {
        uint8_t *text = malloc(len ? len : 1);
        if (!ids || !text || fread(text, 1, len, stdin) != len)
            return 2;
        tokenize(text, len, ids, maxlen, chunk);
        fwrite(ids, sizeof *ids, maxlen, stdout);
        free(text);
    }
    free(ids);
    return 0;
}

static unsigned long long state = 88172645463325252ULL;
static unsigned next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (unsigned)(state >> 32);
}

/* Mostly bytes that matter: ASCII letters, '<br />' pieces, UTF-8 lead/continuation bytes. */
static uint8_t random_byte(void)
{
    static const char pool[] = "<br />BR'aZ09 \xC4\xB0\xE2\x84\xAA\x80\xBF\xF0\xF4\xED\xC0\xFF";
    unsigned r = next();
    return r & 1 ? (uint8_t)pool[(r >> 1) % (sizeof pool - 1)] : (uint8_t)(r >> 8);
}

static int fuzz_mode(double seconds, unsigned long seed)
{
    int32_t ids[RK_MAXLEN + 1];
    unsigned long count = 0;
    clock_t stop = clock() + (clock_t)(seconds * CLOCKS_PER_SEC);
    state ^= seed * 0x9E3779B97F4A7C15ULL;
    while (clock() < stop) {
        size_t len = next() % (next() % 8 ? 64 : 4096), maxlen = 1 + next() % RK_MAXLEN, i, n;
        uint8_t *text = malloc(len ? len : 1);
        for (i = 0; i < len; i++)
            text[i] = random_byte();
        ids[maxlen] = -7; /* a guard: nothing may be written past maxlen */
        n = tokenize(text, len, ids, maxlen, next() % 4 ? 1 + next() % 9 : 0);
        if (n < 1 || n > maxlen || ids[0] != 1 || ids[maxlen] != -7)
            return fprintf(stderr, "bad row: n=%zu\n", n), 1;
        for (i = 0; i < maxlen; i++)
            if (ids[i] < 0 || ids[i] >= RK_VOCAB_SIZE || (i < n) != (ids[i] != 0))
                return fprintf(stderr, "bad id %d at %zu (n=%zu)\n", (int)ids[i], i, n), 1;
        free(text);
        count++;
    }
    printf("%lu\n", count);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "ids"))
        return ids_mode(strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10));
    if (argc == 4 && !strcmp(argv[1], "fuzz"))
        return fuzz_mode(strtod(argv[2], NULL), strtoul(argv[3], NULL, 10));
    fprintf(stderr, "usage: driver ids MAXLEN CHUNK | driver fuzz SECONDS SEED\n");
    return 2;
}
