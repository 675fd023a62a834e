// Runs micro/example.cc against the TFLM stand-in in tflm_stub/: the stub interpreter's input
// tensor is a plain [1, RK_MAXLEN] int32 buffer, Invoke() records the call. This file is the
// "library" side: always compiled with -DTF_LITE_STATIC_MEMORY, as TFLM is.
//   example review TEXT  prints the ids of ClassifyReview, then of the streaming calls fed 3 bytes
//                        at a time, one line each, and the number of ops registered
//   example fault NAME   the stub misbehaves as NAME says (see Break); prints ClassifyReview twice,
//                        BeginReview, EndReview, EndReview without BeginReview, and the ops registered
//   example scores -     each stdin line is RK_NUM_OUTPUTS scores for Invoke() to write: prints what
//                        ClassifyReview returns (%.9g) and ReviewClass(), one line each
//   example labels -     prints RK_NUM_CLASSES, then each rk_labels[i] as hex bytes, one line each
#include <cmath>
#include <cstdio>
#include <cstring>

#include "example.h"
#include "model_data.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tokenizer.h"

int stub_ops_added = 0;
static int32_t g_ids[RK_MAXLEN];
static float g_prob[RK_NUM_OUTPUTS];
static TfLiteIntArray g_dims = {2, {1, RK_MAXLEN}};
static TfLiteIntArray g_out_dims = {2, {1, RK_NUM_OUTPUTS}};
static TfLiteTensor g_input, g_output;
static uint32_t g_version = TFLITE_SCHEMA_VERSION;
static TfLiteStatus g_alloc = kTfLiteOk, g_invoke = kTfLiteOk;
static float g_scores[RK_NUM_OUTPUTS];  // what Invoke() writes: see Tensors()

namespace tflite {
uint32_t Model::version() const { return g_version; }
const Model* GetModel(const void* buf) { return buf == rk_model_data ? reinterpret_cast<const Model*>(buf) : nullptr; }
MicroInterpreter::MicroInterpreter(const Model*, const MicroOpResolver&, uint8_t* arena, size_t size,
                                   MicroResourceVariables*, MicroProfilerInterface*, bool) {
  std::memset(arena, 0, size);
}
TfLiteStatus MicroInterpreter::AllocateTensors() {
  g_output.data.f = g_prob;
  return g_alloc;
}
TfLiteStatus MicroInterpreter::Invoke() {
  std::memcpy(g_prob, g_scores, sizeof g_prob);
  return g_invoke;
}
TfLiteTensor* MicroInterpreter::input(size_t) { return &g_input; }
TfLiteTensor* MicroInterpreter::output(size_t) { return &g_output; }
}  // namespace tflite

static void Tensors() {
  g_input.type = kTfLiteInt32;  // quantization: kTfLiteNoQuantization (0), as TFLM leaves int32 ids
  g_input.data.i32 = g_ids;
  g_input.dims = &g_dims;
  g_input.bytes = sizeof g_ids;
  g_input.allocation_type = kTfLiteArenaRw;
  g_output.type = kTfLiteFloat32;
  g_output.dims = &g_out_dims;
  g_output.bytes = sizeof g_prob;
  g_output.allocation_type = kTfLiteArenaRw;
  // Invoke() scores class 1 0.75 with any number of classes: the sigmoid, or 1 of N softmax scores
  g_scores[0] = 0.75f;
  for (int i = 0; RK_NUM_OUTPUTS > 1 && i < RK_NUM_OUTPUTS; i++) g_scores[i] = i == 1 ? 0.75f : 0.125f;
}

// The stub's faults, by name: false for an unknown name.
static bool Break(const char* name) {
  const auto is = [name](const char* what) { return std::strcmp(name, what) == 0; };
  if (is("input_type")) g_input.type = kTfLiteFloat32;
  else if (is("input_rank")) g_dims.size = 1;
  else if (is("input_rows")) g_dims.data[0] = 2;
  else if (is("input_cols")) g_dims.data[1] = RK_MAXLEN / 2;
  else if (is("input_bytes")) g_input.bytes = sizeof g_ids / 2;
  else if (is("input_no_data")) g_input.data.i32 = nullptr;
  else if (is("output_type")) g_output.type = kTfLiteInt32;
  else if (is("output_shape")) g_out_dims.data[1] = RK_NUM_OUTPUTS + 1;
  else if (is("output_rows")) g_out_dims.data[0] = 2;
  else if (is("output_bytes")) g_output.bytes = sizeof g_prob + sizeof(float);
  else if (is("nan")) g_scores[RK_NUM_OUTPUTS - 1] = std::nanf("");
  else if (is("negative")) g_scores[RK_NUM_OUTPUTS - 1] = -0.25f;
  else if (is("above_one")) g_scores[RK_NUM_OUTPUTS - 1] = 1.5f;
  else if (is("invoke")) g_invoke = kTfLiteError;
  else if (is("alloc")) g_alloc = kTfLiteError;
  else if (is("version")) g_version = TFLITE_SCHEMA_VERSION + 1;
  else if (is("register")) stub_ops_added = 1000;  // the resolver is full: every Add fails
  else return is("none");
  return true;
}

static void PrintIds() {
  for (int i = 0; i < RK_MAXLEN; i++) std::printf("%d%c", static_cast<int>(g_ids[i]), i + 1 < RK_MAXLEN ? ' ' : '\n');
}

static int Review(const char* review) {
  const uint8_t* text = reinterpret_cast<const uint8_t*>(review);
  size_t len = std::strlen(review);
  if (ClassifyReview(text, len) != 0.75f) return 1;
  PrintIds();
  std::memset(g_ids, 0x55, sizeof g_ids);
  if (!BeginReview()) return 1;
  for (size_t at = 0; at < len; at += 3) ReviewBytes(text + at, len - at < 3 ? len - at : 3);
  if (EndReview() != 0.75f) return 1;
  PrintIds();
  std::printf("%d\n", stub_ops_added);
  return 0;
}

static int Fault(const char* name) {
  if (!Break(name)) return 2;
  const uint8_t text[] = "a great film";
  float first = ClassifyReview(text, sizeof text - 1);
  float again = ClassifyReview(text, sizeof text - 1);
  bool begun = BeginReview();
  ReviewBytes(text, sizeof text - 1);
  float streamed = EndReview();
  float unbegun = EndReview();
  int ops = stub_ops_added;
  std::printf("%g %g %d %g %g %d\n", first, again, begun ? 1 : 0, streamed, unbegun, ops);
  return 0;
}

static int Scores() {
  const uint8_t text[] = "a great film";
  for (;;) {
    for (int i = 0; i < RK_NUM_OUTPUTS; i++) {
      if (std::scanf("%f", &g_scores[i]) != 1) return i == 0 ? 0 : 1;  // i == 0: end of the input
    }
    float p = ClassifyReview(text, sizeof text - 1);
    std::printf("%.9g %d\n", p, ReviewClass());
  }
}

static int Labels() {
  std::printf("%d\n", RK_NUM_CLASSES);
  for (const char* label : rk_labels) {
    for (const char* c = label; *c; c++) std::printf("%02x", static_cast<unsigned>(static_cast<uint8_t>(*c)));
    std::printf("\n");
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  Tensors();
  if (std::strcmp(argv[1], "review") == 0) return Review(argv[2]);
  if (std::strcmp(argv[1], "fault") == 0) return Fault(argv[2]);
  if (std::strcmp(argv[1], "scores") == 0) return Scores();
  if (std::strcmp(argv[1], "labels") == 0) return Labels();
  return 2;
}
