// A stand-in for TFLite Micro's headers, just enough to compile and run micro/example.cc on the
// host: the declarations example.cc and model_ops.h use, with TFLM's names and signatures
// (tensorflow/lite/micro/micro_interpreter.h, micro_mutable_op_resolver.h, c/common.h).
#ifndef STUB_MICRO_INTERPRETER_H
#define STUB_MICRO_INTERPRETER_H

#include <cstddef>
#include <cstdint>

typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef enum { kTfLiteNoType = 0, kTfLiteFloat32 = 1, kTfLiteInt32 = 2 } TfLiteType;
typedef struct { int size; int data[2]; } TfLiteIntArray;
typedef union { int32_t* i32; float* f; } TfLitePtrUnion;
typedef struct { TfLiteType type; TfLitePtrUnion data; TfLiteIntArray* dims; } TfLiteTensor;

namespace tflite {

class Model {
 public:
  uint32_t version() const;
};
const Model* GetModel(const void* buf);

class MicroOpResolver {};
class MicroResourceVariables;
class MicroProfilerInterface;

class MicroInterpreter {
 public:
  MicroInterpreter(const Model* model, const MicroOpResolver& op_resolver, uint8_t* tensor_arena,
                   size_t tensor_arena_size, MicroResourceVariables* resource_variables = nullptr,
                   MicroProfilerInterface* profiler = nullptr, bool preserve_all_tensors = false);
  TfLiteStatus AllocateTensors();
  TfLiteStatus Invoke();
  TfLiteTensor* input(size_t index);
  TfLiteTensor* output(size_t index);
};

}  // namespace tflite

#endif
