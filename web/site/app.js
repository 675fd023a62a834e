// The demo page: all inference runs in worker.js; this file only draws.
// window.reviewkitDemo.firstPredictionMs: time from navigation start to the first label shown.
const $ = (id) => document.getElementById(id);
// From disk (file://) this module does not even load: served.js says so instead.
const worker = new Worker("worker.js", { type: "module" });
const state = { nextId: 1, inFlight: null, pending: false, fileJob: null, labels: [] };
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
  state.labels = info.labels;
  const status = $("status");
  status.textContent = `model ready in ${Math.round(performance.now())} ms`;
  status.className = "status ready";
  if (info.labels.length > 2) return showClasses(info);
  const acc = info.accuracy ? `, ${(100 * info.accuracy).toFixed(1)}% accurate on the IMDB test set` : "";
  $("about").textContent = `Model: the TensorFlow basic text classification model (first ${info.maxlen - 1} words${acc}), `
    + `checked by sha256 against manifest.json before use. Label "${info.labels[1]}" at P \u2265 ${info.threshold}.`;
}

/** N >= 3 labels: a bar per class instead of the two-class meter, and no P(positive) axis. */
function showClasses(info) {
  document.querySelector("h1").textContent = "Text classification";
  document.querySelector(".samples").hidden = true; // IMDB reviews: they mean nothing to other labels
  $("meter").hidden = true;
  $("axis").hidden = true;
  $("bars").hidden = false;
  $("bars").replaceChildren(...info.labels.map((label) => {
    const row = document.createElement("div");
    row.className = "bar-row";
    row.innerHTML = '<span class="bar-label"></span><div class="bar"><div class="bar-fill"></div></div><span class="bar-p"></span>';
    row.querySelector(".bar-label").textContent = label;
    return row;
  }));
  const acc = info.accuracy ? `, ${(100 * info.accuracy).toFixed(1)}% accurate on its test set` : "";
  $("about").textContent = `Model: first ${info.maxlen - 1} words${acc}, checked by sha256 against manifest.json before use. `
    + `${info.labels.length} labels (${info.labels.join(", ")}): the most probable one is shown.`;
}

function showPrediction(msg) {
  if (msg.id !== state.inFlight) return;
  state.inFlight = null;
  const { label, probability: p } = msg.classes[0];
  if (window.reviewkitDemo.firstPredictionMs === null) window.reviewkitDemo.firstPredictionMs = performance.now();
  $("label").textContent = label;
  $("label").className = `label ${label}`;
  $("meter-fill").style.width = `${(100 * p).toFixed(1)}%`;
  $("meter-fill").className = label;
  $("probability").textContent = p.toFixed(4);
  $("bars").querySelectorAll(".bar-row").forEach((row, i) => {
    row.querySelector(".bar-fill").style.width = `${(100 * msg.probs[0][i]).toFixed(1)}%`;
    row.querySelector(".bar-p").textContent = msg.probs[0][i].toFixed(4);
    row.classList.toggle("top", state.labels[i] === label);
  });
  window.reviewkitDemo.lastPrediction = { text: state.inFlightText, label, probability: p, probs: Array.from(msg.probs[0]) };
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
  drawChart([], []);
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
  const scored = msg.labels.map((_, i) => i).filter((i) => !msg.errors[i]);
  const tally = new Map(state.labels.map((label) => [label, 0]));
  for (const i of scored) tally.set(msg.labels[i], tally.get(msg.labels[i]) + 1);
  const counts = [...tally.values()];
  const failed = msg.labels.length - scored.length;
  showProgress(msg.labels.length, msg.labels.length);
  $("job-status").textContent = `${msg.labels.length.toLocaleString()} reviews read in ${seconds.toFixed(2)} s: `
    + counts.map((n, i) => `${n.toLocaleString()} ${state.labels[i]}`).join(", ")
    + (failed ? `, ${failed.toLocaleString()} with an error (no label).` : ".");
  drawChart(scored.map((i) => msg.probs[i]), counts);
  const link = $("download");
  link.href = URL.createObjectURL(new Blob([msg.csv], { type: "text/csv" }));
  link.download = `${state.fileName}.scores.csv`;
  link.hidden = false;
  window.reviewkitDemo.lastFile = { n: msg.labels.length, csv: msg.csv, status: $("job-status").textContent };
}

/** Two labels: a histogram of P(labels[1]) in 20 bins; N: one bar per label, its count of the file's rows. */
function drawChart(probs, labelCounts, bins = 20) {
  if (state.labels.length > 2) return drawBars(labelCounts, state.labels, () => "#3b5bdb");
  const counts = new Array(bins).fill(0);
  for (const p of probs) counts[Math.min(bins - 1, Math.floor(p * bins))]++;
  drawBars(counts, [], (i) => ((i + 0.5) / bins >= 0.5 ? "#1a7f4b" : "#b4322a"));
}

function drawBars(counts, names, color) {
  const canvas = $("histogram"), ctx = canvas.getContext("2d");
  const foot = names.length ? 16 : 0;
  const top = Math.max(1, ...counts), w = canvas.width / Math.max(1, counts.length), h = canvas.height - 18 - foot;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "center";
  counts.forEach((c, i) => {
    const bh = Math.round(h * c / top), bottom = canvas.height - foot;
    ctx.fillStyle = color(i);
    ctx.fillRect(i * w + 2, bottom - bh, w - 4, bh);
    ctx.fillStyle = "#667085";
    if (c) ctx.fillText(String(c), i * w + w / 2, bottom - bh - 4);
    if (names.length && w >= 24) ctx.fillText(names[i], i * w + w / 2, canvas.height - 3); // room for a name
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
