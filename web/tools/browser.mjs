// Drive the exported site in headless Chromium (Debian's /usr/bin/chromium, via playwright-core).
//
//   node tools/browser.mjs parity URL OUT.json [SCREENSHOT.png]
//   node tools/browser.mjs bench  URL OUT.json [N]
//   node tools/browser.mjs disk   file:///.../index.html OUT.json
//   node tools/browser.mjs classes URL OUT.json [SCREENSHOT.png]
//
// URL: the site's folder on a local server (http://127.0.0.1:PORT/), with the test texts at
// URL/_test/texts.json (a JSON array of strings). Every request the browser makes is recorded;
// any to another origin is aborted and reported.
//   parity: writes {ids (base64 int32 [n, maxlen]), maxlen, probs, mediapipe: {model.tflite: [...],
//           model.int8.tflite: [...]}, demo: {...}, requests, foreign_requests, errors}
//   bench:  writes rows of {runtime, metric, value, unit} measured in this browser.
//   disk:   the demo opened from disk: writes {status} (the page's status line after load).
//   classes: the demo of an N-class site: each test text typed (its label and bars), then all of
//           them scored as a .txt file: writes {typed: [{text, label, bars}], file: {csv, status}, errors}.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CHROMIUM = process.env.REVIEWKIT_CHROMIUM ?? "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"];

