"""What export needs to know about each architecture (trainer.model.ARCHS): which quantization
ships as ``model.int8.tflite`` and the manifest's ``"arch"`` section.

``model.int8.tflite`` is the file the runtime and MediaPipe load by default, so it holds the
quantization that passes verification best for the architecture. Full-integer int8 holds the
pooled sums in 8 bits; measured on IMDB test (25k reviews) against Keras:
- tutorial: full-integer passes (>= 99.5% label agreement); it is the fastest in LiteRT.
- linear (maxlen 1024): full-integer sums up to ~2,000 weights in int8 and degrades (the issue
  measured 98.40% agreement, below the 99% bar); dynamic-range keeps float sums (>= 99.4%).
- bigram: see SHIPPED_INT8 (chosen by the same figures).
"""
from __future__ import annotations

# TFLite mode (export.tflite_export.MODES) written to model.int8.tflite, per architecture.
SHIPPED_INT8 = {"tutorial": "int8", "bigram": "int8", "linear": "dynamic"}
MODE_NAMES = {"int8": "full-integer int8", "dynamic": "dynamic-range int8 weights, float activations"}


def model_arch(model) -> str:
    from trainer.model import arch_of

    return arch_of(model)


def shipped_int8_mode(model) -> str:
    return SHIPPED_INT8[model_arch(model)]


def arch_section(model) -> dict:
    """The manifest's ``"arch"`` section: what the model is and what ``model.int8.tflite`` holds."""
    from trainer.ngrams import MaskedPooling, NgramIds

    arch = model_arch(model)
    layers = {layer.name: layer for layer in model.layers}
    pooling = layers.get("pooling")
    ngrams = next((layer for layer in model.layers if isinstance(layer, NgramIds)), None)
    mode = SHIPPED_INT8[arch]
    return {
        "name": arch,
        "mask_padding": isinstance(pooling, MaskedPooling),
        "ngrams": {"n": 2, "buckets": ngrams.buckets, "prime": ngrams.prime,
                   "id": "num_words + ((a * prime + b) mod buckets)"} if ngrams else None,
        "parameters": int(model.count_params()),
        "shipped_int8": {"file": "model.int8.tflite", "mode": mode, "what": MODE_NAMES[mode]},
    }
