// Runs micro/example.cc against the TFLM stand-in in tflm_stub/: the stub interpreter's
// input tensor is a plain [1, RK_MAXLEN] int32 buffer, Invoke() records the call.
// argv[1]: a review; prints the ids of ClassifyReview, then of the streaming calls fed 3 bytes
// at a time, one line each, and the number of ops registered.
#include <cstdio>
#include <cstring>

#include "model_data.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tokenizer.h"

float ClassifyReview(const uint8_t* text, size_t len);
bool BeginReview();
void ReviewBytes(const uint8_t* bytes, size_t len);
float EndReview();

int stub_ops_added = 0;
static int32_t g_ids[RK_MAXLEN];
static float g_prob[1];
static TfLiteIntArray g_dims = {2, {1, RK_MAXLEN}};
static TfLiteIntArray g_out_dims = {2, {1, 1}};
static TfLiteTensor g_input = {kTfLiteInt32, {g_ids}, &g_dims};
static TfLiteTensor g_output = {kTfLiteFloat32, {nullptr}, &g_out_dims};

namespace tflite {
uint32_t Model::version() const { return TFLITE_SCHEMA_VERSION; }
const Model* GetModel(const void* buf) { return buf == rk_model_data ? reinterpret_cast<const Model*>(buf) : nullptr; }
MicroInterpreter::MicroInterpreter(const Model*, const MicroOpResolver&, uint8_t* arena, size_t size,
                                   MicroResourceVariables*, MicroProfilerInterface*, bool) {
  std::memset(arena, 0, size);
}
TfLiteStatus MicroInterpreter::AllocateTensors() {
  g_output.data.f = g_prob;
  return kTfLiteOk;
}
TfLiteStatus MicroInterpreter::Invoke() {
  g_prob[0] = 0.75f;
  return kTfLiteOk;
}
TfLiteTensor* MicroInterpreter::input(size_t) { return &g_input; }
TfLiteTensor* MicroInterpreter::output(size_t) { return &g_output; }
}  // namespace tflite

static void print_ids() {
  for (int i = 0; i < RK_MAXLEN; i++) std::printf("%d%c", static_cast<int>(g_ids[i]), i + 1 < RK_MAXLEN ? ' ' : '\n');
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const uint8_t* text = reinterpret_cast<const uint8_t*>(argv[1]);
  size_t len = std::strlen(argv[1]);
  if (ClassifyReview(text, len) != 0.75f) return 1;
  print_ids();
  std::memset(g_ids, 0x55, sizeof g_ids);
  if (!BeginReview()) return 1;
  for (size_t at = 0; at < len; at += 3) ReviewBytes(text + at, len - at < 3 ? len - at : 3);
  if (EndReview() != 0.75f) return 1;
  print_ids();
  std::printf("%d\n", stub_ops_added);
  return 0;
}
