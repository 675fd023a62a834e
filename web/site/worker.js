// The demo's inference thread: holds the Classifier, so the page never blocks on the model.
// Messages in:  {type: "predict", id, texts} | {type: "file", id, name, content, format}
// Messages out: {type: "ready", info} | {type: "prediction", id, probs, labels}
//               {type: "progress", id, done, total} | {type: "done", id, lines, probs, errors, csv}
//               {type: "error", id, message}
import { Classifier } from "./classifier.js";
import { parseRecords, toCsv } from "./records.js";

const loading = Classifier.load(new URL("./", self.location.href));
loading.then(
  (clf) => postMessage({ type: "ready", info: { maxlen: clf.maxlen, labels: clf.labels, threshold: clf.threshold,
                                                accuracy: clf.manifest.verification?.results?.["model.onnx"]?.accuracy } }),
  (e) => postMessage({ type: "error", id: null, message: e.message }),
);

self.onmessage = async ({ data: msg }) => {
  try {
    const clf = await loading;
    if (msg.type === "predict") {
      const probs = await clf.predict(msg.texts);
      postMessage({ type: "prediction", id: msg.id, probs, labels: Array.from(probs, (p) => clf.labelOf(p)) });
    } else if (msg.type === "file") {
      const { lines, texts, errors } = parseRecords(msg.content, msg.format, msg.name);
      const probs = await clf.predict(texts, (done, total) => postMessage({ type: "progress", id: msg.id, done, total }));
      postMessage({ type: "done", id: msg.id, lines, probs, errors, csv: toCsv(lines, probs, (p) => clf.labelOf(p), errors) });
    }
  } catch (e) {
    postMessage({ type: "error", id: msg.id, message: e.message });
  }
};
