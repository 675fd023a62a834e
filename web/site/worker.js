// The demo's inference thread: holds the Classifier, so the page never blocks on the model.
// Messages in:  {type: "predict", id, texts} | {type: "file", id, name, content, format}
// Messages out: {type: "ready", info} | {type: "prediction", id, classes: [{label, probability}], probs: [Float32Array(N)]}
//               {type: "progress", id, done, total} | {type: "done", id, lines, labels, probs, errors, csv}
//               {type: "error", id, message}
// classify's probability: P(labels[1]) for two classes, the predicted label's for N (as the CSV).
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
      // the label (classify) and a bar per class (predictProba): two runs of one review, ~0.1 ms
      postMessage({ type: "prediction", id: msg.id, classes: await clf.classify(msg.texts), probs: await clf.predictProba(msg.texts) });
    } else if (msg.type === "file") {
      const { lines, texts, errors } = parseRecords(msg.content, msg.format, msg.name);
      const classes = await clf.classify(texts, (done, total) => postMessage({ type: "progress", id: msg.id, done, total }));
      postMessage({ type: "done", id: msg.id, lines, errors, csv: toCsv(lines, classes, errors),
                    labels: classes.map((c) => c.label), probs: Float32Array.from(classes, (c) => c.probability) });
    }
  } catch (e) {
    postMessage({ type: "error", id: msg.id, message: e.message });
  }
};
