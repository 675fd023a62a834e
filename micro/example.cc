// reviewkit on a microcontroller: review text -> probability that it is positive.
//
// Build with TFLite Micro (https://github.com/tensorflow/tflite-micro) and the files of
// artifacts/micro/: model_data.cc, vocab_data.c, tokenizer.c and this file. Everything is
// static: no heap, one tensor arena, the model and vocabulary stay in flash.
#include <cstddef>
#include <cstdint>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

#include "model_data.h"  // rk_model_data: model.tflite, 16-byte aligned
#include "model_ops.h"   // RkOpResolver, RkRegisterOps: exactly the model's ops
#include "tokenizer.h"   // rk_tokenize / rk_begin, rk_feed, rk_end; RK_MAXLEN

namespace {

// manifest.json "micro.arena_bytes" is measured on a 64-bit host; 8 KiB leaves room for a
// 32-bit target's different struct sizes and alignment.
constexpr size_t kArenaSize = 8 * 1024;
alignas(16) uint8_t g_arena[kArenaSize];

tflite::MicroInterpreter* g_interpreter = nullptr;

// Once at start-up. Returns false if the model does not fit (grow kArenaSize).
bool Setup() {
  static RkOpResolver resolver;
  const tflite::Model* model = tflite::GetModel(rk_model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION || RkRegisterOps(resolver) != kTfLiteOk) {
    return false;
  }
  static tflite::MicroInterpreter interpreter(model, resolver, g_arena, kArenaSize);
  if (interpreter.AllocateTensors() != kTfLiteOk) return false;
  TfLiteTensor* input = interpreter.input(0);  // [1, RK_MAXLEN] int32 ids
  if (input->type != kTfLiteInt32 || input->dims->data[1] != RK_MAXLEN) return false;
  g_interpreter = &interpreter;
  return true;
}

// The ids are in the input tensor: run the model. Returns the probability, or -1 on error.
float Invoke() {
  if (g_interpreter->Invoke() != kTfLiteOk) return -1.0f;
  return g_interpreter->output(0)->data.f[0];  // [1, 1] float32
}

}  // namespace

// A whole review in memory (UTF-8 bytes, any case; invalid UTF-8 is fine).
float ClassifyReview(const uint8_t* text, size_t len) {
  if (g_interpreter == nullptr && !Setup()) return -1.0f;
  rk_tokenize(text, len, g_interpreter->input(0)->data.i32, RK_MAXLEN);
  return Invoke();
}

// A review arriving in pieces (UART, BLE, a file read in blocks): nothing is buffered, the
// ids are written into the input tensor as the words complete.
static rk_tokenizer g_tokenizer;

bool BeginReview() {
  if (g_interpreter == nullptr && !Setup()) return false;
  rk_begin(&g_tokenizer, g_interpreter->input(0)->data.i32, RK_MAXLEN);
  return true;
}

void ReviewBytes(const uint8_t* bytes, size_t len) { rk_feed(&g_tokenizer, bytes, len); }

float EndReview() {
  rk_end(&g_tokenizer);
  return Invoke();
}

// Threshold 0.5 (manifest.json "threshold"): positive at or above it.
bool IsPositive(float probability) { return probability >= 0.5f; }
