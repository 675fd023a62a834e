// Classifier: a reviewkit bundle (manifest.json, vocab.txt, model.onnx) scored with onnxruntime-web.
//
//   const clf = await Classifier.load("./");          // the folder that holds manifest.json
//   await clf.predict(["A wonderful film."]);         // Float32Array [0.709...]: P(labels[1]), two classes
//   await clf.predictProba(["A wonderful film."]);    // [Float32Array [0.290..., 0.709...]]: one per label
//   await clf.classify(["Dull."]);                    // [{label: "negative", probability: 0.250...}]
//   clf.tokenize("Dull.");                            // Int32Array(maxlen)
//
// Every file is checked against the sha256 and size the manifest lists (Web Crypto) before it
// is used; onnxruntime-web's own .mjs/.wasm files are loaded from the same folder, so nothing
// is fetched from any other host.
import { Tokenizer, TokenizerError, parseVocab } from "./tokenizer.js";
import { BundleError, MAX_MANIFEST_BYTES, MAX_VOCAB_BYTES, checkLabelsFile, decodeManifest, fileUrl, labelsFileLines, parseManifest } from "./manifest.js";

export { BundleError, parseManifest };
export const DEFAULT_BATCH_SIZE = 256;
export const ORT_MODULE = "ort.wasm.min.mjs"; // onnxruntime-web's wasm-only build
const LABELS_FILE = "labels.txt";
const MAX_MODEL_BYTES = 1 << 30; // the manifest's size is the real cap; this bounds a lying server

/** Lowercase hex sha256 of an ArrayBuffer or typed array. */
export async function sha256Hex(data) {
  const digest = await globalThis.crypto.subtle.digest("SHA-256", data);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function folderUrl(baseUrl) {
  const here = globalThis.location ? globalThis.location.href : undefined;
  const url = new URL(String(baseUrl), here);
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return url;
}

/** The body of url, at most cap bytes: a longer body is refused without being read whole. */
async function fetchBytes(url, fetchFn, cap) {
  let response;
  try {
    response = await fetchFn(url.href);
  } catch (e) {
    throw new BundleError(`cannot fetch ${url.href}: ${e.message}`);
  }
  if (!response.ok) throw new BundleError(`cannot fetch ${url.href}: HTTP ${response.status}`);
  const tooBig = () => new BundleError(`${decodeURIComponent(url.pathname.split("/").pop())}: larger than ${cap} bytes`);
  if (Number(response.headers?.get?.("content-length")) > cap) throw tooBig();
  if (!response.body?.getReader) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.byteLength > cap) throw tooBig();
    return bytes;
  }
  return readCapped(response.body.getReader(), cap, tooBig);
}

async function readCapped(reader, cap, tooBig) {
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > cap) { await reader.cancel(); throw tooBig(); }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) { bytes.set(chunk, at); at += chunk.byteLength; }
  return bytes;
}

/** Fetch a plain file name from inside base and check it against manifest.files[name]: size and sha256. */
export async function fetchVerified(base, manifest, name, fetchFn = globalThis.fetch, cap = MAX_MODEL_BYTES) {
  const entry = manifest.files?.[name];
  if (!entry || typeof entry.sha256 !== "string") throw new BundleError(`manifest.json lists no sha256 for ${name}`);
  const bytes = await fetchBytes(fileUrl(base, name), fetchFn, Math.min(cap, entry.size));
  if (bytes.byteLength !== entry.size) {
    throw new BundleError(`${name} is ${bytes.byteLength} bytes, the manifest says ${entry.size}: refusing a modified or truncated file`);
  }
  const actual = await sha256Hex(bytes);
  if (actual !== entry.sha256) {
    throw new BundleError(`${name} has sha256 ${actual}, the manifest says ${entry.sha256}: refusing a modified file`);
  }
  return bytes;
}

