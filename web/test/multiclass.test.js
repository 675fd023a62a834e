// N-class bundles (a 3-class site: labels alpha, beta, gamma; pytest writes its golden files):
// the manifest's label rules of runtime/bundle.py with their exact messages, labels.txt and the
// model's output width checked at load, predictProba like Python onnxruntime, classify's arg-max.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-web";
import { argmax } from "../src/classifier.js";
import { BundleError, Classifier, formatProbability, parseManifest, toCsv } from "../src/index.js";
import { MAX_LABELS } from "../src/manifest.js";
import { readMeta } from "./golden.js";
import { editManifest, replaceListed, servedSites } from "./sites.js";

const meta = readMeta();
const site = servedSites(meta.bundle);
const manifest = () => JSON.parse(readFileSync(join(meta.bundle, "manifest.json"), "utf8"));
const LABELS = "labels: must be 2 to 1000 distinct non-empty strings (the class names, in output order), got";

/** The problems parseManifest finds in the site's manifest after change(m). */
function problems(change) {
  const m = manifest();
  change(m);
  try {
    parseManifest(m);
  } catch (e) {
    assert.ok(e instanceof BundleError);
    return e.problems;
  }
  return [];
}

test("labels: 2 to MAX_LABELS distinct non-empty strings, as runtime/bundle.py", () => {
  assert.equal(MAX_LABELS, meta.max_labels);
  assert.deepEqual(meta.labels, ["alpha", "beta", "gamma"]);
  assert.deepEqual(problems(() => {}), []);
  const many = (n) => Array.from({ length: n }, (_, i) => `c${i}`);
  assert.deepEqual(problems((m) => { m.labels = many(MAX_LABELS); }), []);
  for (const [labels, shown] of [[many(MAX_LABELS + 1), '["c0","c1","c2",'], [["alpha"], '["alpha"]'],
                                 [["a", "b", "a"], '["a","b","a"]'], [["a", "", "c"], '["a","","c"]'],
                                 [["a", 2, "c"], '["a",2,"c"]'], ["abc", '"abc"'], [null, "null"]]) {
    const [problem] = problems((m) => { m.labels = labels; });
    assert.ok(problem.startsWith(`${LABELS} ${shown}`), problem);
  }
  assert.deepEqual(problems((m) => { delete m.labels; }), ["labels: missing (the class names, in output order)"]);
});

test("threshold: a number for two labels, null (the arg-max) for three or more", () => {
  assert.deepEqual(problems((m) => { m.threshold = 0.5; }), ["threshold: must be null for 3 labels (the arg-max), got 0.5"]);
  assert.deepEqual(problems((m) => { m.labels = ["alpha", "beta"]; }),
                   ["threshold: must be a number between 0 and 1 (exclusive), got null"]);
  assert.deepEqual(problems((m) => { m.labels = ["alpha", "beta"]; m.threshold = 0.5; }), []);
  assert.deepEqual(problems((m) => { m.threshold = 1.5; }), ["threshold: must be null for 3 labels (the arg-max), got 1.5"]);
  assert.deepEqual(problems((m) => { m.labels = ["alpha", "beta"]; m.threshold = 1.5; }),
                   ["threshold: must be a number between 0 and 1 (exclusive), got 1.5"]);
  assert.deepEqual(problems((m) => { delete m.threshold; }),
                   ["threshold: missing (two labels: the probability from which the second is predicted; more: null)"]);
  // unusable labels: null may be right, a number is checked
  assert.deepEqual(problems((m) => { m.labels = ["a"]; }), [`${LABELS} ["a"]`]);
  assert.deepEqual(problems((m) => { m.labels = ["a"]; m.threshold = 2; }),
                   [`${LABELS} ["a"]`, "threshold: must be a number between 0 and 1 (exclusive), got 2"]);
});

