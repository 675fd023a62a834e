// Stand-in (see micro_interpreter.h): the MicroMutableOpResolver methods model_ops.h calls.
#ifndef STUB_MICRO_MUTABLE_OP_RESOLVER_H
#define STUB_MICRO_MUTABLE_OP_RESOLVER_H

#include "tensorflow/lite/micro/micro_interpreter.h"

extern int stub_ops_added;

namespace tflite {
template <unsigned int tOpCount>
class MicroMutableOpResolver : public MicroOpResolver {
 public:
  TfLiteStatus AddGather() { return Add(); }
  TfLiteStatus AddMean() { return Add(); }
  TfLiteStatus AddFullyConnected() { return Add(); }
  TfLiteStatus AddLogistic() { return Add(); }
  TfLiteStatus AddSoftmax() { return Add(); }
  TfLiteStatus AddDequantize() { return Add(); }
  TfLiteStatus AddCast() { return Add(); }
  TfLiteStatus AddMul() { return Add(); }

 private:
  TfLiteStatus Add() { return stub_ops_added++ < static_cast<int>(tOpCount) ? kTfLiteOk : kTfLiteError; }
};
}  // namespace tflite

#endif
