// reviewkit in the browser: see README.md.
export { BundleError, Classifier, DEFAULT_BATCH_SIZE, checkContract, fetchVerified, formatProbability, sha256Hex } from "./classifier.js";
export { DELIM_PATTERN, SPECIAL_TOKENS, Tokenizer, TokenizerError, parseVocab, splitWords } from "./tokenizer.js";
export { parseRecords, toCsv } from "./records.js";