test("load refuses a labels.txt that is not the manifest's labels", async () => {
  const expected = 'do not match the labels of manifest.json (expected ["alpha","beta","gamma"])';
  for (const [i, [content, message]] of [
    ["alpha\nbeta\n", `labels.txt: lines ["alpha","beta"] ${expected}`],
    ["alpha\nbeta\ngamma\r\n", `labels.txt: lines ["alpha","beta","gamma\\r"] ${expected}`],
    [Buffer.from([0xff, 0x0a]), `labels.txt: lines ["\ufffd"] ${expected}`], // invalid UTF-8 replaced, as Python
  ].entries()) {
    const url = site(`labels-${i}`, (d) => replaceListed(d, "labels.txt", content));
    await assert.rejects(Classifier.load(url, { ort }), (e) => e instanceof BundleError && e.message === message, message);
  }
  // a bundle without labels.txt is not checked (as runtime/bundle.py); no final newline: the same lines
  await Classifier.load(site("labels-unlisted", (d) => editManifest(d, (m) => { delete m.files["labels.txt"]; })), { ort });
  await Classifier.load(site("labels-no-newline", (d) => replaceListed(d, "labels.txt", "alpha\nbeta\ngamma")), { ort });
});

test("load refuses a model whose output width is not the labels'", async () => {
  const relabel = (labels, threshold, lines) => (d) => {
    editManifest(d, (m) => { m.labels = labels; m.threshold = threshold; });
    replaceListed(d, "labels.txt", lines);
  };
  for (const [name, edit, message] of [
    ["four", relabel(["alpha", "beta", "gamma", "delta"], null, "alpha\nbeta\ngamma\ndelta\n"),
     "model.onnx: model output shape [?, 3] does not fit the 4 labels of manifest.json (expected [?, 4])"],
    ["two", relabel(["alpha", "beta"], 0.5, "beta\n"),
     "model.onnx: model output shape [?, 3] does not fit the 2 labels of manifest.json (expected [?, 1])"],
  ]) {
    await assert.rejects(Classifier.load(site(`width-${name}`, edit), { ort }), (e) => e instanceof BundleError && e.message === message);
  }
});

test("predictProba gives one probability per label like Python onnxruntime; predict refuses", async () => {
  const clf = await Classifier.load(site("good"), { ort, batchSize: 4 });
  const texts = Object.keys(meta.probs);
  assert.equal(clf.numClasses, 3);
  assert.equal(clf.threshold, null);
  const rows = await clf.predictProba(texts);
  assert.equal(rows.length, texts.length);
  rows.forEach((row, i) => {
    assert.ok(row instanceof Float32Array && row.length === 3);
    row.forEach((p, j) => assert.ok(Math.abs(p - meta.probs[texts[i]][j]) <= 1e-5, `${texts[i]}[${j}]: ${p}`));
  });
  assert.deepEqual(await clf.predictProba([]), []);
  await assert.rejects(clf.predict(texts), { message: "predict() gives one probability per text for two-class bundles; "
                                                     + "this bundle has 3 labels: use predictProba()" });
});

test("classify gives the arg-max label and its probability", async () => {
  const clf = await Classifier.load(site("classify"), { ort, batchSize: 4 });
  const texts = Object.keys(meta.probs);
  const [rows, classes] = [await clf.predictProba(texts), await clf.classify(texts)];
  classes.forEach((c, i) => {
    const best = rows[i].indexOf(Math.max(...rows[i]));
    assert.deepEqual(c, { label: meta.labels[best], probability: rows[i][best] });
  });
  assert.deepEqual(classes.slice(0, 3).map((c) => c.label), ["alpha", "beta", "gamma"]); // the class words decide
  assert.equal(toCsv([1, 2], classes.slice(0, 2)),
               `row,label,probability,error\n1,alpha,${formatProbability(classes[0].probability)},\n2,beta,${formatProbability(classes[1].probability)},\n`);
});

test("argmax: ties go to the lowest index, as export/verify.py", () => {
  assert.equal(argmax(new Float32Array([0.2, 0.4, 0.4]), 0, 3), 1);
  assert.equal(argmax(new Float32Array([9, 0.5, 0.5, 0.5]), 1, 3), 0);
  assert.equal(argmax(new Float32Array([0, 0.1, 0.3, 0.6]), 1, 3), 2);
});
