// manifest.json read once into a checked object: the browser's root of trust, with the rules of
// runtime/manifest.py (the Python loader). Every key the loader uses is checked here: presence,
// type, range, and for the tokenizer contract equality with what tokenizer.js reproduces. All
// the problems of one manifest are reported together in one BundleError, each naming its key.
// File names must be plain names inside the site: they are percent-encoded into one path
// segment of the site's folder, so no name can reach another host, folder or a data: URL.
import { DELIM_PATTERN, SPECIAL_TOKENS, TOKENIZER_VERSION } from "./tokenizer.js";

export const FORMAT_VERSION = 1;
export const MAX_MANIFEST_BYTES = 4 << 20; // as runtime/manifest.py: a real one is ~4 KB
export const MAX_VOCAB_BYTES = 64 << 20; // as runtime/tokenizer.py
export const MAX_MAXLEN = 16_384;
export const MAX_NUM_WORDS = 10_000_000;
export const MAX_DEPTH = 64; // a real manifest nests 4 deep; JSON.parse recurses
export const MAX_LABELS = 1000; // runtime/bundle.py's MAX_LABELS (test_web_node.py checks they agree)
const SHA256 = /^[0-9a-f]{64}$/;

export const CONTRACT = {
  type: "regex", version: TOKENIZER_VERSION, delim_pattern: DELIM_PATTERN, lowercase: true,
  special_tokens: Object.fromEntries(SPECIAL_TOKENS.map((t, i) => [t, i])),
  prepend_start: true, unknown_token: "<UNKNOWN>", truncation: "end", padding: "end",
};

export class BundleError extends Error {
  constructor(message, problems = [message]) { super(message); this.name = "BundleError"; this.problems = problems; }
}

/** One problem: "where: problem"; several: a first line and one line per problem (as Python). */
export function collected(where, problems) {
  if (problems.length === 1) return new BundleError(`${where}: ${problems[0]}`, problems);
  return new BundleError([`${where}: ${problems.length} problems:`, ...problems.map((p) => `  - ${p}`)].join("\n"), problems);
}

/** A JSON value as one short piece of text for an error message. */
export function show(value) {
  let text;
  try { text = JSON.stringify(value) ?? String(value); } catch { text = String(value); }
  return text.length <= 100 ? text : `${text.slice(0, 97)}...`;
}

/** Why name is not a plain file name inside the bundle (null: it is). */
export function nameProblem(name) {
  if (typeof name !== "string" || !name) return `must be a file name, got ${show(name)}`;
  if (name === "." || name === ".." || /[/\\\0]/.test(name)) return "must be a plain file name inside the bundle (no /, \\, .., NUL)";
  return null;
}

/** The URL of a plain file name inside the folder base: one percent-encoded path segment. */
export function fileUrl(base, name) {
  const why = nameProblem(name);
  if (why) throw new BundleError(`${show(name)}: ${why}`);
  return new URL(encodeURIComponent(name), base);
}

/** The deepest nesting of arrays and objects in JSON text (strings skipped), without parsing it. */
export function jsonDepth(text) {
  let depth = 0, deepest = 0, inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) deepest = Math.max(deepest, ++depth);
    else if (c === 93 || c === 125) depth--;
  }
  return deepest;
}

/** Decoded manifest text -> the JSON object, or BundleError (not UTF-8, not JSON, too deep). */
export function decodeManifest(bytes, where = "manifest.json") {
  let text;
  try { text = new TextDecoder("utf-8", { fatal: true }).decode(bytes); } catch { throw new BundleError(`${where}: unreadable manifest: not UTF-8`); }
  if (jsonDepth(text) > MAX_DEPTH) throw new BundleError(`${where}: unreadable manifest: nested too deeply`);
  try { return JSON.parse(text); } catch (e) { throw new BundleError(`${where}: unreadable manifest: ${e.message}`); }
}

/** The checked manifest of a decoded JSON value, or one BundleError listing every problem. */
export function parseManifest(obj, where = "manifest.json") {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) throw new BundleError(`${where}: not a manifest (a JSON ${jsonType(obj)}, not an object)`);
  if (obj.format_version !== FORMAT_VERSION) {
    const shown = "format_version" in obj ? show(obj.format_version) : "missing";
    throw new BundleError(`${where}: unknown format_version ${shown} (this library reads ${FORMAT_VERSION})`);
  }
  const problems = [];
  const tokenizer = checkTokenizer(obj, problems);
  checkThreshold(obj, checkLabels(obj, problems), problems);
  const files = checkFiles(obj, problems);
  if (tokenizer && files && !(tokenizer.vocab_file in files)) problems.push(`tokenizer.vocab_file: ${show(tokenizer.vocab_file)} is not listed in files`);
  if (problems.length) throw collected(where, problems);
  return obj;
}

function section(obj, key, problems, what) {
  if (!(key in obj)) { problems.push(`${key}: missing (${what})`); return undefined; }
  return obj[key];
}

