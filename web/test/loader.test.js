// Classifier.load: verified loading over HTTP (a node:http server on 127.0.0.1 serving copies
// of the exported site, sites.js), scores equal to Python's, and refusal of every tampered file.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-web";
import { BundleError, Classifier, formatProbability, parseRecords, toCsv } from "../src/index.js";
import { readMeta } from "./golden.js";
import { editManifest, servedSites } from "./sites.js";

const meta = readMeta();
const site = servedSites(meta.bundle);

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
  assert.deepEqual(await clf.predictProba(texts), Array.from(probs, (p) => new Float32Array([1 - p, p])));
  assert.equal(clf.numClasses, 2);
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
  ["a manifest that is not JSON", (d) => writeFileSync(join(d, "manifest.json"), "{"), /manifest\.json: unreadable manifest: /],
]) {
  test(`load refuses ${what}`, async (t) => {
    const url = site(`bad-${t.name.replace(/\W+/g, "-")}`, edit);
    await assert.rejects(Classifier.load(url, { ort }), (e) => e instanceof BundleError && message.test(e.message));
  });
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
  const classes = (labels) => [0.25, 0.75].map((p, i) => ({ label: labels[i], probability: Math.fround(p) }));
  assert.equal(toCsv([1, 3], classes(["negative", "positive"]), ["", "text is a number, not a string"]),
               "row,label,probability,error\n1,negative,0.250000,\n3,,,\"text is a number, not a string\"\n");
  // a label holding CR or LF is quoted like a comma (a bare CR splits rows in csv readers)
  assert.equal(toCsv([1, 2], classes(["c\nd", "a\rb"])),
               'row,label,probability,error\n1,"c\nd",0.250000,\n2,"a\rb",0.750000,\n');
  assert.equal(formatProbability(Math.fround(65 / 128)), "0.507812"); // a tie: Python rounds to even
  // Python's f"{p:.6f}" of float32 values, ties included (written by pytest)
  const wrong = meta.formatted.filter(([p, text]) => formatProbability(p) !== text);
  assert.deepEqual(wrong.slice(0, 5), []);
  assert.ok(meta.formatted.length >= 1000);
});

// The manifest rules of runtime/manifest.py, in the browser (issue: the loader trusted more).
test("load refuses every manifest the Python loader refuses, naming each problem", async (t) => {
  const requested = [];
  const outside = createServer((req, res) => { requested.push(req.url); res.writeHead(200).end(readFileSync(join(meta.bundle, "vocab.txt"))); });
  await new Promise((resolve) => outside.listen(0, "127.0.0.2", resolve));
  const host = `127.0.0.2:${outside.address().port}`;
  t.after(() => outside.close());
  const vocabEntry = JSON.parse(readFileSync(join(meta.bundle, "manifest.json"), "utf8")).files["vocab.txt"];
  const renamed = (name) => (m) => { m.tokenizer.vocab_file = name; m.files[name] = vocabEntry; };
  const plain = /must be a plain file name inside the bundle/;
  const cases = [
    ["an http vocabulary", renamed(`http://${host}/vocab.txt`), plain],
    ["a protocol-relative vocabulary", renamed(`//${host}/vocab.txt`), plain],
    ["a vocabulary above the site", renamed("../../outside/vocab.txt"), plain],
    ["an absolute vocabulary path", renamed("/outside/vocab.txt"), plain],
    ["a data: vocabulary", renamed("data:,<PAD>%200"), /cannot fetch .*data%3A.*HTTP 404/],
    ["a vocabulary name that is a number", (m) => { m.tokenizer.vocab_file = 7; }, /tokenizer\.vocab_file: must be a file name, got 7/],
    ["a vocabulary not listed in files", (m) => { m.tokenizer.vocab_file = "other.txt"; }, /tokenizer\.vocab_file: "other\.txt" is not listed in files/],
    ["threshold 1.5", (m) => { m.threshold = 1.5; }, /threshold: must be a number between 0 and 1 \(exclusive\), got 1\.5/],
    ["threshold -1", (m) => { m.threshold = -1; }, /threshold: must be a number between 0 and 1/],
    ["labels that repeat", (m) => { m.labels = ["x", "x"]; }, /labels: must be 2 to 1000 distinct non-empty strings/],
    ["labels that are numbers", (m) => { m.labels = [0, 1]; }, /labels: must be 2 to 1000 distinct non-empty strings/],
    ["num_words 5", (m) => { m.tokenizer.num_words = 5; }, /vocab\.txt: \d+ words, manifest\.json says tokenizer\.num_words is 5/],
    ["an extra special token", (m) => { m.tokenizer.special_tokens["<MASK>"] = 4; }, /tokenizer\.special_tokens: .* is not what this library reproduces/],
    ["maxlen 128", (m) => { m.tokenizer.maxlen = 128; }, /model\.onnx does not take 128 ids per review/],
    ["a bad file entry", (m) => { m.files["model.onnx"].size = -1; }, /files\["model\.onnx"\]\.size: must be an integer at least 0, got -1/],
  ];
  for (const [what, change, message] of cases) {
    const url = site(`manifest-${what.replace(/\W+/g, "-")}`, (d) => editManifest(d, change));
    await assert.rejects(Classifier.load(url, { ort }), (e) => e instanceof BundleError && message.test(e.message), what);
  }
  assert.deepEqual(requested, [], "nothing was fetched from another host");
});

test("load lists every problem of a manifest in one BundleError", async () => {
  const url = site("manifest-many", (d) => editManifest(d, (m) => { m.threshold = 2; m.labels = []; delete m.tokenizer.maxlen; }));
  await assert.rejects(Classifier.load(url, { ort }), (e) => e instanceof BundleError && e.problems.length === 3 &&
    /manifest\.json: 3 problems:\n  - tokenizer\.maxlen: missing\n  - labels: .*\n  - threshold: .*/.test(e.message));
});

test("load refuses a huge or deeply nested manifest before parsing it", async () => {
  const huge = site("manifest-huge", (d) => writeFileSync(join(d, "manifest.json"), " ".repeat((4 << 20) + 1)));
  await assert.rejects(Classifier.load(huge, { ort }), (e) => e instanceof BundleError && /manifest\.json: larger than 4194304 bytes/.test(e.message));
  const deep = site("manifest-deep", (d) => writeFileSync(join(d, "manifest.json"), "[".repeat(100000) + "]".repeat(100000)));
  await assert.rejects(Classifier.load(deep, { ort }), (e) => e instanceof BundleError && /nested too deeply/.test(e.message));
});
