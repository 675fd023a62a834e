// The tokenizer contract of runtime/tokenizer.py, in JavaScript: raw review text -> Int32Array(maxlen).
//
// 1. lowercase with String.prototype.toLowerCase() -- locale-independent, like Python's str.lower();
//    never toLocaleLowerCase(), which maps "I" to a dotless i under a Turkish locale;
// 2. split on DELIM_PATTERN and drop empty tokens;
// 3. map each token through the vocabulary, unknown -> <UNKNOWN>;
// 4. <START>, then the first maxlen - 1 word ids, padded with <PAD> (0) at the end.
//
// The vocabulary is a Map: in a plain object, "constructor" or "__proto__" would find
// Object.prototype's members instead of <UNKNOWN>.

export const DELIM_PATTERN = "(?:<br />|[^a-z0-9'])+";
export const TOKENIZER_VERSION = 1;
export const SPECIAL_TOKENS = ["<PAD>", "<START>", "<UNKNOWN>", "<UNUSED>"]; // ids 0..3
// No "u" flag: the pattern runs on UTF-16 code units, so each half of an astral character and
// each lone surrogate is one delimiter -- the same tokens as Python's code points.
const DELIM = new RegExp(DELIM_PATTERN, "g");

export class TokenizerError extends Error {
  constructor(message) { super(message); this.name = "TokenizerError"; }
}

/** Lowercase and split text into tokens (no vocabulary involved). */
export function splitWords(text) {
  return String(text).toLowerCase().split(DELIM).filter((t) => t.length > 0);
}

/** Parse vocab.txt ("token id" lines, ids 0..n-1 without gaps) into a Map token -> id. */
export function parseVocab(text, name = "vocab.txt") {
  const vocab = new Map();
  const lines = text.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  lines.forEach((raw, i) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    const parts = line.split(" ");
    if (parts.length !== 2 || !parts[0] || !/^[0-9]+$/.test(parts[1])) {
      throw new TokenizerError(`${name}:${i + 1}: expected 'token id', got ${JSON.stringify(line)}`);
    }
    if (vocab.has(parts[0])) throw new TokenizerError(`${name}:${i + 1}: duplicate token ${JSON.stringify(parts[0])}`);
    vocab.set(parts[0], Number(parts[1]));
  });
  const ids = [...vocab.values()].sort((a, b) => a - b);
  if (ids.some((id, i) => id !== i)) throw new TokenizerError(`${name}: ids must be 0..${vocab.size - 1} with no gaps`);
  return vocab;
}

export class Tokenizer {
  /** @param {Map<string, number>} vocab  @param {number} maxlen */
  constructor(vocab, maxlen) {
    if (!(vocab instanceof Map)) throw new TokenizerError("the vocabulary must be a Map");
    if (!Number.isInteger(maxlen) || maxlen < 1) throw new TokenizerError(`maxlen must be a positive integer, got ${maxlen}`);
    SPECIAL_TOKENS.forEach((tok, i) => {
      if (vocab.get(tok) !== i) throw new TokenizerError(`the vocabulary must map ${tok} to ${i}`);
    });
    this.vocab = vocab;
    this.maxlen = maxlen;
  }

  /** One text -> Int32Array(maxlen). */
  encode(text) {
    return this.encodeInto(text, new Int32Array(this.maxlen), 0);
  }

  /** Texts -> Int32Array(n * maxlen), row-major [n, maxlen]. */
  encodeBatch(texts) {
    const out = new Int32Array(texts.length * this.maxlen);
    texts.forEach((text, row) => this.encodeInto(text, out, row * this.maxlen));
    return out;
  }

  /**
   * Write the ids of text into out[offset .. offset + maxlen) (which must be zeros).
   *
   * One pass over the lowercased text instead of splitWords' regex (3-4x faster), with the same
   * tokens: a token is a maximal run of [a-z0-9']; outside a token, "<br />" is skipped whole,
   * as the regex does (a delimiter run tries "<br />" first at each position, and "<br />" can
   * only start at a delimiter, "<"); every other code unit is a delimiter. Stops after
   * maxlen - 1 tokens.
   */
  encodeInto(text, out, offset) {
    const s = String(text).toLowerCase();
    const limit = this.maxlen - 1;
    out[offset] = 1; // <START>
    let n = 0;
    for (let i = 0; i < s.length && n < limit;) {
      const c = s.charCodeAt(i);
      if (c < 128 && TOKEN_CHAR[c]) {
        let j = i + 1;
        while (j < s.length && isTokenChar(s.charCodeAt(j))) j++;
        out[offset + 1 + n++] = this.vocab.get(s.slice(i, j)) ?? 2; // <UNKNOWN>
        i = j;
      } else {
        i += c === 60 && s.startsWith("<br />", i) ? 6 : 1;
      }
    }
    return out;
  }

  /** encode done literally with the contract's regex (splitWords): the reference for tests. */
  encodeReference(text) {
    const out = new Int32Array(this.maxlen);
    const words = splitWords(text).slice(0, this.maxlen - 1);
    out[0] = 1;
    words.forEach((w, i) => { out[i + 1] = this.vocab.get(w) ?? 2; });
    return out;
  }
}

// TOKEN_CHAR[c] = 1 for the code units of [a-z0-9'].
const TOKEN_CHAR = new Uint8Array(128);
for (const ch of "abcdefghijklmnopqrstuvwxyz0123456789'") TOKEN_CHAR[ch.charCodeAt(0)] = 1;
const isTokenChar = (c) => c < 128 && TOKEN_CHAR[c] === 1;