/** The bundle's tokenizer: its vocabulary must parse and hold exactly tokenizer.num_words words. */
function bundleTokenizer(bytes, cfg) {
  const name = cfg.vocab_file;
  let vocab;
  try {
    vocab = parseVocab(new TextDecoder("utf-8", { fatal: true }).decode(bytes), name);
    if (vocab.size !== cfg.num_words) throw new TokenizerError(`${name}: ${vocab.size} words, manifest.json says tokenizer.num_words is ${cfg.num_words}`);
    return new Tokenizer(vocab, cfg.maxlen);
  } catch (e) {
    throw new BundleError(e instanceof TokenizerError ? e.message : `${name}: not UTF-8 text`);
  }
}

export class Classifier {
  constructor({ manifest, tokenizer, session, ort, batchSize }) {
    this.manifest = manifest;
    this.tokenizer = tokenizer;
    this.session = session;
    this.ort = ort;
    this.batchSize = batchSize;
    this.labels = manifest.labels;
    this.threshold = manifest.threshold; // null for N >= 3 labels: the arg-max
    this.width = labelsFileLines(this.labels).length; // one score per line of labels.txt: two classes, one sigmoid
    this.maxlen = tokenizer.maxlen;
    this.inputName = session.inputNames[0];
    this.outputName = session.outputNames[0];
  }

