// MediaPipe Web conformance: @mediapipe/tasks-text's TextClassifier on the bundle's .tflite files
// (tokenizer and vocabulary from the model's metadata) next to our onnxruntime-web Classifier.
// MediaPipe does not lowercase: the text is lowercased with toLowerCase() first, as our tokenizer does.
// MediaPipe Web posts usage logs to a Google host; this page's Content-Security-Policy
// (connect-src 'self') blocks them.
import { Classifier } from "./classifier.js";

const POSITIVE = "positive"; // the one label of labels.txt inside the model

/** A MediaPipe TextClassifier for modelName (a file in this folder). */
export async function mediapipeClassifier(modelName, base = new URL("./", import.meta.url)) {
  const { FilesetResolver, TextClassifier } = await import("./text_bundle.mjs");
  const fileset = await FilesetResolver.forTextTasks(base.href.replace(/\/$/, ""));
  return TextClassifier.createFromOptions(fileset, {
    baseOptions: { modelAssetPath: new URL(modelName, base).href },
    maxResults: -1,
    scoreThreshold: 0,
  });
}

/** P(positive) of each text from a MediaPipe TextClassifier: Float32Array. */
export function mediapipeScores(classifier, texts) {
  return Float32Array.from(texts, (text) => {
    const result = classifier.classify(text.toLowerCase());
    const category = result.classifications[0].categories.find((c) => c.categoryName === POSITIVE);
    if (!category) throw new Error(`MediaPipe returned no '${POSITIVE}' category`);
    return category.score;
  });
}

async function runPage() {
  const table = document.getElementById("rows");
  const texts = [...document.querySelectorAll("#samples li")].map((li) => li.textContent);
  const ours = await (await Classifier.load("./")).predict(texts);
  const columns = [ours];
  for (const name of ["model.tflite", "model.int8.tflite"]) {
    const mp = await mediapipeClassifier(name);
    columns.push(mediapipeScores(mp, texts));
    mp.close();
  }
  texts.forEach((text, i) => {
    const tr = document.createElement("tr");
    for (const cell of [text.slice(0, 60), ...columns.map((c) => c[i].toFixed(6))]) {
      const td = document.createElement("td");
      td.textContent = cell;
      tr.append(td);
    }
    table.append(tr);
  });
  document.getElementById("status").textContent = "done";
}

if (globalThis.document?.getElementById("rows") && !location.search.includes("bench")) runPage().catch((e) => { document.getElementById("status").textContent = `Error: ${e.message}`; });
