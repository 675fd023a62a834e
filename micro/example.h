// reviewkit on a microcontroller: the entry points of example.cc (C++, TFLite Micro).
//
// ClassifyReview and EndReview return a probability in [0, 1] -- two classes: P(rk_labels[1]),
// the probability that the review is positive for IMDB; N >= 3 classes: the probability of the
// predicted class -- or one of the negative codes below: a value < 0 is never a score.
// ReviewClass() then gives the class (rk_labels[i] in model_data.h names class i). The set-up
// (model, ops, arena, tensor checks) runs once, at the first call; if it fails, every later call
// returns the same code (it is not retried, so the ops are registered once).
#ifndef RK_EXAMPLE_H
#define RK_EXAMPLE_H

#include <cstddef>
#include <cstdint>

enum RkStatus : int {
  kRkOk = 0,
  // The model's schema version, the op registration, or AllocateTensors (the arena is too
  // small: grow kArenaSize in example.cc) failed.
  kRkErrorSetup = -1,
  // The input tensor is not the [1, RK_MAXLEN] int32 the tokenizer writes. Seen when example.cc
  // is compiled without -DTF_LITE_STATIC_MEMORY against a TFLM library built with it (TfLiteTensor
  // then has another layout), or with the model of another maxlen.
  kRkErrorInput = -2,
  // The output tensor is not [1, RK_NUM_OUTPUTS] float32 (model_data.h: 1 for two classes, N for
  // N), or one of its scores is not a probability (NaN, < 0, > 1).
  kRkErrorOutput = -3,
  // Invoke() failed.
  kRkErrorInvoke = -4,
};

// A whole review in memory (UTF-8 bytes, any case; invalid UTF-8 is fine).
float ClassifyReview(const uint8_t* text, size_t len);

// A review arriving in pieces: BeginReview() (false: the set-up failed, EndReview() returns its
// code), ReviewBytes() any number of times, then EndReview(). EndReview() without a BeginReview()
// that returned true returns kRkErrorSetup; ReviewBytes() then does nothing.
bool BeginReview();
void ReviewBytes(const uint8_t* bytes, size_t len);
float EndReview();

// The class index of the review the last ClassifyReview or EndReview scored, 0..RK_NUM_CLASSES-1:
// two classes 1 at or above the threshold 0.5 (manifest.json "threshold"), else 0; N >= 3 classes
// the arg-max of the N probabilities (ties: the lowest index). If that call returned a negative
// code, the same code; kRkErrorSetup before any call.
int ReviewClass();

// Two classes: threshold 0.5 (manifest.json "threshold"), positive at or above it. False for an
// error code.
bool IsPositive(float probability);

#endif  // RK_EXAMPLE_H