  /**
   * Load and verify the bundle at baseUrl (a folder URL, relative to the page).
   * options: model ("model.onnx"), batchSize (256), ort (an onnxruntime-web module; default:
   * ORT_MODULE from the same folder, its .wasm from there too), fetch (default: globalThis.fetch), threads (1).
   */
  static async load(baseUrl = "./", options = {}) {
    const base = folderUrl(baseUrl);
    const fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
    // The runtime's module loads while the bundle's files are fetched and checked.
    // An injected module (e.g. onnxruntime-web in Node) is used as its caller configured it.
    const ortReady = options.ort ? Promise.resolve(options.ort)
      : import(new URL(ORT_MODULE, base).href).then((ort) => configureOrt(ort, base, options.threads ?? 1));
    ortReady.catch(() => {}); // a failed import is reported below, after the bundle checks
    const manifest = await readManifest(base, fetchFn);
    const modelName = options.model ?? "model.onnx";
    const [vocabBytes, modelBytes, labelsBytes] = await Promise.all([
      fetchVerified(base, manifest, manifest.tokenizer.vocab_file, fetchFn, MAX_VOCAB_BYTES),
      fetchVerified(base, manifest, modelName, fetchFn),
      // the manifest's labels again, when listed (as runtime/bundle.py): no larger than the manifest
      LABELS_FILE in manifest.files ? fetchVerified(base, manifest, LABELS_FILE, fetchFn, MAX_MANIFEST_BYTES) : null,
    ]);
    if (labelsBytes) checkLabelsFile(labelsBytes, manifest.labels, LABELS_FILE);
    const tokenizer = bundleTokenizer(vocabBytes, manifest.tokenizer);
    let ort;
    try {
      ort = await ortReady;
    } catch (e) {
      throw new BundleError(`cannot load onnxruntime-web (${ORT_MODULE}) from ${base.href}: ${e.message}`);
    }
    let session;
    try {
      session = await ort.InferenceSession.create(modelBytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    } catch (e) {
      throw new BundleError(`onnxruntime-web cannot load ${modelName}: ${e.message}`);
    }
    const clf = new Classifier({ manifest, tokenizer, session, ort, batchSize: options.batchSize ?? DEFAULT_BATCH_SIZE });
    await clf.probe(modelName);
    return clf;
  }

  /** Score one empty review at load: a model that does not take maxlen ids, or gives another
   * number of scores than the labels need, fails here, not later. */
  async probe(modelName) {
    let out;
    try {
      out = await this.predictIds(this.tokenizer.encodeBatch([""]), 1);
    } catch (e) {
      throw new BundleError(`${modelName} does not take ${this.maxlen} ids per review (tokenizer.maxlen): ${e.message.split("\n")[0]}`);
    }
    if (out.length !== this.width) { // as runtime/model.py words it
      throw new BundleError(`${modelName}: model output shape [?, ${out.length}] does not fit the ${this.labels.length} labels `
        + `of manifest.json (expected [?, ${this.width}])`);
    }
  }

  get numClasses() {
    return this.labels.length;
  }

  /** One text -> Int32Array(maxlen), the model's input row. */
  tokenize(text) {
    return this.tokenizer.encode(text);
  }

  /** Texts -> the model's outputs, Float32Array(n * width) in input order, batchSize texts at a time. */
  async scores(texts, onProgress) {
    const out = new Float32Array(texts.length * this.width);
    for (let start = 0; start < texts.length; start += this.batchSize) {
      const batch = texts.slice(start, start + this.batchSize);
      out.set(await this.predictIds(this.tokenizer.encodeBatch(batch), batch.length), start * this.width);
      if (onProgress) onProgress(start + batch.length, texts.length);
    }
    return out;
  }

  /** Texts -> Float32Array of P(labels[1]), in input order: two-class bundles only. */
  async predict(texts, onProgress) {
    if (this.width !== 1) {
      throw new Error(`predict() gives one probability per text for two-class bundles; this bundle has ${this.labels.length} labels: use predictProba()`);
    }
    return this.scores(texts, onProgress);
  }

  /** Texts -> one Float32Array per text, P(labels[i]) at i: [1 - p, p] for two classes. */
  async predictProba(texts, onProgress) {
    const out = await this.scores(texts, onProgress);
    if (this.width === 1) return Array.from(out, (p) => Float32Array.of(1 - p, p));
    return texts.map((_, i) => out.slice(i * this.width, (i + 1) * this.width));
  }

  /** ids: Int32Array(n * maxlen) -> Float32Array(n * width), the output tensor's data. */
  async predictIds(ids, n) {
    const input = new this.ort.Tensor("int32", ids, [n, this.maxlen]);
    const result = await this.session.run({ [this.inputName]: input });
    const probs = result[this.outputName];
    const data = Float32Array.from(probs.data); // a copy: ORT may reuse its buffer
    probs.dispose?.();
    return data;
  }

  /** The label of one probability P(labels[1]) at the manifest's threshold (two classes). */
  labelOf(probability) {
    return probability >= this.threshold ? this.labels[1] : this.labels[0];
  }

  /** Texts -> [{label, probability}]: two classes, the threshold's label and P(labels[1]) (as
   * runtime.predict writes it); N classes, the arg-max (ties: the first) and its probability. */
  async classify(texts, onProgress) {
    const out = await this.scores(texts, onProgress);
    if (this.width === 1) return Array.from(out, (p) => ({ label: this.labelOf(p), probability: p }));
    return texts.map((_, i) => {
      const best = argmax(out, i * this.width, this.width);
      return { label: this.labels[best], probability: out[i * this.width + best] };
    });
  }

  async dispose() {
    await this.session.release?.();
  }
}

async function readManifest(base, fetchFn) {
  return parseManifest(decodeManifest(await fetchBytes(new URL("manifest.json", base), fetchFn, MAX_MANIFEST_BYTES)));
}

function configureOrt(ort, base, threads) {
  ort.env.wasm.wasmPaths = base.href; // the .mjs/.wasm beside the bundle: no CDN
  // More than one thread needs SharedArrayBuffer, i.e. a cross-origin-isolated page.
  ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? threads : 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
  return ort;
}

/** The index of the largest of data[at .. at + n) less at; ties go to the lowest (as export/verify.py). */
export function argmax(data, at, n) {
  let best = 0;
  for (let i = 1; i < n; i++) if (data[at + i] > data[at + best]) best = i;
  return best;
}

/** Python's f"{p:.6f}" for a float32 probability (ties to even, where toFixed rounds up). */
export function formatProbability(p) {
  const scaled = p * 1e6; // exact in a double: a float32 has 24 significant bits, 1e6 < 2**20
  const floor = Math.floor(scaled);
  if (scaled - floor === 0.5) return ((floor % 2 === 0 ? floor : floor + 1) / 1e6).toFixed(6);
  return p.toFixed(6);
}
