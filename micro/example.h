// reviewkit on a microcontroller: the entry points of example.cc (C++, TFLite Micro).
//
// ClassifyReview and EndReview return the probability that the review is positive, in [0, 1],
// or one of the negative codes below: a value < 0 is never a score. The set-up (model, ops,
// arena, tensor checks) runs once, at the first call; if it fails, every later call returns
// the same code (it is not retried, so the ops are registered once).
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
  // The output tensor is not [1, 1] float32, or what it holds is not a probability (NaN, < 0, > 1).
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

// Threshold 0.5 (manifest.json "threshold"): positive at or above it. False for an error code.
bool IsPositive(float probability);

#endif  // RK_EXAMPLE_H
