// The golden files pytest writes (tests/web/test_web.py) before it runs `node --test`:
// REVIEWKIT_GOLDEN=DIR with DIR/<set>.texts.json (a JSON array of strings), DIR/<set>.ids.i32
// (little-endian int32 [n, maxlen], Python's Tokenizer.encode_batch) and DIR/meta.json
// ({maxlen, sets: [...], bundle: a site folder, probs: {text: P(positive) by Python onnxruntime}}).
import { readFileSync } from "node:fs";
import { join } from "node:path";

export function goldenDir() {
  const dir = process.env.REVIEWKIT_GOLDEN;
  if (!dir) throw new Error("REVIEWKIT_GOLDEN is not set: these tests run from pytest (python -m pytest tests/web)");
  return dir;
}

export function readMeta() {
  return JSON.parse(readFileSync(join(goldenDir(), "meta.json"), "utf8"));
}

export function readSet(name) {
  const dir = goldenDir();
  const texts = JSON.parse(readFileSync(join(dir, `${name}.texts.json`), "utf8"));
  const buf = readFileSync(join(dir, `${name}.ids.i32`));
  const ids = new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  return { texts, ids };
}