function checkTokenizer(obj, problems) {
  const cfg = section(obj, "tokenizer", problems, "the tokenizer contract");
  if (cfg === undefined) return null;
  if (cfg === null || typeof cfg !== "object" || Array.isArray(cfg)) { problems.push(`tokenizer: must be an object, got ${show(cfg)}`); return null; }
  const before = problems.length;
  for (const [key, expected] of Object.entries(CONTRACT)) {
    if (!(key in cfg)) problems.push(`tokenizer.${key}: missing`);
    else if (!same(cfg[key], expected)) problems.push(`tokenizer.${key}: ${show(cfg[key])} is not what this library reproduces (${show(expected)})`);
  }
  checkInt(cfg, "maxlen", 1, MAX_MAXLEN, problems, "tokenizer.");
  checkInt(cfg, "num_words", SPECIAL_TOKENS.length + 1, MAX_NUM_WORDS, problems, "tokenizer.");
  if (!("vocab_file" in cfg)) problems.push("tokenizer.vocab_file: missing");
  else if (nameProblem(cfg.vocab_file)) problems.push(`tokenizer.vocab_file: ${nameProblem(cfg.vocab_file)}`);
  return problems.length > before ? null : cfg;
}

function checkLabels(obj, problems) {
  const labels = section(obj, "labels", problems, "the class names, in output order");
  if (labels === undefined) return null;
  if (!Array.isArray(labels) || labels.length < 2 || labels.length > MAX_LABELS
      || !labels.every((x) => typeof x === "string" && x) || new Set(labels).size !== labels.length) {
    problems.push(`labels: must be 2 to ${MAX_LABELS} distinct non-empty strings (the class names, in output order), got ${show(labels)}`);
    return null;
  }
  return labels;
}

/** The threshold against the labels (runtime/bundle.py's _classes): a number in (0, 1) for two
 * labels, null (the arg-max) for N >= 3, either while the labels are unusable. */
function checkThreshold(obj, labels, problems) {
  const value = section(obj, "threshold", problems, "two labels: the probability from which the second is predicted; more: null");
  if (value === undefined) return;
  if (labels && labels.length > 2) {
    if (value !== null) problems.push(`threshold: must be null for ${labels.length} labels (the arg-max), got ${show(value)}`);
  } else if ((value !== null || labels) && (typeof value !== "number" || !Number.isFinite(value) || !(value > 0 && value < 1))) {
    problems.push(`threshold: must be a number between 0 and 1 (exclusive), got ${show(value)}`);
  }
}

/** labels.txt's lines (MediaPipe's categories, one per output score): two classes give one
 * sigmoid score, P(labels[1]); N >= 3 one softmax score per label (runtime/bundle.py). */
export function labelsFileLines(labels) {
  return labels.length === 2 ? [labels[1]] : [...labels];
}

/** Refuses (BundleError) labels.txt's bytes unless its lines are labelsFileLines(labels), as runtime/bundle.py. */
export function checkLabelsFile(bytes, labels, name = "labels.txt") {
  const lines = new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes).split("\n"); // as Python: U+FFFD, BOM kept
  if (lines[lines.length - 1] === "") lines.pop(); // a final "\n" ends the last line
  const expected = labelsFileLines(labels);
  if (lines.length !== expected.length || lines.some((line, i) => line !== expected[i])) {
    throw new BundleError(`${name}: lines ${show(lines)} do not match the labels of manifest.json (expected ${show(expected)})`);
  }
}

function checkFiles(obj, problems) {
  const files = section(obj, "files", problems, "the size and sha256 of every file");
  if (files === undefined) return null;
  if (files === null || typeof files !== "object" || Array.isArray(files)) { problems.push(`files: must be an object of name -> {size, sha256}, got ${show(files)}`); return null; }
  const before = problems.length;
  for (const [name, entry] of Object.entries(files)) {
    const where = `files[${show(name)}]`;
    const why = nameProblem(name);
    if (why) { problems.push(`${where}: ${why}`); continue; }
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) { problems.push(`${where}: must be an object {size, sha256}, got ${show(entry)}`); continue; }
    checkInt(entry, "size", 0, null, problems, `${where}.`);
    if (!("sha256" in entry)) problems.push(`${where}.sha256: missing`);
    else if (typeof entry.sha256 !== "string" || !SHA256.test(entry.sha256)) problems.push(`${where}.sha256: must be 64 lowercase hex digits, got ${show(entry.sha256)}`);
  }
  return problems.length > before ? null : files;
}

function checkInt(obj, key, low, high, problems, prefix) {
  if (!(key in obj)) { problems.push(`${prefix}${key}: missing`); return; }
  const value = obj[key];
  if (!Number.isSafeInteger(value) || value < low || (high !== null && value > high)) {
    const limits = high !== null ? `from ${low} to ${high}` : `at least ${low}`;
    problems.push(`${prefix}${key}: must be an integer ${limits}, got ${show(value)}`);
  }
}

/** Equal JSON values of the same JSON types. */
function same(value, expected) {
  if (expected !== null && typeof expected === "object") {
    if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
    const keys = Object.keys(expected);
    return Object.keys(value).length === keys.length && keys.every((k) => k in value && same(value[k], expected[k]));
  }
  return value === expected;
}

function jsonType(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}
