/* reviewkit's tokenizer for microcontrollers: UTF-8 review text -> the model's int32 ids.
 *
 * Gives exactly the ids of the Python tokenizer (runtime/tokenizer.py) run on
 * bytes.decode("utf-8", "replace"): lowercase, split on (?:<br />|[^a-z0-9'])+, look every
 * token up in the vocabulary (vocab_data.c), <START> first, the first maxlen ids, <PAD> after.
 *
 * C99, no allocation, only <stddef.h>, <stdint.h>, <string.h>. Any bytes are accepted
 * (invalid UTF-8 is a delimiter, as U+FFFD is in Python). The text is never copied: feed it
 * in pieces of any size as it arrives (UART, file, network) and the ids go straight into the
 * input tensor. The state below is all the memory it needs (about 40 bytes).
 */
#ifndef RK_TOKENIZER_H
#define RK_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "vocab_data.h" /* RK_VOCAB_MAX_WORD, RK_MAXLEN */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t *ids;                    /* the output: maxlen ids */
    size_t maxlen, n;                /* n: ids written so far */
    uint8_t word[RK_VOCAB_MAX_WORD]; /* the current token (a longer one is never in the vocabulary) */
    uint8_t len;                     /* its length; RK_VOCAB_MAX_WORD + 1 means "longer" */
    uint8_t br;                      /* characters of "<br />" matched so far */
    uint8_t nmb, mb[3];              /* pending bytes of a UTF-8 sequence that may lower to ASCII */
} rk_tokenizer;

/* Start a text: ids[0] = <START>. ids must hold maxlen int32 (e.g. the input tensor's data). */
void rk_begin(rk_tokenizer *t, int32_t *ids, size_t maxlen);
/* The next len bytes of the text (any split, even inside a UTF-8 character). */
void rk_feed(rk_tokenizer *t, const uint8_t *text, size_t len);
/* End of the text: pads ids with <PAD> (0); returns how many ids are not padding. */
size_t rk_end(rk_tokenizer *t);
/* The three above for a text held in memory. */
size_t rk_tokenize(const uint8_t *text, size_t len, int32_t *ids, size_t maxlen);
/* The vocabulary id of a token of n characters from [a-z0-9'], else <UNKNOWN> (2). */
int32_t rk_vocab_id(const uint8_t *word, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* RK_TOKENIZER_H */
