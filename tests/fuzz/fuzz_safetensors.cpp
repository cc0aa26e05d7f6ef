// libFuzzer entry point for the safetensors reader and everything that loads through it: modules, optimizer state, training checkpoints.
// Built only in the clang configuration with -DXGRAD_FUZZ=ON; see tests/fuzz/CMakeLists.txt.
#include "fuzz_harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  xg::fuzz::run_safetensors(data, size);
  return 0;
}
