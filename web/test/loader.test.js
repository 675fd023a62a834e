// Classifier.load: verified loading over HTTP (a node:http server on 127.0.0.1 serving a copy
// of the exported site), scores equal to Python's, and refusal of every tampered file.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-web";
import { BundleError, Classifier, formatProbability, parseRecords, toCsv } from "../src/index.js";
import { readMeta } from "./golden.js";

const meta = readMeta();
let root, server, base;

before(async () => {
  root = mkdtempSync(join(tmpdir(), "reviewkit-site-"));
  server = createServer((req, res) => {
    try {
      const body = readFileSync(join(root, decodeURIComponent(new URL(req.url, "http://x").pathname)));
      res.writeHead(200).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${server.address().port}/`;
});
after(() => { server.close(); rmSync(root, { recursive: true, force: true }); });

/** A fresh copy of the site under root/name/, optionally changed by edit(dir). */
function site(name, edit) {
  const dir = join(root, name);
  cpSync(meta.bundle, dir, { recursive: true });
  if (edit) edit(dir);
  return `${base}${name}/`;
}

function flipByte(path, at = 100) {
  const bytes = readFileSync(path);
  bytes[at] ^= 0x01;
  writeFileSync(path, bytes);
}

test("load verifies, predicts like Python onnxruntime and classifies at the threshold", async () => {
  const clf = await Classifier.load(site("good"), { ort, batchSize: 3 });
  const texts = Object.keys(meta.probs);
  const probs = await clf.predict(texts);
  assert.ok(probs instanceof Float32Array && probs.length === texts.length);
  texts.forEach((t, i) => assert.ok(Math.abs(probs[i] - meta.probs[t]) <= 1e-5, `${t}: ${probs[i]} vs ${meta.probs[t]}`));
  const classes = await clf.classify(texts);
  classes.forEach((c, i) => assert.deepEqual(c, { label: probs[i] >= meta.threshold ? "positive" : "negative", probability: probs[i] }));
  assert.deepEqual(clf.tokenize("great"), clf.tokenizer.encode("great"));
  assert.equal(clf.tokenize("great").length, meta.maxlen);
  assert.deepEqual(await clf.predict([]), new Float32Array(0));
});

for (const [what, edit, message] of [
  ["a model byte flipped", (d) => flipByte(join(d, "model.onnx")), /model\.onnx has sha256 [0-9a-f]{64}, the manifest says/],
  ["a vocabulary byte flipped", (d) => flipByte(join(d, "vocab.txt"), 40), /vocab\.txt has sha256/],
  ["a truncated model", (d) => writeFileSync(join(d, "model.onnx"), readFileSync(join(d, "model.onnx")).subarray(0, 1000)), /model\.onnx is 1000 bytes, the manifest says/],
  ["a missing model", (d) => rmSync(join(d, "model.onnx")), /cannot fetch .*model\.onnx: HTTP 404/],
  ["a manifest without the model's hash", (d) => editManifest(d, (m) => { delete m.files["model.onnx"]; }), /lists no sha256 for model\.onnx/],
  ["another tokenizer contract", (d) => editManifest(d, (m) => { m.tokenizer.delim_pattern = "\\s+"; }), /tokenizer\.delim_pattern/],
  ["a newer manifest format", (d) => editManifest(d, (m) => { m.format_version = 2; }), /format_version 2/],
  ["a manifest that is not JSON", (d) => writeFileSync(join(d, "manifest.json"), "{"), /manifest\.json is not valid JSON/],
]) {
  test(`load refuses ${what}`, async (t) => {
    const url = site(`bad-${t.name.replace(/\W+/g, "-")}`, edit);
    await assert.rejects(Classifier.load(url, { ort }), (e) => e instanceof BundleError && message.test(e.message));
  });
}

function editManifest(dir, change) {
  const path = join(dir, "manifest.json");
  const m = JSON.parse(readFileSync(path, "utf8"));
  change(m);
  writeFileSync(path, JSON.stringify(m));
}

test("records and CSV as runtime.predict reads and writes them", () => {
  assert.deepEqual(parseRecords("good film\n\nbad\r\n", "txt"),
                   { lines: [1, 2, 3], texts: ["good film", "", "bad"], errors: ["", "empty text", ""] });
  assert.deepEqual(parseRecords('{"text": "a"}\n\n{"text": "b", "id": 3}\n', "jsonl"),
                   { lines: [1, 3], texts: ["a", "b"], errors: ["", ""] });
  // the bad-row rule of runtime.predict: scored, never dropped, the error says why
  const bad = parseRecords('{"text": 5}\n{"text": null}\n{"x": 1}\n{"text": "\\u2003 "}\n{"text": "ok \\ufffd"}\n' +
                           '{"text": [1]}\n{"text": {}}\n{"text": true}\n{"text": "\\ufeff"}\n', "jsonl");
  assert.deepEqual(bad.texts, ["", "", "", "\u2003 ", "ok \ufffd", "", "", "", "\ufeff"]);
  assert.deepEqual(bad.errors, ["text is a number, not a string", "text is null", "no 'text' field", "empty text",
                                "invalid UTF-8 (replaced with U+FFFD)", "text is an array, not a string",
                                "text is an object, not a string", "text is a boolean, not a string", ""]);
  assert.throws(() => parseRecords("a\0b\n", "txt", "r.txt"), /r\.txt:1: NUL byte/);
  assert.throws(() => parseRecords("{\n", "jsonl", "r.jsonl"), /r\.jsonl:1: invalid JSON/);
  assert.equal(toCsv([1, 3], new Float32Array([0.25, 0.75]), (p) => (p >= 0.5 ? "positive" : "negative"),
                     ["", "text is a number, not a string"]),
               "row,label,probability,error\n1,negative,0.250000,\n3,positive,0.750000,\"text is a number, not a string\"\n");
  assert.equal(formatProbability(Math.fround(65 / 128)), "0.507812"); // a tie: Python rounds to even
  // Python's f"{p:.6f}" of float32 values, ties included (written by pytest)
  const wrong = meta.formatted.filter(([p, text]) => formatProbability(p) !== text);
  assert.deepEqual(wrong.slice(0, 5), []);
  assert.ok(meta.formatted.length >= 1000);
});
