// Input files and CSV output as runtime.predict reads and writes them.
//   .txt:   one review per line ("\n" ends a line, a "\r" before it is dropped); every line is a
//           record, numbered from 1, blank lines too.
//   .jsonl: one object per line with a string "text" field; blank lines hold no record but count.
// CSV: "row,label,probability,error" with 6 decimals, "\n" line ends -- the format of
// `python -m runtime.predict FILE` (and `--input-format jsonl`): the probability is P(labels[1])
// for two classes, the predicted label's for N (Classifier.classify); the probabilities are
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

// The bad-row rule of runtime/sources.py (judge): a row is never dropped; a text that is null,
// not a string, missing, empty or whitespace only, or containing U+FFFD is scored (as "" when
// it is not a string) and its error says why.
const EMPTY = "empty text", INVALID_UTF8 = "invalid UTF-8 (replaced with U+FFFD)", NULL = "text is null";
// Python's str.isspace(), not JS's \s (which adds U+FEFF and lacks U+001C-U+001F and U+0085)
const PY_SPACE = /^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;
const JSON_KINDS = { boolean: "a boolean", number: "a number" };

/** (text to score, error or "") of one value, as runtime.sources.judge. */
export function judge(value, textField = "text", missing = false) {
  if (missing) return ["", `no '${textField}' field`];
  if (typeof value === "string") {
    if (value.includes("\ufffd")) return [value, INVALID_UTF8];
    return [value, PY_SPACE.test(value) ? EMPTY : ""];
  }
  if (value === null) return ["", NULL];
  const kind = Array.isArray(value) ? "an array" : JSON_KINDS[typeof value] || "an object";
  return ["", `text is ${kind}, not a string`];
}

/** File content -> {lines: [line numbers], texts: [review texts], errors: [error or ""]}. */
export function parseRecords(content, format = "txt", name = "input", textField = "text") {
  const lines = [], texts = [], errors = [];
  const add = (line, [text, error]) => { lines.push(line); texts.push(text); errors.push(error); };
  splitLines(content).forEach((line, i) => {
    if (line.includes("\0")) throw new InputError(`${name}:${i + 1}: NUL byte: binary input (or not UTF-8 text) is not supported`);
    if (format === "txt") {
      add(i + 1, judge(line, textField));
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
    add(i + 1, judge(obj[textField], textField, !Object.hasOwn(obj, textField)));
  });
  return { lines, texts, errors };
}

/** A CSV field, quoted when it holds a delimiter, quote, CR or LF (a bare CR too: readers split on it). */
function csvField(text) {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * CSV text of scored records; classes[i] is record i's {label, probability} (Classifier.classify).
 * A row with an error has an empty label and probability, as runtime.predict writes it: its score
 * would mean nothing.
 */
export function toCsv(lines, classes, errors = []) {
  const rows = ["row,label,probability,error"];
  for (let i = 0; i < lines.length; i++) {
    const [label, p] = errors[i] ? ["", ""] : [classes[i].label, formatProbability(classes[i].probability)];
    rows.push(`${lines[i]},${csvField(label)},${p},${csvField(errors[i] || "")}`);
  }
  return rows.join("\n") + "\n";
}
