/* See tokenizer.h. Three stages, one byte at a time, so a text can arrive in pieces:
 *   bytes --utf8_byte--> lowered units --br_unit--> units outside "<br />" --word_unit--> ids
 * A unit is a lowered ASCII byte, or DELIM for any non-ASCII character (all of them are
 * delimiters once lowered, apart from the ASCII they lower to, listed in SPECIAL).
 */
#include <string.h>

#include "tokenizer.h"

enum { PAD_ID = 0, START_ID = 1, UNKNOWN_ID = 2, DELIM = 0x80 };

/* The code points whose str.lower() contains ASCII (tests/micro derives this list from
 * Python over all code points and compares): n_in, UTF-8 bytes, n_out, lowered units; 0 ends.
 * A valid sequence starts at a byte that is no continuation byte, and Python's decoder
 * never swallows such a byte into an error, so matching these bytes exactly is decoding. */
static const uint8_t SPECIAL[] = {
    2, 0xC4, 0xB0, 2, 'i', DELIM, /* U+0130 -> "i" U+0307 */
    3, 0xE2, 0x84, 0xAA, 1, 'k',  /* U+212A KELVIN SIGN -> "k" */
    0};
static const char BR[] = "<br />";

static void word_unit(rk_tokenizer *t, unsigned c)
{
    if (c - 'a' < 26u || c - '0' < 10u || c == '\'') {
        if (t->len < RK_VOCAB_MAX_WORD)
            t->word[t->len] = (uint8_t)c;
        if (t->len <= RK_VOCAB_MAX_WORD)
            t->len++;
        return;
    }
    if (t->len && t->n < t->maxlen)
        t->ids[t->n++] = t->len > RK_VOCAB_MAX_WORD ? UNKNOWN_ID : rk_vocab_id(t->word, t->len);
    t->len = 0;
}

/* "<br />" is one delimiter: hold its characters until it is complete or broken. It has no
 * proper prefix that is also a suffix, so after a mismatch only c itself can start it again. */
static void br_unit(rk_tokenizer *t, unsigned c)
{
    unsigned i;
    if (t->br && c != (unsigned char)BR[t->br]) {
        for (i = 1; i < t->br; i++) /* '<' went through already */
            word_unit(t, (unsigned char)BR[i]);
        t->br = 0;
    }
    if (c == (unsigned char)BR[t->br]) {
        if (t->br == 0)
            word_unit(t, c); /* '<' ends a token either way */
        t->br = t->br == 5 ? 0 : t->br + 1;
        return;
    }
    word_unit(t, c);
}

static void utf8_byte(rk_tokenizer *t, unsigned b)
{
    const uint8_t *s;
    unsigned i;
    if (b < 0x80 && !t->nmb) {
        br_unit(t, b - 'A' < 26u ? b + 32 : b);
        return;
    }
    t->mb[t->nmb] = (uint8_t)b;
    for (s = SPECIAL; *s; s += 2 + s[0] + s[s[0] + 1]) {
        if (s[0] > t->nmb && !memcmp(s + 1, t->mb, t->nmb + 1u)) {
            if (++t->nmb == s[0]) {
                for (i = 0; i < s[s[0] + 1]; i++)
                    br_unit(t, s[s[0] + 2 + i]);
                t->nmb = 0;
            }
            return;
        }
    }
    br_unit(t, DELIM); /* another character, or invalid UTF-8 (U+FFFD in Python) */
    if (t->nmb) {      /* b was not part of the pending bytes' character: start again at b */
        t->nmb = 0;
        utf8_byte(t, b);
    }
}

void rk_begin(rk_tokenizer *t, int32_t *ids, size_t maxlen)
{
    memset(t, 0, sizeof *t);
    t->ids = ids;
    t->maxlen = maxlen;
    if (maxlen)
        ids[t->n++] = START_ID;
}

void rk_feed(rk_tokenizer *t, const uint8_t *text, size_t len)
{
    size_t i;
    for (i = 0; i < len && t->n < t->maxlen; i++) /* a full row cannot change any more */
        utf8_byte(t, text[i]);
}

size_t rk_end(rk_tokenizer *t)
{
    size_t n;
    if (t->nmb)
        br_unit(t, DELIM);
    br_unit(t, DELIM); /* flushes a held "<br /" prefix and ends the last token */
    for (n = t->n; n < t->maxlen; n++)
        t->ids[n] = PAD_ID;
    return t->n;
}

size_t rk_tokenize(const uint8_t *text, size_t len, int32_t *ids, size_t maxlen)
{
    rk_tokenizer t;
    rk_begin(&t, ids, maxlen);
    rk_feed(&t, text, len);
    return rk_end(&t);
}

/* vocab_data.c: words sorted by bytes, front coded in blocks of RK_VOCAB_BLOCK words. Entry:
 * shared prefix length with the previous word (0 at a block start), the rest of the word,
 * then the id as 2 bytes, high byte first with bit 7 set (so it ends the characters). */
static int first_word_cmp(const uint8_t *w, size_t n, const uint8_t *p)
{
    size_t i;
    for (i = 0; i < n && p[i] < 0x80; i++)
        if (w[i] != p[i])
            return w[i] < p[i] ? -1 : 1;
    return i < n ? 1 : p[i] < 0x80 ? -1 : 0;
}

int32_t rk_vocab_id(const uint8_t *w, size_t n)
{
    size_t lo = 0, hi = RK_VOCAB_BLOCKS, mid, m = 0, i;
    const uint8_t *p, *end;
    while (hi - lo > 1) { /* the last block whose first word is <= w */
        mid = (lo + hi) / 2;
        if (first_word_cmp(w, n, rk_vocab_words + rk_vocab_blocks[mid] + 1) < 0)
            hi = mid;
        else
            lo = mid;
    }
    p = rk_vocab_words + rk_vocab_blocks[lo];
    end = lo + 1 < RK_VOCAB_BLOCKS ? rk_vocab_words + rk_vocab_blocks[lo + 1] : rk_vocab_words + RK_VOCAB_BYTES;
    /* m: characters w shares with the previous entry, which is < w. An entry sharing more
     * than m with it is < w too; one sharing fewer is > w, and so is every later one. */
    while (p < end) {
        size_t s = *p++;
        if (s < m)
            break;
        if (s == m) {
            for (i = m; i < n && *p == w[i]; i++)
                p++;
            if (*p >= 0x80 && i == n)
                return (int32_t)((p[0] & 0x7F) << 8 | p[1]);
            if (*p < 0x80 && (i == n || *p > w[i]))
                break;
            m = i;
        }
        while (*p < 0x80)
            p++;
        p += 2;
    }
    return UNKNOWN_ID;
}
