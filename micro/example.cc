// reviewkit on a microcontroller: review text -> its class (rk_labels in model_data.h) and probability.
//
// Build with TFLite Micro (https://github.com/tensorflow/tflite-micro) and the files of
// artifacts/micro/: model_data.cc, vocab_data.c, tokenizer.c and this file, with
// -DTF_LITE_STATIC_MEMORY as TFLM itself is built (README.md, "Build"). Everything is static:
// no heap, one tensor arena, the model and vocabulary stay in flash. The entry points and
// their error codes are in example.h.
#include "example.h"

#include <cstddef>
#include <cstdint>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

#include "model_data.h"  // rk_model_data: model.tflite, 16-byte aligned; RK_NUM_OUTPUTS, rk_labels
#include "model_ops.h"   // RkOpResolver, RkRegisterOps: exactly the model's ops
#include "tokenizer.h"   // rk_tokenize / rk_begin, rk_feed, rk_end; RK_MAXLEN

namespace {

// manifest.json "micro.arena_bytes" (6,960 B for IMDB) is the `tflite-micro` wheel's figure;
// TFLM built from source needs less (README.md). 8 KiB leaves room for other builds.
constexpr size_t kArenaSize = 8 * 1024;
alignas(16) uint8_t g_arena[kArenaSize];
constexpr float kThreshold = 0.5f;  // manifest.json "threshold" of a two-class bundle

tflite::MicroInterpreter* g_interpreter = nullptr;
int g_status = 1;  // > 0: not set up yet; then kRkOk or the error code of the one set-up
rk_tokenizer g_tokenizer;
bool g_streaming = false;  // BeginReview succeeded and EndReview has not been called since
int g_class = kRkErrorSetup;  // what ReviewClass() returns: the last call's class or error code

// A [rows, cols] tensor of `type`, `elem` bytes an element, with its data: what the tokenizer
// writes and the caller reads. A tensor seen through another TfLiteTensor layout fails here.
bool IsMatrix(const TfLiteTensor* t, TfLiteType type, int rows, int cols, size_t elem) {
  return t != nullptr && t->type == type && t->dims != nullptr && t->dims->size == 2 &&
         t->dims->data[0] == rows && t->dims->data[1] == cols &&
         t->bytes == elem * static_cast<size_t>(rows) * static_cast<size_t>(cols) &&
         t->data.i32 != nullptr;
}

// Runs once (see Ready): a second RkRegisterOps on the same resolver would fail, and the
// interpreter is constructed once.
int Setup() {
  static RkOpResolver resolver;
  const tflite::Model* model = tflite::GetModel(rk_model_data);
  if (model == nullptr || model->version() != TFLITE_SCHEMA_VERSION) return kRkErrorSetup;
  if (RkRegisterOps(resolver) != kTfLiteOk) return kRkErrorSetup;
  static tflite::MicroInterpreter interpreter(model, resolver, g_arena, kArenaSize);
  if (interpreter.AllocateTensors() != kTfLiteOk) return kRkErrorSetup;
  if (!IsMatrix(interpreter.input(0), kTfLiteInt32, 1, RK_MAXLEN, sizeof(int32_t))) return kRkErrorInput;
  if (!IsMatrix(interpreter.output(0), kTfLiteFloat32, 1, RK_NUM_OUTPUTS, sizeof(float))) return kRkErrorOutput;
  g_interpreter = &interpreter;
  return kRkOk;
}

// kRkOk, or the set-up's error code (the same at every call).
int Ready() {
  if (g_status > 0) g_status = Setup();
  return g_status;
}

// The outcome of a ClassifyReview or EndReview call that failed: ReviewClass() gives it too.
float Code(int status) {
  g_class = status;
  return static_cast<float>(status);
}

// The class of the [1, RK_NUM_OUTPUTS] scores `p`: two classes (one sigmoid) 1 from kThreshold
// on, else 0; N classes the arg-max, ties to the lowest index as in Python (export/verify.py).
// kRkErrorOutput if a score is not a probability (NaN fails both comparisons).
int ClassOf(const float* p) {
  for (int i = 0; i < RK_NUM_OUTPUTS; i++) {
    if (!(p[i] >= 0.0f && p[i] <= 1.0f)) return kRkErrorOutput;
  }
  if (RK_NUM_OUTPUTS == 1) return p[0] >= kThreshold ? 1 : 0;
  int best = 0;
  for (int i = 1; i < RK_NUM_OUTPUTS; i++) {
    if (p[i] > p[best]) best = i;
  }
  return best;
}

// The ids are in the input tensor: run the model. Two classes: P(rk_labels[1]); N classes: the
// probability of the predicted class; or a negative code.
float Invoke() {
  if (g_interpreter->Invoke() != kTfLiteOk) return Code(kRkErrorInvoke);
  const float* p = g_interpreter->output(0)->data.f;  // [1, RK_NUM_OUTPUTS] float32
  const int c = ClassOf(p);
  if (c < 0) return Code(c);
  g_class = c;
  return RK_NUM_OUTPUTS == 1 ? p[0] : p[c];
}

}  // namespace

float ClassifyReview(const uint8_t* text, size_t len) {
  if (Ready() != kRkOk) return Code(g_status);
  g_streaming = false;
  rk_tokenize(text, len, g_interpreter->input(0)->data.i32, RK_MAXLEN);
  return Invoke();
}

// Nothing is buffered: the ids are written into the input tensor as the words complete.
bool BeginReview() {
  if (Ready() != kRkOk) return false;
  rk_begin(&g_tokenizer, g_interpreter->input(0)->data.i32, RK_MAXLEN);
  g_streaming = true;
  return true;
}

void ReviewBytes(const uint8_t* bytes, size_t len) {
  if (g_streaming) rk_feed(&g_tokenizer, bytes, len);
}

float EndReview() {
  if (Ready() != kRkOk) return Code(g_status);
  if (!g_streaming) return Code(kRkErrorSetup);  // no BeginReview() before
  g_streaming = false;
  rk_end(&g_tokenizer);
  return Invoke();
}

int ReviewClass() { return g_class; }

bool IsPositive(float probability) { return probability >= kThreshold; }