/** A fresh browser (its own user-data dir: a cold cache), recording every request. */
async function openBrowser(origin) {
  const userDataDir = mkdtempSync(join(tmpdir(), "reviewkit-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: FLAGS, ignoreDefaultArgs: ["--enable-automation"],
    viewport: { width: 900, height: 1000 },
  });
  const log = { requests: [], foreign: [], errors: [], responses: [] };
  context.on("request", (r) => log.requests.push(r.url()));
  context.on("response", (r) => log.responses.push(r));
  await context.route((url) => url.origin !== origin, (route) => {
    log.foreign.push(route.request().url());
    return route.abort("blockedbyclient");
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => log.errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") log.errors.push(`console: ${m.text()}`); });
  const close = async () => { await context.close(); rmSync(userDataDir, { recursive: true, force: true }); };
  return { context, page, log, close };
}

async function transferredBytes(log) {
  let total = 0;
  for (const response of log.responses) {
    const sizes = await response.request().sizes().catch(() => null);
    if (sizes) total += sizes.responseBodySize + sizes.responseHeadersSize;
  }
  return total;
}

// --- in-page functions (run inside Chromium) ------------------------------------------------
async function pageScoreOurs() {
  const texts = await (await fetch("_test/texts.json")).json();
  const { Classifier } = await import("./classifier.js");
  const clf = await Classifier.load("./");
  const ids = clf.tokenizer.encodeBatch(texts);
  const probs = await clf.predict(texts);
  const bytes = new Uint8Array(ids.buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return { ids: btoa(binary), maxlen: clf.maxlen, probs: Array.from(probs) };
}

async function pageScoreMediapipe(models) {
  const texts = await (await fetch("_test/texts.json")).json();
  const { mediapipeClassifier, mediapipeScores } = await import("./conformance.js");
  const out = {};
  for (const name of models) {
    const classifier = await mediapipeClassifier(name);
    out[name] = Array.from(mediapipeScores(classifier, texts));
    classifier.close();
  }
  return out;
}

async function pageBench({ n, singles, batchSize, repeats }) {
  const all = await (await fetch("_test/texts.json")).json();
  const texts = Array.from({ length: n }, (_, i) => all[i % all.length]);
  const { Classifier } = await import("./classifier.js");
  const { mediapipeClassifier, mediapipeScores } = await import("./conformance.js");
  const pct = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
  const time = async (fn) => { const t = performance.now(); await fn(); return performance.now() - t; };
  const clf = await Classifier.load("./", { batchSize });
  const mp = await mediapipeClassifier("model.tflite");
  const mp8 = await mediapipeClassifier("model.int8.tflite");
  await clf.predict(texts.slice(0, batchSize)); mediapipeScores(mp, texts.slice(0, 50)); mediapipeScores(mp8, texts.slice(0, 50)); // warm-up
  const rows = [];
  const add = (runtime, metric, value, unit) => rows.push({ runtime, metric, value, unit });
  // best of `repeats` passes, the runtimes taking turns (the machine's load drifts)
  const best = { ours: Infinity, mp: Infinity, mp8: Infinity };
  for (let r = 0; r < repeats; r++) {
    best.ours = Math.min(best.ours, await time(() => clf.predict(texts)));
    best.mp = Math.min(best.mp, await time(() => mediapipeScores(mp, texts)));
    best.mp8 = Math.min(best.mp8, await time(() => mediapipeScores(mp8, texts)));
  }
  add("onnxruntime-web", `reviews/s (batch ${batchSize}, best of ${repeats})`, n / best.ours * 1000, "reviews/s");
  add("mediapipe-web float", `reviews/s (one at a time, best of ${repeats})`, n / best.mp * 1000, "reviews/s");
  add("mediapipe-web int8", `reviews/s (one at a time, best of ${repeats})`, n / best.mp8 * 1000, "reviews/s");
  for (const [runtime, one] of [["onnxruntime-web", (t) => clf.predict([t])], ["mediapipe-web float", (t) => mediapipeScores(mp, [t])],
                                ["mediapipe-web int8", (t) => mediapipeScores(mp8, [t])]]) {
    const lat = [];
    for (let i = 0; i < singles; i++) lat.push(await time(() => one(texts[i])));
    add(runtime, "single-review latency p50", pct(lat, 0.5), "ms");
    add(runtime, "single-review latency p99", pct(lat, 0.99), "ms");
  }
  mp.close(); mp8.close();
  return rows;
}

async function pageFirstMediapipe() {
  const { mediapipeClassifier, mediapipeScores } = await import("./conformance.js");
  const classifier = await mediapipeClassifier("model.tflite");
  mediapipeScores(classifier, ["a wonderful, moving film."]);
  return performance.now(); // since navigation start
}

// --- the demo page ------------------------------------------------------------------------------
/** Open the demo and wait for its first prediction: its time since navigation start. */
async function openDemo(page, base) {
  await page.goto(base + "index.html");
  await page.waitForFunction(() => window.reviewkitDemo?.firstPredictionMs !== null, null, { timeout: 60000 });
  return page.evaluate(() => window.reviewkitDemo.firstPredictionMs);
}

/** Type text into the demo and wait until its prediction is shown. */
async function typeReview(page, text) {
  await page.fill("#review", text);
  await page.waitForFunction((t) => window.reviewkitDemo.lastPrediction?.text === t, text);
}

/** Drop lines as a .txt file on the demo; its lastFile {n, csv, status} once scored. */
async function scoreLines(page, lines) {
  await page.setInputFiles("#file", { name: "reviews.txt", mimeType: "text/plain", buffer: Buffer.from(lines.join("\n") + "\n") });
  await page.waitForFunction(() => window.reviewkitDemo.lastFile !== null, null, { timeout: 60000 });
  await page.waitForTimeout(300);
  return page.evaluate(() => window.reviewkitDemo.lastFile);
}

// --- modes ------------------------------------------------------------------------------------
async function demo(page, base, screenshot) {
  const first = await openDemo(page, base);
  const shown = [];
  for (const button of await page.locator("[data-sample]").all()) {
    const sample = await button.getAttribute("data-sample");
    await button.click();
    await page.waitForFunction((t) => window.reviewkitDemo.lastPrediction?.text === t, sample);
    shown.push({ text: sample, ...(await page.evaluate(() => window.reviewkitDemo.lastPrediction)), shown: await page.textContent("#label") });
  }
  await typeReview(page, "A wonderful, moving film with a brilliant cast. I loved every minute of it.");
  const reviews = await page.evaluate(async () => (await (await fetch("_test/texts.json")).json()).filter((_, i) => i % 10 === 0).slice(0, 200));
  const downloadHiddenFresh = await page.isHidden("#download");
  const file = await scoreLines(page, reviews.map((t) => t.replace(/[\r\n]/g, " ")));
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  const download = { hidden_on_a_fresh_page: downloadHiddenFresh, visible_after_a_file: await page.isVisible("#download") };
  await page.setInputFiles("#file", { name: "bad.jsonl", mimeType: "text/plain", buffer: Buffer.from("{\n") });
  await page.waitForFunction(() => document.getElementById("job-status").textContent.startsWith("Error:"), null, { timeout: 60000 });
  download.hidden_after_a_failed_file = await page.isHidden("#download");
  download.failed_status = await page.textContent("#job-status");
  return { first_prediction_ms: first, samples: shown, file_n: file.n, file_csv: file.csv, file_status: file.status,
           download, file_texts: reviews.map((t) => t.replace(/[\r\n]/g, " ")) };
}

async function parity(base, outPath, screenshot) {
  const origin = new URL(base).origin;
  const b = await openBrowser(origin);
  try {
    const demoResult = await demo(b.page, base, screenshot);
    const ours = await b.page.evaluate(pageScoreOurs);
    await b.page.goto(base + "conformance.html");
    await b.page.waitForFunction(() => document.getElementById("status").textContent !== "running\u2026", null, { timeout: 60000 });
    const conformanceStatus = await b.page.textContent("#status");
    const mediapipe = await b.page.evaluate(pageScoreMediapipe, ["model.tflite", "model.int8.tflite"]);
    writeFileSync(outPath, JSON.stringify({ ...ours, mediapipe, demo: demoResult, conformance_status: conformanceStatus,
      requests: b.log.requests, foreign_requests: b.log.foreign, errors: b.log.errors, chromium: b.context.browser()?.version() ?? null }));
  } finally {
    await b.close();
  }
}

async function bench(base, outPath, n) {
  const origin = new URL(base).origin;
  const rows = [];
  // Cold start of the demo: navigation -> first label on screen, and every byte it fetched.
  let b = await openBrowser(origin);
  try {
    await b.page.goto(base + "index.html");
    await b.page.waitForFunction(() => window.reviewkitDemo?.firstPredictionMs !== null, null, { timeout: 60000 });
    rows.push({ runtime: "onnxruntime-web", metric: "navigation to first prediction (demo, cold cache)", value: await b.page.evaluate(() => window.reviewkitDemo.firstPredictionMs), unit: "ms" });
    rows.push({ runtime: "onnxruntime-web", metric: "bytes transferred (demo, cold cache)", value: await transferredBytes(b.log), unit: "bytes" });
  } finally { await b.close(); }
  b = await openBrowser(origin);
  try {
    await b.page.goto(base + "conformance.html?bench");
    rows.push({ runtime: "mediapipe-web float", metric: "navigation to first prediction (cold cache)", value: await b.page.evaluate(pageFirstMediapipe), unit: "ms" });
    rows.push({ runtime: "mediapipe-web float", metric: "bytes transferred (page + runtime + model, cold cache)", value: await transferredBytes(b.log), unit: "bytes" });
  } finally { await b.close(); }
  b = await openBrowser(origin);
  try {
    await b.page.goto(base + "conformance.html?bench");
    rows.push(...(await b.page.evaluate(pageBench, { n, singles: 300, batchSize: 256, repeats: 3 })));
    if (b.log.foreign.length) throw new Error(`requests to other hosts: ${b.log.foreign.join(", ")}`);
  } finally { await b.close(); }
  writeFileSync(outPath, JSON.stringify({ rows }));
}

async function classes(base, outPath, screenshot) {
  const b = await openBrowser(new URL(base).origin);
  try {
    await openDemo(b.page, base);
    const texts = await b.page.evaluate(async () => (await fetch("_test/texts.json")).json());
    const typed = [];
    for (const text of texts.filter((t) => t.trim())) {
      await typeReview(b.page, text);
      const bars = await b.page.$$eval(".bar-row", (rows) => rows.map((r) => ({
        label: r.querySelector(".bar-label").textContent, width: r.querySelector(".bar-fill").style.width,
        shown: r.querySelector(".bar-p").textContent, top: r.classList.contains("top"), visible: r.checkVisibility() })));
      typed.push({ text, label: await b.page.textContent("#label"), bars });
    }
    const file = await scoreLines(b.page, texts);
    if (screenshot) await b.page.screenshot({ path: screenshot, fullPage: true });
    writeFileSync(outPath, JSON.stringify({ typed, file, meter_hidden: await b.page.isHidden("#meter"),
                                            errors: b.log.errors, foreign_requests: b.log.foreign }));
  } finally {
    await b.close();
  }
}

async function disk(url, outPath) {
  const userDataDir = mkdtempSync(join(tmpdir(), "reviewkit-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: FLAGS, ignoreDefaultArgs: ["--enable-automation"] });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(url);
    await page.waitForFunction(() => !document.getElementById("status").textContent.startsWith("loading"), null, { timeout: 30000 });
    writeFileSync(outPath, JSON.stringify({ status: await page.textContent("#status") }));
  } finally {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

const [mode, base, outPath, extra] = process.argv.slice(2);
if (mode === "parity") await parity(base, outPath, extra);
else if (mode === "disk") await disk(base, outPath);
else if (mode === "classes") await classes(base, outPath, extra);
else if (mode === "bench") await bench(base, outPath, Number(extra ?? 5000));
else { console.error("usage: node tools/browser.mjs parity|bench|disk|classes URL OUT.json [SCREENSHOT|N]"); process.exit(2); }
