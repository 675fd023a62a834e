// Input files and CSV output as runtime.predict reads and writes them.
//   .txt:   one review per line ("\n" ends a line, a "\r" before it is dropped); every line is a
//           record, numbered from 1, blank lines too.
//   .jsonl: one object per line with a string "text" field; blank lines hold no record but count.
// CSV: "line,label,probability" with 6 decimals, "\n" line ends -- the format of
// `python -m runtime.predict FILE` (and `--input-format jsonl`); the probabilities are
// onnxruntime-web's, within 1e-5 of Python's, so the 6th decimal can differ.
import { formatProbability } from "./classifier.js";

export class InputError extends Error {
  constructor(message) { super(message); this.name = "InputError"; }
}

function splitLines(content) {
  const lines = content.split("\n");
  if (lines[lines.length - 1] === "") lines.pop(); // a final "\n" ends the last line, it starts none
  return lines.map((line) => (line.endsWith("\r") ? line.slice(0, -1) : line));
}

/** File content -> {lines: [line numbers], texts: [review texts]}. */
export function parseRecords(content, format = "txt", name = "input", textField = "text") {
  const lines = [], texts = [];
  splitLines(content).forEach((line, i) => {
    if (format === "txt") {
      lines.push(i + 1);
      texts.push(line);
      return;
    }
    if (!line.trim()) return;
    let obj;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new InputError(`${name}:${i + 1}: invalid JSON: ${e.message}`);
    }
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) throw new InputError(`${name}:${i + 1}: expected a JSON object`);
    if (!(textField in obj)) throw new InputError(`${name}:${i + 1}: no '${textField}' field`);
    if (typeof obj[textField] !== "string") throw new InputError(`${name}:${i + 1}: field '${textField}' is not a string`);
    lines.push(i + 1);
    texts.push(obj[textField]);
  });
  return { lines, texts };
}

/** CSV text of scored records; labelOf(p) gives a probability's label. */
export function toCsv(lines, probs, labelOf) {
  const rows = ["line,label,probability"];
  for (let i = 0; i < lines.length; i++) rows.push(`${lines[i]},${labelOf(probs[i])},${formatProbability(probs[i])}`);
  return rows.join("\n") + "\n";
}
