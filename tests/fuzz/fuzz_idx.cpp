// libFuzzer entry point for the idx reader (raw and gzip-compressed MNIST-format files).
// Built only in the clang configuration with -DXGRAD_FUZZ=ON; see tests/fuzz/CMakeLists.txt.
#include "fuzz_harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  xg::fuzz::run_idx(data, size);
  return 0;
}
