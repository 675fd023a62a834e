// A stand-in for TFLite Micro's headers, just enough to compile and run micro/example.cc on the
// host: the declarations example.cc and model_ops.h use, with TFLM's names and signatures
// (tensorflow/lite/micro/micro_interpreter.h, micro_mutable_op_resolver.h, c/common.h).
//
// TfLiteTensor has TFLM's two layouts: with -DTF_LITE_STATIC_MEMORY (how TFLM builds its library)
// the reduced struct, largest fields first; without it the full struct, `type` first. A file
// compiled without the define reads the other's tensors through the wrong layout, as it would
// against the real library.
#ifndef STUB_MICRO_INTERPRETER_H
#define STUB_MICRO_INTERPRETER_H

#include <cstddef>
#include <cstdint>

typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef enum { kTfLiteNoType = 0, kTfLiteFloat32 = 1, kTfLiteInt32 = 2 } TfLiteType;
typedef enum { kTfLiteNoQuantization = 0, kTfLiteAffineQuantization = 1 } TfLiteQuantizationType;
typedef enum { kTfLiteMemNone = 0, kTfLiteMmapRo = 1, kTfLiteArenaRw = 2 } TfLiteAllocationType;
typedef struct { int size; int data[2]; } TfLiteIntArray;
typedef union { int32_t* i32; float* f; } TfLitePtrUnion;
typedef struct { float scale; int32_t zero_point; } TfLiteQuantizationParams;
typedef struct { TfLiteQuantizationType type; void* params; } TfLiteQuantization;
#ifdef TF_LITE_STATIC_MEMORY
typedef struct {
  TfLiteQuantization quantization;
  TfLiteQuantizationParams params;
  TfLitePtrUnion data;
  TfLiteIntArray* dims;
  size_t bytes;
  TfLiteType type;
  TfLiteAllocationType allocation_type;
  bool is_variable;
} TfLiteTensor;
#else
typedef struct {
  TfLiteType type;
  TfLitePtrUnion data;
  TfLiteIntArray* dims;
  TfLiteQuantizationParams params;
  TfLiteAllocationType allocation_type;
  size_t bytes;
  const void* allocation;
  const char* name;
  void* delegate;
  int buffer_handle;
  bool data_is_stale;
  bool is_variable;
  TfLiteQuantization quantization;
  void* sparsity;
  const TfLiteIntArray* dims_signature;
} TfLiteTensor;
#endif

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
