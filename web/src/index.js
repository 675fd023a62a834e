// reviewkit in the browser: see README.md.
export { Classifier, DEFAULT_BATCH_SIZE, fetchVerified, formatProbability, sha256Hex } from "./classifier.js";
export { BundleError, parseManifest } from "./manifest.js";
export { DELIM_PATTERN, SPECIAL_TOKENS, Tokenizer, TokenizerError, parseVocab, splitWords } from "./tokenizer.js";
export { parseRecords, toCsv } from "./records.js";
