// The JS tokenizer against Python's (golden ids written by pytest), plus its own edge cases.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer, TokenizerError, parseVocab, splitWords } from "../src/tokenizer.js";
import { readMeta, readSet } from "./golden.js";

function vocabOf(meta) {
  return parseVocab(readFileSync(join(meta.bundle, "vocab.txt"), "utf8"));
}

function firstMismatch(tok, texts, ids) {
  const m = tok.maxlen;
  for (let i = 0; i < texts.length; i++) {
    const got = tok.encode(texts[i]);
    for (let j = 0; j < m; j++) {
      if (got[j] !== ids[i * m + j]) return { row: i, text: texts[i].slice(0, 200), got: Array.from(got.slice(0, j + 3)), want: Array.from(ids.slice(i * m, i * m + j + 3)) };
    }
  }
  return null;
}

const meta = readMeta();
for (const name of meta.sets) {
  test(`ids equal Python's on the ${name} set`, () => {
    const tok = new Tokenizer(vocabOf(meta), meta.maxlen);
    const { texts, ids } = readSet(name);
    assert.equal(ids.length, texts.length * meta.maxlen);
    assert.ok(texts.length >= meta.min_rows[name], `${name}: only ${texts.length} texts`);
    assert.equal(firstMismatch(tok, texts, ids), null);
    // the regex reference agrees (a different code path to the same ids)
    texts.slice(0, 2000).forEach((text, i) => assert.deepEqual(tok.encodeReference(text), ids.slice(i * meta.maxlen, (i + 1) * meta.maxlen)));
    // encodeBatch is the same rows, row-major
    const batch = tok.encodeBatch(texts.slice(0, 300));
    assert.deepEqual(batch, ids.slice(0, 300 * meta.maxlen));
  });
}

test("the vocabulary is a Map: Object.prototype names are plain words", () => {
  const vocab = vocabOf(meta);
  const text = "constructor __proto__ toString hasOwnProperty valueOf";
  const words = splitWords(text);
  assert.deepEqual(words, ["constructor", "proto", "tostring", "hasownproperty", "valueof"]);
  const ids = new Tokenizer(vocab, 8).encode(text);
  assert.deepEqual(Array.from(ids), [1, ...words.map((w) => (vocab.has(w) ? vocab.get(w) : 2)), 0, 0]);
  assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < vocab.size));
  assert.throws(() => new Tokenizer({ "<PAD>": 0 }, 8), TokenizerError);
});

test("lowercasing is toLowerCase, never locale-dependent; the two code points that lowercase to ASCII", () => {
  assert.deepEqual(splitWords("\u0130STANBUL"), ["i", "stanbul"]); // İ -> i + U+0307 (a delimiter)
  assert.deepEqual(splitWords("\u212Aelvin"), ["kelvin"]); // KELVIN SIGN -> k
  assert.deepEqual(splitWords("A<BR />b<br/>c<Br />d<br  />e<br />"), ["a", "b", "br", "c", "d", "br", "e"]);
  assert.deepEqual(splitWords("don't 'quoted' 42nd 3.14"), ["don't", "'quoted'", "42nd", "3", "14"]);
  assert.deepEqual(splitWords("a\uD83D\uDE00b\uD800c\uDC00d"), ["a", "b", "c", "d"]);
  assert.deepEqual(splitWords(""), []);
});

test("truncation keeps <START> + the first maxlen - 1 words and pads at the end", () => {
  const vocab = new Map([["<PAD>", 0], ["<START>", 1], ["<UNKNOWN>", 2], ["<UNUSED>", 3], ["a", 4], ["b", 5]]);
  const tok = new Tokenizer(vocab, 4);
  assert.deepEqual(Array.from(tok.encode("a b c a b")), [1, 4, 5, 2]);
  assert.deepEqual(Array.from(tok.encode("b")), [1, 5, 0, 0]);
  assert.deepEqual(Array.from(tok.encode("")), [1, 0, 0, 0]);
  for (const text of ["a<br />b", "<<br />br />a", "a<br/>b<br  />", "<br />", "A<BR />B", "a'b''c", "<br /", "x<br />"]) {
    assert.deepEqual(tok.encode(text), tok.encodeReference(text), text);
  }
});

test("a malformed vocabulary is refused with its line", () => {
  assert.throws(() => parseVocab("<PAD> 0\n<START>1\n"), /vocab.txt:2: expected 'token id'/);
  assert.throws(() => parseVocab("<PAD> 0\n<PAD> 1\n"), /duplicate token/);
  assert.throws(() => parseVocab("<PAD> 0\na 2\n"), /no gaps/);
});
