// The demo page: all inference runs in worker.js; this file only draws.
// window.reviewkitDemo.firstPredictionMs: time from navigation start to the first label shown.
const $ = (id) => document.getElementById(id);
// From disk (file://) this module does not even load: served.js says so instead.
const worker = new Worker("worker.js", { type: "module" });
const state = { nextId: 1, inFlight: null, pending: false, fileJob: null, threshold: 0.5 };
window.reviewkitDemo = { firstPredictionMs: null, lastPrediction: null, lastFile: null }; // read by the tests

worker.onmessage = ({ data: msg }) => {
  if (msg.type === "ready") showReady(msg.info);
  else if (msg.type === "prediction") showPrediction(msg);
  else if (msg.type === "progress") showProgress(msg.done, msg.total);
  else if (msg.type === "done") showFileResult(msg);
  else if (msg.type === "error") showError(msg);
};

function requestPrediction() {
  if (state.inFlight !== null) { state.pending = true; return; } // coalesce keystrokes
  state.inFlight = state.nextId++;
  state.inFlightText = $("review").value;
  worker.postMessage({ type: "predict", id: state.inFlight, texts: [state.inFlightText] });
}

function showReady(info) {
  state.threshold = info.threshold;
  const status = $("status");
  status.textContent = `model ready in ${Math.round(performance.now())} ms`;
  status.className = "status ready";
  const acc = info.accuracy ? `, ${(100 * info.accuracy).toFixed(1)}% accurate on the IMDB test set` : "";
  $("about").textContent = `Model: the TensorFlow basic text classification model (first ${info.maxlen - 1} words${acc}), `
    + `checked by sha256 against manifest.json before use. Label "${info.labels[1]}" at P \u2265 ${info.threshold}.`;
}

function showPrediction(msg) {
  if (msg.id !== state.inFlight) return;
  state.inFlight = null;
  const p = msg.probs[0];
  if (window.reviewkitDemo.firstPredictionMs === null) window.reviewkitDemo.firstPredictionMs = performance.now();
  $("label").textContent = msg.labels[0];
  $("label").className = `label ${msg.labels[0]}`;
  $("meter-fill").style.width = `${(100 * p).toFixed(1)}%`;
  $("meter-fill").className = msg.labels[0];
  $("probability").textContent = p.toFixed(4);
  window.reviewkitDemo.lastPrediction = { text: state.inFlightText, label: msg.labels[0], probability: p };
  if (state.pending) { state.pending = false; requestPrediction(); }
}

function showError(msg) {
  if (msg.id === state.inFlight) state.inFlight = null;
  if (state.fileJob !== null && msg.id === state.fileJob) {
    $("job-status").textContent = `Error: ${msg.message}`;
    hideDownload(); // never offer the previous file's CSV for a file that failed
  }
  else { $("status").textContent = `Error: ${msg.message}`; $("status").className = "status error"; }
}

function hideDownload() {
  const link = $("download");
  link.hidden = true;
  if (link.href) URL.revokeObjectURL(link.href);
  link.removeAttribute("href");
}

function scoreFile(file) {
  const format = file.name.toLowerCase().endsWith(".jsonl") ? "jsonl" : "txt";
  state.fileJob = state.nextId++;
  state.fileStart = performance.now();
  $("job").hidden = false;
  hideDownload();
  $("job-status").textContent = `reading ${file.name}\u2026`;
  showProgress(0, 1);
  drawHistogram(new Float32Array(0));
  file.text().then((content) => worker.postMessage({ type: "file", id: state.fileJob, name: file.name, content, format }));
  state.fileName = file.name.replace(/\.[^.]*$/, "");
}

function showProgress(done, total) {
  $("progress-fill").style.width = `${total ? (100 * done / total).toFixed(1) : 100}%`;
  if (done) $("job-status").textContent = `scored ${done.toLocaleString()} of ${total.toLocaleString()} reviews\u2026`;
}

function showFileResult(msg) {
  if (msg.id !== state.fileJob) return;
  const seconds = (performance.now() - state.fileStart) / 1000;
  // a row with an error has no label: it is counted apart, never as a prediction
  const scored = msg.probs.filter((_, i) => !msg.errors[i]);
  const positive = scored.reduce((n, p) => n + (p >= state.threshold ? 1 : 0), 0);
  const failed = msg.probs.length - scored.length;
  showProgress(msg.probs.length, msg.probs.length);
  $("job-status").textContent = `${msg.probs.length.toLocaleString()} reviews read in ${seconds.toFixed(2)} s: `
    + `${positive.toLocaleString()} positive, ${(scored.length - positive).toLocaleString()} negative`
    + (failed ? `, ${failed.toLocaleString()} with an error (no label).` : ".");
  drawHistogram(scored);
  const link = $("download");
  link.href = URL.createObjectURL(new Blob([msg.csv], { type: "text/csv" }));
  link.download = `${state.fileName}.scores.csv`;
  link.hidden = false;
  window.reviewkitDemo.lastFile = { n: msg.probs.length, csv: msg.csv, status: $("job-status").textContent };
}

function drawHistogram(probs, bins = 20) {
  const canvas = $("histogram"), ctx = canvas.getContext("2d");
  const counts = new Array(bins).fill(0);
  for (const p of probs) counts[Math.min(bins - 1, Math.floor(p * bins))]++;
  const top = Math.max(1, ...counts), w = canvas.width / bins, h = canvas.height - 18;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "center";
  counts.forEach((c, i) => {
    const bh = Math.round(h * c / top);
    ctx.fillStyle = (i + 0.5) / bins >= 0.5 ? "#1a7f4b" : "#b4322a";
    ctx.fillRect(i * w + 2, canvas.height - bh, w - 4, bh);
    if (c) { ctx.fillStyle = "#667085"; ctx.fillText(String(c), i * w + w / 2, canvas.height - bh - 4); }
  });
}

$("review").addEventListener("input", requestPrediction);
document.querySelectorAll("[data-sample]").forEach((b) => b.addEventListener("click", () => {
  $("review").value = b.dataset.sample;
  requestPrediction();
}));
$("file").addEventListener("change", (e) => { if (e.target.files[0]) scoreFile(e.target.files[0]); });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files[0]) scoreFile(e.dataTransfer.files[0]);
});
requestPrediction(); // the sample text: the first prediction arrives as soon as the model is loaded
