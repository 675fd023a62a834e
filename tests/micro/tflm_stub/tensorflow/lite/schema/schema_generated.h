// Stand-in (see ../micro/micro_interpreter.h).
#ifndef STUB_SCHEMA_GENERATED_H
#define STUB_SCHEMA_GENERATED_H
#define TFLITE_SCHEMA_VERSION (3)
#endif
